# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-FILTER checks: a filtered stream delivers exactly the matches; invalid filters; resume."""

from __future__ import annotations

import asyncio
import base64

from dualstore_conformance.client import encode_filter
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    doc_ids,
    expect_stream_problem,
    fail_stream,
    open_and_ready,
    opened,
    own_params,
    require_open,
)

PLAN = ["match", "other", "match", "match", "other", "other", "match", "other"]


def _matching(ctx: CheckContext) -> dict[str, str]:
    return {"filter": ctx.own_filter({"metadata.kind": "match"})}


@check("sse-filter-exact-matches",
       "Filter: a filtered stream delivers exactly the matching documents, in order",
       ["SSE-FILTER-001"])
async def exact_matches(ctx: CheckContext) -> None:
    """Compared with an unfiltered view of the same documents (the collection's order)."""
    async with ctx.open_stream(own_params(ctx)) as everything, ctx.open_stream(
        _matching(ctx)
    ) as filtered:
        await open_and_ready(everything, ctx)
        await open_and_ready(filtered, ctx)
        kinds: dict[str, str] = {}
        for index, kind in enumerate(PLAN):
            result = await ctx.insert(metadata={"kind": kind, "n": index})
            kinds[result["id"]] = kind
        await everything.wait_for(
            lambda r: len(r.events_of("insert")) >= len(PLAN), ctx.scaled(10.0)
        )
        wanted = PLAN.count("match")
        await filtered.wait_for(lambda r: len(r.events_of("insert")) >= wanted, ctx.scaled(5.0))
        await asyncio.sleep(ctx.scaled(0.3))
        order = doc_ids(everything.events_of("insert"))
        expected = [i for i in order if kinds.get(i) == "match"]
        got = doc_ids(filtered.events_of("insert"))
        if got != expected or len(order) != len(PLAN):
            fail_stream(filtered,
                        "A filtered stream did not deliver exactly the matching documents",
                        f"{expected} (matches, in the collection's delivery order)", f"{got}",
                        unfiltered_order=order, kinds=kinds)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


INVALID = [
    ("not base64url", "%%%not-base64%%%"),
    ("base64url of invalid JSON", _b64(b"{not json")),
    ("a $where operator", encode_filter({"$where": "sleep(1000)"})),
    ("an unknown operator", encode_filter({"metadata.kind": {"$bogus": 1}})),
]


@check("sse-filter-invalid",
       "Filter: an invalid filter gets 400 invalid-filter before any stream bytes",
       ["SSE-FILTER-002"])
async def invalid(ctx: CheckContext) -> None:
    """Undecodable, non-JSON and unsafe filters are refused."""
    for label, value in INVALID:
        async with ctx.open_stream({"filter": value}) as reader:
            expect_stream_problem(reader, 400, "invalid-filter",
                                  "An invalid stream filter was not refused with 400 "
                                  "invalid-filter", label, filter=value)


@check("sse-filter-resume",
       "Filter: resuming a filtered stream replays only the missed matches",
       ["SSE-FILTER-003"], timeout_s=40)
async def resume(ctx: CheckContext) -> None:
    """Last-Event-ID from a filtered stream; missed matches and non-matches; then live."""
    async with opened(ctx, _matching(ctx), ready=True) as reader:
        first = await ctx.insert(metadata={"kind": "match"})
        events = await reader.collect(1, ctx.scaled(10.0))
        if not events or doc_ids(events) != [first["id"]]:
            fail_stream(reader, "A filtered stream did not deliver a matching document",
                        f"insert event for {first['id']}", f"{doc_ids(events)}",
                        ["SSE-FILTER-001"])
        token = events[0].last_event_id
    missed = []
    for kind in ("other", "match", "other", "match"):
        result = await ctx.insert(metadata={"kind": kind})
        if kind == "match":
            missed.append(result["id"])
    async with ctx.open_stream(_matching(ctx), headers={"Last-Event-ID": token}) as reader:
        await require_open(ctx, reader, "resumed filtered stream")
        await reader.collect(len(missed), ctx.scaled(10.0))
        live_other = await ctx.insert(metadata={"kind": "other"})
        live = await ctx.insert(metadata={"kind": "match"})
        await reader.wait_for(lambda r: live["id"] in doc_ids(r.events_of("insert")),
                              ctx.scaled(5.0))
        await asyncio.sleep(ctx.scaled(0.3))
        got = doc_ids(reader.events_of("insert"))
        want = [*missed, live["id"]]
        if got != want:
            fail_stream(reader, "Resuming a filtered stream did not replay exactly the missed "
                        "matches", f"{want}", f"{got}", non_matching_live=live_other["id"],
                        last_event_id=token)

