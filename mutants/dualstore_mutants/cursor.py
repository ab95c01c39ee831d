# SPDX-License-Identifier: GPL-3.0-or-later
"""Cursor mutants: the reference's cursor decoder replaced (test-only patches of one module)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING

from dualstore_reference.store import cursors

from .asgi import ASGIApp
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings

Decode = Callable[[bytes, bytes, str], tuple[int, int]]
ORIGINAL: Decode = cursors.decode
"""The reference's decoder, before any mutant replaced it."""


def _replace_decode(decode: Decode) -> None:
    cursors.decode = decode  # type: ignore[assignment]  # reason: the mutation itself (a test-only patch)


@fault("rest-cursor-repeats")
def cursor_repeats(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Inclusive keyset comparison: each next page starts with the previous page's last item."""

    def inclusive(key: bytes, bound: bytes, cursor: str) -> tuple[int, int]:
        millis, seq = ORIGINAL(key, bound, cursor)
        return millis, seq + 1

    _replace_decode(inclusive)
    return app


@fault("rest-cursor-timestamp-only")
def cursor_timestamp_only(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The cursor continues strictly below the last item's timestamp (the tie key is ignored),
    so documents sharing that timestamp and not yet shown are skipped."""

    def timestamp_only(key: bytes, bound: bytes, cursor: str) -> tuple[int, int]:
        millis, _ = ORIGINAL(key, bound, cursor)
        return millis, 0

    _replace_decode(timestamp_only)
    return app


@fault("rest-cursor-unsigned")
def cursor_unsigned(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The cursor's integrity tag is never checked: whatever position a client writes is
    used, with any filter or collection (the payload is trusted as sent)."""

    def unsigned(key: bytes, bound: bytes, cursor: str) -> tuple[int, int]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:
            return ORIGINAL(key, bound, cursor)
        payload = raw[: -cursors.TAG_BYTES] if len(raw) > cursors.TAG_BYTES else raw
        resigned = payload + cursors._tag(key, bound, payload)
        return ORIGINAL(key, bound, base64.urlsafe_b64encode(resigned).decode().rstrip("="))

    _replace_decode(unsigned)
    return app
