# SPDX-License-Identifier: GPL-3.0-or-later
"""What one acknowledged insert costs: journal on/off, disk/memory, paced/back to back.

The reference answers 201 only once the document is journaled (``journal=True`` unless the
URI says otherwise), and every POST that reaches subscribers pays that round trip; an
in-memory server pays none. This measures the embedded database's insert round trip with
the reference's indexes, back to back and paced like the fan-out benchmark's writer (one
insert every 50 ms, so every process involved wakes from idle), and prints each figure as
a ratio to the in-memory, unjournaled insert of the same pacing.

    python reference/benchmarks/bench_durable_write.py [--inserts 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from dualstore_reference.embedded import EmbeddedDatabase
from pymongo import ASCENDING, DESCENDING, MongoClient


def measure(storage: str, journal: bool, pause: float, inserts: int) -> tuple[float, float]:
    """(p50, p99) milliseconds of one insert_one, as the reference's collections index it."""
    folder = ":memory:" if storage == "memory" else tempfile.mkdtemp(prefix="bench-durable-")
    database = EmbeddedDatabase(storage_path=folder).start()
    client: MongoClient[dict[str, object]] = MongoClient(database.uri, journal=journal)
    try:
        documents = client["bench"]["docs"]
        documents.create_index("_seq", unique=True, sparse=True, name="seq_unique")
        documents.create_index([("timestamp", DESCENDING), ("_seq", DESCENDING)])
        documents.create_index([("_seq", ASCENDING), ("_id", ASCENDING)])
        timings: list[float] = []
        for number in range(1, inserts + 1):
            if pause:
                time.sleep(pause)
            started = time.perf_counter()
            documents.insert_one({
                "_id": uuid.uuid4().hex, "text": f"document {number}", "metadata": {},
                "timestamp": dt.datetime.now(dt.UTC), "_seq": number,
            })
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
        database.stop()
    timings.sort()
    return statistics.median(timings), timings[max(0, round(0.99 * len(timings)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=200, help="inserts per cell")
    parser.add_argument("--pause", type=float, default=0.05,
                        help="seconds between paced inserts (the fan-out writer's 20/s)")
    args = parser.parse_args()
    print(f"machine load before: {Path('/proc/loadavg').read_text().strip()}")
    print("| pacing | storage | journal | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for label, pause in (("back to back", 0.0), (f"every {args.pause:g} s", args.pause)):
        base_p50, base_p99 = measure("memory", False, pause, args.inserts)
        print(f"| {label} | memory | off (baseline) | {base_p50:.2f} | {base_p99:.2f} |")
        for storage, journal in (("memory", True), ("disk", False), ("disk", True)):
            p50, p99 = measure(storage, journal, pause, args.inserts)
            print(f"| {label} | {storage} | {'on' if journal else 'off'} | "
                  f"{p50:.2f} ({p50 / base_p50:.2f}x) | {p99:.2f} ({p99 / base_p99:.2f}x) |",
                  flush=True)
    print(f"machine load after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
