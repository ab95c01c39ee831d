# SPDX-License-Identifier: GPL-3.0-or-later
"""A run's model: its configuration, progress notifications and the report with its verdict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualstore_conformance.model import CheckResult, Level, Status, Target, Verdict
from dualstore_conformance.profile import spec_defaults


@dataclass
class RunConfig:
    """What to run and how."""

    target: Target
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    level: Level = Level.MAY
    seed: int | None = None
    max_examples: int = 25
    workers: int = 8
    property_layer: bool = True
    heartbeat_from_health: bool = True
    """When True and the target's health reports heartbeat_seconds, use it (the flag wins)."""

    def knobs(self) -> dict[str, Any]:
        """Every setting of the run that is not the deployment profile (for the report)."""
        return {
            "only": list(self.only),
            "skip": list(self.skip),
            "level": self.level.value,
            "max_examples": self.max_examples,
            "workers": self.workers,
            "property_layer": self.property_layer,
            "timeout_multiplier": self.target.timeout_multiplier,
            "timeout_multiplier_scope": "the harness's own waits only; never a limit the "
                                        "spec states",
            "heartbeat_from_health": self.heartbeat_from_health,
            "token": "given" if self.target.token else "none",
            "cors_origin": self.target.cors_origin,
        }


@dataclass
class Progress:
    """One progress notification: a check started or finished, or a periodic tick."""

    kind: str
    """"start", "finish", "tick" or "stage"."""
    check_id: str = ""
    result: CheckResult | None = None
    done: int = 0
    total: int = 0
    running: dict[str, float] = field(default_factory=dict)
    """check id -> monotonic start time of every running check."""
    message: str = ""


ProgressCallback = Callable[[Progress], None]


def status_counts(results: Iterable[CheckResult]) -> dict[str, int]:
    """Counts of results per status (keys: passed, failed, skipped, errors)."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    for result in results:
        key = "errors" if result.status is Status.ERROR else result.status.value
        counts[key] += 1
    return counts


@dataclass
class RunReport:
    """Everything the reporters need."""

    target: str
    started_at: str
    duration_s: float
    spec_version: str
    seed: int
    results: list[CheckResult]
    collection: str = ""
    heartbeat_seconds: float = 0.0
    profile: dict[str, Any] = field(default_factory=lambda: spec_defaults().as_dict())
    """The deployment profile the run judged against (DeploymentProfile.as_dict)."""
    knobs: dict[str, Any] = field(default_factory=dict)
    """Every other setting of the run (RunConfig.knobs)."""

    def summary(self) -> dict[str, int]:
        """Counts per status (keys: passed, failed, skipped, errors)."""
        return status_counts(self.results)

    def verdicts(self) -> dict[str, int]:
        """Counts per verdict class (passed, failed, non-strict, informational, not-judged,
        error)."""
        counts = {verdict.value: 0 for verdict in Verdict}
        for result in self.results:
            counts[result.verdict.value] += 1
        return counts

    def judged(self) -> list[CheckResult]:
        """Results of checks that ran to a verdict (everything but not-judged)."""
        return [r for r in self.results if r.verdict is not Verdict.NOT_JUDGED]

    def blocking(self) -> list[CheckResult]:
        """MUST checks that failed or could not observe: each one denies conformance."""
        return [r for r in self.results
                if r.level is Level.MUST and r.verdict in (Verdict.FAILED, Verdict.ERROR)]

    def must_not_judged(self) -> list[CheckResult]:
        """MUST checks left unjudged (each with its reason): the verdict line names them."""
        return [r for r in self.results
                if r.level is Level.MUST and r.verdict is Verdict.NOT_JUDGED]

    def conforms(self) -> bool:
        """Every judged MUST check held, and at least one check was judged."""
        return bool(self.judged()) and not self.blocking()

    def verdict_line(self) -> str:
        """"conforms" or "DOES NOT CONFORM", with what was left unjudged and why."""
        if not self.judged():
            return "NOTHING JUDGED (no check ran to a verdict)"
        head = "conforms" if self.conforms() else "DOES NOT CONFORM"
        if not self.conforms():
            head += f" ({len(self.blocking())} MUST check(s) failed or could not observe)"
        unjudged = self.must_not_judged()
        if unjudged:
            reasons: dict[str, list[str]] = {}
            for result in unjudged:
                why = result.not_judged.value if result.not_judged else "not-judged"
                reasons.setdefault(why, []).append(result.id)
            named = "; ".join(f"{why}: {', '.join(ids)}" for why, ids in sorted(reasons.items()))
            head += f"; MUST checks not judged ({len(unjudged)}): {named}"
        return head

    def exit_code(self) -> int:
        """0 conforms, 1 a MUST check failed or could not observe, 2 nothing was judged."""
        if not self.judged():
            return 2
        return 0 if self.conforms() else 1
