# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-019 and HTTP-013: I-JSON text (lone surrogates) and deep nesting get their 4xx, never a 500.

A JSON escape of a lone surrogate (``"\\ud800"``) is valid JSON syntax but names no Unicode
character (RFC 7493 section 2.1); a server that passes it on typically fails deep inside
(a database driver cannot encode it) and answers 500. The probes are written as raw bytes
so the escape reaches the server exactly as written.
"""

from __future__ import annotations

import base64

from dualstore_conformance.checks.http import probe_problem, problem_slug
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

JSON = {"Content-Type": "application/json"}
BODY_PROBES: tuple[tuple[str, bytes], ...] = (
    ("a lone high surrogate in text", b'{"text":"a\\ud800b"}'),
    ("a lone low surrogate in a metadata value", b'{"text":"a","metadata":{"k":"\\udc00"}}'),
    ("a lone surrogate in a metadata key", b'{"text":"a","metadata":{"\\ud800":1}}'),
    ("a reversed pair in an array", b'{"text":"a","metadata":{"k":["\\udc00\\ud800"]}}'),
)
FILTER_PROBES: tuple[tuple[str, bytes], ...] = (
    ("a lone surrogate in a filter value", b'{"metadata.k":"\\ud800"}'),
    ("a lone surrogate in a filter key", b'{"metadata.\\udfff":"x"}'),
    ("a lone surrogate in an $in list", b'{"metadata.k":{"$in":["ok","\\udbff"]}}'),
)
BODY_DEPTH = 10_000
"""Arrays nested this deep inside metadata: about 20 KB, far under any body cap."""
FILTER_DEPTH = 1_000
"""Arrays nested this deep in a filter value (its encoding stays under the length bound)."""


def raw_filter(raw_json: bytes) -> str:
    """The filter parameter for these exact JSON bytes (base64url, unpadded)."""
    return base64.urlsafe_b64encode(raw_json).decode("ascii").rstrip("=")


@check("http-lone-surrogate-body",
       "JSON text: a lone surrogate escape in a POST body gets 400 invalid-json",
       ["HTTP-019", "HTTP-013"])
async def lone_surrogate_body(ctx: CheckContext) -> None:
    for label, raw in BODY_PROBES:
        await probe_problem(ctx, "POST", ctx.collection_path, 400, "invalid-json",
                            f"{label} was not refused as invalid JSON", body=raw, headers=JSON)


@check("filter-lone-surrogate",
       "JSON text: a lone surrogate escape in a filter gets 400 invalid-filter",
       ["HTTP-019", "HTTP-013"])
async def lone_surrogate_filter(ctx: CheckContext) -> None:
    path = f"{ctx.collection_path}/recent"
    for label, raw in FILTER_PROBES:
        params = {"filter": raw_filter(raw)}
        await probe_problem(ctx, "GET", path, 400, "invalid-filter", f"{label} was not refused",
                            params=params)


@check("http-deep-nesting",
       "JSON text: a body or filter nested thousands deep gets its 4xx, never a 500",
       ["HTTP-019", "HTTP-013"])
async def deep_nesting(ctx: CheckContext) -> None:
    nested = b"[" * BODY_DEPTH + b"]" * BODY_DEPTH
    raw = b'{"text":"a","metadata":{"k":' + nested + b"}}"
    response = await ctx.request("POST", ctx.collection_path, content=raw, headers=JSON)
    allowed = {(422, "validation-failed"), (400, "invalid-json")}
    if (response.status_code, problem_slug(response)) not in allowed:
        ctx.fail(
            f"a body nesting arrays {BODY_DEPTH} deep was not refused with its problem",
            expected="422 validation-failed (deeper than Metadata allows), or 400 invalid-json "
            "when the parser cannot represent it",
            received=f"{response.status_code} type {problem_slug(response)!r}: "
            f"{response.text[:200]}",
            evidence=ctx.evidence(response),
            reproduce=ctx.curl("POST", ctx.collection_path, headers=JSON, body=raw),
        )
    path = f"{ctx.collection_path}/recent"
    params = {"filter": raw_filter(b'{"metadata.k":' + b"[" * FILTER_DEPTH
                                   + b"]" * FILTER_DEPTH + b"}")}  # fmt: skip
    await probe_problem(ctx, "GET", path, 400, "invalid-filter",
                        f"a filter nesting arrays {FILTER_DEPTH} deep was not refused",
                        params=params)
