# SPDX-License-Identifier: GPL-3.0-or-later
"""Document storage: insert (sequenced, idempotent), get by id, recent with keyset cursors."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from . import cursors, idempotency, sequence, timestamps
from .batching import InsertBatcher
from .cursors import CursorError as CursorError  # re-exported: the API maps it to 400

Document = dict[str, Any]
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Ids the API can name (ours are 32 lowercase hex; legacy ObjectIds are 24 hex)."""
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
RECENT_WINDOWS = (
    dt.timedelta(hours=1),
    dt.timedelta(days=1),
    dt.timedelta(days=30),
    dt.timedelta(days=366),
)
"""Time windows tried below the anchor before the unbounded query (see recent())."""


@dataclass(frozen=True)
class InsertResult:
    """The API id of the stored document and whether this call created it."""

    id: str
    created: bool
    seq: int | None = None


def api_id(raw: Any) -> str:
    """The API form of a stored ``_id`` (ObjectIds of legacy documents as 24 hex)."""
    return str(raw)


def to_api(document: Document) -> Document:
    """Stored document (ours or a legacy shape) -> the spec's Doc object.

    Doc = {id, text, timestamp (ISO 8601 UTC, ms, ``Z``), metadata}. Internal fields are
    never exposed. A legacy document without a usable timestamp gets the time it was
    ingested, or its ObjectId's creation time, or the epoch.
    """
    when = timestamps.to_datetime(document.get("timestamp"))
    if when is None:
        when = timestamps.to_datetime(document.get(sequence.INGESTED_FIELD))
    if when is None and isinstance(document.get("_id"), ObjectId):
        when = timestamps.to_datetime(document["_id"].generation_time)
    if when is None:
        when = timestamps.from_epoch_ms(0)
    text = document.get("text")
    metadata = document.get("metadata")
    return {
        "id": api_id(document.get("_id")),
        "text": text if isinstance(text, str) else ("" if text is None else str(text)),
        "timestamp": timestamps.format_iso(when),
        "metadata": _plain(metadata) if isinstance(metadata, dict) else {},
    }


def _plain(value: Any) -> Any:
    """BSON values -> JSON values (dates as ISO strings, ObjectIds as hex)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities have no JSON form
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    when = timestamps.to_datetime(value)
    if when is not None:
        return timestamps.format_iso(when)
    return str(value)


def cursor_position(document: Document) -> tuple[int, int]:
    """(epoch ms, _seq) of a stored document: where a page that ends with it continues."""
    when = timestamps.to_datetime(document.get("timestamp")) or timestamps.from_epoch_ms(0)
    return timestamps.to_epoch_ms(when), int(document.get(sequence.SEQ_FIELD, 0))


class CollectionStore:
    """One API collection = one MongoDB collection of the same name."""

    def __init__(self, database: AsyncDatabase[Document], name: str) -> None:
        self.name = name
        self.documents: AsyncCollection[Document] = database[name]
        self.batcher = InsertBatcher(self.documents)
        self.cursor_key = cursors.CursorKey(database[sequence.COUNTERS_COLLECTION])

    async def ensure_indexes(self) -> None:
        """Indexes the queries need: _seq (unique), recent order, idempotency keys."""
        await sequence.ensure_indexes(self.documents)
        await self.documents.create_index(
            [("timestamp", DESCENDING), (sequence.SEQ_FIELD, DESCENDING)], name="recent_order"
        )
        await idempotency.drop_legacy_index(self.documents)
        await self.documents.create_index(
            [(sequence.SEQ_FIELD, ASCENDING), ("_id", ASCENDING)], name="seq_lookup"
        )

    async def insert(self, body: Document, idempotency_key: str | None = None) -> InsertResult:
        """Store a validated NewDoc body; replay the earlier result for a repeated key.

        Raises idempotency.KeyReuse when the key was used with a different body.
        """
        digest = idempotency.digest(body) if idempotency_key else None
        if idempotency_key is not None and digest is not None:
            earlier = await idempotency.find(self.documents, idempotency_key, digest)
            if earlier is not None:
                return InsertResult(id=earlier, created=False)
        when = (
            timestamps.parse_rfc3339(body["timestamp"])
            if body.get("timestamp") is not None
            else timestamps.now()
        )
        document: Document = {
            "_id": (
                idempotency.document_id(self.name, idempotency_key)
                if idempotency_key is not None
                else uuid.uuid4().hex
            ),
            "text": body["text"],
            "timestamp": when,
            "metadata": body.get("metadata") or {},
            sequence.INGESTED_FIELD: timestamps.now(),
        }
        if idempotency_key is not None and digest is not None:
            document[idempotency.FIELD] = {"key": idempotency_key, "digest": digest}
        try:
            seq = await self.batcher.insert(document)
        except DuplicateKeyError:
            if idempotency_key is None or digest is None:
                raise
            # A concurrent request with the same key won (same _id): replay it.
            earlier = await idempotency.find(self.documents, idempotency_key, digest)
            if earlier is None:
                raise
            return InsertResult(id=earlier, created=False)
        return InsertResult(id=document["_id"], created=True, seq=seq)

    async def get(self, document_id: str) -> Document | None:
        """The stored document with this API id (indexed _id lookup), or None."""
        if not ID_PATTERN.match(document_id):
            return None
        key: Any = document_id
        if _OBJECT_ID.match(document_id):
            key = {"$in": [document_id, ObjectId(document_id)]}
        return await self.documents.find_one({"_id": key, **sequence.LIVE_DOCUMENTS})

    async def recent(
        self, limit: int, query: Document | None = None, cursor: str | None = None
    ) -> tuple[list[Document], str | None]:
        """Newest first by (timestamp, _seq); keyset pagination, stable under inserts.

        The page is looked for in growing time windows below the anchor (the cursor's
        time, or now): a window holding more than ``limit`` documents contains the whole
        page, because everything outside it is older. The result is the same as one
        unbounded query; the windows only keep the work proportional to the page on
        stores whose planner sorts in memory (a range on ``timestamp`` uses the index).
        """
        clauses: list[Document] = [dict(sequence.LIVE_DOCUMENTS)]
        if query:
            clauses.append(query)
        anchor = timestamps.now()
        bound = cursors.scope(self.name, query)
        key = await self.cursor_key.get()
        if cursor:
            millis, seq = cursors.decode(key, bound, cursor)
            anchor = timestamps.from_epoch_ms(millis)
            clauses.append(
                {
                    "$or": [
                        {"timestamp": {"$lt": anchor}},
                        {"timestamp": anchor, sequence.SEQ_FIELD: {"$lt": seq}},
                    ]
                }
            )
        page: list[Document] = []
        for window in (*RECENT_WINDOWS, None):
            bounded = list(clauses)
            if window is not None:
                try:
                    bounded.append({"timestamp": {"$gte": anchor - window}})
                except OverflowError:
                    continue
            found = (
                self.documents.find({"$and": bounded})
                .sort([("timestamp", DESCENDING), (sequence.SEQ_FIELD, DESCENDING)])
                .limit(limit + 1)
            )
            page = [document async for document in found]
            if len(page) > limit:
                break
        next_cursor = (
            cursors.encode(key, bound, *cursor_position(page[limit - 1]))
            if len(page) > limit
            else None
        )
        return page[:limit], next_cursor

    async def seqs_matching(self, query: Document) -> set[int]:
        """The ``_seq`` of every live document matching a (translated) filter."""
        found = self.documents.find(
            {"$and": [query, sequence.LIVE_DOCUMENTS, {sequence.SEQ_FIELD: {"$exists": True}}]},
            {sequence.SEQ_FIELD: 1, "_id": 0},
        )
        return {int(document[sequence.SEQ_FIELD]) async for document in found}

    async def by_seqs(self, seqs: list[int]) -> dict[int, Document]:
        """Live documents by ``_seq``."""
        if not seqs:
            return {}
        found = self.documents.find(
            {sequence.SEQ_FIELD: {"$in": seqs}, **sequence.LIVE_DOCUMENTS}
        )
        return {int(document[sequence.SEQ_FIELD]): document async for document in found}

    async def adopt_legacy(self) -> int:
        """Give legacy documents a ``_seq`` (and a BSON-date timestamp); returns how many."""
        total = 0
        while True:
            adopted = await sequence.adopt_unsequenced(self.documents)
            total += adopted
            if adopted == 0:
                return total


class Store:
    """All configured collections of one database."""

    def __init__(self, database: AsyncDatabase[Document], names: tuple[str, ...]) -> None:
        self.database = database
        self.collections = {name: CollectionStore(database, name) for name in names}

    def __contains__(self, name: object) -> bool:
        return name in self.collections

    def __getitem__(self, name: str) -> CollectionStore:
        return self.collections[name]

    async def ensure_indexes(self) -> None:
        """Create every collection's indexes (idempotent; safe from several workers)."""
        for collection in self.collections.values():
            await collection.ensure_indexes()
