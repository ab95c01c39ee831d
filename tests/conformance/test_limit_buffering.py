# SPDX-License-Identifier: GPL-3.0-or-later
"""limit-body-not-buffered's probe against tiny servers that do and do not read past the cap."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from dualstore_conformance.checks.limit_buffering import (
    BodyObservation,
    observe_oversized_body,
    verdict,
)

CAP = 1000
DECLARED = 100_000
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def _head(reader: asyncio.StreamReader) -> int:
    """Read the request head; return its Content-Length."""
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return length


async def _answer(writer: asyncio.StreamWriter, status: int) -> None:
    writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                 .encode())
    await writer.drain()
    writer.close()


async def from_content_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              length: int) -> None:
    await _answer(writer, 413 if length > CAP else 201)


async def reads_up_to_the_cap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              length: int) -> None:
    received = 0
    while received <= CAP:
        chunk = await reader.read(CAP + 1 - received)
        if not chunk:
            return
        received += len(chunk)
    await _answer(writer, 413)


async def buffers_everything(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             length: int) -> None:
    await reader.readexactly(length)
    await _answer(writer, 413)


async def rate_limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       length: int) -> None:
    await _answer(writer, 429)


async def closes_on_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         length: int) -> None:
    writer.close()


async def probe(handler: Handler) -> BodyObservation:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer, await _head(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await observe_oversized_body(
            "127.0.0.1", port, ["POST /v1/c HTTP/1.1", "Host: x"], CAP, DECLARED,
            head_wait=0.5, cap_wait=1.0)
    finally:
        server.close()


@pytest.mark.parametrize(("handler", "stage", "status", "decided"), [
    (from_content_length, "on-head", 413, "stopped"),
    (closes_on_head, "on-head", None, "stopped"),
    (reads_up_to_the_cap, "after-cap", 413, "stopped"),
    (buffers_everything, "waited", None, "buffering"),
    (rate_limited, "on-head", 429, "undecided"),
])
def test_probe_tells_buffering_from_stopping(
    handler: Handler, stage: str, status: int | None, decided: str
) -> None:
    observation = asyncio.run(probe(handler))
    assert (observation.stage, observation.status) == (stage, status), observation
    assert verdict(observation) == decided
    assert observation.sent <= CAP + 1  # never more than the cap + 1 bytes go out


def test_no_server_is_undecided() -> None:
    observation = asyncio.run(observe_oversized_body(
        "127.0.0.1", 1, ["POST / HTTP/1.1"], CAP, DECLARED, 0.2, 0.2))
    assert observation.stage == "no-connection" and verdict(observation) == "undecided"
