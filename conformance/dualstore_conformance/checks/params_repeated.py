# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-017: a documented query parameter given twice gets 400; unknown ones may repeat."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from dualstore_conformance.checks.http import expect_problem, expect_status, fail_response
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import problem_errors

OWN_TYPES = {
    "filter": "invalid-filter",
    "cursor": "invalid-cursor",
    "since": "invalid-resume-token",
}
"""Parameters with their own problem type, which the rule also allows for the repetition."""


def allowed_types(name: str) -> tuple[str, ...]:
    """invalid-request, or the parameter's own problem type."""
    own = OWN_TYPES.get(name)
    return ("invalid-request", own) if own else ("invalid-request",)


def repeated(name: str, first: str, second: str) -> str:
    """``name=first&name=second``, percent-encoded."""
    return f"{name}={quote(first, safe='')}&{name}={quote(second, safe='')}"


async def _a_cursor(ctx: CheckContext, own: str) -> str:
    """A cursor the server issued for this check's own documents (two of them, limit 1)."""
    for label in ("a", "b"):
        await ctx.insert(text=ctx.unique_text(label))
    path = f"{ctx.collection_path}/recent"
    params = {"filter": own, "limit": "1"}
    response = await ctx.request("GET", path, params=params)
    body = expect_status(ctx, response, 200, "recent over the check's documents was refused",
                         ctx.curl("GET", path, params=params))
    cursor = body.get("next") if isinstance(body, dict) else None
    if not isinstance(cursor, str) or not cursor:
        fail_response(ctx, response, "recent with limit=1 over two documents gave no next cursor",
                      "a string 'next'", response.text[:300], ctx.curl("GET", path, params=params),
                      ["READ-003"])
    return cursor


@check("http-repeated-parameters",
       "HTTP: limit, k, q, cursor, filter or since given twice gets 400; unknown ones repeat",
       ["HTTP-017"], timeout_s=45)
async def repeated_parameters(ctx: CheckContext) -> None:
    own = ctx.own_filter()
    recent = f"{ctx.collection_path}/recent"
    search = f"{ctx.collection_path}/search"
    cursor = await _a_cursor(ctx, own)
    own_q = f"filter={quote(own, safe='')}"
    # The control: each value alone is served, and an unknown parameter may repeat.
    control = f"{recent}?{own_q}&{repeated('conformance-unknown', '1', '2')}"
    response = await ctx.request("GET", control)
    expect_status(ctx, response, 200, "an unknown query parameter given twice was refused",
                  ctx.curl("GET", control))
    # Each pair names values that are valid alone: only the repetition is wrong.
    cases = [
        ("limit", recent, repeated("limit", "1", "2")),
        ("limit", recent, "limit=&limit=1"),
        ("filter", recent, repeated("filter", own, own)),
        ("filter", recent, f"filter=&{own_q}"),
        ("cursor", recent, f"{own_q}&{repeated('cursor', cursor, cursor)}"),
        ("q", search, repeated("q", "conformance", "other")),
        ("k", search, f"q=conformance&{repeated('k', '1', '2')}"),
    ]
    for name, path, query in cases:
        target = f"{path}?{query}"
        response = await ctx.request("GET", target)
        expect_problem(ctx, response, 400, allowed_types(name),
                       f"{name} given twice ({query[:120]}) was not 400",
                       ctx.curl("GET", target))
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, query in (("filter", repeated("filter", own, own)),
                        ("since", f"{own_q}&{repeated('since', since, since)}")):
        path = f"{ctx.collection_path}/stream?{query}"
        async with ctx.open_stream(path=path) as reader:
            errors = [
                error for slug in allowed_types(name)
                for error in [problem_errors(ctx, reader.status, reader.headers, reader.body,
                                             400, slug)]
            ]
            if all(errors):
                ctx.fail(
                    f"the stream opened with {name} given twice was not refused with 400",
                    expected="400 application/problem+json, type "
                             + " or ".join(allowed_types(name)),
                    received="; ".join(errors[0]),
                    evidence=reader.evidence(),
                    reproduce=reader.reproduce(),
                )
