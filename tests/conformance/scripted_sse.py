# SPDX-License-Identifier: GPL-3.0-or-later
"""A scripted DualStore target (ASGI under uvicorn in a thread) whose stream misbehaves on cue."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from dualstore_reference.embedded import free_port

COLLECTION = "things"


@dataclass
class Script:
    """What the target does (defaults: a small conforming target)."""

    heartbeat_seconds: float = 1.0
    """The interval the stream really uses."""
    reported_heartbeat: float | None = None
    """What health reports (default: the real interval)."""
    deliver_inserts: bool = True
    heartbeat_id: bool = False
    """Heartbeats carry an id line equal to the last event id."""
    reset_on_any_insert: bool = False
    """Every insert restarts every stream's heartbeat clock, matching its filter or not."""
    stream_cap: int = 100
    join_duplicate: bool = False
    """A resumed stream sends its last replayed event again before the first live one."""
    stall_writes: tuple[float, float] | None = None
    """(after, seconds): from `after` s past the first POST, answer no POST for `seconds` s
    (a stalled database); the stream keeps its heartbeats."""
    docs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _matches(doc: dict[str, Any], expression: dict[str, Any]) -> bool:
    for path, wanted in expression.items():
        value: Any = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value != wanted:
            return False
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ScriptedTarget:
    """The ASGI app; its state lives on the server thread's event loop."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.changed: asyncio.Event | None = None
        self.last_insert = 0.0
        self.first_write: float | None = None
        self.open_streams = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self.changed is None:
            self.changed = asyncio.Event()
        method, path = scope["method"], scope["path"]
        self.script.requests.append(f"{method} {path}")
        query = parse_qs(scope.get("query_string", b"").decode())
        if path == "/v1/health":
            script = self.script
            reported = script.reported_heartbeat or script.heartbeat_seconds
            await self._json(send, 200, {"ok": True, "collections": [COLLECTION],
                                         "database": "up", "heartbeat_seconds": reported,
                                         "version": "scripted"})
        elif path == "/v1/collections":
            await self._json(send, 200, {"collections": [COLLECTION]})
        elif path == f"/v1/{COLLECTION}" and method == "POST":
            await self._insert(receive, send)
        elif path == f"/v1/{COLLECTION}/stream":
            await self._stream(query, receive, send, scope["headers"])
        elif path.startswith(f"/v1/{COLLECTION}/"):
            wanted = path.rsplit("/", 1)[1]
            doc = next((d for d in self.script.docs if d["id"] == wanted), None)
            await self._json(send, 200 if doc else 404, doc or self._problem("not-found", 404))
        else:
            await self._json(send, 404, self._problem("not-found", 404))

    @staticmethod
    def _problem(slug: str, status: int) -> dict[str, Any]:
        return {"type": f"urn:dualstore:problem:{slug}", "title": slug, "status": status}

    @staticmethod
    async def _json(send: Any, status: int, body: Any, headers: list[Any] | None = None) -> None:
        raw = json.dumps(body).encode()
        media = b"application/problem+json" if status >= 400 else b"application/json"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", media), *(headers or [])]})
        await send({"type": "http.response.body", "body": raw})

    async def _insert(self, receive: Any, send: Any) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw)
        stall = self.script.stall_writes
        if stall is not None:
            now = time.monotonic()
            if self.first_write is None:
                self.first_write = now
            resume = self.first_write + stall[0] + stall[1]
            if self.first_write + stall[0] <= now < resume:
                await asyncio.sleep(resume - now)
        doc = {"id": uuid.uuid4().hex, "text": body["text"],
               "timestamp": body.get("timestamp", _now()), "metadata": body.get("metadata", {})}
        self.script.docs.append(doc)
        self.last_insert = time.monotonic()
        assert self.changed is not None
        self.changed.set()
        self.changed = asyncio.Event()
        await self._json(send, 201, doc)

    async def _stream(self, query: dict[str, list[str]], receive: Any, send: Any,
                      scope_headers: list[tuple[bytes, bytes]]) -> None:
        script = self.script
        if self.open_streams >= script.stream_cap:
            await self._json(send, 429, self._problem("too-many-streams", 429),
                             [(b"retry-after", b"1")])
            return
        expression: dict[str, Any] = {}
        encoded = (query.get("filter") or [""])[0]
        if encoded:
            expression = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        self.open_streams += 1
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive()).get("type") != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
            resume = dict(scope_headers).get(b"last-event-id", b"").decode()
            await self._events(expression, send, gone, int(resume) if resume.isdigit() else None)
        finally:
            self.open_streams -= 1
            watcher.cancel()

    async def _events(self, expression: dict[str, Any], send: Any, gone: asyncio.Event,
                      resume: int | None) -> None:
        script = self.script

        async def out(text: str) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

        def beat(last_id: str) -> str:
            head = f"id: {last_id}\n" if script.heartbeat_id and last_id else ""
            return f"event: heartbeat\n{head}data: {json.dumps({'t': _now()})}\n\n"

        await out("retry: 3000\n\n" + beat(""))
        sent_at = time.monotonic()
        position = len(script.docs) if resume is None else resume
        last_id = ""
        replayed: str | None = None
        join = len(script.docs)
        while not gone.is_set():
            assert self.changed is not None
            clock = max(sent_at, self.last_insert) if script.reset_on_any_insert else sent_at
            remaining = clock + script.heartbeat_seconds - time.monotonic()
            if remaining <= 0:
                await out(beat(last_id))
                sent_at = time.monotonic()
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.05))
            fresh, position = script.docs[position:], len(script.docs)
            for doc in fresh:
                if script.deliver_inserts and _matches(doc, expression):
                    seq = script.docs.index(doc) + 1
                    last_id = str(seq)
                    block = (f"event: insert\nid: {last_id}\n"
                             f"data: {json.dumps(doc, separators=(',', ':'))}\n\n")
                    if resume is not None and seq <= join:
                        replayed = block
                    elif replayed is not None and script.join_duplicate:
                        await out(replayed)
                        replayed = None
                    await out(block)
                    sent_at = time.monotonic()


@contextmanager
def serve(script: Script) -> Iterator[str]:
    """Run the scripted target; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(ScriptedTarget(script), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
