# SPDX-License-Identifier: GPL-3.0-or-later
"""Send SSE bytes through an ASGI ``send`` from synchronous code, without a task per chunk."""

from __future__ import annotations

import asyncio

from dualstore_reference.stream.asgi import Send
from dualstore_reference.stream.stepping import Stepped


class DirectWriter:
    """Steps ``send(body chunk)`` coroutines by hand, one at a time, in order.

    An ASGI server's ``send`` returns without suspending unless the connection's write
    buffer is full (flow control). Stepping it here, from the hub's publish loop, delivers
    an event to an idle subscriber with no wake-up of the subscriber's task: that wake-up
    (an event, a timer, a generator resumption, the framework's loop) cost more than the
    write itself. A send that must wait is resumed by the future it waits on, exactly as a
    task would resume it; until it completes the writer is busy and refuses new chunks (the
    caller queues them and drains the queue after ``wait_idle``), so chunks never reorder.
    """

    __slots__ = ("_idle", "_pending", "_send", "error")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: Stepped | None = None
        self._idle: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        """Set when a send failed: the connection is unusable and the stream must end."""

    @property
    def busy(self) -> bool:
        """True while a send waits for the client to read."""
        return self._pending is not None

    def write(self, body: bytes) -> bool:
        """Start sending body; False (nothing done) while busy or after a failure."""
        if self._pending is not None or self.error is not None:
            return False
        send = self._send({"type": "http.response.body", "body": body, "more_body": True})
        stepped = Stepped(send, self._sent)  # type: ignore[arg-type]  # reason: ASGI servers' send is a coroutine
        if stepped.running:  # it waits for flow control; _sent runs when it is through
            self._pending = stepped
        return True

    def _sent(self, _result: object, error: BaseException | None) -> None:
        self._pending = None
        if error is not None and self.error is None:
            self.error = error
        idle, self._idle = self._idle, None
        if idle is not None and not idle.done():
            idle.set_result(None)

    async def wait_idle(self) -> None:
        """Return once no send is in flight (at once when none is)."""
        if self._pending is None:
            return
        if self._idle is None:
            self._idle = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._idle)

    def close(self) -> None:
        """Abandon a send still in flight (the stream is ending)."""
        pending = self._pending
        if pending is not None:
            pending.close()
        self._sent(None, None)
