# SPDX-License-Identifier: GPL-3.0-or-later
"""Keeps the harness's own requests under the deployment's declared rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from dualstore_spec.facts import RateLimit

UNPACED = "dualstore_unpaced"
"""Request extension: send without waiting for the pacer (checks that provoke 429 on purpose)."""

SHARE = 0.7
"""Fraction of the declared rate and burst the harness uses, leaving room for the property
layer's own requests and for buckets that start less than full."""


class RequestPacer:
    """A token bucket on the client side: a fraction of the deployment's declared bucket."""

    def __init__(
        self,
        rate: RateLimit | None,
        share: float = SHARE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = None if rate is None else rate.requests_per_second * share
        self.capacity = 0.0 if rate is None else max(1.0, rate.burst * share)
        self.sent = 0
        """Requests let through so far."""
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        if self.rate is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        """Wait until one request may be sent (at once when no rate limit is declared)."""
        if self.rate is None:
            self.sent += 1
            return
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0 - 1e-9:  # rounding must not leave it a hair short
                    self._tokens = max(0.0, self._tokens - 1.0)
                    self.sent += 1
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)

    def drain(self) -> None:
        """Empty the bucket (after a check emptied the server's on purpose)."""
        self._refill()
        self._tokens = 0.0


class PacedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that waits for the pacer before each request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, pacer: RequestPacer) -> None:
        self.inner = inner
        self.pacer = pacer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Pace, then send."""
        if not request.extensions.get(UNPACED):
            await self.pacer.acquire()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()
