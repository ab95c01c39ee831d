# SPDX-License-Identifier: GPL-3.0-or-later
"""The pipelined burst sender: every request answered in order, or counted short on a close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from dualstore_conformance import burst

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _serving(limit: int, close_after_each: bool) -> tuple[Handler, list[str]]:
    """A raw HTTP/1.1 server: 200 for the first ``limit`` requests, then 429."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head.split(b"\r\n", 1)[0].decode())
                status = b"200 OK" if len(seen) <= limit else b"429 Too Many Requests"
                body = b'{"ok":true}'
                extra = b"Connection: close\r\n" if close_after_each else b""
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                             + extra + b"Retry-After: 1\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
                if close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle, seen


async def _burst_against(limit: int, close_after_each: bool, total: int,
                         connections: int) -> tuple[burst.Burst, list[str]]:
    handle, seen = _serving(limit, close_after_each)
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        fired = await burst.send(f"http://127.0.0.1:{port}", "/v1/collections",
                                 {"Authorization": "Bearer t"}, total, connections)
    finally:
        server.close()
        await server.wait_closed()
    return fired, seen


def test_pipelined_burst_gets_every_answer() -> None:
    fired, seen = asyncio.run(_burst_against(limit=30, close_after_each=False, total=100,
                                             connections=4))
    assert len(fired.answers) == 100 and fired.errors == []
    assert [a.status for a in fired.answers].count(200) == 30
    assert [a.status for a in fired.answers].count(429) == 70
    assert all(line == "GET /v1/collections HTTP/1.1" for line in seen)
    assert fired.answers[-1].headers["retry-after"] == "1"


def test_a_server_that_closes_after_each_answer_leaves_the_burst_short() -> None:
    fired, _ = asyncio.run(_burst_against(limit=1000, close_after_each=True, total=40,
                                          connections=4))
    assert len(fired.answers) == 4  # one per connection: the caller must send the rest
