# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-CAP checks: the per-IP stream cap answers 429 and frees a slot on disconnect (exclusive)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from dualstore_conformance import stream_judging
from dualstore_conformance.context import CheckContext
from dualstore_conformance.limits import stream_cap
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    expect_stream_problem,
    fail_stream,
    own_params,
    problem_type,
    spec_facts,
)
from dualstore_conformance.streams import StreamReader

PACE = 0.2
"""Seconds between the harness's own stream-open attempts (a strict rate limit is legal)."""


def _rate_limited(reader: StreamReader) -> bool:
    """A 429 that is the rate limit, not the stream cap (the deployment's right)."""
    return reader.status == 429 and problem_type(reader.body) == spec_facts().problem(
        "rate-limited").type


def _retry_after_seconds(reader: StreamReader) -> float:
    try:
        return min(5.0, max(PACE, float(reader.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


async def _open(ctx: CheckContext, stack: contextlib.AsyncExitStack) -> StreamReader:
    """One stream open seen as the server answered it, except that a rate-limited 429 is
    waited out (Retry-After) and tried again; still rate limited after the harness's
    patience: could not observe."""
    deadline = time.monotonic() + ctx.rate_limit_patience()
    while True:
        reader = ctx.open_stream(own_params(ctx), retry_rate_limited=False)
        await stack.enter_async_context(reader)
        if not _rate_limited(reader):
            return reader
        await reader.close()
        wait = _retry_after_seconds(reader)
        if time.monotonic() + wait > deadline:
            ctx.unobserved("rate limited: stream opens stayed refused with 429 rate-limited "
                           "past the harness's retry window")
        await asyncio.sleep(wait)


async def _fill(
    ctx: CheckContext, stack: contextlib.AsyncExitStack, limit: int
) -> tuple[list[StreamReader], StreamReader | None]:
    """Open streams until one is refused or limit+1 were tried: (open ones, the refused one).

    A refusal before ``limit`` is retried for the spec's release time plus a second
    (scaled: the harness's own patience): slots of streams an earlier check just closed
    may take that long to come back.
    """
    opened: list[StreamReader] = []
    grace = spec_facts().slot_release_within_seconds + 1.0
    grace_until = time.monotonic() + ctx.scaled(grace)
    while len(opened) <= limit:
        reader = await _open(ctx, stack)
        if reader.status != 200:
            if len(opened) < limit and time.monotonic() < grace_until:
                await reader.close()
                await asyncio.sleep(PACE)
                continue
            return opened, reader
        await reader.wait_first_byte(ctx.scaled(2 * spec_facts().open_within_seconds))
        opened.append(reader)
    return opened, None


@check("sse-cap-too-many-streams",
       "Cap: the stream past the per-IP cap gets 429 too-many-streams with Retry-After",
       ["SSE-CAP-001"], timeout_s=40, exclusive=True)
async def too_many_streams(ctx: CheckContext) -> None:
    """Open the declared cap of streams (--stream-cap, else the spec's); the next one is
    refused properly."""
    cap = stream_cap(ctx.limits)
    async with contextlib.AsyncExitStack() as stack:
        opened, refused = await _fill(ctx, stack, cap)
        if refused is None:
            ctx.fail(
                "The per-IP stream cap is not enforced",
                expected=f"429 for stream number {cap + 1} from one IP",
                received=f"{len(opened)} streams open, all 200",
                reproduce=opened[-1].reproduce() if opened else "",
            )
        expect_stream_problem(
            refused, 429, "too-many-streams",
            "A stream past the cap was not refused with 429 too-many-streams + Retry-After",
            f"after {len(opened)} open streams",
            stream_judging.delay_or_date_errors(refused.headers.get("retry-after")))


@check("sse-cap-matches-spec",
       "Cap: the per-IP cap in force is the declared one (x-dualstore-limits.stream_cap_per_ip "
       "unless --stream-cap says otherwise)",
       ["SSE-CAP-003"], timeout_s=40, exclusive=True)
async def matches_spec(ctx: CheckContext) -> None:
    """Exactly cap streams are accepted, the next is refused."""
    cap = stream_cap(ctx.limits)
    async with contextlib.AsyncExitStack() as stack:
        opened, refused = await _fill(ctx, stack, cap)
        if len(opened) != cap or refused is None:
            ctx.fail(
                "The per-IP stream cap differs from the spec's",
                expected=f"exactly {cap} streams accepted, the next refused",
                received=f"{len(opened)} accepted"
                + (f", then {refused.status}" if refused is not None else ", none refused"),
                evidence=refused.evidence() if refused is not None else {},
                reproduce=refused.reproduce() if refused is not None else "",
                severity="medium",
            )


@check("sse-cap-slot-released",
       "Cap: after a client disconnects an idle stream, a new stream is accepted within 2 s",
       ["SSE-CAP-002"], timeout_s=40, exclusive=True)
async def slot_released(ctx: CheckContext) -> None:
    """Fill the cap, close one idle stream, then try to open one every 0.2 s.

    The spec's 2 s is never scaled. A refusal proves nothing about the limit unless the
    attempt was sent after it (the server decided later still), so the check passes on the
    first acceptance and fails on the first too-many-streams answer to an attempt that
    left more than 2 s after the disconnect.
    """
    cap = stream_cap(ctx.limits)
    async with contextlib.AsyncExitStack() as stack:
        opened, refused = await _fill(ctx, stack, cap)
        if refused is not None and refused.status == 429 and not opened:
            # Exclusive: no other check holds a stream, and _fill waited for slots.
            fail_stream(refused, "Streams that earlier checks closed still hold every slot",
                        f"a stream accepted (this run holds no stream; cap {cap})",
                        "429 after the release grace: closed streams' slots never came back")
        if refused is None or refused.status != 429 or not opened:
            ctx.unobserved(f"could not reach the cap ({len(opened)} open, "
                           f"{'no refusal' if refused is None else refused.status}); "
                           "see sse-cap-too-many-streams")
        await opened[0].close()
        closed_at = time.monotonic()
        limit = spec_facts().slot_release_within_seconds
        attempts: list[tuple[float, int]] = []
        while True:
            sent = time.monotonic() - closed_at
            reader = await _open(ctx, stack)
            attempts.append((round(sent, 3), reader.status))
            if reader.status == 200:
                return
            await reader.close()
            if sent > limit:
                break
            await asyncio.sleep(PACE)
        fail_stream(reader, "A disconnected stream's slot was not released in time",
                    f"a new stream accepted within {limit:g} s of the disconnect",
                    f"attempts (seconds after disconnect when sent, status): {attempts[-6:]}",
                    attempts=attempts)
