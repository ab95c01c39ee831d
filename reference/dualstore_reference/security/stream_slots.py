# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-IP concurrent stream cap shared by all workers and instances: slot leases in MongoDB.

A stream holds one lease document ``{_id: "<ip>#<k>", owner, expires_at}`` with k < cap.
Acquire upserts a free k (a DuplicateKeyError means a live stream holds it: try the next;
an expired lease, left by a worker that died, is taken over). Release deletes it.
Each worker renews all of its leases with ONE ``update_many({owner: <this worker>})`` per
interval, on an index on ``owner``: a renewal costs O(leases of this worker) on any
MongoDB-compatible server (matching every held id with ``$in`` was quadratic on a server
that evaluates ``$in`` document by document). A lease of this owner that no stream holds
(a release whose delete failed, an acquire that timed out after the server applied it)
would be renewed with the others: when the renewal matches a different number of leases
than the worker holds, it lists its own leases (same index) and deletes those orphans.

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
from collections import Counter
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
        self._acquiring: Counter[str] = Counter()
        """Slots whose acquiring upsert is in flight (not orphans yet), with how many."""
        self.renewals = 0
        self.orphans_deleted = 0
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
            self._acquiring[slot_id] += 1
            try:
                taken = await self._take(slot_id, ip, now)
            finally:
                self._acquiring -= Counter({slot_id: 1})
            if taken:
                return Slot(slot_id, ip)
        return None

    async def _take(self, slot_id: str, ip: str, now: dt.datetime) -> bool:
        """One probe: create the lease, take over an expired one, or False (live)."""
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
            return False  # held by a live stream
        if result.upserted_id is None:
            log.info("took over expired stream slot %s", slot_id)
        self.held.add(slot_id)
        return True

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
        """Extend every lease this worker holds: one update by owner; then drop orphans."""
        self.renewals += 1
        result = await self.collection.update_many(
            {"owner": self.owner}, {"$set": {"expires_at": self._expiry()}}
        )
        if result.matched_count != len(self.held):
            await self._delete_orphans()

    async def _delete_orphans(self) -> None:
        """Delete this owner's leases that no stream holds and no acquire is taking."""
        cursor = self.collection.find({"owner": self.owner}, {"_id": 1})
        own = {document["_id"] async for document in cursor}
        orphans = sorted(own - self.held - set(self._acquiring))
        if orphans:
            deleted = await self.collection.delete_many(
                {"_id": {"$in": orphans}, "owner": self.owner}
            )
            self.orphans_deleted += deleted.deleted_count
            log.info("deleted %d orphaned stream slot lease(s)", deleted.deleted_count)

    async def ensure_indexes(self) -> None:
        """Index the renewal (owner) and the master's release of a dead worker (host, pid)."""
        await self.collection.create_index("owner", name="owner")
        await self.collection.create_index([("host", 1), ("pid", 1)], name="host_pid")

    async def start(self) -> None:
        """Create the indexes and start the renewal loop."""
        try:
            await self.ensure_indexes()
        except PyMongoError as error:  # leases still work unindexed, only slower
            log.warning("could not index the stream slot leases: %s", error)
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
