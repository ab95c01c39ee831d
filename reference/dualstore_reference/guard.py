# SPDX-License-Identifier: GPL-3.0-or-later
"""The outermost ASGI layer: what Falcon cannot take (HTTP/2 preface, huge heads) as problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

from .problems import raw_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_TARGET_BYTES = 16384
"""Longest request target (path and query) served; longer is 414 (the spec: >= 8,000)."""
MAX_HEAD_BYTES = 32768
"""Largest request head (request line and header fields) served; larger is 431 (or 414);
room for the spec's minimums together (8,000-octet request line, 8,192-octet headers)."""
VERSIONS = frozenset({"1.0", "1.1"})


def refusal(scope: Scope) -> tuple[int, str | None, str] | None:
    """(status, slug, detail) when the request cannot be handed to the app, else None."""
    if scope.get("http_version") not in VERSIONS:
        return 505, None, "This port serves HTTP/1.1 only (an HTTP/2 preface is not accepted)."
    target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    if target > MAX_TARGET_BYTES:
        return 414, None, f"The request target is longer than {MAX_TARGET_BYTES} bytes."
    head = target + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
    if head > MAX_HEAD_BYTES:
        return 431, None, f"The request head is larger than {MAX_HEAD_BYTES} bytes."
    return None


def origin_form(scope: Scope) -> None:
    """Absolute-form targets (``GET http://host/path``) become their path (RFC 9112 3.2.2)."""
    raw: bytes = scope.get("raw_path", b"")
    if raw.startswith((b"http://", b"https://")):
        path = urlsplit(raw.decode("latin-1")).path or "/"
        scope["raw_path"] = path.encode("latin-1")
        scope["path"] = unquote(path)


class Guard:
    """Wraps the app: requests it must not see are answered here as problem+json."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = refusal(scope)
            if refused is not None:
                status, slug, detail = refused
                headers, body = raw_response(status, slug, detail)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            origin_form(scope)
        await self.app(scope, receive, send)
