# SPDX-License-Identifier: GPL-3.0-or-later
"""The gap-aware tailer against a real database: order, no gaps, no repeats, fencing, polling."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.store import sequence
from dualstore_reference.stream.changes import ChangeFeed
from dualstore_reference.stream.hub import Hub
from dualstore_reference.stream.tailer import CollectionTailer
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]


def run(uri: str, body: Callable[[Any], Awaitable[None]]) -> None:
    """Run body(database) with a fresh client on a fresh database name."""

    async def main() -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(uri)
        try:
            await body(client[f"t_{uuid.uuid4().hex[:12]}"])
        finally:
            await client.close()

    asyncio.run(main())


async def collect(hub: Hub, count: int, timeout: float = 20.0) -> list[tuple[int, Document]]:
    subscription = hub.subscribe()
    items: list[tuple[int, Document]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(items) < count and loop.time() < deadline:
        item = await subscription.get(0.2)
        if item is not None:
            items.append(item)
    return items


class FedTailer(CollectionTailer):
    """A tailer with the worker's change feed watching its one collection (as in a worker)."""

    def __init__(self, db: Any, *args: Any, use_change_stream: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.feed = ChangeFeed(db, {"docs": self} if use_change_stream else {})

    async def start(self) -> None:
        await super().start()
        await self.feed.start()

    async def stop(self) -> None:
        await self.feed.stop()
        await super().stop()


def make_tailer(db: Any, hub: Hub, **options: Any) -> FedTailer:
    defaults: dict[str, Any] = {"gap_timeout": 0.5, "poll_interval": 0.05, "adopt_interval": 0.5}
    return FedTailer(db, db["docs"], hub,
                     **{**defaults, **options})


def test_concurrent_writers_are_published_once_in_seq_order(mongodb_uri: str) -> None:
    async def body(db: Any) -> None:
        await sequence.ensure_indexes(db["docs"])
        hub = Hub("docs")
        tailer = make_tailer(db, hub)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            reader = asyncio.create_task(collect(hub, 120))

            async def writer(w: int) -> None:
                for i in range(30):
                    await sequence.insert_sequenced(db["docs"], {"_id": f"{w}-{i}"}
                    )
                    await asyncio.sleep(random.random() * 0.01)

            await asyncio.gather(*(writer(w) for w in range(4)))
            items = await reader
        finally:
            await tailer.stop()
        seqs = [seq for seq, _ in items]
        assert len(items) == 120
        assert seqs == sorted(seqs) and len(set(seqs)) == 120
        assert {doc["_id"] for _, doc in items} == {f"{w}-{i}" for w in range(4) for i in range(30)}

    run(mongodb_uri, body)


def test_hole_is_fenced_after_timeout_and_late_writer_loses(mongodb_uri: str) -> None:
    async def body(db: Any) -> None:
        docs = db["docs"]
        await sequence.ensure_indexes(docs)
        hub = Hub("docs")
        tailer = make_tailer(db, hub)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            reader = asyncio.create_task(collect(hub, 2))
            await sequence.insert_sequenced(docs, {"_id": "a", "text": "a"})
            # A batch that stored its second number but never its first: a hole.
            stuck = await sequence.head(docs) + 1
            await docs.insert_one({"_id": "b", "text": "b", sequence.SEQ_FIELD: stuck + 1})
            items = await reader
            assert [doc["_id"] for _, doc in items] == ["a", "b"]
            assert tailer.fenced == 1
            with pytest.raises(DuplicateKeyError):
                await docs.insert_one({"_id": "late", sequence.SEQ_FIELD: stuck})
        finally:
            await tailer.stop()

    run(mongodb_uri, body)


def test_late_commit_within_timeout_is_delivered_in_its_place(mongodb_uri: str) -> None:
    async def body(db: Any) -> None:
        docs = db["docs"]
        await sequence.ensure_indexes(docs)
        hub = Hub("docs")
        tailer = make_tailer(db, hub, gap_timeout=3.0)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            reader = asyncio.create_task(collect(hub, 2))
            slow = await sequence.head(docs) + 1  # its writer has not committed yet
            await docs.insert_one({"_id": "fast", "text": "f", sequence.SEQ_FIELD: slow + 1})
            await asyncio.sleep(0.5)
            assert hub.watermark == slow - 1  # held at the hole
            await docs.insert_one({"_id": "slow", "text": "s", sequence.SEQ_FIELD: slow})
            items = await reader
            assert [(seq, doc["_id"]) for seq, doc in items] == [(slow, "slow"), (slow + 1, "fast")]
            assert tailer.fenced == 0
        finally:
            await tailer.stop()

    run(mongodb_uri, body)


def test_unsequenced_documents_are_adopted_and_published(mongodb_uri: str) -> None:
    async def body(db: Any) -> None:
        await sequence.ensure_indexes(db["docs"])
        hub = Hub("docs")
        tailer = make_tailer(db, hub)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            reader = asyncio.create_task(collect(hub, 1, timeout=10))
            await db["docs"].insert_one({"text": "legacy", "timestamp": 1764064800000})
            items = await reader
            assert [doc["text"] for _, doc in items] == ["legacy"]
        finally:
            await tailer.stop()

    run(mongodb_uri, body)


def test_change_stream_is_used_on_a_replica_set(mongodb_uri: str) -> None:
    async def body(db: Any) -> None:
        await sequence.ensure_indexes(db["docs"])
        hub = Hub("docs")
        tailer = make_tailer(db, hub, poll_interval=5.0, safety_interval=5.0)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            for _ in range(50):
                if tailer.change_stream_active:
                    break
                await asyncio.sleep(0.1)
            assert tailer.change_stream_active
            await asyncio.sleep(0.3)
            reader = asyncio.create_task(collect(hub, 1, timeout=4))
            await sequence.insert_sequenced(db["docs"], {"_id": "x", "text": "x"})
            items = await reader  # well before the 5 s poll: the change stream woke the tailer
            assert [doc["_id"] for _, doc in items] == ["x"]
        finally:
            await tailer.stop()

    run(mongodb_uri, body)


def test_standalone_server_polls_and_delivers_everything() -> None:
    with EmbeddedDatabase(standalone=True) as standalone:

        async def body(db: Any) -> None:
            await sequence.ensure_indexes(db["docs"])
            hub = Hub("docs")
            tailer = make_tailer(db, hub)
            await tailer.start()
            try:
                await asyncio.wait_for(hub.ready.wait(), 10)
                reader = asyncio.create_task(collect(hub, 20))
                await asyncio.gather(*(
                    sequence.insert_sequenced(db["docs"], {"_id": str(i), "text": "x"})
                    for i in range(20)
                ))
                items = await reader
                assert not tailer.change_stream_active
                assert sorted(doc["_id"] for _, doc in items) == sorted(str(i) for i in range(20))
                assert [seq for seq, _ in items] == sorted(seq for seq, _ in items)
            finally:
                await tailer.stop()

        run(standalone.uri, body)


def test_idle_reads_fetch_positions_only_and_subscribers_still_get_whole_documents(
    mongodb_uri: str,
) -> None:
    async def body(db: Any) -> None:
        docs = db["docs"]
        await sequence.ensure_indexes(docs)
        for i in range(5):
            await sequence.insert_sequenced(docs, {"_id": f"old{i}", "text": "t"})
        hub = Hub("docs")
        seen: list[Document] = []
        tailer = make_tailer(db, hub)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            assert hub.watermark == 5  # caught up without anyone listening
            reader = asyncio.create_task(collect(hub, 1))
            await sequence.insert_sequenced(docs, {"_id": "new", "text": "whole"})
            seen = [doc for _, doc in await reader]
        finally:
            await tailer.stop()
        assert [(d["_id"], d["text"]) for d in seen] == [("new", "whole")]

    run(mongodb_uri, body)


def test_a_wake_up_that_arrives_during_a_read_is_not_lost(mongodb_uri: str) -> None:
    """A change-stream wake-up that lands while a read is in flight makes the tailer read
    again at once, not at the next poll (a poll interval of 30 s here)."""

    async def body(db: Any) -> None:
        docs = db["docs"]
        await sequence.ensure_indexes(docs)
        hub = Hub("docs")
        tailer = make_tailer(db, hub, poll_interval=30.0, safety_interval=30.0,
                             adopt_interval=3600.0, use_change_stream=False)
        inserted = False
        original = tailer.step

        async def step_with_insert_during_the_read() -> bool:
            nonlocal inserted
            result = await original()
            if hub.ready.is_set() and not inserted:
                while not hub.has_consumers():  # the test's subscriber has joined
                    await asyncio.sleep(0.01)
                # The document commits after this read's query and its wake-up comes in
                # before the read returns: exactly the window that used to lose it.
                inserted = True
                await sequence.insert_sequenced(docs, {"_id": "late", "text": "t"})
                tailer.wake()
            return result

        tailer.step = step_with_insert_during_the_read  # type: ignore[method-assign]  # reason: wrap the real read
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            items = await collect(hub, 1, timeout=10.0)
        finally:
            await tailer.stop()
        assert [doc["_id"] for _, doc in items] == ["late"]

    run(mongodb_uri, body)


def test_next_numbers_are_published_from_the_change_stream_without_a_read(
    mongodb_uri: str,
) -> None:
    async def body(db: Any) -> None:
        docs = db["docs"]
        await sequence.ensure_indexes(docs)
        hub = Hub("docs")
        tailer = make_tailer(db, hub, poll_interval=5.0, safety_interval=5.0)
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            for _ in range(50):
                if tailer.change_stream_active:
                    break
                await asyncio.sleep(0.1)
            assert tailer.change_stream_active
            await asyncio.sleep(0.3)
            reader = asyncio.create_task(collect(hub, 10, timeout=8))
            for i in range(10):
                await sequence.insert_sequenced(docs, {"_id": f"d{i}", "text": "t"})
            items = await reader
        finally:
            await tailer.stop()
        assert [doc["_id"] for _, doc in items] == [f"d{i}" for i in range(10)]
        assert [seq for seq, _ in items] == list(range(1, 11))
        assert tailer.published_in_place > 0

    run(mongodb_uri, body)


def test_own_acknowledged_inserts_are_published_at_once_and_only_once(mongodb_uri: str) -> None:
    """The batcher tells the tailer of each acknowledged insert: it is published before the
    insert returns, and neither the change stream nor a read publishes it again."""
    from dualstore_reference.store.batching import InsertBatcher

    async def body(db: Any) -> None:
        docs = db["docs"]
        await sequence.ensure_indexes(docs)
        hub = Hub("docs")
        tailer = make_tailer(db, hub, poll_interval=0.05, safety_interval=0.2)
        batcher = InsertBatcher(docs)
        batcher.on_committed = tailer.committed
        await tailer.start()
        try:
            await asyncio.wait_for(hub.ready.wait(), 10)
            subscription = hub.subscribe()
            for i in range(5):
                seq = await batcher.insert({"_id": f"own{i}", "text": "t"})
                assert hub.watermark == seq  # published before the insert returned
            # Another writer (not told) comes through the change stream or a read.
            await sequence.insert_sequenced(docs, {"_id": "other", "text": "t"})
            await asyncio.gather(*(batcher.insert({"_id": f"b{i}", "text": "t"})
                                   for i in range(6)))
            items: list[tuple[int, Document]] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while loop.time() < deadline:  # long enough for every late wake-up and read
                item = await subscription.get(0.2)
                if item is not None:
                    items.append(item)
        finally:
            await tailer.stop()
        assert [seq for seq, _ in items] == list(range(1, 13))
        assert [doc["_id"] for _, doc in items][:6] == [*(f"own{i}" for i in range(5)), "other"]
        assert {doc["_id"] for _, doc in items[6:]} == {f"b{i}" for i in range(6)}
        assert items[0][1][sequence.SEQ_FIELD] == 1 and items[0][1]["text"] == "t"
        # Each own insert was published before its insert returned (asserted above): by the
        # batcher's acknowledgement, or by its change event when the database sent that
        # before the insert's reply (it does, now and then). The acknowledgement carries
        # them as a rule.
        assert tailer.published_locally + tailer.published_in_place >= 5
        assert tailer.published_locally >= 1

    run(mongodb_uri, body)
