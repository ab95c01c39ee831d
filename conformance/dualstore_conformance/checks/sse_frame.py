# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-FRAME checks: stream headers, bytes on open, insert event framing, event types."""

from __future__ import annotations

import json

from dualstore_conformance.client import media_type
from dualstore_conformance.context import CheckContext
from dualstore_conformance.model import Level
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    doc_errors,
    doc_ids,
    doc_of,
    event_dict,
    open_and_ready,
    own_params,
    require_open,
    spec_facts,
    token_grammar,
)

KNOWN_TYPES = {"insert", "heartbeat"}


@check(
    id="sse-frame-content-type",
    title="Stream: 200 with Content-Type text/event-stream",
    rules=["SSE-FRAME-001"],
    timeout_s=15,
)
async def content_type(ctx: CheckContext) -> None:
    """The stream answers 200 text/event-stream (a charset=utf-8 parameter allowed)."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        value = reader.headers.get("content-type", "")
        params = [p.strip().lower().replace(" ", "") for p in value.split(";")[1:]]
        if media_type(reader.headers) != "text/event-stream" or any(
            p and p not in ("charset=utf-8", 'charset="utf-8"') for p in params
        ):
            ctx.fail(
                "Stream Content-Type is not text/event-stream",
                expected="text/event-stream (optionally ; charset=utf-8)",
                received=value or "(no Content-Type)",
                evidence=reader.evidence(),
                reproduce=reader.reproduce(),
            )


@check(
    id="sse-frame-cache-control",
    title="Stream: Cache-Control no-cache",
    rules=["SSE-FRAME-002"],
    timeout_s=15,
)
async def cache_control(ctx: CheckContext) -> None:
    """The stream response carries Cache-Control: no-cache."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        value = reader.headers.get("cache-control", "")
        directives = {d.strip().lower() for d in value.split(",")}
        if "no-cache" not in directives:
            ctx.fail(
                "Stream response lacks Cache-Control: no-cache",
                expected="Cache-Control including no-cache",
                received=value or "(no Cache-Control)",
                evidence=reader.evidence(),
                reproduce=reader.reproduce(),
            )


@check(
    id="sse-frame-no-proxy-buffering",
    title="Stream: X-Accel-Buffering no",
    rules=["SSE-FRAME-003"],
    timeout_s=15,
)
async def no_buffering(ctx: CheckContext) -> None:
    """The stream response carries X-Accel-Buffering: no."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        value = reader.headers.get("x-accel-buffering", "")
        if value.strip().lower() != "no":
            ctx.fail(
                "Stream response lacks X-Accel-Buffering: no",
                expected="X-Accel-Buffering: no",
                received=value or "(header absent)",
                evidence=reader.evidence(),
                reproduce=reader.reproduce(),
            )


@check(
    id="sse-frame-sent-on-open",
    title="Stream: a complete block arrives within 1 s of the headers",
    rules=["SSE-FRAME-004"],
    timeout_s=15,
)
async def sent_on_open(ctx: CheckContext) -> None:
    """Within the spec's 1 s of the headers (never scaled: a limit the spec states), at
    least one complete block (event or comment)."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        limit = spec_facts().open_within_seconds
        start = reader.headers_at or reader.opened_at
        remaining = max(0.0, start + limit - _now())
        ok = await reader.wait_for(lambda r: bool(r.items) or r.parser.blocks > 0, remaining)
        if not ok:
            ctx.fail(
                "Nothing complete was sent when the stream opened",
                expected=f"an event, a comment or a complete block within {limit:.1f} s",
                received=f"{len(reader.raw)} bytes: {bytes(reader.raw[:200])!r}",
                evidence=reader.evidence(),
                reproduce=reader.reproduce(),
            )


@check(
    id="sse-frame-open-retry-heartbeat",
    title="Stream: opens with a retry hint, then a heartbeat",
    rules=["SSE-FRAME-005"],
    level=Level.SHOULD,
    timeout_s=15,
)
async def open_retry_heartbeat(ctx: CheckContext) -> None:
    """The first block sets retry; the first event is a heartbeat."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await require_open(ctx, reader)
        wait = ctx.scaled(2 * spec_facts().open_within_seconds)
        first = await reader.next_event(wait)
        problems = []
        if reader.parser.retry_ms is None:
            problems.append("no valid retry field before the first event")
        if first is None:
            problems.append(f"no event within {wait:g} s")
        elif first.type != "heartbeat":
            problems.append(f"first event is {first.type!r}, not heartbeat")
        if problems:
            ctx.fail(
                "Stream does not open with retry + heartbeat",
                expected="retry: <ms> then event: heartbeat on open",
                received="; ".join(problems),
                evidence=reader.evidence(),
                reproduce=reader.reproduce(),
            )


@check(
    id="sse-frame-insert-event",
    title="Stream: an insert is event insert, an id, one data line holding the Doc",
    rules=["SSE-FRAME-006", "SSE-FRAME-007", "SSE-FRAME-008"],
    timeout_s=20,
)
async def insert_event(ctx: CheckContext) -> None:
    """Judged by the WHATWG parser: legal framing variations are accepted."""
    async with ctx.open_stream(own_params(ctx)) as reader:
        await open_and_ready(reader, ctx)
        text = ctx.unique_text("framing")
        inserted = await ctx.insert(text=text, metadata={"nested": {"k": [1, "two"]}})
        wait = ctx.scaled(5.0)
        event = await reader.next_event(wait, type="insert")
        reproduce = reader.reproduce()
        if event is None:
            ctx.fail(
                "The inserted document was not sent as an insert event",
                expected=f"event: insert for document {inserted['id']} within {wait:g} s",
                received=f"events: {[event_dict(e) for e in reader.events][:5]}",
                rules=["SSE-FRAME-006"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )
        if not event.id_set:
            ctx.fail(
                "Insert event has no id field",
                expected="id: <resume token> in the insert event's block",
                received=json.dumps(event_dict(event)),
                rules=["SSE-FRAME-006"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )
        if not token_grammar().match(event.last_event_id):
            ctx.fail(
                "Insert event id is outside the token grammar",
                expected=f"id matching {token_grammar().pattern}",
                received=repr(event.last_event_id),
                rules=["SSE-FRAME-007"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )
        if "\n" in event.data:
            ctx.fail(
                "Insert event data spans several data lines",
                expected="a single data: line of compact JSON",
                received=repr(event.data[:300]),
                rules=["SSE-FRAME-006"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )
        doc = doc_of(event)
        errors = doc_errors(doc) if doc is not None else ["data is not a JSON object"]
        if errors:
            ctx.fail(
                "Insert event data is not a valid Doc",
                expected="JSON valid against the Doc schema",
                received="; ".join(errors) + f" in {event.data[:300]!r}",
                rules=["SSE-FRAME-006"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )
        assert doc is not None
        if doc.get("id") != inserted["id"] or doc.get("text") != text:
            ctx.fail(
                "Insert event carries another document",
                expected=f"id {inserted['id']} with the inserted text",
                received=f"id {doc.get('id')!r} text {str(doc.get('text'))[:80]!r}",
                rules=["SSE-FRAME-006"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )
        try:
            reader.raw.decode("utf-8")
        except UnicodeDecodeError as error:
            ctx.fail(
                "Stream bytes are not UTF-8",
                expected="UTF-8 encoded event stream",
                received=str(error),
                rules=["SSE-FRAME-008"],
                evidence=reader.evidence(),
                reproduce=reproduce,
            )


@check(
    id="sse-frame-event-types",
    title="Stream: only insert and heartbeat events are sent",
    rules=["SSE-FRAME-009", "SSE-FRAME-007"],
    timeout_s=20,
)
async def event_types(ctx: CheckContext) -> None:
    """Every event on an unfiltered stream (with inserts and heartbeats) is insert/heartbeat.

    The check judges only after it saw its own two insert events arrive: a stream that
    delivered nothing has shown no event type at all.
    """
    async with ctx.open_stream() as reader:
        await open_and_ready(reader, ctx)
        own = [(await ctx.insert())["id"] for _ in range(2)]
        arrived = await reader.wait_for(
            lambda r: set(own) <= set(doc_ids(r.events_of("insert"))), ctx.scaled(5.0)
        )
        if not arrived:
            seen = set(doc_ids(reader.events_of("insert")))
            ctx.unobserved(f"{len([i for i in own if i in seen])} of the check's 2 insert "
                           f"events arrived ({len(reader.events)} events in all): too little "
                           "to judge the event types (delivery: sse-order-*)")
        await reader.wait_for(lambda r: False, ctx.scaled(0.5))
        for event in reader.events:
            if event.type not in KNOWN_TYPES:
                ctx.fail(
                    "Stream sent an event of an undocumented type",
                    expected="event types insert and heartbeat only",
                    received=json.dumps(event_dict(event)),
                    rules=["SSE-FRAME-009"],
                    evidence=reader.evidence(),
                    reproduce=reader.reproduce(),
                )
            if event.id_set and event.last_event_id and not token_grammar().match(
                event.last_event_id
            ):
                ctx.fail(
                    "Event id is outside the token grammar",
                    expected=f"id matching {token_grammar().pattern}",
                    received=repr(event.last_event_id),
                    rules=["SSE-FRAME-007"],
                    evidence=reader.evidence(),
                    reproduce=reader.reproduce(),
                )


def _now() -> float:
    import time

    return time.monotonic()
