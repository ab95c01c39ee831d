# SPDX-License-Identifier: GPL-3.0-or-later
"""Boundary mutants: a limit enforced one off from the spec's number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dualstore_spec import facts

from .asgi import ASGIApp, Scope, query, rewrite_request, with_query
from .registry import fault
from .rest import SEARCH_PATH

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings


@fault("rest-body-cap-off-by-one")
def body_cap_off_by_one(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The body cap compares with >= instead of >: a body of exactly the cap gets 413."""
    object.__setattr__(settings, "max_body_bytes", settings.max_body_bytes - 1)
    return app


@fault("rest-q-utf16-length")
def q_utf16_length(app: ASGIApp, settings: Settings) -> ASGIApp:
    """q's length is counted in UTF-16 code units (a JavaScript string's length), so 1024
    characters with some outside the BMP are refused as too long."""
    longest = facts.current().search_q_max_length

    def rewrite(scope: Scope) -> Scope:
        if not SEARCH_PATH.match(str(scope.get("path", ""))):
            return scope
        pairs = query(scope)
        units = [len(v.encode("utf-16-le")) // 2 for k, v in pairs if k == "q"]
        if not any(n > longest for n in units):
            return scope
        return with_query(scope, [(k, "q" * (longest + 1) if k == "q" else v) for k, v in pairs])

    return rewrite_request(app, rewrite)
