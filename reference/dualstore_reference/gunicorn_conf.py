# SPDX-License-Identifier: GPL-3.0-or-later
"""gunicorn configuration hooks used by ``dualstore serve`` (``-c python:<this module>``)."""

from __future__ import annotations

import os
from typing import Any

from dualstore_reference.app import DEFAULT_DATABASE
from dualstore_reference.metrics import mark_process_dead
from dualstore_reference.security.stream_slots import release_process


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (any way, kill -9 included): drop its live gauges, free its slots."""
    mark_process_dead(worker.pid)
    uri = os.environ.get("MONGODB_URI")
    if uri:
        release_process(uri, DEFAULT_DATABASE, worker.pid)
