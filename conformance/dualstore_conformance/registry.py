# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks keyed by ID: the ``@check`` decorator and the registered ``CheckSpec``s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dualstore_spec

from dualstore_conformance.model import Level

if TYPE_CHECKING:
    from dualstore_conformance.context import CheckContext

HEARTBEAT_WAIT = "heartbeat-wait"
"""Check tag: the check waits for heartbeats; its timeout grows by 3 intervals."""

CheckFunction = Callable[["CheckContext"], Awaitable[None]]


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: one behaviour, citing the rules it proves."""

    id: str
    title: str
    level: Level
    rules: tuple[str, ...]
    function: CheckFunction
    timeout_s: float = 30.0
    """Budget before multiplying by --timeout-multiplier."""
    tags: tuple[str, ...] = field(default_factory=tuple)
    exclusive: bool = False
    """Run alone (e.g. the per-IP stream cap, which other checks' streams would disturb)."""


REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str,
    title: str,
    rules: list[str],
    /,
    *,
    level: Level | None = None,
    timeout_s: float = 30.0,
    tags: tuple[str, ...] = (),
    exclusive: bool = False,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register an async check function: ``@check(id, title, rules, ...)``, the three always
    given in that order, the rest by name. Its level is its first rule's level in the spec
    unless given."""

    def register(function: CheckFunction) -> CheckFunction:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = CheckSpec(
            id=id,
            title=title,
            level=first_rule_level(id, rules) if level is None else level,
            rules=tuple(rules),
            function=function,
            timeout_s=timeout_s,
            tags=tags,
            exclusive=exclusive,
        )
        return function

    return register


def first_rule_level(check_id: str, rules: list[str]) -> Level:
    """The spec's level (rules.yaml) of the first rule a check cites."""
    rule = dualstore_spec.rules_by_id().get(rules[0]) if rules else None
    if rule is None:
        raise ValueError(f"check {check_id} cites no rule of the spec first: {rules}")
    return Level(rule["level"])


def load_all() -> dict[str, CheckSpec]:
    """Import every module of dualstore_conformance.checks so they register; return REGISTRY."""
    import importlib
    import pkgutil

    from dualstore_conformance import checks

    for module in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"{checks.__name__}.{module.name}")
    return REGISTRY
