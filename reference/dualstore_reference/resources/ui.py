# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``/v1/ui/`` live demo page and its static files (registered only when UI_ENABLED=1)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import falcon
import falcon.asgi

from ..problems import Problem

PREFIX = "/v1/ui"
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
    "dualstore-sse-client.js": "text/javascript; charset=utf-8",
}
"""The files under ``static/`` the page may load, with their media types (an allow-list)."""
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # connect-src allows other servers because ``?api=`` may point the page elsewhere.
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


def load_assets() -> dict[str, bytes]:
    """Read the static files once (the browser module is the one in ``clients/js``)."""
    folder = resources.files("dualstore_reference") / "static"
    return {name: (folder / name).read_bytes() for name in ASSETS}


class UiFiles:
    """``GET /v1/ui/`` (the page) and ``GET /v1/ui/{name}`` (its allow-listed files)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def _serve(self, resp: falcon.asgi.Response, name: str) -> None:
        body = self.files.get(name)
        if body is None:
            raise Problem("not-found", f"The demo page has no file {name!r}.")
        resp.content_type = ASSETS[name]
        resp.set_headers(HEADERS)
        resp.data = body

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        self._serve(resp, "index.html")

    async def on_get_asset(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ) -> None:
        self._serve(resp, name)


def register(app: falcon.asgi.App[Any, Any], state: Any) -> None:
    """Add the page's routes to the app (the app factory calls this when UI_ENABLED=1)."""
    files = UiFiles(load_assets())
    app.add_route(f"{PREFIX}/", files)
    app.add_route(f"{PREFIX}/{{name}}", files, suffix="asset")
