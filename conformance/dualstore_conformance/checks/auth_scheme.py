# SPDX-License-Identifier: GPL-3.0-or-later
"""AUTH-007: the ``Bearer`` scheme name is case-insensitive (RFC 9110 section 11.1)."""

from __future__ import annotations

from dualstore_conformance.checks.auth import token_and_auth_required
from dualstore_conformance.checks.http import fail_response
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import fail_stream

SCHEME_SPELLINGS = ("bearer", "BEARER", "bEaReR")
"""Spellings of the scheme other than the usual ``Bearer``."""


@check("auth-scheme-case-insensitive",
       "Auth: `bearer T`, `BEARER T` and `bEaReR T` are accepted like `Bearer T`",
       ["AUTH-007", "AUTH-002"])
async def scheme_case_insensitive(ctx: CheckContext) -> None:
    token = await token_and_auth_required(
        ctx, "a valid token is needed to prove the scheme is accepted")
    path = f"{ctx.collection_path}/recent"
    for scheme in SCHEME_SPELLINGS:
        headers = {"Authorization": f"{scheme} {token}"}
        # the spelling replaces the run's header (request headers win over the client's)
        response = await ctx.request("GET", path, headers=headers, params={"limit": "1"})
        if response.status_code == 401:
            fail_response(ctx, response, f"the scheme spelled {scheme!r} was refused",
                          "200 (the scheme name is case-insensitive, RFC 9110 section 11.1)",
                          f"{response.status_code}",
                          ctx.curl("GET", path, params={"limit": "1"},
                                   headers={"Authorization": f"{scheme} $TOKEN"}))
    headers = {"Authorization": f"{SCHEME_SPELLINGS[0]} {token}"}
    async with ctx.open_stream(headers=headers) as stream:
        if stream.status == 401:
            fail_stream(stream, f"the stream refused the scheme spelled {SCHEME_SPELLINGS[0]!r}",
                        "200 text/event-stream", f"{stream.status}")
