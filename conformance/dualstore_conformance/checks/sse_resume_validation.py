# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-RESUME-013: every resume parameter present is validated, whichever of them wins."""

from __future__ import annotations

import datetime as dt

from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    expect_stream_problem,
    insert_many,
    open_and_ready,
    own_params,
    require_open,
)

MALFORMED_SINCE = ("yesterday at noon", "2024-02-30T00:00:00Z")
"""Neither a resume token (a space, a ':' outside the grammar) nor an RFC 3339 time."""
MALFORMED_HEADER = "not a token!"
"""A Last-Event-ID outside the token grammar (a space and '!')."""


async def an_event_id(ctx: CheckContext) -> str:
    """The id of an event the server sent for one of this check's documents."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await open_and_ready(reader, ctx)
        await insert_many(ctx, 1, label="issued")
        events = await reader.collect(1, ctx.scaled(10.0))
    if not events or not events[0].last_event_id:
        ctx.fail(
            "an inserted document did not reach the stream with an id (needed to resume)",
            expected="1 insert event with an id",
            received=f"{len(events)} events",
            rules=["SSE-ORDER-001", "SSE-FRAME-003"],
        )
    return events[0].last_event_id


@check("sse-resume-every-parameter-validated",
       "Resume: a malformed since beside a valid Last-Event-ID (or the reverse) gets 400",
       ["SSE-RESUME-013"], timeout_s=40)
async def every_parameter_validated(ctx: CheckContext) -> None:
    event_id = await an_event_id(ctx)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The control: both well-formed, the header wins and the stream opens.
    async with ctx.open_stream(own_params(ctx, since=now),
                               headers={"Last-Event-ID": event_id}) as reader:
        await require_open(ctx, reader, "stream with a valid Last-Event-ID and a valid since")
    cases = [
        *((f"Last-Event-ID {event_id!r} and since={since!r}", {"Last-Event-ID": event_id},
           {"since": since}) for since in MALFORMED_SINCE),
        (f"Last-Event-ID {MALFORMED_HEADER!r} and since={event_id!r}",
         {"Last-Event-ID": MALFORMED_HEADER}, {"since": event_id}),
        (f"Last-Event-ID {MALFORMED_HEADER!r} and since={now!r}",
         {"Last-Event-ID": MALFORMED_HEADER}, {"since": now}),
    ]
    for label, headers, params in cases:
        async with ctx.open_stream(own_params(ctx, **params), headers=headers) as reader:
            expect_stream_problem(
                reader, 400, "invalid-resume-token",
                "a malformed resume parameter was not refused because the other was valid",
                label, request_headers=headers)
