# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness's data model: the target under test, and what a check reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from dualstore_spec import facts as spec_facts

if TYPE_CHECKING:
    from dualstore_conformance.profile import DeploymentProfile


class Status(StrEnum):
    """Outcome of one check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


class Verdict(StrEnum):
    """The verdict class of one check (after Autobahn|Testsuite, h2spec and graphql-http)."""

    PASSED = "passed"
    """Observed, and the rule held."""
    FAILED = "failed"
    """A MUST rule was broken."""
    NON_STRICT = "non-strict"
    """A SHOULD rule was broken."""
    INFORMATIONAL = "informational"
    """A MAY behaviour was absent: reported, never judged against the target."""
    NOT_JUDGED = "not-judged"
    """Not run or not decidable by choice: see ``NotJudged`` for why."""
    ERROR = "error"
    """Could not observe what the check needs, or the harness failed: never a pass."""


class NotJudged(StrEnum):
    """Why a check was not judged."""

    NOT_SELECTED = "not-selected"
    """Left out by --only, --skip or --level."""
    NOT_CONFIGURED = "not-configured"
    """The run was not given what the check needs (a token, an allowed CORS origin) or the
    deployment profile declares the feature off."""
    NOT_APPLICABLE = "not-applicable"
    """The spec makes the feature optional and the target showed it does not offer it."""


class Level(StrEnum):
    """RFC 2119 level of a rule (and of the check that proves it)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@dataclass(frozen=True)
class Target:
    """The implementation under test and how to talk to it."""

    url: str
    """Base URL without the /v1 suffix, e.g. http://127.0.0.1:4261"""
    token: str | None = None
    collection: str | None = None
    heartbeat_seconds: float = field(
        default_factory=lambda: spec_facts.current().heartbeat.default_seconds
    )
    """The target's heartbeat interval H (default: the spec's default interval)."""
    timeout_multiplier: float = 1.0
    heartbeat_explicit: bool = False
    """True when the user declared heartbeat_seconds (--heartbeat-seconds) for this target."""
    cors_origin: str | None = None
    """An origin on the target's CORS allow-list (--cors-origin); None: the environment's,
    and without either the allowed-origin CORS checks are skipped."""
    profile: DeploymentProfile | None = None
    """What the deployment configured where the spec lets it (None: the spec's defaults)."""


@dataclass
class Failure:
    """Why a check failed: fixed title, expected / received, evidence and a reproduction."""

    title: str
    expected: str
    received: str
    rules: list[str]
    severity: str = "high"
    evidence: dict[str, Any] = field(default_factory=dict)
    reproduce: str = ""
    """A command a person can paste (usually curl)."""


@dataclass
class CheckResult:
    """One check's outcome as reported in console, JSON, JUnit and HTML."""

    id: str
    title: str
    level: Level
    rules: list[str]
    status: Status
    duration_s: float = 0.0
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    reproduce: str = ""
    not_judged: NotJudged | None = None
    """Why the check was not judged (status skipped); None otherwise."""

    @property
    def verdict(self) -> Verdict:
        """The verdict class: the status read against the check's level."""
        if self.status is Status.PASSED:
            return Verdict.PASSED
        if self.status is Status.ERROR:
            return Verdict.ERROR
        if self.status is Status.SKIPPED:
            return Verdict.NOT_JUDGED
        if self.level is Level.SHOULD:
            return Verdict.NON_STRICT
        if self.level is Level.MAY:
            return Verdict.INFORMATIONAL
        return Verdict.FAILED
