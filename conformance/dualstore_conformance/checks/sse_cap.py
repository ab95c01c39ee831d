# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-CAP checks: the per-IP stream cap answers 429 and frees a slot on disconnect (exclusive)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from dualstore_conformance.context import CheckContext, StreamReader, stream_cap
from dualstore_conformance.model import Level
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import contract_number, own_params, problem_errors


async def _fill(
    ctx: CheckContext, stack: contextlib.AsyncExitStack, limit: int
) -> tuple[list[StreamReader], StreamReader | None]:
    """Open streams until one is refused or limit+1 were tried: (open ones, the refused one).

    A refusal before ``limit`` is retried for 3 s: slots of streams an earlier check just
    closed may take up to the 2 s the spec allows to come back.
    """
    opened: list[StreamReader] = []
    grace_until = time.monotonic() + ctx.scaled(3.0)
    while len(opened) <= limit:
        reader = ctx.open_stream(own_params(ctx), retry_rate_limited=False)
        await stack.enter_async_context(reader)
        if reader.status != 200:
            if len(opened) < limit and time.monotonic() < grace_until:
                await reader.close()
                await asyncio.sleep(0.2)
                continue
            return opened, reader
        await reader.wait_first_byte(ctx.scaled(2.0))
        opened.append(reader)
    return opened, None


def _retry_after_ok(value: str | None) -> bool:
    if value is None:
        return False
    value = value.strip()
    if value.isdigit():
        return True
    from email.utils import parsedate_to_datetime

    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


@check(
    id="sse-cap-too-many-streams",
    title="Cap: the stream past the per-IP cap gets 429 too-many-streams with Retry-After",
    rules=["SSE-CAP-001"],
    timeout_s=40,
    exclusive=True,
)
async def too_many_streams(ctx: CheckContext) -> None:
    """Open cap streams (from x-dualstore-limits); the next one is refused properly."""
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
        errors = problem_errors(ctx, refused.status, refused.headers, refused.body, 429,
                                "too-many-streams")
        if not _retry_after_ok(refused.headers.get("retry-after")):
            errors.append(f"Retry-After {refused.headers.get('retry-after')!r} is not "
                          "delay-seconds or an HTTP date")
        if errors:
            ctx.fail(
                "A stream past the cap was not refused with 429 too-many-streams + Retry-After",
                expected="429 application/problem+json too-many-streams with Retry-After",
                received=f"after {len(opened)} open streams: " + "; ".join(errors),
                evidence=refused.evidence(),
                reproduce=refused.reproduce(),
            )


@check(
    id="sse-cap-matches-spec",
    title="Cap: the per-IP cap in force is x-dualstore-limits.stream_cap_per_ip",
    rules=["SSE-CAP-003"],
    level=Level.SHOULD,
    timeout_s=40,
    exclusive=True,
)
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


@check(
    id="sse-cap-slot-released",
    title="Cap: after a client disconnects an idle stream, a new stream is accepted within 2 s",
    rules=["SSE-CAP-002"],
    timeout_s=40,
    exclusive=True,
)
async def slot_released(ctx: CheckContext) -> None:
    """Fill the cap, close one idle stream, retry opening until accepted (2 s budget)."""
    cap = stream_cap(ctx.limits)
    async with contextlib.AsyncExitStack() as stack:
        opened, refused = await _fill(ctx, stack, cap)
        if refused is not None and refused.status == 429 and not opened:
            # Exclusive: no other check holds a stream, and _fill waited 3 s for slots.
            ctx.fail(
                "Streams that earlier checks closed still hold every slot",
                expected=f"a stream accepted (this run holds no stream; cap {cap})",
                received="429 after the release grace: closed streams' slots never came back",
                evidence=refused.evidence(),
                reproduce=refused.reproduce(),
            )
        if refused is None or refused.status != 429 or not opened:
            ctx.skip(f"could not reach the cap ({len(opened)} open, "
                     f"{'no refusal' if refused is None else refused.status}); "
                     "see sse-cap-too-many-streams")
        await opened[0].close()
        closed_at = time.monotonic()
        limit = ctx.scaled(contract_number(2.0, "x-connection-cap", "release_within_seconds"))
        attempts = []
        while True:
            reader = ctx.open_stream(own_params(ctx), retry_rate_limited=False)
            await stack.enter_async_context(reader)
            elapsed = time.monotonic() - closed_at
            attempts.append((round(elapsed, 3), reader.status))
            if reader.status == 200:
                if elapsed > limit:
                    break
                return
            await reader.close()
            if elapsed > limit:
                break
            await asyncio.sleep(0.1)
        ctx.fail(
            "A disconnected stream's slot was not released in time",
            expected=f"a new stream accepted within {limit:.1f} s of the disconnect",
            received=f"attempts (seconds after disconnect, status): {attempts[-6:]}",
            evidence={"attempts": attempts, **reader.evidence()},
            reproduce=reader.reproduce(),
        )
