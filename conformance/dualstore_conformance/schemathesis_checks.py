# SPDX-License-Identifier: GPL-3.0-or-later
"""DualStore's own Schemathesis checks: problem+json errors, Doc timestamps, 429 and 401 headers."""

from __future__ import annotations

import functools
import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import schemathesis

dualstore_spec: Any = importlib.import_module("dualstore_spec")
"""The spec package (imported by name: it lives outside mypy's package roots)."""

PROBLEM_TYPE_PREFIX = "urn:dualstore:problem:"
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
"""ISO 8601 UTC with exactly milliseconds and ``Z``: the only form a Doc's timestamp may take."""

CHECK_NAMES = (
    "dualstore_problem_json",
    "dualstore_doc_timestamps",
    "dualstore_rate_limit_headers",
    "dualstore_www_authenticate",
)
"""Names of the checks this module registers (Schemathesis keys checks by function name)."""


def _walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_strings(value)


@functools.cache
def documented_problem_types() -> frozenset[str]:
    """Every problem ``type`` URI the OpenAPI document mentions (enum, const or example)."""
    found = {
        text
        for text in _walk_strings(dualstore_spec.openapi())
        if text.startswith(PROBLEM_TYPE_PREFIX)
    }
    found.update(problem_type_statuses())
    return frozenset(found)


def _as_urn(name: str) -> str:
    return name if name.startswith(PROBLEM_TYPE_PREFIX) else PROBLEM_TYPE_PREFIX + name


@functools.cache
def problem_type_statuses() -> dict[str, int]:
    """Problem type URI -> its HTTP status in the spec's ``x-dualstore-problem-types``."""
    table = dualstore_spec.openapi().get("x-dualstore-problem-types")
    pairs: dict[str, int] = {}
    entries: list[tuple[str, Any]] = []
    if isinstance(table, dict):
        entries = [(str(key), value) for key, value in table.items()]
    elif isinstance(table, list):
        for item in table:
            if isinstance(item, dict):
                name = item.get("type") or item.get("slug") or item.get("uri")
                if name:
                    entries.append((str(name), item))
    for name, value in entries:
        status = value.get("status") if isinstance(value, dict) else value
        if isinstance(status, int):
            pairs[_as_urn(name)] = status
        elif isinstance(status, str) and status.isdigit():
            pairs[_as_urn(name)] = int(status)
    return pairs


def _header(response: schemathesis.Response, name: str) -> str | None:
    values = response.headers.get(name.lower())
    if not values:
        return None
    return values[0] if isinstance(values, list) else str(values)


def _json_body(response: schemathesis.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def _media_type(response: schemathesis.Response) -> str:
    return (_header(response, "content-type") or "").split(";")[0].strip().lower()


def _is_head(response: schemathesis.Response) -> bool:
    return (response.request.method or "").upper() == "HEAD"


def problem_errors(response: schemathesis.Response) -> list[str]:
    """What is wrong with an error response as an RFC 9457 problem (empty when it is fine)."""
    if response.status_code < 400 or _is_head(response):
        return []
    errors: list[str] = []
    media = _media_type(response)
    if media != "application/problem+json":
        errors.append(f"Content-Type is {media or 'missing'!r}, not 'application/problem+json'")
    body = _json_body(response)
    if not isinstance(body, dict):
        errors.append("body is not a JSON object")
        return errors
    problem_type = body.get("type")
    if not isinstance(problem_type, str):
        errors.append("problem has no string 'type'")
    elif problem_type not in documented_problem_types():
        errors.append(f"problem type {problem_type!r} is not documented in the OpenAPI document")
    elif problem_type_statuses().get(problem_type, response.status_code) != response.status_code:
        errors.append(
            f"problem type {problem_type!r} is documented with status "
            f"{problem_type_statuses()[problem_type]}, answered with {response.status_code}"
        )
    status = body.get("status")
    if status != response.status_code:
        errors.append(
            f"problem 'status' {status!r} differs from the HTTP status {response.status_code}"
        )
    if not isinstance(body.get("title"), str):
        errors.append("problem has no string 'title'")
    return errors


def _docs_in(body: Any) -> Iterator[dict[str, Any]]:
    """Doc-shaped objects in a response body: a Doc itself, or the items of a list answer."""
    if isinstance(body, dict):
        if {"id", "text", "timestamp"} <= body.keys():
            yield body
        items = body.get("items")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and "timestamp" in item:
                    yield item


def timestamp_errors(response: schemathesis.Response) -> list[str]:
    """Doc timestamps in a successful JSON answer that are not ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if not 200 <= response.status_code < 300 or "json" not in _media_type(response):
        return []
    return [
        f"Doc {doc.get('id')!r} has timestamp {doc.get('timestamp')!r}"
        for doc in _docs_in(_json_body(response))
        if not (isinstance(doc.get("timestamp"), str) and TIMESTAMP_RE.match(doc["timestamp"]))
    ]


def rate_limit_errors(response: schemathesis.Response) -> list[str]:
    """Missing or malformed ``Retry-After`` / ``RateLimit`` headers on a 429."""
    if response.status_code != 429:
        return []
    errors: list[str] = []
    retry_after = _header(response, "retry-after")
    if retry_after is None:
        errors.append("429 without Retry-After")
    elif not (retry_after.strip().isdigit() and int(retry_after) >= 1):
        errors.append(f"Retry-After {retry_after!r} is not whole seconds >= 1")
    for name in ("ratelimit", "ratelimit-policy"):
        if _header(response, name) is None:
            errors.append(f"429 without a {name.title()} header")
    return errors


def www_authenticate_errors(response: schemathesis.Response) -> list[str]:
    """A 401 must challenge with the Bearer scheme."""
    if response.status_code != 401:
        return []
    challenge = _header(response, "www-authenticate")
    if challenge is None:
        return ["401 without WWW-Authenticate"]
    if not challenge.strip().lower().startswith("bearer"):
        return [f"WWW-Authenticate {challenge!r} does not name the Bearer scheme"]
    return []


def _raise(errors: list[str]) -> None:
    if errors:
        raise AssertionError("; ".join(errors))


@schemathesis.check
def dualstore_problem_json(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx/5xx is application/problem+json with a documented ``type``."""
    _raise(problem_errors(response))
    return None


@schemathesis.check
def dualstore_doc_timestamps(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every Doc's timestamp is ISO 8601 UTC with milliseconds and ``Z``."""
    _raise(timestamp_errors(response))
    return None


@schemathesis.check
def dualstore_rate_limit_headers(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """A 429 carries Retry-After (whole seconds >= 1), RateLimit and RateLimit-Policy."""
    _raise(rate_limit_errors(response))
    return None


@schemathesis.check
def dualstore_www_authenticate(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """A 401 carries ``WWW-Authenticate: Bearer``."""
    _raise(www_authenticate_errors(response))
    return None
