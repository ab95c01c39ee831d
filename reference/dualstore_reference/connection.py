# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTP/1.1 connection layer (uvicorn's h11 protocol): head timeout, connection cap, problems.

uvicorn closes idle keep-alive connections, but it never closes a connection that has
not sent a complete request head, and its own errors are text/plain. This subclass adds:

- a bound on the time to receive a complete request head, counted from the connection's
  opening (or its first byte after an idle keep-alive); past it the connection is closed
  (with a 408 problem when part of a head had arrived); the body then gets the same time
  again (a body trickled byte by byte is cut with a 408 problem);
- a cap on open connections per worker: a request on a connection past the cap gets
  503 problem+json with Retry-After and the connection is closed (one that sends nothing
  is closed after OVER_CAP_HEAD_SECONDS), so idle sockets cannot exhaust the worker's
  file descriptors while it still answers;
- the 400 that h11 sends for a malformed request (bad or duplicate Content-Length, NUL in
  a header, a head too large to buffer) as problem+json (400, 414 or 431);
- a lean event (``LeanEvent``) in place of the two ``asyncio.Event`` objects uvicorn keeps
  per connection (about 860 bytes each, most of it an empty waiter deque): an idle stream
  holds one connection for hours, so they were a tenth of its memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .guard import MAX_HEAD_BYTES
from .problems import raw_response

log = logging.getLogger("dualstore.connection")
OVERLOAD_LOG_SECONDS = 10.0
OVER_CAP_HEAD_SECONDS = 1.0
"""Head deadline of a connection past the cap (it only gets a 503 anyway)."""
MALFORMED = (
    "The request is not valid HTTP/1.1 (its request line, a header field or its "
    "Content-Length is malformed)."
)
REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long",
           431: b"Request Header Fields Too Large"}  # fmt: skip


@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds one worker applies to its connections."""

    head_timeout_seconds: float = 10.0
    max_connections: int = 4096


@dataclass(slots=True)
class _HeadWatch:
    """A connection's request-head deadline state (and the cycle given a LeanEvent)."""

    timeout: float
    """Seconds a head (then its body) may take."""
    timer: asyncio.TimerHandle | None = None
    head_bytes: int = 0
    has_line_end: bool = False
    awaiting_body: bool = False
    lean_cycle: object | None = None


class _Connection(h11.Connection):
    """h11's connection, remembering the protocol error it raised (for its status hint)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            self.last_error = error
            raise


class LeanEvent:
    """``asyncio.Event``'s interface (set, clear, is_set, wait) in a few dozen bytes.

    One future per waiter, made only while it waits, as asyncio.Event does, so that a
    cancelled waiter never cancels another.
    """

    __slots__ = ("_flag", "_waiters")

    def __init__(self, flag: bool = False) -> None:
        self._flag = flag
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        """True once set (until cleared)."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if self._flag:
            return
        self._flag = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        """Reset the flag."""
        self._flag = False

    async def wait(self) -> bool:
        """Return at once when set, else when set() is next called."""
        if self._flag:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None


def _leaner(event: object) -> object:
    """A LeanEvent in the state of an asyncio.Event nobody waits on yet (else event itself)."""
    if type(event) is asyncio.Event and not getattr(event, "_waiters", None):
        return LeanEvent(event.is_set())
    return event


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """ASGI app of a connection past the cap: 503 problem, Retry-After, close."""
    headers, body = raw_response(
        503,
        "unavailable",
        "This worker has too many open connections; retry shortly.",
        {"Retry-After": "1"},
    )
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DualstoreProtocol(H11Protocol):
    """H11Protocol with a request-head deadline, a connection cap and problem+json errors."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    _last_overload_log: ClassVar[float] = 0.0

    @classmethod
    def configured(cls, limits: ConnectionLimits) -> type[DualstoreProtocol]:
        """This protocol with other limits (uvicorn instantiates the class itself)."""
        return type("ConfiguredDualstoreProtocol", (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn: _Connection = _Connection(h11.SERVER, MAX_HEAD_BYTES)
        # One attribute for all of this class's state: uvicorn's protocol has 25, and an
        # instance with more than 30 loses CPython's shared-key dict (1.6 KB instead of 0.3 KB
        # per connection, held for the whole life of a stream).
        self._watch = _HeadWatch(self.limits.head_timeout_seconds)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # reason: uvicorn narrows BaseTransport the same way
        super().connection_made(transport)
        flow = getattr(self, "flow", None)
        if flow is not None and hasattr(flow, "_is_writable_event"):
            flow._is_writable_event = _leaner(flow._is_writable_event)
        if len(self.connections) > self.limits.max_connections:
            self.app = _overloaded
            # Past the cap a connection gets its 503 or goes quickly: it must not hold a
            # file for the whole head deadline while more arrive.
            self._watch.timeout = min(self._watch.timeout, OVER_CAP_HEAD_SECONDS)
            now = time.monotonic()
            if now - DualstoreProtocol._last_overload_log >= OVERLOAD_LOG_SECONDS:
                DualstoreProtocol._last_overload_log = now
                log.warning(
                    "%d open connections exceed MAX_CONNECTIONS_PER_WORKER=%d: answering 503",
                    len(self.connections), self.limits.max_connections,
                )  # fmt: skip
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._watch.head_bytes += len(data)
            self._watch.has_line_end = self._watch.has_line_end or b"\n" in data
        super().data_received(data)
        self._watch_head()

    def handle_events(self) -> None:
        """uvicorn's event handling; a request cycle it just made gets a LeanEvent.

        The cycle's task has not run yet when this returns, so nothing waits on the event
        being replaced (``_leaner`` checks that too).
        """
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and cycle is not self._watch.lean_cycle:
            self._watch.lean_cycle = cycle
            cycle.message_event = _leaner(cycle.message_event)  # type: ignore[assignment]  # reason: LeanEvent has the part of asyncio.Event's interface uvicorn uses

    def _watch_head(self) -> None:
        """Keep a deadline armed while a head, then its body, is awaited; cancel it after."""
        state = self.conn.their_state
        if self.transport.is_closing():
            self._cancel_head_timer()
        elif state is h11.IDLE and self.conn.our_state is h11.IDLE:
            if self._watch.timer is None:
                self._watch.timer = self.loop.call_later(self._watch.timeout, self._head_timed_out)
        elif state is h11.SEND_BODY:
            # the head is complete: the body gets a deadline of its own
            if not self._watch.awaiting_body:
                self._cancel_head_timer()
                self._watch.awaiting_body = True
                self._watch.timer = self.loop.call_later(self._watch.timeout, self._body_timed_out)
        else:
            self._cancel_head_timer()
            self._watch.awaiting_body = False
            self._watch.head_bytes = 0
            self._watch.has_line_end = False

    def _cancel_head_timer(self) -> None:
        if self._watch.timer is not None:
            self._watch.timer.cancel()
            self._watch.timer = None

    def _head_timed_out(self) -> None:
        self._watch.timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._watch.head_bytes:
            self._write_problem(
                408,
                None,
                f"No complete request head within {self._watch.timeout:g} s.",
            )
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._watch.timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.cycle is not None and not self.cycle.response_started:
            self._write_problem(
                408, None, f"The request body did not arrive within {self._watch.timeout:g} s."
            )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        error = self.conn.last_error
        status, slug, detail = 400, "invalid-request", MALFORMED
        slug_or_none: str | None = slug
        if error is not None and error.error_status_hint == 431:
            if self._watch.has_line_end:
                status, slug_or_none = 431, None
                detail = f"The request head is larger than {MAX_HEAD_BYTES} bytes."
            else:
                status, slug_or_none = 414, None
                detail = f"The request line is longer than {MAX_HEAD_BYTES} bytes."
        self._write_problem(status, slug_or_none, detail)
        self.transport.close()

    def _write_problem(self, status: int, slug: str | None, detail: str) -> None:
        """Write a complete problem response straight to the socket (h11 is in error)."""
        headers, body = raw_response(status, slug, detail)
        lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b""))]
        lines += [name + b": " + value for name, value in headers]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
