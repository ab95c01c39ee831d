# SPDX-License-Identifier: GPL-3.0-or-later
"""The gunicorn worker class: uvicorn-worker's UvicornWorker with proxy headers off.

uvicorn would otherwise rewrite the client address from X-Forwarded-For for peers in
gunicorn's ``forwarded_allow_ips`` (127.0.0.1 by default); the server's own
TRUSTED_PROXIES setting is the only place that decides whether that header is believed.
Connections are served by ``connection.DualstoreProtocol`` (request-head deadline,
per-worker connection cap, problem+json for malformed requests), with the bounds from the
settings; the cap never exceeds what the worker's open-file limit can hold.
"""

from __future__ import annotations

import logging
import resource
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from .connection import ConnectionLimits, DualstoreProtocol
from .logs import install_redaction
from .settings import Settings

FILES_RESERVED = 256
"""Open files kept for everything but client connections (database pool, index, logs)."""
log = logging.getLogger("dualstore.worker")


def connection_cap(wanted: int) -> int:
    """wanted, lowered to fit the process's open-file limit (minus FILES_RESERVED)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FILES_RESERVED))


class DualstoreWorker(UvicornWorker):  # type: ignore[misc]  # reason: gunicorn is untyped
    """UvicornWorker that leaves the ASGI client address alone and bounds its connections."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "proxy_headers": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        install_redaction()
        settings = Settings.from_env()
        cap = connection_cap(settings.max_connections_per_worker)
        if cap < settings.max_connections_per_worker:
            log.warning(
                "MAX_CONNECTIONS_PER_WORKER lowered from %d to %d to fit the open-file limit",
                settings.max_connections_per_worker, cap,
            )  # fmt: skip
        self.config.http = DualstoreProtocol.configured(
            ConnectionLimits(settings.head_timeout_seconds, cap)
        )
        self.config.timeout_keep_alive = settings.keepalive_seconds
