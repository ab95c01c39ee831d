# SPDX-License-Identifier: GPL-3.0-or-later
"""WRITE-011 and WRITE-012: metadata key length at every nesting level; bodies nested past the
Metadata depth, up to as deep as the body cap allows, get 422 (or 400 invalid-json), never 500.

Every number comes from the spec's ``x-dualstore-limits`` via ``ctx.limits``.
"""

from __future__ import annotations

from typing import Any

from dualstore_conformance.checks.http import expect_at_bound, problem_slug
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

JSON = {"Content-Type": "application/json"}
DEEP_ALLOWED = {(422, "validation-failed"), (400, "invalid-json")}


def key_at_level(key: str, level: int) -> dict[str, Any]:
    """Metadata holding key inside the level-th nested object (the metadata object is 1)."""
    node: dict[str, Any] = {key: 1}
    for _ in range(level - 1):
        node = {"d": node}
    return node


def nested_body(depth: int, opener: bytes, closer: bytes) -> bytes:
    """A POST body whose metadata value "k" nests depth arrays (or objects) around a 1."""
    return b'{"text":"deep","metadata":{"k":' + opener * depth + b"1" + closer * depth + b"}}"


def deepest_within(cap: int, opener: bytes, closer: bytes) -> int:
    """The largest depth whose nested_body stays within cap bytes."""
    return (cap - len(nested_body(0, opener, closer))) // (len(opener) + len(closer))


@check("write-metadata-key-nested",
       "Metadata: a key of the maximum length is accepted at every nesting level, one "
       "character more gets 422",
       ["WRITE-011"])
async def key_nested(ctx: CheckContext) -> None:
    longest = ctx.limit("metadata.max_key_length")
    depth = ctx.limit("metadata.max_depth")
    for level in sorted({2, depth}):
        for length, status in ((longest, 201), (longest + 1, 422)):
            body = ctx.tagged_body(ctx.unique_text("key"), key_at_level("k" * length, level))
            response = await ctx.request("POST", ctx.collection_path, json=body)
            label = f"a metadata key of {length} characters at nesting level {level}"
            shown = ctx.curl("POST", ctx.collection_path,
                             body={"metadata": str(key_at_level(f"<{length} x k>", level))})
            expect_at_bound(ctx, response, label, status,
                            "validation-failed" if status == 422 else None, shown,
                            past="was accepted")


@check("write-deep-body",
       "Metadata: a body nested deeper than Metadata allows, up to the body cap, gets 422 "
       "(or 400 invalid-json), never a 500",
       ["WRITE-012", "HTTP-013"])
async def deep_body(ctx: CheckContext) -> None:
    depth = ctx.limit("metadata.max_depth")
    cap = ctx.limit("max_body_bytes")
    shapes: list[tuple[str, bytes, bytes]] = [("arrays", b"[", b"]"), ("objects", b'{"d":', b"}")]
    for name, opener, closer in shapes:
        deepest = deepest_within(cap, opener, closer)
        for level in sorted({depth + 1, 2 * depth, deepest}):
            raw = nested_body(level, opener, closer)
            response = await ctx.request("POST", ctx.collection_path, content=raw, headers=JSON)
            if (response.status_code, problem_slug(response)) not in DEEP_ALLOWED:
                ctx.fail(
                    f"a body nesting {name} {level} deep ({len(raw)} bytes, within the cap) "
                    "was not refused with its problem",
                    expected="422 validation-failed, or 400 invalid-json when the parser "
                    "cannot represent it",
                    received=f"{response.status_code} type {problem_slug(response)!r}: "
                    f"{response.text[:200]}",
                    evidence=ctx.evidence(response),
                    reproduce=ctx.curl("POST", ctx.collection_path, headers=JSON,
                                       body=raw[:120] + b"..."),
                )
