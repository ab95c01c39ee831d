# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-021 (MAY): HEAD on a GET path is answered like the GET without content, or 405.

Both answers are legal, per path: a server may serve HEAD on some GET paths and refuse it on
others. Anything else (another status than the GET's, another media type, a 405 that is not
a method-not-allowed problem) breaks the rule.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
from dualstore_spec import facts

from dualstore_conformance.checks.http import problem_slug
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check


def head_errors(get_status: int, get_type: str | None, head_status: int,
                head_type: str | None, head_slug: str | None, head_body: bytes) -> list[str]:
    """What is wrong with a HEAD answer given the GET's (empty: served or refused legally)."""
    if head_status == 405:
        return [] if head_slug == "method-not-allowed" or not head_body else [
            f"405 with problem type {head_slug!r}, not method-not-allowed"]
    errors = []
    if head_status != get_status:
        errors.append(f"HEAD answered {head_status}, the GET {get_status}")
    if (head_type or "").split(";")[0].strip().lower() != (get_type or "").split(";")[
            0].strip().lower():
        errors.append(f"HEAD Content-Type {head_type!r}, the GET's {get_type!r}")
    if head_body:
        errors.append(f"HEAD answer carries {len(head_body)} bytes of content")
    return errors


@check("http-head",
       "HEAD on a GET path: the GET's status and headers without content, or 405",
       ["HTTP-021"])
async def head(ctx: CheckContext) -> None:
    doc_id = (await ctx.insert())["id"]
    paths: list[tuple[str, dict[str, str]]] = [
        ("/v1/health", {}),
        ("/v1/collections", {}),
        (f"{ctx.collection_path}/recent", {"filter": ctx.own_filter()}),
        (f"{ctx.collection_path}/recent", {"limit": "0"}),
        (f"{ctx.collection_path}/search", {"q": "head", "filter": ctx.own_filter()}),
        (f"{ctx.collection_path}/{doc_id}", {}),
        (f"{ctx.collection_path}/{uuid.uuid4().hex}", {}),
    ]
    for path, params in paths:
        got = await ctx.request("GET", path, params=params)
        answer = await ctx.request("HEAD", path, params=params)
        errors = head_errors(got.status_code, got.headers.get("content-type"),
                             answer.status_code, answer.headers.get("content-type"),
                             problem_slug(answer), answer.content)
        if errors:
            ctx.fail(
                f"HEAD {path} was neither answered like the GET nor refused with 405",
                expected=f"{got.status_code} with the GET's headers and no content, or 405 "
                "method-not-allowed",
                received="; ".join(errors),
                evidence={"get": ctx.evidence(got), "head": ctx.evidence(answer)},
                reproduce=ctx.curl("HEAD", path, params=params),
            )
    # The stream: HEAD opens no stream, so the whole answer arrives within the open budget.
    stream = f"{ctx.collection_path}/stream"
    within = ctx.scaled(facts.current().open_within_seconds) + ctx.scaled(2.0)
    try:
        answer = await asyncio.wait_for(
            ctx.request("HEAD", stream, params={"filter": ctx.own_filter()}), within)
    except (TimeoutError, httpx.ReadTimeout):
        ctx.fail("HEAD on the stream did not complete: it opened a stream",
                 expected="200 text/event-stream headers without content, or 405, at once",
                 received=f"no complete answer within {within:.1f} s",
                 reproduce=ctx.curl("HEAD", stream))
    errors = head_errors(200, "text/event-stream", answer.status_code,
                         answer.headers.get("content-type"), problem_slug(answer),
                         answer.content)
    if errors:
        ctx.fail("HEAD on the stream was neither answered like the GET nor refused with 405",
                 expected="200 text/event-stream without content, or 405 method-not-allowed",
                 received="; ".join(errors), evidence=ctx.evidence(answer),
                 reproduce=ctx.curl("HEAD", stream))
