# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks for spec 1.1 rules HTTP-015, HTTP-018, HTTP-021, WRITE-011, WRITE-012, FILTER-013,
LIMIT-009, SSE-RESUME-011, SSE-RESUME-012, SSE-RESUME-014: their probes and predicates, a
clean pass against the reference.

The kill matrix proves each fails against the mutant of its rule (catalogue rows
rest-collection-before-auth, rest-head-always-200, rest-key-utf16-length,
rest-nested-key-unchecked, rest-deep-body-500, rest-filter-instant-unrounded,
sec-ratelimit-policy-wrong, sse-resume-token-overflow-500, sse-since-filters-live,
sse-resume-token-names-collection).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from dualstore_conformance import judging, runner
from dualstore_conformance.checks import characters, http_head, precedence, write_nesting
from dualstore_conformance.limits import spec_limits
from dualstore_conformance.model import CheckResult, NotJudged, Status, Target, Verdict
from dualstore_conformance.profile import from_mapping, parse_rate_limit, spec_defaults
from dualstore_conformance.run_model import RunConfig
from dualstore_spec import facts

CHECKS = [
    "http-precedence",
    "http-characters-code-points",
    "http-head",
    "write-metadata-key-nested",
    "write-deep-body",
    "filter-sub-millisecond-instants",
    "sse-resume-never-issued",
    "sse-resume-since-live-unfiltered",
    "sse-resume-own-collection",
]
RATELIMIT_CHECK = "limit-ratelimit-fields"


def run_checks(url: str, token: str, check_ids: list[str],
               rate_limit: str = "none") -> dict[str, CheckResult]:
    """One harness run of check_ids with that rate limit declared."""
    rate = parse_rate_limit(rate_limit)
    profile = from_mapping({"rate_limit": None if rate is None else {
        "requests_per_second": rate.requests_per_second, "burst": rate.burst}},
        from_mapping({}, spec_defaults(), "test"), "test")
    target = Target(url=url, token=token, profile=profile)
    report = runner.run(RunConfig(target=target, only=check_ids, property_layer=False,
                                  workers=4))
    return {result.id: result for result in report.results}


def test_ratelimit_fields_follow_the_declared_bucket() -> None:
    ok = judging.ratelimit_errors('"default";r=0;t=1', '"default";q=40;w=2', 40, 20.0)
    assert ok == []
    assert judging.refill_seconds(5, 10.0) == 1 and judging.refill_seconds(40, 3.0) == 14
    assert judging.ratelimit_errors('"default";r=0;t=2', '"default";q=40;w=2', 40, 20.0) == []
    for ratelimit, policy, fragment in [
        ('"default";r=3;t=1', '"default";q=40;w=2', "r=3"),
        ('"default";r=0;t=0', '"default";q=40;w=2', "t=0"),
        ('"default";r=0;t=9', '"default";q=40;w=2', "t=9"),
        ('"default";r=0;t=1', '"default";q=20;w=2', "q=20"),
        ('"default";r=0;t=1', '"default";q=40;w=1', "w=1"),
        (None, '"default";q=40;w=2', "RateLimit None"),
        ('"default";r=0;t=1', "q=40, w=2", "RateLimit-Policy"),
    ]:
        errors = judging.ratelimit_errors(ratelimit, policy, 40, 20.0)
        assert any(fragment in error for error in errors), (ratelimit, policy, errors)


def test_head_accepts_both_legal_answers_and_nothing_else() -> None:
    json_type = "application/json"
    assert http_head.head_errors(200, json_type, 405, "application/problem+json",
                                 "method-not-allowed", b"") == []
    assert http_head.head_errors(200, json_type, 405, None, None, b"") == []
    assert http_head.head_errors(404, "application/problem+json", 404,
                                 "application/problem+json", None, b"") == []
    assert http_head.head_errors(200, json_type, 200, "application/json; charset=utf-8",
                                 None, b"") == []
    assert http_head.head_errors(404, json_type, 200, json_type, None, b"")
    assert http_head.head_errors(200, json_type, 200, "text/html", None, b"")
    assert http_head.head_errors(200, json_type, 200, json_type, None, b"{}")
    assert http_head.head_errors(200, json_type, 500, json_type, None, b"")


def test_astral_probes_stay_within_the_request_size_and_filter_length() -> None:
    spec = facts.current()
    line = spec.request_size.min_request_line_octets
    for count in (spec.search_q_max_length, spec.search_q_max_length + 1):
        many = characters.q_astral_count(count, line)
        q = characters.astral(count, many)
        assert len(q) == count and many > count // 4
        assert sum(ord(c) > 0xFFFF for c in q) == many
        assert len(quote(q, safe="")) <= line - characters.ROOM
    bound = spec.filter.max_encoded_length
    strings = int(spec_limits()["filter"]["max_string_length"])
    for count in (strings, strings + 1):
        many = characters.filter_astral_count(count, bound)
        encoded = characters.encode_utf8_filter({"metadata.s": characters.astral(count, many)})
        assert len(encoded) <= bound and many > count // 4
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        assert len(json.loads(raw)["metadata.s"]) == count
    key = characters.astral(256)
    assert len(key) == 256 and len(key.encode("utf-16-le")) // 2 == 512


def test_deep_bodies_fill_the_cap_exactly_and_are_json() -> None:
    cap = facts.current().max_body_bytes
    for opener, closer in ((b"[", b"]"), (b'{"d":', b"}")):
        deepest = write_nesting.deepest_within(cap, opener, closer)
        assert len(write_nesting.nested_body(deepest, opener, closer)) <= cap
        assert len(write_nesting.nested_body(deepest + 1, opener, closer)) > cap
        assert json.loads(write_nesting.nested_body(9, opener, closer))["metadata"]["k"]
    nested = write_nesting.key_at_level("k", 3)
    assert nested == {"d": {"d": {"k": 1}}}


def test_precedence_probes_every_pair_a_request_can_break() -> None:
    probes = precedence.losers("c", "key", "no_such")
    for winner, beaten in facts.current().precedence.items():
        for loser in beaten:
            if winner in ("unauthorized", "unknown-collection"):
                assert loser in probes, (winner, loser)
    body = probes["validation-failed"].pad
    assert body is not None and len(body(70000)) == 70000
    assert json.loads(body(200))["text"] == ""
    broken = probes["invalid-json"].pad
    assert broken is not None and len(broken(70000)) == 70000
    with pytest.raises(ValueError):
        json.loads(broken(200))


def test_new_checks_pass_against_the_reference(reference_server: Any) -> None:
    env = reference_server.env
    results = run_checks(reference_server.url, env["AUTH_TOKEN"].split(",")[0],
                         [*CHECKS, RATELIMIT_CHECK])
    for check_id in CHECKS:
        result = results[check_id]
        assert result.status is Status.PASSED, f"{check_id}: {result.message}"
    assert results[RATELIMIT_CHECK].not_judged is NotJudged.NOT_CONFIGURED


def test_ratelimit_fields_pass_against_a_throttled_reference(start_reference: Any) -> None:
    server = start_reference(env={"RATE_LIMIT_PER_SECOND": "20", "RATE_LIMIT_BURST": "40"},
                             workers=1)
    token = server.env["AUTH_TOKEN"].split(",")[0]
    result = run_checks(server.url, token, [RATELIMIT_CHECK], rate_limit="20/40")[
        RATELIMIT_CHECK]
    assert result.status is Status.PASSED, result.message
    result = run_checks(server.url, token, [RATELIMIT_CHECK], rate_limit="20/30")[
        RATELIMIT_CHECK]
    assert result.verdict is Verdict.FAILED and "q=40" in result.message
