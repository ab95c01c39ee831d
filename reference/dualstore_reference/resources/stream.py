# SPDX-License-Identifier: GPL-3.0-or-later
"""GET /v1/{collection}/stream: join the hub, replay from the store, then live, exactly once.

Join protocol (no gap, no duplicate): subscribe to the collection's hub first (the
subscription receives everything after the hub's watermark J), replay stored documents
with ``_seq`` in (resume point, J] from the database, then drain the subscription, which
only holds numbers above J. When the subscription overflows during a long replay, the
replay re-joins at the new watermark and continues from J, so history of any length can
be replayed. Live documents are matched against the filter in Python
(``stream.matcher``), so the database load does not grow with filtered subscribers;
replay uses the same query on the database.

Live delivery to an idle stream bypasses its queue and its task: the stream parks a
``DirectWriter`` on its subscription as the sink, and the hub's publish loop writes the
event (encoded once for all streams) straight to the connection with the ASGI ``send``
that ``stream.asgi.StreamingApp`` leaves in the request scope. A stream whose connection cannot take
the bytes at once falls back to its queue, drained in order by its own task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Set
from dataclasses import dataclass, field
from typing import Any

import falcon
import falcon.asgi
from pymongo.errors import PyMongoError

from dualstore_reference.problems import Problem
from dualstore_reference.security.stream_slots import Slot
from dualstore_reference.store import documents as stored
from dualstore_reference.store import sequence
from dualstore_reference.stream import pacing, sse, tokens
from dualstore_reference.stream.asgi import SEND_SCOPE_KEY, Send
from dualstore_reference.stream.direct import DirectWriter
from dualstore_reference.stream.hub import Hub, Subscription, SubscriptionClosed
from dualstore_reference.stream.matcher import Predicate, UnsupportedQuery, compile_query
from dualstore_reference.stream.service import StreamService
from dualstore_reference.stream.stepping import Stepped

Document = dict[str, Any]
FilterParser = Callable[[str], Document]
"""encoded filter -> MongoDB query; raises Problem("invalid-filter") on a bad filter."""
ClientIp = Callable[[falcon.asgi.Request], str]
Receive = Callable[[], Awaitable[dict[str, Any]]]

log = logging.getLogger(__name__)
REPLAY_BATCH = 500
LIVE_BATCH = 100
"""At most this many queued live events are joined into one write."""
def _remote_addr(req: falcon.asgi.Request) -> str:
    return req.remote_addr or "unknown"


@dataclass(slots=True)
class _Stream:
    """The state of one open stream (shared by its generator and its disconnect watcher)."""

    service: StreamService
    hub: Hub
    subscription: Subscription
    slot: Slot
    predicate: Predicate | None
    query: Document
    resume: tokens.ResumePoint
    skip: Set[int] = frozenset()
    disconnected: bool = False
    progress: float = field(default_factory=time.monotonic)
    closed: bool = False
    task: asyncio.Task[Any] | None = None
    watcher: _DisconnectWatch | None = None
    on_close: Callable[[], None] | None = None
    writer: DirectWriter | None = None
    position: int = 0
    """The last sequence number written (live phase)."""
    direct_sent: int = 0
    """Events written by the sink and not yet counted in the metrics."""

    def take(self, seq: int, frame: bytes) -> bool:
        """The subscription's sink while the stream is idle: write a live event at once.

        True when seq was handled (written, or already sent / skipped); False when the
        connection is still busy with an earlier write: the hub queues it instead.
        """
        if seq <= self.position or seq in self.skip:
            return True
        if self.writer is None or not self.writer.write(frame):
            return False
        self.position = seq
        self.progress = time.monotonic()
        self.direct_sent += 1
        return True

    def watch_stall(self) -> None:
        """The queue overflowed: cut the stream if its sends make no progress for long."""
        stalled = self.service.config.stalled_send_seconds
        loop = asyncio.get_running_loop()

        def check() -> None:
            if self.closed or not self.subscription.overflowed:
                return  # ended, or re-joined after a replay: nothing is stuck
            idle = time.monotonic() - self.progress
            if idle <= stalled:
                loop.call_later(stalled - idle + 0.5, check)
                return
            log.info("cutting a stalled stream from %s", self.slot.ip)
            self.close()
            if self.task is not None:
                self.task.cancel()

        loop.call_later(stalled + 0.5, check)

    def close(self) -> None:
        """Idempotent cleanup: leave the hub, stop watching, give back the slot."""
        if self.closed:
            return
        self.closed = True
        self.hub.unsubscribe(self.subscription)
        self.subscription.close("ended")
        self.service.slots.release_soon(self.slot)
        self.service.open_streams -= 1
        if self.watcher is not None:
            self.watcher.close()
        if self.writer is not None:
            self.writer.close()
        if self.on_close is not None:
            self.on_close()


class _DisconnectWatch:
    """Notices the client leaving even while the stream is idle: the ASGI ``receive`` is
    stepped by hand (``stream.stepping``), so an idle stream holds no task for it and
    nothing runs until a message arrives."""

    __slots__ = ("_receive", "_stepped", "_stream")

    def __init__(self, stream: _Stream, receive: Receive) -> None:
        self._stream = stream
        self._receive = receive
        self._stepped: Stepped | None = None
        self._listen()

    def _listen(self) -> None:
        self._stepped = Stepped(self._receive(), self._arrived)  # type: ignore[arg-type]  # reason: ASGI servers' receive is a coroutine

    def _arrived(self, message: dict[str, Any] | None, error: BaseException | None) -> None:
        stream = self._stream
        if stream.closed or error is not None or message is None:
            return
        if message.get("type") == "http.disconnect":
            stream.disconnected = True
            stream.subscription.close("disconnect")
            stream.close()
            return
        self._listen()

    def close(self) -> None:
        """Stop watching (the stream ended)."""
        if self._stepped is not None:
            self._stepped.close()


class StreamResource:
    """The SSE endpoint of every configured collection."""

    def __init__(
        self,
        service: StreamService,
        parse_filter: FilterParser | None = None,
        client_ip: ClientIp = _remote_addr,
        metrics: Any = None,
    ) -> None:
        self.service = service
        self.parse_filter = parse_filter
        self.client_ip = client_ip
        self.metrics = metrics
        for hub in service.hubs.values():
            hub.encoder = _encode

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response,
                     collection: str) -> None:
        """Open a stream (see the module docstring for the join protocol)."""
        service = self.service
        hub = service.hub(collection)
        if hub is None:
            raise Problem("unknown-collection", f"no collection named {collection!r}")
        if service.stopping.is_set():
            raise Problem("unavailable", "the server is shutting down", {"Retry-After": "1"})
        try:
            resume = tokens.resume_point(req.get_header("Last-Event-ID"), req.get_param("since"))
        except tokens.InvalidResumeToken as error:
            raise Problem("invalid-resume-token", str(error)) from None
        query: Document = {}
        predicate: Predicate | None = None
        encoded = req.get_param("filter")
        if encoded:
            if self.parse_filter is None:
                raise Problem("invalid-filter", "filters are not available")
            query = self.parse_filter(encoded)
            try:
                predicate = compile_query(query) if query else None
            except UnsupportedQuery as error:
                raise Problem("invalid-filter", str(error)) from None
        documents = service.database[collection]
        if not hub.ready.is_set():
            # The worker's tailer is still reading history after a start: join once it has
            # caught up, so the join point (and the live-only skip set) stays small.
            try:
                async with asyncio.timeout(service.config.ready_timeout_seconds):
                    await hub.ready.wait()
            except TimeoutError:
                raise Problem("unavailable", "the stream is starting; retry shortly",
                              {"Retry-After": "2"}) from None
        if resume.after_seq is not None and resume.after_seq > hub.watermark:
            # Above what this worker published: issued only if another worker stored it.
            head = await sequence.head(service.database[collection], hub.watermark)
            if resume.after_seq > head:
                raise Problem(
                    "invalid-resume-token",
                    f"event id {resume.after_seq} was never issued (the newest is {head})",
                )
        ip = self.client_ip(req)
        slot = await service.slots.acquire(ip)
        if slot is None:
            raise Problem(
                "too-many-streams",
                f"{service.slots.cap} streams are already open from {ip}",
                {"Retry-After": str(service.config.retry_after_seconds)},
            )
        service.open_streams += 1
        subscription = hub.subscribe(predicate)
        stream = _Stream(service, hub, subscription, slot, predicate, query, resume)
        subscription.on_overflow = stream.watch_stall
        send: Send | None = req.scope.get(SEND_SCOPE_KEY)
        if send is not None:
            stream.writer = DirectWriter(send)
        stream.task = asyncio.current_task()
        if self.metrics is not None:
            self.metrics.stream_opened(collection)
            stream.on_close = lambda: self.metrics.stream_closed(collection)
        # Falcon only notices a departed client when it next sends, so the stream watches
        # the ASGI receive channel itself (Falcon keeps it as ``req._receive``; the
        # resp.stream path, unlike resp.sse, never reads it). Without it, heartbeats
        # still detect the disconnect, one interval late.
        receive: Receive | None = getattr(req, "_receive", None)
        if receive is not None:
            stream.watcher = _DisconnectWatch(stream, receive)
        try:
            if resume.live_only:
                # Documents already committed at open time but not yet published by the
                # tailer belong before the start point: remember them so as not to send them.
                cursor = documents.find(
                    {sequence.SEQ_FIELD: {"$gt": subscription.start}}, {sequence.SEQ_FIELD: 1}
                )
                skip = {int(d[sequence.SEQ_FIELD]) async for d in cursor}
                if skip:  # (usually empty: an idle stream keeps the shared empty set)
                    stream.skip = skip
        except PyMongoError:
            stream.close()
            raise
        resp.content_type = "text/event-stream; charset=utf-8"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = self._events(stream, collection)

    async def _events(self, stream: _Stream, collection: str) -> AsyncIterator[bytes]:
        config = stream.service.config
        heartbeat = config.heartbeat_seconds
        sent_events = 0

        def sent(kind: str, count: int = 1) -> None:
            """Something went out: the heartbeat clock and the stall watch restart."""
            stream.progress = time.monotonic()
            if self.metrics is not None:
                self.metrics.event_sent(collection, kind, count)

        try:
            yield sse.retry(config.retry_ms) + sse.heartbeat()
            stream.progress = time.monotonic()
            resume = stream.resume
            position = resume.after_seq if resume.after_seq is not None else 0
            if not resume.live_only:
                documents = stream.service.database[collection]  # (a live-only stream keeps none)
                first = True
                while True:
                    join = stream.subscription.start
                    conditions: list[Document] = [
                        {sequence.SEQ_FIELD: {"$gt": position, "$lte": join}},
                        sequence.LIVE_DOCUMENTS,
                    ]
                    if stream.query:
                        conditions.append(stream.query)
                    if first and resume.since is not None:
                        conditions.append({"timestamp": {"$gte": resume.since}})
                    cursor = documents.find({"$and": conditions}).sort(
                        sequence.SEQ_FIELD, 1
                    ).batch_size(REPLAY_BATCH)
                    # A selective filter over a long history can scan for longer than the
                    # heartbeat interval between matches: heartbeats go out meanwhile.
                    async for document in pacing.paced(
                        aiter(cursor), lambda: stream.progress + heartbeat
                    ):
                        if stream.closed or stream.service.stopping.is_set():
                            return  # client gone or server stopping: end at an event boundary
                        if document is None:
                            yield sse.heartbeat()
                            sent("heartbeat")
                            continue
                        seq = int(document[sequence.SEQ_FIELD])
                        yield _encode(seq, document)
                        sent_events += 1
                        sent("insert")
                    position = join
                    first = False
                    if not stream.subscription.overflowed:
                        break
                    # The live queue overflowed while history was replayed: join again.
                    stream.hub.unsubscribe(stream.subscription)
                    stream.subscription = stream.hub.subscribe(stream.predicate)
                    stream.subscription.on_overflow = stream.watch_stall
            else:
                position = stream.subscription.start
            writer = stream.writer
            while True:
                subscription = stream.subscription
                if stream.service.stopping.is_set() and subscription.pending() == 0:
                    return
                if writer is not None and subscription.pending() == 0:
                    stream.position = position
                    subscription.sink = stream.take  # idle: the hub writes for us
                timeout = stream.progress + heartbeat - time.monotonic()
                try:
                    item = await subscription.get(max(timeout, 0.0))
                finally:
                    subscription.sink = None
                if writer is not None:
                    await writer.wait_idle()  # a direct write in flight goes out first
                    position = max(position, stream.position)
                    if stream.direct_sent:
                        sent_events += stream.direct_sent
                        if self.metrics is not None:
                            self.metrics.event_sent(collection, "insert", stream.direct_sent)
                        stream.direct_sent = 0
                    if writer.error is not None:
                        log.debug("stream on %s ended: %s", collection, writer.error)
                        return
                if item is None:
                    if time.monotonic() < stream.progress + heartbeat:
                        continue  # direct writes restarted the heartbeat clock
                    yield sse.heartbeat()
                    sent("heartbeat")
                    continue
                # Everything queued goes out in one write (a client that fell behind
                # catches up with one chunk, not one send per event).
                frames: list[bytes] = []
                next_item: tuple[int, Document] | None = item
                while next_item is not None:
                    seq, document = next_item
                    if seq > position and seq not in stream.skip:
                        position = seq
                        frames.append(
                            stream.hub.frame(seq, functools.partial(_encode, seq, document))
                        )
                    if len(frames) >= LIVE_BATCH or subscription.closed_reason not in (
                        None, "overflow"
                    ):
                        break
                    next_item = subscription.get_nowait()
                if frames:
                    yield b"".join(frames)
                    sent_events += len(frames)
                    sent("insert", len(frames))
        except SubscriptionClosed as closed:
            log.debug("stream on %s ended: %s", collection, closed.reason)
        except PyMongoError as error:
            log.warning("stream on %s ended by a database error: %s", collection, error)
        finally:
            stream.service.events_sent += sent_events
            stream.close()


def _encode(seq: int, document: Document) -> bytes:
    return sse.insert(tokens.format_token(seq), stored.to_api(document))

