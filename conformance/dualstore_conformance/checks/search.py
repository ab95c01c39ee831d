# SPDX-License-Identifier: GPL-3.0-or-later
"""SEARCH-* checks: a unique document found first, k under a selective filter, scores."""

from __future__ import annotations

import itertools
from typing import Any

from dualstore_conformance.checks.http import items_of, probe_problem, probe_status
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check


async def search(ctx: CheckContext, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """GET search with params; fail unless 200 with an items list; return (items, curl)."""
    body, response, reproduce = await probe_status(
        ctx, "GET", f"{ctx.collection_path}/search", 200, "search was not answered 200",
        params=params)
    return items_of(ctx, body, response, "search answer has no items list", reproduce), reproduce


@check("search-unique-document-first",
       "Search: a just-inserted document with distinctive text is the first hit",
       ["SEARCH-005"])
async def unique_first(ctx: CheckContext) -> None:
    words = ctx.unique_text("zebra quasar marmalade").split()
    text = " ".join(words)
    written = await ctx.insert(text=text)
    items, reproduce = await search(ctx, {"q": text, "k": "5"})
    first = items[0].get("id") if items else None
    if first != written["id"]:
        ctx.fail(
            "a just-inserted document was not the first search hit for its own text",
            expected=f"first hit {written['id']}",
            received=str([i.get("id") for i in items]),
            reproduce=reproduce,
        )


@check("search-k-with-selective-filter",
       "Search: k is honoured exactly when a selective filter matches at least k documents",
       ["SEARCH-004", "SEARCH-006", "SEARCH-002"])
async def k_selective(ctx: CheckContext) -> None:
    mine = []
    for n in range(5):
        mine.append(
            (await ctx.insert(text=f"selective conformance document {n}", metadata={"n": n}))["id"]
        )
    items, reproduce = await search(ctx, {"q": "conformance", "k": "3", "filter": ctx.own_filter()})
    ids = [i.get("id") for i in items]
    if len(ids) != 3 or not set(ids) <= set(mine):
        ctx.fail(
            "search with a selective filter did not return exactly k matching documents",
            expected=f"3 of {mine}",
            received=str(ids),
            reproduce=reproduce,
        )


@check("search-score-order",
       "Search: every hit has a numeric score and hits are best first",
       ["SEARCH-003"])
async def score_order(ctx: CheckContext) -> None:
    for text in ("alpha beta gamma", "alpha beta", "alpha", "unrelated words entirely"):
        await ctx.insert(text=f"{text} {ctx.check_id}")
    items, reproduce = await search(
        ctx, {"q": "alpha beta gamma", "k": "4", "filter": ctx.own_filter()}
    )
    scores = [i.get("score") for i in items]
    if not items or not all(isinstance(s, int | float) and not isinstance(s, bool) for s in scores):
        ctx.fail(
            "search hits lack a numeric score",
            expected="a number per hit",
            received=str(scores),
            reproduce=reproduce,
        )
    if any(float(a or 0) < float(b or 0) for a, b in itertools.pairwise(scores)):
        ctx.fail(
            "search hits are not ordered best first",
            expected="non-increasing scores",
            received=str(scores),
            reproduce=reproduce,
        )


@check("search-q-required",
       "Search: a missing or empty q gets 400 invalid-request",
       ["SEARCH-001", "HTTP-001"])
async def q_required(ctx: CheckContext) -> None:
    path = f"{ctx.collection_path}/search"
    longest = ctx.limit("search_q_max_length")
    for params in ({}, {"q": ""}, {"q": "x" * (longest + 1)}):
        await probe_problem(ctx, "GET", path, 400, "invalid-request",
                            f"search with q={str(params.get('q', '(missing)'))[:20]!r} was not 400",
                            params=params)
