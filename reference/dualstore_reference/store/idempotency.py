# SPDX-License-Identifier: GPL-3.0-or-later
"""Idempotency-Key: the ``_id`` of a keyed document derives from (collection, key).

Looking a key up is then a lookup by ``_id``, which every MongoDB-compatible server
serves from its primary index, and uniqueness comes from ``_id`` too: of two concurrent
requests with one key exactly one insert wins, atomically with the document itself. So a
keyed POST costs the same at any collection size.

Earlier (unreleased) builds kept the key in ``_idem.key`` under a partial unique index;
not every server's planner used that index (the lookup scanned the collection) and on
some servers maintaining it made every insert slower as the collection grew, so
:func:`drop_legacy_index` removes it. Keys stored by those builds are not recognised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

Document = dict[str, Any]
FIELD = "_idem"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
"""Accepted keys (the spec's pattern; empty means absent): UUIDs, ULIDs, client strings."""
LEGACY_INDEX = "idempotency_key"


class KeyReuse(Exception):
    """The key was used before with a different request body."""

    def __init__(self, key: str, earlier_id: str) -> None:
        super().__init__(key)
        self.key = key
        self.earlier_id = earlier_id


def digest(body: Any) -> str:
    """SHA-256 of the body's canonical JSON (sorted keys, no whitespace): same body, same digest.

    The same JSON value is the same body (WRITE-013): member order, whitespace and escapes
    are gone after parsing, and numbers compare by value (``1``, ``1.0``, ``1e0`` and
    ``-0.0`` parse to int or float; integral floats are written as integers).
    """
    canonical = json.dumps(
        _by_value(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _by_value(value: Any) -> Any:
    """value with every finite integral float replaced by the equal integer."""
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, dict):
        return {name: _by_value(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_by_value(item) for item in value]
    return value


def document_id(collection: str, key: str) -> str:
    """The ``_id`` of the document stored under key in collection (32 lowercase hex)."""
    return hashlib.sha256(f"{collection}\x00{key}".encode()).hexdigest()[:32]


async def drop_legacy_index(documents: AsyncCollection[Document]) -> None:
    """Drop the ``_idem.key`` index of earlier builds, if the collection has it."""
    with contextlib.suppress(OperationFailure):  # absent: nothing to drop
        await documents.drop_index(LEGACY_INDEX)


def _replay(found: Document | None, key: str, body_digest: str) -> str | None:
    if found is None:
        return None
    if (found.get(FIELD) or {}).get("digest") != body_digest:
        raise KeyReuse(key, str(found["_id"]))
    return str(found["_id"])


async def find(documents: AsyncCollection[Document], key: str, body_digest: str) -> str | None:
    """The id stored under key (None if unused); KeyReuse if the body differed. By ``_id``."""
    found = await documents.find_one({"_id": document_id(documents.name, key)}, {FIELD: 1})
    return _replay(found, key, body_digest)
