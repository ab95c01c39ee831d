# SPDX-License-Identifier: GPL-3.0-or-later
"""Falcon's ASGI app, leaving each HTTP request's ASGI ``send`` in its scope (for streams)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import falcon.asgi

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
SEND_SCOPE_KEY = "dualstore.send"
"""Where ``StreamingApp`` leaves the request's ASGI ``send`` in the scope."""


class StreamingApp(falcon.asgi.App):  # type: ignore[type-arg]  # reason: generic over request/response types it never narrows
    """``falcon.asgi.App`` that also puts each HTTP request's ``send`` in ``req.scope``.

    Falcon writes a streamed body only from the responder's generator. The SSE resource
    also writes live events straight from the hub's publish loop, while its generator is
    parked (``stream.direct.DirectWriter``), and needs the same ``send`` for that.
    """

    async def __call__(  # type: ignore[override]  # reason: Falcon types the ASGI callables loosely
        self, scope: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        if scope.get("type") == "http":
            scope[SEND_SCOPE_KEY] = send
        await super().__call__(scope, receive, send)
