# SPDX-License-Identifier: GPL-3.0-or-later
"""Bearer authentication: several accepted tokens (rotation), compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

import falcon.asgi

from ..problems import Problem

OPEN_PATHS = frozenset({"/v1/health", "/metrics"})
"""Paths served without a token (health checks, scrapers)."""
OPEN_PREFIXES = ("/v1/ui/",)
"""The demo page is static HTML; the token is typed into it and sent by its script."""
STREAM_SUFFIX = "/stream"


def matches_any(candidate: str, tokens: Iterable[str]) -> bool:
    """True if candidate equals one of tokens; every token is compared (constant time)."""
    given = candidate.encode("utf-8")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, token.encode("utf-8"))
    return found


def bearer_token(req: falcon.asgi.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def request_token(req: falcon.asgi.Request) -> str | None:
    """The token a request presents: the header, or ``access_token`` on the stream route.

    A present ``Authorization`` header alone decides (AUTH-008, RFC 6750 section 2: one
    method per request): another scheme or an empty Bearer is no token, whatever
    ``access_token`` says.
    """
    if req.get_header("Authorization") is not None:
        return bearer_token(req)
    if req.path.endswith(STREAM_SUFFIX) and req.method == "GET":
        return req.get_param("access_token") or None
    return None


def challenge(detail: str) -> Problem:
    """401 with ``WWW-Authenticate: Bearer``."""
    return Problem(
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="dualstore"'},
    )


class AuthMiddleware:
    """Rejects routed requests without a valid token (preflight and open paths pass)."""

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens

    def exempt(self, req: falcon.asgi.Request) -> bool:
        """Preflight requests and open paths need no token."""
        if req.method == "OPTIONS":
            return True
        return (
            req.path in OPEN_PATHS or req.path == "/v1/ui" or req.path.startswith(OPEN_PREFIXES)
        )

    async def process_resource(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        params: dict[str, Any],
    ) -> None:
        # After routing: a path the API does not define is 404 with or without a token.
        if not self.tokens or resource is None or self.exempt(req):
            return
        token = request_token(req)
        if token is None:
            raise challenge("A bearer token is required (Authorization: Bearer <token>).")
        if not matches_any(token, self.tokens):
            raise challenge("The bearer token is not valid.")
        req.context.token = token
