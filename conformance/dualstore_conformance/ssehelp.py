# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared helpers of the SSE protocol checks: opening own streams, judging events, Doc schema."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import jsonschema
from dualstore_spec import facts
from dualstore_spec.facts import Facts
from dualstore_sse import Event

from dualstore_conformance import judging
from dualstore_conformance.client import problem
from dualstore_conformance.context import CheckContext
from dualstore_conformance.streams import StreamReader


def token_grammar() -> re.Pattern[str]:
    """The spec's event id / resume token grammar (sse-contract.yaml x-event-id pattern)."""
    return re.compile(spec_facts().event_id_pattern)




@functools.cache
def doc_schema() -> dict[str, Any] | None:
    """The OpenAPI Doc schema with components inlined for jsonschema, or None."""
    try:
        document = importlib.import_module("dualstore_spec").openapi()
        schemas = document["components"]["schemas"]
        doc = schemas["Doc"]
    except Exception:
        return None
    return {"$defs": schemas, **_rewrite_refs(doc)}


def timestamp_pattern() -> re.Pattern[str]:
    """The spec's Timestamp pattern (SpecError when the spec has none: never a default)."""
    return judging.doc_timestamp_pattern()


def spec_facts() -> Facts:
    """The spec's numbers (dualstore_spec.facts): SpecError when one is missing, no default."""
    return facts.current()


def _rewrite_refs(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                out[key] = item.replace("#/components/schemas/", "#/$defs/")
            else:
                out[key] = _rewrite_refs(item)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(v) for v in value]
    return value


def doc_errors(value: Any) -> list[str]:
    """Why value is not a Doc (empty when it is one)."""
    schema = doc_schema()
    if schema is None:
        errors = []
        if not isinstance(value, dict):
            return ["not a JSON object"]
        for name, kind in (("id", str), ("text", str), ("timestamp", str), ("metadata", dict)):
            if not isinstance(value.get(name), kind):
                errors.append(f"{name!r} missing or not {kind.__name__}")
        return errors
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(value)
    ][:5]


def event_dict(event: Event) -> dict[str, Any]:
    """An event for evidence."""
    return {"type": event.type, "id": event.last_event_id if event.id_set else None,
            "data": event.data[:300]}


def doc_of(event: Event) -> dict[str, Any] | None:
    """The Doc carried by an insert event, or None when data is not a JSON object."""
    try:
        value = json.loads(event.data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def doc_ids(events: Sequence[Event]) -> list[str]:
    """Document ids of insert events (``?`` for undecodable data)."""
    out = []
    for event in events:
        doc = doc_of(event)
        out.append(str(doc.get("id")) if doc else "?")
    return out


async def require_open(ctx: CheckContext, reader: StreamReader, what: str = "stream") -> None:
    """Fail unless the stream answered 200 (a 429 that outlasted the harness's patience was
    already turned into "could not observe" by the reader)."""
    if reader.status != 200:
        ctx.fail(
            f"The {what} did not open",
            expected="200 with Content-Type text/event-stream",
            received=f"{reader.status} {reader.body[:300].decode('utf-8', 'replace')}",
            evidence=reader.evidence(),
            reproduce=reader.reproduce(),
        )


def fail_stream(
    reader: StreamReader,
    title: str,
    expected: str,
    received: str,
    rules: list[str] | None = None,
    severity: str = "high",
    **evidence: Any,
) -> NoReturn:
    """Fail the reader's check with the stream's evidence (plus ``evidence``) and its curl."""
    reader.ctx.fail(title, expected=expected, received=received, rules=rules,
                    evidence={**evidence, **reader.evidence()}, reproduce=reader.reproduce(),
                    severity=severity)


def expect_stream_problem(reader: StreamReader, status: int, slug: str, title: str,
                          label: str, extra_errors: Sequence[str] = (),
                          severity: str = "high", **evidence: Any) -> None:
    """Fail unless the stream request was refused with a ``status`` problem+json ``slug``
    (``extra_errors``: further faults the caller found in the same answer)."""
    errors = judging.expected_problem_errors(
        reader.status, reader.headers.get("content-type"), reader.body, status, slug)
    errors += extra_errors
    if errors:
        fail_stream(reader, title, f"{status} application/problem+json, type {slug}",
                    f"{label}: " + "; ".join(errors), severity=severity, **evidence)


def own_params(ctx: CheckContext, **params: Any) -> dict[str, Any]:
    """Query parameters of a stream filtered to this check's own documents (plus params)."""
    return {"filter": ctx.own_filter(), **params}


async def settle(ctx: CheckContext, seconds: float = 0.3) -> None:
    """Let a just-opened stream finish joining (its on-open bytes arrive)."""
    await asyncio.sleep(ctx.scaled(seconds))


@contextlib.asynccontextmanager
async def opened(ctx: CheckContext, params: dict[str, Any] | None = None, *,
                 ready: bool = False, what: str = "stream",
                 headers: dict[str, str] | None = None,
                 path: str | None = None) -> AsyncIterator[StreamReader]:
    """A stream of this check's own documents (unless ``params`` say otherwise) that answered
    200 (else the check fails); ``ready``: once its first bytes arrived (the join point)."""
    async with ctx.open_stream(own_params(ctx) if params is None else params, headers,
                               path=path) as reader:
        await require_open(ctx, reader, what)
        if ready:
            await reader.wait_first_byte(ctx.scaled(2.0))
        yield reader


async def open_and_ready(reader: StreamReader, ctx: CheckContext) -> None:
    """After ``__aenter__``: require 200 and wait for the first bytes (the join point)."""
    await require_open(ctx, reader)
    await reader.wait_first_byte(ctx.scaled(2.0))


async def insert_many(ctx: CheckContext, count: int, writers: int = 1,
                      metadata: dict[str, Any] | None = None,
                      label: str = "doc") -> list[str]:
    """Insert count tagged documents with ``writers`` concurrent writers; ids in commit order
    as seen by the client (for concurrent writers the commit order is the server's to choose).
    """
    ids: list[str] = []
    lock = asyncio.Lock()
    counter = iter(range(count))

    async def writer() -> None:
        for number in counter:
            meta = {"n": number, **(metadata or {})}
            result = await ctx.insert(text=f"{label} {number} {ctx.run_id}", metadata=meta)
            async with lock:
                ids.append(result["id"])

    await asyncio.gather(*(writer() for _ in range(max(1, writers))))
    return ids


def problem_type(body: bytes) -> str | None:
    """The ``type`` of a problem+json body, or None."""
    detail = judging.parse_json(body)
    kind = detail.get("type") if isinstance(detail, dict) else None
    return kind if isinstance(kind, str) else None


def problem_errors(ctx: CheckContext, status: int, headers: Any, body: bytes,
                   expected_status: int, slug: str) -> list[str]:
    """What is wrong with an error answer expected to be ``expected_status`` problem ``slug``."""
    return judging.expected_problem_errors(status, headers.get("content-type"), body,
                                           expected_status, slug)


__all__ = [
    "doc_errors",
    "doc_ids",
    "doc_of",
    "event_dict",
    "expect_stream_problem",
    "fail_stream",
    "insert_many",
    "open_and_ready",
    "opened",
    "own_params",
    "problem",
    "problem_errors",
    "problem_type",
    "require_open",
    "settle",
    "spec_facts",
    "timestamp_pattern",
    "token_grammar",
]
