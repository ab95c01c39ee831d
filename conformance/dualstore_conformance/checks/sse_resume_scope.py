# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-RESUME-011, -012, -014: what a resume token or time may and may not change.

A never-issued token gets 400 or a stream (never a 500); ``since=<time>`` chooses only the
replay, never which live documents are delivered; a token from another collection's stream
never brings that collection's documents.
"""

from __future__ import annotations

import datetime as dt

from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    doc_ids,
    expect_stream_problem,
    fail_stream,
    open_and_ready,
    opened,
    own_params,
    settle,
    token_grammar,
)

NEVER_ISSUED = ("9" * 40, "1" + "0" * 127, "zz-never-issued.~")
"""Well-formed tokens (the event id grammar) far beyond or beside anything issued."""
OLD_TIMESTAMP = "2001-02-03T04:05:06.789Z"
"""A document timestamp long before any since the check sends."""
DELIVERY_WAIT = 10.0
"""Seconds (scaled) the check waits for a live document."""


def time_from_now(delta: dt.timedelta) -> str:
    """An RFC 3339 UTC time delta from now, in whole seconds."""
    return (dt.datetime.now(dt.UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@check("sse-resume-never-issued",
       "Resume: a well-formed token the server never issued gets 400 or a stream, never 500",
       ["SSE-RESUME-011"], timeout_s=40)
async def never_issued(ctx: CheckContext) -> None:
    grammar = token_grammar()
    for token in NEVER_ISSUED:
        if not grammar.match(token):
            ctx.skip(f"{token!r} is outside this spec's event id grammar", why="not-applicable")
        for label, headers, params in (
            (f"Last-Event-ID {token[:24]}...", {"Last-Event-ID": token}, {}),
            (f"since={token[:24]}...", {}, {"since": token}),
        ):
            async with ctx.open_stream(own_params(ctx, **params), headers=headers) as reader:
                if reader.status == 200:
                    continue
                expect_stream_problem(
                    reader, 400, "invalid-resume-token",
                    "a well-formed resume token the server never issued was answered with "
                    "neither 400 invalid-resume-token nor a stream", label)


@check("sse-resume-since-live-unfiltered",
       "Resume: since=<time> selects only the replay; live documents arrive whatever "
       "their timestamp",
       ["SSE-RESUME-012"], timeout_s=45)
async def since_live_unfiltered(ctx: CheckContext) -> None:
    since = time_from_now(dt.timedelta(hours=1))
    async with ctx.open_stream(own_params(ctx)) as control, \
            ctx.open_stream(own_params(ctx, since=since)) as reader:
        await open_and_ready(control, ctx)
        await open_and_ready(reader, ctx)
        await settle(ctx)
        old = (await ctx.insert(timestamp=OLD_TIMESTAMP, metadata={"which": "old"}))["id"]
        now = (await ctx.insert(metadata={"which": "now"}))["id"]
        seen = doc_ids(await control.collect(2, ctx.scaled(DELIVERY_WAIT)))
        if {old, now} - set(seen):
            ctx.unobserved("the control stream (no since) did not deliver the two live "
                           f"documents within {ctx.scaled(DELIVERY_WAIT):.0f} s either")
        got = doc_ids(await reader.collect(2, ctx.scaled(DELIVERY_WAIT)))
        missing = [f"{doc} ({which})" for doc, which in ((old, f"timestamp {OLD_TIMESTAMP}"),
                                                         (now, "timestamp now"))
                   if doc not in got]
        if missing:
            fail_stream(reader,
                        f"a stream opened with since={since} (an hour ahead) left out live "
                        "documents by their timestamp",
                        "both documents committed after the stream opened delivered live",
                        f"missing {missing}; delivered {got}")


async def other_collection(ctx: CheckContext) -> str:
    """A collection the target lists other than the run's."""
    response = await ctx.request("GET", "/v1/collections")
    body = response.json() if response.status_code == 200 else {}
    names = [n for n in body.get("collections", []) if isinstance(n, str)] if isinstance(
        body, dict) else []
    others = sorted(n for n in names if n != ctx.collection)
    if not others:
        ctx.skip("the target lists one collection only: no other collection's token to give",
                 why="not-applicable")
    return others[0]


async def post_to(ctx: CheckContext, collection: str, label: str) -> str:
    """POST one tagged document to collection; its id (could not observe unless 201)."""
    body = ctx.tagged_body(ctx.unique_text(label))
    response = await ctx.request("POST", f"/v1/{collection}", json=body)
    document = response.json() if response.status_code == 201 else None
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        ctx.unobserved(f"a POST to the collection {collection} answered "
                       f"{response.status_code}: {response.text[:200]}")
    return str(document["id"])


async def token_of(ctx: CheckContext, collection: str) -> str:
    """The id of an event collection's stream sent for one of this check's documents."""
    async with opened(ctx, ready=True, path=f"/v1/{collection}/stream") as reader:
        await post_to(ctx, collection, "issued")
        events = await reader.collect(1, ctx.scaled(DELIVERY_WAIT))
    if not events or not events[0].last_event_id:
        ctx.unobserved(f"{collection}'s stream sent no insert event with an id to resume from")
    return events[0].last_event_id


@check("sse-resume-own-collection",
       "Resume: a token from another collection's stream never brings that collection's "
       "documents",
       ["SSE-RESUME-014"], timeout_s=60)
async def own_collection(ctx: CheckContext) -> None:
    other = await other_collection(ctx)
    token = await token_of(ctx, other)
    foreign = [await post_to(ctx, other, "after the token")]
    async with ctx.open_stream(own_params(ctx), headers={"Last-Event-ID": token}) as reader:
        if reader.status != 200:
            expect_stream_problem(
                reader, 400, "invalid-resume-token",
                "a token from another collection's stream was answered with neither 400 "
                "invalid-resume-token nor a stream", f"Last-Event-ID from {other}")
            return
        await open_and_ready(reader, ctx)
        foreign.append(await post_to(ctx, other, "live"))
        own = (await ctx.insert(metadata={"which": "own"}))["id"]
        arrived = await reader.wait_for(lambda r: own in doc_ids(r.events_of("insert")),
                                        ctx.scaled(DELIVERY_WAIT))
        strays = [doc for doc in doc_ids(reader.events_of("insert")) if doc in foreign]
        if strays:
            fail_stream(reader,
                        f"a stream of {ctx.collection} resumed with a token from {other}'s "
                        f"stream delivered {other}'s documents",
                        f"only documents of {ctx.collection}", f"documents {strays} of {other}")
        if not arrived:
            ctx.unobserved(f"this collection's own live document {own} never reached the "
                           "resumed stream, so what it delivers could not be judged")
