# SPDX-License-Identifier: GPL-3.0-or-later
"""Tamper-evident ``recent`` cursors: an HMAC over the position and the query it belongs to.

A cursor is base64url(payload JSON + 16-byte HMAC-SHA256 tag). The tag covers the
collection and the canonical filter of the request that issued it, so an edited cursor, a
forged one, or one sent with another collection or filter is refused (spec READ-008). The
key is one random secret per database, created once (``$setOnInsert``) in the counters
collection, so every worker, restart and instance on that database agrees on it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

KEY_ID = "~cursor-key"
"""_id of the key document in the counters collection (no collection name starts with ~)."""
TAG_BYTES = 16
MAX_COORDINATE = 2**63 - 1
"""Positions are BSON int64 (epoch ms and _seq)."""
CURSOR_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,512}$")
"""The spec's Cursor pattern (non-empty: empty means absent)."""


class CursorError(ValueError):
    """A recent-page cursor that this server did not issue for this query."""


class CursorKey:
    """The database's cursor key, read (or created) once per process."""

    def __init__(self, counters: AsyncCollection[dict[str, Any]]) -> None:
        self._counters = counters
        self._key: bytes | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> bytes:
        """The key; created on first use by whichever worker gets there first."""
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    self._key = await self._load()
        return self._key

    async def _load(self) -> bytes:
        candidate = secrets.token_hex(32)
        with contextlib.suppress(DuplicateKeyError):  # another worker inserted it meanwhile
            await self._counters.update_one(
                {"_id": KEY_ID}, {"$setOnInsert": {"key": candidate}}, upsert=True
            )
        found = await self._counters.find_one({"_id": KEY_ID})
        if found is None or not isinstance(found.get("key"), str):
            raise RuntimeError("the cursor key document is missing or malformed")
        return bytes.fromhex(found["key"])


def scope(collection: str, query: dict[str, Any] | None) -> bytes:
    """What a cursor is bound to: the collection and the canonical (translated) filter."""
    canonical = json.dumps(query or {}, sort_keys=True, separators=(",", ":"), default=str)
    return collection.encode() + b"\x00" + canonical.encode()


def _tag(key: bytes, bound: bytes, payload: bytes) -> bytes:
    digest = hmac.new(key, bound + b"\x00" + payload, hashlib.sha256).digest()
    return digest[:TAG_BYTES]


def encode(key: bytes, bound: bytes, millis: int, seq: int) -> str:
    """The cursor continuing after the document at (epoch ms, _seq) for this scope."""
    payload = json.dumps({"t": millis, "s": seq}, separators=(",", ":")).encode()
    raw = payload + _tag(key, bound, payload)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(key: bytes, bound: bytes, cursor: str) -> tuple[int, int]:
    """(epoch ms, _seq) of a cursor issued for this scope; CursorError otherwise."""
    refused = CursorError("cursor is not a `next` value this endpoint issued for this query")
    if not CURSOR_PATTERN.match(cursor):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise refused from None
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != cursor:
        raise refused  # same bytes, other spelling (unused trailing bits): not what we issued
    payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if len(raw) <= TAG_BYTES or not hmac.compare_digest(tag, _tag(key, bound, payload)):
        raise refused
    # Only this server's own encoder wrote what follows; checked anyway (defence in depth).
    try:
        position = json.loads(payload)
    except ValueError:
        raise refused from None
    if (
        not isinstance(position, dict)
        or set(position) != {"t", "s"}
        or not all(type(position[k]) is int for k in ("t", "s"))
        or not 0 <= position["s"] <= MAX_COORDINATE
        or not -MAX_COORDINATE <= position["t"] <= MAX_COORDINATE
    ):
        raise refused
    return position["t"], position["s"]
