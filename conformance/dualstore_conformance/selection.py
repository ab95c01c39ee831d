# SPDX-License-Identifier: GPL-3.0-or-later
"""Which checks a run judges: --only / --skip (ids, id prefixes, rule ids) and --level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dualstore_conformance.model import Level
from dualstore_conformance.registry import CheckSpec

PROPERTY_STAGE_ID = "property"
"""Selection id of the Schemathesis layer (its results have ids starting with it)."""

LEVEL_ORDER = {Level.MUST: 0, Level.SHOULD: 1, Level.MAY: 2}


class SelectionError(Exception):
    """--only / --skip select nothing or name something unknown (exit code 2)."""


def matches(spec_id: str, rules: Iterable[str], token: str) -> bool:
    token = token.strip()
    if not token:
        return False
    if spec_id == token or spec_id.startswith(token.lower()):
        return True
    upper = token.upper()
    return any(rule == upper or rule.startswith(upper.rstrip("-") + "-") for rule in rules)


def split_ids(values: Sequence[str] | str | None) -> list[str]:
    """Flatten CSV / repeated option values into ids."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def select(
    specs: dict[str, CheckSpec],
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    level: Level = Level.MAY,
) -> list[CheckSpec]:
    """The checks chosen by --only, --skip (ids, id prefixes, rule ids) and --level."""
    known_rule_ids = {rule for spec in specs.values() for rule in spec.rules}
    for token in [*only, *skip]:
        if token.startswith(PROPERTY_STAGE_ID):
            continue
        if not any(matches(s.id, s.rules, token) for s in specs.values()):
            hint = "rule" if token.upper() in known_rule_ids else "check id, prefix or rule id"
            raise SelectionError(f"{token!r} matches no {hint}")
    chosen = []
    for spec in sorted(specs.values(), key=lambda s: s.id):
        if only and not any(matches(spec.id, spec.rules, t) for t in only):
            continue
        if any(matches(spec.id, spec.rules, t) for t in skip):
            continue
        if LEVEL_ORDER[spec.level] > LEVEL_ORDER[level]:
            continue
        chosen.append(spec)
    return chosen


def property_selected(only: Sequence[str], skip: Sequence[str]) -> bool:
    """Whether the Schemathesis stage runs under this selection."""
    if any(PROPERTY_STAGE_ID.startswith(t) or t.startswith(PROPERTY_STAGE_ID) for t in skip):
        return False
    if only:
        return any(PROPERTY_STAGE_ID.startswith(t) or t.startswith(PROPERTY_STAGE_ID)
                   for t in only)
    return True
