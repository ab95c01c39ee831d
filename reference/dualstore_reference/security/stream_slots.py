# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-IP concurrent stream cap shared by all workers and instances: slot leases in MongoDB.

A stream holds one lease document ``{_id: "<ip>#<k>", owner, expires_at}`` with k < cap.
Acquire upserts a free k (a DuplicateKeyError means a live stream holds it: try the next;
an expired lease, left by a worker that died, is taken over). Release deletes it.
Each worker renews all of its leases with ONE ``update_many`` per interval, so the
database load does not grow with the number of streams.

A lease also names the host and process id that hold it: when a worker dies without
releasing (kill -9, out of memory), the gunicorn master deletes that process's leases as
soon as it reaps it (:func:`release_process`, from ``gunicorn_conf.child_exit``), so its
slots are free again within the spec's release bound instead of after the lease time.
Only a crash of the whole host is left to the lease expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

SLOTS_COLLECTION = "dualstore_stream_slots"
HOST = socket.gethostname()
RELEASE_TIMEOUT_MS = 1500
"""Bound on the master's release of a dead worker's leases (it blocks the master loop)."""
Document = dict[str, Any]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    """A held lease."""

    slot_id: str
    ip: str


class StreamSlots:
    """Acquire, renew and release per-IP stream slot leases."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        cap: int = 10,
        lease_seconds: float = 30.0,
        renew_seconds: float = 10.0,
    ) -> None:
        self.collection = collection
        self.cap = cap
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.operation_timeout = 5.0
        """Bound on acquiring a slot (the app sets DATABASE_TIMEOUT_SECONDS)."""
        self.owner = uuid.uuid4().hex
        """This worker's identity on its leases."""
        self.held: set[str] = set()
        self.renewals = 0
        self._task: asyncio.Task[None] | None = None
        self._pending_release: set[asyncio.Task[None]] = set()

    def _expiry(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.lease_seconds)

    async def acquire(self, ip: str) -> Slot | None:
        """Take a free slot for ip; None when all ``cap`` slots are held.

        Probing starts at a random k, so that taking a slot costs about one round trip
        while few are held (not k round trips for the k-th stream). Each probe is one
        upsert that either creates the lease, takes over an expired one, or fails with
        DuplicateKeyError because the slot is live.
        """
        with pymongo.timeout(self.operation_timeout):  # a frozen database: 503, not a hang
            return await self._acquire(ip)

    async def _acquire(self, ip: str) -> Slot | None:
        now = dt.datetime.now(dt.UTC)
        start = random.randrange(self.cap)
        for step in range(self.cap):
            slot_id = f"{ip}#{(start + step) % self.cap}"
            lease = {
                "owner": self.owner,
                "ip": ip,
                "expires_at": self._expiry(),
                "host": HOST,
                "pid": os.getpid(),
            }
            try:
                result = await self.collection.update_one(
                    {"_id": slot_id, "expires_at": {"$lt": now}}, {"$set": lease}, upsert=True
                )
            except DuplicateKeyError:
                continue  # held by a live stream
            if result.upserted_id is None:
                log.info("took over expired stream slot %s", slot_id)
            self.held.add(slot_id)
            return Slot(slot_id, ip)
        return None

    async def release(self, slot: Slot) -> None:
        """Give the slot back (only if this worker still owns it)."""
        self.held.discard(slot.slot_id)
        await self.collection.delete_one({"_id": slot.slot_id, "owner": self.owner})

    def release_soon(self, slot: Slot) -> None:
        """Release from a context that cannot await (a cancelled request): in a task."""
        self.held.discard(slot.slot_id)

        async def run() -> None:
            for attempt in range(5):
                try:
                    await self.collection.delete_one({"_id": slot.slot_id, "owner": self.owner})
                    return
                except PyMongoError:
                    await asyncio.sleep(0.5 * (attempt + 1))

        task = asyncio.get_running_loop().create_task(run())
        self._pending_release.add(task)
        task.add_done_callback(self._pending_release.discard)

    async def count(self, ip: str) -> int:
        """How many unexpired leases ip holds (all workers)."""
        now = dt.datetime.now(dt.UTC)
        return await self.collection.count_documents({"ip": ip, "expires_at": {"$gte": now}})

    async def renew(self) -> None:
        """Extend every lease this worker holds: one batched update."""
        self.renewals += 1
        await self.collection.update_many(
            {"_id": {"$in": sorted(self.held)}, "owner": self.owner},
            {"$set": {"expires_at": self._expiry()}},
        )

    async def start(self) -> None:
        """Start the renewal loop."""
        self._task = asyncio.create_task(self._renew_loop(), name="stream-slot-renewal")

    async def stop(self) -> None:
        """Stop renewing and give back every lease this worker holds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(PyMongoError):
            await self.collection.delete_many({"owner": self.owner})
        self.held.clear()

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            if not self.held:
                continue
            try:
                await self.renew()
            except PyMongoError as error:
                log.warning("stream slot renewal failed: %s", error)


def release_process(uri: str, database: str, pid: int, host: str = HOST) -> int:
    """Delete every lease held by process pid on host (it died); how many were deleted.

    Synchronous and bounded (RELEASE_TIMEOUT_MS): it runs in the gunicorn master, which
    has no event loop. Errors are logged, never raised (the lease expiry still applies).
    """
    client: MongoClient[Document] = MongoClient(
        uri, timeoutMS=RELEASE_TIMEOUT_MS, appname="dualstore-reference-master"
    )
    try:
        slots = client.get_default_database(database)[SLOTS_COLLECTION]
        deleted = slots.delete_many({"host": host, "pid": pid}).deleted_count
    except PyMongoError as error:
        log.warning("could not release the stream slots of process %d: %s", pid, error)
        return 0
    finally:
        client.close()
    if deleted:
        log.info("released %d stream slot(s) of exited worker %d", deleted, pid)
    return deleted
