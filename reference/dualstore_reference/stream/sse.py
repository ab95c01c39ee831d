# SPDX-License-Identifier: GPL-3.0-or-later
"""Server-Sent Events framing: one-line JSON data, ``retry`` hints, heartbeats."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from dualstore_sse import encoder


def compact_json(value: Any) -> str:
    """JSON on one line (newlines inside strings are escaped by JSON itself)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # U+2028/U+2029 are not SSE line ends, but escape them for old JS consumers anyway.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def frame(event: str, data: str, event_id: str | None = None) -> bytes:
    """One event block; data must not contain CR or LF (the contract's one-line JSON)."""
    if "\n" in data or "\r" in data:
        raise ValueError("SSE data must be a single line")
    return encoder.event(data, type=event, id=event_id)


retry = encoder.retry
"""A block that sets the client's reconnection delay (dispatches no event)."""


def iso_now() -> str:
    """Current UTC time, ISO 8601 with milliseconds and Z."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def heartbeat() -> bytes:
    """A heartbeat event: ``data: {"t": "<now>"}``."""
    return frame("heartbeat", compact_json({"t": iso_now()}))


def insert(seq_token: str, doc: dict[str, Any]) -> bytes:
    """An insert event for an API Doc."""
    return frame("insert", compact_json(doc), seq_token)
