# SPDX-License-Identifier: GPL-3.0-or-later
"""Resume tokens: the decimal ``_seq`` of an event, or ``since`` as an RFC 3339 time."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dualstore_reference.store import timestamps

TOKEN_GRAMMAR = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
"""The spec's grammar for any implementation's resume token."""
_DECIMAL = re.compile(r"^[0-9]{1,18}$")


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
    try:
        return timestamps.parse_rfc3339(value)
    except timestamps.TimestampError as error:
        raise InvalidResumeToken(
            f"since must be an event id or an RFC 3339 date-time: {error}"
        ) from None


def resume_point(last_event_id: str | None, since: str | None) -> ResumePoint:
    """Decide where to start: the header wins over ``since``; empty values count as absent.

    Both are validated whichever wins (SSE-RESUME-013): a malformed ``since`` beside a
    well-formed ``Last-Event-ID`` is refused, not ignored.
    """
    header = (
        ResumePoint(after_seq=parse_token(last_event_id), source="Last-Event-ID")
        if last_event_id else None
    )
    query = _since_point(since) if since else None
    return header or query or ResumePoint()


def _since_point(since: str) -> ResumePoint:
    if _DECIMAL.match(since):
        return ResumePoint(after_seq=int(since), source="since")
    return ResumePoint(since=parse_time(since), source="since")
