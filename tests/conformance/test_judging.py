# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure predicates that decide checks, judged on recorded answers without a server."""

from __future__ import annotations

import json

import pytest
from dualstore_conformance import judging
from dualstore_spec import facts

PROBLEM = "application/problem+json"


def problem(slug: str, status: int, **extra: object) -> bytes:
    body = {"type": facts.current().problem(slug).type, "title": "t", "status": status, **extra}
    return json.dumps(body).encode()


def test_a_complete_problem_has_no_errors() -> None:
    assert judging.problem_errors(404, PROBLEM, problem("not-found", 404)) == []
    assert judging.problem_errors(200, "text/plain", b"fine") == []


@pytest.mark.parametrize("status, content_type, body, fragment", [
    (404, "application/json", problem("not-found", 404), "Content-Type"),
    (404, PROBLEM, b"not json", "not a JSON object"),
    (404, PROBLEM, json.dumps({"title": "t", "status": 404}).encode(), "no string 'type'"),
    (404, PROBLEM, problem("not-found", 404, type="urn:other:x"), "not one the spec lists"),
    (400, PROBLEM, problem("not-found", 400), "documented with status 404"),
    (404, PROBLEM, problem("not-found", 400), "differs from the HTTP status"),
    (404, PROBLEM, json.dumps({"type": facts.current().problem("not-found").type,
                               "status": 404}).encode(), "no string 'title'"),
])
def test_each_defect_of_a_problem_is_named(status: int, content_type: str, body: bytes,
                                            fragment: str) -> None:
    errors = judging.problem_errors(status, content_type, body)
    assert any(fragment in error for error in errors), errors


def test_expected_problem_checks_status_slug_and_media_type() -> None:
    body = problem("invalid-filter", 400)
    assert judging.expected_problem_errors(400, PROBLEM, body, 400, "invalid-filter") == []
    assert judging.expected_problem_errors(400, PROBLEM, body, 400,
                                           ("invalid-request", "invalid-filter")) == []
    wrong = judging.expected_problem_errors(422, "application/json", body, 400, "invalid-cursor")
    assert len(wrong) == 3
    lenient = judging.expected_problem_errors(400, "application/json", body, 400,
                                              "invalid-filter", check_media_type=False)
    assert lenient == []


def test_problem_slug_strips_the_specs_prefix_only() -> None:
    assert judging.problem_slug({"type": facts.current().problem("not-found").type}) == \
        "not-found"
    assert judging.problem_slug({"type": "about:blank"}) == "about:blank"
    assert judging.problem_slug(None) is None and judging.problem_slug({"type": 3}) is None


@pytest.mark.parametrize("value, ok", [
    ("1", True), ("120", True), (" 5 ", True), ("0", False), ("1.5", False), ("-1", False),
    ("Wed, 21 Oct 2026 07:28:00 GMT", False), ("", False), (None, False), ("\uff15", False),
])
def test_retry_after_must_be_whole_seconds_of_at_least_one(value: str | None, ok: bool) -> None:
    assert (judging.retry_after_errors(value) == []) is ok


def test_retry_after_wait_is_clamped_and_defaults_when_unreadable() -> None:
    assert judging.retry_after_seconds("3", 0.05, 5.0, 1.0) == 3.0
    assert judging.retry_after_seconds("60", 0.05, 5.0, 1.0) == 5.0
    assert judging.retry_after_seconds("soon", 0.05, 5.0, 1.0) == 1.0
    assert judging.retry_after_seconds(None, 0.05, 5.0, 2.0) == 2.0


def test_challenge_needs_401_bearer_and_the_unauthorized_type() -> None:
    assert judging.challenge_errors(401, 'Bearer realm="x"', "unauthorized") == []
    assert judging.challenge_errors(401, "bearer", "unauthorized") == []
    assert len(judging.challenge_errors(403, "Basic", "forbidden")) == 3


@pytest.mark.parametrize("value, ok", [
    ("2026-11-25T10:00:00.000Z", True),
    ("2026-11-25T10:00:00Z", False),
    ("2026-11-25T10:00:00.000+00:00", False),
    ("2026-13-25T10:00:00.000Z", False),
    ("2026-11-25 10:00:00.000Z", False),
])
def test_doc_timestamps_follow_the_specs_pattern(value: str, ok: bool) -> None:
    assert bool(judging.doc_timestamp_pattern().match(value)) is ok
