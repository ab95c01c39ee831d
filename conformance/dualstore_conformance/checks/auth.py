# SPDX-License-Identifier: GPL-3.0-or-later
"""AUTH-* checks: 401 + WWW-Authenticate on every operation, Bearer header and access_token."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from dualstore_conformance import judging
from dualstore_conformance.checks.http import fail_response, problem_slug
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import fail_stream


def _operations(ctx: CheckContext) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx kwargs) for every operation that requires auth, except the stream."""
    body = ctx.tagged_body(f"conformance {ctx.check_id} run {ctx.run_id}")
    base = ctx.collection_path
    return [
        ("GET", "/v1/collections", {}),
        ("GET", f"{base}/recent", {"params": {"limit": "1"}}),
        ("GET", f"{base}/search", {"params": {"q": "conformance", "k": "1"}}),
        ("GET", f"{base}/{uuid.uuid4().hex}", {}),
        ("POST", base, {"json": body}),
    ]


async def unlimited(ctx: CheckContext, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Send until the answer is not a 429: a rate-limited request says nothing about auth.

    Requests without a token count against the per-IP bucket, which concurrently running
    checks (and the property layer) also spend; give up with a skip after a bounded wait.
    """
    deadline = time.monotonic() + ctx.scaled(15.0)
    while True:
        response = await ctx.request(method, path, **kwargs)
        if response.status_code != 429:
            return response
        if time.monotonic() > deadline:
            ctx.unobserved(f"{method} {path} was rate limited (429) throughout; auth could "
                           "not be judged")
        await asyncio.sleep(1.0)


async def auth_required(ctx: CheckContext) -> bool:
    """Whether the target refuses an unauthenticated request; skip when it cannot be judged."""
    response = await unlimited(
        ctx, "GET", f"{ctx.collection_path}/recent", auth=False, params={"limit": "1"}
    )
    if response.status_code == 401:
        return True
    if ctx.target.token is None:
        ctx.skip(
            "the target does not require authentication (no --token given and an "
            "unauthenticated request succeeded; authentication is optional by deployment)",
            why="not-applicable",
        )
    fail_response(ctx, response,
                  "an unauthenticated request was accepted although a token is configured",
                  "401 unauthorized", f"{response.status_code}",
                  ctx.curl("GET", f"{ctx.collection_path}/recent", headers={"Authorization": ""},
                           params={"limit": "1"}))


def require_token(ctx: CheckContext,
                  why: str = "a valid token is needed to prove it is accepted") -> str:
    """The run's token; skip (not configured) when none was given, saying why it is needed."""
    if not ctx.target.token:
        ctx.skip(f"no --token given: {why}", why="not-configured")
    return ctx.target.token


async def token_and_auth_required(ctx: CheckContext, why: str) -> str:
    """The run's token (skip without one), once the target is seen to refuse requests
    without it (skip when authentication is off)."""
    token = require_token(ctx, why)
    await auth_required(ctx)
    return token


def _challenge_problems(status: int, headers: Any, slug: str | None) -> list[str]:
    return judging.challenge_errors(status, headers.get("www-authenticate"), slug)


@check("auth-required-every-operation",
       "Auth: every operation without a token gets 401 with WWW-Authenticate: Bearer",
       ["AUTH-001", "HTTP-001"], timeout_s=90.0)
async def required_everywhere(ctx: CheckContext) -> None:
    await auth_required(ctx)
    for token_header in ({}, {"Authorization": f"Bearer conformance-wrong-{uuid.uuid4().hex}"}):
        for method, path, kwargs in _operations(ctx):
            # A wrong token replaces the run's token (request headers win over the client's).
            kwargs = {**kwargs, "headers": dict(token_header)}
            response = await unlimited(ctx, method, path, auth=bool(token_header), **kwargs)
            problems = _challenge_problems(
                response.status_code, response.headers, problem_slug(response)
            )
            if problems:
                label = "a wrong token" if token_header else "no token"
                fail_response(ctx, response,
                              f"{method} {path} with {label} was not refused properly",
                              "401 unauthorized problem with WWW-Authenticate: Bearer",
                              "; ".join(problems),
                              ctx.curl(method, path, headers=token_header or {"Authorization": ""},
                                       params=kwargs.get("params"), body=kwargs.get("json")))
        # Other checks' open streams may fill the per-IP cap for a moment: a 429 there is
        # no answer about auth, so wait for a free slot (bounded) and ask again.
        deadline = time.monotonic() + ctx.scaled(15.0)
        while True:
            async with ctx.open_stream(headers=token_header, auth=bool(token_header)) as stream:
                if stream.status == 429 and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    continue
                problems = _challenge_problems(
                    stream.status, stream.headers, _slug_of(stream.json())
                )
                if problems:
                    fail_stream(stream,
                                "the stream without a valid token was not refused properly",
                                "401 unauthorized problem with WWW-Authenticate: Bearer",
                                "; ".join(problems))
                break


def _slug_of(body: Any) -> str | None:
    kind = body.get("type") if isinstance(body, dict) else None
    return kind.rsplit(":", 1)[-1] if isinstance(kind, str) else None


@check("auth-bearer-accepted",
       "Auth: a valid Bearer token is accepted on every operation, the stream included",
       ["AUTH-002"], timeout_s=60.0)
async def bearer_accepted(ctx: CheckContext) -> None:
    require_token(ctx)
    for method, path, kwargs in _operations(ctx):
        response = await unlimited(ctx, method, path, **kwargs)
        if response.status_code == 401:
            fail_response(ctx, response, f"{method} {path} refused a valid token", "not 401",
                          f"{response.status_code}",
                          ctx.curl(method, path, params=kwargs.get("params"),
                                   body=kwargs.get("json")))
    async with ctx.open_stream() as stream:
        if stream.status != 200:
            fail_stream(stream, "the stream refused a valid Bearer token", "200 text/event-stream",
                        f"{stream.status}")


@check("auth-stream-access-token",
       "Auth: the stream accepts the token in the access_token query parameter",
       ["AUTH-003"])
async def stream_access_token(ctx: CheckContext) -> None:
    token = require_token(ctx)
    async with ctx.open_stream(params={"access_token": token}, auth=False) as stream:
        if stream.status != 200:
            fail_stream(stream, "the stream refused a valid access_token query parameter",
                        "200 text/event-stream", f"{stream.status}")


@check("auth-access-token-only-on-stream",
       "Auth: access_token is not honoured on operations other than the stream",
       ["AUTH-004"], timeout_s=60.0)
async def access_token_only_on_stream(ctx: CheckContext) -> None:
    token = await token_and_auth_required(
        ctx, "a valid token is needed to prove the query token is refused")
    path = f"{ctx.collection_path}/recent"
    params = {"access_token": token, "limit": "1"}
    response = await unlimited(ctx, "GET", path, auth=False, params=params)
    if response.status_code != 401:
        fail_response(ctx, response, "recent accepted a token in the access_token query parameter",
                      "401 (the query token is only for the stream)", f"{response.status_code}",
                      ctx.curl("GET", path, headers={"Authorization": ""},
                               params={"access_token": "$TOKEN", "limit": "1"}))
