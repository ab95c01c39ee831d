# SPDX-License-Identifier: GPL-3.0-or-later
"""Every spec rule is covered by a check (or the property layer) or marked not_checkable."""

from __future__ import annotations

from dualstore_conformance import coverage
from dualstore_conformance.registry import load_all


def test_every_rule_is_covered_or_not_checkable() -> None:
    result = coverage.compute()
    assert result.uncovered == [], f"rules without a check or not_checkable: {result.uncovered}"


def test_checks_cite_only_defined_rules() -> None:
    result = coverage.compute()
    assert result.unknown == {}, f"cited rules that rules.yaml does not define: {result.unknown}"


def test_not_checkable_rules_give_a_reason_and_no_check_claims_them() -> None:
    result = coverage.compute()
    for rule_id, reason in result.not_checkable.items():
        assert len(reason.strip()) > 10, rule_id
    assert result.contradictions == {}, "not_checkable rules cited by checks"


def test_every_check_cites_at_least_one_rule() -> None:
    assert [spec.id for spec in load_all().values() if not spec.rules] == []
