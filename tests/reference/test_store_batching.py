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


def test_taken_and_fenced_numbers_are_retried_and_duplicates_released(mongodb_uri: str) -> None:
    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            with_database(mongodb_uri, f"batch_{uuid.uuid4().hex[:8]}")
        )
        store = CollectionStore(client.get_default_database(), "things")
        await store.ensure_indexes()
        batcher = InsertBatcher(store.documents)
        assert await batcher.insert({"_id": "first", "text": "x"}) == 1
        # Another writer takes 2 and 3 (this batcher is not told), a reader fenced 5.
        for name in ("o2", "o3"):
            await sequence.insert_sequenced(store.documents, {"_id": name, "text": "o"})
        await sequence.fence(store.documents, 5)
        results = await asyncio.gather(
            *(batcher.insert({"_id": name, "text": name}) for name in ("a", "b", "first", "c")),
            return_exceptions=True,
        )
        # One batch numbered 2..5: a and b lost 2 and 3, "first" (a duplicate _id) released
        # 4 with a tombstone, c lost 5 to the fence; a, b and c were written again above.
        assert isinstance(results[2], DuplicateKeyError)
        assert results[0:2] + results[3:] == [6, 7, 8]
        assert batcher.conflicts == 3
        tombstones = {
            d["_seq"] async for d in store.documents.find({sequence.TOMBSTONE_FIELD: True})
        }
        assert tombstones == {4, 5}
        live = {d["_id"] async for d in store.documents.find(sequence.LIVE_DOCUMENTS)}
        assert live == {"first", "o2", "o3", "a", "b", "c"}
        # every number up to the head is accounted for: a document or a tombstone
        head = await sequence.head(store.documents)
        numbers = {d["_seq"] async for d in store.documents.find({"_seq": {"$lte": head}})}
        assert head == 8 and numbers == set(range(1, head + 1))
        await client.close()

    _run(scenario())


def test_an_insert_after_a_known_head_is_one_round_trip(mongodb_uri: str, command_log: Any) -> None:
    """No counter: the number after this batcher's last write, or after the stream's
    published head when another worker wrote since, is taken by the insert itself."""

    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            with_database(mongodb_uri, f"batch_{uuid.uuid4().hex[:8]}"),
            event_listeners=[command_log],
        )
        database = client.get_default_database()
        store = CollectionStore(database, "things")
        await store.ensure_indexes()
        published = 0
        batcher = InsertBatcher(store.documents, known_head=lambda: published)
        assert await batcher.insert({"_id": "a", "text": "a"}) == 1  # head read: unknown
        command_log.clear()
        assert await batcher.insert({"_id": "b", "text": "b"}) == 2
        assert command_log.names("things") == ["insert"]
        # Another worker wrote 3; this worker's stream published it (the hint says 3).
        await sequence.insert_sequenced(store.documents, {"_id": "other", "text": "o"})
        published = 3
        command_log.clear()
        assert await batcher.insert({"_id": "c", "text": "c"}) == 4
        assert command_log.names("things") == ["insert"]
        counters = await database.list_collection_names()
        assert sequence.COUNTERS_COLLECTION not in counters  # no counter is kept
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


def test_two_workers_racing_for_numbers_store_everything_once_without_holes(
    mongodb_uri: str,
) -> None:
    """Two batchers (as two workers) write the same collection at once, neither told of the
    other's writes: every document is stored once, and the numbers are 1..n with no hole."""

    async def scenario() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            with_database(mongodb_uri, f"batch_{uuid.uuid4().hex[:8]}")
        )
        store = CollectionStore(client.get_default_database(), "things")
        await store.ensure_indexes()
        workers = [InsertBatcher(store.documents), InsertBatcher(store.documents)]

        async def writer(w: int, i: int) -> int:
            await asyncio.sleep(0.001 * (i % 7))
            return await workers[w].insert({"_id": f"w{w}-{i}", "text": "t"})

        seqs = await asyncio.gather(*(writer(w, i) for w in (0, 1) for i in range(60)))
        assert len(set(seqs)) == 120
        stored = {d["_id"]: d["_seq"] async for d in store.documents.find({})}
        assert len(stored) == 120  # no tombstone: a number is only taken by a document
        assert sorted(stored.values()) == list(range(1, 121))
        assert stored == {f"w{w}-{i}": seq for (w, i), seq in
                          zip(((w, i) for w in (0, 1) for i in range(60)), seqs, strict=True)}
        assert sum(worker.conflicts for worker in workers) > 0  # they did race
        await client.close()

    _run(scenario())
