# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-IP stream slot leases on the real database: cap, release, renewal, takeover."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from dualstore_reference.launcher import RunningReference
from dualstore_reference.security.stream_slots import OWNERS_COLLECTION, StreamSlots
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

Document = dict[str, Any]


@contextlib.asynccontextmanager
async def fresh_database(uri: str, **options: Any) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of its own on the test server, through a client closed afterwards."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri, **options)
    try:
        yield client[f"slots_{uuid.uuid4().hex[:10]}"]
    finally:
        await client.close()


def test_leases_cap_release_renewal_and_takeover_from_a_dead_owner(mongodb_uri: str) -> None:
    async def main() -> None:
        async with fresh_database(mongodb_uri) as database:
            collection, owners = database["slots"], database[OWNERS_COLLECTION]
            worker_a = StreamSlots(collection, cap=3, lease_seconds=30)
            worker_b = StreamSlots(collection, cap=3, lease_seconds=30)
            held = [await worker_a.acquire("10.0.0.1"), await worker_b.acquire("10.0.0.1"),
                    await worker_a.acquire("10.0.0.1")]
            assert all(held) and len({s.slot_id for s in held if s}) == 3
            assert await worker_b.acquire("10.0.0.1") is None  # the cap counts all workers
            assert worker_b.takeovers == 0  # a live owner's lease is never taken over
            assert await worker_b.acquire("10.0.0.2") is not None  # per IP
            assert held[1] is not None
            await worker_b.release(held[1])
            assert await worker_a.acquire("10.0.0.1") is not None
            assert await worker_a.count("10.0.0.1") == 3

            # Renewal extends this worker's liveness record and writes no lease.
            leases_before = [d async for d in collection.find({})]
            record_before = await owners.find_one({"_id": worker_a.owner})
            assert record_before is not None
            await asyncio.sleep(0.05)
            await worker_a.renew()
            record_after = await owners.find_one({"_id": worker_a.owner})
            assert record_after is not None
            assert record_after["expires_at"] > record_before["expires_at"]
            assert [d async for d in collection.find({})] == leases_before

            # A worker that died leaves leases whose owner's record expires: they are
            # taken over, and then count for the new owner.
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await owners.update_one({"_id": worker_a.owner}, {"$set": {"expires_at": past}})
            assert await worker_b.count("10.0.0.1") == 0
            worker_c = StreamSlots(collection, cap=3)
            taken = [await worker_c.acquire("10.0.0.1") for _ in range(3)]
            assert all(taken) and worker_c.takeovers == 3
            assert await worker_c.acquire("10.0.0.1") is None
            # The dead worker's late release must not free a lease someone else now holds.
            for slot_id in list(worker_a.held):
                await collection.delete_one({"_id": slot_id, "owner": worker_a.owner})
            assert await worker_c.count("10.0.0.1") == 3

    asyncio.run(main())


def test_a_lease_without_a_liveness_record_is_taken_over(mongodb_uri: str) -> None:
    # A lease left by an older build (it renewed the lease itself) or by an owner whose
    # record is gone has no live owner: once every slot is held, it is the one taken.
    async def main() -> None:
        async with fresh_database(mongodb_uri) as database:
            collection = database["slots"]
            live = StreamSlots(collection, cap=2)
            first = await live.acquire("10.0.0.9")
            assert first is not None
            orphaned = f"10.0.0.9#{1 - int(first.slot_id.rsplit('#', 1)[1])}"
            future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
            await collection.insert_one({"_id": orphaned, "owner": "old-build", "ip": "10.0.0.9",
                                         "expires_at": future, "host": "h", "pid": 1})
            newcomer = StreamSlots(collection, cap=2)
            taken = await newcomer.acquire("10.0.0.9")
            assert taken is not None and taken.slot_id == orphaned
            stored = await collection.find_one({"_id": orphaned})
            assert stored is not None and stored["owner"] == newcomer.owner
            assert "expires_at" not in stored
            assert await newcomer.acquire("10.0.0.9") is None  # first's owner is alive

    asyncio.run(main())


def test_a_worker_that_cannot_write_its_liveness_record_takes_no_slot(mongodb_uri: str) -> None:
    # Fail closed: a lease stored for an owner without a record would look dead to every
    # other worker, and be taken over while its stream is still open (cap exceeded).
    async def main() -> None:
        unreachable = fresh_database(
            "mongodb://127.0.0.1:9/?directConnection=true", serverSelectionTimeoutMS=200
        )
        async with fresh_database(mongodb_uri) as database, unreachable as elsewhere:
            collection = database["slots"]
            worker = StreamSlots(collection, cap=3, owners=elsewhere[OWNERS_COLLECTION])
            worker.operation_timeout = 1.0
            with pytest.raises(PyMongoError):
                await worker.acquire("10.0.0.4")
            assert await collection.count_documents({}) == 0 and not worker.held

    asyncio.run(main())


def test_renewal_is_one_write_however_many_leases(mongodb_uri: str, command_log: Any) -> None:
    async def main() -> None:
        async with fresh_database(mongodb_uri, event_listeners=[command_log]) as database:
            worker = StreamSlots(database["slots"], cap=50)
            for _ in range(40):
                assert await worker.acquire("10.0.0.3") is not None
            command_log.clear()
            await worker.renew()
            # One update of its liveness record, and one index count of its leases (that
            # finds no orphan, so nothing is listed or deleted): 40 leases, 0 lease writes.
            sent = [(name, target) for name, target, _ in command_log.commands]
            assert sent == [("update", OWNERS_COLLECTION), ("aggregate", "slots")]

    asyncio.run(main())


def test_renewal_by_owner_deletes_orphans_and_is_indexed(mongodb_uri: str) -> None:
    # A lease of this owner that no stream holds (a release whose delete failed, an acquire
    # that timed out after the server applied it) would live as long as its owner: the
    # renewal counts the owner's leases and deletes such orphans.
    async def main() -> None:
        async with fresh_database(mongodb_uri) as database:
            collection = database["slots"]
            worker = StreamSlots(collection, cap=3, lease_seconds=30, renew_seconds=3600)
            other = StreamSlots(collection, cap=3, lease_seconds=30)
            await worker.start()
            try:
                indexes = {tuple(spec["key"]) async for spec in await collection.list_indexes()}
                assert ("owner",) in indexes and ("host", "pid") in indexes
                kept = await worker.acquire("10.0.0.1")
                lost = await worker.acquire("10.0.0.1")
                foreign = await other.acquire("10.0.0.1")
                assert kept and lost and foreign
                worker.held.discard(lost.slot_id)  # as if its release's delete had failed
                await worker.renew()
                left = {d["_id"]: d["owner"] async for d in collection.find({})}
                assert left == {kept.slot_id: worker.owner, foreign.slot_id: other.owner}
                assert worker.orphans_deleted == 1
                assert await other.acquire("10.0.0.1") is not None  # the orphan's slot is free
            finally:
                await worker.stop()

    asyncio.run(main())


def _open_stream(url: str, token: str) -> tuple[socket.socket, int]:
    """A raw stream connection kept open: (socket, pid of the worker serving it); pid 0
    when the stream was refused (429)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        b"GET /v1/agent_tasks/stream HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
        + token.encode() + b"\r\nAccept: text/event-stream\r\n\r\n"
    )  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "connection closed before the response head"
        head += chunk
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        sock.close()
        assert status == 429, head
        return sock, 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"x-dualstore-worker:"):
            return sock, int(line.split(b":", 1)[1])
    raise AssertionError(f"no worker header: {head!r}")


def test_slots_of_a_worker_killed_with_sigkill_are_free_within_two_seconds(
    start_reference: Callable[..., RunningReference], reference_headers: dict[str, str]
) -> None:
    # Before: the leases of a killed worker stayed taken for their whole lease (~31 s).
    cap = 6
    server = start_reference(env={"STREAM_CAP_PER_IP": str(cap)}, workers=2)
    token = reference_headers["Authorization"].split()[1]
    streams = [_open_stream(server.url, token) for _ in range(cap)]
    assert all(pid for _, pid in streams)
    assert _open_stream(server.url, token)[1] == 0  # the cap holds across workers
    victim = streams[0][1]
    killed = [sock for sock, pid in streams if pid == victim]
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    for sock in killed:
        sock.close()
    reopened: list[socket.socket] = []
    while len(reopened) < len(killed) and time.monotonic() - started < 10:
        sock, pid = _open_stream(server.url, token)
        if pid:
            reopened.append(sock)
        else:
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    for sock in reopened + [sock for sock, pid in streams if pid != victim]:
        sock.close()
    assert len(reopened) == len(killed), f"only {len(reopened)}/{len(killed)} slots came back"
    assert elapsed <= 2.0, f"slots of the killed worker came back after {elapsed:.1f} s"
    print(f"{len(killed)} slot(s) of the killed worker free again after {elapsed:.2f} s")
