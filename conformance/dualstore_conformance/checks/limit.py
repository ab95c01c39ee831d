# SPDX-License-Identifier: GPL-3.0-or-later
"""LIMIT-* checks: limit/k ranges, the 64 KiB body cap, oversized filters, 429 rate limiting."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from dualstore_conformance import burst, judging
from dualstore_conformance import client as http
from dualstore_conformance.checks.http import expect_problem, fail_response, probe_problem
from dualstore_conformance.context import CONFORMANCE_KEY, CheckContext
from dualstore_conformance.pacing import UNPACED
from dualstore_conformance.registry import check

MAX_BURST_REQUESTS = 2000
"""Never send more than this many requests looking for a 429 (good-guest bound)."""


async def _refused(ctx: CheckContext, operation: str, name: str, values: tuple[str, ...],
                   others: dict[str, str] | None = None) -> None:
    """Each value of the query parameter name on operation (``recent`` or ``search``, with
    the others parameters) gets 400 invalid-request."""
    path = f"{ctx.collection_path}/{operation}"
    for value in values:
        await probe_problem(ctx, "GET", path, 400, "invalid-request",
                            f"{operation} with {name}={value} was not 400",
                            params={**(others or {}), name: value})


@check("limit-page-limit-range",
       "Limits: recent with limit 0, 201 or not an integer gets 400 invalid-request",
       ["LIMIT-003", "READ-002"])
async def page_limit(ctx: CheckContext) -> None:
    top = ctx.limit("recent_limit.max")
    await _refused(ctx, "recent", "limit", (str(top + 1), "0", "-1", "ten", "1.5"))


@check("limit-search-k-range",
       "Limits: search with k 0, 51 or not an integer gets 400 invalid-request",
       ["LIMIT-003", "SEARCH-002"])
async def search_k(ctx: CheckContext) -> None:
    top = ctx.limit("search_k.max")
    await _refused(ctx, "search", "k", (str(top + 1), "0", "many"), {"q": "conformance"})


def body_of_size(size: int, ctx: CheckContext) -> bytes:
    """A valid-looking JSON document body of exactly size bytes."""
    skeleton = {"text": "", "metadata": {CONFORMANCE_KEY: ctx.tag()}}
    empty = len(json.dumps(skeleton, separators=(",", ":")).encode())
    skeleton["text"] = "x" * (size - empty)
    raw = json.dumps(skeleton, separators=(",", ":")).encode()
    assert len(raw) == size
    return raw


async def probe_over_cap(ctx: CheckContext, cap: int, message: str) -> None:
    """POST a valid-looking body of cap + 1 bytes: it must get 413 payload-too-large."""
    await probe_problem(ctx, "POST", ctx.collection_path, 413, "payload-too-large", message,
                        body=body_of_size(cap + 1, ctx),
                        headers={"Content-Type": "application/json"})


@check("limit-body-413",
       "Limits: a body of 64 KiB + 1 byte gets 413 payload-too-large",
       ["LIMIT-001", "HTTP-001"])
async def body_too_large(ctx: CheckContext) -> None:
    cap = ctx.limit("max_body_bytes")
    await probe_over_cap(ctx, cap, f"a {cap + 1}-byte body was not 413 payload-too-large")


def _long_filter(cap: int, over: bool) -> str:
    """An encoded filter just over (or just within) cap characters, within every other bound."""
    terms: dict[str, Any] = {}
    value = http.encode_filter(terms)
    n = 0
    while True:
        candidate = {**terms, f"metadata.c{n}": "x" * 200}
        encoded = http.encode_filter(candidate)
        if not over and len(encoded) > cap:
            return value
        terms, value, n = candidate, encoded, n + 1
        if over and len(value) > cap:
            return value


@check("limit-filter-oversized-400",
       "Limits: a filter over the published encoded length gets 400 invalid-filter",
       ["FILTER-004", "HTTP-001"])
async def filter_oversized(ctx: CheckContext) -> None:
    cap = ctx.limit("filter.max_encoded_length")
    # A few conditions with strings of 200 characters (scalar strings are capped
    # at 1024): only the encoded length is over its bound.
    value = _long_filter(cap, over=True)
    within = _long_filter(cap, over=False)
    path = f"{ctx.collection_path}/recent"
    response = await ctx.request("GET", path, params={"filter": within})
    if len(within) <= cap and response.status_code != 200:
        ctx.fail(
            "a filter just within the encoded-length bound was rejected",
            expected=f"200 for a {len(within)}-character filter (bound {cap})",
            received=f"{response.status_code}: {response.text[:200]}",
            evidence=ctx.evidence(response),
        )
    response = await ctx.request("GET", path, params={"filter": value})
    expect_problem(
        ctx,
        response,
        400,
        "invalid-filter",
        f"a {len(value)}-character filter was not 400 invalid-filter",
        ctx.curl("GET", path, params={"filter": value[:64] + "..."}),
    )


async def _concurrent_burst(ctx: CheckContext, path: str,
                            budget: int) -> tuple[httpx.Response | None, int]:
    """Up to ``budget`` GETs, 25 at a time, until one is answered 429; (that 429, sent)."""
    sent = 0
    while sent < budget:
        batch = min(25, budget - sent)
        responses = await asyncio.gather(
            *(ctx.request("GET", path, retry_rate_limited=False,
                          extensions={UNPACED: True}) for _ in range(batch)),
            return_exceptions=True,
        )
        sent += batch
        for response in responses:
            if isinstance(response, httpx.Response) and response.status_code == 429:
                return response, sent
    return None, sent


async def provoke_rate_limit(ctx: CheckContext) -> tuple[httpx.Response, str]:
    """Rapid requests until one gets 429 (with its path); skips when no rate limit is
    declared, could-not-observe when the harness never exceeded the declared bucket."""
    declared = ctx.limits["rate_limit"]
    if declared is None:
        ctx.skip("the deployment profile declares no rate limit (--rate-limit none)",
                 why="not-configured")
    burst_size = int(declared["burst"])
    # buckets may be per worker process (and refill meanwhile): allow several bursts
    budget = min(MAX_BURST_REQUESTS, burst_size * 6 + 100)
    path = "/v1/collections"
    limited: httpx.Response | None = None
    # Pipelined over a few raw connections: hundreds of requests a second even on a loaded
    # machine, so the absence of a 429 says something about the target, not the harness.
    headers = {**ctx.auth_headers(), "User-Agent": "dualstore-conformance"}
    try:
        fired = await burst.send(ctx.target.url, path, headers, budget)
    finally:
        if ctx.pacer is not None:
            ctx.pacer.drain()  # the target's bucket is empty now: start ours empty too
    sent = len(fired.answers)
    elapsed = fired.elapsed_s
    for answer in fired.answers:
        if answer.status == 429:
            limited = httpx.Response(429, headers=answer.headers, content=answer.body,
                                     request=httpx.Request("GET", ctx.url(path)))
            break
    if limited is None and sent < budget:
        # The target does not take pipelined requests (it closes after each answer): send
        # the rest concurrently, one request per connection slot, as any client would.
        started = time.monotonic()
        limited, more = await _concurrent_burst(ctx, path, budget - sent)
        sent += more
        elapsed += time.monotonic() - started
    if limited is None and burst_size * 6 + 100 > budget:
        ctx.unobserved(
            f"no 429 after {sent} rapid requests, but the declared burst ({burst_size}) is "
            f"too large for the harness to exhaust within its {MAX_BURST_REQUESTS}-request "
            "budget")
    admitted = burst_size + float(declared["requests_per_second"]) * elapsed
    if limited is None and sent <= admitted:
        # One bucket of the declared size admits all of these: the harness (a slow or loaded
        # client) never went over the limit, so the absence of a 429 proves nothing.
        ctx.unobserved(
            f"no 429, but the harness sent only {sent} requests in {elapsed:.1f} s, which a "
            f"bucket of {burst_size} refilled at {declared['requests_per_second']}/s admits "
            f"({admitted:.0f}): the limit was never exceeded")
    if limited is None:
        ctx.fail(
            "no 429 although the deployment declares a rate limit",
            expected=(f"429 rate-limited within {budget} rapid requests (the declared burst "
                      f"{burst_size} at {declared['requests_per_second']}/s, allowing per-worker "
                      "buckets; declare the deployment's real limit with --rate-limit, or "
                      "--rate-limit none when it has none)"),
            received=f"{sent} requests, none refused",
            reproduce=ctx.curl("GET", path),
        )
    return limited, path


@check("limit-rate-limited-429",
       "Limits: over the rate limit: 429 with Retry-After, RateLimit and RateLimit-Policy",
       ["LIMIT-004", "HTTP-001"], exclusive=True, timeout_s=60.0)
async def rate_limited(ctx: CheckContext) -> None:
    limited, path = await provoke_rate_limit(ctx)
    try:
        expect_problem(
            ctx,
            limited,
            429,
            "rate-limited",
            "429 is not a rate-limited problem",
            ctx.curl("GET", path),
        )
        problems = judging.retry_after_errors(limited.headers.get("retry-after"))
        for name in ("RateLimit", "RateLimit-Policy"):
            if name.lower() not in limited.headers:
                problems.append(f"{name} missing")
        if problems:
            fail_response(ctx, limited, "a 429 lacks the headers a client needs to back off",
                          "Retry-After (whole seconds >= 1), RateLimit, RateLimit-Policy",
                          "; ".join(problems), ctx.curl("GET", path))
    finally:
        # Leave the bucket refilled for whoever comes next.
        wait = limited.headers.get("retry-after", "1")
        await asyncio.sleep(min(5.0, float(wait) if wait.isdigit() else 1.0))
