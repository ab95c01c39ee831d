# SPDX-License-Identifier: GPL-3.0-or-later
"""WRITE-* checks: 201 + Location, validation, timestamps, default metadata, idempotency keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from dualstore_conformance.checks.http import (
    expect_only_own,
    expect_status,
    fail_response,
    probe_problem,
    probe_status,
    recent_own,
)
from dualstore_conformance.context import CONFORMANCE_KEY, CheckContext
from dualstore_conformance.registry import check

DATE_SLACK_S = 2.0
"""Slack on an HTTP Date header: it counts whole seconds (RFC 9110 §5.6.7) and servers may
send a value cached for up to a second (uvicorn, nginx), which RFC 9110 §6.6.1 allows as
"the best available approximation"."""


def _parse_z(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None



async def _read_back(ctx: CheckContext, doc_id: object) -> tuple[str, httpx.Response, Any]:
    """GET a just-written document by id; fail the check unless it answers 200."""
    path = f"{ctx.collection_path}/{doc_id}"
    doc, response, _ = await probe_status(ctx, "GET", path, 200, "GET by id was not 200")
    return path, response, doc


@check("write-created-location",
       "Write: POST answers 201 with {id} and a Location naming /v1/{collection}/{id}",
       ["WRITE-001"])
async def created_location(ctx: CheckContext) -> None:
    written = await ctx.insert()
    response = written["response"]
    location = response.headers.get("location", "")
    expected = f"{ctx.collection_path}/{written['id']}"
    if not (location == expected or (location.endswith(expected) and "://" in location)):
        fail_response(ctx, response, "201 has no Location naming the new document",
                      f"Location: {expected}", f"Location: {location or '(missing)'}",
                      ctx.curl("POST", ctx.collection_path, body=written["body"]))


@check("write-read-your-writes",
       "Write: the document is readable at its Location as soon as POST answered 201",
       ["WRITE-009", "READ-005"])
async def read_your_writes(ctx: CheckContext) -> None:
    written = await ctx.insert(metadata={"kind": "read-your-writes"})
    location = (
        written["response"].headers.get("location") or f"{ctx.collection_path}/{written['id']}"
    )
    response = await ctx.request("GET", location)
    reproduce = ctx.curl("GET", location)
    doc = expect_status(
        ctx, response, 200, "GET of a just-created document's Location was not 200", reproduce
    )
    if (
        not isinstance(doc, dict)
        or doc.get("id") != written["id"]
        or doc.get("text") != written["body"]["text"]
    ):
        fail_response(ctx, response, "GET of the Location returned another document",
                      f"id {written['id']} with the text written", response.text[:300], reproduce)


@check("write-validation-422",
       "Write: a body breaking the schema (no/empty text, extra property, wrong type) gets 422",
       ["WRITE-002", "HTTP-010"])
async def validation_failed(ctx: CheckContext) -> None:
    tag = {CONFORMANCE_KEY: ctx.tag()}
    bodies: list[dict[str, Any]] = [
        {"metadata": tag},
        {"text": "", "metadata": tag},
        {"text": "conformance extra property", "metadata": tag, "conformance_extra": 1},
        {"text": 42, "metadata": tag},
        {"text": "conformance metadata not an object", "metadata": ["not", "an", "object"]},
        {"text": "conformance timestamp wrong type", "timestamp": 1700000000000, "metadata": tag},
    ]
    for body in bodies:
        await probe_problem(ctx, "POST", ctx.collection_path, 422, "validation-failed",
                            f"invalid body {body!r} was not 422 validation-failed"[:200],
                            body=body)


@check("write-metadata-validation-422",
       "Write: metadata with $/dotted/empty keys, depth over 8 or unsafe numbers gets 422",
       ["WRITE-005"])
async def metadata_validation(ctx: CheckContext) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for level in range(9):
        deep = {f"l{level}": deep}
    bad: list[dict[str, Any]] = [
        {"$where": "1"},
        {"a.b": 1},
        {"": 1},
        {"nul\u0000key": 1},
        {"nested": deep},
        {"big": 2**53},
    ]
    for metadata in bad:
        body = ctx.tagged_body(f"conformance {ctx.check_id}", metadata)
        await probe_problem(ctx, "POST", ctx.collection_path, 422, "validation-failed",
                            f"metadata {next(iter(metadata))!r}... was not 422 validation-failed",
                            body=body)


@check("write-timestamp-normalised",
       "Write: a timestamp with a +02:00 offset reads back as the same instant in UTC, ms, Z",
       ["WRITE-003", "DOC-002"])
async def timestamp_normalised(ctx: CheckContext) -> None:
    cases = {
        "2026-03-04T12:34:56.789+02:00": "2026-03-04T10:34:56.789Z",
        "2026-03-04T23:30:00-05:30": "2026-03-05T05:00:00.000Z",
        "2026-03-04T10:00:00.123456Z": "2026-03-04T10:00:00.123Z",
    }
    for sent, wanted in cases.items():
        written = await ctx.insert(timestamp=sent, metadata={"sent": sent})
        path, response, doc = await _read_back(ctx, written["id"])
        got = doc.get("timestamp") if isinstance(doc, dict) else None
        if got != wanted:
            fail_response(ctx, response,
                          "timestamp was not normalised to UTC with milliseconds and Z",
                          f"{sent} -> {wanted}", repr(got), ctx.curl("GET", path))


@check("write-default-timestamp",
       "Write: a document posted without timestamp gets the server's receive time",
       ["WRITE-004"])
async def default_timestamp(ctx: CheckContext) -> None:
    # Judged on the server's own clock, so no clock-skew allowance is needed: the receive
    # time lies between the Date of an answer sent before the POST and the POST's own Date
    # (RFC 9110 §6.6.1: an origin server with a clock sends Date), plus its 1 s resolution.
    probe = await ctx.request("GET", "/v1/health")
    written = await ctx.insert()
    earliest = _http_date(probe.headers.get("date"))
    latest = _http_date(written["response"].headers.get("date"))
    if earliest is None or latest is None:
        ctx.unobserved("the target sends no parseable Date header (RFC 9110 §6.6.1), so its "
                       "receive time cannot be bracketed on its own clock")
    earliest -= timedelta(seconds=DATE_SLACK_S)
    latest += timedelta(seconds=1.0 + DATE_SLACK_S)
    path, response, doc = await _read_back(ctx, written["id"])
    stamp = _parse_z(doc.get("timestamp") if isinstance(doc, dict) else None)
    if stamp is None or not earliest <= stamp <= latest:
        ctx.fail(
            "a document without timestamp did not get the receive time",
            expected=f"between {earliest.isoformat()} (Date of an earlier answer) and "
                     f"{latest.isoformat()} (the POST answer's Date + 1 s), on the server's "
                     f"clock, each with {DATE_SLACK_S:g} s for a cached Date",
            received=repr(doc.get("timestamp") if isinstance(doc, dict) else doc),
            evidence=ctx.evidence(response),
            reproduce=ctx.curl("GET", path),
        )


def _http_date(value: str | None) -> datetime | None:
    """An HTTP Date header as an aware datetime (None when absent or malformed)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@check("write-default-metadata",
       "Write: a document posted without metadata reads back with metadata {}",
       ["WRITE-006"])
async def default_metadata(ctx: CheckContext) -> None:
    # This document cannot carry the metadata tag; its text names the run and the check.
    body = {"text": f"{ctx.unique_text('no-metadata')} run {ctx.run_id}"}
    created, _, _ = await probe_status(ctx, "POST", ctx.collection_path, 201,
                                       "POST without metadata was not 201", body=body)
    doc_id = created.get("id") if isinstance(created, dict) else None
    path, response, doc = await _read_back(ctx, doc_id)
    if not isinstance(doc, dict) or doc.get("metadata") != {}:
        fail_response(ctx, response,
                      "a document written without metadata does not read back with metadata {}",
                      "metadata: {}", response.text[:300], ctx.curl("GET", path))


async def _keyed_insert(ctx: CheckContext, label: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Insert one document under a fresh Idempotency-Key: (the key's headers, the insert)."""
    headers = {"Idempotency-Key": f"conformance-{uuid.uuid4().hex}"}
    return headers, await ctx.insert(text=ctx.unique_text(label), headers=headers)


@check("write-idempotent-replay",
       "Write: the same Idempotency-Key and body answer the same id and create one document",
       ["WRITE-007"])
async def idempotent_replay(ctx: CheckContext) -> None:
    headers, first = await _keyed_insert(ctx, "idempotent")
    again, response, reproduce = await probe_status(
        ctx, "POST", ctx.collection_path, 201, "a replayed POST with the same key was not 201",
        headers=headers, body=first["body"])
    if not isinstance(again, dict) or again.get("id") != first["id"]:
        fail_response(ctx, response,
                      "a replayed POST with the same Idempotency-Key answered another id",
                      f"id {first['id']}", response.text[:300], reproduce)
    items, _, recent_reproduce = await recent_own(ctx)
    if len(items) != 1:
        ctx.fail(
            "a replayed POST created a second document",
            expected="exactly 1 document",
            received=f"{len(items)} documents",
            reproduce=recent_reproduce,
        )


@check("write-idempotency-key-reuse-422",
       "Write: an Idempotency-Key reused with another body gets 422 and creates nothing",
       ["WRITE-008"])
async def idempotency_key_reuse(ctx: CheckContext) -> None:
    headers, first = await _keyed_insert(ctx, "first")
    body = {**first["body"], "text": ctx.unique_text("different")}
    await probe_problem(
        ctx, "POST", ctx.collection_path, 422, "idempotency-key-reuse",
        "a reused Idempotency-Key with another body was not 422 idempotency-key-reuse",
        headers=headers, body=body)
    await expect_only_own(ctx, first["id"], "a rejected reuse of an Idempotency-Key created a "
                          "document")
