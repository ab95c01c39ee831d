# SPDX-License-Identifier: GPL-3.0-or-later
"""FILTER-013: filter instants with more than three fractional digits are truncated to
milliseconds, as stored timestamps are, so the exact timestamp a document was posted with
finds it."""

from __future__ import annotations

from typing import Any

from dualstore_conformance.checks.read import own_ids
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

POSTED = "2026-05-01T10:00:00.123456Z"
"""Stored as 10:00:00.123Z (WRITE-003)."""


def cases() -> list[tuple[str, dict[str, Any], bool]]:
    """(label, timestamp condition, whether the posted document matches it)."""
    return [
        ("equality with the exact posted timestamp", {"timestamp": POSTED}, True),
        ("equality with nine fractional digits", {"timestamp": "2026-05-01T10:00:00.123999999Z"},
         True),
        ("equality with the same instant at +02:00",
         {"timestamp": "2026-05-01T12:00:00.1234567+02:00"}, True),
        ("$lt 10:00:00.123999Z (truncated: not below .123)",
         {"timestamp": {"$lt": "2026-05-01T10:00:00.123999Z"}}, False),
        ("$gte 10:00:00.123999Z (truncated: .123 is at it)",
         {"timestamp": {"$gte": "2026-05-01T10:00:00.123999Z"}}, True),
        ("$in holding the exact posted timestamp", {"timestamp": {"$in": [POSTED]}}, True),
    ]


@check("filter-sub-millisecond-instants",
       "Filter: instants with more than three fractional digits are truncated to "
       "milliseconds (the posted timestamp finds its document)",
       ["FILTER-013"])
async def sub_millisecond(ctx: CheckContext) -> None:
    doc_id = (await ctx.insert(timestamp=POSTED))["id"]
    for label, term, matches in cases():
        got = await own_ids(ctx, term)
        if (doc_id in got) != matches:
            ctx.fail(
                f"timestamp filter ({label}) {'missed' if matches else 'selected'} the document "
                f"posted with {POSTED}",
                expected=f"the document {'selected' if matches else 'left out'}: filter "
                "instants are truncated to milliseconds before comparing",
                received=f"ids {got}",
                evidence={"document": doc_id, "filter": term},
                reproduce=ctx.curl("GET", f"{ctx.collection_path}/recent",
                                   params={"filter": ctx.own_filter(term)}),
            )
