# SPDX-License-Identifier: GPL-3.0-or-later
"""One scenario's verdict (the harness's verdict classes) and the run's report and exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dualstore_conformance.model import NotJudged, Verdict

__all__ = ["STATUS", "ClientReport", "NotJudged", "ScenarioResult", "Verdict", "for_level"]


STATUS = {
    Verdict.PASSED: "passed", Verdict.FAILED: "failed", Verdict.NON_STRICT: "failed",
    Verdict.INFORMATIONAL: "failed", Verdict.NOT_JUDGED: "skipped", Verdict.ERROR: "error",
}
"""The older status field, as ``dualstore conform``'s report keeps it beside the verdict."""


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
    not_judged: NotJudged | None = None
    """Why, when the verdict is not-judged."""
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
        """Counts per status (passed, failed, skipped, errors), as ``conform`` reports them."""
        counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
        for result in self.results:
            status = STATUS[result.verdict]
            counts["errors" if status == "error" else status] += 1
        return counts

    def verdicts(self) -> dict[str, int]:
        """Counts per verdict class, keyed as in ``dualstore conform``'s report."""
        counts = {verdict.value: 0 for verdict in Verdict}
        for result in self.results:
            counts[result.verdict.value] += 1
        return counts

    def judged(self) -> list[ScenarioResult]:
        return [r for r in self.results if r.verdict is not Verdict.NOT_JUDGED]

    def blocking(self) -> list[ScenarioResult]:
        """MUST scenarios that failed or could not be observed."""
        return [r for r in self.results
                if r.level == "MUST" and r.verdict in (Verdict.FAILED, Verdict.ERROR)]

    def conforms(self) -> bool:
        """Every judged MUST scenario held, and at least one scenario was judged."""
        return bool(self.judged()) and not self.blocking()

    def verdict_line(self) -> str:
        if not self.judged():
            return "NOTHING JUDGED (no scenario ran to a verdict)"
        if self.conforms():
            return "conforms"
        return (f"DOES NOT CONFORM ({len(self.blocking())} MUST scenario(s) failed or could "
                "not observe)")

    def exit_code(self) -> int:
        """0 conforms, 1 a MUST scenario failed or could not be observed, 2 nothing judged."""
        if not self.judged():
            return 2
        return 0 if self.conforms() else 1
