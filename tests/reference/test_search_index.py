# SPDX-License-Identifier: GPL-3.0-or-later
"""VectorIndex against the real database: ranking, filters, catch-up, persistence, concurrency."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dualstore_reference.search import index as index_module
from dualstore_reference.search.embedders import HashingEmbedder
from dualstore_reference.search.index import META_FILE, VectorIndex
from dualstore_reference.store import sequence
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

Collection = AsyncCollection[dict[str, Any]]
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]


class Store:
    """A fresh collection in the session database."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]]) -> None:
        database = client["search_tests"]
        self.documents: Collection = database[f"c{uuid.uuid4().hex[:12]}"]
        self.held: set[int] = set()

    async def hold(self) -> int:
        """The next number, held by a writer that has not committed (a batch whose later
        document did): inserts after it are numbered above it, a hole until it commits."""
        number = max(await sequence.head(self.documents), *self.held, 0) + 1
        self.held.add(number)
        return number

    async def insert(self, text: str, **metadata: Any) -> int:
        document = {"_id": uuid.uuid4().hex, "text": text, "metadata": metadata}
        if not self.held:
            return await sequence.insert_sequenced(self.documents, document)
        seq = max(await sequence.head(self.documents), *self.held) + 1
        await self.documents.insert_one({**document, sequence.SEQ_FIELD: seq})
        return seq


@asynccontextmanager
async def store_for(uri: str) -> AsyncIterator[Store]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        store = Store(client)
        await sequence.ensure_indexes(store.documents)
        yield store
    finally:
        await client.close()


def run(uri: str, body: Callable[[Store], Awaitable[None]]) -> None:
    async def main() -> None:
        async with store_for(uri) as store:
            await body(store)

    asyncio.run(main())


def random_text(rng: random.Random, words: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def new_index(store: Store, directory: Path, **options: Any) -> VectorIndex:
    return VectorIndex(store.documents, HashingEmbedder(64), directory, **options)


def test_unique_word_document_ranks_first(mongodb_uri: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        rng = random.Random(1)
        for _ in range(60):
            await store.insert(random_text(rng))
        target = await store.insert("kilo zebracorn lima")
        await store.insert("zebra corn")  # near miss in characters only
        index = new_index(store, tmp_path)
        await index.open()
        assert len(index) == 62
        results = await index.search("zebracorn", 5)
        assert results[0][0] == target
        scores = [score for _, score in results]
        assert scores == sorted(scores, reverse=True)
        assert -1.0 <= scores[-1] <= scores[0] <= 1.0 + 1e-6
        # The score is the cosine similarity of the two embeddings.
        vectors = HashingEmbedder(64).embed(["zebracorn", "kilo zebracorn lima"])
        assert scores[0] == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-5)

    run(mongodb_uri, body)


def test_filtered_search_honours_k_with_a_selective_filter(
    mongodb_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "RECENT_EXACT", 4)  # the graph answers, not the ring

    async def body(store: Store) -> None:
        rng = random.Random(2)
        allowed: set[int] = set()
        for number in range(400):
            seq = await store.insert(random_text(rng), team="red" if number % 40 == 0 else "blue")
            if number % 40 == 0:
                allowed.add(seq)
        # Documents closest to the query are all outside the filter.
        for _ in range(30):
            await store.insert("quantum flux capacitor", team="blue")
        index = new_index(store, tmp_path)
        await index.open()
        found = await index.search("quantum flux capacitor", 8, allowed_seqs=allowed)
        assert len(found) == 8
        assert {seq for seq, _ in found} <= allowed
        everything = await index.search("quantum flux capacitor", 100, allowed_seqs=allowed)
        assert {seq for seq, _ in everything} == allowed  # k > matches: all of them
        # The graph path (large allowed sets) also answers k from the allowed set only.
        monkeypatch.setattr(index_module, "EXACT_SCORING_LIMIT", 2)
        graph = await index.search("quantum flux capacitor", 8, allowed_seqs=allowed)
        assert len(graph) == 8
        assert {seq for seq, _ in graph} <= allowed
        assert [s for s, _ in graph] == [s for s, _ in found]
        assert await index.search("anything", 5, allowed_seqs=set()) == []
        assert await index.search("anything", 5, allowed_seqs={10**9}) == []

    run(mongodb_uri, body)


@pytest.mark.parametrize("graph", ["short", "error"])
def test_exact_fallback_when_the_graph_returns_too_few(
    mongodb_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: str
) -> None:
    async def body(store: Store) -> None:
        rng = random.Random(3)
        seqs = [await store.insert(random_text(rng)) for _ in range(50)]
        index = new_index(store, tmp_path)
        await index.open()
        allowed = set(seqs[::7])
        expected = await index.search("alpha golf", 5, allowed_seqs=allowed)  # exact path
        assert len(expected) == 5

        def too_few(query: Any, k: int, accept: Any) -> list[tuple[int, float]]:
            if graph == "error":  # what hnswlib raises when it cannot fill k results
                raise RuntimeError("Cannot return the results in a contiguous 2D array")
            return expected[:2]

        monkeypatch.setattr(index_module, "EXACT_SCORING_LIMIT", 1)
        monkeypatch.setattr(index, "_knn", too_few)
        assert await index.search("alpha golf", 5, allowed_seqs=allowed) == expected

    run(mongodb_uri, body)


def test_catch_up_sees_inserts_made_through_another_worker(
    mongodb_uri: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        first = new_index(store, tmp_path / "one")
        second = new_index(store, tmp_path / "two")
        await first.open()
        await second.open()
        assert len(first) == len(second) == 0
        seq = await store.insert("written while both workers run: ocelot")
        # No explicit catch-up: search itself must see the write (read-your-writes).
        assert (await second.search("ocelot", 1))[0][0] == seq
        assert (await first.search("ocelot", 1))[0][0] == seq
        assert await first.catch_up() == 0  # nothing indexed twice
        assert len(first) == len(second) == 1

    run(mongodb_uri, body)


def test_tombstones_and_legacy_documents_are_skipped_until_sequenced(
    mongodb_uri: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        kept = await store.insert("heron")
        hole = await store.hold()
        assert await sequence.fence(store.documents, hole)
        await store.documents.insert_one({"_id": "legacy-1", "text": "heron legacy"})
        after = await store.insert("heron again")
        index = new_index(store, tmp_path)
        await index.open()
        assert len(index) == 2
        assert index.watermark == after
        assert {seq for seq, _ in await index.search("heron", 10)} == {kept, after}
        assert await sequence.adopt_unsequenced(store.documents) == 1
        assert len(await index.search("heron", 10)) == 3

    run(mongodb_uri, body)


def test_a_hole_is_indexed_around_and_filled_when_the_late_writer_commits(
    mongodb_uri: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        await store.insert("first")
        late = await store.hold()  # in flight
        above = await store.insert("pelican above the hole")
        index = new_index(store, tmp_path, gap_timeout=None)
        await index.open()
        assert index.watermark == late - 1
        assert (await index.search("pelican", 1))[0][0] == above  # not held back by the hole
        await index.save()  # the hole is part of the snapshot
        await store.documents.insert_one(
            {"_id": uuid.uuid4().hex, "text": "pelican late", sequence.SEQ_FIELD: late}
        )
        assert await index.catch_up() == 1
        assert index.watermark == above
        assert len(index) == 3
        reloaded = new_index(store, tmp_path, gap_timeout=None)
        assert await _open_counting(reloaded) == 1  # only the late document
        assert reloaded.watermark == above
        assert (await reloaded.search("pelican late", 1))[0][0] == late

    run(mongodb_uri, body)


def test_an_abandoned_hole_is_fenced_after_the_gap_timeout(
    mongodb_uri: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        hole = await store.hold()  # writer died
        above = await store.insert("crane")
        index = new_index(store, tmp_path, gap_timeout=0.2)
        await index.open()
        assert index.watermark == 0
        await asyncio.sleep(0.3)
        await index.catch_up()
        assert index.watermark == above
        tombstone = await store.documents.find_one({sequence.SEQ_FIELD: hole})
        assert tombstone is not None
        assert tombstone[sequence.TOMBSTONE_FIELD] is True

    run(mongodb_uri, body)


def test_snapshot_reload_and_incremental_catch_up(mongodb_uri: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        rng = random.Random(4)
        for _ in range(40):
            await store.insert(random_text(rng))
        index = new_index(store, tmp_path)
        await index.open()
        before = await index.search("alpha bravo", 5)
        await index.save()
        meta = json.loads((tmp_path / META_FILE).read_text())
        assert (meta["embedder"], meta["dim"], meta["count"]) == ("hashing-v2", 64, 40)
        assert meta["watermark"] == index.watermark
        newer = await store.insert("marmot")
        reloaded = new_index(store, tmp_path)
        # Loaded, not rebuilt: only the new document is read and added.
        added = await _open_counting(reloaded)
        assert added == 1
        assert len(reloaded) == 41
        assert (await reloaded.search("marmot", 1))[0][0] == newer
        after = await reloaded.search("alpha bravo", 5)
        assert [s for s, _ in after] == [s for s, _ in before]
        assert np.allclose([x for _, x in after], [x for _, x in before], atol=1e-6)
        await reloaded.save()
        assert len(list(tmp_path.glob("index-*.bin"))) == 1  # old snapshots removed

    run(mongodb_uri, body)


async def _open_counting(index: VectorIndex) -> int:
    counted: list[int] = []
    original = index.catch_up

    async def counting() -> int:
        added = await original()
        counted.append(added)
        return added

    index.catch_up = counting  # type: ignore[method-assign]
    await index.open()
    index.catch_up = original  # type: ignore[method-assign]
    return sum(counted)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "meta", "embedder"])
def test_unusable_snapshot_is_rebuilt(mongodb_uri: str, tmp_path: Path, damage: str) -> None:
    async def body(store: Store) -> None:
        rng = random.Random(5)
        for _ in range(30):
            await store.insert(random_text(rng))
        target = await store.insert("wombat")
        index = new_index(store, tmp_path)
        await index.open()
        await index.save()
        (index_file,) = tmp_path.glob("index-*.bin")
        data = bytearray(index_file.read_bytes())
        if damage == "flip":
            data[len(data) // 2] ^= 0xFF
            index_file.write_bytes(bytes(data))
        elif damage == "truncate":
            index_file.write_bytes(bytes(data[: len(data) // 3]))
        elif damage == "delete":
            index_file.unlink()
        elif damage == "meta":
            (tmp_path / META_FILE).write_text("{not json")
        rebuilt = VectorIndex(
            store.documents, HashingEmbedder(32 if damage == "embedder" else 64), tmp_path
        )
        added = await _open_counting(rebuilt)
        assert added == 31  # everything read again from MongoDB
        assert (await rebuilt.search("wombat", 1))[0][0] == target

    run(mongodb_uri, body)


def test_snapshot_of_another_database_is_rebuilt(mongodb_uri: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await store.insert("old database document")
        index = new_index(store, tmp_path)
        await index.open()
        await index.save()

        async with store_for(mongodb_uri) as fresh:  # same directory, different data
            seq = await fresh.insert("brand new document")
            assert seq == 1
            rebuilt = VectorIndex(fresh.documents, HashingEmbedder(64), tmp_path)
            await rebuilt.open()
            # Label 1 must carry the new document's vector, not the old one's.
            results = await rebuilt.search("brand new document", 5)
            assert [s for s, _ in results] == [seq]
            assert results[0][1] == pytest.approx(1.0, abs=1e-5)

    run(mongodb_uri, body)


def test_concurrent_searches_and_inserts(mongodb_uri: str, tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        index = new_index(store, tmp_path, initial_capacity=16)  # forces resizes
        await index.open()
        rng = random.Random(6)
        inserted: list[int] = []

        async def writer() -> None:
            for _ in range(150):
                inserted.append(await store.insert(random_text(rng)))

        async def reader(worker: int) -> None:
            for round_ in range(25):
                allowed = set(inserted[::3]) if round_ % 2 else None
                results = await index.search(random_text(rng, 2), 5, allowed)
                assert len({seq for seq, _ in results}) == len(results)

        other = new_index(store, tmp_path)
        await other.open()

        async def saver() -> None:
            for _ in range(5):
                await asyncio.sleep(0.01)
                await other.save()
                await index.save()

        await asyncio.gather(writer(), saver(), *(reader(n) for n in range(6)))
        await index.catch_up()
        assert len(index) == 150
        assert sorted(index._labels) == sorted(inserted)
        reloaded = new_index(store, tmp_path)
        await reloaded.open()
        assert len(reloaded) == 150

    run(mongodb_uri, body)


def test_interrupted_save_keeps_the_previous_snapshot(
    mongodb_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(store: Store) -> None:
        await store.insert("first snapshot")
        index = new_index(store, tmp_path)
        await index.open()
        await index.save()
        await store.insert("second snapshot")
        await index.catch_up()
        assert index.dirty

        def crash(*args: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(index_module.os, "replace", crash)  # dies before the switch
        with pytest.raises(OSError, match="disk full"):
            await index.save()
        monkeypatch.undo()
        assert index.dirty  # still needs saving
        assert json.loads((tmp_path / META_FILE).read_text())["count"] == 1
        reloaded = new_index(store, tmp_path)
        assert await _open_counting(reloaded) == 1  # the old snapshot, caught up
        assert len(reloaded) == 2

    run(mongodb_uri, body)


def test_newest_documents_are_scored_exactly_even_when_the_graph_misses_them(
    mongodb_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(store: Store) -> None:
        rng = random.Random(8)
        monkeypatch.setattr(index_module, "RECENT_EXACT", 8)
        for _ in range(40):
            await store.insert(random_text(rng))
        index = new_index(store, tmp_path)
        await index.open()
        target = await store.insert("capybara lounge")
        old = 1  # outside the ring of the 8 newest

        def graph_misses(query: Any, k: int, accept: Any) -> list[tuple[int, float]]:
            return [(seq, 0.0) for seq in range(2, 2 + k)]  # a poor approximate answer

        monkeypatch.setattr(index, "_knn", graph_misses)
        found = await index.search("capybara lounge", 3)
        assert found[0][0] == target
        assert found[0][1] == pytest.approx(1.0, abs=1e-5)
        await index.save()
        reloaded = new_index(store, tmp_path)
        await reloaded.open()  # the ring is filled from the snapshot
        monkeypatch.setattr(reloaded, "_knn", graph_misses)
        assert (await reloaded.search("capybara lounge", 3))[0][0] == target
        # Older documents depend on the graph: here it misses, as the stub says.
        text = (await store.documents.find_one({sequence.SEQ_FIELD: old}) or {})["text"]
        assert old not in {seq for seq, _ in await reloaded.search(text, 3)}

    run(mongodb_uri, body)


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
def test_score_is_cosine_similarity_in_every_space(
    mongodb_uri: str, tmp_path: Path, space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "RECENT_EXACT", 1)  # scores from the graph

    async def body(store: Store) -> None:
        texts = ["kestrel hovering", "kestrel nest", "unrelated words here"]
        seqs = [await store.insert(text) for text in texts]
        index = VectorIndex(store.documents, HashingEmbedder(64), tmp_path, space)
        await index.open()
        vectors = HashingEmbedder(64).embed(["kestrel hovering", *texts])
        expected = sorted(
            ((seq, float(vectors[0] @ vectors[i + 1])) for i, seq in enumerate(seqs)),
            key=lambda item: -item[1],
        )
        for allowed in (None, set(seqs)):
            found = await index.search("kestrel hovering", 3, allowed)
            assert [seq for seq, _ in found] == [seq for seq, _ in expected]
            assert [score for _, score in found] == pytest.approx(
                [score for _, score in expected], abs=1e-5
            )

    run(mongodb_uri, body)


def test_unknown_space_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vector space"):
        VectorIndex(None, HashingEmbedder(8), tmp_path, "manhattan")  # type: ignore[arg-type]


def test_concurrent_searches_share_catch_up_runs_and_idle_ones_read_only_above_the_top(
    mongodb_uri: str, tmp_path: Path, command_log: Any
) -> None:
    async def main() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            mongodb_uri, event_listeners=[command_log]
        )
        try:
            store = Store(client)
            await sequence.ensure_indexes(store.documents)
            for number in range(20):
                await store.insert(f"heron {number}")
            index = new_index(store, tmp_path)
            await index.open()
            command_log.clear()
            results = await asyncio.gather(*(index.search("heron", 3) for _ in range(20)))
            assert all(len(found) == 3 for found in results)
            # Nothing new: one empty read above the top per run, and the runs were shared.
            assert 1 <= command_log.counts("find")[store.documents.name] <= 2
            seq = await store.insert("heron newest")
            command_log.clear()
            assert (await index.search("heron newest", 1))[0][0] == seq
            assert command_log.counts("find")[store.documents.name] == 1  # one read above the top
        finally:
            await client.close()

    asyncio.run(main())


def test_a_failed_catch_up_run_does_not_count_for_waiting_searches(
    mongodb_uri: str, tmp_path: Path
) -> None:
    async def body(store: Store) -> None:
        await store.insert("first document")
        index = new_index(store, tmp_path)
        await index.open()
        original = index._catch_up
        calls = 0

        async def flaky() -> int:
            nonlocal calls
            calls += 1
            if calls == 1:  # reads before the insert below, then is slow
                added = await original()
                await asyncio.sleep(0.2)
                return added
            if calls == 2:
                raise ConnectionError("database went away")
            return await original()

        index._catch_up = flaky  # type: ignore[method-assign]
        slow = asyncio.create_task(index.search("first", 1))
        await asyncio.sleep(0.05)
        seq = await store.insert("platypus written meanwhile")
        failing = asyncio.create_task(index.search("platypus", 1))
        waiting = asyncio.create_task(index.search("platypus", 1))
        results = await asyncio.gather(slow, failing, waiting, return_exceptions=True)
        assert isinstance(results[1], ConnectionError)
        assert results[2][0][0] == seq  # type: ignore[index]
        assert calls == 3

    run(mongodb_uri, body)
