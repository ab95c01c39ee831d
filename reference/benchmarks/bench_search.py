# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of the vector index: embedding and build rate, snapshot load, query latency, recall."""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.search import index as index_module
from dualstore_reference.search.embedders import HashingEmbedder
from dualstore_reference.search.index import VectorIndex
from dualstore_reference.store import sequence
from pymongo import AsyncMongoClient


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20_000, help="documents to index")
    parser.add_argument("--queries", type=int, default=200, help="queries per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (medians are printed)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dim", type=int, default=256, help="EMBEDDING_DIM")
    parser.add_argument("--mongodb-uri", help="use this MongoDB (default: a SecantusDB daemon)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for name in ("docs", "queries", "repeats", "k", "dim"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be a positive integer")
    return args


def corpus(count: int, seed: int) -> list[str]:
    """Texts of 5 to 40 words drawn from a Zipf-like vocabulary of 5,000 made-up words."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "de", "pa", "zu", "gi"]
    vocabulary = sorted(
        {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(6000)}
    )[:5000]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    return [" ".join(rng.choices(vocabulary, weights, k=rng.randint(5, 40))) for _ in range(count)]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = np.asarray(samples) * 1000.0
    return float(np.percentile(ordered, 50)), float(np.percentile(ordered, 99))


async def load_documents(uri: str, texts: list[str]) -> Any:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    documents = client["bench_search"][f"docs_{uuid.uuid4().hex[:8]}"]
    await sequence.ensure_indexes(documents)
    batch = []
    for number, text in enumerate(texts, start=1):
        batch.append(
            {"_id": uuid.uuid4().hex, "text": text, "metadata": {"n": number}, "_seq": number}
        )
        if len(batch) == 1000:
            await documents.insert_many(batch)
            batch = []
    if batch:
        await documents.insert_many(batch)
    return client, documents


async def timed_queries(
    index: VectorIndex, queries: list[str], k: int, allowed: set[int] | None
) -> list[float]:
    elapsed = []
    for query in queries:
        start = time.perf_counter()
        await index.search(query, k, allowed)
        elapsed.append(time.perf_counter() - start)
    return elapsed


def path_of(allowed: set[int]) -> str:
    how = "exact" if len(allowed) <= index_module.EXACT_SCORING_LIMIT else "graph"
    return f"{len(allowed)} allowed, {how}"


async def recall(
    index: VectorIndex, embedder: HashingEmbedder, queries: list[str], k: int, allowed: Any
) -> float:
    """Mean share of returned results that score at least the exact k-th best score."""
    shares = []
    candidates = sorted(allowed) if allowed is not None else sorted(index._labels)
    for query in queries:
        found = await index.search(query, k, allowed)
        exact = index._exact(embedder.embed([query]), candidates, k)
        if not exact:
            continue
        threshold = exact[-1][1] - 1e-5
        shares.append(sum(score >= threshold for _, score in found) / len(exact))
    return statistics.mean(shares) if shares else 1.0


def brute_force(matrix: Any, embedder: HashingEmbedder, queries: list[str], k: int) -> list[float]:
    """Exact top-k by one matrix product per query (latencies in seconds)."""
    elapsed = []
    for query in queries:
        start = time.perf_counter()
        scores = matrix @ embedder.embed([query])[0]
        best = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        sorted(best, key=lambda row: -scores[row])
        elapsed.append(time.perf_counter() - start)
    return elapsed


async def bench(args: argparse.Namespace, uri: str) -> None:
    texts = corpus(args.docs, args.seed)
    rng = random.Random(args.seed + 1)
    queries = [" ".join(rng.choice(text.split()) for _ in range(3)) for text in texts[:1000]]
    queries = queries[: args.queries]
    embedder = HashingEmbedder(args.dim)

    start = time.perf_counter()
    embedder.embed(texts[:2000])
    embed_rate = min(2000, len(texts)) / (time.perf_counter() - start)
    print(f"hashing embedder (dim {args.dim}): {embed_rate:,.0f} texts/s")

    client, documents = await load_documents(uri, texts)
    try:
        build_rates, load_times = [], []
        table: dict[str, list[tuple[float, float]]] = {}
        recalls: dict[str, float] = {}
        baseline: list[tuple[float, float]] = []
        matrix = embedder.embed(texts)  # the baseline: every vector in one numpy array
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                directory = Path(folder)
                index = VectorIndex(documents, embedder, directory)
                start = time.perf_counter()
                await index.open()
                build_rates.append(len(index) / (time.perf_counter() - start))
                await index.save()
                start = time.perf_counter()
                reloaded = VectorIndex(documents, embedder, directory)
                await reloaded.open()
                load_times.append(time.perf_counter() - start)

            selective = set(rng.sample(range(1, args.docs + 1), max(1, args.docs // 200)))
            broad = set(rng.sample(range(1, args.docs + 1), args.docs // 2))
            for label, allowed in (
                ("unfiltered", None),
                (f"filter 0.5% ({path_of(selective)})", selective),
                (f"filter 50% ({path_of(broad)})", broad),
            ):
                table.setdefault(label, []).append(
                    percentiles(await timed_queries(reloaded, queries, args.k, allowed))
                )
                if repeat == 0:
                    recalls[label] = await recall(reloaded, embedder, queries[:50], args.k, allowed)
            baseline.append(percentiles(brute_force(matrix, embedder, queries, args.k)))

        print(f"documents: {args.docs:,}; queries per repeat: {len(queries)}; k={args.k}")
        rate = statistics.median(build_rates)
        print(f"index build from MongoDB (read + embed + add): {rate:,.0f} docs/s")
        print(f"snapshot load + catch-up check: {statistics.median(load_times) * 1000:,.0f} ms")
        for label, rows in table.items():
            p50 = statistics.median(row[0] for row in rows)
            p99 = statistics.median(row[1] for row in rows)
            print(
                f"query latency {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
                f"recall@{args.k} vs exact {recalls[label]:.3f}"
            )
        base50 = statistics.median(row[0] for row in baseline)
        base99 = statistics.median(row[1] for row in baseline)
        index50 = statistics.median(row[0] for row in table["unfiltered"])
        print(
            f"baseline, numpy brute force over all {args.docs:,} vectors (embed + matmul, no "
            f"database): p50 {base50:.2f} ms, p99 {base99:.2f} ms; "
            f"unfiltered index p50 / baseline p50 = {index50 / base50:.2f}"
        )
        print(f"(medians over {args.repeats} repeats; recall: share of results scoring at least")
        print(" the exact k-th best score, first repeat, 50 queries)")
    finally:
        await documents.drop()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl-C, so the embedded database below is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if args.mongodb_uri:
        asyncio.run(bench(args, args.mongodb_uri))
        return 0
    with EmbeddedDatabase(storage_path=":memory:") as database:
        asyncio.run(bench(args, database.uri))
    return 0


if __name__ == "__main__":
    sys.exit(main())
