# SPDX-License-Identifier: GPL-3.0-or-later
"""A scripted SSE server on raw asyncio sockets: exact bytes, chunk boundaries, delays,
closes, status codes and redirects, recording every request it saw and when."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dualstore_conformance.client_suite.scenarios import Connection, Scenario

_NO_BODY = {204, 304}
PAGE_PATH = "/__page"
"""A blank same-origin page for browser adapters (never part of a scenario)."""
PAGE = b"<!doctype html><meta charset=utf-8><title>conform-client</title>\n"
_HEAD_LIMIT = 65536


@dataclass
class RequestRecord:
    """One request that reached the scenario's stream, and what became of it."""

    index: int
    """1-based number of the request within the scenario."""
    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    """Header names lower-cased, in the order received."""
    arrived: float
    """Seconds since the scenario started (monotonic clock)."""
    ended: float | None = None
    ended_by: str = ""
    """"server" (script closed or dropped it), "client", or "scenario-end"."""
    status: int | None = None
    """Status sent (None: dropped without a response)."""
    sent_bytes: int = 0

    def header(self, name: str) -> str | None:
        """The first value of a header (name case-insensitive), None when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (for evidence)."""
        return {
            "index": self.index, "method": self.method, "path": self.path, "query": self.query,
            "headers": {key: value for key, value in self.headers},
            "arrived_ms": round(self.arrived * 1000, 1),
            "ended_ms": None if self.ended is None else round(self.ended * 1000, 1),
            "ended_by": self.ended_by, "status": self.status, "sent_bytes": self.sent_bytes,
        }


@dataclass
class Play:
    """One scenario being played: its URL prefix and what the server observed."""

    scenario: Scenario
    prefix: str
    started: float = field(default_factory=time.monotonic)
    requests: list[RequestRecord] = field(default_factory=list)
    last_action: float = 0.0
    """Seconds since start of the server's last arrival, body end or close."""
    scripted_done: int = 0
    """How many scripted connections have finished what the script says to send."""
    _stop: asyncio.Event | None = None

    def now(self) -> float:
        """Seconds since the scenario started."""
        return time.monotonic() - self.started

    def mark(self) -> None:
        self.last_action = self.now()

    def script_played(self) -> bool:
        """True once every scripted connection was requested and has sent its script."""
        return self.scripted_done >= len(self.scenario.connections)


class ScriptedServer:
    """Serves one scenario at a time on a free loopback port, from its own thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="scripted-sse-server")
        self._server: asyncio.base_events.Server | None = None
        self._play: Play | None = None
        self._counter = itertools.count(1)
        self.port = 0

    # -- lifecycle (called from the harness thread) -----------------------------------
    def start(self) -> str:
        """Start listening; return the base URL."""
        self._thread.start()
        future: Future[asyncio.base_events.Server] = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, 0), self._loop)
        self._server = future.result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop the server and its thread."""
        self.end_play()
        if self._server is not None:
            server = self._server

            async def shutdown() -> None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 2)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(self, scenario: Scenario) -> Play:
        """Start playing a scenario under a fresh URL prefix (stale clients cannot mix in)."""
        self.end_play()
        prefix = f"/s/{scenario.id}-{next(self._counter)}/"

        async def make() -> Play:
            play = Play(scenario=scenario, prefix=prefix)
            play._stop = asyncio.Event()
            return play

        play = asyncio.run_coroutine_threadsafe(make(), self._loop).result(5)
        self._play = play
        return play

    def end_play(self) -> None:
        """Release held connections of the current play; later requests get 404."""
        play, self._play = self._play, None
        if play is not None and play._stop is not None:
            self._loop.call_soon_threadsafe(play._stop.set)

    def stream_url(self, play: Play, collection: str) -> str:
        """The URL a client opens: a DualStore-shaped stream path under the play's prefix."""
        return f"{self.base_url}{play.prefix}v1/{collection}/stream"

    # -- serving (event loop thread) --------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            writer.close()
            return
        if len(head) > _HEAD_LIMIT:
            writer.close()
            return
        method, target, headers = _parse_head(head)
        play = self._play
        split = urlsplit(target)
        if split.path == PAGE_PATH:
            await _simple(writer, 200, PAGE, "text/html; charset=utf-8")
            return
        if play is None or not split.path.startswith(play.prefix):
            await _simple(writer, 404, b"not part of the current scenario\n")
            return
        record = RequestRecord(
            index=len(play.requests) + 1, method=method, path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True), headers=headers,
            arrived=play.now(),
        )
        play.requests.append(record)
        play.mark()
        scripted = record.index <= len(play.scenario.connections)
        if scripted:
            connection = play.scenario.connections[record.index - 1]
        elif play.scenario.after_script == "hold":
            connection = Connection(200, {"Content-Type": "text/event-stream"}, [], "hold")
        else:
            connection = Connection(204, {}, [], "close")
        await self._serve(play, record, connection, reader, writer, scripted)

    async def _serve(self, play: Play, record: RequestRecord, connection: Connection,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     scripted: bool) -> None:
        client_gone = asyncio.ensure_future(_wait_eof(reader))
        try:
            if connection.end == "drop":
                _abort(writer)
                record.ended, record.ended_by = play.now(), "server"
                if scripted:
                    play.scripted_done += 1
                play.mark()
                return
            await self._respond(play, record, connection, writer, client_gone)
            if scripted:
                play.scripted_done += 1
            play.mark()
            if connection.end == "hold" and not client_gone.done():
                assert play._stop is not None
                stop = asyncio.ensure_future(play._stop.wait())
                await asyncio.wait({stop, client_gone}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
            if record.ended is None:
                record.ended = play.now()
                record.ended_by = ("client" if client_gone.done() and not client_gone.cancelled()
                                   else "server" if connection.end == "close" else "scenario-end")
            play.mark()
        except (ConnectionError, OSError):
            if record.ended is None:
                record.ended, record.ended_by = play.now(), "client"
            play.mark()
        finally:
            client_gone.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, play: Play, record: RequestRecord, connection: Connection,
                       writer: asyncio.StreamWriter, client_gone: asyncio.Future[None]) -> None:
        status = connection.status
        record.status = status
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        headers = dict(connection.headers)
        if status == 200:
            headers.setdefault("Cache-Control", "no-cache")
        body_known = status != 200 or not any(
            k.lower() == "content-type" and v.startswith("text/event-stream")
            for k, v in headers.items())
        if status in _NO_BODY:
            body_known = False
        elif body_known:
            length = sum(len(step.data) for step in connection.steps)
            headers["Content-Length"] = str(length)
        headers["Connection"] = "close"
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        gap = play.scenario.chunk_gap_ms / 1000.0
        wrote = False
        if status not in _NO_BODY:
            for step in connection.steps:
                if client_gone.done():
                    raise ConnectionError("client closed")
                if step.delay_ms:
                    await asyncio.sleep(step.delay_ms / 1000.0)
                    continue
                if wrote and gap:
                    await asyncio.sleep(gap)
                writer.write(step.data)
                await writer.drain()
                record.sent_bytes += len(step.data)
                wrote = True
        if connection.end == "close":
            # FIN after the body (recorded first: the client may see it at once)
            record.ended, record.ended_by = play.now(), "server"
            if writer.can_write_eof():
                writer.write_eof()


async def _wait_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client closes its side (or the socket breaks)."""
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(4096):
            pass


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close without any response; an RST so the client sees a network error at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _simple(writer: asyncio.StreamWriter, status: int, body: bytes,
                  media: str = "text/plain") -> None:
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(
            f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: {media}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1") + body)
        await writer.drain()
    writer.close()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    text = head.decode("latin-1")
    request_line, *header_lines = text.split("\r\n")
    parts = request_line.split(" ")
    method = parts[0] if parts else ""
    target = parts[1] if len(parts) > 1 else "/"
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        if not line:
            continue
        name, _, value = line.partition(":")
        # header bytes are UTF-8 on the wire for an opaque Last-Event-ID
        raw = value.strip().encode("latin-1")
        headers.append((name.strip().lower(), raw.decode("utf-8", errors="replace")))
    return method, target, headers
