# SPDX-License-Identifier: GPL-3.0-or-later
"""Resume tokens: grammar, decimal event ids, RFC 3339 since, precedence, empty = absent."""

from __future__ import annotations

import datetime as dt

import pytest
from dualstore_reference.stream.tokens import InvalidResumeToken, ResumePoint, resume_point


def test_header_wins_over_since() -> None:
    assert resume_point("7", "3") == ResumePoint(after_seq=7, source="Last-Event-ID")


def test_empty_values_count_as_absent() -> None:
    assert resume_point("", "") == ResumePoint()
    assert resume_point("", "5") == ResumePoint(after_seq=5, source="since")
    assert resume_point(None, None).live_only


def test_since_time_is_utc() -> None:
    point = resume_point(None, "2026-11-25T12:00:00.123+02:00")
    assert point.since == dt.datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=dt.UTC)


@pytest.mark.parametrize("value", ["a b", "x" * 129, "é", "12abc", "-1"])
def test_malformed_or_foreign_header_tokens_are_refused(value: str) -> None:
    with pytest.raises(InvalidResumeToken):
        resume_point(value, None)


@pytest.mark.parametrize("value", ["2026-11-25", "2026-11-25T10:00:00", "soon", "1e3"])
def test_since_must_be_an_id_or_a_full_rfc3339_time(value: str) -> None:
    with pytest.raises(InvalidResumeToken):
        resume_point(None, value)


@pytest.mark.parametrize(
    ("header", "since"),
    [("7", "soon"), ("7", "2026-11-25"), ("7", "1e3"), ("not an id", "3"),
     ("é", "2026-11-25T10:00:00Z")],
)
def test_every_present_resume_parameter_is_validated(header: str, since: str) -> None:
    # SSE-RESUME-013: the header wins, but a malformed since beside it is still refused
    # (before, the header alone was parsed and a malformed since was ignored).
    with pytest.raises(InvalidResumeToken):
        resume_point(header, since)


def test_the_header_still_wins_over_a_well_formed_since() -> None:
    assert resume_point("7", "2026-11-25T10:00:00Z") == ResumePoint(
        after_seq=7, source="Last-Event-ID")
