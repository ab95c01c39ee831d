# SPDX-License-Identifier: GPL-3.0-or-later
"""The reference reads its numbers, problem types and header lists from the spec in force:
started on a copy of the spec with other numbers (DUALSTORE_SPEC_DIR), it follows them."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import dualstore_spec
import httpx
import pytest
import yaml
from dualstore_reference.launcher import RunningReference

TOKEN = "test-token"  # tests/conftest.py REFERENCE_ENV
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COLLECTION = "session_messages"
BODY_CAP = 32768
STREAM_CAP = 5
RECENT_MAX = 20
SEARCH_Q_MAX = 100


@pytest.fixture
def other_spec(tmp_path: Path) -> Path:
    """A copy of the spec whose limits differ from the installed one's."""
    copy = tmp_path / "spec"
    shutil.copytree(dualstore_spec.SPEC_DIR, copy,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    openapi = yaml.safe_load((copy / "openapi.yaml").read_text("utf-8"))
    limits = openapi["x-dualstore-limits"]
    assert (limits["max_body_bytes"], limits["stream_cap_per_ip"]) != (BODY_CAP, STREAM_CAP)
    limits["max_body_bytes"] = BODY_CAP
    limits["stream_cap_per_ip"] = STREAM_CAP
    limits["recent_limit"]["max"] = RECENT_MAX
    limits["search_q_max_length"] = SEARCH_Q_MAX
    openapi["x-dualstore-cors"]["expose-headers"].append("X-Spec-Copy")
    (copy / "openapi.yaml").write_text(yaml.safe_dump(openapi, sort_keys=False), "utf-8")
    return copy


def _body(size: int) -> bytes:
    """A valid new document of exactly ``size`` bytes (JSON whitespace as padding)."""
    head, tail = b'{"text":"spec numbers"', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


def test_the_reference_follows_a_spec_with_other_numbers(
    other_spec: Path, start_reference: Callable[..., RunningReference]
) -> None:
    server = start_reference(env={dualstore_spec.SPEC_DIR_ENV: str(other_spec),
                                  "CORS_ORIGIN": "http://allowed.example"})
    base = f"{server.url}/v1/{COLLECTION}"
    json_type = {**AUTH, "Content-Type": "application/json"}
    with httpx.Client(timeout=10) as http:
        at_cap = http.post(base, content=_body(BODY_CAP), headers=json_type)
        assert at_cap.status_code == 201, at_cap.text
        over = http.post(base, content=_body(BODY_CAP + 1), headers=json_type)
        assert over.status_code == 413, over.text
        assert over.json()["type"] == "urn:dualstore:problem:payload-too-large"

        assert http.get(f"{base}/recent", params={"limit": RECENT_MAX},
                        headers=AUTH).status_code == 200
        assert http.get(f"{base}/recent", params={"limit": RECENT_MAX + 1},
                        headers=AUTH).status_code == 400
        assert http.get(f"{base}/search", params={"q": "x" * (SEARCH_Q_MAX + 1)},
                        headers=AUTH).status_code == 400

        preflight_free = http.get(f"{server.url}/v1/health",
                                  headers={"Origin": "http://allowed.example"})
        exposed = preflight_free.headers.get("access-control-expose-headers", "")
        assert "X-Spec-Copy" in [name.strip() for name in exposed.split(",")]

        with contextlib.ExitStack() as streams:
            for _ in range(STREAM_CAP):
                opened = streams.enter_context(http.stream("GET", f"{base}/stream", headers=AUTH))
                assert opened.status_code == 200
            with http.stream("GET", f"{base}/stream", headers=AUTH) as refused:
                refused.read()
                assert refused.status_code == 429
                assert refused.json()["type"] == "urn:dualstore:problem:too-many-streams"
