# SPDX-License-Identifier: GPL-3.0-or-later
"""LIMIT-009: a 429 rate-limited says what the client has left (RateLimit r=0, t) and the
policy it ran into (RateLimit-Policy q = burst, w = refill seconds), per the declared limit."""

from __future__ import annotations

import asyncio

from dualstore_conformance import judging
from dualstore_conformance.checks.http import problem_slug
from dualstore_conformance.checks.limit import provoke_rate_limit
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check


@check("limit-ratelimit-fields",
       "Limits: a 429 rate-limited carries RateLimit r=0;t>=1 and RateLimit-Policy with the "
       "declared burst and refill time",
       ["LIMIT-009"], exclusive=True, timeout_s=60.0)
async def ratelimit_fields(ctx: CheckContext) -> None:
    limited, path = await provoke_rate_limit(ctx)
    try:
        if problem_slug(limited) != "rate-limited":
            ctx.unobserved(f"the 429 is {problem_slug(limited)!r}, not rate-limited (judged "
                           "by limit-rate-limited-429): no rate-limited answer to read")
        declared = ctx.limits["rate_limit"]
        errors = judging.ratelimit_errors(
            limited.headers.get("ratelimit"), limited.headers.get("ratelimit-policy"),
            int(declared["burst"]), float(declared["requests_per_second"]))
        if errors:
            ctx.fail(
                "a 429 rate-limited misstates the quota or the policy",
                expected="RateLimit r=0 and t the seconds (>= 1) until the next token; "
                "RateLimit-Policy q the burst and w the seconds an empty bucket takes to refill",
                received="; ".join(errors),
                evidence=ctx.evidence(limited),
                reproduce=ctx.curl("GET", path),
            )
    finally:
        # Leave the bucket refilled for whoever comes next.
        wait = limited.headers.get("retry-after", "1")
        await asyncio.sleep(min(5.0, float(wait) if wait.isdigit() else 1.0))
