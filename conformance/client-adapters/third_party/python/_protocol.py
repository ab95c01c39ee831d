# SPDX-License-Identifier: GPL-3.0-or-later
"""The conform-client adapter protocol for third-party adapters (no project imports)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from importlib import metadata
from typing import Any

LISTEN = [t for t in os.environ.get("SSE_CONFORM_LISTEN", "message").split(",") if t]
DESCRIBE = os.environ.get("SSE_CONFORM_DESCRIBE") == "1"


def emit(kind: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed."""
    sys.stdout.write(json.dumps({"kind": kind, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _watch_parent() -> None:
    """Exit when the harness that started us is gone (never linger as an orphan)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def hello(distribution: str, features: list[str]) -> None:
    """The first line: the library, its installed version, profile and features."""
    _watch_parent()
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "unknown"
    emit("hello", client=distribution, version=version, profile="eventsource",
         features=features)


def event(kind: str | None, data: str | None, last_event_id: str | None) -> None:
    """Report one delivered event when its type is listened to."""
    kind = kind or "message"
    if kind in LISTEN:
        emit("event", type=kind, data=data, last_event_id=last_event_id)
