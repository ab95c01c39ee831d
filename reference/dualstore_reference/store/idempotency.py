# SPDX-License-Identifier: GPL-3.0-or-later
"""Idempotency-Key: stored as ``_idem`` {key, digest} under a unique partial index on the key."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

Document = dict[str, Any]
FIELD = "_idem"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
"""Accepted keys (the spec's pattern; empty means absent): UUIDs, ULIDs, client strings."""


class KeyReuse(Exception):
    """The key was used before with a different request body."""

    def __init__(self, key: str, earlier_id: str) -> None:
        super().__init__(key)
        self.key = key
        self.earlier_id = earlier_id


def digest(body: Any) -> str:
    """SHA-256 of the body's canonical JSON (sorted keys, no whitespace): same body, same digest."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def ensure_index(documents: AsyncCollection[Document]) -> None:
    """Unique index on the key, only over documents that carry one."""
    await documents.create_index(
        f"{FIELD}.key",
        unique=True,
        name="idempotency_key",
        partialFilterExpression={f"{FIELD}.key": {"$exists": True}},
    )


async def find(documents: AsyncCollection[Document], key: str, body_digest: str) -> str | None:
    """The id stored earlier under key (None if unused); KeyReuse if the body differed."""
    found = await documents.find_one({f"{FIELD}.key": key}, {FIELD: 1})
    if found is None:
        return None
    if found[FIELD].get("digest") != body_digest:
        raise KeyReuse(key, str(found["_id"]))
    return str(found["_id"])
