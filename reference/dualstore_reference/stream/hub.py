# SPDX-License-Identifier: GPL-3.0-or-later
"""Fan-out of one tailer's contiguous run of documents to many bounded subscriber queues."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dualstore_spec import facts

Document = dict[str, Any]
Predicate = Callable[[Document], bool]
Listener = Callable[[int, Document], None]
Encoder = Callable[[int, Document], bytes]
Sink = Callable[[int, bytes], bool]
"""Takes (seq, encoded event) synchronously; False when it cannot now (queue it instead)."""

log = logging.getLogger(__name__)


class SubscriptionClosed(Exception):
    """The subscription ended: the client overflowed its queue, left, or the server stops."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NO_ITEMS: collections.deque[tuple[int, Document]] = collections.deque(maxlen=0)
"""Shared empty queue of every subscription that never had to queue (most, with a sink)."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass(eq=False, slots=True)
class Subscription:
    """One subscriber's bounded queue of ``(seq, document)`` items after ``start``.

    A bounded deque plus one future per wait rather than an ``asyncio.Queue`` or an
    ``asyncio.Event``: closing must wake a consumer blocked on an empty queue, a full queue
    must close (not block the publisher), and an idle subscription should cost little
    memory (the deque is made on the first queued item; no Event and its waiter deque).
    """

    start: int
    """The hub's watermark when the subscription was made: every item has seq > start."""
    maxsize: int
    predicate: Predicate | None = None
    closed_reason: str | None = None
    sink: Sink | None = None
    """Set by a consumer that is idle and can write at once: items then bypass the queue
    (no task wake-up per item) while the queue is empty and the sink accepts them."""
    on_overflow: Callable[[], None] | None = None
    """Called once when the subscription closes with reason "overflow"."""
    _items: collections.deque[tuple[int, Document]] = field(default_factory=lambda: _NO_ITEMS)
    _waiter: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        """True once closed (queued items may still be drained when the reason is overflow)."""
        return self.closed_reason is not None

    @property
    def overflowed(self) -> bool:
        """True when the subscriber fell more than ``maxsize`` items behind."""
        return self.closed_reason == "overflow"

    def offer(self, seq: int, document: Document, frame: bytes | None = None) -> None:
        """Hand over an item (publisher side): to the sink when it takes it, else to the
        queue; close with reason "overflow" when the queue is full."""
        if self.closed_reason is not None:
            return
        if self.predicate is not None and not self.predicate(document):
            return
        items = self._items
        sink = self.sink
        if sink is not None and frame is not None and not items and sink(seq, frame):
            return
        if len(items) >= self.maxsize:
            self.close("overflow")
            return
        if items is _NO_ITEMS:
            items = self._items = collections.deque()
        items.append((seq, document))
        self._notify()

    def _notify(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, reason: str) -> None:
        """Close the subscription and wake its consumer."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self.sink = None
            if reason == "overflow" and self.on_overflow is not None:
                self.on_overflow()
        self._notify()

    def pending(self) -> int:
        """How many items are queued."""
        return len(self._items)

    def get_nowait(self) -> tuple[int, Document] | None:
        """The next queued item, or None when the queue is empty."""
        return self._items.popleft() if self._items else None

    async def get(self, timeout: float) -> tuple[int, Document] | None:
        """The next item; None after timeout seconds without one.

        Queued items are returned before the subscription reports being closed when the
        reason is overflow (they are contiguous); any other reason ends it at once.
        Raises SubscriptionClosed when nothing more will come.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.closed_reason is not None and self.closed_reason != "overflow":
                raise SubscriptionClosed(self.closed_reason)
            if self._items:
                return self._items.popleft()
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            if deadline <= loop.time():
                return None
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(deadline, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None


class Hub:
    """Where a collection's tailer publishes; subscribers join at the current watermark."""

    def __init__(self, collection: str, queue_size: int | None = None) -> None:
        self.collection = collection
        self.queue_size = (
            facts.current().subscriber_queue_default if queue_size is None else queue_size
        )
        """Items a subscriber may fall behind before it is closed (default: the spec's)."""
        self.watermark = 0
        """Every sequence number <= watermark has been published (or was a tombstone)."""
        self.ready = asyncio.Event()
        """Set once the tailer has caught up with the stored history at least once."""
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Listener] = []
        self._advanced = asyncio.Event()
        self.published = 0
        """How many documents were published (for metrics and tests)."""
        self._frames: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._frames_kept = max(64, 2 * self.queue_size)
        self.encoder: Encoder | None = None
        """Encodes a published document once for every sink (set by the stream resource)."""

    def frame(self, seq: int, encode: Callable[[], bytes]) -> bytes:
        """The encoded event of seq, computed once for all subscribers (a bounded cache)."""
        found = self._frames.get(seq)
        if found is None:
            found = self._frames[seq] = encode()
            while len(self._frames) > self._frames_kept:
                self._frames.popitem(last=False)
        return found

    def subscribe(self, predicate: Predicate | None = None) -> Subscription:
        """Join now: the subscription gets every matching item with seq > current watermark."""
        subscription = Subscription(
            start=self.watermark, maxsize=self.queue_size, predicate=predicate
        )
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Leave (idempotent)."""
        self._subscribers.discard(subscription)

    def add_listener(self, listener: Listener) -> None:
        """Call listener(seq, document) synchronously for every published document."""
        self._listeners.append(listener)

    def has_consumers(self) -> bool:
        """True when a subscriber or listener would receive a published document."""
        return bool(self._subscribers or self._listeners)

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def publish(self, seq: int, document: Document | None) -> None:
        """Advance the watermark to seq, handing document (None = tombstone) to everyone."""
        if seq <= self.watermark:
            raise ValueError(f"seq {seq} is not after the watermark {self.watermark}")
        self.watermark = seq
        if document is not None:
            self.published += 1
            frame: bytes | None = None
            encoder = self.encoder
            if encoder is not None and self._subscribers:
                frame = self.frame(seq, functools.partial(encoder, seq, document))
            overflowed: list[Subscription] = []
            for subscription in tuple(self._subscribers):
                subscription.offer(seq, document, frame)
                if subscription.closed_reason == "overflow":
                    overflowed.append(subscription)
            for subscription in overflowed:
                self._subscribers.discard(subscription)
            for listener in self._listeners:
                try:
                    listener(seq, document)
                except Exception:  # a listener must never stop delivery to subscribers
                    log.exception("hub listener failed on %s seq %d", self.collection, seq)
        self._advanced.set()

    def close_all(self, reason: str) -> None:
        """Close every subscription (server shutdown)."""
        for subscription in list(self._subscribers):
            subscription.close(reason)
        self._subscribers.clear()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until the watermark reaches seq; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.watermark < seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._advanced.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._advanced.wait()
            except TimeoutError:
                return self.watermark >= seq
        return True
