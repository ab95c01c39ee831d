# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore load --smoke --url`` fails against the load mutants (lost events, memory leak)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dualstore_mutants import CATALOGUE
from dualstore_mutants.launcher import start_mutant

pytestmark = pytest.mark.slow
TOKEN = "load-mutant-token"
LOAD_MUTANTS = [name for name, entry in CATALOGUE.items() if entry.get("load_gate")]
GATE_WORDS = {"lost": ("lost", "deliver"), "memory": ("rss", "memory")}


@pytest.mark.parametrize("name", LOAD_MUTANTS)
def test_load_smoke_fails_against_the_mutant(name: str, tmp_path: Path) -> None:
    env = {"AUTH_TOKEN": TOKEN, "SSE_HEARTBEAT_SECONDS": "1"}
    with start_mutant([name], env=env, workers=1, data_dir=tmp_path / "server") as server:
        pids = [str(p) for p in server.pids()]
        command = [sys.executable, "-m", "dualstore_cli", "load", "--smoke",
                   "--url", server.url, "--token", TOKEN, "--heartbeat", "1",
                   "--report-dir", str(tmp_path / "report")]
        for pid in pids:
            command += ["--server-pid", pid]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    failed = [g for g in summary["gates"] if g["passed"] is False]
    words = GATE_WORDS[CATALOGUE[name]["load_gate"]]
    assert any(any(w in json.dumps(g).lower() for w in words) for g in failed), failed
