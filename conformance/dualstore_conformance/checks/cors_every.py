# SPDX-License-Identifier: GPL-3.0-or-later
"""CORS-005: an allowed origin gets the CORS headers on every answer, errors and stream too."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import httpx

from dualstore_conformance.checks.cors import allowed_origin
from dualstore_conformance.checks.limit import body_of_size
from dualstore_conformance.context import CheckContext
from dualstore_conformance.limits import stream_cap
from dualstore_conformance.registry import check
from dualstore_conformance.streams import StreamReader

CORS_HEADERS = ("access-control-allow-origin", "access-control-expose-headers")


def missing_cors(headers: httpx.Headers, origin: str) -> list[str]:
    """What an answer to an allowed origin lacks: ACAO echoing it, Expose-Headers present."""
    problems = []
    if headers.get("access-control-allow-origin") != origin:
        problems.append(f"Access-Control-Allow-Origin "
                        f"{headers.get('access-control-allow-origin')!r}")
    if not headers.get("access-control-expose-headers"):
        problems.append("no Access-Control-Expose-Headers")
    return problems


@check("cors-every-response",
       "CORS: errors (400/401/404/405/413/415/422/429) and the stream's 200 carry the CORS "
       "headers for an allowed origin",
       ["CORS-005"], exclusive=True, timeout_s=60.0)
async def every_response(ctx: CheckContext) -> None:
    origin = allowed_origin(ctx)
    headers = {"Origin": origin}
    base = ctx.collection_path
    cap = ctx.limit("max_body_bytes")
    oversized = body_of_size(cap + 1, ctx)
    probes: list[tuple[int, str, str, dict[str, Any]]] = [
        (400, "GET", f"{base}/recent", {"params": {"limit": "0"}}),
        (404, "GET", f"{base}/{uuid.uuid4().hex}", {}),
        (405, "DELETE", base, {}),
        (413, "POST", base, {"content": oversized,
                             "headers": {**headers, "Content-Type": "application/json"}}),
        (415, "POST", base, {"content": b"text", "headers": {**headers,
                                                              "Content-Type": "text/plain"}}),
        (422, "POST", base, {"json": {"text": ""}}),
    ]
    failures: list[str] = []
    seen: list[int] = []
    for status, method, path, kwargs in probes:
        sent = {"headers": headers, **kwargs}
        response = await ctx.request(method, path, **sent)
        seen.append(response.status_code)
        if response.status_code == status:
            failures += [f"{status}: {p}" for p in missing_cors(response.headers, origin)]
    if ctx.target.token:
        response = await ctx.request("GET", f"{base}/recent", auth=False, headers=headers)
        seen.append(response.status_code)
        if response.status_code == 401:
            failures += [f"401: {p}" for p in missing_cors(response.headers, origin)]
    failures += await _stream_answers(ctx, origin, seen)
    if failures:
        ctx.fail(
            "answers to an allowed origin lack the CORS headers (a browser sees an opaque "
            "network error instead)",
            expected=f"Access-Control-Allow-Origin: {origin} and Access-Control-Expose-Headers "
            "on every answer",
            received="; ".join(failures),
            evidence={"statuses_seen": seen},
            reproduce=ctx.curl("GET", f"{base}/{uuid.uuid4().hex}", headers=headers),
        )
    if not {400, 404, 429}.issubset(seen) or 200 not in seen:
        ctx.unobserved(f"the error answers to judge were not all provoked (statuses {seen})")


async def _stream_answers(ctx: CheckContext, origin: str, seen: list[int]) -> list[str]:
    """The stream's 200, then streams opened up to the declared cap until one gets 429."""
    failures: list[str] = []
    params = {"filter": ctx.own_filter()}
    async with contextlib.AsyncExitStack() as stack:
        for index in range(stream_cap(ctx.limits) + 1):
            # the first open waits out a rate limiter (a 200 to judge); the rest look for 429
            reader: StreamReader = ctx.open_stream(params, {"Origin": origin},
                                                   retry_rate_limited=index == 0)
            await stack.enter_async_context(reader)
            first_200 = reader.status == 200 and 200 not in seen
            seen.append(reader.status)
            if first_200 or reader.status == 429:
                failures += [f"stream {reader.status}: {p}"
                             for p in missing_cors(reader.headers, origin)]
            if reader.status != 200:
                break
    return failures
