# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-HEARTBEAT checks: heartbeat event format and cadence on an idle stream."""

from __future__ import annotations

import itertools
import json

from dualstore_conformance.context import CheckContext
from dualstore_conformance.model import Level
from dualstore_conformance.registry import check
from dualstore_conformance.runner import HEARTBEAT_WAIT
from dualstore_conformance.sse import Event
from dualstore_conformance.ssehelp import (
    contract_number,
    event_dict,
    own_params,
    require_open,
    timestamp_pattern,
)


def tolerance(interval: float) -> float:
    """The contract's cadence tolerance: max(0.5 s, 20% of H) unless it says otherwise."""
    absolute = contract_number(0.5, "x-heartbeat", "tolerance_absolute_seconds")
    relative = contract_number(0.2, "x-heartbeat", "tolerance_relative")
    return max(absolute, relative * interval)


def heartbeat_errors(event: Event, previous_id: str = "") -> list[str]:
    """Why a heartbeat event breaks SSE-HEARTBEAT-001 (empty when it conforms).

    An ``id`` field that repeats the last event id is accepted: it leaves an EventSource's
    lastEventId (and so resuming) exactly as it was, which is what the rule protects.
    """
    errors = []
    if event.id_set and event.last_event_id != previous_id:
        errors.append(
            f"carries an id field ({event.last_event_id!r}) that changes the last event id "
            f"(was {previous_id!r})"
        )
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


@check(
    id="sse-heartbeat-format",
    title="Heartbeat: event heartbeat, no id, data {\"t\": <Timestamp>}",
    rules=["SSE-HEARTBEAT-001"],
    timeout_s=10,
    tags=(HEARTBEAT_WAIT,),
)
async def heartbeat_format(ctx: CheckContext) -> None:
    """The first heartbeat on an idle stream has the documented format."""
    interval = ctx.target.heartbeat_seconds
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        wait = ctx.scaled(interval + tolerance(interval) + 1.0)
        event = await reader.next_event(wait, type="heartbeat")
        if event is None:
            ctx.fail(
                "No heartbeat event on an idle stream",
                expected=f"event: heartbeat within {wait:.1f} s (H = {interval:g} s)",
                received=f"{len(reader.events)} events, {len(reader.comments)} comments",
                evidence=reader.evidence(),
                reproduce=reader.reproduce(),
            )
        events = reader.events
        index = next(i for i, e in enumerate(events) if e is event)
        previous = events[index - 1].last_event_id if index else ""
        errors = heartbeat_errors(event, previous)
        if errors:
            ctx.fail(
                "Heartbeat event is malformed",
                expected='event: heartbeat, no id, data {"t": "<Timestamp>"} on one line',
                received="; ".join(errors),
                evidence={"event": event_dict(event), **reader.evidence()},
                reproduce=reader.reproduce(),
            )


@check(
    id="sse-heartbeat-cadence",
    title="Heartbeat: every H seconds within max(0.5 s, 20% of H) on an idle stream",
    rules=["SSE-HEARTBEAT-002", "HEALTH-004"],
    timeout_s=10,
    tags=(HEARTBEAT_WAIT,),
)
async def heartbeat_cadence(ctx: CheckContext) -> None:
    """Measure two intervals between heartbeats on a stream filtered to nothing."""
    interval = ctx.target.heartbeat_seconds
    slack = tolerance(interval)
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        budget = ctx.scaled(3 * interval + 2 * slack + 2.0)
        ok = await reader.wait_for(
            lambda r: sum(1 for e in r.events if e.type == "heartbeat") >= 3, budget
        )
        beats = [(t, e) for t, e in reader.items if isinstance(e, Event)]
        times = [t for t, e in beats if e.type == "heartbeat"]
        others = [e for _, e in beats if e.type != "heartbeat"]
        evidence = {
            "heartbeat_seconds": interval,
            "tolerance_s": slack,
            "arrivals_s": [round(t - reader.opened_at, 3) for t in times],
            **reader.evidence(),
        }
        if others:
            ctx.note(f"idle stream carried {len(others)} non-heartbeat events")
        if not ok or len(times) < 3:
            ctx.fail(
                "Too few heartbeats on an idle stream",
                expected=f"3 heartbeats within {budget:.1f} s (H = {interval:g} s)",
                received=f"{len(times)} heartbeats",
                rules=["SSE-HEARTBEAT-002"],
                evidence=evidence,
                reproduce=reader.reproduce(),
            )
        gaps = [b - a for a, b in itertools.pairwise(times)][:2]
        evidence["intervals_s"] = [round(g, 3) for g in gaps]
        bad = [g for g in gaps if abs(g - interval) > slack * ctx.target.timeout_multiplier]
        if bad:
            ctx.fail(
                "Heartbeat cadence outside tolerance",
                expected=f"intervals of {interval:g} s +/- {slack:g} s",
                received=f"intervals {', '.join(f'{g:.2f} s' for g in gaps)}",
                rules=["SSE-HEARTBEAT-002"],
                evidence=evidence,
                reproduce=reader.reproduce(),
            )
        reported = ctx.health.get("heartbeat_seconds")
        if isinstance(reported, int | float) and abs(float(reported) - interval) > slack:
            ctx.fail(
                "Health reports another heartbeat interval than the streams use",
                expected=f"health heartbeat_seconds = {interval:g} (measured)",
                received=f"health heartbeat_seconds = {reported}",
                rules=["HEALTH-004"],
                evidence=evidence,
                reproduce=ctx.curl("GET", "/v1/health"),
            )


@check(
    id="sse-heartbeat-default-interval",
    title="Heartbeat: the default interval is 15 s",
    rules=["SSE-HEARTBEAT-003"],
    level=Level.SHOULD,
    timeout_s=10,
)
async def default_interval(ctx: CheckContext) -> None:
    """Health's heartbeat_seconds is 15 unless the run was told the target differs."""
    if ctx.target.heartbeat_explicit:
        ctx.skip("the run was told the target uses another interval (--heartbeat-seconds)")
    reported = ctx.health.get("heartbeat_seconds")
    if reported is None:
        ctx.skip("health does not report heartbeat_seconds")
    default = contract_number(15.0, "x-heartbeat", "default_seconds")
    if reported != default:
        ctx.fail(
            f"Heartbeat interval is not the default {default:g} s",
            expected=f"heartbeat_seconds {default:g} (unless deliberately configured)",
            received=f"heartbeat_seconds {reported}",
            severity="low",
            reproduce=ctx.curl("GET", "/v1/health"),
        )
