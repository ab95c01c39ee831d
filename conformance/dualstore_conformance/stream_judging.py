# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure predicates over a recorded stream answer's headers (SSE-FRAME-001..003, SSE-CAP-001)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

EVENT_STREAM = "text/event-stream"
UTF8_CHARSETS = frozenset({"charset=utf-8", 'charset="utf-8"'})


def event_stream_type_ok(content_type: str | None) -> bool:
    """Content-Type is text/event-stream, with at most a charset=utf-8 parameter."""
    parts = (content_type or "").split(";")
    params = [p.strip().lower().replace(" ", "") for p in parts[1:]]
    return parts[0].strip().lower() == EVENT_STREAM and all(
        not p or p in UTF8_CHARSETS for p in params)


def no_cache_ok(cache_control: str | None) -> bool:
    """Cache-Control lists the no-cache directive (any case, among others)."""
    return "no-cache" in {d.strip().lower() for d in (cache_control or "").split(",")}


def no_buffering_ok(x_accel_buffering: str | None) -> bool:
    """X-Accel-Buffering is ``no`` (any case, surrounding spaces ignored)."""
    return (x_accel_buffering or "").strip().lower() == "no"


def delay_or_date_errors(retry_after: str | None) -> list[str]:
    """A stream cap's Retry-After: delay-seconds (digits) or an HTTP date (SSE-CAP-001)."""
    value = (retry_after or "").strip()
    if retry_after is not None and value.isdigit():
        return []
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return [f"Retry-After {retry_after!r} is not delay-seconds or an HTTP date"]
    return []
