# SPDX-License-Identifier: GPL-3.0-or-later
"""One gap-aware tailer per collection per worker: reads ``_seq`` order, fences holes, publishes.

The tailer keeps a watermark W (every number <= W was published or was a tombstone) and
reads ``_seq > W`` in order. A run that starts at W + 1 is published; a hole at W + 1 with
higher numbers visible is waited on for up to ``gap_timeout`` seconds and then fenced with
``store.sequence.fence``: a claimed number is skipped, a lost claim means the late
document has committed and is read next. A MongoDB change stream (insert events) is used
only as a wake-up where the server has one; otherwise, and always as a safety net, the
tailer polls. The database work is per tailer, independent of how many clients listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from dualstore_reference.store import sequence
from dualstore_reference.stream.hub import Hub

Document = dict[str, Any]

log = logging.getLogger(__name__)
_POSITION_ONLY = {
    sequence.SEQ_FIELD: 1, sequence.TOMBSTONE_FIELD: 1, sequence.INGESTED_FIELD: 1, "_id": 1
}


def short_error(error: Exception) -> str:
    """The first sentence of a driver error (without the topology description)."""
    return f"{type(error).__name__}: {str(error).split(', Timeout:')[0][:200]}"


class CollectionTailer:
    """Feeds a Hub with a collection's documents in ``_seq`` order, without gaps or repeats."""

    def __init__(
        self,
        documents: AsyncCollection[Document],
        hub: Hub,
        *,
        gap_timeout: float = 5.0,
        poll_interval: float = 0.2,
        safety_interval: float = 2.0,
        adopt_interval: float = 5.0,
        batch: int = 500,
    ) -> None:
        self.documents = documents
        self.hub = hub
        self.gap_timeout = gap_timeout
        self.poll_interval = poll_interval
        self.safety_interval = safety_interval
        self.adopt_interval = adopt_interval
        self.batch = batch
        self.change_stream_active = False
        """True while a change feed delivers this collection's inserts (False: polling);
        set by the ``ChangeFeed``."""
        self.reads = 0
        """How many ``find`` round trips the tailer made (for tests and benchmarks)."""
        self.fenced = 0
        """How many holes this tailer claimed with a tombstone."""
        self.published_in_place = 0
        """How many documents were published straight from the change stream."""
        self.published_locally = 0
        """How many documents were published from this worker's own acknowledged inserts."""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._gap_seen_at: float | None = None
        self._adopt_soon = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        """Start the tailing task and the adoption sweep (change events come from a
        ``ChangeFeed``, one per worker, through :meth:`changed`)."""
        self._stopping = False
        self._tasks.append(asyncio.create_task(self._run(), name=f"tailer:{self.hub.collection}"))
        self._tasks.append(
            asyncio.create_task(self._adopt(), name=f"tailer-adopt:{self.hub.collection}")
        )

    async def stop(self) -> None:
        """Stop the tasks."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def wake(self) -> None:
        """Ask for a read now (e.g. after a local insert)."""
        self._wake.set()

    def published_head(self) -> int:
        """A number stored with every lower one (the hub's watermark: published or fenced)."""
        return self.hub.watermark

    def changed(self, document: Document) -> None:
        """An insert the change stream reported (its full document): publish it in place
        when it is the next number, skip it when it was published already, and otherwise
        wake the read in ``_seq`` order."""
        if sequence.SEQ_FIELD not in document:
            self._adopt_soon.set()  # an older producer: adopt it now
        elif self._published(document):
            return
        elif self._publish_next(document):
            self.published_in_place += 1
            return
        self._wake.set()

    def committed(self, seq: int, document: Document) -> None:
        """An insert this worker had acknowledged (the batcher's ``on_committed``).

        Published at once when it is the next number, so this worker's subscribers do not
        wait for the change stream's round trip; the change stream and the read in ``_seq``
        order then skip it. Anything else (a hole, before the first catch-up) is left to
        them, as for every other worker's inserts.
        """
        if self._publish_next(document):  # the batcher's document carries seq as _seq
            self.published_locally += 1

    def _ready_seq(self, document: Document) -> int | None:
        """The document's ``_seq`` once the hub has caught up (None before, or not a number)."""
        seq = document.get(sequence.SEQ_FIELD)
        if not self.hub.ready.is_set() or not isinstance(seq, int) or isinstance(seq, bool):
            return None
        return seq

    def _published(self, document: Document) -> bool:
        """True when the document's number is at or below the watermark: it was published
        already (by this worker's own insert), or the number was fenced, which a stored
        document cannot hold. No read is needed for it."""
        seq = self._ready_seq(document)
        return seq is not None and seq <= self.hub.watermark

    def _publish_next(self, document: Document) -> bool:
        """Publish a whole inserted document (from the change stream or this worker's own
        insert) when its ``_seq`` is the next number.

        When its ``_seq`` is watermark + 1 (the usual case: numbers commit in order) it is
        published at once, without a read (one round trip fewer per event and per worker).
        Anything else (a hole, a reorder, before the first catch-up) is left to the read in
        ``_seq`` order, which stays the authority and skips numbers published here.
        """
        seq = self._ready_seq(document)
        if seq is None or seq != self.hub.watermark + 1:
            return False
        tombstone = bool(document.get(sequence.TOMBSTONE_FIELD))
        self.hub.publish(seq, None if tombstone else document)
        return True

    async def _adopt(self) -> None:
        """Sequence documents of older producers every ``adopt_interval`` (at once on a
        change-stream hint), in a task of its own: the sweep's round trips never delay a
        read that a wake-up asked for."""
        while not self._stopping:
            self._adopt_soon.clear()
            try:
                if await sequence.adopt_unsequenced(
                    self.documents, known_head=self.hub.watermark
                ):
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except PyMongoError as error:
                log.warning("tailer %s: adoption failed: %s", self.hub.collection,
                            short_error(error))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.adopt_interval):
                    await self._adopt_soon.wait()

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            # Clear the wake-up BEFORE the read: a change-stream wake-up that arrives while
            # the read is in flight then makes the wait below return at once, instead of
            # being erased and leaving its document to the next safety poll.
            self._wake.clear()
            try:
                more = await self.step()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except PyMongoError as error:
                log.warning("tailer %s: database error %s; retrying", self.hub.collection,
                            short_error(error))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if more:
                continue
            interval = self.safety_interval if self.change_stream_active else self.poll_interval
            if self._gap_seen_at is not None:
                interval = min(interval, self.poll_interval)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()

    async def step(self) -> bool:
        """One read: publish the contiguous run after the watermark, handle a hole.

        Returns True when another read should follow at once (a full batch, or progress
        after fencing).
        """
        watermark = self.hub.watermark
        # Nobody listening (an idle collection, or catching up after a start): read only the
        # positions, not the documents. If someone joined during the read, read again.
        light = not self.hub.has_consumers()
        projection = _POSITION_ONLY if light else None
        cursor = self.documents.find(
            {sequence.SEQ_FIELD: {"$gt": watermark}}, projection
        ).sort(sequence.SEQ_FIELD, 1).limit(self.batch)
        found = await cursor.to_list(None)
        self.reads += 1
        if light and self.hub.has_consumers():
            return True
        published_any = False
        hole_before: Document | None = None
        for document in found:
            seq = int(document[sequence.SEQ_FIELD])
            if seq <= self.hub.watermark:
                continue  # published from the change stream while this read was in flight
            if seq != self.hub.watermark + 1:
                hole_before = document
                break
            tombstone = bool(document.get(sequence.TOMBSTONE_FIELD))
            self.hub.publish(seq, None if tombstone else document)
            published_any = True
        if hole_before is None:
            self._gap_seen_at = None
            if not found or len(found) < self.batch:
                self.hub.ready.set()
            return len(found) >= self.batch
        # A hole at watermark + 1 while a higher number is visible.
        now = asyncio.get_running_loop().time()
        if published_any or self._gap_seen_at is None:
            self._gap_seen_at = now
        if now - self._gap_seen_at < self.gap_timeout and not self._stale(hole_before):
            return published_any
        missing = self.hub.watermark + 1
        if await sequence.fence(self.documents, missing):
            self.fenced += 1
            log.info("tailer %s: fenced hole at %d", self.hub.collection, missing)
        self._gap_seen_at = None
        return True

    def _stale(self, document: Document) -> bool:
        """True when the document after the hole was stored long ago (an old, dead hole)."""
        ingested = document.get(sequence.INGESTED_FIELD)
        if not isinstance(ingested, dt.datetime):
            return False
        if ingested.tzinfo is None:
            ingested = ingested.replace(tzinfo=dt.UTC)
        age = (dt.datetime.now(dt.UTC) - ingested).total_seconds()
        return age > max(self.gap_timeout * 4, 30.0)
