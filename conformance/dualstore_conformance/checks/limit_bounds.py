# SPDX-License-Identifier: GPL-3.0-or-later
"""LIMIT-006: every numeric limit probed at exactly the limit (accepted) and one past (refused).

Every number comes from the spec's ``x-dualstore-limits`` (``ctx.limits``); none is written
here. "Characters" are Unicode code points, so the text probes carry characters outside the
Basic Multilingual Plane (one code point, two UTF-16 units, four UTF-8 bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from dualstore_conformance import client as http
from dualstore_conformance.checks.http import (
    expect_at_bound,
    fail_response,
    problem_slug,
)
from dualstore_conformance.checks.limit import body_of_size, probe_over_cap
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

ASTRAL = "\U0001d11e"
"""MUSICAL SYMBOL G CLEF: one code point, two UTF-16 code units."""
ASTRAL_COUNT = 8
"""How many astral characters each length probe carries (a UTF-16 or byte count is off)."""
FILTER_CHUNK = 200
"""Longest string the encoded-length probe puts in one condition (its own choice)."""


def text_of(code_points: int) -> str:
    """A string of exactly code_points code points, some of them astral."""
    astral = min(ASTRAL_COUNT, code_points)
    return "q" * (code_points - astral) + ASTRAL * astral


def filter_of_encoded_length(length: int, field_chars: int) -> str:
    """An encoded filter (base64url, unpadded) of exactly length characters, within every
    other bound: equality conditions on absent fields, each string at most field_chars long.

    Only lengths a base64url encoding can have work (never 4k + 1).
    """
    if length % 4 == 1:
        raise ValueError(f"no base64url encoding is {length} characters long")
    size = length * 3 // 4  # bytes of JSON that encode to exactly length characters
    terms: dict[str, str] = {}
    index = 0
    while True:
        name = f"metadata.p{index}"
        room = size - len(_json({**terms, name: ""}))
        if room < 0:
            raise ValueError(f"cannot build a filter of {length} characters")
        terms[name] = "x" * min(room, field_chars)
        if room <= field_chars:
            break
        index += 1
    encoded = http.encode_filter(terms)
    if len(encoded) != length:
        raise AssertionError(f"built a {len(encoded)}-character filter, wanted {length}")
    return encoded


def _json(value: Any) -> bytes:
    """The bytes http.encode_filter encodes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def next_encoded_length(length: int) -> int:
    """The smallest length above length that a base64url encoding can have."""
    return length + 2 if length % 4 == 0 else length + 1


def nested_logical(depth: int) -> dict[str, Any]:
    """$and/$or alternately nested depth levels deep around one condition."""
    node: dict[str, Any] = {"metadata.bound_depth": 1}
    for level in range(depth):
        node = {("$and", "$or")[level % 2]: [node]}
    return node


def nested_metadata(depth: int) -> dict[str, Any]:
    """A metadata object nesting depth objects deep (the metadata object itself is level 1)."""
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        node = {"d": node}
    return node


Probe = tuple[str, dict[str, str], int, str | None]
"""(label, query parameters, expected status, expected problem slug)."""


async def _judge(ctx: CheckContext, path: str, probes: list[Probe]) -> None:
    for label, params, status, slug in probes:
        response = await ctx.request("GET", path, params=params)
        shown = {k: (v if len(v) <= 80 else v[:60] + f"...({len(v)} chars)")
                 for k, v in params.items()}
        expect_at_bound(ctx, response, label, status, slug, ctx.curl("GET", path, params=shown))


@check("limit-body-at-cap",
       "Limits: a body of exactly the cap is not 413; one byte more gets 413",
       ["LIMIT-006", "LIMIT-001"])
async def body_at_cap(ctx: CheckContext) -> None:
    cap = ctx.limit("max_body_bytes")
    headers = {"Content-Type": "application/json"}
    raw = body_of_size(cap, ctx)
    response = await ctx.request("POST", ctx.collection_path, content=raw, headers=headers)
    if response.status_code not in (201, 422):
        fail_response(ctx, response,
                      f"a body of exactly {cap} bytes (the cap) was not accepted for processing",
                      "201 (or 422 should the server judge the document itself invalid), not 413",
                      f"{response.status_code} type {problem_slug(response)!r}",
                      ctx.curl("POST", ctx.collection_path, headers=headers, body=raw))
    await probe_over_cap(ctx, cap, f"a body of {cap + 1} bytes (the cap + 1) was not 413")


@check("limit-params-at-bounds",
       "Limits: limit, k and q accepted at both ends of their range, refused one past",
       ["LIMIT-006", "LIMIT-003", "READ-002", "SEARCH-001", "SEARCH-002"])
async def params_at_bounds(ctx: CheckContext) -> None:
    recent = f"{ctx.collection_path}/recent"
    search = f"{ctx.collection_path}/search"
    own = ctx.own_filter()
    low, high = ctx.limit("recent_limit.min"), ctx.limit("recent_limit.max")
    await _judge(ctx, recent, [
        (f"limit={low} (the minimum)", {"limit": str(low), "filter": own}, 200, None),
        (f"limit={high} (the maximum)", {"limit": str(high), "filter": own}, 200, None),
        (f"limit={low - 1} (one below)", {"limit": str(low - 1)}, 400, "invalid-request"),
        (f"limit={high + 1} (one above)", {"limit": str(high + 1)}, 400, "invalid-request"),
    ])
    low, high = ctx.limit("search_k.min"), ctx.limit("search_k.max")
    longest = ctx.limit("search_q_max_length")
    await _judge(ctx, search, [
        (f"k={low} (the minimum)", {"q": "bounds", "k": str(low), "filter": own}, 200, None),
        (f"k={high} (the maximum)", {"q": "bounds", "k": str(high), "filter": own}, 200, None),
        (f"k={low - 1} (one below)", {"q": "bounds", "k": str(low - 1)}, 400, "invalid-request"),
        (f"k={high + 1} (one above)", {"q": "bounds", "k": str(high + 1)}, 400,
         "invalid-request"),
        (f"q of {longest} code points ({ASTRAL_COUNT} outside the BMP)",
         {"q": text_of(longest), "filter": own}, 200, None),
        (f"q of {longest + 1} code points", {"q": text_of(longest + 1)}, 400, "invalid-request"),
    ])


FilterCase = tuple[str, Callable[[int], dict[str, Any]], str]
"""(bound label, filter expression for n, dotted limit path)."""


@check("limit-filter-at-bounds",
       "Limits: every filter bound accepted at the bound, 400 invalid-filter one past",
       ["LIMIT-006", "FILTER-004"])
async def filter_at_bounds(ctx: CheckContext) -> None:
    path = f"{ctx.collection_path}/recent"
    strings = ctx.limit("filter.max_string_length") if "max_string_length" in (
        ctx.limits.get("filter") or {}) else None
    cases: list[FilterCase] = [
        ("$and/$or nesting depth", nested_logical, "filter.max_depth"),
        ("conditions", lambda n: {f"metadata.bound_c{i}": i for i in range(n)},
         "filter.max_conditions"),
        ("$in items", lambda n: {"metadata.bound_in": {"$in": list(range(n))}},
         "filter.max_in_items"),
        ("path keys", lambda n: {"metadata." + ".".join(["k"] * n): 1},
         "filter.max_path_segments"),
    ]
    probes: list[Probe] = []
    for label, build, limit_path in cases:
        bound = ctx.limit(limit_path)
        probes.append((f"a filter with {bound} {label} (the bound)",
                       {"filter": http.encode_filter(build(bound))}, 200, None))
        probes.append((f"a filter with {bound + 1} {label} (one past)",
                       {"filter": http.encode_filter(build(bound + 1))}, 400, "invalid-filter"))
    if strings is not None:
        probes.append((f"a filter string value of {strings} code points",
                       {"filter": http.encode_filter({"metadata.s": text_of(strings)})}, 200,
                       None))
        probes.append((f"a filter string value of {strings + 1} code points",
                       {"filter": http.encode_filter({"metadata.s": text_of(strings + 1)})}, 400,
                       "invalid-filter"))
    length = ctx.limit("filter.max_encoded_length")
    field = min(strings or FILTER_CHUNK, FILTER_CHUNK)
    beyond = next_encoded_length(length)
    probes.append((f"a filter of {length} encoded characters (the bound)",
                   {"filter": filter_of_encoded_length(length, field)}, 200, None))
    probes.append((f"a filter of {beyond} encoded characters (the next length base64url "
                   "can have)", {"filter": filter_of_encoded_length(beyond, field)}, 400,
                   "invalid-filter"))
    await _judge(ctx, path, probes)


async def _post(ctx: CheckContext, metadata: dict[str, Any]) -> httpx.Response:
    body = ctx.tagged_body(ctx.unique_text("bounds"), metadata)
    return await ctx.request("POST", ctx.collection_path, json=body)


@check("limit-metadata-at-bounds",
       "Limits: metadata depth, key length and number magnitude accepted at the bound, "
       "422 one past",
       ["LIMIT-006", "WRITE-005"])
async def metadata_at_bounds(ctx: CheckContext) -> None:
    depth = ctx.limit("metadata.max_depth")
    key = ctx.limit("metadata.max_key_length")
    number = ctx.limit("metadata.max_abs_number")
    # The conformance tag sits beside each probe at level 2: it never deepens a probe.
    cases: list[tuple[str, dict[str, Any], int]] = [
        (f"metadata nesting {depth} objects deep", nested_metadata(depth), 201),
        (f"metadata nesting {depth + 1} objects deep", nested_metadata(depth + 1), 422),
        (f"a metadata key of {key} code points", {text_of(key): 1}, 201),
        (f"a metadata key of {key + 1} code points", {text_of(key + 1): 1}, 422),
        (f"the number {number}", {"n": number}, 201),
        (f"the number {-number}", {"n": -number}, 201),
        (f"the number {number + 1}", {"n": number + 1}, 422),
        (f"the number {-number - 1}", {"n": -number - 1}, 422),
    ]
    for label, metadata, status in cases:
        response = await _post(ctx, metadata)
        shown = {"metadata": str(metadata)[:120]}
        expect_at_bound(ctx, response, label, status,
                        "validation-failed" if status == 422 else None,
                        ctx.curl("POST", ctx.collection_path, body=shown), past="was accepted")
