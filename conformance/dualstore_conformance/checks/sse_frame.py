# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-FRAME checks: stream headers, bytes on open, insert event framing, event types."""

from __future__ import annotations

import json
from collections.abc import Callable

from dualstore_conformance import stream_judging
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import CheckFunction, check
from dualstore_conformance.ssehelp import (
    doc_errors,
    doc_ids,
    doc_of,
    event_dict,
    fail_stream,
    open_and_ready,
    opened,
    spec_facts,
    token_grammar,
)

KNOWN_TYPES = {"insert", "heartbeat"}


HEADER_CHECKS: tuple[tuple[str, str, str, str, Callable[[str], bool], str, str], ...] = (
    ("sse-frame-content-type", "Stream: 200 with Content-Type text/event-stream",
     "SSE-FRAME-001", "Content-Type", stream_judging.event_stream_type_ok,
     "Stream Content-Type is not text/event-stream",
     "text/event-stream (optionally ; charset=utf-8)"),
    ("sse-frame-cache-control", "Stream: Cache-Control no-cache",
     "SSE-FRAME-002", "Cache-Control", stream_judging.no_cache_ok,
     "Stream response lacks Cache-Control: no-cache", "Cache-Control including no-cache"),
    ("sse-frame-no-proxy-buffering", "Stream: X-Accel-Buffering no",
     "SSE-FRAME-003", "X-Accel-Buffering", stream_judging.no_buffering_ok,
     "Stream response lacks X-Accel-Buffering: no", "X-Accel-Buffering: no"),
)
"""(check id, check title, rule, header, predicate on its value, failure title, expected)."""


def header_check(name: str, holds: Callable[[str], bool], title: str,
                 expected: str) -> CheckFunction:
    """A check that opens an own stream and fails unless header ``name`` holds (absent
    counts as empty)."""

    async def judge(ctx: CheckContext) -> None:
        async with opened(ctx) as reader:
            value = reader.headers.get(name, "")
            if not holds(value):
                fail_stream(reader, title, expected, value or f"(no {name})")

    return judge


for _id, _title, _rule, _name, _holds, _fails, _expected in HEADER_CHECKS:
    check(_id, _title, [_rule], timeout_s=15)(
        header_check(_name, _holds, _fails, _expected))


@check("sse-frame-sent-on-open",
       "Stream: a complete block arrives within 1 s of the headers",
       ["SSE-FRAME-004"], timeout_s=15)
async def sent_on_open(ctx: CheckContext) -> None:
    """Within the spec's 1 s of the headers (never scaled: a limit the spec states), at
    least one complete block (event or comment)."""
    async with opened(ctx) as reader:
        limit = spec_facts().open_within_seconds
        start = reader.headers_at or reader.opened_at
        remaining = max(0.0, start + limit - _now())
        ok = await reader.wait_for(lambda r: bool(r.items) or r.parser.blocks > 0, remaining)
        if not ok:
            fail_stream(reader, "Nothing complete was sent when the stream opened",
                        f"an event, a comment or a complete block within {limit:.1f} s",
                        f"{len(reader.raw)} bytes: {bytes(reader.raw[:200])!r}")


@check("sse-frame-open-retry-heartbeat",
       "Stream: opens with a retry hint, then a heartbeat",
       ["SSE-FRAME-005"], timeout_s=15)
async def open_retry_heartbeat(ctx: CheckContext) -> None:
    """The first block sets retry; the first event is a heartbeat."""
    async with opened(ctx) as reader:
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
            fail_stream(reader, "Stream does not open with retry + heartbeat",
                        "retry: <ms> then event: heartbeat on open", "; ".join(problems))


@check("sse-frame-insert-event",
       "Stream: an insert is event insert, an id, one data line holding the Doc",
       ["SSE-FRAME-006", "SSE-FRAME-007", "SSE-FRAME-008"], timeout_s=20)
async def insert_event(ctx: CheckContext) -> None:
    """Judged by the WHATWG parser: legal framing variations are accepted."""
    async with opened(ctx, ready=True) as reader:
        text = ctx.unique_text("framing")
        inserted = await ctx.insert(text=text, metadata={"nested": {"k": [1, "two"]}})
        wait = ctx.scaled(5.0)
        event = await reader.next_event(wait, type="insert")
        if event is None:
            fail_stream(reader, "The inserted document was not sent as an insert event",
                        f"event: insert for document {inserted['id']} within {wait:g} s",
                        f"events: {[event_dict(e) for e in reader.events][:5]}",
                        ["SSE-FRAME-006"])
        if not event.id_set:
            fail_stream(reader, "Insert event has no id field",
                        "id: <resume token> in the insert event's block",
                        json.dumps(event_dict(event)),
                        ["SSE-FRAME-006"])
        if not token_grammar().match(event.last_event_id):
            fail_stream(reader, "Insert event id is outside the token grammar",
                        f"id matching {token_grammar().pattern}",
                        repr(event.last_event_id),
                        ["SSE-FRAME-007"])
        if "\n" in event.data:
            fail_stream(reader, "Insert event data spans several data lines",
                        "a single data: line of compact JSON",
                        repr(event.data[:300]),
                        ["SSE-FRAME-006"])
        doc = doc_of(event)
        errors = doc_errors(doc) if doc is not None else ["data is not a JSON object"]
        if errors:
            fail_stream(reader, "Insert event data is not a valid Doc",
                        "JSON valid against the Doc schema",
                        "; ".join(errors) + f" in {event.data[:300]!r}",
                        ["SSE-FRAME-006"])
        assert doc is not None
        if doc.get("id") != inserted["id"] or doc.get("text") != text:
            fail_stream(reader, "Insert event carries another document",
                        f"id {inserted['id']} with the inserted text",
                        f"id {doc.get('id')!r} text {str(doc.get('text'))[:80]!r}",
                        ["SSE-FRAME-006"])
        try:
            reader.raw.decode("utf-8")
        except UnicodeDecodeError as error:
            fail_stream(reader, "Stream bytes are not UTF-8",
                        "UTF-8 encoded event stream",
                        str(error),
                        ["SSE-FRAME-008"])


@check("sse-frame-event-types",
       "Stream: only insert and heartbeat events are sent",
       ["SSE-FRAME-009", "SSE-FRAME-007"], timeout_s=20)
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
                fail_stream(reader, "Stream sent an event of an undocumented type",
                            "event types insert and heartbeat only",
                            json.dumps(event_dict(event)),
                            ["SSE-FRAME-009"])
            if event.id_set and event.last_event_id and not token_grammar().match(
                event.last_event_id
            ):
                fail_stream(reader, "Event id is outside the token grammar",
                            f"id matching {token_grammar().pattern}",
                            repr(event.last_event_id),
                            ["SSE-FRAME-007"])


def _now() -> float:
    import time

    return time.monotonic()
