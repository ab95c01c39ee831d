# SPDX-License-Identifier: GPL-3.0-or-later
"""Timestamps: RFC 3339 in (any offset) -> UTC BSON date (ms); any stored form -> ISO 8601 ``Z``.

Stored forms read: BSON date (ours), epoch milliseconds as a number and date strings
(older producers). Written form: a timezone-aware UTC datetime truncated to milliseconds.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bson.datetime_ms import DatetimeMS

UTC = dt.UTC
MIN_DATE = dt.datetime(1, 1, 1, tzinfo=UTC)
MAX_DATE = dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

_RFC3339 = re.compile(
    r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt ]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?P<fraction>\.\d+)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})$"
)
_LOOSE_ISO = re.compile(
    r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>[.,]\d+)?)?)?"
    r"\s*(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?$"
)


class TimestampError(ValueError):
    """A timestamp that cannot be understood or represented."""


def _build(match: re.Match[str], strict: bool) -> dt.datetime:
    parts = match.groupdict()
    fraction = (parts.get("fraction") or ".0")[1:]
    micros = int((fraction + "000000")[:6])
    second = int(parts.get("second") or 0)
    leap = second == 60  # RFC 3339 allows a leap second; Python does not: roll over
    offset_text = parts.get("offset")
    if offset_text is None:
        if strict:
            raise TimestampError("missing UTC offset")
        offset = dt.timedelta(0)
    elif offset_text in ("Z", "z", "UTC", "GMT"):
        offset = dt.timedelta(0)
    else:
        sign = -1 if offset_text[0] == "-" else 1
        digits = offset_text[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise TimestampError(f"offset {offset_text} out of range")
        offset = sign * dt.timedelta(hours=hours, minutes=minutes)
    try:
        local = dt.datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts.get("hour") or 0),
            int(parts.get("minute") or 0),
            59 if leap else second,
            micros,
            tzinfo=dt.timezone(offset),
        )
        result = local.astimezone(UTC)
        if leap:
            result += dt.timedelta(seconds=1)
    except (ValueError, OverflowError) as error:
        raise TimestampError(str(error)) from None
    return truncate_ms(result)


def parse_rfc3339(text: str) -> dt.datetime:
    """Parse an RFC 3339 date-time with any offset to an aware UTC datetime (ms precision).

    Raises TimestampError if the text is not RFC 3339 or the instant falls outside the
    years 0001-9999 once converted to UTC (reads must print 4-digit years).
    """
    match = _RFC3339.match(text)
    if match is None:
        raise TimestampError(f"{text!r} is not an RFC 3339 date-time (e.g. 2026-11-25T10:00:00Z)")
    result = _build(match, strict=True)
    if not MIN_DATE <= result <= MAX_DATE:
        raise TimestampError(f"{text!r} is outside the years 0001-9999 in UTC")
    return result


def truncate_ms(value: dt.datetime) -> dt.datetime:
    """value (aware) in UTC with microseconds cut to whole milliseconds."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def now() -> dt.datetime:
    """The current time as stored: aware UTC, millisecond precision."""
    return truncate_ms(dt.datetime.now(UTC))


def from_epoch_ms(ms: float) -> dt.datetime:
    """An aware UTC datetime from epoch milliseconds (clamped to years 0001-9999)."""
    try:
        value = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=int(ms))
    except OverflowError:
        return MAX_DATE if ms > 0 else MIN_DATE
    return min(max(value, MIN_DATE), MAX_DATE)


def to_datetime(value: Any) -> dt.datetime | None:
    """Any stored timestamp form -> aware UTC datetime, or None when it is not a timestamp.

    Numbers are epoch milliseconds; numbers below 1e11 are taken as epoch seconds (no
    producer writes a date before 1973 in milliseconds; seconds-producers exist).
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return min(max(truncate_ms(value), MIN_DATE), MAX_DATE)
    if isinstance(value, DatetimeMS):
        return from_epoch_ms(int(value))
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value != value:  # NaN
            return None
        number = float(value)
        if abs(number) < 1e11:
            number *= 1000
        return from_epoch_ms(number)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return to_datetime(float(text))
        match = _LOOSE_ISO.match(text)
        if match is None:
            return None
        try:
            result = _build(match, strict=False)
        except TimestampError:
            return None
        return min(max(result, MIN_DATE), MAX_DATE)
    return None


def format_iso(value: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``; always a 4-digit year."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}."
        f"{value.microsecond // 1000:03d}Z"
    )


def to_epoch_ms(value: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    delta = value.astimezone(UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
