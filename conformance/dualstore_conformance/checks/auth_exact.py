# SPDX-License-Identifier: GPL-3.0-or-later
"""AUTH-001: a token that is only similar to a valid one (prefix, extension, case) is refused."""

from __future__ import annotations

from dualstore_conformance.checks.auth import token_and_auth_required
from dualstore_conformance.checks.http import fail_response
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check


def near_misses(token: str) -> list[tuple[str, str]]:
    """(label, wrong token) pairs a comparison bug would let through."""
    misses = [("the token plus one character", token + "x")]
    if len(token) > 1:
        misses.append(("the token without its last character", token[:-1]))
        misses.append(("the token's first character", token[:1]))
    swapped = token.swapcase()
    if swapped != token:
        misses.append(("the token with its letter case swapped", swapped))
    return misses


@check("auth-token-exact-match",
       "Auth: a prefix, an extension or a case variant of a valid token gets 401",
       ["AUTH-001"])
async def token_exact_match(ctx: CheckContext) -> None:
    token = await token_and_auth_required(ctx, "near misses of a valid token cannot be built")
    path = f"{ctx.collection_path}/recent"
    for label, wrong in near_misses(token):
        headers = {"Authorization": f"Bearer {wrong}"}
        # the near miss replaces the run's token (request headers win over the client's)
        response = await ctx.request("GET", path, headers=headers, params={"limit": "1"})
        if response.status_code != 401:
            fail_response(ctx, response, f"{label} was accepted",
                          "401 unauthorized (tokens are compared exactly)",
                          f"{response.status_code}",
                          ctx.curl("GET", path, headers={"Authorization": "Bearer <near miss>"},
                                   params={"limit": "1"}))
