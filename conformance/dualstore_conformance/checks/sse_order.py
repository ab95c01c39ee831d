# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE-ORDER checks: exactly-once, one consistent order, stable ids, commit-before-event, start."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import (
    doc_ids,
    doc_of,
    event_dict,
    fail_stream,
    insert_many,
    open_and_ready,
    opened,
    own_params,
    spec_facts,
)
from dualstore_conformance.streams import StreamReader

READERS = 3
WRITERS = 4
DOCUMENTS = 40


@check("sse-order-concurrent-exactly-once",
       "Order: concurrent writers, several readers: every insert once, one order, same ids",
       ["SSE-ORDER-001", "SSE-ORDER-002", "SSE-ORDER-003"], timeout_s=60)
async def concurrent_exactly_once(ctx: CheckContext) -> None:
    """4 writers insert 40 documents while 3 readers watch the check's own documents."""
    async with contextlib.AsyncExitStack() as stack:
        readers: list[StreamReader] = []
        for _ in range(READERS):
            reader = await stack.enter_async_context(ctx.open_stream(own_params(ctx)))
            await open_and_ready(reader, ctx)
            readers.append(reader)
        inserted = await insert_many(ctx, DOCUMENTS, writers=WRITERS, label="order")
        expected = set(inserted)
        deadline = ctx.scaled(15.0)
        await asyncio.gather(*(
            r.wait_for(lambda r: len(r.events_of("insert")) >= DOCUMENTS, deadline)
            for r in readers
        ))
        # linger: a duplicate or stray event would arrive now
        await asyncio.sleep(ctx.scaled(0.5))
        sequences = []
        for index, reader in enumerate(readers):
            events = reader.events_of("insert")
            ids = doc_ids(events)
            counts = Counter(ids)
            duplicates = sorted(i for i, n in counts.items() if n > 1)
            missing = sorted(expected - set(ids))
            strangers = sorted(set(ids) - expected)
            if duplicates or missing or strangers:
                ctx.fail(
                    "A stream did not deliver every insert exactly once",
                    expected=f"each of the {DOCUMENTS} inserted documents exactly once",
                    received=(
                        f"reader {index}: {len(events)} events; missing {missing[:5]} "
                        f"({len(missing)}), duplicated {duplicates[:5]}, unexpected "
                        f"{strangers[:5]}; the stream "
                        + ("had ended" if reader.closed else
                           f"was still open {deadline:.1f} s after the last insert")
                    ),
                    rules=["SSE-ORDER-001"],
                    evidence={"reader": index, "ids": ids, **reader.evidence()},
                    reproduce=reader.reproduce(),
                )
            sequences.append([(d, e.last_event_id) for d, e in zip(ids, events, strict=True)])
        first = sequences[0]
        for index, sequence in enumerate(sequences[1:], start=1):
            order_a = [d for d, _ in first]
            order_b = [d for d, _ in sequence]
            if order_a != order_b:
                at = next(i for i, (a, b) in enumerate(zip(order_a, order_b, strict=True))
                          if a != b)
                ctx.fail(
                    "Two streams delivered the same documents in different orders",
                    expected="one consistent order on every stream of the collection",
                    received=f"reader 0 and reader {index} differ at position {at}: "
                             f"{order_a[at]} vs {order_b[at]}",
                    rules=["SSE-ORDER-002"],
                    evidence={"reader_0": order_a, f"reader_{index}": order_b},
                    reproduce=readers[0].reproduce(),
                )
            if first != sequence:
                diff = next((a, b) for a, b in zip(first, sequence, strict=True) if a != b)
                ctx.fail(
                    "A document carries different event ids on different streams",
                    expected="the same event id for a document on every stream",
                    received=f"document {diff[0][0]}: id {diff[0][1]!r} vs {diff[1][1]!r}",
                    rules=["SSE-ORDER-003"],
                    evidence={"reader_0": first, f"reader_{index}": sequence},
                    reproduce=readers[0].reproduce(),
                )
        event_ids = [e for _, e in first]
        await _ids_are_positions(ctx, first)
        if len(set(event_ids)) != len(event_ids):
            repeated = [i for i, n in Counter(event_ids).items() if n > 1]
            ctx.fail(
                "Different documents share an event id",
                expected="distinct event ids (ids identify positions)",
                received=f"repeated ids {repeated[:5]}",
                rules=["SSE-ORDER-003"],
                evidence={"sequence": first},
                reproduce=readers[0].reproduce(),
            )


async def _ids_are_positions(ctx: CheckContext, sequence: list[tuple[str, str]]) -> None:
    """Resuming after the event at a position replays exactly what followed it, each
    document with the same id as on the live streams."""
    for position in (0, len(sequence) // 3, (2 * len(sequence)) // 3):
        token = sequence[position][1]
        async with ctx.open_stream(own_params(ctx), headers={"Last-Event-ID": token}) as resumed:
            if resumed.status != 200:
                fail_stream(resumed, "Resuming from a delivered event id was refused",
                            "200 and a replay of the events after it",
                            f"{resumed.status} {resumed.body[:200]!r}", ["SSE-ORDER-003"])
            want = sequence[position + 1:]
            await resumed.collect(len(want), ctx.scaled(10.0))
            await asyncio.sleep(ctx.scaled(0.2))
            events = resumed.events_of("insert")
            got = list(zip(doc_ids(events), [e.last_event_id for e in events], strict=True))
            if got != want:
                differences = [
                    (i, a, b) for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b
                ]
                fail_stream(resumed,
                            "An event id does not identify its position in the delivery order",
                            f"resuming after event {position} ({token!r}) replays the "
                            f"{len(want)} documents that followed it, in order, same ids",
                            f"{len(got)} events; first differences (position, expected "
                            f"(doc, id), received): {differences[:3]}",
                            ["SSE-ORDER-003"], delivered=sequence, replayed=got)


@check("sse-order-committed-before-event",
       "Order: a document is readable by id as soon as its insert event arrives",
       ["SSE-ORDER-004"])
async def committed_before_event(ctx: CheckContext) -> None:
    """GET /v1/{collection}/{id} right after each insert event answers 200.

    Judged only on events received: fewer insert events than documents written is "could
    not observe" here (delivery itself is judged by sse-order-concurrent-exactly-once).
    """
    count = 5
    async with opened(ctx, ready=True) as reader:
        writer = asyncio.create_task(insert_many(ctx, count, writers=2, label="commit"))
        judged = 0
        try:
            for _ in range(count):
                event = await reader.next_event(ctx.scaled(10.0), type="insert")
                if event is None:
                    break
                doc_id = (doc_of(event) or {}).get("id")
                if not isinstance(doc_id, str) or not doc_id:
                    fail_stream(reader, "An insert event carries no document id",
                                "insert event data: a Doc with a string id",
                                repr(event.data[:300]), ["SSE-FRAME-006"], event=event_dict(event))
                path = f"{ctx.collection_path}/{doc_id}"
                response = await ctx.request("GET", path)
                if response.status_code != 200:
                    ctx.fail(
                        "A document announced by an insert event is not readable yet",
                        expected=f"GET {path} -> 200 once its insert event was received",
                        received=f"{response.status_code}",
                        evidence={"event": event_dict(event), **ctx.evidence(response)},
                        reproduce=ctx.curl("GET", path),
                    )
                judged += 1
        finally:
            await writer
        if judged < count:
            ctx.unobserved(f"{judged} of {count} insert events arrived: the rest could not be "
                           "judged (delivery is judged by sse-order-concurrent-exactly-once)")


@check("sse-order-start-point",
       "Order: a stream without a resume token starts live (nothing from before it opened)",
       ["SSE-ORDER-005"])
async def start_point(ctx: CheckContext) -> None:
    """Documents committed before the open are not sent; ones after are."""
    before = await ctx.insert(text=ctx.unique_text("before"))
    async with opened(ctx, ready=True) as reader:
        after = await ctx.insert(text=ctx.unique_text("after"))
        await reader.wait_for(
            lambda r: after["id"] in doc_ids(r.events_of("insert")), ctx.scaled(5.0)
        )
        await asyncio.sleep(ctx.scaled(0.3))
        ids = doc_ids(reader.events_of("insert"))
        if before["id"] in ids or ids.count(after["id"]) != 1 or len(ids) != 1:
            fail_stream(reader, "A stream without a resume token did not start at its open",
                        f"only {after['id']} (committed after the open), once",
                        f"insert events for {ids}")


@check("sse-order-latency",
       "Order: under light load an insert reaches an open stream within 2 s",
       ["SSE-ORDER-006"])
async def latency(ctx: CheckContext) -> None:
    """Time from the 201 answer to the insert event, for 3 documents."""
    async with opened(ctx, ready=True) as reader:
        delays = []
        for _ in range(3):
            sent = await ctx.insert()
            answered = time.monotonic()
            wait = ctx.scaled(10.0)
            event = await reader.next_event(wait, type="insert")
            if event is None:
                fail_stream(reader, "An insert did not reach the open stream",
                            f"insert event for {sent['id']}", f"nothing within {wait:g} s")
            received_at = next(t for t, item in reversed(reader.items) if item is event)
            delays.append(max(0.0, received_at - answered))
        worst = max(delays)
        target = spec_facts().latency_target_seconds  # a spec limit: never scaled
        if worst > target:
            ctx.fail(
                "Insert events are slow to reach open streams",
                expected=f"each within {target:g} s of the insert's 201",
                received=f"delays {', '.join(f'{d:.2f} s' for d in delays)}",
                evidence={"delays_s": delays},
                reproduce=reader.reproduce(),
                severity="medium",
            )
