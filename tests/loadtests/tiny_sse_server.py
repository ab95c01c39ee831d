# SPDX-License-Identifier: GPL-3.0-or-later
"""A tiny in-memory DualStore-shaped server (POST + SSE stream) with optional injected faults.

Run as a script: ``python tiny_sse_server.py PORT [--drop-every N] [--duplicate-every N]
[--leak-kib K] [--close-after N] [--heartbeat S] [--token T]``. Faults:
``--drop-every N`` never streams every N-th document, ``--duplicate-every N`` streams
every N-th twice, ``--leak-kib K`` keeps K KiB of garbage per POST forever. Not a fault:
``--close-after N`` ends each stream after N documents (clients resume by Last-Event-ID),
``--close-fresh`` ends a stream opened without a resume point before any event (clients
resume with ``since``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DOCS: list[dict[str, Any]] = []
CHANGED = threading.Condition()
LEAK: list[bytes] = []
OPTIONS = argparse.Namespace()


def now_iso() -> str:
    """Current time, ISO 8601 UTC with milliseconds."""
    stamp = datetime.now(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class Handler(BaseHTTPRequestHandler):
    """POST /v1/{c}, GET /v1/{c}/stream, GET /v1/health."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _authorized(self) -> bool:
        if not OPTIONS.token:
            return True
        if self.headers.get("Authorization") == f"Bearer {OPTIONS.token}":
            return True
        self._json(401, {"type": "urn:dualstore:problem:unauthorized"})
        return False

    def _json(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        """Store a document and wake the streams."""
        if not self._authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        doc = {"id": uuid.uuid4().hex, "text": body["text"],
               "timestamp": body.get("timestamp") or now_iso(),
               "metadata": body.get("metadata", {})}
        if OPTIONS.leak_kib:
            LEAK.append(bytes(bytearray(OPTIONS.leak_kib * 1024)))
        with CHANGED:
            DOCS.append(doc)
            CHANGED.notify_all()
        self._json(201, {"id": doc["id"]})

    def do_GET(self) -> None:
        """Health or stream."""
        if self.path.startswith("/v1/health"):
            self._json(200, {"ok": True, "heartbeat_seconds": OPTIONS.heartbeat})
            return
        if not self.path.split("?")[0].endswith("/stream"):
            self._json(404, {"type": "urn:dualstore:problem:not-found"})
            return
        if not self._authorized():
            return
        idle = "filter=" in self.path
        last = self.headers.get("Last-Event-ID", "")
        since = parse_qs(urlsplit(self.path).query).get("since", [""])[0]
        with CHANGED:
            if last.isdigit():
                position = int(last)
            elif since:  # timestamps share one ISO format: text order is time order
                position = next((i for i, d in enumerate(DOCS) if d["timestamp"] >= since),
                                len(DOCS))
            else:
                position = len(DOCS)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(b"retry: 100\n: open\n\n")  # resumed events are not held up
            self.wfile.flush()
            if OPTIONS.close_fresh and not last and not since:
                return  # drop before any event: the client must resume with `since`
            last_sent = time.monotonic()
            sent_events = 0
            while True:
                with CHANGED:
                    if len(DOCS) <= position:
                        CHANGED.wait(max(0.0, last_sent + OPTIONS.heartbeat - time.monotonic()))
                    fresh = DOCS[position:]
                    position = len(DOCS)
                frames = []
                for offset, doc in enumerate(fresh, start=position - len(fresh) + 1):
                    if idle or (OPTIONS.drop_every and offset % OPTIONS.drop_every == 0):
                        continue
                    frame = f"event: insert\nid: {offset}\ndata: {json.dumps(doc)}\n\n"
                    frames.append(frame)
                    if OPTIONS.duplicate_every and offset % OPTIONS.duplicate_every == 0:
                        frames.append(frame)
                if not frames and time.monotonic() - last_sent >= OPTIONS.heartbeat:
                    frames.append(f"event: heartbeat\ndata: {json.dumps({'t': now_iso()})}\n\n")
                if frames:
                    self.wfile.write("".join(frames).encode())
                    self.wfile.flush()
                    last_sent = time.monotonic()
                    sent_events += len(fresh)
                if OPTIONS.close_after and sent_events >= OPTIONS.close_after:
                    return  # drop the connection: the client must resume by Last-Event-ID
        except (BrokenPipeError, ConnectionResetError):
            return


def main() -> None:
    """Parse options, listen, say ready, serve forever."""
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--duplicate-every", type=int, default=0)
    parser.add_argument("--leak-kib", type=int, default=0)
    parser.add_argument("--close-after", type=int, default=0)
    parser.add_argument("--close-fresh", action="store_true")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--token", default="")
    parser.parse_args(namespace=OPTIONS)
    server = ThreadingHTTPServer(("127.0.0.1", OPTIONS.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    time.sleep(0)
    server.serve_forever()


if __name__ == "__main__":
    main()
