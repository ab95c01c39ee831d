# SPDX-License-Identifier: GPL-3.0-or-later
"""Boundary mutants: a limit enforced one off from the spec's number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import fault
from .asgi import ASGIApp

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings


@fault("rest-body-cap-off-by-one")
def body_cap_off_by_one(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The body cap compares with >= instead of >: a body of exactly the cap gets 413."""
    object.__setattr__(settings, "max_body_bytes", settings.max_body_bytes - 1)
    return app
