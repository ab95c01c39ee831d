# SPDX-License-Identifier: GPL-3.0-or-later
"""A minimal asyncio SSE client over a raw socket (for the stream's tests and benchmark).

Cheap enough to hold 1,000 streams in one process, and able to do what real clients do
badly on purpose: stop reading, or vanish without closing the stream cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from dualstore_sse import Event, SSEParser


@dataclass
class ReceivedEvent:
    """An event and the monotonic time its block arrived."""

    type: str
    data: str
    id: str
    at: float

    def json(self) -> Any:
        """The data as JSON."""
        return json.loads(self.data)


@dataclass
class RawStream:
    """One open HTTP/1.1 SSE response."""

    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: SSEParser = field(default_factory=SSEParser)
    body: bytes = b""
    ended: bool = False
    clean_end: bool = False
    """True when the server ended the response properly (chunked: the zero-size chunk)."""
    _chunk_left: int = 0
    _chunked: bool = False
    _raw: bytes = b""

    @classmethod
    async def open(
        cls, url: str, headers: dict[str, str] | None = None, timeout: float = 10.0
    ) -> RawStream:
        """GET url (http only) and read the response head."""
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parsed: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, _, value = line.partition(":")
                parsed[name.strip().lower()] = value.strip()
        stream = cls(int(status_line.split()[1]), parsed, reader, writer)
        stream._chunked = parsed.get("transfer-encoding", "").lower() == "chunked"
        return stream

    async def _read_body(self, timeout: float) -> bytes:
        """The next piece of the body (de-chunked); b"" at the end."""
        async with asyncio.timeout(timeout):  # no task per read (unlike wait_for)
            if not self._chunked:
                data = await self.reader.read(65536)
                if not data:
                    self.ended = True
                return data
            if self._chunk_left == 0:
                size_line = await self.reader.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16) if size_line else 0
                if size == 0:
                    self.ended = True
                    self.clean_end = bool(size_line)  # the last chunk, not a dropped connection
                    return b""
                self._chunk_left = size
            data = await self.reader.read(min(self._chunk_left, 65536))
            if not data:
                self.ended = True
                return b""
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                await self.reader.readexactly(2)  # the chunk's CRLF
            return data

    async def read_body(self, timeout: float = 10.0) -> bytes:
        """The whole (non-stream) body, e.g. a problem document."""
        length = int(self.headers.get("content-length", "-1"))
        if length >= 0:
            return await asyncio.wait_for(self.reader.readexactly(length), timeout)
        chunks = []
        while not self.ended:
            chunks.append(await self._read_body(timeout))
        return b"".join(chunks)

    async def events(self, count: int = 1, timeout: float = 10.0,
                     types: tuple[str, ...] = ("insert",)) -> list[ReceivedEvent]:
        """Read until count events of the given types arrived (fewer at end of stream)."""
        found: list[ReceivedEvent] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and not self.ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                data = await self._read_body(remaining)
            except TimeoutError:
                break
            now = time.monotonic()
            items = self.parser.feed(data) if data else self.parser.close()
            for item in items:
                if isinstance(item, Event) and item.type in types:
                    found.append(ReceivedEvent(item.type, item.data, item.last_event_id, now))
        return found

    def close(self) -> None:
        """Drop the connection."""
        self.writer.close()

    async def aclose(self) -> None:
        """Drop the connection and wait until it is closed."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
