# SPDX-License-Identifier: GPL-3.0-or-later
"""Insert throughput: one-by-one ``insert_sequenced`` vs the group-commit batcher, same run.

Starts an in-memory SecantusDB daemon and inserts N documents with C concurrent writers
in one process, both ways, repeated R times; prints the median documents/s and the ratio.
Usage: python reference/benchmarks/bench_insert.py [--documents N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import with_database
from dualstore_reference.store import sequence
from dualstore_reference.store.batching import InsertBatcher
from pymongo import AsyncMongoClient

Document = dict[str, Any]


async def _measure(
    uri: str, documents: int, concurrency: int, batched: bool
) -> float:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        with_database(uri, f"bench_{uuid.uuid4().hex[:8]}")
    )
    database = client.get_default_database()
    collection = database["docs"]
    await sequence.ensure_indexes(collection)
    batcher = InsertBatcher(collection)
    insert: Callable[[Document], Awaitable[int]] = (
        batcher.insert
        if batched
        else (lambda document: sequence.insert_sequenced(collection, document))
    )
    queue = list(range(documents))

    async def writer() -> None:
        while queue:
            i = queue.pop()
            await insert({"_id": uuid.uuid4().hex, "text": f"document {i}"})

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return documents / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with EmbeddedDatabase() as database:
        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for batched in (False, True):
                results[batched].append(
                    asyncio.run(_measure(database.uri, args.documents, args.concurrency, batched))
                )
    single, grouped = (statistics.median(results[b]) for b in (False, True))
    print(f"{args.documents} documents, {args.concurrency} concurrent writers, "
          f"median of {args.repeats}")
    print(f"one by one   {single:8.0f} documents/s")
    print(f"group commit {grouped:8.0f} documents/s   ratio {grouped / single:.1f}x")


if __name__ == "__main__":
    main()
