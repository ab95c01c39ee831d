# SPDX-License-Identifier: GPL-3.0-or-later
"""FILTER-011/012: nested $and/$or keep their own meaning; equality is type-exact."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from dualstore_conformance import client as http
from dualstore_conformance.checks.filter import expect_invalid_filter
from dualstore_conformance.checks.read import expect_selects
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

Bits = tuple[int, int, int]
"""The metadata (a, b, c) of one document, each 0 or 1."""


def _eq(name: str, value: int) -> dict[str, Any]:
    return {f"metadata.{name}": value}


NESTED_CASES: list[tuple[dict[str, Any], Callable[[Bits], bool]]] = [
    ({"$or": [{"$and": [_eq("a", 1), _eq("b", 1)]}, _eq("c", 1)]},
     lambda m: bool((m[0] and m[1]) or m[2])),
    ({"$and": [{"$or": [_eq("a", 1), _eq("b", 1)]}, _eq("c", 1)]},
     lambda m: bool((m[0] or m[1]) and m[2])),
    ({"$or": [{"$and": [_eq("a", 1), {"$or": [_eq("b", 1), _eq("c", 1)]}]},
              {"$and": [_eq("a", 0), _eq("b", 0)]}]},
     lambda m: bool((m[0] and (m[1] or m[2])) or (not m[0] and not m[1]))),
    ({"$and": [{"$or": [{"$and": [_eq("a", 1), _eq("b", 1)]}, _eq("c", 0)]},
               {"$or": [_eq("a", 1), _eq("c", 1)]}]},
     lambda m: bool(((m[0] and m[1]) or not m[2]) and (m[0] or m[2]))),
]
"""Filters whose flattened readings select other documents, and what they mean."""
NOT_IN_LANGUAGE: list[dict[str, Any]] = [
    {"$nor": [_eq("a", 1)]},
    {"metadata.a": {"$not": {"$gt": 0}}},
    {"$or": [_eq("a", 1), {"$nor": [_eq("b", 1)]}]},
]
"""Logical operators the language does not define (also when nested)."""


@check("filter-nested-logical",
       "Filter: nested $and/$or are evaluated as written, never flattened; $nor/$not get 400",
       ["FILTER-011", "FILTER-009"])
async def nested_logical(ctx: CheckContext) -> None:
    ids: dict[Bits, str] = {}
    for bits in itertools.product((0, 1), repeat=3):
        a, b, c = bits
        ids[(a, b, c)] = (await ctx.insert(metadata={"a": a, "b": b, "c": c}))["id"]
    for term, meaning in NESTED_CASES:
        named = {doc: "abc=" + "".join(map(str, bits)) for bits, doc in ids.items()}
        await expect_selects(ctx, term, {doc for bits, doc in ids.items() if meaning(bits)},
                             f"filter {term} selected the wrong documents", names=named,
                             evidence={"documents": {named[d]: d for d in named}})
    for expression in NOT_IN_LANGUAGE:
        await expect_invalid_filter(ctx, http.encode_filter(expression), f"filter {expression}")


TYPED_VALUES: dict[str, Any] = {
    "true": True, "false": False, "1": 1, "1.0": 1.0, "0": 0, "'1'": "1", "'true'": "true",
    "'0'": "0",
}
"""Stored metadata.v values, by label (1 and 1.0 are the same number)."""
TYPED_CASES: list[tuple[Any, set[str]]] = [
    (True, {"true"}),
    (False, {"false"}),
    (1, {"1", "1.0"}),
    (0, {"0"}),
    ("1", {"'1'"}),
    ("true", {"'true'"}),
    ({"$in": [True]}, {"true"}),
    ({"$in": [1]}, {"1", "1.0"}),
    ({"$in": ["1", False]}, {"'1'", "false"}),
    ({"$in": [0, "true"]}, {"0", "'true'"}),
]
"""(condition on metadata.v, labels of the documents it matches)."""


@check("filter-type-exact-equality",
       "Filter: equality and $in compare JSON type and value (true is not 1, '1' is not 1)",
       ["FILTER-012", "FILTER-006"])
async def type_exact_equality(ctx: CheckContext) -> None:
    ids = {label: (await ctx.insert(metadata={"v": value}))["id"]
           for label, value in TYPED_VALUES.items()}
    named = {doc: label for label, doc in ids.items()}
    for condition, labels in TYPED_CASES:
        term = {"metadata.v": condition}
        await expect_selects(ctx, term, {ids[label] for label in labels},
                             f"filter {term} matched other types than its own", names=named,
                             evidence={"documents": ids})
