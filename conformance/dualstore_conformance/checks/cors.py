# SPDX-License-Identifier: GPL-3.0-or-later
"""CORS-* checks: allowed origin echoed, disallowed origin ignored, preflight, exposed headers."""

from __future__ import annotations

import os

from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

CORS_ORIGIN_ENV = "DUALSTORE_CORS_ORIGIN"
"""An origin on the target's allow-list; without it the allowed-origin checks are skipped."""

DISALLOWED_ORIGIN = "https://conformance-disallowed.invalid"
REQUEST_HEADERS = ("authorization", "content-type", "last-event-id", "idempotency-key")
EXPOSED_HEADERS = ("location", "retry-after", "ratelimit", "ratelimit-policy")


def allowed_origin(ctx: CheckContext) -> str:
    """The allowed origin from the target (``cors_origin``) or the environment; skip if unknown."""
    origin = ctx.target.cors_origin or os.environ.get(CORS_ORIGIN_ENV)
    if not origin:
        ctx.skip(
            f"no allowed origin known: pass --cors-origin (or set {CORS_ORIGIN_ENV}) to an "
            "origin on the target's CORS allow-list",
            why="not-configured",
        )
    return str(origin).split(",")[0].strip()


def _listed(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


@check(
    id="cors-allowed-origin",
    title="CORS: a request from an allowed origin gets Access-Control-Allow-Origin echoing it",
    rules=["CORS-001"],
)
async def allowed(ctx: CheckContext) -> None:
    origin = allowed_origin(ctx)
    path = f"{ctx.collection_path}/recent"
    headers = {"Origin": origin}
    response = await ctx.request("GET", path, headers=headers, params={"limit": "1"})
    got = response.headers.get("access-control-allow-origin")
    if got != origin:
        ctx.fail(
            "an allowed origin was not echoed in Access-Control-Allow-Origin",
            expected=f"Access-Control-Allow-Origin: {origin}",
            received=f"{got!r}",
            evidence=ctx.evidence(response),
            reproduce=ctx.curl("GET", path, headers=headers, params={"limit": "1"}),
        )


@check(
    id="cors-disallowed-origin",
    title="CORS: an origin not on the allow-list gets no Access-Control-Allow-Origin",
    rules=["CORS-002"],
)
async def disallowed(ctx: CheckContext) -> None:
    path = f"{ctx.collection_path}/recent"
    headers = {"Origin": DISALLOWED_ORIGIN}
    response = await ctx.request("GET", path, headers=headers, params={"limit": "1"})
    got = response.headers.get("access-control-allow-origin")
    if got is not None:
        ctx.fail(
            "a disallowed origin got an Access-Control-Allow-Origin header",
            expected="no Access-Control-Allow-Origin",
            received=f"Access-Control-Allow-Origin: {got}",
            evidence=ctx.evidence(response),
            reproduce=ctx.curl("GET", path, headers=headers, params={"limit": "1"}),
        )
    preflight = {"Origin": DISALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}
    response = await ctx.request("OPTIONS", ctx.collection_path, headers=preflight, auth=False)
    got = response.headers.get("access-control-allow-origin")
    if got is not None:
        ctx.fail(
            "a preflight from a disallowed origin got Access-Control-Allow-Origin",
            expected="no Access-Control-Allow-Origin",
            received=f"{got}",
            evidence=ctx.evidence(response),
            reproduce=ctx.curl("OPTIONS", ctx.collection_path, headers=preflight),
        )


@check(
    id="cors-preflight",
    title="CORS: an allowed origin's preflight succeeds without credentials, allows the headers",
    rules=["CORS-003"],
)
async def preflight(ctx: CheckContext) -> None:
    origin = allowed_origin(ctx)
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(REQUEST_HEADERS),
    }
    response = await ctx.request("OPTIONS", ctx.collection_path, headers=headers, auth=False)
    reproduce = ctx.curl("OPTIONS", ctx.collection_path, headers=headers)
    problems = []
    if not 200 <= response.status_code < 300:
        problems.append(f"status {response.status_code}")
    if response.headers.get("access-control-allow-origin") != origin:
        problems.append(
            f"Access-Control-Allow-Origin {response.headers.get('access-control-allow-origin')!r}"
        )
    methods = _listed(response.headers.get("access-control-allow-methods"))
    if "post" not in methods and "*" not in methods:
        problems.append(
            f"Access-Control-Allow-Methods {response.headers.get('access-control-allow-methods')!r}"
        )
    allowed_headers = _listed(response.headers.get("access-control-allow-headers"))
    missing = [h for h in REQUEST_HEADERS if h not in allowed_headers]
    if missing and "*" not in allowed_headers:
        problems.append(f"Access-Control-Allow-Headers lacks {missing}")
    if problems:
        ctx.fail(
            "a preflight from an allowed origin was not answered as the spec says",
            expected=f"2xx, Allow-Origin {origin}, POST allowed, headers {list(REQUEST_HEADERS)}",
            received="; ".join(problems),
            evidence=ctx.evidence(response),
            reproduce=reproduce,
        )


@check(
    id="cors-exposed-headers",
    title="CORS: Location, Retry-After, RateLimit and RateLimit-Policy are exposed",
    rules=["CORS-004"],
)
async def exposed(ctx: CheckContext) -> None:
    origin = allowed_origin(ctx)
    path = f"{ctx.collection_path}/recent"
    headers = {"Origin": origin}
    response = await ctx.request("GET", path, headers=headers, params={"limit": "1"})
    exposed_headers = _listed(response.headers.get("access-control-expose-headers"))
    missing = [h for h in EXPOSED_HEADERS if h not in exposed_headers]
    if missing:
        ctx.fail(
            "headers a browser client needs are not exposed",
            expected=f"Access-Control-Expose-Headers with {list(EXPOSED_HEADERS)}",
            received=f"{response.headers.get('access-control-expose-headers')!r}, "
            f"missing {missing}",
            evidence=ctx.evidence(response),
            reproduce=ctx.curl("GET", path, headers=headers, params={"limit": "1"}),
        )
