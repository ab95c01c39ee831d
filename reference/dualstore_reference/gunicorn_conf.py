# SPDX-License-Identifier: GPL-3.0-or-later
"""gunicorn configuration hooks used by ``dualstore serve`` (``-c python:<this module>``)."""

from __future__ import annotations

from typing import Any

from dualstore_reference.metrics import mark_process_dead


def child_exit(server: Any, worker: Any) -> None:
    """Drop the live gauges (open streams, index size) of a worker that exited."""
    mark_process_dead(worker.pid)
