# SPDX-License-Identifier: GPL-3.0-or-later
"""What one acknowledged insert costs: journal on/off, disk/memory, paced/back to back, watched.

The reference answers 201 only once the document is journaled (``journal=True`` unless the
URI says otherwise), and every POST that reaches subscribers pays that round trip; an
in-memory server pays none. This measures the embedded database's insert round trip with
the reference's indexes, back to back and paced like the fan-out benchmark's writer (one
insert every 50 ms, so every process involved wakes from idle), and prints each figure as
a ratio to the in-memory, unjournaled insert of the same pacing. The last rows repeat the
reference's case (disk, journal) with a change stream open on the database, as every
reference worker keeps one: the database then also builds and sends a change event per
insert. Each row also gives the database daemon's CPU time per insert.

    python reference/benchmarks/bench_durable_write.py [--inserts 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
from dualstore_reference.embedded import EmbeddedDatabase
from pymongo import ASCENDING, DESCENDING, MongoClient


def _watch(client: MongoClient[dict[str, object]], stop: threading.Event,
           seen: list[int]) -> None:
    """A database-level change stream on inserts, read until stop (as a reference worker)."""
    pipeline = [{"$match": {"operationType": "insert"}}]
    with client["bench"].watch(pipeline, max_await_time_ms=1000) as stream:
        while not stop.is_set():
            if stream.try_next() is not None:
                seen.append(1)


def _daemon_cpu(database: EmbeddedDatabase) -> float:
    assert database.process is not None
    times = psutil.Process(database.process.pid).cpu_times()
    return times.user + times.system


def measure(storage: str, journal: bool, pause: float, inserts: int,
            watched: bool = False) -> tuple[float, float, float]:
    """(p50, p99, database CPU per insert) in milliseconds of one insert_one, as the
    reference's collections index it; watched: with a change stream open."""
    folder = ":memory:" if storage == "memory" else tempfile.mkdtemp(prefix="bench-durable-")
    database = EmbeddedDatabase(storage_path=folder).start()
    client: MongoClient[dict[str, object]] = MongoClient(database.uri, journal=journal)
    stop, seen = threading.Event(), list[int]()
    watcher = threading.Thread(target=_watch, args=(client, stop, seen), daemon=True)
    try:
        if watched:
            watcher.start()
            time.sleep(1.0)  # the stream's first getMore is waiting
        documents = client["bench"]["docs"]
        documents.create_index("_seq", unique=True, sparse=True, name="seq_unique")
        documents.create_index([("timestamp", DESCENDING), ("_seq", DESCENDING)])
        documents.create_index([("_seq", ASCENDING), ("_id", ASCENDING)])
        timings: list[float] = []
        cpu_before = _daemon_cpu(database)
        for number in range(1, inserts + 1):
            if pause:
                time.sleep(pause)
            started = time.perf_counter()
            documents.insert_one({
                "_id": uuid.uuid4().hex, "text": f"document {number}", "metadata": {},
                "timestamp": dt.datetime.now(dt.UTC), "_seq": number,
            })
            timings.append((time.perf_counter() - started) * 1000)
        time.sleep(0.2)  # the change events of the last inserts are sent
        cpu = (_daemon_cpu(database) - cpu_before) / inserts * 1000
        if watched and len(seen) < inserts:
            raise SystemExit(f"the change stream saw {len(seen)} of {inserts} inserts")
    finally:
        stop.set()
        if watched:
            watcher.join(5)
        client.close()
        database.stop()
    timings.sort()
    return statistics.median(timings), timings[max(0, round(0.99 * len(timings)) - 1)], cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=200, help="inserts per cell")
    parser.add_argument("--pause", type=float, default=0.05,
                        help="seconds between paced inserts (the fan-out writer's 20/s)")
    args = parser.parse_args()
    print(f"machine load before: {Path('/proc/loadavg').read_text().strip()}")
    print("| pacing | storage | journal | p50 ms | p99 ms | database CPU ms/insert |")
    print("|---|---|---|---|---|---|")
    for label, pause in (("back to back", 0.0), (f"every {args.pause:g} s", args.pause)):
        base_p50, base_p99, base_cpu = measure("memory", False, pause, args.inserts)
        print(f"| {label} | memory | off (baseline) | {base_p50:.2f} | {base_p99:.2f} | "
              f"{base_cpu:.2f} |")
        cells = [("memory", True, False), ("disk", False, False), ("disk", True, False),
                 ("disk", True, True)]
        for storage, journal, watched in cells:
            p50, p99, cpu = measure(storage, journal, pause, args.inserts, watched)
            journaled = ("on" if journal else "off") + (", change stream open" if watched else "")
            print(f"| {label} | {storage} | {journaled} | "
                  f"{p50:.2f} ({p50 / base_p50:.2f}x) | {p99:.2f} ({p99 / base_p99:.2f}x) | "
                  f"{cpu:.2f} ({cpu / base_cpu:.2f}x) |", flush=True)
    print(f"machine load after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
