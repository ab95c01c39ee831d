# SPDX-License-Identifier: GPL-3.0-or-later
"""AUTH-008: a present Authorization header alone decides, whatever access_token says."""

from __future__ import annotations

import base64

from dualstore_conformance.checks.auth import token_and_auth_required
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check
from dualstore_conformance.ssehelp import fail_stream


def unusable_headers(token: str) -> list[tuple[str, str]]:
    """(label, Authorization value) pairs that are not a valid Bearer credential."""
    # not the token inside: reports redact the token, not its base64 form
    basic = base64.b64encode(b"conformance:conformance").decode("ascii")
    return [
        ("another scheme (Basic)", f"Basic {basic}"),
        ("another scheme carrying the valid token", f"Token {token}"),
        ("Bearer without a token", "Bearer"),
        ("Bearer with a wrong token", f"Bearer {token}x"),
    ]


@check("auth-header-decides-over-access-token",
       "Auth: an unusable Authorization header gets 401 even beside a valid access_token",
       ["AUTH-008"])
async def header_decides(ctx: CheckContext) -> None:
    token = await token_and_auth_required(
        ctx, "a valid access_token is needed beside the header")
    params = {"access_token": token}
    async with ctx.open_stream(params=params, auth=False) as alone:
        if alone.status != 200:
            ctx.unobserved(
                f"the stream refused a valid access_token alone ({alone.status}; AUTH-003 "
                "judges that), so a 401 beside a header would prove nothing")
    for label, value in unusable_headers(token):
        headers = {"Authorization": value}
        # the header replaces the run's own (request headers win over the client's)
        async with ctx.open_stream(params=params, headers=headers) as stream:
            if stream.status != 401:
                fail_stream(stream,
                            f"Authorization with {label} was overruled by a valid access_token",
                            "401 unauthorized (a present Authorization header alone decides)",
                            f"{stream.status}")
