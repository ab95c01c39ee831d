# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-IP concurrent stream cap shared by all workers and instances: slot leases in MongoDB.

A stream holds one lease document ``{_id: "<ip>#<k>", owner, ip, host, pid}`` with
k < cap. A lease lives as long as its owner: each worker keeps ONE liveness record
``{_id: <owner>, expires_at, host, pid}`` in ``dualstore_stream_owners`` and renews it
every ``renew_seconds`` with one update, however many streams it holds (renewing every
lease cost one document write per stream per interval: 10,000 writes every 10 s at
10,000 streams). Acquire inserts the lease for a free k (a DuplicateKeyError means the
slot is held: try the next). When every slot of the IP is held, it reads the holders'
liveness records and takes over a lease whose owner's record has expired or is gone (a
worker that died, or a lease left by an older build), with an update conditioned on that
owner. Release deletes the lease. A worker writes its own record before its first lease
and again before it runs out, so a lease is never stored for an owner that others would
judge dead (fail closed: a worker that cannot renew takes no slot).

A lease of a live owner that no stream holds (a release whose delete failed, an acquire
that timed out after the server applied it) would live as long as its owner: at each
renewal the worker counts its leases (an index count on ``owner``) and, when the count
differs from what it holds, lists them and deletes those orphans.

A lease and a liveness record also name the host and process id that hold them: when a
worker dies without releasing (kill -9, out of memory), the gunicorn master deletes that
process's leases and record as soon as it reaps it (:func:`release_process`, from
``gunicorn_conf.child_exit``), so its slots are free again within the spec's release bound
instead of after the lease time. Only a crash of the whole host is left to the lease
expiry.
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
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

SLOTS_COLLECTION = "dualstore_stream_slots"
OWNERS_COLLECTION = "dualstore_stream_owners"
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
    """Acquire and release per-IP stream slot leases; keep this worker's liveness record."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        cap: int = 10,
        lease_seconds: float = 30.0,
        renew_seconds: float = 10.0,
        owners: AsyncCollection[Document] | None = None,
    ) -> None:
        self.collection = collection
        self.owners = owners if owners is not None else collection.database[OWNERS_COLLECTION]
        """The liveness records, one per worker (default: beside the leases)."""
        self.cap = cap
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.operation_timeout = 5.0
        """Bound on acquiring a slot (the app sets DATABASE_TIMEOUT_SECONDS)."""
        self.owner = uuid.uuid4().hex
        """This worker's identity on its leases and its liveness record."""
        self.held: set[str] = set()
        self._acquiring: Counter[str] = Counter()
        """Slots whose acquiring insert is in flight (not orphans yet), with how many."""
        self._alive_until: dt.datetime | None = None
        """The expiry of this worker's liveness record as last written (None: not yet)."""
        self.renewals = 0
        self.orphans_deleted = 0
        self.takeovers = 0
        """Leases taken over from owners whose liveness record had expired."""
        self._task: asyncio.Task[None] | None = None
        self._pending_release: set[asyncio.Task[None]] = set()

    def _expiry(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.lease_seconds)

    async def acquire(self, ip: str) -> Slot | None:
        """Take a free slot for ip; None when all ``cap`` slots are held by live owners.

        Probing starts at a random k, so that taking a slot costs about one round trip
        while few are held (not k round trips for the k-th stream). Each probe is one
        insert that either creates the lease or fails with DuplicateKeyError because the
        slot is held. Only when every slot is held are the holders' liveness records read,
        to take over a lease of a dead owner.
        """
        with pymongo.timeout(self.operation_timeout):  # a frozen database: 503, not a hang
            await self._keep_alive()
            return await self._acquire(ip)

    def _slot_ids(self, ip: str) -> list[str]:
        return [f"{ip}#{k}" for k in range(self.cap)]

    async def _acquire(self, ip: str) -> Slot | None:
        slot_ids = self._slot_ids(ip)
        start = random.randrange(self.cap)
        for step in range(self.cap):
            slot_id = slot_ids[(start + step) % self.cap]
            if await self._probe(slot_id, self._take(slot_id, ip)):
                return Slot(slot_id, ip)
        holders, alive = await self._holders(slot_ids)
        for slot_id, owner in sorted(holders.items()):
            if owner not in alive and await self._probe(
                slot_id, self._take_over(slot_id, ip, owner)
            ):
                return Slot(slot_id, ip)
        return None

    async def _probe(self, slot_id: str, attempt: Coroutine[Any, Any, bool]) -> bool:
        """Await one write that may take slot_id, marking it in flight (not an orphan)."""
        self._acquiring[slot_id] += 1
        try:
            taken = await attempt
        finally:
            self._acquiring -= Counter({slot_id: 1})
        if taken:
            self.held.add(slot_id)
        return taken

    def _lease(self, ip: str) -> Document:
        return {"owner": self.owner, "ip": ip, "host": HOST, "pid": os.getpid()}

    async def _take(self, slot_id: str, ip: str) -> bool:
        """One probe: create the lease, or False when the slot is held."""
        try:
            await self.collection.insert_one({"_id": slot_id, **self._lease(ip)})
        except DuplicateKeyError:
            return False
        return True

    async def _take_over(self, slot_id: str, ip: str, dead_owner: Any) -> bool:
        """Take a lease whose owner is dead; False when someone else took it first."""
        result = await self.collection.update_one(
            {"_id": slot_id, "owner": dead_owner},
            {"$set": self._lease(ip), "$unset": {"expires_at": ""}},
        )
        if result.modified_count:
            self.takeovers += 1
            log.info("took over stream slot %s of a dead owner", slot_id)
            return True
        return False

    async def _holders(self, slot_ids: list[str]) -> tuple[dict[str, Any], set[Any]]:
        """({slot id: owner} of the held slots among slot_ids, the owners among them that
        are alive: this worker, and those with an unexpired liveness record); two reads,
        by ``_id``."""
        holders = {
            lease["_id"]: lease.get("owner")
            async for lease in self.collection.find(
                {"_id": {"$in": slot_ids}}, {"owner": 1}
            )
        }
        others = sorted({str(owner) for owner in holders.values() if owner != self.owner})
        now = dt.datetime.now(dt.UTC)
        alive = {
            record["_id"]
            async for record in self.owners.find(
                {"_id": {"$in": others}, "expires_at": {"$gt": now}}, {"_id": 1}
            )
        }
        return holders, alive | {self.owner}

    async def _keep_alive(self) -> None:
        """Write this worker's liveness record when it has none, or when less than
        ``renew_seconds`` of it is left (the renewal loop has fallen behind)."""
        left = self._alive_until
        margin = dt.timedelta(seconds=self.renew_seconds)
        if left is None or left - dt.datetime.now(dt.UTC) < margin:
            await self._write_alive()

    async def _write_alive(self) -> None:
        expiry = self._expiry()
        await self.owners.update_one(
            {"_id": self.owner},
            {"$set": {"expires_at": expiry, "host": HOST, "pid": os.getpid()}},
            upsert=True,
        )
        self._alive_until = expiry

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
        """How many leases of live owners ip holds (all workers)."""
        holders, alive = await self._holders(self._slot_ids(ip))
        return sum(1 for owner in holders.values() if owner in alive)

    async def renew(self) -> None:
        """Extend this worker's liveness record (one update); then drop orphaned leases."""
        self.renewals += 1
        await self._write_alive()
        if await self.collection.count_documents({"owner": self.owner}) != len(self.held):
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
        """Index the orphan count (owner) and the master's release of a dead worker
        (host, pid) on the leases and on the liveness records."""
        await self.collection.create_index("owner", name="owner")
        await self.collection.create_index([("host", 1), ("pid", 1)], name="host_pid")
        await self.owners.create_index([("host", 1), ("pid", 1)], name="host_pid")

    async def start(self) -> None:
        """Create the indexes, write the liveness record and start renewing it."""
        try:
            await self.ensure_indexes()
        except PyMongoError as error:  # leases still work unindexed, only slower
            log.warning("could not index the stream slot leases: %s", error)
        try:
            await self._write_alive()
        except PyMongoError as error:  # acquire writes it first (and fails closed)
            log.warning("could not write this worker's stream liveness record: %s", error)
        self._task = asyncio.create_task(self._renew_loop(), name="stream-slot-renewal")

    async def stop(self) -> None:
        """Stop renewing, give back every lease this worker holds, drop its record."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(PyMongoError):
            await self.collection.delete_many({"owner": self.owner})
            await self.owners.delete_one({"_id": self.owner})
        self._alive_until = None
        self.held.clear()

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                await self.renew()
            except PyMongoError as error:
                log.warning("stream slot renewal failed: %s", error)


def release_process(uri: str, database: str, pid: int, host: str = HOST) -> int:
    """Delete every lease held by process pid on host (it died), and its liveness record;
    how many leases were deleted.

    Synchronous and bounded (RELEASE_TIMEOUT_MS): it runs in the gunicorn master, which
    has no event loop. Errors are logged, never raised (the lease expiry still applies).
    """
    client: MongoClient[Document] = MongoClient(
        uri, timeoutMS=RELEASE_TIMEOUT_MS, appname="dualstore-reference-master"
    )
    try:
        db = client.get_default_database(database)
        deleted = db[SLOTS_COLLECTION].delete_many({"host": host, "pid": pid}).deleted_count
        db[OWNERS_COLLECTION].delete_many({"host": host, "pid": pid})
    except PyMongoError as error:
        log.warning("could not release the stream slots of process %d: %s", pid, error)
        return 0
    finally:
        client.close()
    if deleted:
        log.info("released %d stream slot(s) of exited worker %d", deleted, pid)
    return deleted
