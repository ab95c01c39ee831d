# SPDX-License-Identifier: GPL-3.0-or-later
"""Spec 1.1 decisions: deployment profiles, precedence, implementation-defined list, new rules."""

from __future__ import annotations

from typing import Any

import dualstore_spec
import jsonschema
import pytest

PROFILE_SCHEMA = "deployment-profile.schema.json"


def _profile_validator() -> jsonschema.Draft202012Validator:
    schema = dualstore_spec.meta_schema(PROFILE_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


GOOD_PROFILES: list[dict[str, Any]] = [
    {},
    {"stream_cap_per_ip": 20, "rate_limit": {"requests_per_second": 10, "burst": 20}},
    {"rate_limit": None},
    {"rate_limit": {"requests_per_second": 0.5, "burst": 1}},
    {"heartbeat_seconds": 0.5, "retry_ms": 0, "subscriber_queue_size": 1},
    {"cors_origins": ["https://app.example", "http://localhost:5173", "http://[::1]:8080"]},
]
BAD_PROFILES: list[tuple[dict[str, Any], str]] = [
    ({"stream_cap": 20}, "stream_cap"),  # a typo is refused, not ignored
    ({"stream_cap_per_ip": 0}, "minimum"),
    ({"stream_cap_per_ip": 2.5}, "integer"),
    ({"rate_limit": {"requests_per_second": 10}}, "rate_limit"),
    ({"rate_limit": {"requests_per_second": 0, "burst": 5}}, "rate_limit"),
    ({"rate_limit": {"requests_per_second": 10, "burst": 5, "window": 1}}, "rate_limit"),
    ({"heartbeat_seconds": 0}, "heartbeat_seconds"),
    ({"retry_ms": -1}, "retry_ms"),
    ({"cors_origins": ["https://app.example/"]}, "does not match"),
    ({"cors_origins": ["*"]}, "does not match"),
    ({"cors_origins": "https://app.example"}, "array"),
    ({"max_body_bytes": 131072}, "max_body_bytes"),  # the body cap is not configurable
]


@pytest.mark.parametrize("profile", GOOD_PROFILES)
def test_profile_schema_accepts(profile: dict[str, Any]) -> None:
    assert [e.message for e in _profile_validator().iter_errors(profile)] == []


@pytest.mark.parametrize(("profile", "message"), BAD_PROFILES)
def test_profile_schema_refuses(profile: dict[str, Any], message: str) -> None:
    errors = [
        f"{list(e.absolute_path)} {e.message}" for e in _profile_validator().iter_errors(profile)
    ]
    assert errors, f"{profile} was accepted"
    assert any(message in error for error in errors), errors


def test_profile_keys_are_the_configurable_values_with_the_spec_defaults() -> None:
    values = dualstore_spec.openapi()["x-dualstore-configurable"]["values"]
    properties = dualstore_spec.meta_schema(PROFILE_SCHEMA)["properties"]
    assert set(values) == set(properties)
    limits = dualstore_spec.openapi()["x-dualstore-limits"]
    contract = dualstore_spec.sse_contract()
    assert values["stream_cap_per_ip"]["default"] == limits["stream_cap_per_ip"]
    assert values["rate_limit"]["default"] == {
        "requests_per_second": limits["rate_limit"]["requests_per_second"],
        "burst": limits["rate_limit"]["burst"],
    }
    assert values["heartbeat_seconds"]["default"] == contract["x-heartbeat"]["default_seconds"]
    assert values["retry_ms"]["default"] == contract["x-on-open"]["retry_ms"]
    assert (
        values["subscriber_queue_size"]["default"]
        == (contract["x-slow-consumer"]["buffer_events_default"])
    )
    assert values["cors_origins"]["default"] == []


def _wins() -> dict[str, list[str]]:
    wins: dict[str, list[str]] = dualstore_spec.openapi()["x-dualstore-http"]["precedence"]["wins"]
    return wins


def test_precedence_is_a_consistent_order() -> None:
    """Following `wins` never leads back to where it started (no cycle, so one answer wins)."""
    wins = _wins()

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(wins.get(start, []))
        while todo:
            slug = todo.pop()
            if slug not in seen:
                seen.add(slug)
                todo.extend(wins.get(slug, []))
        return seen

    assert [slug for slug in wins if slug in reachable(slug)] == []


@pytest.mark.parametrize(
    ("winner", "loser"),
    [
        ("unauthorized", "unknown-collection"),
        ("unauthorized", "not-found"),
        ("unauthorized", "unsupported-media-type"),
        ("unauthorized", "invalid-filter"),
        ("unauthorized", "validation-failed"),
        ("unknown-collection", "unsupported-media-type"),
        ("unknown-collection", "invalid-request"),
        ("unknown-collection", "validation-failed"),
        ("payload-too-large", "invalid-json"),
        ("payload-too-large", "validation-failed"),
        ("unsupported-media-type", "invalid-json"),
        ("invalid-json", "validation-failed"),
        ("invalid-request", "validation-failed"),
    ],
)
def test_precedence_states_what_http_015_says(winner: str, loser: str) -> None:
    assert loser in _wins()[winner]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("payload-too-large", "unauthorized"),  # a front proxy may enforce the body cap
        ("payload-too-large", "unsupported-media-type"),
        ("method-not-allowed", "unauthorized"),
        ("rate-limited", "unauthorized"),
    ],
)
def test_pairs_left_to_implementations_are_not_ordered(first: str, second: str) -> None:
    wins = _wins()
    assert second not in wins.get(first, []) and first not in wins.get(second, [])


def test_implementation_defined_items_offer_alternatives() -> None:
    items = dualstore_spec.openapi()["x-dualstore-implementation-defined"]["items"]
    assert {
        "auth-on-undefined-routes",
        "json-byte-order-mark",
        "json-duplicate-names",
        "plain-options",
        "oversize-request",
    } <= set(items)
    for name, item in items.items():
        assert isinstance(item["when"], str) and item["when"], name
        assert len(item["alternatives"]) >= 2, name


NEW_RULES = {
    "SSE-HEARTBEAT-004": "MUST",
    "SSE-RESUME-010": "MUST",
    "SSE-RESUME-011": "MUST",
    "SSE-RESUME-012": "MUST",
    "SSE-RESUME-013": "MUST",
    "SSE-RESUME-014": "MUST",
    "AUTH-007": "MUST",
    "AUTH-008": "MUST",
    "FILTER-011": "MUST",
    "FILTER-012": "MUST",
    "FILTER-013": "MUST",
    "READ-007": "MUST",
    "READ-008": "MUST",
    "WRITE-010": "MUST",
    "WRITE-011": "MUST",
    "WRITE-012": "MUST",
    "WRITE-013": "MUST",
    "CORS-005": "MUST",
    "LIMIT-006": "MUST",
    "LIMIT-007": "MAY",
    "LIMIT-008": "MUST",
    "LIMIT-009": "MUST",
    "HTTP-015": "MUST",
    "HTTP-016": "MUST",
    "HTTP-017": "MUST",
    "HTTP-018": "MUST",
    "HTTP-019": "MUST",
    "HTTP-020": "MUST",
    "HTTP-021": "MAY",
    "HTTP-022": "MUST",
    "SSE-FRAME-010": "MAY",
    "CONFIG-001": "MUST",
}


def test_the_new_rules_exist_with_their_levels() -> None:
    rules = dualstore_spec.rules_by_id()
    assert {rule_id: rules[rule_id]["level"] for rule_id in NEW_RULES if rule_id in rules} == (
        NEW_RULES
    )


def test_a_heartbeat_never_carries_an_id() -> None:
    statement = dualstore_spec.rules_by_id()["SSE-HEARTBEAT-001"]["statement"]
    assert "not an empty one and not one equal to the last event id" in statement
    heartbeat = dualstore_spec.openapi()["components"]["schemas"]["HeartbeatEvent"]
    assert heartbeat["not"] == {"required": ["id"]}


def test_the_body_cap_is_not_configurable() -> None:
    values = dualstore_spec.openapi()["x-dualstore-configurable"]["values"]
    assert "max_body_bytes" not in values
