# SPDX-License-Identifier: GPL-3.0-or-later
"""CORS: Falcon's CORSMiddleware with the CORS_ORIGIN allow-list and the spec's header lists."""

from __future__ import annotations

import falcon
import falcon.asgi
from dualstore_spec import facts

ALLOW_HEADERS = facts.current().cors_allow_headers
"""Request headers a preflight allows (the spec's x-dualstore-cors.allow-headers)."""
EXPOSE_HEADERS = facts.current().cors_expose_headers
"""Response headers scripts may read (x-dualstore-cors.expose-headers)."""


class CORS(falcon.CORSMiddleware[falcon.asgi.Request, falcon.asgi.Response]):
    """Falcon's policy, but preflights allow exactly ALLOW_HEADERS instead of echoing."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        super().__init__(
            allow_origins="*" if "*" in origins else list(origins),
            expose_headers=list(EXPOSE_HEADERS),
        )

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        super().process_response(req, resp, resource, req_succeeded)
        if resp.get_header("Access-Control-Allow-Headers") is not None:
            resp.set_header("Access-Control-Allow-Headers", ", ".join(ALLOW_HEADERS))
        if req.get_header("Origin") is not None:
            resp.append_header("Vary", "Origin")
