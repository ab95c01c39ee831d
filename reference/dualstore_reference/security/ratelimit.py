# SPDX-License-Identifier: GPL-3.0-or-later
"""Token-bucket rate limiting per client IP and per bearer token.

Buckets live in each worker process (no shared state): with N workers behind one socket
a client can get up to N times the configured rate in the worst case. The 429 answer
carries ``Retry-After`` and the IETF RateLimit fields (``RateLimit-Policy``/``RateLimit``).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import falcon.asgi

from ..problems import Problem
from .auth import OPEN_PATHS, request_token
from .client_ip import Network, client_ip

POLICY_NAME = "default"
MAX_BUCKETS = 100_000
"""Buckets kept per process (least recently used are dropped)."""


@dataclass
class Bucket:
    """Tokens available now and when they were last refilled."""

    tokens: float
    updated: float


class TokenBuckets:
    """Buckets keyed by client identity: rate tokens per second, at most burst."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> tuple[bool, float, float]:
        """Take one token: (allowed, tokens left, seconds until one token is available)."""
        now = time.monotonic() if now is None else now
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = Bucket(float(self.burst), now)
            self.buckets[key] = bucket
            if len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True, bucket.tokens, 0.0
        return False, bucket.tokens, (1 - bucket.tokens) / self.rate


class RateLimitMiddleware:
    """429 ``rate-limited`` when the client's IP bucket or token bucket is empty."""

    def __init__(self, rate: float, burst: int, proxies: tuple[Network, ...]) -> None:
        self.rate = rate
        self.burst = burst
        self.by_ip = TokenBuckets(rate, burst)
        self.by_token = TokenBuckets(rate, burst)
        self.proxies = proxies

    def policy(self) -> str:
        """RateLimit-Policy: quota ``burst`` per window of ``burst / rate`` seconds."""
        window = max(1, math.ceil(self.burst / self.rate))
        return f'"{POLICY_NAME}";q={self.burst};w={window}'

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if req.method == "OPTIONS" or req.path in OPEN_PATHS:
            return
        checks = [("ip:" + client_ip(req, self.proxies), self.by_ip)]
        token = request_token(req)
        if token is not None:
            hashed = hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]
            checks.append(("token:" + hashed, self.by_token))
        for key, buckets in checks:
            allowed, _, wait = buckets.take(key)
            if not allowed:
                retry_after = max(1, math.ceil(wait))
                raise Problem(
                    "rate-limited",
                    f"Rate limit of {self.rate:g} requests/s (burst {self.burst}) exceeded; "
                    f"retry in {retry_after} s.",
                    headers={
                        "Retry-After": str(retry_after),
                        "RateLimit-Policy": self.policy(),
                        "RateLimit": f'"{POLICY_NAME}";r=0;t={retry_after}',
                    },
                )
