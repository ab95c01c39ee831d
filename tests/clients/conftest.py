# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for client tests: a tiny scripted SSE server that can drop connections."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

Step = bytes | float | None
"""Bytes to send, seconds to pause, or None to drop the connection there."""


@dataclass
class Seen:
    """One connection as the server saw it."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    closed_at: float = 0.0


def sse_head(
    status: str = "200 OK", content_type: str = "text/event-stream", extra: str = ""
) -> bytes:
    """An HTTP/1.1 response head without Content-Length (the body ends when we close)."""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n"
        f"Connection: close\r\n{extra}\r\n"
    ).encode()


def problem_response(status: int, slug: str, extra: str = "") -> bytes:
    """A complete problem+json error response."""
    body = (
        f'{{"type":"urn:dualstore:problem:{slug}","title":"{slug}","status":{status},'
        f'"detail":"scripted {slug}"}}'
    ).encode()
    reason = {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests",
              503: "Service Unavailable"}.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


def insert_frame(event_id: str, doc_id: str, text: str = "t") -> bytes:
    """One ``insert`` event block."""
    data = (
        f'{{"id":"{doc_id}","text":"{text}","timestamp":"2026-11-25T10:00:00.000Z",'
        f'"metadata":{{}}}}'
    )
    return f"event: insert\nid: {event_id}\ndata: {data}\n\n".encode()


@dataclass
class ScriptedSSEServer:
    """Answers the n-th connection with the n-th script (the last one repeats).

    Frame builders for scripts are attached as ``head``, ``problem`` and ``insert``
    (test modules cannot import from a conftest under importlib mode).
    """

    scripts: list[list[Step]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    head = staticmethod(sse_head)
    problem = staticmethod(problem_response)
    insert = staticmethod(insert_frame)

    def wait_for(self, connections: int, timeout: float = 10.0) -> None:
        """Block until at least this many connections arrived."""
        deadline = time.monotonic() + timeout
        while len(self.seen) < connections and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def sse_server() -> Iterator[ScriptedSSEServer]:
    """A loopback HTTP server replaying scripts, recording each request's headers."""
    state = ScriptedSSEServer()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            raw = b""
            while b"\r\n\r\n" not in raw:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                raw += chunk
            head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            target = head[0].split(" ")[1]
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            parts = urlsplit(target)
            seen = Seen(parts.path, parse_qs(parts.query), headers, time.monotonic())
            index = len(state.seen)
            state.seen.append(seen)
            script = state.scripts[min(index, len(state.scripts) - 1)]
            try:
                for step in script:
                    if step is None:
                        break
                    if isinstance(step, float):
                        time.sleep(step)
                    else:
                        self.request.sendall(step)
            except OSError:
                pass
            finally:
                seen.closed_at = time.monotonic()
                with contextlib.suppress(OSError):
                    self.request.shutdown(socket.SHUT_RDWR)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

