# SPDX-License-Identifier: GPL-3.0-or-later
"""aiohttp-sse-client2's EventSource (it reconnects, sending Last-Event-ID)."""

from __future__ import annotations

import asyncio
import sys

import _protocol
from aiohttp_sse_client2 import client as sse_client


async def stream(url: str) -> None:
    try:
        async with sse_client.EventSource(
                url, on_open=lambda: _protocol.emit("open"),
                on_error=lambda: _protocol.emit("error", message="on_error")) as source:
            async for event in source:
                _protocol.event(event.type, event.data, event.last_event_id)
        _protocol.emit("closed", reason="iteration ended")
    except Exception as error:  # report whatever the library raised
        _protocol.emit("error", message=f"{type(error).__name__}: {error}")
        _protocol.emit("closed", reason="raised")


def main(url: str) -> int:
    _protocol.hello("aiohttp-sse-client2", ["reconnect"])
    if not _protocol.DESCRIBE:
        asyncio.run(stream(url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
