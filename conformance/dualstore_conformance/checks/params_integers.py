# SPDX-License-Identifier: GPL-3.0-or-later
"""LIMIT-008: ``limit`` and ``k`` are ASCII digits matching ``^[1-9][0-9]*$``, nothing else."""

from __future__ import annotations

from urllib.parse import quote

from dualstore_conformance.checks.http import expect_status, probe_problem
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

FULLWIDTH_ZERO = 0xFF10
"""U+FF10 FULLWIDTH DIGIT ZERO: int() and str.isdigit() take fullwidth digits as numbers."""


def fullwidth(digits: str) -> str:
    """digits written with fullwidth digit characters (``5`` -> U+FF15)."""
    return "".join(chr(FULLWIDTH_ZERO + int(d)) for d in digits)


def spellings(value: int) -> list[tuple[str, str]]:
    """(label, percent-encoded query value) pairs of value that break ``^[1-9][0-9]*$``.

    Each names an in-range number to a lenient parser (int(), float(), parseInt), so only
    the syntax rule refuses them; the empty value is refused too (empty is not absent).
    """
    plain = str(value)
    return [
        ("a leading zero", "0" + plain),
        ("a plus sign", quote("+" + plain, safe="")),
        ("a decimal point", plain + ".0"),
        ("an exponent", plain + "e0"),
        ("a leading space", quote(" " + plain, safe="")),
        ("a trailing space", quote(plain + " ", safe="")),
        ("fullwidth digits", quote(fullwidth(plain), safe="")),
        ("hexadecimal", "0x" + format(value, "x")),
        ("an empty value", ""),
    ]


async def _judge(ctx: CheckContext, path: str, name: str, value: int, fixed: str) -> None:
    """The plain spelling is served; every other spelling gets 400 invalid-request."""
    prefix = f"{path}?{fixed}&" if fixed else f"{path}?"
    target = f"{prefix}{name}={value}"
    response = await ctx.request("GET", target)
    expect_status(ctx, response, 200, f"{name}={value} (digits, in range) was refused",
                  ctx.curl("GET", target))
    for label, spelled in spellings(value):
        target = f"{prefix}{name}={spelled}"
        await probe_problem(ctx, "GET", target, 400, "invalid-request",
                            f"{name} written with {label} ({name}={spelled}) was not 400 "
                            "invalid-request")


@check("limit-integer-syntax",
       "Limits: limit and k spelled 05, +5, 5.0, 5e0, ' 5', fullwidth or empty get 400",
       ["LIMIT-008"])
async def integer_syntax(ctx: CheckContext) -> None:
    await _judge(ctx, f"{ctx.collection_path}/recent", "limit",
                 ctx.limit("recent_limit.default"), "")
    await _judge(ctx, f"{ctx.collection_path}/search", "k",
                 ctx.limit("search_k.default"), "q=conformance")
