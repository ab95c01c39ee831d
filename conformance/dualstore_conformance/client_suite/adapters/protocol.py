# SPDX-License-Identifier: GPL-3.0-or-later
"""The adapter side of conform-client's protocol: read the scenario's environment, print JSON lines.

An adapter is run as ``CMD URL``. It prints one ``hello`` line first, then what its client
delivered: ``open``, ``event`` (type, data, last_event_id; doc_id for DualStore clients),
``error``, ``closed``; or ``skip`` with a reason when it cannot run here. With
``SSE_CONFORM_DESCRIBE=1`` it prints the hello line and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

ENV_DESCRIBE = "SSE_CONFORM_DESCRIBE"
ENV_SCENARIO = "SSE_CONFORM_SCENARIO"
ENV_LISTEN = "SSE_CONFORM_LISTEN"
ENV_BASE_URL = "SSE_CONFORM_BASE_URL"
ENV_COLLECTION = "SSE_CONFORM_COLLECTION"
ENV_OPTIONS = "SSE_CONFORM_OPTIONS"

_lock = threading.Lock()


@dataclass(frozen=True)
class AdapterConfig:
    """What the harness tells an adapter about the scenario it runs."""

    url: str
    describe: bool
    scenario: str
    listen: list[str]
    base_url: str
    collection: str
    options: dict[str, Any]


def config(argv: list[str] | None = None) -> AdapterConfig:
    """Read ``URL`` from argv and the scenario from the environment."""
    args = sys.argv[1:] if argv is None else argv
    env = os.environ
    return AdapterConfig(
        url=args[0] if args else "",
        describe=env.get(ENV_DESCRIBE) == "1",
        scenario=env.get(ENV_SCENARIO, ""),
        listen=[t for t in env.get(ENV_LISTEN, "message").split(",") if t],
        base_url=env.get(ENV_BASE_URL, ""),
        collection=env.get(ENV_COLLECTION, "things"),
        options=json.loads(env.get(ENV_OPTIONS) or "{}"),
    )


def emit(kind: str, **fields: Any) -> None:
    """Print one JSON line and flush (thread-safe)."""
    line = json.dumps({"kind": kind, **fields}, ensure_ascii=False)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def hello(client: str, version: str, profile: str, features: list[str]) -> None:
    """The first line of every run; also starts the orphan watchdog."""
    watch_parent()
    emit("hello", client=client, version=version, profile=profile, features=features)


def watch_parent(interval: float = 1.0) -> None:
    """Exit when the harness that started us is gone (it normally kills us; a killed harness
    must not leave adapters, and the browsers they run, behind)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="orphan-watchdog").start()
