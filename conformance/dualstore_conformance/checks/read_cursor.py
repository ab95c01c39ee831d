# SPDX-License-Identifier: GPL-3.0-or-later
"""READ-007/008: cursors across timestamp ties; cursors tamper-evident and bound to the query."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import httpx

from dualstore_conformance.checks.http import expect_problem, probe_status
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TIES = 7
"""Documents sharing one timestamp (more than two pages' worth at PAGE)."""
PAGE = "2"


def _flip(cursor: str, index: int) -> str:
    """cursor with the character at index replaced by one 32 places away in the alphabet
    (its top bit flips, so the decoded bytes change even in the last character)."""
    position = BASE64URL.find(cursor[index])
    other = BASE64URL[(position + 32) % 64] if position >= 0 else "A"
    return cursor[:index] + other + cursor[index + 1:]


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _edited_field(cursor: str) -> str | None:
    """When the cursor is base64url of a JSON object (possibly followed by more bytes, such
    as a signature), the same bytes with one field's value changed; else None."""
    raw = _b64decode(cursor)
    if raw is None or not raw.startswith(b"{"):
        return None
    text = raw.decode("latin-1")
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    for key, item in value.items():
        if isinstance(item, int) and not isinstance(item, bool):
            value[key] = item - 1 if item > 0 else item + 1
        elif isinstance(item, str):
            value[key] = item[:-1] + ("0" if item[-1:] != "0" else "1")
        else:
            continue
        edited = json.dumps(value, separators=(",", ":")).encode("latin-1") + raw[end:]
        return base64.urlsafe_b64encode(edited).decode("ascii").rstrip("=")
    return None


def tampered(cursor: str) -> list[tuple[str, str]]:
    """(label, edited cursor) pairs, each not byte for byte what the server issued."""
    edits = [("its first character changed", _flip(cursor, 0)),
             ("a middle character changed", _flip(cursor, len(cursor) // 2)),
             ("its last character changed", _flip(cursor, len(cursor) - 1))]
    field = _edited_field(cursor)
    if field is not None:
        edits.append(("one field of its JSON changed and re-encoded", field))
    return [(label, edited) for label, edited in edits if edited != cursor]


async def _page(ctx: CheckContext, params: dict[str, str]) -> tuple[dict[str, Any], str]:
    path = f"{ctx.collection_path}/recent"
    body, response, reproduce = await probe_status(ctx, "GET", path, 200,
                                                   "a page of recent was not 200", params=params)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        ctx.fail("recent answer has no items list", expected="{items: [...]}",
                 received=response.text[:300], evidence=ctx.evidence(response),
                 reproduce=reproduce)
    return body, reproduce


@check("read-cursor-timestamp-ties",
       "Read: documents sharing a timestamp are neither skipped nor repeated across pages",
       ["READ-007", "READ-003"], timeout_s=60.0)
async def timestamp_ties(ctx: CheckContext) -> None:
    newer = [(await ctx.insert(timestamp="2025-07-01T00:00:02.000Z", metadata={"n": i}))["id"]
             for i in range(2)]
    tied = [(await ctx.insert(timestamp="2025-07-01T00:00:01.000Z", metadata={"n": i}))["id"]
            for i in range(TIES)]
    older = [(await ctx.insert(timestamp="2025-07-01T00:00:00.000Z", metadata={"n": i}))["id"]
             for i in range(2)]
    params = {"filter": ctx.own_filter(), "limit": PAGE}
    visited: list[str] = []
    pages = 0
    reproduce = ""
    while pages < 4 * (len(newer) + TIES + len(older)):
        body, reproduce = await _page(ctx, params)
        visited += [str(item.get("id")) for item in body["items"]]
        pages += 1
        if not body.get("next"):
            break
        params = {**params, "cursor": str(body["next"])}
    everything = set(newer) | set(tied) | set(older)
    repeated = sorted({doc for doc in visited if visited.count(doc) > 1})
    skipped = sorted(everything - set(visited))
    in_order = (set(visited[:2]) == set(newer) and set(visited[2:2 + TIES]) == set(tied)
                and set(visited[2 + TIES:]) == set(older))
    if repeated or skipped or not in_order:
        ctx.fail(
            f"paging {TIES} documents that share one timestamp (limit {PAGE}) "
            + ("repeated some" if repeated else "skipped some" if skipped else "reordered them"),
            expected=f"each of the {len(everything)} documents once, newest timestamp first",
            received=f"{len(visited)} items over {pages} pages; repeated {repeated}, "
                     f"skipped {skipped}",
            evidence={"visited": visited, "newer": newer, "tied": tied, "older": older},
            reproduce=reproduce,
        )


async def _refused(ctx: CheckContext, path: str, params: dict[str, str], label: str) -> None:
    response: httpx.Response = await ctx.request("GET", path, params=params)
    shown = {**params, "cursor": params["cursor"][:24] + "..."}
    expect_problem(ctx, response, 400, "invalid-cursor", f"a cursor {label} was accepted",
                   ctx.curl("GET", path, params=shown))


@check("read-cursor-tamper-evident",
       "Read: an edited cursor, or one sent with another filter or collection, gets 400",
       ["READ-008", "READ-004"])
async def tamper_evident(ctx: CheckContext) -> None:
    for second in range(3):
        await ctx.insert(timestamp=f"2025-08-01T00:00:0{second}.000Z")
    own = ctx.own_filter()
    body, reproduce = await _page(ctx, {"filter": own, "limit": "1"})
    cursor = body.get("next")
    if not isinstance(cursor, str) or not cursor:
        ctx.fail("recent with limit=1 over 3 documents offered no next cursor",
                 expected="a next cursor", received=json.dumps(body)[:300],
                 rules=["READ-001", "READ-003"], reproduce=reproduce)
    path = f"{ctx.collection_path}/recent"
    await _page(ctx, {"filter": own, "limit": "1", "cursor": cursor})  # the cursor as issued
    for label, edited in tampered(cursor):
        await _refused(ctx, path, {"filter": own, "limit": "1", "cursor": edited},
                       f"with {label}")
    other = ctx.own_filter({"metadata.conformance_other_filter": {"$exists": False}})
    await _refused(ctx, path, {"filter": other, "limit": "1", "cursor": cursor},
                   "sent with another filter than the one it was issued for")
    await _refused(ctx, path, {"limit": "1", "cursor": cursor},
                   "sent without the filter it was issued for")
    collections = await ctx.request("GET", "/v1/collections")
    names = collections.json().get("collections") if collections.status_code == 200 else None
    others = [n for n in names or [] if isinstance(n, str) and n != ctx.collection]
    if others:
        await _refused(ctx, f"/v1/{others[0]}/recent",
                       {"filter": own, "limit": "1", "cursor": cursor},
                       f"issued for {ctx.collection} sent to {others[0]}")
