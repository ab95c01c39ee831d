# SPDX-License-Identifier: GPL-3.0-or-later
"""Keyed vs unkeyed insert throughput at 1k and 50k stored documents (Idempotency-Key lookups).

Starts a SecantusDB daemon (in memory unless --storage), fills a collection to each size,
then inserts through the reference store with and without an Idempotency-Key,
alternating, repeated R times; prints the median documents/s and the keyed/unkeyed
ratio per size. The ratio should not fall as the collection grows: a keyed insert reads
by ``_id``. For comparison it also times one lookup by ``_idem.key`` (the earlier
version's query) and one by ``_id`` at each size.
Usage: python reference/benchmarks/bench_idempotency.py [--sizes 1000,50000] [--documents N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import with_database
from dualstore_reference.store import idempotency, timestamps
from dualstore_reference.store.documents import CollectionStore, Store
from pymongo import AsyncMongoClient

Document = dict[str, Any]
COLLECTION = "notes"
FILL_CHUNK = 1000


async def _fill(store: CollectionStore, size: int) -> None:
    """size documents as the server stores them (every other one keyed), in bulk."""
    now = timestamps.now()
    for start in range(0, size, FILL_CHUNK):
        rows = []
        for i in range(start, min(size, start + FILL_CHUNK)):
            row: Document = {"text": f"filler {i}", "timestamp": now, "metadata": {}, "_seq": i + 1}
            if i % 2:
                key = f"fill-{i}"
                row["_id"] = idempotency.document_id(COLLECTION, key)
                row[idempotency.FIELD] = {"key": key, "digest": idempotency.digest(row["text"])}
            else:
                row["_id"] = uuid.uuid4().hex
            rows.append(row)
        await store.documents.insert_many(rows, ordered=False)


async def _rate(store: CollectionStore, documents: int, concurrency: int, keyed: bool) -> float:
    queue = list(range(documents))
    run = uuid.uuid4().hex[:8]

    async def writer() -> None:
        while queue:
            i = queue.pop()
            key = f"{run}-{i}" if keyed else None
            await store.insert({"text": f"document {i}"}, key)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return documents / (time.perf_counter() - started)


async def _lookup_ms(store: CollectionStore, query: Document, repeats: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        await store.documents.find_one(query, {"_id": 1})
    return (time.perf_counter() - started) / repeats * 1000


async def _measure(
    uri: str, size: int, documents: int, concurrency: int, repeats: int
) -> dict[str, float]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        with_database(uri, f"bench_{uuid.uuid4().hex[:8]}"), tz_aware=True
    )
    try:
        store = Store(client.get_default_database(), (COLLECTION,))
        await store.ensure_indexes()
        notes = store[COLLECTION]
        await _fill(notes, size)
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for keyed in (False, True):
                rates[keyed].append(await _rate(notes, documents, concurrency, keyed))
        probe = f"fill-{size - 1 if size % 2 == 0 else size - 2}"
        return {
            "unkeyed": statistics.median(rates[False]),
            "keyed": statistics.median(rates[True]),
            "by_idem_key_ms": await _lookup_ms(notes, {f"{idempotency.FIELD}.key": probe}),
            "by_id_ms": await _lookup_ms(
                notes, {"_id": idempotency.document_id(COLLECTION, probe)}
            ),
        }
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,50000", help="collection sizes, comma-separated")
    parser.add_argument("--documents", type=int, default=200, help="inserts per measurement")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storage", default=":memory:", help="a folder, or :memory:")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"{args.documents} inserts per run, {args.concurrency} concurrent writers, "
          f"median of {args.repeats}, storage {args.storage}")  # fmt: skip
    print(f"{'stored':>8} {'unkeyed/s':>10} {'keyed/s':>10} {'keyed/unkeyed':>14} "
          f"{'lookup by _idem.key':>20} {'by _id':>8}")  # fmt: skip
    with EmbeddedDatabase(storage_path=args.storage) as database:
        for size in sizes:
            result = asyncio.run(
                _measure(database.uri, size, args.documents, args.concurrency, args.repeats)
            )
            print(f"{size:>8} {result['unkeyed']:>10.0f} {result['keyed']:>10.0f} "
                  f"{result['keyed'] / result['unkeyed']:>13.2f}x "
                  f"{result['by_idem_key_ms']:>17.1f} ms "
                  f"{result['by_id_ms']:>5.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
