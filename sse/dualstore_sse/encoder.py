# SPDX-License-Identifier: GPL-3.0-or-later
"""Serialize events, ``retry`` hints and comments as event-stream bytes (UTF-8, LF line ends)."""

from __future__ import annotations

_BREAKS = ("\r", "\n")


def _one_line(what: str, value: str) -> str:
    if any(mark in value for mark in _BREAKS):
        raise ValueError(f"an SSE {what} must not contain CR or LF")
    return value


def event(data: str, *, type: str | None = None, id: str | None = None) -> bytes:
    """One event block: ``id``, ``event``, then one ``data`` line per line of data.

    A data value with CR, LF or CRLF inside becomes several ``data`` lines, which a WHATWG
    parser joins back with LF. An ``id`` may not contain U+0000 (parsers ignore such ids).
    """
    lines: list[str] = []
    if id is not None:
        if "\x00" in id:
            raise ValueError("an SSE id must not contain U+0000")
        lines.append(f"id: {_one_line('id', id)}")
    if type is not None:
        lines.append(f"event: {_one_line('event type', type)}")
    data_lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines.extend(f"data: {line}" for line in data_lines)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def retry(milliseconds: int) -> bytes:
    """A block that sets the client's reconnection delay (dispatches no event)."""
    if milliseconds < 0:
        raise ValueError("an SSE retry must be a non-negative integer")
    return f"retry: {int(milliseconds)}\n\n".encode()


def comment(text: str = "") -> bytes:
    """A comment line (parsers report it, EventSource ignores it); often used as keep-alive."""
    return f":{_one_line('comment', text)}\n".encode()
