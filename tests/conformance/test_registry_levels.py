# SPDX-License-Identifier: GPL-3.0-or-later
"""A check's level comes from the spec: the level rules.yaml gives its first rule."""

from __future__ import annotations

import dualstore_spec
import pytest
from dualstore_conformance.model import Level
from dualstore_conformance.registry import first_rule_level, load_all


def test_every_check_has_its_first_rules_level() -> None:
    rules = dualstore_spec.rules_by_id()
    for spec in load_all().values():
        assert spec.level == Level(rules[spec.rules[0]]["level"]), spec.id


def test_levels_follow_the_spec_rule() -> None:
    rules = dualstore_spec.rules_by_id()
    by_level = {level: next(r for r in rules if rules[r]["level"] == level.value)
                for level in Level}
    for level, rule in by_level.items():
        assert first_rule_level("probe", [rule, "HTTP-001"]) is level


@pytest.mark.parametrize("rules", [[], ["NO-SUCH-RULE-999"]])
def test_a_check_without_a_known_first_rule_is_refused(rules: list[str]) -> None:
    with pytest.raises(ValueError, match="cites no rule of the spec first"):
        first_rule_level("probe", rules)
