# SPDX-License-Identifier: GPL-3.0-or-later
"""DOC-* checks: a document's exact shape and its text and metadata round-tripping on every read."""

from __future__ import annotations

import re
from typing import Any

from dualstore_conformance import judging
from dualstore_conformance.checks.http import expect_status, recent_own
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

DOC_KEYS = {"id", "text", "timestamp", "metadata"}
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

ROUND_TRIP_METADATA: dict[str, Any] = {
    "unicode": "zürich ☃ 東京 \U0001f600",
    "nested": {"level": {"deeper": [1, 2.5, "three", None, True, {"k": "v"}]}},
    "empty": {},
    "number": 9007199254740991,
    "negative": -0.125,
    "flag": False,
    "nothing": None,
}
ROUND_TRIP_TEXT = 'line one\nline two\ttabbed "quoted" \\ back-slash, ünïcödé ☃ \U0001f600'


async def _by_id(ctx: CheckContext, doc_id: str) -> tuple[Any, str]:
    path = f"{ctx.collection_path}/{doc_id}"
    response = await ctx.request("GET", path)
    reproduce = ctx.curl("GET", path)
    return expect_status(
        ctx, response, 200, "GET by id of a just-written document was not 200", reproduce
    ), reproduce


@check("doc-shape-exact",
       "Doc: a document has exactly id, text, timestamp and metadata, with a valid id",
       ["DOC-001", "DOC-003"])
async def doc_shape(ctx: CheckContext) -> None:
    written = await ctx.insert(metadata={"shape": 1})
    doc, reproduce = await _by_id(ctx, written["id"])
    items, _, recent_reproduce = await recent_own(ctx)
    for where, item, how in (
        ("by id", doc, reproduce),
        *(("recent", i, recent_reproduce) for i in items),
    ):
        keys = set(item) if isinstance(item, dict) else set()
        if keys != DOC_KEYS:
            ctx.fail(
                f"document read {where} has the wrong keys",
                expected=f"exactly {sorted(DOC_KEYS)}",
                received=f"{sorted(keys)}: {item!r}"[:400],
                reproduce=how,
            )
        if not (isinstance(item["id"], str) and ID_RE.match(item["id"])):
            ctx.fail(
                f"document id read {where} does not match ^[A-Za-z0-9_-]{{1,64}}$",
                expected="an id matching the pattern",
                received=repr(item["id"]),
                reproduce=how,
            )
    if not isinstance(written["id"], str) or not ID_RE.match(written["id"]):
        ctx.fail(
            "POST answered an id outside the id pattern",
            expected="^[A-Za-z0-9_-]{1,64}$",
            received=repr(written["id"]),
        )


@check("doc-round-trip-exact",
       "Doc: text and metadata come back JSON-equal by id, from recent and from search",
       ["DOC-004"])
async def doc_round_trip(ctx: CheckContext) -> None:
    text = f"{ROUND_TRIP_TEXT} {ctx.unique_text('round-trip')}"
    written = await ctx.insert(text=text, metadata=dict(ROUND_TRIP_METADATA))
    sent_metadata = written["body"]["metadata"]
    doc, reproduce = await _by_id(ctx, written["id"])
    reads: list[tuple[str, Any, str]] = [("by id", doc, reproduce)]
    items, _, recent_reproduce = await recent_own(ctx)
    reads += [("recent", i, recent_reproduce) for i in items if i.get("id") == written["id"]]
    search_path = f"{ctx.collection_path}/search"
    params = {"q": text, "k": "1", "filter": ctx.own_filter()}
    response = await ctx.request("GET", search_path, params=params)
    search_reproduce = ctx.curl("GET", search_path, params=params)
    body = expect_status(ctx, response, 200, "search did not answer 200", search_reproduce)
    hits = body.get("items", []) if isinstance(body, dict) else []
    reads += [
        ("search", {k: v for k, v in h.items() if k != "score"}, search_reproduce)
        for h in hits
        if isinstance(h, dict) and h.get("id") == written["id"]
    ]
    if len(reads) < 3:
        ctx.fail(
            "the written document is missing from recent or search",
            expected="the document by id, in recent and in search",
            received=f"found via {[r[0] for r in reads]}",
            reproduce=search_reproduce,
        )
    for where, item, how in reads:
        if item.get("text") != text or item.get("metadata") != sent_metadata:
            ctx.fail(
                f"text or metadata read {where} differs from what was written",
                expected=f"text={text!r} metadata={sent_metadata!r}"[:500],
                received=f"text={item.get('text')!r} metadata={item.get('metadata')!r}"[:500],
                reproduce=how,
            )
        if not judging.doc_timestamp_pattern().match(str(item.get("timestamp"))):
            ctx.fail(
                f"timestamp read {where} is not YYYY-MM-DDTHH:MM:SS.sssZ",
                expected="e.g. 2026-11-25T10:00:00.000Z",
                received=repr(item.get("timestamp")),
                rules=["DOC-002"],
                reproduce=how,
            )
