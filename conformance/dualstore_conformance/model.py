# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness's data model: the target under test, and what a check reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of one check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


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
    heartbeat_seconds: float = 15.0
    timeout_multiplier: float = 1.0
    heartbeat_explicit: bool = False
    """True when the user declared heartbeat_seconds (--heartbeat-seconds) for this target."""
    cors_origin: str | None = None
    """An origin on the target's CORS allow-list (--cors-origin); None: the environment's,
    and without either the allowed-origin CORS checks are skipped."""


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
