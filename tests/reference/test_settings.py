# SPDX-License-Identifier: GPL-3.0-or-later
"""Settings: environment variables, CLI overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from dualstore_reference.settings import Settings, SettingsError


def test_defaults_match_the_documented_table() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 4261, 2)
    assert settings.collections == ("session_messages", "agent_tasks", "opencode_events")
    assert settings.auth_tokens == () and not settings.auth_required
    assert settings.sse_heartbeat_seconds == 15 and settings.stream_cap_per_ip == 10
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (50, 100)
    assert settings.mongodb_uri is None and settings.data_dir == Path("dualstore-data")


def test_environment_is_parsed_and_overrides_win() -> None:
    env = {
        "PORT": "8080",
        "AUTH_TOKEN": "a, b ",
        "CORS_ORIGIN": "http://x.example,https://y.example:8443",
        "COLLECTIONS": "one,two",
        "UI_ENABLED": "true",
        "RATE_LIMIT_BURST": "0",
        "TRUSTED_PROXIES": "10.0.0.0/8,::1",
        "SSE_HEARTBEAT_SECONDS": "0.5",
    }
    settings = Settings.from_env(env, port=9000, workers=None)
    assert settings.port == 9000 and settings.workers == 2
    assert settings.auth_tokens == ("a", "b")
    assert settings.collections == ("one", "two")
    assert settings.ui_enabled and not settings.rate_limit_enabled
    assert settings.sse_heartbeat_seconds == 0.5
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"COLLECTIONS": "Bad-Name"}, "COLLECTIONS"),
        ({"COLLECTIONS": "dualstore_counters"}, "COLLECTIONS"),
        ({"COLLECTIONS": "notes,health"}, "COLLECTIONS"),
        ({"CORS_ORIGIN": "allowed.example"}, "CORS_ORIGIN"),
        ({"TRUSTED_PROXIES": "proxy.local"}, "TRUSTED_PROXIES"),
        ({"SSE_HEARTBEAT_SECONDS": "0"}, "SSE_HEARTBEAT_SECONDS"),
        ({"SSE_HEARTBEAT_SECONDS": "nan"}, "SSE_HEARTBEAT_SECONDS"),
        ({"UI_ENABLED": "maybe"}, "UI_ENABLED"),
        ({"VECTOR_METRIC": "hamming"}, "VECTOR_METRIC"),
        ({"MONGODB_URI": "postgres://x"}, "MONGODB_URI"),
        ({"AUTH_TOKEN": "has space"}, "AUTH_TOKEN"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


@pytest.mark.parametrize("value", [",", " , ", "", "   ", "a,,b", "a,", ",a"])
def test_an_empty_token_entry_refuses_to_start(value: str) -> None:
    # Fail closed: AUTH_TOKEN="," once started a server with no authentication at all.
    with pytest.raises(SettingsError, match="AUTH_TOKEN"):
        Settings.from_env({"AUTH_TOKEN": value})


def test_auth_is_off_only_when_the_variable_is_unset() -> None:
    assert not Settings.from_env({}).auth_required
    assert "AUTH_TOKEN" not in Settings.from_env({}).to_env()
    on = Settings.from_env({"AUTH_TOKEN": "t1,t2"})
    assert on.auth_tokens == ("t1", "t2") and on.to_env()["AUTH_TOKEN"] == "t1,t2"
