# SPDX-License-Identifier: GPL-3.0-or-later
"""Wire encodings: filters (base64url JSON), timestamps (RFC 3339 UTC) and path segments."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

Filter = Mapping[str, Any]
"""A filter in the spec's filter language, e.g. ``{"metadata.kind": {"$in": ["a", "b"]}}``."""


def encode_filter(filter: Filter | str) -> str:
    """Encode a filter as base64url (no padding) of its compact UTF-8 JSON.

    A ``str`` is taken as already encoded and returned unchanged. The server validates the
    filter; the client only refuses what cannot be JSON at all.
    """
    if isinstance(filter, str):
        return filter
    if not isinstance(filter, Mapping):
        raise TypeError(f"a filter is a mapping (dict), not {type(filter).__name__}")
    raw = json.dumps(dict(filter), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_filter(encoded: str) -> Any:
    """Inverse of :func:`encode_filter` (padding optional); raises ValueError when malformed."""
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from exc
    return json.loads(raw.decode("utf-8"))


def format_timestamp(value: datetime | str) -> str:
    """RFC 3339 text for a timestamp; a datetime must be timezone-aware (sent as UTC, ms)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (e.g. datetime.now(UTC))")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    """Parse the server's ISO 8601 UTC text (``2026-11-25T10:00:00.000Z``) into a datetime."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def path_segment(value: str) -> str:
    """Percent-encode one path segment (a collection name or a document id)."""
    if not isinstance(value, str) or not value:
        raise ValueError("collection names and ids are non-empty strings")
    return quote(value, safe="")
