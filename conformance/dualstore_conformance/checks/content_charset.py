# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-016: a POST's charset may be absent or utf-8 (any case, quoted or not), nothing else."""

from __future__ import annotations

import json

from dualstore_conformance.checks.http import expect_problem, expect_status
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

ACCEPTED = (
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "Application/JSON; charset=Utf-8",
)
"""Content-Types the rule accepts (the type and the charset value compared case-insensitively)."""

REFUSED = (
    "application/json; charset=utf8",
    'application/json; charset="UTF8"',
    "application/json; charset=utf-16",
    "application/json; charset=iso-8859-1",
)
"""Content-Types with another charset (``utf8`` is not the registered name): 415."""


@check("http-content-type-charset",
       "HTTP: POST with charset=utf-8 (any case, quoted) is accepted; utf8 or utf-16 gets 415",
       ["HTTP-016"])
async def content_type_charset(ctx: CheckContext) -> None:
    for content_type in (*ACCEPTED, *REFUSED):
        body = ctx.tagged_body(ctx.unique_text("charset"))
        raw = json.dumps(body).encode("ascii")  # UTF-8 whatever the label says
        headers = {"Content-Type": content_type}
        response = await ctx.request("POST", ctx.collection_path, content=raw, headers=headers)
        reproduce = ctx.curl("POST", ctx.collection_path, headers=headers, body=raw)
        if content_type in ACCEPTED:
            expect_status(ctx, response, 201, f"a POST with Content-Type {content_type!r} "
                          "was not accepted", reproduce)
        else:
            expect_problem(ctx, response, 415, "unsupported-media-type",
                           f"a POST with Content-Type {content_type!r} was not 415", reproduce)
