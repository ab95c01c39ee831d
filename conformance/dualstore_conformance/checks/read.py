# SPDX-License-Identifier: GPL-3.0-or-later
"""READ-* checks: by id, 404 for unknown ids, recent order and limit, cursor pagination."""

from __future__ import annotations

import uuid
from typing import Any

from dualstore_conformance.checks.http import (
    fail_response,
    probe_problem,
    probe_status,
    recent_own,
)
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check


@check("read-by-id",
       "Read: GET /v1/{collection}/{id} returns the document just written",
       ["READ-005", "WRITE-009"])
async def read_by_id(ctx: CheckContext) -> None:
    written = await ctx.insert(metadata={"kind": "by-id"})
    path = f"{ctx.collection_path}/{written['id']}"
    doc, response, reproduce = await probe_status(
        ctx, "GET", path, 200, "GET by id of a just-written document was not 200")
    body = written["body"]
    if not isinstance(doc, dict) or (doc.get("id"), doc.get("text"), doc.get("metadata")) != (
        written["id"],
        body["text"],
        body["metadata"],
    ):
        fail_response(
            ctx, response, "GET by id returned something other than the document written",
            f"id={written['id']} text={body['text']!r} metadata={body['metadata']!r}",
            response.text[:400], reproduce)


@check("read-unknown-id-404",
       "Read: an id with no document, or outside the id pattern, gets 404 not-found problem",
       ["READ-005", "HTTP-001"])
async def unknown_id(ctx: CheckContext) -> None:
    for doc_id in (uuid.uuid4().hex, "conformance%20not%20an%20id"):
        path = f"{ctx.collection_path}/{doc_id}"
        await probe_problem(ctx, "GET", path, 404, "not-found",
                            f"GET of unknown id {doc_id!r} was not 404")


@check("read-recent-newest-first",
       "Read: recent lists newest first by timestamp",
       ["READ-001", "READ-006"])
async def recent_order(ctx: CheckContext) -> None:
    stamps = ["2026-01-01T00:00:02.000Z", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"]
    ids = {}
    for stamp in stamps:
        ids[stamp] = (await ctx.insert(timestamp=stamp, metadata={"at": stamp}))["id"]
    items, _, reproduce = await recent_own(ctx)
    expected = [ids[s] for s in sorted(stamps, reverse=True)]
    received = [i.get("id") for i in items]
    if received != expected:
        ctx.fail(
            "recent is not newest first by timestamp",
            expected=str(expected),
            received=str(received),
            reproduce=reproduce,
        )


@check("read-recent-limit",
       "Read: recent returns at most limit items and offers next when more follow",
       ["READ-002", "READ-001"])
async def recent_limit(ctx: CheckContext) -> None:
    for _ in range(3):
        await ctx.insert()
    body, response, reproduce = await probe_status(
        ctx, "GET", f"{ctx.collection_path}/recent", 200, "recent with limit=2 was not 200",
        params={"filter": ctx.own_filter(), "limit": "2"})
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != 2 or not body.get("next"):
        fail_response(
            ctx, response,
            "recent with limit=2 over 3 documents did not answer 2 items and a next cursor",
            "2 items and next", response.text[:400], reproduce)


@check("read-cursor-stable-while-inserting",
       "Read: following next visits every document once, in order, while inserts happen",
       ["READ-003", "READ-006"], timeout_s=60.0)
async def cursor_stability(ctx: CheckContext) -> None:
    # Distinct, older timestamps: the pages' expected order is known in advance.
    original = []
    for second in range(7):
        stamp = f"2025-06-01T00:00:{second:02d}.000Z"
        original.append((await ctx.insert(timestamp=stamp, metadata={"n": second}))["id"])
    expected = list(reversed(original))
    path = f"{ctx.collection_path}/recent"
    params: dict[str, Any] = {"filter": ctx.own_filter(), "limit": "3"}
    visited: list[str] = []
    inserted: list[str] = []
    for page in range(10):
        body, _, reproduce = await probe_status(
            ctx, "GET", path, 200, f"page {page + 1} of recent was not 200", params=params)
        visited += [str(i.get("id")) for i in body.get("items", [])]
        # Newer documents and one with a timestamp inside the range already paged arrive
        # between page requests: neither may cause a repeat or a skip of the original ones.
        inserted.append((await ctx.insert(metadata={"during": page}))["id"])
        inserted.append(
            (
                await ctx.insert(
                    timestamp="2025-06-01T00:00:03.500Z", metadata={"during": page, "middle": True}
                )
            )["id"]
        )
        cursor = body.get("next")
        if not cursor:
            break
        params = {**params, "cursor": cursor}
    originals_seen = [i for i in visited if i in set(original)]
    if originals_seen != expected:
        ctx.fail(
            "pagination while inserting repeated, skipped or reordered documents",
            expected=f"{expected} (each once, newest first)",
            received=str(originals_seen),
            evidence={"visited": visited, "inserted_during": inserted},
            reproduce=ctx.curl("GET", path, params={"filter": ctx.own_filter(), "limit": "3"}),
        )
    if len(visited) != len(set(visited)):
        ctx.fail(
            "pagination while inserting delivered a document twice",
            expected="no repeats",
            received=str(visited),
            reproduce=reproduce,
        )


@check("read-invalid-cursor-400",
       "Read: a cursor the server did not issue gets 400 invalid-cursor",
       ["READ-004", "HTTP-001"])
async def invalid_cursor(ctx: CheckContext) -> None:
    path = f"{ctx.collection_path}/recent"
    for cursor in ("conformance-not-a-cursor", "eyJub3QiOiJhIGN1cnNvciJ9", "!!"):
        await probe_problem(ctx, "GET", path, 400, "invalid-cursor",
                            f"cursor {cursor!r} was not 400 invalid-cursor",
                            params={"cursor": cursor})


async def own_ids(ctx: CheckContext, extra: dict[str, Any] | None = None) -> list[str]:
    """Ids of this check's documents (optionally with extra filter terms) via recent."""
    items, _, _ = await recent_own(ctx, extra)
    return [str(i.get("id")) for i in items]


async def expect_selects(ctx: CheckContext, term: dict[str, Any], wanted: set[str], title: str,
                         names: dict[str, str] | None = None,
                         evidence: dict[str, Any] | None = None) -> None:
    """Fail unless recent, filtered on term, lists exactly the wanted documents of this check
    (``names``: labels to show for ids)."""
    got = set(await own_ids(ctx, term))
    if got != wanted:
        label = (names or {}).get
        ctx.fail(title, expected=str(sorted(label(d, d) for d in wanted)),
                 received=str(sorted(label(d, d) for d in got)), evidence=evidence,
                 reproduce=ctx.curl("GET", f"{ctx.collection_path}/recent",
                                    params={"filter": ctx.own_filter(term)}))
