# SPDX-License-Identifier: GPL-3.0-or-later
"""Security mutants: auth gaps, token comparison, CORS, preflight, Retry-After."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .asgi import (
    ASGIApp,
    Headers,
    Message,
    Receive,
    Response,
    Scope,
    Send,
    is_http,
    is_stream,
    query,
    request_header,
    rewrite_request,
    rewrite_response,
    set_header,
    with_query,
    with_request_header,
)
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings


@fault("sec-stream-auth-off")
def stream_auth_off(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The stream route was left out of the auth middleware: it opens without a token."""
    tokens = settings.auth_tokens

    def rewrite(scope: Scope) -> Scope:
        if not tokens or not is_stream(scope):
            return scope
        scope = with_query(scope, [(k, v) for k, v in query(scope) if k != "access_token"])
        return with_request_header(scope, "authorization", f"Bearer {tokens[0]}")

    return rewrite_request(app, rewrite)


@fault("sec-token-prefix-match")
def token_prefix_match(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Tokens compared with startswith: any non-empty prefix of a valid token is accepted."""
    tokens = settings.auth_tokens

    def rewrite(scope: Scope) -> Scope:
        header = request_header(scope, "authorization") or ""
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return scope
        presented = presented.strip()
        for token in tokens:
            if token != presented and token.startswith(presented):
                return with_request_header(scope, "authorization", f"Bearer {token}")
        return scope

    return rewrite_request(app, rewrite)


@fault("sec-cors-any-origin")
def cors_any_origin(app: ASGIApp, settings: Settings) -> ASGIApp:
    """CORS reflects whatever Origin the request carries."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        origin = request_header(scope, "origin")
        if origin:
            headers = set_header(headers, "access-control-allow-origin", origin)
            headers = set_header(headers, "vary", "Origin")
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("sec-preflight-blocked")
def preflight_blocked(app: ASGIApp, settings: Settings) -> ASGIApp:
    """OPTIONS requests hit the auth wall: preflights get 401 (browsers send no token there)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if is_http(scope) and scope["method"] == "OPTIONS":
            body = (
                b'{"type":"urn:dualstore:problem:unauthorized","title":"Unauthorized",'
                b'"status":401,"detail":"A bearer token is required."}'
            )
            start: Message = {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await app(scope, receive, send)

    return middleware


@fault("sec-429-no-retry-after")
def no_retry_after(app: ASGIApp, settings: Settings) -> ASGIApp:
    """429 answers (rate limit and stream cap) lack Retry-After."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        if status == 429:
            headers = set_header(headers, "retry-after", None)
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("sec-access-token-everywhere")
def access_token_everywhere(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The access_token query parameter is honoured on every operation, not just the stream."""

    def rewrite(scope: Scope) -> Scope:
        if is_stream(scope) or request_header(scope, "authorization"):
            return scope
        token = next((v for k, v in query(scope) if k == "access_token"), "")
        if not token:
            return scope
        return with_request_header(scope, "authorization", f"Bearer {token}")

    return rewrite_request(app, rewrite)


@fault("sec-cors-expose-missing")
def cors_expose_missing(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Access-Control-Expose-Headers is never sent: browsers cannot read Location or Retry-After."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        return status, set_header(headers, "access-control-expose-headers", None), body

    return rewrite_response(app, rewrite)


@fault("sec-scheme-case-sensitive")
def scheme_case_sensitive(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The auth scheme is matched case-sensitively: ``bearer T`` and ``BEARER T`` get 401."""

    def rewrite(scope: Scope) -> Scope:
        header = request_header(scope, "authorization")
        if header is None or header.startswith("Bearer "):
            return scope
        return with_request_header(scope, "authorization", None)

    return rewrite_request(app, rewrite)


CORS_HEADERS = ("access-control-allow-origin", "access-control-expose-headers",
                "access-control-allow-credentials")


def _without_cors(headers: Headers) -> Headers:
    for name in CORS_HEADERS:
        headers = set_header(headers, name, None)
    return headers


@fault("sec-cors-success-only")
def cors_success_only(app: ASGIApp, settings: Settings) -> ASGIApp:
    """CORS headers are added by the success path only: errors (4xx/5xx) and the stream lack
    them, so a browser sees an opaque network error instead of the problem."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        if status >= 400:
            headers = _without_cors(headers)
        return status, headers, body

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not is_stream(scope):
            await errors_stripped(scope, receive, send)
            return

        async def stripped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _without_cors(list(message.get("headers", [])))}
            await send(message)

        await app(scope, receive, stripped)

    errors_stripped = rewrite_response(app, rewrite)
    return middleware
