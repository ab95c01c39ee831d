# SPDX-License-Identifier: GPL-3.0-or-later
"""The kill matrix: every mutant is killed on its documented checks; correct variants pass."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dualstore_mutants import CATALOGUE
from dualstore_mutants.matrix import (
    BASELINE,
    Row,
    baseline_findings,
    parse_args,
    run_matrix,
    save_rows,
)

pytestmark = [
    pytest.mark.slow,
    # The module fixture runs the whole matrix (about 20 min) inside the first item's setup,
    # which the suite-wide 300 s per-test timeout would cut off.
    pytest.mark.timeout(3600),
]

ONLY = [n for n in os.environ.get("DUALSTORE_KILL_MATRIX_ONLY", "").split(",") if n]
"""Local subset (CSV of mutant names); CI runs every row."""
ROWS = [BASELINE, *(ONLY or CATALOGUE)]
PARALLEL = os.environ.get("DUALSTORE_KILL_MATRIX_PARALLEL", "3")
SAVE = os.environ.get("DUALSTORE_KILL_MATRIX_JSON")
"""Where to save the rows as JSON (optional; rows run a second time go to ``<it>.rerun.json``):
``python -m dualstore_mutants.matrix --render-from <it> [--render-from <it>.rerun.json]
--doc docs/kill-matrix.md`` turns them into the published page."""
FIRST_RUN: dict[str, list[str]] = {}
"""Failing checks of a row's first run, for rows that were run a second time."""


def expected_verdict(row: Row) -> str:
    return "passed" if row.expect == "pass" else "killed"


@pytest.fixture(scope="module")
def matrix() -> dict[str, Row]:
    """One run of the whole matrix (servers started PARALLEL at a time), conform only.

    A row with the wrong verdict is run once more, alone (timing checks on a loaded 2-core
    machine); the second verdict counts and both are kept in the failure message.
    """
    args = parse_args(["--parallel", PARALLEL, "--no-schemathesis"])
    started = time.monotonic()
    rows = {row.name: row for row in run_matrix(ROWS, args)}
    if SAVE:
        save_rows(Path(SAVE), list(rows.values()), args, time.monotonic() - started)
    ignore = baseline_findings(list(rows.values()))
    wrong = [
        n for n, r in rows.items() if n != BASELINE and r.verdict(ignore) != expected_verdict(r)
    ]
    if wrong:
        started = time.monotonic()
        again = run_matrix(wrong, parse_args(["--parallel", "1", "--no-schemathesis"]))
        if SAVE:  # render with --render-from both files: the second run replaces the first
            save_rows(Path(SAVE + ".rerun.json"), again, args, time.monotonic() - started)
        for row in again:
            FIRST_RUN[row.name] = sorted(rows[row.name].failing())
            rows[row.name] = row
    return rows


def explain(row: Row, ignore: set[str]) -> str:
    return (f"{row.name}: verdict {row.verdict(ignore)}, conform exit {row.conform_exit}, "
            f"failing {sorted(row.failing())}, documented breaks {row.breaks}, "
            f"collateral {row.collateral}, findings {row.findings}, "
            f"baseline SHOULD findings {sorted(ignore)} {row.problem}"
            + (f"; first run failing {FIRST_RUN[row.name]}" if row.name in FIRST_RUN else "")
            + "".join(f"\n  {check}: {row.messages.get(check, '')}"
                      for check in sorted(row.unlisted())))


@pytest.mark.parametrize("name", ROWS)
def test_mutant_is_killed_on_its_documented_checks(name: str, matrix: dict[str, Row]) -> None:
    row = matrix[name]
    ignore = baseline_findings(list(matrix.values()))
    assert row.verdict(ignore) == expected_verdict(row), explain(row, ignore)
    if row.expect == "fail":
        assert row.conform_exit == 1 or all(row.levels.get(c) != "must" for c in row.breaks)


def test_baseline_has_no_must_failure(matrix: dict[str, Row]) -> None:
    baseline = matrix[BASELINE]
    assert baseline.conform_exit == 0, explain(baseline, set())
    assert all(baseline.levels[c] != "must" for c in baseline.failing())


def test_matrix_doc_exists() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "kill-matrix.md"
    assert "Kill matrix" in doc.read_text(encoding="utf-8")
