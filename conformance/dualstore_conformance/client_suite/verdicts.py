# SPDX-License-Identifier: GPL-3.0-or-later
"""Verdict classes of one scenario run, and the whole run's report and exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The verdict classes shared with ``dualstore conform``."""

    PASSED = "passed"
    FAILED = "failed"
    """A MUST did not hold."""
    NON_STRICT = "non-strict"
    """A SHOULD did not hold."""
    INFORMATIONAL = "informational"
    """A MAY (optional behaviour) was not seen: recorded, never a failure."""
    NOT_JUDGED = "not-judged"
    """The scenario does not apply to this client, or it could not run here (with reason)."""
    ERROR = "error"
    """Could not observe (the adapter crashed, the harness broke)."""


SUMMARY_KEYS = {
    Verdict.PASSED: "passed", Verdict.FAILED: "failed", Verdict.NON_STRICT: "non_strict",
    Verdict.INFORMATIONAL: "informational", Verdict.NOT_JUDGED: "not_judged",
    Verdict.ERROR: "errors",
}


def for_level(level: str) -> Verdict:
    """The verdict of a scenario whose expectation did not hold, by its RFC 2119 level."""
    return {"MUST": Verdict.FAILED, "SHOULD": Verdict.NON_STRICT}.get(level, Verdict.INFORMATIONAL)


@dataclass
class ScenarioResult:
    """One scenario's outcome, as every report shows it."""

    id: str
    title: str
    group: str
    level: str
    rules: list[str]
    verdict: Verdict
    duration_s: float = 0.0
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    reproduce: str = ""


@dataclass
class ClientReport:
    """The whole run against one client."""

    adapter: str
    client: dict[str, Any]
    started_at: str
    duration_s: float
    results: list[ScenarioResult]

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(SUMMARY_KEYS.values(), 0)
        for result in self.results:
            counts[SUMMARY_KEYS[result.verdict]] += 1
        return counts

    def exit_code(self) -> int:
        """0: every MUST scenario that applies was observed and held; 1 otherwise."""
        for result in self.results:
            if result.level == "MUST" and result.verdict in (Verdict.FAILED, Verdict.ERROR):
                return 1
        return 0
