# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness passes a correct generic client and catches each planted bug on its scenario."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from dualstore_conformance.client_suite import runner
from dualstore_conformance.client_suite.launcher import describe
from dualstore_conformance.client_suite.scenarios import load_all
from dualstore_conformance.client_suite.verdicts import Verdict

TOY = Path(__file__).with_name("toy_client.py")
SCENARIOS = {scenario.id: scenario for scenario in load_all()}

# planted bug -> the scenario that must catch it (and what the message must say)
KILLS = {
    "ignore-retry": ("retry-is-a-lower-bound", "expected at least 3500 ms"),
    "drop-cr": ("cr-line-endings", "delivered 0 of 2 expected events"),
    "no-last-event-id": ("last-event-id-sent", "Last-Event-ID"),
    "dispatch-blank": ("block-without-data", "extra: 'message'"),
}


def _command(broken: str | None) -> str:
    argv = [sys.executable, str(TOY)] + (["--break", broken] if broken else [])
    return shlex.join(argv)


@pytest.mark.parametrize("scenario_id", sorted({kill[0] for kill in KILLS.values()}))
def test_correct_client_passes(scenario_id: str) -> None:
    command = _command(None)
    hello = describe(command, "http://127.0.0.1:9/", 60)
    report = runner.run_all(command, hello, [SCENARIOS[scenario_id]])
    result = report.results[0]
    assert result.verdict is Verdict.PASSED, result.message


@pytest.mark.parametrize("broken", sorted(KILLS))
def test_broken_client_fails_its_scenario(broken: str) -> None:
    scenario_id, says = KILLS[broken]
    command = _command(broken)
    hello = describe(command, "http://127.0.0.1:9/", 60)
    report = runner.run_all(command, hello, [SCENARIOS[scenario_id]])
    result = report.results[0]
    assert result.verdict is Verdict.FAILED, (broken, result.verdict, result.message)
    assert says in result.message
    assert report.exit_code() == 1
