# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-HEARTBEAT checks: heartbeat format, cadence on an idle stream and on a filtered one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

from dualstore_sse import Event

from dualstore_conformance.context import CheckContext
from dualstore_conformance.pacing import UNPACED
from dualstore_conformance.registry import HEARTBEAT_WAIT, check
from dualstore_conformance.ssehelp import (
    doc_ids,
    event_dict,
    fail_stream,
    opened,
    spec_facts,
    timestamp_pattern,
)
from dualstore_conformance.streams import StreamReader

GRACE = 1.0
"""The harness's own patience past H + tolerance before it stops waiting (scaled)."""


def tolerance(interval: float) -> float:
    """The spec's cadence tolerance for interval H: max(absolute, relative x H)."""
    return spec_facts().heartbeat.tolerance(interval)


def heartbeat_errors(event: Event) -> list[str]:
    """Why a heartbeat event breaks SSE-HEARTBEAT-001 (empty when it conforms).

    Any ``id`` line breaks the rule, even one repeating the last event id: the spec says a
    heartbeat carries no id field at all.
    """
    errors = []
    if event.id_field:
        shown = repr(event.last_event_id) if event.id_set else "a value EventSource ignores"
        errors.append(f"carries an id field ({shown}); a heartbeat carries none")
    if "\n" in event.data:
        errors.append("data spans several lines")
    try:
        value = json.loads(event.data)
    except ValueError:
        return [*errors, f"data is not JSON: {event.data[:100]!r}"]
    if not isinstance(value, dict) or "t" not in value:
        errors.append(f"data is not an object with 't': {event.data[:100]!r}")
    elif not isinstance(value["t"], str) or not timestamp_pattern().match(value["t"]):
        errors.append(f"'t' is not a Timestamp: {value['t']!r}")
    return errors


def heartbeat_times(reader: StreamReader) -> list[float]:
    """Receive times of every heartbeat event so far."""
    return [t for t, e in reader.items if isinstance(e, Event) and e.type == "heartbeat"]


def gap_errors(times: list[float], interval: float, early_too: bool = True) -> list[float]:
    """Gaps between consecutive heartbeats outside H +/- the spec's tolerance (unscaled);
    with early_too False only gaps longer than H + tolerance."""
    slack = tolerance(interval)
    return [b - a for a, b in itertools.pairwise(times)
            if b - a - interval > slack or (early_too and interval - (b - a) > slack)]


def cadence_evidence(reader: StreamReader, interval: float) -> dict[str, Any]:
    """What a cadence verdict rests on."""
    times = heartbeat_times(reader)
    return {
        "heartbeat_seconds": interval,
        "tolerance_s": tolerance(interval),
        "arrivals_s": [round(t - reader.opened_at, 3) for t in times],
        "intervals_s": [round(b - a, 3) for a, b in itertools.pairwise(times)],
        **reader.evidence(),
    }


async def idle_heartbeats(ctx: CheckContext, reader: StreamReader, count: int) -> bool:
    """Wait for count heartbeats on reader (the first one due on open), long enough for any
    gaps the spec allows; the wait is the harness's own, so it is scaled."""
    interval = ctx.target.heartbeat_seconds
    first = spec_facts().open_within_seconds
    budget = ctx.scaled(first + (count - 1) * (interval + tolerance(interval)) + GRACE)
    done = await reader.wait_for(lambda r: len(heartbeat_times(r)) >= count, budget)
    if not done and reader.closed:
        # the spec lets a server end a stream at an event boundary at any time
        ctx.unobserved(f"the stream ended after {len(heartbeat_times(reader))} heartbeat(s): "
                       "no cadence to judge")
    return done


@check("sse-heartbeat-format",
       "Heartbeat: event heartbeat, no id field, data {\"t\": <Timestamp>}",
       ["SSE-HEARTBEAT-001"], timeout_s=20, tags=(HEARTBEAT_WAIT,))
async def heartbeat_format(ctx: CheckContext) -> None:
    """Every heartbeat on a stream, the one on open and the one after an insert event
    (an id repeating the last event id can only show there), has the documented format."""
    interval = ctx.target.heartbeat_seconds
    async with opened(ctx, ready=True) as reader:
        inserted = await ctx.insert(text=ctx.unique_text("heartbeat-format"))
        if not await reader.wait_for(
            lambda r: inserted["id"] in doc_ids(r.events_of("insert")), ctx.scaled(5.0)
        ):
            ctx.unobserved(f"the insert event for {inserted['id']} never arrived, so no "
                           "heartbeat after an event could be seen (delivery: sse-order-*)")
        after = len(reader.events)

        def beat_after(r: StreamReader) -> bool:
            return any(e.type == "heartbeat" for e in r.events[after:])

        wait = ctx.scaled(interval + tolerance(interval) + GRACE)
        if not await reader.wait_for(beat_after, wait):
            ctx.unobserved(f"no heartbeat within {wait:.1f} s after the insert event (H = "
                           f"{interval:g} s; the cadence is judged by sse-heartbeat-cadence)")
        for event in reader.events_of("heartbeat"):
            errors = heartbeat_errors(event)
            if errors:
                fail_stream(reader, "Heartbeat event is malformed",
                            'event: heartbeat, no id field, data {"t": "<Timestamp>"} on one line',
                            "; ".join(errors), event=event_dict(event))


@check("sse-heartbeat-cadence",
       "Heartbeat: every H seconds within max(0.5 s, 20% of H) on an idle stream",
       ["SSE-HEARTBEAT-002"], timeout_s=10, tags=(HEARTBEAT_WAIT,))
async def heartbeat_cadence(ctx: CheckContext) -> None:
    """Two intervals between heartbeats on a stream filtered to nothing (spec tolerance)."""
    interval = ctx.target.heartbeat_seconds
    async with opened(ctx) as reader:
        await idle_heartbeats(ctx, reader, 3)
        times = heartbeat_times(reader)
        evidence = cadence_evidence(reader, interval)
        bad = gap_errors(times[:3], interval)
        if bad or len(times) < 3:
            late = time.monotonic() - (times[-1] if times else reader.opened_at)
            ctx.fail(
                "Heartbeat cadence outside tolerance" if bad else "Too few heartbeats on an "
                "idle stream",
                expected=f"heartbeats every {interval:g} s +/- {tolerance(interval):g} s",
                received=(f"intervals {', '.join(f'{g:.2f} s' for g in bad)}" if bad else
                          f"{len(times)} heartbeats; {late:.1f} s since the last block"),
                evidence=evidence,
                reproduce=reader.reproduce(),
            )


MAX_FILTERED_WRITES_IN_FLIGHT = 4
"""Filtered-out inserts the cadence check keeps in flight at once."""


@check("sse-heartbeat-filtered-cadence",
       "Heartbeat: documents a filtered stream leaves out do not delay its heartbeats",
       ["SSE-HEARTBEAT-004", "SSE-HEARTBEAT-002", "SSE-FILTER-001"],
       timeout_s=15, tags=(HEARTBEAT_WAIT,))
async def filtered_cadence(ctx: CheckContext) -> None:
    """While the check inserts non-matching documents every 0.6 H, a filtered stream that
    sends nothing else still heartbeats every H within the spec's tolerance.

    The writer's timing is the measurement, so its requests skip the harness's client-side
    pacing (which shares the declared rate among all running checks); at 1/(0.6 H) per
    second they stay inside any rate limit that leaves the pacing's own share room.
    """
    interval = ctx.target.heartbeat_seconds
    slack = tolerance(interval)
    pace = 0.6 * interval
    params = {"filter": ctx.own_filter({"metadata.kind": "match"})}
    inserted_at: list[float] = []

    refused: list[int] = []

    async def insert_one() -> None:
        body = ctx.tagged_body(ctx.unique_text("filtered-out"), {"kind": "other"})
        response = await ctx.request("POST", ctx.collection_path, json=body,
                                     extensions={UNPACED: True})
        if response.status_code == 201:
            inserted_at.append(time.monotonic())
        else:
            refused.append(response.status_code)

    async def writer() -> None:
        # A new insert starts every `pace` seconds whether or not the previous one has been
        # answered (a few in flight at most): on a slow or loaded target single writes can
        # take longer than H, but commits still arrive more often than every H.
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                if refused:
                    ctx.unobserved(f"an insert of a valid document got {refused[0]}: the check "
                                   "could not keep writing (writes: write-*)")
                if len(in_flight) < MAX_FILTERED_WRITES_IN_FLIGHT:
                    task = asyncio.create_task(insert_one())
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.sleep(pace)
        finally:
            for task in list(in_flight):
                task.cancel()

    def written_densely(start: float, end: float) -> bool:
        """The writer committed more often than every H from start to end."""
        covered = [t for t in inserted_at if start <= t <= end]
        spaced = [b - a for a, b in itertools.pairwise([start, *covered, end])]
        return len(covered) >= 2 and max(spaced) < interval

    async with opened(ctx, params, ready=True) as reader:
        task = asyncio.create_task(writer())
        try:
            # The judged window is the last two heartbeat gaps. A window the writer could
            # not keep dense (a stalled target or a loaded harness) proves nothing either
            # way: the next two gaps are looked at instead while the check's budget allows.
            count = 3
            complete = await idle_heartbeats(ctx, reader, count)
            another = ctx.scaled(2 * (interval + slack) + GRACE)
            while complete and ctx.time_left() > another + ctx.scaled(GRACE):
                last = heartbeat_times(reader)[count - 3:count]
                if written_densely(last[0], last[2]):
                    break
                count += 2
                complete = await idle_heartbeats(ctx, reader, count)
            waited = time.monotonic()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        inserts = reader.events_of("insert")
        if inserts:
            fail_stream(reader, "A filtered stream delivered documents its filter does not match",
                        "no insert event (every document written has kind 'other')",
                        f"insert events for {doc_ids(inserts)[:5]}", ["SSE-FILTER-001"])
        times = heartbeat_times(reader)[max(0, count - 3):count]
        if not times:
            ctx.unobserved("the filtered stream sent no heartbeat at all, not even on open "
                           "(judged by sse-frame-open-retry-heartbeat)")
        # the writer ran for the whole wait: it must have written more often than every H
        # from the window's first heartbeat to its last one, or, when the heartbeats stopped,
        # from the last one to the end of the wait (the silence is then the evidence)
        start, end = (times[0], times[2]) if len(times) >= 3 else (times[-1], waited)
        covered = [t for t in inserted_at if start <= t <= end]
        if not written_densely(start, end):
            ctx.unobserved(f"the check could not insert more often than every H = "
                           f"{interval:g} s ({len(covered)} inserts in {end - start:.1f} s)")
        evidence = {**cadence_evidence(reader, interval), "insert_every_s": round(pace, 3),
                    "inserts_s": [round(t - reader.opened_at, 3) for t in inserted_at]}
        bad = gap_errors(times, interval, early_too=False)
        if bad or len(times) < 3:
            ctx.fail(
                "Documents the filter left out delayed the stream's heartbeats",
                expected=f"no gap between heartbeats longer than {interval:g} s + {slack:g} s "
                         f"while non-matching documents are written every {pace:.2f} s",
                received=(f"intervals {', '.join(f'{g:.2f} s' for g in bad)}" if bad else
                          f"no heartbeat for {end - start:.1f} s after the last one, while "
                          f"{len(covered)} non-matching documents were written"),
                rules=["SSE-HEARTBEAT-004", "SSE-HEARTBEAT-002"],
                evidence=evidence,
                reproduce=reader.reproduce(),
            )


@check("sse-heartbeat-default-interval",
       "Heartbeat: the default interval is 15 s",
       ["SSE-HEARTBEAT-003"], timeout_s=10)
async def default_interval(ctx: CheckContext) -> None:
    """Health's heartbeat_seconds is the spec's default unless the run was told otherwise."""
    if ctx.target.heartbeat_explicit:
        ctx.skip("the run was told the target uses another interval (--heartbeat-seconds)",
                 "not-configured")
    reported = ctx.health.get("heartbeat_seconds")
    if reported is None:
        ctx.unobserved("health does not report heartbeat_seconds (see health-ok-shape)")
    default = spec_facts().heartbeat.default_seconds
    if reported != default:
        ctx.fail(
            f"Heartbeat interval is not the default {default:g} s",
            expected=f"heartbeat_seconds {default:g} (unless deliberately configured)",
            received=f"heartbeat_seconds {reported}",
            severity="low",
            reproduce=ctx.curl("GET", "/v1/health"),
        )
