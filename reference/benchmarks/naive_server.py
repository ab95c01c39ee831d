# SPDX-License-Identifier: GPL-3.0-or-later
"""The naive fan-out baseline: one aiohttp process, an in-memory list, push to every queue.

``POST /v1/{collection}`` appends the document to a list and puts its encoded SSE event on
every subscriber's queue; ``GET /v1/{collection}/stream`` writes a ``retry`` block and a
heartbeat, then every queued event, with a heartbeat after each idle interval. No
database, no resume, no filters: the floor that the reference's fan-out is compared to.
Run: ``python reference/benchmarks/naive_server.py --port 8080 [--heartbeat-seconds 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import uuid
from typing import Any

from aiohttp import web

QUEUES: web.AppKey[set[asyncio.Queue[bytes]]] = web.AppKey("queues", set)
DOCUMENTS: web.AppKey[list[dict[str, Any]]] = web.AppKey("documents", list)
HEARTBEAT: web.AppKey[float] = web.AppKey("heartbeat", float)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _heartbeat() -> bytes:
    return f'event: heartbeat\ndata: {{"t":"{_now()}"}}\n\n'.encode()


async def post(request: web.Request) -> web.Response:
    """Append the document and push its event to every subscriber."""
    body = await request.json()
    documents = request.app[DOCUMENTS]
    document = {"id": uuid.uuid4().hex, "text": body.get("text", ""), "timestamp": _now()}
    documents.append(document)
    data = json.dumps(document, separators=(",", ":"))
    event = f"id: {len(documents)}\nevent: insert\ndata: {data}\n\n".encode()
    for queue in request.app[QUEUES]:
        queue.put_nowait(event)
    return web.json_response(document, status=201)


async def stream(request: web.Request) -> web.StreamResponse:
    """Every event posted after the stream opened, with heartbeats."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    queues = request.app[QUEUES]
    queues.add(queue)
    interval = request.app[HEARTBEAT]
    try:
        await response.write(b"retry: 3000\n\n" + _heartbeat())
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), interval)
            except TimeoutError:
                event = _heartbeat()
            await response.write(event)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        queues.discard(queue)
    return response


async def health(request: web.Request) -> web.Response:
    """200 once serving."""
    return web.json_response({"status": "ok"})


def build(heartbeat_seconds: float) -> web.Application:
    """The baseline application."""
    app = web.Application()
    app[QUEUES] = set()
    app[DOCUMENTS] = []
    app[HEARTBEAT] = heartbeat_seconds
    app.router.add_get("/v1/health", health)
    app.router.add_post("/v1/{collection}", post)
    app.router.add_get("/v1/{collection}/stream", stream)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--heartbeat-seconds", type=float, default=15.0)
    args = parser.parse_args()
    web.run_app(build(args.heartbeat_seconds), host=args.host, port=args.port,
                print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
