# SPDX-License-Identifier: GPL-3.0-or-later
"""Delivery positions: a per-collection sequence number, taken by inserting it; gaps fenced.

Every stored document carries ``_seq`` under a unique index, and the index is the allocator:
a writer inserts with the number after the highest it knows to be stored, and a writer
that loses the number to another (DuplicateKeyError on ``_seq``) learns the new head and
tries the next. So a number is only ever taken by a committed document, and a worker that
knows the head (its own inserts and what its stream tailer has seen) writes with one round
trip and no counter.

The gap problem remains where one write stores several numbers (an unordered batch may
commit a higher number before a lower one, or fail one document in the middle): a reader
that advances to the highest visible number could skip the lower one still in flight. A
reader that waited long enough on a missing number *claims* it by inserting a tombstone
with that ``_seq``; exactly one of the late writer and the tombstone wins the unique index,
and a writer that loses retries with a new number, so no committed document is ever
skipped and no number is delivered twice. This works the same on a standalone server and
on a replica set, across any number of workers and instances.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

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


async def head(documents: AsyncCollection[Document], above: int = 0) -> int:
    """The highest number stored in documents (documents and tombstones), at least ``above``.

    Reads the positions above ``above`` (an index range): pass the highest number known to
    be stored, and the read is as short as what was written since.
    """
    top = above
    found = documents.find({SEQ_FIELD: {"$gt": above}}, {SEQ_FIELD: 1, "_id": 0})
    async for document in found:
        value = document.get(SEQ_FIELD)
        if isinstance(value, int) and not isinstance(value, bool):
            top = max(top, value)
    return top


def is_seq_conflict(write_error: Mapping[str, Any]) -> bool:
    """True when a duplicate-key write error (``DuplicateKeyError.details``, or one entry of
    a bulk write's ``writeErrors``) is on ``_seq`` (the number was taken), not another key."""
    key_pattern = write_error.get("keyPattern") or {}
    if key_pattern:
        return SEQ_FIELD in key_pattern
    return SEQ_FIELD in str(write_error.get("errmsg", ""))


def write_error_of(error: DuplicateKeyError) -> dict[str, Any]:
    """The write error of a single insert's DuplicateKeyError (its message when the server
    sent no details)."""
    return {"errmsg": str(error), **(error.details or {})}


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
    document: Document,
    max_attempts: int = 20,
) -> int:
    """Insert document with the next free ``_seq`` (read from the index; the server's
    workers use ``InsertBatcher``, which knows the head without a read).

    Any other DuplicateKeyError (same _id, same idempotency key) is re-raised; nothing was
    taken, so there is nothing to release.
    """
    above = 0
    for _ in range(max_attempts):
        above = await head(documents, above)
        try:
            await documents.insert_one({**document, SEQ_FIELD: above + 1})
        except DuplicateKeyError as error:
            if is_seq_conflict(write_error_of(error)):
                above += 1
                continue
            raise
        return above + 1
    raise RuntimeError(f"could not sequence a document after {max_attempts} attempts")


async def adopt_unsequenced(
    documents: AsyncCollection[Document], batch: int = 500, known_head: int = 0
) -> int:
    """Give a ``_seq`` to documents written without one (older producers). Returns how many.

    ``known_head``: a number known to be stored (a tailer's watermark), so that the head
    read, made once a legacy document is found, reads only the positions above it.
    """
    adopted = 0
    above: int | None = None  # the head, read once the first legacy document is found
    # {_seq: null} (missing or null) can use an ordinary index on _seq; $exists: false
    # cannot on every server, and this runs every few seconds.
    cursor = documents.find({SEQ_FIELD: None}, {"_id": 1, "timestamp": 1}).limit(batch)
    async for found in cursor:
        while True:
            above = await head(documents, known_head if above is None else above)
            try:
                result = await documents.update_one(
                    {"_id": found["_id"], SEQ_FIELD: None},
                    {"$set": {SEQ_FIELD: above + 1, **_normalised_timestamp(found)}},
                )
            except DuplicateKeyError:
                above += 1
                continue  # the number was taken meanwhile: take the next
            if result.modified_count:
                adopted += 1
                above += 1
            break  # adopted, or someone else adopted it (nothing was taken)
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
