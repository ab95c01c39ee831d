# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of the vector index's resident memory per document, against the raw vectors.

Each measurement runs in a fresh child process: it grows the reference's own index (the
``VectorIndex`` add path: hnswlib, doubling capacity) by ``--batch`` documents at a time up
to ``--docs``, and reports RSS growth per document. The baseline, measured the same way in
its own child, is a plain float32 array of the same vectors. The ratio index/raw is the
figure ``dualstore load`` budgets per stored document (``loadtests``: INDEX_BUDGET_RATIO).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys
import numpy as np
import psutil

kind, docs, batch, dim, seed = sys.argv[1], *map(int, sys.argv[2:6])
process = psutil.Process()
rng = np.random.default_rng(seed)
vectors = [rng.standard_normal((batch, dim)).astype(np.float32) for _ in range(4)]
if kind == "index":
    from pymongo import AsyncMongoClient
    from dualstore_reference.search.embedders import HashingEmbedder
    from dualstore_reference.search.index import VectorIndex

    collection = AsyncMongoClient("mongodb://127.0.0.1:9", connect=False)["bench"]["docs"]
    index = VectorIndex(collection, HashingEmbedder(dim), sys.argv[6])
    index._index = index._new_index(index.initial_capacity)
    start = process.memory_info().rss
    for first in range(0, docs, batch):
        index._add(vectors[(first // batch) % 4], list(range(first + 1, first + batch + 1)))
else:
    start = process.memory_info().rss
    kept = np.empty((0, dim), dtype=np.float32)
    for first in range(0, docs, batch):
        kept = np.concatenate([kept, vectors[(first // batch) % 4]])
print(json.dumps({"bytes_per_doc": (process.memory_info().rss - start) / docs}))
"""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents per measurement")
    parser.add_argument("--batch", type=int, default=50, help="documents added per step")
    parser.add_argument("--dim", type=int, default=256, help="EMBEDDING_DIM")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (medians are printed)")
    args = parser.parse_args(argv)
    for name in ("docs", "batch", "dim", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be a positive integer")
    return args


def measure(kind: str, args: argparse.Namespace, seed: int) -> float:
    """Resident bytes per document of one fresh child process."""
    with tempfile.TemporaryDirectory(prefix="bench-index-memory-") as folder:
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(args.docs), str(args.batch), str(args.dim),
             str(seed), str(Path(folder))],
            capture_output=True, text=True, check=True, timeout=1800,
        )
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["bytes_per_doc"])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    index: list[float] = []
    raw: list[float] = []
    for repeat in range(args.repeats):
        raw.append(measure("raw", args, repeat))
        index.append(measure("index", args, repeat))
    raw_median, index_median = statistics.median(raw), statistics.median(index)
    print(f"{args.docs} documents, dim {args.dim}, added {args.batch} at a time; "
          f"medians of {args.repeats} runs, each in a fresh process")
    print(f"raw float32 vectors: {raw_median:8.0f} bytes/doc  (vector alone: {4 * args.dim})")
    print(f"reference index    : {index_median:8.0f} bytes/doc")
    print(f"ratio index / raw  : {index_median / raw_median:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
