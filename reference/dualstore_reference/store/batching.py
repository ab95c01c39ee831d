# SPDX-License-Identifier: GPL-3.0-or-later
"""Group commit: concurrent inserts of one worker share one counter update and one insert_many.

While a batch is in flight, new inserts queue; the next batch takes them all (up to
MAX_BATCH), allocates that many consecutive ``_seq`` numbers with one ``$inc`` and writes
them with one unordered ``insert_many``. Nothing waits on a timer, so a lone insert costs
the same two round trips as before, and under load the round trips per document fall.
The fencing protocol of ``sequence`` is unchanged: a document whose number was fenced by
a reader (duplicate ``_seq``) is retried alone with ``insert_sequenced``; a document that
fails on another unique key (``_id``, idempotency key) releases its number with a
tombstone and its caller gets the DuplicateKeyError.
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
DUPLICATE_KEY = 11000

log = logging.getLogger(__name__)


def _seq_conflict(error: dict[str, Any]) -> bool:
    pattern = error.get("keyPattern") or {}
    if pattern:
        return sequence.SEQ_FIELD in pattern
    return sequence.SEQ_FIELD in str(error.get("errmsg", ""))


def _succeed(future: asyncio.Future[int], seq: int) -> None:
    if not future.done():  # the caller may have been cancelled (client went away)
        future.set_result(seq)


def _fail(future: asyncio.Future[int], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class InsertBatcher:
    """Batches ``insert_sequenced`` calls of one collection in one process."""

    def __init__(
        self, documents: AsyncCollection[Document], counters: AsyncCollection[Document]
    ) -> None:
        self.documents = documents
        self.counters = counters
        self._queue: list[tuple[Document, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        self.inserted = 0
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
        """Insert document with a fresh ``_seq`` (as ``sequence.insert_sequenced``)."""
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
                for _, future in batch:
                    _fail(future, error)

    async def _write(self, batch: list[tuple[Document, asyncio.Future[int]]]) -> None:
        if len(batch) == 1:
            document, future = batch[0]
            try:
                seq = await sequence.insert_sequenced(self.documents, self.counters, document)
            except Exception as error:
                _fail(future, error)
            else:
                self._committed(seq, document)
                _succeed(future, seq)
            return
        first = await sequence.allocate(self.counters, self.documents.name, len(batch))
        rows = [
            {**document, sequence.SEQ_FIELD: first + i} for i, (document, _) in enumerate(batch)
        ]
        failed: dict[int, dict[str, Any]] = {}
        try:
            await self.documents.insert_many(rows, ordered=False)
        except BulkWriteError as error:
            details = error.details or {}
            if details.get("writeConcernErrors"):
                raise
            for write_error in details.get("writeErrors", []):
                failed[int(write_error["index"])] = write_error
            if any(e.get("code") != DUPLICATE_KEY for e in failed.values()):
                raise
        self.batches += 1
        for index, (document, future) in enumerate(batch):
            write_error = failed.get(index)
            if write_error is None:
                self.inserted += 1
                self._committed(first + index, document)
                _succeed(future, first + index)
            elif _seq_conflict(write_error):  # a reader fenced this number: retry alone
                try:
                    seq = await sequence.insert_sequenced(self.documents, self.counters, document)
                except Exception as retry_error:
                    _fail(future, retry_error)
                else:
                    self._committed(seq, document)
                    _succeed(future, seq)
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
