# SPDX-License-Identifier: GPL-3.0-or-later
"""DualStore's own Schemathesis checks: problem+json errors, Doc timestamps, 429 and 401 headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import schemathesis

from dualstore_conformance import judging

CHECK_NAMES = (
    "dualstore_problem_json",
    "dualstore_doc_timestamps",
    "dualstore_rate_limit_headers",
    "dualstore_www_authenticate",
)
"""Names of the checks this module registers (Schemathesis keys checks by function name)."""


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
    return judging.problem_errors(response.status_code, _header(response, "content-type"),
                                  response.content)


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
        if not (isinstance(doc.get("timestamp"), str)
                and judging.doc_timestamp_pattern().match(doc["timestamp"]))
    ]


def rate_limit_errors(response: schemathesis.Response) -> list[str]:
    """Missing or malformed ``Retry-After`` / ``RateLimit`` headers on a 429."""
    if response.status_code != 429:
        return []
    errors: list[str] = []
    retry_after = _header(response, "retry-after")
    if retry_after is None:
        errors.append("429 without Retry-After")
    else:
        errors += judging.retry_after_errors(retry_after)
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
    if judging.challenge_errors(401, challenge, "unauthorized"):
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
