# SPDX-License-Identifier: GPL-3.0-or-later
"""I/O-free stream session: SSE parsing, resume id, ``retry``, backoff with jitter, dedupe."""

from __future__ import annotations

import contextlib
import json
import random
import socket
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from dualstore_sse import Event, Item, SSEParser

from dualstore_client.encoding import Filter, encode_filter, format_timestamp
from dualstore_client.errors import (
    DualStoreError,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
    problem_from_response,
)
from dualstore_client.models import Document, HeartbeatEvent, InsertEvent, StreamEvent

DEFAULT_RETRY_MS = 3000
"""Reconnection delay before the server has sent a ``retry`` field (what browsers use)."""


@dataclass
class Backoff:
    """Reconnection delays: the server's ``retry`` doubled per consecutive failure, capped,
    plus up to ``jitter`` x that much random extra so that many clients do not reconnect in
    lockstep. The first reconnect after a healthy connection waits about ``retry`` (never less).
    """

    max_delay: float = 30.0
    """Upper bound in seconds of the exponential part."""
    jitter: float = 0.5
    """Extra random fraction added on top (0 disables jitter)."""
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry_ms: int, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt after ``failures`` consecutive failures."""
        base = retry_ms / 1000.0 * 2.0 ** max(0, min(failures - 1, 16))
        base = min(base, max(self.max_delay, retry_ms / 1000.0))
        if retry_after is not None:
            base = max(base, retry_after)
        return base + self.rng.uniform(0.0, base * self.jitter)


@dataclass
class StreamSession:
    """Everything a stream keeps across reconnects, without doing any I/O itself.

    The sync and async clients run the same loop around it: build the request from
    :meth:`params`/:meth:`headers`, pass the response to :meth:`accept`, feed body chunks
    to :meth:`feed`, and on any break ask :meth:`next_delay` how long to sleep.
    """

    since: str | None = None
    filter: str | None = None
    last_event_id: str = ""
    """Resume token of the last event yielded (sent as ``Last-Event-ID`` on reconnect)."""
    retry_ms: int = DEFAULT_RETRY_MS
    backoff: Backoff = field(default_factory=Backoff)
    max_reconnects: int | None = None
    """Give up after this many consecutive failed attempts (None: never)."""
    dedupe_window: int = 100_000
    """How many recent document ids are remembered to drop duplicates."""
    connections: int = 0
    """Successful (200) connections so far; more than one means it reconnected."""
    duplicates_dropped: int = 0
    _failures: int = 0
    _retry_after: float | None = None
    _last_error: DualStoreError | None = None
    _seen: set[str] = field(default_factory=set)
    _order: deque[str] = field(default_factory=deque)
    _parser: SSEParser = field(default_factory=SSEParser)

    @classmethod
    def create(
        cls,
        since: str | datetime | None,
        filter: Filter | str | None,
        last_event_id: str | None,
        **options: object,
    ) -> StreamSession:
        """Normalise the public arguments (a datetime ``since``, a dict filter)."""
        session = cls(
            since=None if since is None else format_timestamp(since),
            filter=None if filter is None else encode_filter(filter),
            last_event_id=last_event_id or "",
        )
        for name, value in options.items():
            if value is not None:
                setattr(session, name, value)
        return session

    def params(self) -> dict[str, str]:
        """Query parameters of the next attempt (``since`` only until an event has arrived)."""
        params: dict[str, str] = {}
        if self.filter is not None:
            params["filter"] = self.filter
        if self.since is not None and not self.last_event_id:
            params["since"] = self.since
        return params

    def headers(self) -> dict[bytes, bytes]:
        """Headers of the next attempt; ``Last-Event-ID`` once a resume token is known."""
        headers = {b"Accept": b"text/event-stream", b"Cache-Control": b"no-cache"}
        if self.last_event_id:
            # httpx encodes str headers as ASCII; an opaque token may not be: send UTF-8.
            headers[b"Last-Event-ID"] = self.last_event_id.encode("utf-8")
        return headers

    def accept(self, response: httpx.Response) -> bool:
        """Judge a response whose headers (and, for errors, body) have arrived.

        True: a live stream, read it. False: a retryable failure (429, 5xx) was recorded.
        Raises the problem for a non-retryable error, and ProtocolError for a 200 that is
        not an event stream. A 204 ends the stream for good (as in EventSource): raises
        ``StreamClosed``, which the clients turn into the end of iteration.
        """
        if response.status_code == 204:
            raise StreamClosed("the server answered 204: no more reconnects")
        if response.status_code >= 400:
            problem = problem_from_response(response)
            if isinstance(problem, RateLimited | ServerError):
                self._record_failure(problem, getattr(problem, "retry_after", None))
                return False
            raise problem
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200 or not content_type.startswith("text/event-stream"):
            raise ProtocolError(
                f"expected 200 text/event-stream, got {response.status_code} {content_type!r}"
            )
        self.connections += 1
        self._failures = 0
        self._retry_after = None
        self._parser = SSEParser(last_event_id=self.last_event_id, retry_ms=self.retry_ms)
        return True

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Parse a body chunk; return the new, non-duplicate events in order."""
        return self._events(self._parser.feed(chunk))

    def end(self) -> list[StreamEvent]:
        """The body ended (or broke): an incomplete trailing event is discarded."""
        events = self._events(self._parser.close())
        self._record_failure(None, None)
        return events

    def broken(self, error: Exception) -> None:
        """The attempt failed with a transport error (connect, read, timeout)."""
        self._record_failure(error, None)

    def next_delay(self) -> float:
        """Seconds to sleep before reconnecting; raises the last error when giving up."""
        if self.max_reconnects is not None and self._failures > self.max_reconnects:
            if self._last_error is not None:
                raise self._last_error
            raise StreamClosed("gave up reconnecting")
        return self.backoff.delay(self.retry_ms, self._failures, self._retry_after)

    def _record_failure(self, error: Exception | None, retry_after: float | None) -> None:
        self._failures += 1
        self._retry_after = retry_after
        if isinstance(error, DualStoreError):
            self._last_error = error
        elif error is not None:
            wrapped = TransportError(str(error) or type(error).__name__)
            wrapped.__cause__ = error
            self._last_error = wrapped
        else:
            self._last_error = None

    def _events(self, items: list[Item]) -> list[StreamEvent]:
        if self._parser.retry_ms is not None:
            self.retry_ms = self._parser.retry_ms
        out: list[StreamEvent] = []
        for item in items:
            if isinstance(item, Event):
                event = self._convert(item)
                if event is not None:
                    out.append(event)
        return out

    def _convert(self, item: Event) -> StreamEvent | None:
        if item.type == "heartbeat":
            if item.id_set:
                self.last_event_id = item.last_event_id
            return HeartbeatEvent(t=_heartbeat_time(item.data))
        if item.type != "insert":
            return None  # unknown event types are ignored, for forward compatibility
        try:
            doc = Document.from_json(json.loads(item.data))
        except ValueError as exc:
            raise ProtocolError(f"insert event data is not JSON: {exc}") from exc
        if doc.id in self._seen:
            self.duplicates_dropped += 1
            return None
        self._remember(doc.id)
        if item.id_set:
            self.last_event_id = item.last_event_id
        return InsertEvent(id=item.last_event_id, doc=doc)

    def _remember(self, doc_id: str) -> None:
        self._seen.add(doc_id)
        self._order.append(doc_id)
        while len(self._order) > self.dedupe_window:
            self._seen.discard(self._order.popleft())


class StreamClosed(DualStoreError):
    """The stream ended for good (204 from the server, or reconnects exhausted)."""


def _heartbeat_time(data: str) -> str:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"heartbeat data is not JSON: {exc}") from exc
    if not isinstance(value, Mapping) or not isinstance(value.get("t"), str):
        raise ProtocolError('heartbeat data must be {"t": "<ISO time>"}')
    return str(value["t"])


def interrupt(response: httpx.Response) -> None:
    """Shut the response's socket down so that a read blocked on it returns at once.

    Closing an httpx response from another thread does not wake a blocked ``recv``; a
    socket shutdown does. The reading side then sees the end of the body and closes
    the response itself.
    """
    stream = response.extensions.get("network_stream")
    get_extra_info = getattr(stream, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    shutdown = getattr(sock, "shutdown", None)  # a socket, or asyncio's TransportSocket
    if callable(shutdown):
        with contextlib.suppress(OSError):
            shutdown(socket.SHUT_RDWR)
