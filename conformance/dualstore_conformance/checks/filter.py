# SPDX-License-Identifier: GPL-3.0-or-later
"""FILTER-* checks: unsafe and malformed filters rejected; semantics on nested metadata."""

from __future__ import annotations

import base64
from typing import Any

from dualstore_conformance import client as http
from dualstore_conformance.checks.http import fail_response, probe_problem
from dualstore_conformance.checks.read import expect_selects
from dualstore_conformance.checks.search import search
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

UNSAFE_FILTERS: list[dict[str, Any]] = [
    {"$where": "sleep(1000) || true"},
    {"$expr": {"$eq": [1, 1]}},
    {"$function": {"body": "function() { return true }", "args": [], "lang": "js"}},
    {"metadata.name": {"$regex": "^a"}},
    {"metadata.name": {"$conformanceUnknown": 1}},
    {"metadata.$name": 1},
    {"metadata.a": {"$ne": 1}},
    {"$nor": [{"metadata.a": 1}]},
    {"metadata.a": {"$elemMatch": {"b": 1}}},
]
"""Filters outside the language (the last ones: MongoDB operators the language does not define)."""


def _encode_raw(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


async def expect_invalid_filter(ctx: CheckContext, value: str, label: str) -> None:
    """Fail unless recent and search both answer the filter value 400 invalid-filter."""
    for path, extra in (
        (f"{ctx.collection_path}/recent", {}),
        (f"{ctx.collection_path}/search", {"q": "conformance"}),
    ):
        await probe_problem(ctx, "GET", path, 400, "invalid-filter",
                            f"{label} was not 400 invalid-filter",
                            params={**extra, "filter": value})


@check("filter-unsafe-operators-400",
       "Filter: $where, $expr, $function, $regex, unknown operators and $ in paths get 400",
       ["FILTER-003", "HTTP-001"])
async def unsafe_operators(ctx: CheckContext) -> None:
    for expression in UNSAFE_FILTERS:
        await expect_invalid_filter(ctx, http.encode_filter(expression), f"filter {expression}")


@check("filter-malformed-400",
       "Filter: not base64url, not UTF-8, not JSON or not an object gets 400 with a detail",
       ["FILTER-002", "HTTP-001"])
async def malformed(ctx: CheckContext) -> None:
    cases = {
        "not base64url": "%%%not-base64%%%",
        "not UTF-8": _encode_raw(b"\xff\xfe\xfd"),
        "not JSON": _encode_raw(b"{metadata.a: 1"),
        "not an object": _encode_raw(b"[1, 2, 3]"),
    }
    path = f"{ctx.collection_path}/recent"
    for label, value in cases.items():
        await expect_invalid_filter(ctx, value, f"a filter that is {label}")
        response = await ctx.request("GET", path, params={"filter": value})
        detail = (http.problem(response) or {}).get("detail")
        if not isinstance(detail, str) or not detail.strip():
            fail_response(ctx, response,
                          f"400 for a filter that is {label} does not explain the problem",
                          "a problem with a non-empty detail", response.text[:300],
                          ctx.curl("GET", path, params={"filter": value}))


@check("filter-nested-metadata",
       "Filter: metadata.a.b equality matches exactly the documents with that nested value",
       ["FILTER-005", "FILTER-010", "READ-006", "SEARCH-006"])
async def nested_metadata(ctx: CheckContext) -> None:
    shapes: list[tuple[dict[str, Any], bool]] = [
        ({"a": {"b": 1}}, True),
        ({"a": {"b": 1.0, "c": "x"}}, True),
        ({"a": {"b": 2}}, False),
        ({"a": {"c": {"b": 1}}}, False),
        ({"b": 1}, False),
        ({"a": {"b": "1"}}, False),
        ({"a": 1}, False),
    ]
    expected = set()
    for metadata, matches in shapes:
        written = await ctx.insert(
            text=f"nested filter {ctx.check_id} {metadata}", metadata=metadata
        )
        if matches:
            expected.add(written["id"])
    term = {"metadata.a.b": 1}
    await expect_selects(ctx, term, expected,
                         "recent with a nested metadata filter returned the wrong documents")
    hits, reproduce = await search(
        ctx, {"q": "nested filter", "k": "10", "filter": ctx.own_filter(term)}
    )
    found = {str(h.get("id")) for h in hits}
    if found != expected:
        ctx.fail(
            "search with the same nested filter returned other documents than recent",
            expected=str(sorted(expected)),
            received=str(sorted(found)),
            reproduce=reproduce,
        )


@check("filter-operators",
       "Filter: $in, $exists, typed $gt/$lte, $or and $and select exactly the right documents",
       ["FILTER-006", "FILTER-007", "FILTER-009"])
async def operators(ctx: CheckContext) -> None:
    values: list[Any] = [1, 5, 10, "5", "b", None]
    ids: dict[str, str] = {}
    for value in values:
        ids[repr(value)] = (await ctx.insert(metadata={"v": value}))["id"]
    ids["absent"] = (await ctx.insert(metadata={"other": 1}))["id"]

    def pick(*keys: str) -> set[str]:
        return {ids[k] for k in keys}

    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"metadata.v": {"$in": [1, "b"]}}, pick("1", "'b'")),
        ({"metadata.v": {"$exists": False}}, pick("absent")),
        ({"metadata.v": {"$gt": 4}}, pick("5", "10")),
        ({"metadata.v": {"$lte": "5"}}, pick("'5'")),
        ({"metadata.v": {"$gte": 5, "$lt": 10}}, pick("5")),
        ({"$or": [{"metadata.v": 1}, {"metadata.v": "b"}]}, pick("1", "'b'")),
        ({"$and": [{"metadata.v": {"$gt": 1}}, {"metadata.v": {"$lt": 6}}]}, pick("5")),
    ]
    for term, wanted in cases:
        await expect_selects(ctx, term, wanted, f"filter {term} selected the wrong documents",
                             evidence={"documents": ids})


@check("filter-base64url-padding-optional",
       "Filter: a base64url filter means the same with or without = padding",
       ["FILTER-001"])
async def padding_optional(ctx: CheckContext) -> None:
    first = (await ctx.insert(metadata={"pad": "ab"}))["id"]
    await ctx.insert(metadata={"pad": "other"})
    # pick an equivalent spelling whose encoding needs padding
    unpadded = ""
    for extra in ("", "x", "xx", "xxx"):
        term: dict[str, Any] = {"metadata.pad": "ab"}
        if extra:
            term["metadata.padding_probe" + extra] = {"$exists": False}
        unpadded = ctx.own_filter(term)
        if len(unpadded) % 4:
            break
    padded = unpadded + "=" * (-len(unpadded) % 4)
    path = f"{ctx.collection_path}/recent"
    for value in (unpadded, padded):
        response = await ctx.request("GET", path, params={"filter": value})
        reproduce = ctx.curl("GET", path, params={"filter": value})
        body = response.json() if response.status_code == 200 else None
        ids = [i.get("id") for i in body.get("items", [])] if isinstance(body, dict) else None
        if ids != [first]:
            padding = "with" if value.endswith("=") else "without"
            fail_response(ctx, response, f"a filter {padding} padding was not honoured",
                          f"200 with exactly [{first}]",
                          f"{response.status_code}: {response.text[:200]}", reproduce)


@check("filter-timestamp-instants",
       "Filter: timestamp conditions compare instants whatever the offsets",
       ["FILTER-008"])
async def timestamp_instants(ctx: CheckContext) -> None:
    written = {
        "A": "2026-05-01T09:00:00.000Z",
        "B": "2026-05-01T12:00:00+02:00",  # 10:00Z
        "C": "2026-05-01T06:00:00-05:00",  # 11:00Z
    }
    ids = {
        name: (await ctx.insert(timestamp=stamp, metadata={"name": name}))["id"]
        for name, stamp in written.items()
    }
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"timestamp": {"$gt": "2026-05-01T11:30:00+02:00"}}, {"B", "C"}),  # > 09:30Z
        ({"timestamp": "2026-05-01T10:00:00Z"}, {"B"}),
        ({"timestamp": {"$lt": "2026-05-01T06:00:00-04:00"}}, {"A"}),  # < 10:00Z
        (
            {
                "timestamp": {
                    "$gte": "2026-05-01T10:00:00.000+00:00",
                    "$lte": "2026-05-01T12:00:00+01:00",
                }
            },
            {"B", "C"},
        ),
    ]
    for term, names in cases:
        await expect_selects(ctx, term, {ids[n] for n in names},
                             f"timestamp filter {term} selected the wrong documents",
                             names={doc: name for name, doc in ids.items()},
                             evidence={"documents": {n: (ids[n], written[n]) for n in ids}})
