# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore load --smoke`` against the reference it starts (the CI load proof)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def smoke(report: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the real command line, as CI and operators do."""
    completed = subprocess.run(
        [sys.executable, "-m", "dualstore_cli", "load", "--smoke",
         "--report-dir", str(report), *extra],
        capture_output=True, text=True, timeout=240, check=False,
    )
    summary_path = report / "summary.json"
    assert summary_path.exists(), completed.stdout + completed.stderr
    summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    return completed, summary


def assert_passed(completed: subprocess.CompletedProcess[str], summary: dict[str, Any],
                  report: Path) -> None:
    failed = [g for g in summary["gates"] if g["passed"] is False]
    assert completed.returncode == 0 and not failed, (
        completed.stdout + json.dumps(failed, indent=1)
        + "\nserver log tail:\n" + "\n".join(
            (report / "server.log").read_text(errors="replace").splitlines()[-30:]))
    assert all(g["passed"] is True for g in summary["gates"])  # none skipped: RSS sampled
    assert summary["delivery"]["expected"] > 0
    assert summary["memory"]["samples"] > 10 and len(summary["memory"]["sampled_pids"]) == 3
    for chart in ("rss.png", "latency.png", "clients.png"):
        assert (report / chart).stat().st_size > 0
    assert "load test PASSED" in completed.stdout


@pytest.mark.slow
def test_smoke_passes_against_the_reference(tmp_path: Path) -> None:
    completed, summary = smoke(tmp_path)
    assert_passed(completed, summary, tmp_path)
    assert summary["profile"]["heartbeat_seconds"] == 1.0
    assert summary["profile"]["locust_processes"] == 1


@pytest.mark.slow
def test_smoke_passes_in_locust_distributed_mode(tmp_path: Path) -> None:
    completed, summary = smoke(tmp_path, "--processes", "2")
    assert_passed(completed, summary, tmp_path)
    assert len(list((tmp_path / "records").glob("records-*.jsonl"))) == 2


# The mutant catalogue's load mutants (lost events, memory leak) are run through
# `dualstore load --smoke --url ... --server-pid ...` in tests/mutants/test_load_mutants.py.
