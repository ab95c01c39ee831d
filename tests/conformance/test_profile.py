# SPDX-License-Identifier: GPL-3.0-or-later
"""The deployment profile: spec defaults, files, flags, a spec copy with other numbers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dualstore_spec
import pytest
import yaml
from dualstore_conformance.limits import spec_limits, stream_cap
from dualstore_conformance.profile import (
    ProfileError,
    from_mapping,
    limits_view,
    load_file,
    parse_rate_limit,
    spec_defaults,
)
from dualstore_spec import facts


def test_defaults_are_the_specs_numbers() -> None:
    spec = facts.current()
    profile = spec_defaults()
    assert profile.stream_cap_per_ip == spec.stream_cap_per_ip
    assert profile.rate_limit == spec.rate_limit
    assert profile.heartbeat_seconds == spec.heartbeat.default_seconds
    assert profile.declared == frozenset()
    assert profile.as_dict()["sources"] == ["spec defaults"]


def test_flags_and_files_override_and_are_recorded(tmp_path: Path) -> None:
    file = tmp_path / "deployment.yaml"
    file.write_text("stream_cap_per_ip: 20\nrate_limit: {requests_per_second: 10, burst: 20}\n")
    profile = load_file(file, spec_defaults())
    profile = from_mapping({"heartbeat_seconds": 2}, profile, "flags")
    assert profile.stream_cap_per_ip == 20 and profile.heartbeat_seconds == 2.0
    assert profile.rate_limit is not None and profile.rate_limit.burst == 20
    assert profile.declared == {"stream_cap_per_ip", "rate_limit", "heartbeat_seconds"}
    assert profile.as_dict()["sources"] == [str(file), "flags"]
    view = limits_view(profile)
    assert stream_cap(view) == 20 and view["rate_limit"]["requests_per_second"] == 10


@pytest.mark.parametrize("values, message", [
    ({"stream_cap": 3}, "unknown key"),
    ({"stream_cap_per_ip": 0}, "at least 1"),
    ({"stream_cap_per_ip": True}, "at least 1"),
    ({"rate_limit": {"requests_per_second": 5}}, "rate_limit must be"),
    ({"heartbeat_seconds": -1}, "positive"),
    ({"cors_origins": ["https://a.example/path"]}, "origins"),
])
def test_bad_profile_values_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        from_mapping(values, spec_defaults(), "test")


def test_rate_limit_flag_syntax() -> None:
    rate = parse_rate_limit("10/20")
    assert rate is not None and (rate.requests_per_second, rate.burst) == (10.0, 20)
    assert parse_rate_limit("none") is None
    spec = facts.current().rate_limit
    implied = parse_rate_limit("10")
    assert implied is not None
    assert implied.burst == round(10 * spec.burst / spec.requests_per_second)
    for bad in ("ten", "10/", "0/5", "-1/2", "10/0"):
        with pytest.raises(ProfileError):
            parse_rate_limit(bad)


@pytest.mark.parametrize("flags, message", [
    (["--rate-limit", "fast"], "--rate-limit must be"),
    (["--stream-cap", "0"], "--stream-cap must be at least 1"),
    (["--profile", "/nonexistent/profile.yaml"], "--profile: no such file"),
])
def test_conform_refuses_bad_profile_flags_with_exit_2(flags: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from dualstore_cli.main import main; "
         "sys.exit(main(sys.argv[1:]))", "conform", "--url", "http://127.0.0.1:9", *flags],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


@pytest.fixture
def changed_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the spec with other numbers, in force through DUALSTORE_SPEC_DIR."""
    copy = tmp_path / "spec"
    shutil.copytree(dualstore_spec.SPEC_DIR, copy,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    openapi = yaml.safe_load((copy / "openapi.yaml").read_text("utf-8"))
    openapi["x-dualstore-limits"]["stream_cap_per_ip"] = 5
    openapi["x-dualstore-limits"]["max_body_bytes"] = 32768
    (copy / "openapi.yaml").write_text(yaml.safe_dump(openapi, sort_keys=False), "utf-8")
    contract = yaml.safe_load((copy / "sse-contract.yaml").read_text("utf-8"))
    contract["x-heartbeat"]["tolerance_absolute_seconds"] = 0.25
    contract["x-heartbeat"]["tolerance_relative"] = 0.1
    (copy / "sse-contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False), "utf-8")
    monkeypatch.setenv(dualstore_spec.SPEC_DIR_ENV, str(copy))
    dualstore_spec.forget()
    yield copy
    monkeypatch.delenv(dualstore_spec.SPEC_DIR_ENV)
    dualstore_spec.forget()


def test_the_harness_follows_a_spec_with_other_numbers(changed_spec: Path) -> None:
    assert dualstore_spec.path() == changed_spec.resolve()
    assert spec_defaults().stream_cap_per_ip == 5
    limits = spec_limits()
    assert stream_cap(limits) == 5 and limits["max_body_bytes"] == 32768
    assert facts.current().heartbeat.tolerance(10.0) == pytest.approx(1.0)
    assert facts.current().heartbeat.tolerance(1.0) == pytest.approx(0.25)


def test_a_missing_spec_number_raises_instead_of_defaulting(
        changed_spec: Path) -> None:
    openapi = yaml.safe_load((changed_spec / "openapi.yaml").read_text("utf-8"))
    del openapi["x-dualstore-limits"]["stream_cap_per_ip"]
    (changed_spec / "openapi.yaml").write_text(yaml.safe_dump(openapi), "utf-8")
    dualstore_spec.forget()
    with pytest.raises(facts.SpecError, match="stream_cap_per_ip"):
        spec_defaults()


def test_profile_files_are_validated_against_the_specs_meta_schema(tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text('{"rate_limit": {"requests_per_second": 5, "burst": 0}}')
    with pytest.raises(ProfileError, match=r"deployment-profile\.schema\.json"):
        load_file(file, spec_defaults())
    file.write_text('{"stream_cap_per_ip": 3, "rate_limit": null}')
    profile = load_file(file, spec_defaults())
    assert profile.rate_limit is None and profile.stream_cap_per_ip == 3
