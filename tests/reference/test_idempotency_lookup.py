# SPDX-License-Identifier: GPL-3.0-or-later
"""Idempotency keys are looked up by ``_id`` (every server's primary index), never by a scan."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from dualstore_reference.store import idempotency
from dualstore_reference.store.documents import Store
from pymongo import AsyncMongoClient

Document = dict[str, Any]


def test_keyed_inserts_and_replays_read_only_by_id(mongodb_uri: str, command_log: Any) -> None:
    # Before: find_one({"_idem.key": key}), which the embedded server answered by scanning
    # the collection (keyed POSTs slowed from 79/s to 6.7/s as it grew to 6,700 documents).
    async def main() -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            mongodb_uri, event_listeners=[command_log], tz_aware=True
        )
        try:
            store = Store(client[f"idem_{uuid.uuid4().hex[:10]}"], ("notes",))
            await store.ensure_indexes()
            notes = store["notes"]
            command_log.clear()
            first = await notes.insert({"text": "a"}, "key-1")
            again = await notes.insert({"text": "a"}, "key-1")
            racing = await asyncio.gather(*(notes.insert({"text": "b"}, "key-2") for _ in range(5)))
            assert first.created and not again.created and again.id == first.id
            assert first.id == idempotency.document_id("notes", "key-1")
            assert sum(result.created for result in racing) == 1
            assert len({result.id for result in racing}) == 1
            assert command_log.filters(), "no lookup observed"
            for query in command_log.filters():
                if set(query) == {"_seq"}:  # the batcher's head read: an index range
                    assert set(query["_seq"]) == {"$gt"}, f"head read by {query}"
                    continue
                assert set(query) == {"_id"}, f"a keyed insert read by {query}"
        finally:
            await client.close()

    asyncio.run(main())


def test_the_earlier_key_index_is_dropped(mongodb_uri: str) -> None:
    # The partial unique index on _idem.key made every insert slower as the collection grew
    # (bench_idempotency: 104 vs 309 inserts/s at 20,000 documents with and without it).
    async def main() -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
        try:
            store = Store(client[f"idem_{uuid.uuid4().hex[:10]}"], ("notes",))
            await store["notes"].documents.create_index(
                "_idem.key",
                unique=True,
                name=idempotency.LEGACY_INDEX,
                partialFilterExpression={"_idem.key": {"$exists": True}},
            )
            await store.ensure_indexes()
            await store.ensure_indexes()  # idempotent: nothing left to drop
            names = [index["name"] async for index in await store["notes"].documents.list_indexes()]
            assert idempotency.LEGACY_INDEX not in names and "recent_order" in names
        finally:
            await client.close()

    asyncio.run(main())


def test_the_same_body_is_the_same_json_value() -> None:
    # WRITE-013: numbers compare by value, member order and spelling do not matter.
    same = [
        {"text": "a", "metadata": {"n": 1, "m": [0, 2]}},
        {"metadata": {"m": [-0.0, 2.0], "n": 1e0}, "text": "a"},
        {"text": "a", "metadata": {"m": [0, 2], "n": 1.0}},
    ]
    assert len({idempotency.digest(body) for body in same}) == 1
    assert idempotency.digest({"text": "a", "metadata": {"n": 1.5}}) != idempotency.digest(
        {"text": "a", "metadata": {"n": 1}}
    )
    assert idempotency.digest({"text": "a", "metadata": {"n": True}}) != idempotency.digest(
        {"text": "a", "metadata": {"n": 1}}
    )
