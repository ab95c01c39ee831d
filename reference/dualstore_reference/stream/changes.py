# SPDX-License-Identifier: GPL-3.0-or-later
"""One change stream per worker for every configured collection; hands inserts to the tailers.

A change stream per collection multiplies the database's work by the number of
collections: every cursor waits in its own ``getMore``, and a server may answer each of
them after any write. One database-level stream, filtered to inserts into the configured
collections, does the same job with one cursor and one pooled connection. It is only a
wake-up: the tailers' reads in ``_seq`` order stay the authority, and they poll when the
server has no change streams (a standalone server) or the stream fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from dualstore_reference.stream.tailer import CollectionTailer, short_error

Document = dict[str, Any]

log = logging.getLogger(__name__)


class ChangeFeed:
    """Watches the database's inserts into the tailers' collections and calls each tailer's
    ``changed`` with the full document."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        tailers: Mapping[str, CollectionTailer],
        *,
        max_await_ms: int = 1000,
        unavailable_retry_seconds: float = 60.0,
    ) -> None:
        self.database = database
        self.tailers = dict(tailers)
        self.max_await_ms = max_await_ms
        self.unavailable_retry_seconds = unavailable_retry_seconds
        self.changes = 0
        """How many insert events the feed handed to a tailer (for tests and benchmarks)."""
        self._task: asyncio.Task[None] | None = None

    def _pipeline(self) -> list[Document]:
        return [
            {
                "$match": {
                    "operationType": "insert",
                    "ns.coll": {"$in": sorted(self.tailers)},
                }
            }
        ]

    def _set_active(self, active: bool) -> None:
        for tailer in self.tailers.values():
            tailer.change_stream_active = active
            if not active:
                tailer.wake()  # a poll now: inserts during the outage were not reported

    async def start(self) -> None:
        """Start watching (a no-op without tailers)."""
        if self.tailers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="change-feed")

    async def stop(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._set_active(False)

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                async with await self.database.watch(
                    self._pipeline(), max_await_time_ms=self.max_await_ms
                ) as stream:
                    self._set_active(True)
                    backoff = 1.0
                    async for change in stream:
                        namespace = change.get("ns") or {}
                        tailer = self.tailers.get(namespace.get("coll", ""))
                        if tailer is not None:
                            self.changes += 1
                            tailer.changed(change.get("fullDocument") or {})
            except asyncio.CancelledError:
                raise
            except OperationFailure as error:
                # Standalone servers have no change streams: the tailers poll; ask again rarely.
                self._set_active(False)
                log.info("change stream unavailable (%s): polling", error.code)
                await asyncio.sleep(self.unavailable_retry_seconds)
            except PyMongoError as error:
                self._set_active(False)
                log.warning("change stream failed: %s", short_error(error))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                self._set_active(False)
