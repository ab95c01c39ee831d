# SPDX-License-Identifier: GPL-3.0-or-later
"""Timestamp normalisation: RFC 3339 in, ISO 8601 UTC ms ``Z`` out, legacy forms read."""

from __future__ import annotations

import datetime as dt

import pytest
from bson.datetime_ms import DatetimeMS
from dualstore_reference.store import timestamps as ts

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25t10:00:00z", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T11:00:00+01:00", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T04:30:00.1-05:30", "2026-11-25T10:00:00.100Z"),
        ("2026-11-25T10:00:00.123999999Z", "2026-11-25T10:00:00.123Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000Z"),
        ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00.000Z"),
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000Z"),
    ],
)
def test_rfc3339_is_normalised_to_utc_milliseconds(text: str, expected: str) -> None:
    assert ts.format_iso(ts.parse_rfc3339(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25",
        "2026-11-25T10:00:00",
        "2026-11-25T10:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-25T10:00:00+24:00",
        "0001-01-01T00:00:00+01:00",
        "yesterday",
        "",
    ],
)
def test_non_rfc3339_is_rejected(text: str) -> None:
    with pytest.raises(ts.TimestampError):
        ts.parse_rfc3339(text)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (dt.datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC), "2025-11-25T10:00:00.123Z"),
        (dt.datetime(2025, 11, 25, 10, 0, 0), "2025-11-25T10:00:00.000Z"),
        (1764064800123, "2025-11-25T10:00:00.123Z"),
        (1764064800123.9, "2025-11-25T10:00:00.123Z"),
        (1764064800, "2025-11-25T10:00:00.000Z"),
        ("1764064800123", "2025-11-25T10:00:00.123Z"),
        ("2025-11-25T12:00:00+02:00", "2025-11-25T10:00:00.000Z"),
        ("2025-11-25 10:00:00", "2025-11-25T10:00:00.000Z"),
        ("2025-11-25", "2025-11-25T00:00:00.000Z"),
        (DatetimeMS(1764064800123), "2025-11-25T10:00:00.123Z"),
        (DatetimeMS(2**62), "9999-12-31T23:59:59.999Z"),
        (dt.datetime(53, 1, 1, tzinfo=UTC), "0053-01-01T00:00:00.000Z"),
    ],
)
def test_every_stored_form_is_read(stored: object, expected: str) -> None:
    when = ts.to_datetime(stored)
    assert when is not None
    assert ts.format_iso(when) == expected


@pytest.mark.parametrize("stored", [None, True, "not a date", float("nan"), {"a": 1}, [1]])
def test_non_timestamps_read_as_none(stored: object) -> None:
    assert ts.to_datetime(stored) is None


def test_epoch_ms_round_trip() -> None:
    when = ts.parse_rfc3339("2026-11-25T10:00:00.123Z")
    assert ts.from_epoch_ms(ts.to_epoch_ms(when)) == when
