# SPDX-License-Identifier: GPL-3.0-or-later
"""A documented query parameter given twice (`limit=5&limit=500`) is 400, never "last one wins"."""

from __future__ import annotations

from typing import Any

import falcon.asgi

from .problems import Problem

DOCUMENTED: dict[str, tuple[str, ...]] = {
    "/v1/{collection}/recent": ("limit", "cursor", "filter"),
    "/v1/{collection}/search": ("q", "k", "filter"),
    "/v1/{collection}/stream": ("filter", "since"),
}
"""Route template -> its documented query parameters (x-dualstore-http.repeated-parameters).
Unknown parameters stay ignored however often they appear."""


class RepeatedParameters:
    """process_resource after authentication; an unknown collection is left to its 404."""

    def __init__(self, collections: tuple[str, ...]) -> None:
        self.collections = frozenset(collections)

    async def process_resource(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        params: dict[str, Any],
    ) -> None:
        names = DOCUMENTED.get(req.uri_template or "")
        if not names or params.get("collection") not in self.collections:
            return
        for name in names:
            if isinstance(req.params.get(name), list):
                raise Problem(
                    "invalid-request", f"The query parameter {name!r} is given more than once."
                )
