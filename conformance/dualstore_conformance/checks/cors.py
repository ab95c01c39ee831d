# SPDX-License-Identifier: GPL-3.0-or-later
"""CORS-* checks: allowed origin echoed, disallowed origin ignored, preflight, exposed headers."""

from __future__ import annotations

import os
from collections.abc import Sequence

import httpx

from dualstore_conformance.checks.http import fail_response
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


async def recent_from(ctx: CheckContext, origin: str) -> tuple[httpx.Response, str]:
    """GET one item of recent with an Origin header: the answer and its curl."""
    path, headers, params = f"{ctx.collection_path}/recent", {"Origin": origin}, {"limit": "1"}
    response = await ctx.request("GET", path, headers=headers, params=params)
    return response, ctx.curl("GET", path, headers=headers, params=params)


async def preflight_from(ctx: CheckContext, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    """An unauthenticated OPTIONS preflight of the collection: the answer and its curl."""
    response = await ctx.request("OPTIONS", ctx.collection_path, headers=headers, auth=False)
    return response, ctx.curl("OPTIONS", ctx.collection_path, headers=headers)


def preflight_errors(headers: httpx.Headers, status: int, origin: str,
                     request_headers: Sequence[str]) -> list[str]:
    """What makes an allowed origin's preflight answer fall short of CORS-003."""
    problems = []
    if not 200 <= status < 300:
        problems.append(f"status {status}")
    if headers.get("access-control-allow-origin") != origin:
        problems.append(
            f"Access-Control-Allow-Origin {headers.get('access-control-allow-origin')!r}")
    methods = _listed(headers.get("access-control-allow-methods"))
    if "post" not in methods and "*" not in methods:
        problems.append(
            f"Access-Control-Allow-Methods {headers.get('access-control-allow-methods')!r}")
    allowed_headers = _listed(headers.get("access-control-allow-headers"))
    missing = [h for h in request_headers if h not in allowed_headers]
    if missing and "*" not in allowed_headers:
        problems.append(f"Access-Control-Allow-Headers lacks {missing}")
    return problems


@check("cors-allowed-origin",
       "CORS: a request from an allowed origin gets Access-Control-Allow-Origin echoing it",
       ["CORS-001"])
async def allowed(ctx: CheckContext) -> None:
    origin = allowed_origin(ctx)
    response, reproduce = await recent_from(ctx, origin)
    got = response.headers.get("access-control-allow-origin")
    if got != origin:
        fail_response(ctx, response,
                      "an allowed origin was not echoed in Access-Control-Allow-Origin",
                      f"Access-Control-Allow-Origin: {origin}", f"{got!r}", reproduce)


@check("cors-disallowed-origin",
       "CORS: an origin not on the allow-list gets no Access-Control-Allow-Origin",
       ["CORS-002"])
async def disallowed(ctx: CheckContext) -> None:
    response, reproduce = await recent_from(ctx, DISALLOWED_ORIGIN)
    got = response.headers.get("access-control-allow-origin")
    if got is not None:
        fail_response(ctx, response,
                      "a disallowed origin got an Access-Control-Allow-Origin header",
                      "no Access-Control-Allow-Origin", f"Access-Control-Allow-Origin: {got}",
                      reproduce)
    response, reproduce = await preflight_from(
        ctx, {"Origin": DISALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    got = response.headers.get("access-control-allow-origin")
    if got is not None:
        fail_response(ctx, response,
                      "a preflight from a disallowed origin got Access-Control-Allow-Origin",
                      "no Access-Control-Allow-Origin", f"{got}", reproduce)


@check("cors-preflight",
       "CORS: an allowed origin's preflight succeeds without credentials, allows the headers",
       ["CORS-003"])
async def preflight(ctx: CheckContext) -> None:
    origin = allowed_origin(ctx)
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(REQUEST_HEADERS),
    }
    response, reproduce = await preflight_from(ctx, headers)
    problems = preflight_errors(response.headers, response.status_code, origin, REQUEST_HEADERS)
    if problems:
        fail_response(ctx, response,
                      "a preflight from an allowed origin was not answered as the spec says",
                      f"2xx, Allow-Origin {origin}, POST allowed, headers {list(REQUEST_HEADERS)}",
                      "; ".join(problems), reproduce)


@check("cors-exposed-headers",
       "CORS: Location, Retry-After, RateLimit and RateLimit-Policy are exposed",
       ["CORS-004"])
async def exposed(ctx: CheckContext) -> None:
    response, reproduce = await recent_from(ctx, allowed_origin(ctx))
    exposed_headers = _listed(response.headers.get("access-control-expose-headers"))
    missing = [h for h in EXPOSED_HEADERS if h not in exposed_headers]
    if missing:
        fail_response(ctx, response, "headers a browser client needs are not exposed",
                      f"Access-Control-Expose-Headers with {list(EXPOSED_HEADERS)}",
                      f"{response.headers.get('access-control-expose-headers')!r}, "
                      f"missing {missing}", reproduce)
