# SPDX-License-Identifier: GPL-3.0-or-later
"""ASGI plumbing for fault middlewares: rewrite a request scope, a buffered response, SSE."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

STREAM_PATH = re.compile(r"^/v1/[^/]+/stream$")
DOC_FIELDS = frozenset({"id", "text", "timestamp", "metadata"})


def is_http(scope: Scope) -> bool:
    """True for an HTTP request scope (not lifespan)."""
    return scope.get("type") == "http"


def is_stream(scope: Scope) -> bool:
    """True for GET /v1/{collection}/stream."""
    return is_http(scope) and bool(STREAM_PATH.match(str(scope.get("path", ""))))


def get_header(headers: Headers, name: str) -> str | None:
    """The first value of a header (case-insensitive name), decoded as latin-1."""
    key = name.lower().encode()
    for header, value in headers:
        if header.lower() == key:
            return value.decode("latin-1")
    return None


def set_header(headers: Headers, name: str, value: str | None) -> Headers:
    """A copy of headers with name replaced by value (removed when value is None)."""
    key = name.lower().encode()
    kept = [(h, v) for h, v in headers if h.lower() != key]
    if value is not None:
        kept.append((key, value.encode("latin-1")))
    return kept


def request_header(scope: Scope, name: str) -> str | None:
    """A request header of scope."""
    return get_header(list(scope.get("headers", [])), name)


def with_request_header(scope: Scope, name: str, value: str | None) -> Scope:
    """A copy of scope with a request header replaced or removed."""
    return {**scope, "headers": set_header(list(scope.get("headers", [])), name, value)}


def query(scope: Scope) -> list[tuple[str, str]]:
    """The decoded query parameters of scope, in order."""
    raw = bytes(scope.get("query_string", b"")).decode("latin-1")
    return parse_qsl(raw, keep_blank_values=True)


def with_query(scope: Scope, pairs: list[tuple[str, str]]) -> Scope:
    """A copy of scope with these query parameters."""
    return {**scope, "query_string": urlencode(pairs).encode("latin-1")}


def rewrite_request(app: ASGIApp, rewrite: Callable[[Scope], Scope]) -> ASGIApp:
    """Middleware that hands the app rewrite(scope) for HTTP requests."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        await app(rewrite(scope) if is_http(scope) else scope, receive, send)

    return middleware


Response = tuple[int, Headers, bytes]
ResponseRewrite = Callable[[Scope, int, Headers, bytes], Response]


def rewrite_response(app: ASGIApp, rewrite: ResponseRewrite) -> ASGIApp:
    """Middleware that buffers every non-SSE HTTP response and sends rewrite(...) of it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not is_http(scope):
            await app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def buffered(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if "event-stream" in (get_header(headers, "content-type") or ""):
                    passthrough = True
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(bytes(message.get("body", b"")))
            if message.get("more_body", False):
                return
            status, headers, body = rewrite(
                scope, int(start["status"]), list(start.get("headers", [])), b"".join(chunks)
            )
            if get_header(headers, "content-length") is not None:
                headers = set_header(headers, "content-length", str(len(body)))
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await app(scope, receive, buffered)

    return middleware


def json_body(headers: Headers, body: bytes) -> Any:
    """The parsed JSON body, or None when the response is not JSON."""
    if "json" not in (get_header(headers, "content-type") or ""):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def dump(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def map_docs(value: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """value with change applied to every object that has exactly the Doc fields."""
    if isinstance(value, dict):
        if value.keys() >= DOC_FIELDS and len(value) == len(DOC_FIELDS):
            return change(value)
        return {key: map_docs(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_docs(item, change) for item in value]
    return value


def rewrite_docs(app: ASGIApp, change: Callable[[dict[str, Any]], dict[str, Any]]) -> ASGIApp:
    """Middleware applying change to every Doc in JSON (non-SSE) responses."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        value = json_body(headers, body)
        if value is None:
            return status, headers, body
        return status, headers, dump(map_docs(value, change))

    return rewrite_response(app, rewrite)


class BlockFilter(Protocol):
    """Per-connection transformation of SSE blocks (each ends with a blank line)."""

    async def __call__(self, block: bytes) -> list[bytes]: ...


def rewrite_sse(
    app: ASGIApp,
    make_filter: Callable[[Scope], BlockFilter],
    start: Callable[[Headers], Headers] | None = None,
) -> ASGIApp:
    """Middleware for the stream: optional header rewrite, then each block through a filter."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not is_stream(scope):
            await app(scope, receive, send)
            return
        block_filter = make_filter(scope)
        pending = b""
        streaming = False

        async def filtered(message: Message) -> None:
            nonlocal pending, streaming
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                streaming = "event-stream" in (get_header(headers, "content-type") or "")
                if streaming and start is not None:
                    message = {**message, "headers": start(headers)}
                await send(message)
                return
            if message["type"] != "http.response.body" or not streaming:
                await send(message)
                return
            pending += bytes(message.get("body", b""))
            out: list[bytes] = []
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                out.extend(await block_filter(block + b"\n\n"))
            more = bool(message.get("more_body", False))
            if not more and pending:
                out.append(pending)
                pending = b""
            await send({"type": "http.response.body", "body": b"".join(out), "more_body": more})

        await app(scope, receive, filtered)

    return middleware


def block_fields(block: bytes) -> dict[str, str]:
    """field -> value of a reference SSE block (LF line ends, one line per field)."""
    fields: dict[str, str] = {}
    for line in block.decode("utf-8").split("\n"):
        name, sep, value = line.partition(":")
        if sep and name:
            fields[name] = value[1:] if value.startswith(" ") else value
    return fields


def event_type(block: bytes) -> str | None:
    """The event: field of a block (None for a retry-only block)."""
    return block_fields(block).get("event")
