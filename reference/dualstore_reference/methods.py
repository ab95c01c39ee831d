# SPDX-License-Identifier: GPL-3.0-or-later
"""Methods Falcon does not know (``BREW``): 405 with ``Allow`` on a routed path, like any other."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import falcon.constants
from falcon.routing import CompiledRouter


class UnknownMethods:
    """Falcon answers 400 to a method outside its list; on a routed path that is a 405.

    Runs as ``process_resource`` after authentication, so an unknown method is treated
    exactly like a known method the route does not serve (401 first, then 405). A path
    that no route matches never gets here: it stays 404.
    """

    def __init__(self, router: CompiledRouter) -> None:
        self.router = router

    async def process_resource(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        params: dict[str, Any],
    ) -> None:
        if resource is None or req.method in falcon.constants.COMBINED_METHODS:
            return
        route = self.router.find(req.path, req)
        method_map: dict[str, Any] = route[1] if route else {}
        allowed = sorted(
            method for method, responder in method_map.items()
            if getattr(responder, "__self__", None) is resource
        )  # fmt: skip
        raise falcon.HTTPMethodNotAllowed(allowed)
