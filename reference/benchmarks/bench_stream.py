# SPDX-License-Identifier: GPL-3.0-or-later
"""Stream benchmark: delivery latency at 100 and 1,000 subscribers, RSS per idle stream,
database operations per second with 10 vs 1,000 subscribers (a benchmark, not a test).

Starts its own SecantusDB daemon and ``dualstore serve`` (2 workers) on loopback ports.
Latency is POST start -> event arrival at the subscriber, measured in this one client
process (so it includes the client's own scheduling of many sockets). Database operations
come from the daemon's ``serverStatus`` opcounters (insert + query + update + delete +
getmore + command), sampled around a fixed window with the same light write load.
Run: ``python reference/benchmarks/bench_stream.py [--writes-per-second 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import RunningReference, start_reference, with_database
from dualstore_reference.stream.rawclient import RawStream
from pymongo import MongoClient

COLLECTION = "bench"
POST_SECONDS: list[float] = []
"""Round trip of every POST (the part of the latency that is the write itself)."""


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def open_streams(url: str, count: int) -> list[RawStream]:
    """Open count streams (50 at a time) and wait for each one's opening heartbeat."""
    streams: list[RawStream] = []
    limit = asyncio.Semaphore(50)

    async def one() -> None:
        async with limit:
            stream = await RawStream.open(f"{url}/v1/{COLLECTION}/stream", timeout=30)
            if stream.status != 200:
                raise SystemExit(f"stream refused with HTTP {stream.status}")
            await stream.events(1, timeout=30, types=("heartbeat",))
            streams.append(stream)

    await asyncio.gather(*(one() for _ in range(count)))
    return streams


async def write(url: str, count: int, per_second: float, sent: dict[str, float]) -> None:
    """POST count documents at a steady pace, recording each one's send time."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(count):
            started = time.monotonic()
            response = await client.post(f"/v1/{COLLECTION}", json={"text": f"bench {i}"})
            response.raise_for_status()
            sent[response.json()["id"]] = started
            POST_SECONDS.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, 1.0 / per_second - (time.monotonic() - started)))


def cpu_seconds(reference: RunningReference) -> tuple[float, float]:
    """CPU time (user + system) used so far by this process and by the server's workers."""
    own = psutil.Process().cpu_times()
    workers = 0.0
    for pid in reference.pids()[1:]:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            workers += times.user + times.system
    return own.user + own.system, workers


async def latency(reference: RunningReference, subscribers: int, documents: int,
                  per_second: float) -> list[float]:
    """Latencies (s) of every (document, subscriber) delivery."""
    url = reference.url
    streams = await open_streams(url, subscribers)
    sent: dict[str, float] = {}
    arrivals: list[tuple[str, float]] = []

    async def read(stream: RawStream) -> None:
        got = await stream.events(documents, timeout=documents / per_second + 30)
        arrivals.extend((event.json()["id"], event.at) for event in got)

    POST_SECONDS.clear()
    readers = [asyncio.create_task(read(stream)) for stream in streams]
    cpu_before = cpu_seconds(reference)
    wall = time.monotonic()
    await write(url, documents, per_second, sent)
    await asyncio.gather(*readers)
    wall = time.monotonic() - wall
    client, workers = (after - before for after, before in zip(cpu_seconds(reference), cpu_before,
                                                                strict=True))
    print(f"  CPU over {wall:.1f} s: this client {client:.1f} s, server workers {workers:.1f} s")
    for stream in streams:
        stream.close()
    missing = subscribers * documents - len(arrivals)
    if missing:
        print(f"  warning: {missing} deliveries missing", file=sys.stderr)
    return [at - sent[doc] for doc, at in arrivals if doc in sent]


def opcount(uri: str) -> int:
    """Sum of the daemon's opcounters."""
    with MongoClient(uri) as client:
        counters: dict[str, Any] = client.admin.command("serverStatus")["opcounters"]
    return sum(int(value) for value in counters.values())


async def db_ops_per_second(url: str, uri: str, subscribers: int, window: float,
                            per_second: float) -> float:
    """Database operations per second over a window with subscribers open and light writes."""
    streams = await open_streams(url, subscribers)
    await asyncio.sleep(2.0)
    before = await asyncio.to_thread(opcount, uri)
    started = time.monotonic()
    sent: dict[str, float] = {}
    await write(url, int(window * per_second), per_second, sent)
    elapsed = time.monotonic() - started
    after = await asyncio.to_thread(opcount, uri)
    for stream in streams:
        stream.close()
    await asyncio.sleep(1.0)
    return (after - before - 2) / elapsed  # minus this function's own serverStatus calls


def workers_rss(reference: RunningReference) -> int:
    """Resident memory of the gunicorn workers (bytes)."""
    total = 0
    for pid in reference.pids()[1:]:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total


async def rss_per_stream(reference: RunningReference, count: int) -> float:
    """Worker RSS growth per idle open stream (bytes)."""
    await asyncio.sleep(1.0)
    before = workers_rss(reference)
    streams = await open_streams(reference.url, count)
    await asyncio.sleep(2.0)
    after = workers_rss(reference)
    for stream in streams:
        stream.close()
    await asyncio.sleep(1.0)
    return (after - before) / count


async def main_async(args: argparse.Namespace, reference: RunningReference, uri: str) -> None:
    url = reference.url
    print(f"server {url} (2 workers), SecantusDB daemon; client: this process, raw sockets")
    # Warm up (imports, indexes, first tailer reads), then memory before any large run.
    await latency(reference, 5, 5, 20.0)
    per_stream = await rss_per_stream(reference, 1000)
    print(f"RSS per idle stream (1000 streams, both workers): {per_stream / 1024:.1f} KiB")
    results: dict[int, list[float]] = {}
    for subscribers in (100, 1000):
        values = await latency(reference, subscribers, args.documents, args.writes_per_second)
        results[subscribers] = values
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"delivery latency, {subscribers:>5} subscribers: p50 {p50:7.1f} ms"
              f"  p99 {p99:7.1f} ms  ({len(values)} deliveries; POST round trip p50 "
              f"{statistics.median(POST_SECONDS) * 1000:.1f} ms)")
    ratio = statistics.median(results[1000]) / statistics.median(results[100])
    print(f"  median latency ratio 1000/100 subscribers: {ratio:.2f}")
    ops: dict[int, float] = {}
    for subscribers in (10, 1000):
        ops[subscribers] = await db_ops_per_second(
            url, uri, subscribers, args.window, args.writes_per_second
        )
        print(f"database ops/s with {subscribers:>5} subscribers "
              f"({args.writes_per_second:g} writes/s): {ops[subscribers]:8.1f}")
    print(f"  ops/s ratio 1000/10 subscribers: {ops[1000] / ops[10]:.2f} (flat = 1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=40, help="documents per latency run")
    parser.add_argument("--writes-per-second", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=10.0, help="ops/s window (seconds)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as folder, EmbeddedDatabase(
        storage_path=str(Path(folder) / "db")
    ) as database:
        env = {
            "COLLECTIONS": COLLECTION,
            "STREAM_CAP_PER_IP": "5000",
            "RATE_LIMIT_BURST": "0",
            "EMBEDDING_DIM": "16",
        }
        with start_reference(env=env, workers=2, data_dir=Path(folder) / "ref",
                             mongodb_uri=with_database(database.uri, "bench")) as reference:
            asyncio.run(main_async(args, reference, database.uri))


if __name__ == "__main__":
    main()
