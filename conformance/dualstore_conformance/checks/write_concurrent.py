# SPDX-License-Identifier: GPL-3.0-or-later
"""WRITE-010: concurrent POSTs with one Idempotency-Key create exactly one document."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from dualstore_conformance.checks.http import problem_slug, recent_own
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

CONCURRENT = 6
"""POSTs sent at once with one key (a client's retries racing its first attempt)."""


def _id_of(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    doc_id = body.get("id") if isinstance(body, dict) else None
    return doc_id if isinstance(doc_id, str) else None


def _outcome(response: httpx.Response) -> str:
    return f"{response.status_code} {_id_of(response) or problem_slug(response) or ''}".strip()


async def _race(ctx: CheckContext, bodies: list[dict[str, Any]], key: str) -> list[httpx.Response]:
    headers = {"Idempotency-Key": key}
    return list(await asyncio.gather(*(
        ctx.request("POST", ctx.collection_path, json=body, headers=headers) for body in bodies)))


@check("write-idempotency-concurrent",
       "Write: concurrent POSTs with one Idempotency-Key create one document; all get its id",
       ["WRITE-010", "WRITE-007", "WRITE-008"])
async def concurrent_same_key(ctx: CheckContext) -> None:
    key = f"conformance-{uuid.uuid4().hex}"
    body = ctx.tagged_body(ctx.unique_text("concurrent"))
    responses = await _race(ctx, [body] * CONCURRENT, key)
    outcomes = [_outcome(r) for r in responses]
    ids = {_id_of(r) for r in responses}
    items, _, reproduce = await recent_own(ctx)
    if any(r.status_code != 201 for r in responses) or len(ids) != 1 or len(items) != 1:
        ctx.fail(
            f"{CONCURRENT} concurrent POSTs with one key and the same body were not one document",
            expected="every answer 201 with one id, and exactly 1 document stored",
            received=f"answers {outcomes}; {len(items)} documents stored",
            evidence={"stored": [i.get("id") for i in items]},
            reproduce=ctx.curl("POST", ctx.collection_path, headers={"Idempotency-Key": key},
                               body=body) + f"  # {CONCURRENT} at once",
        )
    key = f"conformance-{uuid.uuid4().hex}"
    bodies = [ctx.tagged_body(ctx.unique_text(f"concurrent-{n}"), {"variant": n})
              for n in range(CONCURRENT)]
    responses = await _race(ctx, bodies, key)
    outcomes = [_outcome(r) for r in responses]
    created = [r for r in responses if r.status_code == 201]
    reused = [r for r in responses if r.status_code == 422
              and problem_slug(r) == "idempotency-key-reuse"]
    items, _, reproduce = await recent_own(ctx, {"metadata.variant": {"$exists": True}})
    if len(created) != 1 or len(reused) != CONCURRENT - 1 or len(items) != 1:
        ctx.fail(
            f"{CONCURRENT} concurrent POSTs with one key and different bodies were not one "
            "document and refusals",
            expected="one 201, every other 422 idempotency-key-reuse, exactly 1 document stored",
            received=f"answers {outcomes}; {len(items)} documents stored",
            evidence={"stored": [i.get("id") for i in items]},
            reproduce=reproduce,
        )
