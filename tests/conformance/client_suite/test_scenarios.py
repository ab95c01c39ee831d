# SPDX-License-Identifier: GPL-3.0-or-later
"""The scenario meta-schema, the bundled scenarios, and their agreement with the judge's parser."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml
from dualstore_conformance.client_suite import scenarios
from dualstore_conformance.client_suite.scenarios import ScenarioError, load_all, validate_document
from dualstore_sse import parse

FOLDER = resources.files("dualstore_conformance.client_suite") / "scenarios"


def _document(group: str) -> dict[str, Any]:
    value: dict[str, Any] = yaml.safe_load((FOLDER / f"{group}.yaml").read_text("utf-8"))
    return value


def test_meta_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(scenarios.meta_schema())


def test_bundled_scenarios_load_with_unique_ids() -> None:
    found = load_all()
    assert len(found) == len({scenario.id for scenario in found})
    assert {scenario.group for scenario in found} == set(scenarios.GROUPS)


def test_issue_coverage_is_present() -> None:
    ids = {scenario.id for scenario in load_all()}
    wanted = {
        "lf-line-endings", "crlf-line-endings", "cr-line-endings", "mixed-line-endings",
        "bom-stripped", "comments-ignored", "field-without-colon", "no-space-after-colon",
        "multi-line-data", "data-split-across-chunks", "crlf-split-across-chunks",
        "utf8-split-across-chunks", "invalid-utf8-replaced", "unknown-field-ignored",
        "unknown-event-type", "id-with-nul-ignored", "empty-id-resets", "retry-invalid-ignored",
        "retry-is-a-lower-bound", "block-without-data", "incomplete-final-block",
        "long-line-1mib", "reconnect-after-close", "last-event-id-sent",
        "last-event-id-not-after-reset", "backoff-on-failures", "stop-on-204", "fail-on-500",
        "fail-on-wrong-content-type", "redirect-followed", "heartbeat-only-stream",
        "dualstore-resume-after-drop", "dualstore-no-duplicate-after-reconnect",
        "dualstore-heartbeat-keeps-last-id", "dualstore-filter-encoding",
        "dualstore-auth-on-stream",
    }
    assert wanted <= ids


def _broken(mutate: Any) -> dict[str, Any]:
    document = copy.deepcopy(_document("framing"))
    mutate(document["scenarios"][0])
    return document


@pytest.mark.parametrize("mutate, says", [
    (lambda s: s.pop("expect"), "'expect' is a required property"),
    (lambda s: s.update(cite=["RFC 2119"]), "cite"),
    (lambda s: s.update(level="MUSTN'T"), "level"),
    (lambda s: s.update(profiles=["websocket"]), "profiles"),
    (lambda s: s["connections"][0]["body"].append({"hex": "zz"}), "body"),
    (lambda s: s["connections"][0]["body"].append({"text": "a", "delay_ms": 5}), "body"),
    (lambda s: s["connections"][0].update(end="linger"), "end"),
    (lambda s: s.update(surprise=True), "Additional properties"),
    (lambda s: s["expect"].update(reconnect_delays=[{"before": 2, "min_ms": 10}]),
     "tolerance_ms"),
])
def test_meta_schema_rejects_malformed_scenarios(mutate: Any, says: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        validate_document(_broken(mutate), "framing.yaml")
    assert says in str(caught.value)


def test_duplicate_ids_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (FOLDER / "framing.yaml").read_text("utf-8")
    monkeypatch.setattr(scenarios, "GROUPS", ("framing",))
    real = scenarios.load_text
    monkeypatch.setattr(scenarios, "load_text", lambda t, n: real(text, n) * 2)
    with pytest.raises(ScenarioError, match="used twice"):
        load_all()


def _single_stream(scenario: scenarios.Scenario) -> bool:
    first = scenario.connections[0]
    return (first.status == 200 and first.headers.get("Content-Type", "").startswith(
        "text/event-stream") and scenario.expect.get("events") is not None)


@pytest.mark.parametrize("scenario", [s for s in load_all() if s.group == "framing"],
                         ids=lambda s: s.id)
def test_framing_expectations_agree_with_the_whatwg_parser(scenario: scenarios.Scenario) -> None:
    """The expected events are what the judge's own WHATWG parser makes of the bytes."""
    assert _single_stream(scenario)
    chunks = [step.data for step in scenario.connections[0].steps if step.data]
    events = [e for e in parse(chunks) if e.type in scenario.listen]
    expected = scenario.expect["events"]
    assert len(events) == len(expected)
    for event, want in zip(events, expected, strict=True):
        assert event.type == want["type"]
        if "data" in want:
            assert event.data == want["data"]
        if "data_length" in want:
            assert len(event.data) == want["data_length"]
        if "last_event_id" in want:
            assert event.last_event_id == want["last_event_id"]


def test_cited_rule_ids_exist_in_the_spec() -> None:
    """A scenario citing a spec rule names one that spec/rules.yaml defines."""
    import dualstore_spec

    known = set(dualstore_spec.rules_by_id())
    cited = {c for s in load_all() for c in s.cite if not c.startswith("https://")}
    assert cited and cited <= known, sorted(cited - known)


def test_every_scenario_cites_whatwg_or_a_rule_and_applies_to_someone() -> None:
    for scenario in load_all():
        assert scenario.cite and scenario.profiles
        if scenario.group == "dualstore":
            assert scenario.profiles == ["dualstore"]
            assert any(not c.startswith("https://") for c in scenario.cite)
