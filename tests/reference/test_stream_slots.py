# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-IP stream slot leases on the real database: cap, release, renewal, takeover."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from dualstore_reference.security.stream_slots import StreamSlots
from pymongo import AsyncMongoClient

Document = dict[str, Any]


def test_leases_cap_release_renew_and_takeover(mongodb_uri: str) -> None:
    async def main() -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri)
        try:
            collection = client[f"slots_{uuid.uuid4().hex[:10]}"]["slots"]
            worker_a = StreamSlots(collection, cap=3, lease_seconds=30)
            worker_b = StreamSlots(collection, cap=3, lease_seconds=30)
            held = [await worker_a.acquire("10.0.0.1"), await worker_b.acquire("10.0.0.1"),
                    await worker_a.acquire("10.0.0.1")]
            assert all(held) and len({s.slot_id for s in held if s}) == 3
            assert await worker_b.acquire("10.0.0.1") is None  # the cap counts all workers
            assert await worker_b.acquire("10.0.0.2") is not None  # per IP
            assert held[1] is not None
            await worker_b.release(held[1])
            assert await worker_a.acquire("10.0.0.1") is not None
            assert await worker_a.count("10.0.0.1") == 3

            # Renewal: one update extends every lease this worker holds, and only those.
            before = {d["_id"]: d["expires_at"] async for d in collection.find({})}
            await asyncio.sleep(0.05)
            await worker_a.renew()
            after = {d["_id"]: d["expires_at"] async for d in collection.find({})}
            assert {k for k in after if after[k] > before[k]} == worker_a.held

            # A worker that died leaves leases that expire; they are taken over.
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await collection.update_many({"owner": worker_a.owner}, {"$set": {"expires_at": past}})
            worker_c = StreamSlots(collection, cap=3)
            taken = [await worker_c.acquire("10.0.0.1") for _ in range(3)]
            assert all(taken)
            assert await worker_c.acquire("10.0.0.1") is None
            # The dead worker's late release must not free a lease someone else now holds.
            for slot_id in list(worker_a.held):
                await collection.delete_one({"_id": slot_id, "owner": worker_a.owner})
            assert await worker_c.count("10.0.0.1") == 3
        finally:
            await client.close()

    asyncio.run(main())
