# SPDX-License-Identifier: GPL-3.0-or-later
"""Must-pass variants of the REST API: unusual answers the spec permits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .asgi import ASGIApp, Headers, Response, Scope, get_header, rewrite_response, set_header
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings


@fault("odd-legal-allow-head-options")
def allow_head_options(app: ASGIApp, settings: Settings) -> ASGIApp:
    """405 answers list HEAD (beside GET) and OPTIONS in Allow as well, as many frameworks do
    (RFC 9110 section 10.2.1: Allow lists the methods the resource supports)."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        allow = get_header(headers, "allow")
        if status != 405 or allow is None:
            return status, headers, body
        methods = [m.strip() for m in allow.split(",") if m.strip()]
        extra = (["HEAD"] if "GET" in methods else []) + ["OPTIONS"]
        listed = ", ".join([*methods, *(m for m in extra if m not in methods)])
        return status, set_header(headers, "allow", listed), body

    return rewrite_response(app, rewrite)
