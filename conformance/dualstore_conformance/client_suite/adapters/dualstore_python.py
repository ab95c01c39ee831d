# SPDX-License-Identifier: GPL-3.0-or-later
"""Adapter for ``dualstore_client`` (sync by default, ``--async`` for AsyncDualStoreClient)."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib import metadata
from typing import Any

from dualstore_client import AsyncDualStoreClient, DualStoreClient
from dualstore_client.errors import DualStoreError
from dualstore_client.models import InsertEvent, StreamEvent

from dualstore_conformance.client_suite.adapters import protocol


def _report(event: StreamEvent, listen: list[str]) -> None:
    kind = "insert" if isinstance(event, InsertEvent) else "heartbeat"
    if kind not in listen:
        return
    if isinstance(event, InsertEvent):
        doc: dict[str, Any] = {"id": event.doc.id, "text": event.doc.text,
                               "timestamp": event.doc.timestamp.isoformat()}
        protocol.emit("event", type="insert", data=json.dumps(doc), doc_id=event.doc.id,
                      last_event_id=event.id)
    else:
        protocol.emit("event", type="heartbeat", data=json.dumps({"t": event.t}))


def _stream_args(cfg: protocol.AdapterConfig) -> dict[str, Any]:
    options = cfg.options
    return {"since": options.get("since"), "filter": options.get("filter"),
            "last_event_id": options.get("last_event_id")}


def run_sync(cfg: protocol.AdapterConfig) -> None:
    """Stream with DualStoreClient until killed, the stream ends, or the client gives up."""
    try:
        with DualStoreClient(cfg.base_url, token=cfg.options.get("token")) as client:
            for event in client.stream(cfg.collection, **_stream_args(cfg)):
                _report(event, cfg.listen)
        protocol.emit("closed", reason="iteration ended")
    except DualStoreError as error:
        protocol.emit("error", message=f"{type(error).__name__}: {error}")
        protocol.emit("closed", reason="raised")


async def run_async(cfg: protocol.AdapterConfig) -> None:
    """The same with AsyncDualStoreClient."""
    try:
        async with AsyncDualStoreClient(cfg.base_url, token=cfg.options.get("token")) as client:
            async for event in client.stream(cfg.collection, **_stream_args(cfg)):
                _report(event, cfg.listen)
        protocol.emit("closed", reason="iteration ended")
    except DualStoreError as error:
        protocol.emit("error", message=f"{type(error).__name__}: {error}")
        protocol.emit("closed", reason="raised")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    use_async = "--async" in args
    cfg = protocol.config([a for a in args if a != "--async"])
    try:
        version = metadata.version("dualstore-http")
    except metadata.PackageNotFoundError:
        version = "unknown"
    name = "dualstore_client (async)" if use_async else "dualstore_client (sync)"
    protocol.hello(name, version, "dualstore", ["reconnect"])
    if cfg.describe:
        return 0
    if use_async:
        asyncio.run(run_async(cfg))
    else:
        run_sync(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
