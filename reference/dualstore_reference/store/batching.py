# SPDX-License-Identifier: GPL-3.0-or-later
"""Group commit with known numbers: one worker's inserts of a collection, one round trip each.

While a batch is in flight, new inserts queue; the next batch takes them all (up to
MAX_BATCH) and writes them with consecutive ``_seq`` numbers after the head this worker
knows (its own last insert, or what its stream tailer has published, whichever is
higher), in one unordered ``insert_many``; a lone insert is one ``insert_one``. Nothing
waits on a timer and no counter is updated: the unique index on ``_seq`` is the allocator
(see ``sequence``). A document whose number another writer took (or a reader fenced) gets
DuplicateKeyError on ``_seq``: the batcher reads the head above its batch and writes it
again with the next number. A document that fails on another unique key (``_id``,
idempotency key) releases its number with a tombstone, so readers need not wait for it,
and its caller gets the DuplicateKeyError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from . import sequence

Document = dict[str, Any]
Committed = Callable[[int, Document], None]
"""Told (seq, stored document) of every insert this batcher had acknowledged, in seq order."""
MAX_BATCH = 128
MAX_ATTEMPTS = 20
DUPLICATE_KEY = 11000

log = logging.getLogger(__name__)


def _succeed(future: asyncio.Future[int], seq: int) -> None:
    if not future.done():  # the caller may have been cancelled (client went away)
        future.set_result(seq)


def _fail(future: asyncio.Future[int], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class InsertBatcher:
    """Batches inserts of one collection in one process, numbering them from a known head."""

    def __init__(
        self,
        documents: AsyncCollection[Document],
        known_head: Callable[[], int] | None = None,
    ) -> None:
        self.documents = documents
        self.known_head = known_head
        """Optional: a number known to be stored with everything below it (the worker's
        stream watermark); saves the head read when another worker wrote last."""
        self._queue: list[tuple[Document, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._next: int | None = None
        """The number after this batcher's last write (None: unknown, read the head)."""
        self.batches = 0
        self.inserted = 0
        self.conflicts = 0
        """Documents written again because another writer had taken their number."""
        self.on_committed: Committed | None = None
        """Called synchronously with each acknowledged (seq, stored document) before its
        caller is answered (the worker's stream tailer publishes it without waiting for
        the database to tell it)."""

    def _committed(self, seq: int, document: Document) -> None:
        listener = self.on_committed
        if listener is None:
            return
        try:
            listener(seq, {**document, sequence.SEQ_FIELD: seq})
        except Exception:  # never fail an acknowledged insert because of a listener
            log.exception("insert listener failed on %s seq %d", self.documents.name, seq)

    async def insert(self, document: Document) -> int:
        """Insert document with a fresh ``_seq``; returns it."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((document, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._write(batch)
            except Exception as error:  # the whole batch failed (e.g. database down)
                self._next = None  # whatever was stored, read the head next time
                for _, future in batch:
                    _fail(future, error)

    async def _first_free(self) -> int:
        """The number after the highest known to be stored (read when nothing is known)."""
        hint = self.known_head() if self.known_head is not None else 0
        if self._next is None:
            return await sequence.head(self.documents, hint) + 1
        return max(self._next, hint + 1)

    async def _write(self, batch: list[tuple[Document, asyncio.Future[int]]]) -> None:
        pending = batch
        first = await self._first_free()
        for _ in range(MAX_ATTEMPTS):
            taken = await self._write_numbered(pending, first)
            self.batches += 1
            # Every number first .. first + len(pending) - 1 is now stored (a document of
            # ours, another writer's, or a tombstone; should a release's tombstone fail, a
            # reader fences the hole after the gap timeout).
            last = first + len(pending) - 1
            self._next = last + 1
            if not taken:
                return
            self.conflicts += len(taken)
            pending = taken
            first = await sequence.head(self.documents, last) + 1
        error = RuntimeError(f"could not sequence a document after {MAX_ATTEMPTS} attempts")
        for _, future in pending:
            _fail(future, error)

    async def _write_numbered(
        self, batch: list[tuple[Document, asyncio.Future[int]]], first: int
    ) -> list[tuple[Document, asyncio.Future[int]]]:
        """Write batch as first, first + 1, ...; answer each caller. Returns the documents
        whose number was taken by another writer (to be written again)."""
        failed: dict[int, dict[str, Any]] = {}
        if len(batch) == 1:
            try:
                await self.documents.insert_one({**batch[0][0], sequence.SEQ_FIELD: first})
            except DuplicateKeyError as error:
                failed[0] = sequence.write_error_of(error)
        else:
            rows = [
                {**document, sequence.SEQ_FIELD: first + i}
                for i, (document, _) in enumerate(batch)
            ]
            try:
                await self.documents.insert_many(rows, ordered=False)
            except BulkWriteError as error:
                details = error.details or {}
                if details.get("writeConcernErrors"):
                    raise
                for write_error in details.get("writeErrors", []):
                    failed[int(write_error["index"])] = write_error
                if any(e.get("code", DUPLICATE_KEY) != DUPLICATE_KEY for e in failed.values()):
                    raise
        taken: list[tuple[Document, asyncio.Future[int]]] = []
        for index, (document, future) in enumerate(batch):
            write_error = failed.get(index)
            if write_error is None:
                self.inserted += 1
                self._committed(first + index, document)
                _succeed(future, first + index)
            elif sequence.is_seq_conflict(write_error):  # another writer (or a fence) has it
                taken.append((document, future))
            else:  # another unique key: give the number back, report the duplicate
                with contextlib.suppress(Exception):
                    await sequence.fence(self.documents, first + index)
                _fail(
                    future,
                    DuplicateKeyError(
                        str(write_error.get("errmsg", "duplicate key")),
                        DUPLICATE_KEY,
                        write_error,
                    ),
                )
        return taken
