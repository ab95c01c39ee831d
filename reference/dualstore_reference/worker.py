# SPDX-License-Identifier: GPL-3.0-or-later
"""The gunicorn worker class: uvicorn-worker's UvicornWorker with proxy headers off.

uvicorn would otherwise rewrite the client address from X-Forwarded-For for peers in
gunicorn's ``forwarded_allow_ips`` (127.0.0.1 by default); the server's own
TRUSTED_PROXIES setting is the only place that decides whether that header is believed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class DualstoreWorker(UvicornWorker):  # type: ignore[misc]  # reason: gunicorn is untyped
    """UvicornWorker that leaves the ASGI client address alone."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "proxy_headers": False,
    }
