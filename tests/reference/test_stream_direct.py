# SPDX-License-Identifier: GPL-3.0-or-later
"""DirectWriter steps ASGI sends by hand: in order, busy while one waits, errors end it."""

from __future__ import annotations

import asyncio
from typing import Any

from dualstore_reference.stream.direct import DirectWriter


class FakeConnection:
    """An ASGI send whose flow control is paused while ``paused`` is set (like uvicorn's)."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.fail: Exception | None = None
        self.abandoned = 0

    async def send(self, message: dict[str, Any]) -> None:
        try:
            if not self.writable.is_set():
                await self.writable.wait()
        except GeneratorExit:
            self.abandoned += 1
            raise
        if self.fail is not None:
            raise self.fail
        self.written.append(message["body"])


def test_a_send_that_need_not_wait_completes_inside_write() -> None:
    async def main() -> None:
        connection = FakeConnection()
        writer = DirectWriter(connection.send)
        assert writer.write(b"a") and writer.write(b"b")
        assert connection.written == [b"a", b"b"]  # no loop pass was needed
        assert not writer.busy
        await writer.wait_idle()

    asyncio.run(main())


def test_a_send_that_waits_keeps_the_writer_busy_and_finishes_in_order() -> None:
    async def main() -> None:
        connection = FakeConnection()
        writer = DirectWriter(connection.send)
        connection.writable.clear()
        assert writer.write(b"first")
        assert writer.busy and connection.written == []
        assert not writer.write(b"second")  # refused: the caller queues it
        asyncio.get_running_loop().call_later(0.05, connection.writable.set)
        await asyncio.wait_for(writer.wait_idle(), 2)
        assert connection.written == [b"first"] and not writer.busy
        assert writer.write(b"second")
        assert connection.written == [b"first", b"second"]

    asyncio.run(main())


def test_a_failed_send_sets_the_error_and_refuses_more() -> None:
    async def main() -> None:
        connection = FakeConnection()
        connection.fail = ConnectionResetError("gone")
        writer = DirectWriter(connection.send)
        writer.write(b"x")
        assert isinstance(writer.error, ConnectionResetError)
        assert not writer.write(b"y")

    asyncio.run(main())


def test_close_abandons_a_waiting_send() -> None:
    async def main() -> None:
        connection = FakeConnection()
        connection.writable.clear()
        writer = DirectWriter(connection.send)
        writer.write(b"never")
        writer.close()
        assert connection.abandoned == 1 and not writer.busy
        connection.writable.set()
        await asyncio.sleep(0.01)
        assert connection.written == []

    asyncio.run(main())
