# SPDX-License-Identifier: GPL-3.0-or-later
"""Mutants live outside the server package: no setting switches them on, unknown names fail."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dualstore_mutants import FaultError
from dualstore_mutants.app import create
from dualstore_mutants.launcher import start_mutant
from dualstore_reference.launcher import start_reference
from dualstore_reference.settings import Settings

TOKEN = "isolation-token-0123456789"
STREAM = "/v1/session_messages/stream"


def stream_status(url: str) -> int:
    """The status of a stream opened without any credentials (the body is not read)."""
    with httpx.Client(timeout=10.0) as client, client.stream("GET", url + STREAM) as response:
        return response.status_code


def test_a_normal_install_cannot_import_the_mutants(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; "
         "print(u.find_spec('dualstore_mutants') is None)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert completed.stdout.strip() == "True", completed.stderr


def test_the_reference_has_no_fault_setting() -> None:
    assert "faults" not in {f.name for f in dataclasses.fields(Settings)}
    settings = Settings.from_env({"DUALSTORE_FAULTS": "sec-stream-auth-off"})
    assert settings == Settings.from_env({})


def test_dualstore_faults_on_dualstore_serve_changes_nothing(tmp_path: Path) -> None:
    env = {"AUTH_TOKEN": TOKEN, "DUALSTORE_FAULTS": "sec-stream-auth-off"}
    with start_reference(env=env, workers=1, data_dir=tmp_path / "ref") as server:
        assert stream_status(server.url) == 401
    # The same fault through the test-only entry does apply: the comparison is not vacuous.
    with start_mutant(["sec-stream-auth-off"], env={"AUTH_TOKEN": TOKEN}, workers=1,
                      data_dir=tmp_path / "mutant") as mutant:
        assert stream_status(mutant.url) == 200


def test_unknown_fault_is_a_hard_error_everywhere(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="unknown fault no-such-fault"):
        start_mutant(["no-such-fault"], data_dir=tmp_path)
    with pytest.raises(FaultError, match="unknown fault no-such-fault"):
        create("sec-stream-auth-off,no-such-fault")
    completed = subprocess.run(
        [sys.executable, "-m", "dualstore_mutants.serve", "--faults", "no-such-fault",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "mutants")},
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("dualstore-mutant-serve: error: unknown fault")
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()
