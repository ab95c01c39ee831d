# SPDX-License-Identifier: GPL-3.0-or-later
"""Rules coverage: which spec rules each check proves, and which rules nothing covers."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from dualstore_conformance.registry import load_all


@dataclass
class Coverage:
    """Rule id -> what covers it."""

    checks: dict[str, list[str]] = field(default_factory=dict)
    """rule id -> registered protocol check ids citing it"""
    property_checks: dict[str, list[str]] = field(default_factory=dict)
    """rule id -> Schemathesis checks (property layer) whose failure breaks it"""
    not_checkable: dict[str, str] = field(default_factory=dict)
    """rule id -> the reason rules.yaml gives"""
    uncovered: list[str] = field(default_factory=list)
    """rules with no check and no not_checkable reason"""
    unknown: dict[str, list[str]] = field(default_factory=dict)
    """cited rule ids that rules.yaml does not define -> citing checks"""

    @property
    def contradictions(self) -> dict[str, list[str]]:
        """Rules marked not_checkable that a check nevertheless claims to prove."""
        return {r: self.checks[r] for r in self.not_checkable if r in self.checks}


def spec_rules() -> list[dict[str, Any]]:
    """Every rule of spec/rules.yaml."""
    rules: list[dict[str, Any]] = importlib.import_module("dualstore_spec").rules()
    return rules


def property_rules() -> dict[str, tuple[str, ...]]:
    """Schemathesis check name -> rules (from the property module, when present)."""
    try:
        module = importlib.import_module("dualstore_conformance.property")
    except ImportError:
        return {}
    value = getattr(module, "CHECK_RULES", {})
    return {str(k): tuple(v) for k, v in value.items()} if isinstance(value, dict) else {}


def compute() -> Coverage:
    """Coverage of the spec's rules by the registered checks and the property layer."""
    rules = spec_rules()
    defined = {rule["id"] for rule in rules}
    result = Coverage()
    for spec in load_all().values():
        for rule in spec.rules:
            target = result.checks if rule in defined else result.unknown
            target.setdefault(rule, []).append(spec.id)
    for name, cited in property_rules().items():
        for rule in cited:
            if rule in defined:
                result.property_checks.setdefault(rule, []).append(name)
            else:
                result.unknown.setdefault(rule, []).append(f"property:{name}")
    for entry in rules:
        rule_id = entry["id"]
        reason = entry.get("not_checkable")
        if reason:
            result.not_checkable[rule_id] = str(reason)
        if rule_id not in result.checks and rule_id not in result.property_checks and not reason:
            result.uncovered.append(rule_id)
    return result


def main() -> int:
    """Print the coverage table; exit 1 when a rule is uncovered or a cited id is unknown."""
    coverage = compute()
    for rule in spec_rules():
        rule_id = rule["id"]
        by = coverage.checks.get(rule_id, []) + [
            f"property:{n}" for n in coverage.property_checks.get(rule_id, [])
        ]
        if by:
            print(f"{rule_id:18} {', '.join(by)}")
        elif rule_id in coverage.not_checkable:
            print(f"{rule_id:18} not checkable: {coverage.not_checkable[rule_id]}")
        else:
            print(f"{rule_id:18} UNCOVERED")
    for rule_id, cited_by in coverage.unknown.items():
        print(f"unknown rule {rule_id} cited by {', '.join(cited_by)}")
    for rule_id, cited_by in coverage.contradictions.items():
        print(f"{rule_id} is marked not_checkable but cited by {', '.join(cited_by)}")
    failed = coverage.uncovered or coverage.unknown or coverage.contradictions
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
