# SPDX-License-Identifier: GPL-3.0-or-later
"""Resume tokens: the decimal ``_seq`` of an event, or ``since`` as an RFC 3339 time."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

TOKEN_GRAMMAR = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
"""The spec's grammar for any implementation's resume token."""
_DECIMAL = re.compile(r"^[0-9]{1,18}$")
_RFC3339 = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<fraction>\.[0-9]+)?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class InvalidResumeToken(ValueError):
    """The resume token (Last-Event-ID or since) cannot be understood."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a stream starts: after an event (``after_seq``), or from a time (``since``)."""

    after_seq: int | None = None
    since: dt.datetime | None = None
    source: str = ""
    """Which input decided: "Last-Event-ID", "since" or "" (live only)."""

    @property
    def live_only(self) -> bool:
        """True when the client asked for live events only."""
        return self.after_seq is None and self.since is None


def format_token(seq: int) -> str:
    """The event id of the event at seq."""
    return str(seq)


def parse_token(value: str) -> int:
    """The sequence number a token names; InvalidResumeToken when it is not one of ours."""
    if not TOKEN_GRAMMAR.match(value):
        raise InvalidResumeToken("a resume token is 1-128 characters of A-Z a-z 0-9 . _ ~ -")
    if not _DECIMAL.match(value):
        raise InvalidResumeToken(f"{value!r} is not an event id issued by this server")
    return int(value)


def parse_time(value: str) -> dt.datetime:
    """An RFC 3339 date-time with an offset, as an aware UTC datetime."""
    match = _RFC3339.match(value)
    if not match:
        raise InvalidResumeToken(f"{value!r} is neither an event id nor an RFC 3339 date-time")
    fraction = (match["fraction"] or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    try:
        parsed = dt.datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}")
    except ValueError as error:
        raise InvalidResumeToken(f"{value!r} is not a valid date-time: {error}") from None
    return parsed.astimezone(dt.UTC)


def resume_point(last_event_id: str | None, since: str | None) -> ResumePoint:
    """Decide where to start: the header wins over ``since``; empty values count as absent."""
    if last_event_id:
        return ResumePoint(after_seq=parse_token(last_event_id), source="Last-Event-ID")
    if since:
        if _DECIMAL.match(since):
            return ResumePoint(after_seq=int(since), source="since")
        return ResumePoint(since=parse_time(since), source="since")
    return ResumePoint()
