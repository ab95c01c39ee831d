# SPDX-License-Identifier: GPL-3.0-or-later
"""The harness's client-side pacer stays under the deployment's declared rate limit."""

from __future__ import annotations

import asyncio

import httpx
from dualstore_conformance.pacing import UNPACED, PacedTransport, RequestPacer
from dualstore_spec.facts import RateLimit


class FakeClock:
    """Monotonic time that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_never_exceeds_its_share_of_the_declared_bucket() -> None:
    clock = FakeClock()
    pacer = RequestPacer(RateLimit(requests_per_second=10, burst=20), share=0.5,
                         clock=clock, sleep=clock.sleep)

    async def send(count: int) -> list[float]:
        stamps = []
        for _ in range(count):
            await pacer.acquire()
            stamps.append(clock.now)
        return stamps

    stamps = asyncio.run(send(40))
    # a bucket of 10 (half of 20) goes at once, then 5 per second (half of 10)
    assert stamps[9] == 100.0 and stamps[10] > 100.0
    for start in range(len(stamps)):
        window = [t for t in stamps[start:] if t - stamps[start] < 1.0]
        assert len(window) <= 10 + 5
    assert abs((stamps[-1] - stamps[10]) - 29 / 5) < 1e-6


def test_pacer_without_a_declared_limit_never_waits() -> None:
    clock = FakeClock()
    pacer = RequestPacer(None, clock=clock, sleep=clock.sleep)

    async def send() -> None:
        for _ in range(1000):
            await pacer.acquire()

    asyncio.run(send())
    assert clock.now == 100.0 and pacer.sent == 1000


def test_drain_empties_the_bucket() -> None:
    clock = FakeClock()
    pacer = RequestPacer(RateLimit(requests_per_second=4, burst=8), share=1.0,
                         clock=clock, sleep=clock.sleep)
    pacer.drain()
    asyncio.run(pacer.acquire())
    assert clock.now == 100.25


def test_transport_paces_except_requests_marked_unpaced() -> None:
    clock = FakeClock()
    pacer = RequestPacer(RateLimit(requests_per_second=1, burst=1), share=1.0,
                         clock=clock, sleep=clock.sleep)
    transport = PacedTransport(httpx.MockTransport(lambda request: httpx.Response(200)), pacer)

    async def send() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/a")
            await client.get("/b")  # waits one second
            await client.get("/c", extensions={UNPACED: True})  # does not wait

    asyncio.run(send())
    assert clock.now == 101.0 and pacer.sent == 2
