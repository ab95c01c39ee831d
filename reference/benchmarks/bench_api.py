# SPDX-License-Identifier: GPL-3.0-or-later
"""REST benchmark of the reference server: throughput and latency per operation.

Starts the reference (gunicorn, 2 workers, embedded SecantusDB in a temporary folder) and
prints, per operation, requests/s and latency p50/p99 at a fixed client concurrency.
Usage: python reference/benchmarks/bench_api.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from dualstore_reference.launcher import start_reference


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _run(
    name: str, count: int, concurrency: int, call: Callable[[int], Awaitable[httpx.Response]]
) -> None:
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            response = await call(i)
            latencies.append(time.perf_counter() - started)
            failures += response.status_code >= 300

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    p50 = statistics.median(latencies) * 1000
    p99 = _percentile(latencies, 0.99) * 1000
    print(
        f"{name:<22} {count / elapsed:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
        f"   failures {failures}"
    )


async def bench(url: str, count: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        ids: list[str] = []

        async def post(i: int) -> httpx.Response:
            response = await client.post(
                "/v1/session_messages",
                json={"text": f"message {i} about topic {i % 37} {uuid.uuid4().hex[:6]}",
                      "metadata": {"i": i, "topic": i % 37}},
            )  # fmt: skip
            if response.status_code == 201:
                ids.append(response.json()["id"])
            return response

        await _run("POST /{collection}", count, concurrency, post)
        await _run(
            "GET /{collection}/{id}", count, concurrency,
            lambda i: client.get(f"/v1/session_messages/{ids[i % len(ids)]}"),
        )  # fmt: skip
        await _run(
            "GET recent (limit 50)", count, concurrency,
            lambda i: client.get("/v1/session_messages/recent"),
        )  # fmt: skip
        await _run(
            "GET search (k 8)", count, concurrency,
            lambda i: client.get("/v1/session_messages/search", params={"q": f"topic {i % 37}"}),
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with start_reference(env={"RATE_LIMIT_BURST": "0"}, workers=2) as server:
        print(f"reference at {server.url}, 2 workers, embedded SecantusDB; "
              f"{args.requests} requests per operation, concurrency {args.concurrency}")
        asyncio.run(bench(server.url, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
