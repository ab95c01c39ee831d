# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-RESUME checks: Last-Event-ID, since=<id>, since=<time>, precedence, malformed, empty."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    doc_ids,
    expect_stream_problem,
    fail_stream,
    insert_many,
    opened,
    own_params,
    require_open,
)


async def _history(
    ctx: CheckContext, count: int, label: str, writers: int = 1
) -> list[tuple[str, str]]:
    """Insert count documents while watching; [(doc id, event id)] in delivery order."""
    async with opened(ctx, ready=True) as reader:
        await insert_many(ctx, count, writers=writers, label=label)
        events = await reader.collect(count, ctx.scaled(10.0))
        if len(events) < count:
            fail_stream(
                reader, "Inserted documents did not reach the stream (needed to test resuming)",
                f"{count} insert events", f"{len(events)}", ["SSE-ORDER-001"])
        return list(zip(doc_ids(events), [e.last_event_id for e in events], strict=True))


async def _resumed(
    ctx: CheckContext,
    expected_replay: list[str],
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    what: str = "resume",
    rules: list[str] | None = None,
) -> None:
    """Open with the resume inputs; require exactly expected_replay, then one live document."""
    async with ctx.open_stream(own_params(ctx, **(params or {})), headers=headers) as reader:
        await require_open(ctx, reader, what)
        replayed = await reader.collect(len(expected_replay), ctx.scaled(10.0))
        live = await ctx.insert(text=ctx.unique_text("live"))
        await reader.wait_for(
            lambda r: live["id"] in doc_ids(r.events_of("insert")), ctx.scaled(5.0)
        )
        await asyncio.sleep(ctx.scaled(0.3))
        got = doc_ids(reader.events_of("insert"))
        want = [*expected_replay, live["id"]]
        del replayed
        if got != want:
            fail_stream(reader,
                        f"Stream opened with {what} did not replay exactly the missed events, "
                        "then live", f"documents {want}", f"documents {got}", rules,
                        request_headers=headers or {})


async def _resume_after_b(ctx: CheckContext, what: str,
                         resume: Callable[[str], dict[str, Any]]) -> None:
    """Watch a, b, c; miss d, e; resume from b's event id (``resume`` turns it into the
    stream request's headers or params): exactly c, d, e, then live."""
    seen = await _history(ctx, 3, "seen")
    missed = await insert_many(ctx, 2, label="missed")
    await _resumed(ctx, [seen[2][0], *missed], what=what, **resume(seen[1][1]))


@check("sse-resume-last-event-id",
       "Resume: Last-Event-ID replays exactly the missed events, then live",
       ["SSE-RESUME-001"], timeout_s=40)
async def last_event_id(ctx: CheckContext) -> None:
    """Disconnect after a, b, c; insert d, e; resume after b: c, d, e, then live."""
    await _resume_after_b(ctx, "Last-Event-ID", lambda b: {"headers": {"Last-Event-ID": b}})


@check("sse-resume-since-id",
       "Resume: since=<event id> resumes like Last-Event-ID",
       ["SSE-RESUME-002"], timeout_s=40)
async def since_id(ctx: CheckContext) -> None:
    """since=<id of b> after a, b, c then d, e missed: c, d, e, then live."""
    await _resume_after_b(ctx, "since=<id>", lambda b: {"params": {"since": b}})


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@check("sse-resume-since-time",
       "Resume: since=<RFC 3339 time> sends documents timestamped at or after it, then live",
       ["SSE-RESUME-003"], timeout_s=40)
async def since_time(ctx: CheckContext) -> None:
    """Timestamps out of insert order; the replay keeps delivery order, filters by time."""
    base = dt.datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=dt.UTC)
    since = base + dt.timedelta(hours=1)
    plan = [
        ("late", base + dt.timedelta(hours=3)),
        ("early", base),
        ("exact", since),
        ("just-before", since - dt.timedelta(milliseconds=1)),
        ("later", base + dt.timedelta(hours=2)),
    ]
    kept = []
    for label, stamp in plan:
        result = await ctx.insert(text=ctx.unique_text(label), timestamp=_stamp(stamp))
        if stamp >= since:
            kept.append(result["id"])
    await _resumed(ctx, kept, params={"since": _stamp(since)}, what="since=<time>")


@check("sse-resume-header-wins",
       "Resume: Last-Event-ID header wins over since",
       ["SSE-RESUME-004"], timeout_s=40)
async def header_wins(ctx: CheckContext) -> None:
    """Header = id of c, since = id of a: the replay starts after c."""
    seen = await _history(ctx, 4, "seen")
    await _resumed(
        ctx,
        [seen[3][0]],
        headers={"Last-Event-ID": seen[2][1]},
        params={"since": seen[0][1]},
        what="Last-Event-ID and since",
    )


MALFORMED: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("Last-Event-ID with a space and '!'", {"Last-Event-ID": "not a token!"}, {}),
    ("Last-Event-ID of 129 characters", {"Last-Event-ID": "a" * 129}, {}),
    ("Last-Event-ID with '/'", {"Last-Event-ID": "12/34"}, {}),
    ("since neither token nor time", {}, {"since": "yesterday at noon"}),
    ("since with an impossible date", {}, {"since": "2024-02-30T00:00:00Z"}),
]


@check("sse-resume-malformed-token",
       "Resume: a malformed resume token gets 400 invalid-resume-token before any stream bytes",
       ["SSE-RESUME-005"])
async def malformed(ctx: CheckContext) -> None:
    """Tokens outside the grammar, since values that are neither token nor time."""
    for label, headers, params in MALFORMED:
        async with ctx.open_stream(own_params(ctx, **params), headers=headers) as reader:
            expect_stream_problem(
                reader, 400, "invalid-resume-token",
                "A malformed resume token was not rejected with 400 invalid-resume-token", label)


@check("sse-resume-empty-is-absent",
       "Resume: an empty Last-Event-ID or since counts as absent (live only)",
       ["SSE-RESUME-006"])
async def empty_is_absent(ctx: CheckContext) -> None:
    """Empty header and empty since: 200, nothing old replayed, new documents delivered."""
    await ctx.insert(text=ctx.unique_text("old"))
    await _resumed(ctx, [], headers={"Last-Event-ID": ""}, params={"since": ""},
                   what="empty Last-Event-ID and since")


@check("sse-resume-from-old-id",
       "Resume: resuming from an older id replays the whole history after it",
       ["SSE-RESUME-007"], timeout_s=60)
async def from_old_id(ctx: CheckContext) -> None:
    """Resume from the first of 60 documents: the other 59 in order, then live."""
    seen = await _history(ctx, 1, "first")
    rest = await _history(ctx, 59, "history", writers=4)
    await _resumed(ctx, [d for d, _ in rest], headers={"Last-Event-ID": seen[0][1]},
                   what="an old Last-Event-ID")


@check("sse-resume-unknown-token",
       "Resume: a well-formed token the server never issued gets 400 invalid-resume-token",
       ["SSE-RESUME-008"])
async def unknown_token(ctx: CheckContext) -> None:
    """A huge number and a random string, both inside the token grammar."""
    for token in ("9" * 17, f"never-issued.{uuid.uuid4().hex}"):
        async with ctx.open_stream(own_params(ctx), headers={"Last-Event-ID": token}) as reader:
            expect_stream_problem(reader, 400, "invalid-resume-token",
                                  "A never-issued resume token was not rejected",
                                  f"Last-Event-ID {token!r}", severity="medium")


JOIN_REPLAYED = 12
"""Documents the resumed stream has to replay (missed while disconnected)."""
JOIN_AFTER = 8
"""Documents the writer still writes after the resumed stream opened (the join is then)."""
JOIN_MAX = 200
"""The writer's bound: a stream that takes this long to open could not be observed."""


@check("sse-resume-join-no-duplicate",
       "Resume: while inserts go on, nothing is sent twice or skipped across the replay/live "
       "join",
       ["SSE-RESUME-010", "SSE-RESUME-001"], timeout_s=60)
async def join_no_duplicate(ctx: CheckContext) -> None:
    """Resume after a, with b.. missed, while one writer keeps inserting before, during and
    after the open: every document after a exactly once, in the writer's (commit) order."""
    seen = await _history(ctx, 2, "seen")
    missed = await insert_many(ctx, JOIN_REPLAYED, label="missed")
    live: list[str] = []
    started, stop = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        while not stop.is_set() and len(live) < JOIN_MAX:
            result = await ctx.insert(text=f"join {len(live)} {ctx.run_id}",
                                      metadata={"n": len(live)})
            live.append(result["id"])
            if len(live) == 3:
                started.set()
            await asyncio.sleep(0.05)

    async def written(count: int) -> None:
        while len(live) < count and not task.done():
            await asyncio.sleep(0.02)

    task = asyncio.create_task(writer())
    try:
        await written(3)
        async with ctx.open_stream(own_params(ctx),
                                   headers={"Last-Event-ID": seen[0][1]}) as reader:
            await require_open(ctx, reader, "resumed stream")
            opened_after = len(live)
            await written(opened_after + JOIN_AFTER)
            stop.set()
            await task
            want = [seen[1][0], *missed, *live]
            await reader.wait_for(lambda r: len(r.events_of("insert")) >= len(want),
                                  ctx.scaled(10.0))
            await asyncio.sleep(ctx.scaled(0.5))  # a duplicate would arrive now
            events = reader.events_of("insert")
            got = doc_ids(events)
    finally:
        stop.set()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if len(live) < opened_after + JOIN_AFTER:
        ctx.unobserved(f"the writer stopped after {len(live)} documents, {opened_after} of "
                       "them before the resumed stream opened: the join was not made while "
                       "inserts went on")
    twice = sorted(d for d, n in Counter(got).items() if n > 1)
    ids_twice = sorted(i for i, n in Counter(e.last_event_id for e in events).items() if n > 1)
    if twice or ids_twice or got != want:
        missing = [d for d in want if d not in got]
        ctx.fail(
            "Resuming while inserts went on sent a document twice or skipped one at the join"
            if twice or ids_twice or missing else
            "Resuming while inserts went on delivered the documents out of order",
            expected=f"{len(want)} documents, each once, in commit order: {want[:3]}...",
            received=f"{len(got)} events; sent twice {twice[:5]} (event ids {ids_twice[:5]}); "
                     f"missing {missing[:5]}; {opened_after} of the {len(live)} live "
                     "documents were written before the stream opened",
            rules=["SSE-RESUME-010"] if twice or ids_twice or missing else ["SSE-RESUME-001"],
            evidence={"expected": want, "received": got, "last_event_id": seen[0][1],
                      **reader.evidence()},
            reproduce=reader.reproduce(),
        )
