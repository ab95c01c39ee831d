# SPDX-License-Identifier: GPL-3.0-or-later
"""A tiny in-process target for harness tests: legal-but-unusual SSE framing, or broken."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

COLLECTION = "things"


@dataclass
class MiniState:
    """Documents and behaviour switches of the tiny target."""

    mode: str = "unusual"
    """"unusual": legal but odd framing; a fault: "wrong-type" (text/plain stream),
    "no-cache-header", "silent-open" (nothing for 1.5 s), "no-id" (insert events without
    id), "multiline-data" (Doc JSON over several data lines), "duplicate" (every insert
    event sent twice), "unknown-type" (an extra event type); "auth": /v1/collections needs
    ``Bearer right``; "resume-off-by-one" (resuming replays the event named too)."""
    docs: list[dict[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


def _matches(doc: dict[str, Any], expression: dict[str, Any]) -> bool:
    for path, wanted in expression.items():
        value: Any = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value != wanted:
            return False
    return True


def _handler(state: MiniState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any, media: str = "application/json") -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/v1/health":
                self._json(200, {"ok": True, "collections": [COLLECTION], "database": "up",
                                 "heartbeat_seconds": 1, "version": "mini"})
            elif url.path == "/v1/collections" and state.mode == "auth" and (
                self.headers.get("Authorization") != "Bearer right"
            ):
                self._json(401, {"type": "urn:dualstore:problem:unauthorized",
                                 "title": "Unauthorized", "status": 401},
                           "application/problem+json")
            elif url.path == "/v1/collections":
                self._json(200, {"collections": [COLLECTION]})
            elif url.path == f"/v1/{COLLECTION}/stream":
                self._stream(parse_qs(url.query))
            elif url.path.startswith(f"/v1/{COLLECTION}/"):
                wanted = url.path.rsplit("/", 1)[1]
                for doc in state.docs:
                    if doc["id"] == wanted:
                        self._json(200, doc)
                        return
                self._json(404, {"type": "urn:dualstore:problem:not-found", "title": "Not found",
                                 "status": 404}, "application/problem+json")
            else:
                self._json(404, {"type": "urn:dualstore:problem:not-found", "title": "Not found",
                                 "status": 404}, "application/problem+json")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            doc = {
                "id": uuid.uuid4().hex,
                "text": body["text"],
                "timestamp": body.get("timestamp", "2026-01-01T00:00:00.000Z"),
                "metadata": body.get("metadata", {}),
            }
            with state.cond:
                state.docs.append(doc)
                state.cond.notify_all()
            self._json(201, {"id": doc["id"]})

        def _stream(self, query: dict[str, list[str]]) -> None:
            expression: dict[str, Any] = {}
            encoded = (query.get("filter") or [""])[0]
            if encoded:
                padded = encoded + "=" * (-len(encoded) % 4)
                expression = json.loads(base64.urlsafe_b64decode(padded))
            self.send_response(200)
            if state.mode == "wrong-type":
                self.send_header("Content-Type", "text/plain")
            else:
                self.send_header("Content-Type", "text/event-stream")
            if state.mode != "no-cache-header":
                self.send_header("Cache-Control", "no-cache, no-transform")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            # legal but unusual: BOM, CR-only line ends, comments, an id-only block,
            # an unknown field, no retry, no space after colons
            with state.cond:
                position = len(state.docs)
            resume = self.headers.get("Last-Event-ID", "")
            if resume.isdigit():
                position = min(int(resume), position)  # ids are 1-based positions
                if state.mode == "resume-off-by-one":
                    position -= 1
            try:
                if state.mode == "silent-open":
                    self.wfile.flush()
                    time.sleep(1.5)
                self.wfile.write("\ufeff:hello\r\rid:0\r\r".encode())
                self.wfile.flush()
                last_beat = time.monotonic()
                while True:
                    with state.cond:
                        state.cond.wait(0.1)
                        fresh = state.docs[position:]
                        position = len(state.docs)
                    out = b""
                    for doc in fresh:
                        if _matches(doc, expression):
                            seq = state.docs.index(doc) + 1
                            data = json.dumps(doc, separators=(",", ":"))
                            head = "" if state.mode == "no-id" else f"id:{seq}\r"
                            if state.mode == "multiline-data":
                                data = json.dumps(doc, indent=1).replace("\n", "\rdata:")
                            block = f"x-note:ignored\revent:insert\r{head}data:{data}\r\r"
                            copies = 2 if state.mode == "duplicate" else 1
                            out += block.encode() * copies
                            if state.mode == "unknown-type":
                                out += b"event:update\rdata:{}\r\r"
                    if time.monotonic() - last_beat >= 1.0:
                        out += b":\r"
                        last_beat = time.monotonic()
                    if out:
                        self.wfile.write(out)
                        self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


@pytest.fixture
def mini_target() -> Iterator[tuple[str, MiniState]]:
    """(base URL, state) of a tiny target serving legal-but-unusual SSE framing."""
    state = MiniState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
