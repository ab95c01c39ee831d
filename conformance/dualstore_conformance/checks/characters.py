# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-018: lengths in characters count code points: strings of characters outside the
Basic Multilingual Plane are accepted at the limit and refused one past it.

A server counting UTF-16 code units (a JavaScript string's length) sees twice the length and
refuses at the limit; one counting UTF-8 bytes sees four times. Limits come from the spec's
``x-dualstore-limits`` via ``ctx.limits``. Metadata keys are wholly astral; ``q`` and filter
strings hold as many astral characters as keep the request line within HTTP-020's minimum and
the filter within its encoded length (each still counts far over the limit in UTF-16 units).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from dualstore_spec import facts

from dualstore_conformance.checks.http import expect_at_bound
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

ASTRAL = "\U0001f600"
"""GRINNING FACE: one code point, two UTF-16 code units, four UTF-8 bytes."""


PERCENT_ENCODED = len("%F0%9F%98%80")
"""Octets one astral character takes in a request target."""
ROOM = 512
"""Octets of the request line kept for the method, path, other parameters and version."""
FILTER_ROOM = 64
"""Bytes of filter JSON kept for the braces, field name and quotes."""


def astral(code_points: int, astral_count: int | None = None) -> str:
    """A string of exactly code_points characters, the last astral_count (all by default)
    outside the BMP."""
    count = code_points if astral_count is None else min(astral_count, code_points)
    return "q" * (code_points - count) + ASTRAL * count


def q_astral_count(code_points: int, request_line: int) -> int:
    """How many of code_points q characters can be astral with the request line inside the
    octets every server accepts (HTTP-020: larger request lines may be refused)."""
    return max(0, min(code_points, (request_line - ROOM - code_points) // (PERCENT_ENCODED - 1)))


def filter_astral_count(code_points: int, encoded_length: int) -> int:
    """How many of code_points filter-string characters can be astral (4 UTF-8 bytes each)
    with the encoded filter within its length bound."""
    raw = encoded_length * 3 // 4 - FILTER_ROOM
    return max(0, min(code_points, (raw - code_points) // 3))


def encode_utf8_filter(expression: dict[str, Any]) -> str:
    """The filter value for expression written as UTF-8 JSON (no \\u escapes)."""
    raw = json.dumps(expression, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@check("http-characters-code-points",
       "Characters: q, metadata keys and filter strings made of astral characters are "
       "accepted at the limit, refused one past",
       ["HTTP-018"])
async def code_points(ctx: CheckContext) -> None:
    search = f"{ctx.collection_path}/search"
    longest = ctx.limit("search_q_max_length")
    line = facts.current().request_size.min_request_line_octets
    for count, status in ((longest, 200), (longest + 1, 400)):
        many = q_astral_count(count, line)
        params = {"q": astral(count, many), "filter": ctx.own_filter()}
        response = await ctx.request("GET", search, params=params)
        shown = ctx.curl("GET", search, params={"q": f"<{count - many} x q, {many} x U+1F600>"})
        label = f"a q of {count} characters, {many} of them outside the BMP"
        expect_at_bound(ctx, response, label, status,
                        "invalid-request" if status == 400 else None, shown)
    key = ctx.limit("metadata.max_key_length")
    for count, status in ((key, 201), (key + 1, 422)):
        body = ctx.tagged_body(ctx.unique_text("characters"), {astral(count): 1})
        response = await ctx.request("POST", ctx.collection_path, json=body)
        shown = ctx.curl("POST", ctx.collection_path,
                         body={"metadata": {f"<{count} x U+1F600>": 1}})
        label = f"a metadata key of {count} characters outside the BMP"
        expect_at_bound(ctx, response, label, status,
                        "validation-failed" if status == 422 else None, shown, past="was accepted")
    filters = ctx.limits.get("filter") or {}
    if "max_string_length" not in filters:
        ctx.note("the spec states no filter string length: that probe is left out")
        return
    strings = ctx.limit("filter.max_string_length")
    recent = f"{ctx.collection_path}/recent"
    encoded = ctx.limit("filter.max_encoded_length")
    for count, status in ((strings, 200), (strings + 1, 400)):
        many = filter_astral_count(count, encoded)
        params = {"filter": encode_utf8_filter({"metadata.s": astral(count, many)})}
        response = await ctx.request("GET", recent, params=params)
        shown = ctx.curl("GET", recent, params={
            "filter": f"<metadata.s = {count - many} x q, {many} x U+1F600>"})
        label = f"a filter string of {count} characters, {many} of them outside the BMP"
        expect_at_bound(ctx, response, label, status,
                        "invalid-filter" if status == 400 else None, shown)
