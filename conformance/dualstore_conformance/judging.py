# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure predicates that decide checks, over recorded answers: problems, timestamps, Retry-After."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable
from typing import Any

import dualstore_spec
from dualstore_spec import facts
from dualstore_spec.facts import SpecError

PROBLEM_MEDIA_TYPE = "application/problem+json"


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type value, lower-cased, without parameters."""
    return (content_type or "").split(";")[0].strip().lower()


def parse_json(body: bytes | str | None) -> Any:
    """A body parsed as JSON, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def problem_prefix() -> str:
    """The URN prefix every problem type shares (from the spec)."""
    return facts.current().problem_prefix


def problem_slug(detail: Any) -> str | None:
    """The slug of a problem's ``type`` (``not-found``); the whole type when it is foreign."""
    kind = detail.get("type") if isinstance(detail, dict) else None
    if not isinstance(kind, str):
        return None
    prefix = problem_prefix()
    return kind[len(prefix):] if kind.startswith(prefix) else kind


def problem_errors(status: int, content_type: str | None, body: bytes | str | None) -> list[str]:
    """What makes an error answer less than an RFC 9457 problem of the spec (HTTP-001/002).

    Media type problem+json; a JSON object with string ``type`` and ``title`` and a
    ``status`` equal to the HTTP status; a ``type`` the spec lists, used with its status.
    Empty when the answer is fine (or is not an error).
    """
    if status < 400:
        return []
    errors: list[str] = []
    media = media_type(content_type)
    if media != PROBLEM_MEDIA_TYPE:
        errors.append(f"Content-Type is {media or 'missing'!r}, not {PROBLEM_MEDIA_TYPE!r}")
    detail = parse_json(body)
    if not isinstance(detail, dict):
        errors.append("body is not a JSON object")
        return errors
    kind = detail.get("type")
    listed = {problem.type: problem for problem in facts.current().problem_types.values()}
    if not isinstance(kind, str):
        errors.append("problem has no string 'type'")
    elif kind not in listed:
        errors.append(f"problem type {kind!r} is not one the spec lists")
    elif listed[kind].status != status:
        errors.append(f"problem type {kind!r} is documented with status {listed[kind].status}, "
                      f"answered with {status}")
    if detail.get("status") != status:
        errors.append(f"problem 'status' {detail.get('status')!r} differs from the HTTP status "
                      f"{status}")
    if not isinstance(detail.get("title"), str):
        errors.append("problem has no string 'title'")
    return errors


def expected_problem_errors(
    status: int,
    content_type: str | None,
    body: bytes | str | None,
    expected_status: int,
    slugs: str | Iterable[str],
    check_media_type: bool = True,
) -> list[str]:
    """How an answer differs from the expected problem: its status, one of these slugs and
    (unless ``check_media_type`` is False) the problem+json media type."""
    wanted = (slugs,) if isinstance(slugs, str) else tuple(slugs)
    errors = []
    if status != expected_status:
        errors.append(f"status {status}, expected {expected_status}")
    media = media_type(content_type)
    if check_media_type and media != PROBLEM_MEDIA_TYPE:
        errors.append(f"Content-Type {media or '(none)'}, expected {PROBLEM_MEDIA_TYPE}")
    detail = parse_json(body)
    if check_media_type and not isinstance(detail, dict):
        errors.append("body is not a JSON object")
    slug = problem_slug(detail)
    if slug not in wanted:
        prefix = problem_prefix()
        errors.append(f"problem type {slug and prefix + slug!r}, expected "
                      + " or ".join(repr(prefix + s) for s in wanted))
    return errors


def retry_after_errors(value: str | None) -> list[str]:
    """A Retry-After the spec allows on a 429: whole seconds, at least 1 (LIMIT-004)."""
    if value is None:
        return ["Retry-After missing"]
    text = value.strip()
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        return [f"Retry-After {value!r} is not whole seconds >= 1"]
    return []


RATELIMIT = re.compile(r'^"[a-z]+";r=([0-9]+);t=([0-9]+)$')
RATELIMIT_POLICY = re.compile(r'^"[a-z]+";q=([0-9]+);w=([0-9]+)$')


def refill_seconds(burst: int, per_second: float) -> int:
    """RateLimit-Policy ``w``: whole seconds, rounded up and at least 1, an empty bucket of
    burst tokens takes to refill at per_second."""
    return max(1, math.ceil(burst / per_second))


def ratelimit_errors(ratelimit: str | None, policy: str | None, burst: int,
                     per_second: float) -> list[str]:
    """LIMIT-009 on a 429 rate-limited: RateLimit ``r=0``, ``t`` at least 1 (and no longer
    than a whole refill); RateLimit-Policy ``q`` the burst, ``w`` the refill seconds."""
    errors = []
    refill = refill_seconds(burst, per_second)
    match = RATELIMIT.match((ratelimit or "").strip())
    if match is None:
        errors.append(f"RateLimit {ratelimit!r} is not '\"<name>\";r=<n>;t=<n>'")
    else:
        remaining, until = int(match.group(1)), int(match.group(2))
        if remaining != 0:
            errors.append(f"RateLimit r={remaining} on a 429 (no quota left: r=0)")
        if not 1 <= until <= refill:
            errors.append(f"RateLimit t={until}: more quota comes within 1..{refill} s "
                          f"(the next token of a {burst}-token bucket at {per_second}/s)")
    match = RATELIMIT_POLICY.match((policy or "").strip())
    if match is None:
        errors.append(f"RateLimit-Policy {policy!r} is not '\"<name>\";q=<n>;w=<n>'")
    else:
        if int(match.group(1)) != burst:
            errors.append(f"RateLimit-Policy q={match.group(1)}, the declared burst is {burst}")
        if int(match.group(2)) != refill:
            errors.append(f"RateLimit-Policy w={match.group(2)}, an empty bucket of {burst} "
                          f"refills at {per_second}/s in {refill} s")
    return errors


def retry_after_seconds(value: str | None, low: float, high: float, absent: float) -> float:
    """How long to wait on a Retry-After (delta-seconds), clamped to [low, high]; ``absent``
    when the header is missing or not a number."""
    try:
        seconds = float(value) if value is not None else absent
    except ValueError:
        seconds = absent
    return min(high, max(low, seconds))


def challenge_errors(status: int, www_authenticate: str | None, slug: str | None) -> list[str]:
    """How a refusal differs from 401 unauthorized with a Bearer challenge (AUTH-001)."""
    problems = []
    if status != 401:
        problems.append(f"status {status}")
    challenge = (www_authenticate or "").strip()
    if not challenge.lower().startswith("bearer"):
        problems.append(f"WWW-Authenticate {challenge or '(missing)'!r}")
    if slug != "unauthorized":
        problems.append(f"problem type {slug!r}")
    return problems


@functools.cache
def _timestamp_pattern(folder: str) -> re.Pattern[str]:
    schemas = dualstore_spec.openapi().get("components", {}).get("schemas", {})
    pattern = schemas.get("Timestamp", {}).get("pattern")
    if not isinstance(pattern, str):
        raise SpecError("the spec's components/schemas/Timestamp has no pattern")
    return re.compile(pattern)


def doc_timestamp_pattern() -> re.Pattern[str]:
    """The one form a returned timestamp takes (the spec's Timestamp pattern)."""
    return _timestamp_pattern(str(dualstore_spec.path()))
