# SPDX-License-Identifier: GPL-3.0-or-later
"""Group commit of inserts against the real database: unique contiguous numbers, fencing
and duplicate keys handled per document."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from dualstore_reference.launcher import with_database
from dualstore_reference.store import idempotency, sequence
from dualstore_reference.store.batching import InsertBatcher
from dualstore_reference.store.documents import CollectionStore
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_inserts_share_batches_and_get_unique_contiguous_numbers(
    mongodb_uri: str,
) -> None:
    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            with_database(mongodb_uri, f"batch_{uuid.uuid4().hex[:8]}")
        )
        store = CollectionStore(client.get_default_database(), "things")
        await store.ensure_indexes()
        seqs = await asyncio.gather(
            *(store.batcher.insert({"_id": f"d{i}", "text": str(i)}) for i in range(200))
        )
        assert sorted(seqs) == list(range(1, 201))
        assert store.batcher.batches < 200  # documents really shared round trips
        stored = {d["_id"]: d["_seq"] async for d in store.documents.find({})}
        assert stored == {f"d{i}": seq for i, seq in enumerate(seqs)}
        await client.close()

    _run(scenario())


def test_fenced_numbers_are_retried_and_duplicates_released(mongodb_uri: str) -> None:
    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            with_database(mongodb_uri, f"batch_{uuid.uuid4().hex[:8]}")
        )
        store = CollectionStore(client.get_default_database(), "things")
        await store.ensure_indexes()
        await store.documents.insert_one({"_id": "taken", "text": "x", "_seq": 100})
        await sequence.fence(store.documents, 2)  # a reader fenced number 2 ahead of time
        await store.counters.update_one({"_id": "things"}, {"$set": {"seq": 0}}, upsert=True)
        batcher = InsertBatcher(store.documents, store.counters)
        results = await asyncio.gather(
            *(batcher.insert({"_id": name, "text": name}) for name in ("a", "b", "taken", "c")),
            return_exceptions=True,
        )
        assert isinstance(results[2], DuplicateKeyError)
        good = [r for r in results if isinstance(r, int)]
        assert len(good) == 3 and len(set(good)) == 3 and 2 not in good
        tombstones = {
            d["_seq"] async for d in store.documents.find({sequence.TOMBSTONE_FIELD: True})
        }
        assert 2 in tombstones  # the fence stands
        live = {d["_id"] async for d in store.documents.find(sequence.LIVE_DOCUMENTS)}
        assert live == {"a", "b", "c", "taken"}
        # every allocated number is accounted for: a document or a tombstone
        head = await sequence.head(store.counters, "things")
        numbers = {d["_seq"] async for d in store.documents.find({"_seq": {"$lte": head}})}
        assert numbers == set(range(1, head + 1))
        await client.close()

    _run(scenario())


def test_idempotent_inserts_racing_in_one_batch_create_one_document(mongodb_uri: str) -> None:
    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            with_database(mongodb_uri, f"batch_{uuid.uuid4().hex[:8]}")
        )
        store = CollectionStore(client.get_default_database(), "things")
        await store.ensure_indexes()
        body = {"text": "same"}
        results = await asyncio.gather(*(store.insert(body, "key-1") for _ in range(10)))
        assert len({r.id for r in results}) == 1
        assert sum(r.created for r in results) == 1
        assert await store.documents.count_documents({"_idem.key": "key-1"}) == 1
        with pytest.raises(idempotency.KeyReuse):
            await store.insert({"text": "other"}, "key-1")
        await client.close()

    _run(scenario())
