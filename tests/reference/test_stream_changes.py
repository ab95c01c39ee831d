# SPDX-License-Identifier: GPL-3.0-or-later
"""The worker's one change feed: one cursor for every collection, each insert to its tailer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from dualstore_reference.store import sequence
from dualstore_reference.stream.changes import ChangeFeed
from dualstore_reference.stream.hub import Hub
from dualstore_reference.stream.tailer import CollectionTailer
from pymongo import AsyncMongoClient

Document = dict[str, Any]


def test_one_change_stream_feeds_every_collections_tailer(
    mongodb_uri: str, command_log: Any
) -> None:
    names = ("alpha", "beta", "gamma")

    async def main() -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            mongodb_uri, event_listeners=[command_log]
        )
        db = client[f"t_{uuid.uuid4().hex[:12]}"]
        hubs = {name: Hub(name) for name in names}
        # Slow polls: only the change feed can deliver within the test's wait.
        tailers = {
            name: CollectionTailer(db[name], hubs[name],
                                   poll_interval=30.0, safety_interval=30.0,
                                   adopt_interval=3600.0)
            for name in names
        }
        feed = ChangeFeed(db, tailers)
        try:
            for name in names:
                await sequence.ensure_indexes(db[name])
                await tailers[name].start()
                await asyncio.wait_for(hubs[name].ready.wait(), 10)
            await feed.start()
            for _ in range(100):
                if all(t.change_stream_active for t in tailers.values()):
                    break
                await asyncio.sleep(0.05)
            assert all(t.change_stream_active for t in tailers.values())
            await asyncio.sleep(0.3)
            subscriptions = {name: hubs[name].subscribe() for name in names}
            await db["unrelated"].insert_one({"text": "not ours"})
            await sequence.insert_sequenced(db["beta"], {"_id": "b1", "text": "b"})
            await sequence.insert_sequenced(db["alpha"], {"_id": "a1", "text": "a"})
            got_alpha = await subscriptions["alpha"].get(5.0)
            got_beta = await subscriptions["beta"].get(5.0)
            await asyncio.sleep(0.3)
            got_gamma = await subscriptions["gamma"].get(0.1)
        finally:
            await feed.stop()
            for tailer in tailers.values():
                await tailer.stop()
            await client.close()
        assert got_alpha is not None and got_alpha[1]["_id"] == "a1"
        assert got_beta is not None and got_beta[1]["_id"] == "b1"
        assert got_gamma is None
        assert feed.changes == 2  # the unrelated collection's insert is filtered out
        assert tailers["alpha"].published_in_place + tailers["beta"].published_in_place == 2
        assert command_log.change_streams() == [1]  # one database-level stream

    asyncio.run(main())


def test_without_change_streams_the_tailers_poll(mongodb_uri: str, command_log: Any) -> None:
    """A feed with nothing to watch opens no stream, and leaves the tailers polling."""

    async def main() -> None:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            mongodb_uri, event_listeners=[command_log]
        )
        db = client[f"t_{uuid.uuid4().hex[:12]}"]
        hub = Hub("docs")
        tailer = CollectionTailer(db["docs"], hub,
                                  poll_interval=0.05, adopt_interval=3600.0)
        feed = ChangeFeed(db, {})
        try:
            await sequence.ensure_indexes(db["docs"])
            await tailer.start()
            await feed.start()
            await asyncio.wait_for(hub.ready.wait(), 10)
            subscription = hub.subscribe()
            await sequence.insert_sequenced(db["docs"], {"_id": "p1", "text": "p"})
            got = await subscription.get(5.0)
        finally:
            await feed.stop()
            await tailer.stop()
            await client.close()
        assert got is not None and got[1]["_id"] == "p1"
        assert not tailer.change_stream_active and tailer.published_in_place == 0
        assert command_log.change_streams() == []

    asyncio.run(main())
