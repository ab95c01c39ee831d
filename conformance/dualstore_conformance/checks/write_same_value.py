# SPDX-License-Identifier: GPL-3.0-or-later
"""WRITE-013: for Idempotency-Key, the same body is the same JSON value, however spelled."""

from __future__ import annotations

import json
import uuid

from dualstore_conformance.checks.http import expect_only_own, expect_status, fail_response
from dualstore_conformance.context import CONFORMANCE_KEY, CheckContext
from dualstore_conformance.registry import check

NUMBER_SPELLINGS = ("1", "1.0", "1e0", "1E+0")
"""One number spelled as the rule's examples (1, 1.0, 1e0) and with a signed exponent."""


def bodies(text: str, tag: dict[str, str]) -> list[tuple[str, bytes]]:
    """(label, raw JSON) of one value: compact first, then respelled.

    Member order, insignificant whitespace, string escapes (``\\u00e9``, ``\\/``) and the
    spelling of the number ``n`` change; the JSON value does not.
    """
    tag_json = json.dumps({CONFORMANCE_KEY: tag}, separators=(",", ":"))[1:-1]
    text_json = json.dumps(text)
    first = f'{{"text":{text_json},"metadata":{{"n":1,"s":"été/x",{tag_json}}}}}'
    spelled = []
    for number in NUMBER_SPELLINGS[1:]:
        raw = (f'{{ "metadata" : {{ {tag_json}, "s" : "\\u00e9t\\u00e9\\/x",\n'
               f'  "n" : {number} }},\n "text" : {text_json} }}')
        spelled.append((f"reordered, escaped, n written {number}", raw.encode("utf-8")))
    return [("compact", first.encode("utf-8")), *spelled]


@check("write-idempotency-same-json-value",
       "Write: an Idempotency-Key retry spelling the same JSON value differently (1 as 1.0, "
       "escapes, order) answers 201 with the same id",
       ["WRITE-013", "WRITE-007"])
async def same_json_value(ctx: CheckContext) -> None:
    headers = {"Idempotency-Key": f"conformance-{uuid.uuid4().hex}",
               "Content-Type": "application/json"}
    (_, first), *retries = bodies(ctx.unique_text("same value"), ctx.tag())
    response = await ctx.request("POST", ctx.collection_path, content=first, headers=headers)
    created = expect_status(ctx, response, 201, "a keyed POST of a valid document was refused",
                            ctx.curl("POST", ctx.collection_path, headers=headers, body=first))
    first_id = created.get("id") if isinstance(created, dict) else None
    for label, raw in retries:
        response = await ctx.request("POST", ctx.collection_path, content=raw, headers=headers)
        reproduce = ctx.curl("POST", ctx.collection_path, headers=headers, body=raw)
        again = expect_status(
            ctx, response, 201,
            f"a retry with the same key and the same JSON value ({label}) was not 201",
            reproduce)
        if not isinstance(again, dict) or again.get("id") != first_id:
            fail_response(ctx, response, f"a retry with the same key and the same JSON value "
                          f"({label}) answered another id",
                          f"id {first_id}", response.text[:300], reproduce)
    await expect_only_own(ctx, first_id,
                          "retries with the same key and the same JSON value created documents")
