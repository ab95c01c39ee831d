# SPDX-License-Identifier: GPL-3.0-or-later
"""Delivery positions: allocate a per-collection sequence number and fence gaps with tombstones.

The gap problem: numbers are taken in one order and committed in another, so a reader that
advances to the highest visible number can skip a lower one still in flight. Here every
stored document carries ``_seq`` under a unique index; a reader that waited long enough on a
missing number *claims* it by inserting a tombstone with that ``_seq``. Exactly one of the
late writer and the tombstone wins the unique index: if the tombstone wins, the writer gets
DuplicateKeyError and retries with a new number, so no committed document is ever skipped
and no number is delivered twice. This works the same on a standalone server and on a
replica set, across any number of workers and instances.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

SEQ_FIELD = "_seq"
TOMBSTONE_FIELD = "_tombstone"
INGESTED_FIELD = "_ingested_at"
COUNTERS_COLLECTION = "dualstore_counters"
LIVE_DOCUMENTS: dict[str, Any] = {TOMBSTONE_FIELD: {"$exists": False}}
"""Query fragment that excludes tombstones: add it to every read that serves documents."""

Document = dict[str, Any]


def tombstone_id(seq: int) -> str:
    """The _id of the tombstone for seq (outside the API id alphabet, never served)."""
    return f"~seq:{seq}"


async def allocate(counters: AsyncCollection[Document], collection: str, count: int = 1) -> int:
    """Take count consecutive numbers for collection; return the first."""
    while True:
        # No upsert here: concurrent upserts of a missing counter may both increment while
        # only one learns its number (seen under load on the embedded daemon), leaving a
        # hole that stalls every stream until it is fenced. Create the counter separately.
        result = await counters.find_one_and_update(
            {"_id": collection},
            {"$inc": {"seq": count}},
            return_document=ReturnDocument.AFTER,
        )
        if result is not None:
            return int(result["seq"]) - count + 1
        with contextlib.suppress(DuplicateKeyError):  # another writer created it first
            await counters.update_one(
                {"_id": collection}, {"$setOnInsert": {"seq": 0}}, upsert=True
            )


async def head(counters: AsyncCollection[Document], collection: str) -> int:
    """The highest number allocated so far for collection (0 when none)."""
    found = await counters.find_one({"_id": collection})
    return int(found["seq"]) if found else 0


def _is_seq_conflict(error: DuplicateKeyError) -> bool:
    details = error.details or {}
    key_pattern = details.get("keyPattern") or {}
    if key_pattern:
        return SEQ_FIELD in key_pattern
    return SEQ_FIELD in str(details.get("errmsg", error))


async def fence(documents: AsyncCollection[Document], seq: int) -> bool:
    """Claim seq with a tombstone. True if claimed; False if a document already holds it."""
    try:
        await documents.insert_one(
            {
                "_id": tombstone_id(seq),
                SEQ_FIELD: seq,
                TOMBSTONE_FIELD: True,
                INGESTED_FIELD: dt.datetime.now(dt.UTC),
            }
        )
    except DuplicateKeyError:
        return False
    return True


async def insert_sequenced(
    documents: AsyncCollection[Document],
    counters: AsyncCollection[Document],
    document: Document,
    max_attempts: int = 20,
) -> int:
    """Insert document with a fresh ``_seq``; retry when a reader fenced the number.

    Any other DuplicateKeyError (same _id, same idempotency key) releases the number with
    a tombstone, so readers need not wait for it, and is re-raised.
    """
    for _ in range(max_attempts):
        seq = await allocate(counters, documents.name)
        try:
            await documents.insert_one({**document, SEQ_FIELD: seq})
        except DuplicateKeyError as error:
            if _is_seq_conflict(error):
                continue
            await fence(documents, seq)
            raise
        return seq
    raise RuntimeError(f"could not sequence a document after {max_attempts} attempts")


async def adopt_unsequenced(
    documents: AsyncCollection[Document],
    counters: AsyncCollection[Document],
    batch: int = 500,
) -> int:
    """Give a ``_seq`` to documents written without one (older producers). Returns how many."""
    adopted = 0
    # {_seq: null} (missing or null) can use an ordinary index on _seq; $exists: false
    # cannot on every server, and this runs every few seconds.
    cursor = documents.find({SEQ_FIELD: None}, {"_id": 1, "timestamp": 1}).limit(batch)
    async for found in cursor:
        while True:
            seq = await allocate(counters, documents.name)
            try:
                result = await documents.update_one(
                    {"_id": found["_id"], SEQ_FIELD: None},
                    {"$set": {SEQ_FIELD: seq, **_normalised_timestamp(found)}},
                )
            except DuplicateKeyError:
                continue  # fenced meanwhile: take another number
            if result.modified_count == 0:
                await fence(documents, seq)  # someone else adopted it: release the number
            else:
                adopted += 1
            break
    return adopted


def _normalised_timestamp(found: Document) -> Document:
    """Fields that turn a legacy timestamp (epoch ms, string, missing) into a BSON date.

    Reads understand every legacy form, but sorting and filtering by ``timestamp`` need one
    BSON type; the original value is kept in ``_legacy_timestamp``.
    """
    from .timestamps import to_datetime  # local: timestamps is a sibling leaf module

    value = found.get("timestamp")
    if isinstance(value, dt.datetime):
        return {}
    when = to_datetime(value)
    if when is None:
        generation = getattr(found.get("_id"), "generation_time", None)
        when = to_datetime(generation) if generation is not None else None
    if when is None:
        when = dt.datetime.now(dt.UTC)
    changes: Document = {"timestamp": when}
    if "timestamp" in found:
        changes["_legacy_timestamp"] = value
    return changes


async def ensure_indexes(documents: AsyncCollection[Document]) -> None:
    """The unique index on ``_seq`` that makes fencing work.

    Sparse rather than partial: both leave unsequenced (legacy) documents out of the
    uniqueness constraint, and some servers only serve range scans on ``_seq`` from a
    sparse one (a partial index there meant a collection scan per tailer poll).
    """
    await documents.create_index(SEQ_FIELD, unique=True, name="seq_unique", sparse=True)
