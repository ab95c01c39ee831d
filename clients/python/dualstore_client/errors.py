# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed exceptions raised by the DualStore clients, carrying the RFC 9457 problem body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class DualStoreError(Exception):
    """Base class of every error the client raises."""


class TransportError(DualStoreError):
    """The server could not be reached or the connection broke (wraps the httpx error)."""


class ProtocolError(DualStoreError):
    """The server answered something the spec does not allow (wrong type, broken JSON)."""


class ProblemError(DualStoreError):
    """An error response; ``problem`` is its RFC 9457 ``application/problem+json`` body.

    The subclass is chosen by HTTP status (``NotFound`` for 404, ...). When the server sent
    no problem document (a proxy's HTML error page, say) ``problem`` is synthesised from the
    status line so that ``type``/``title``/``status`` are always present.
    """

    status: int = 0

    def __init__(self, status: int, problem: Mapping[str, Any], headers: httpx.Headers) -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem)
        self.headers = headers
        detail = self.detail or self.title
        super().__init__(f"{status} {self.type}: {detail}" if detail else f"{status} {self.type}")

    @property
    def type(self) -> str:
        """The problem ``type`` URI (``about:blank`` when absent)."""
        value = self.problem.get("type", "about:blank")
        return value if isinstance(value, str) else "about:blank"

    @property
    def slug(self) -> str:
        """The last segment of ``type`` (``not-found`` for ``urn:dualstore:problem:not-found``)."""
        return self.type.rsplit(":", 1)[-1].rsplit("/", 1)[-1]

    @property
    def title(self) -> str:
        """The problem ``title`` ('' when absent)."""
        value = self.problem.get("title", "")
        return value if isinstance(value, str) else ""

    @property
    def detail(self) -> str:
        """The problem ``detail`` ('' when absent)."""
        value = self.problem.get("detail", "")
        return value if isinstance(value, str) else ""


class BadRequest(ProblemError):
    """400: a malformed request (bad parameter, filter, cursor or resume token)."""


class Unauthorized(ProblemError):
    """401: a missing or wrong bearer token."""


class Forbidden(ProblemError):
    """403: the token is not allowed to do this."""


class NotFound(ProblemError):
    """404: no such document, collection or route."""


class MethodNotAllowed(ProblemError):
    """405: the route exists but not with this method."""


class Conflict(ProblemError):
    """409: the request conflicts with the current state."""


class PayloadTooLarge(ProblemError):
    """413: the body is over the server's cap."""


class UnsupportedMediaType(ProblemError):
    """415: the body is not JSON."""


class UnprocessableContent(ProblemError):
    """422: well-formed JSON that breaks the schema, or an idempotency key reused."""


class RateLimited(ProblemError):
    """429: too many requests or too many streams; wait ``retry_after`` seconds."""

    @property
    def retry_after(self) -> float | None:
        """Seconds from the ``Retry-After`` header (delta or HTTP date), if it was sent."""
        return retry_after_seconds(self.headers)


class ServerError(ProblemError):
    """5xx other than 503."""


class ServiceUnavailable(ServerError):
    """503: the server or its database is temporarily unavailable."""

    @property
    def retry_after(self) -> float | None:
        """Seconds from the ``Retry-After`` header, if it was sent."""
        return retry_after_seconds(self.headers)


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: UnprocessableContent,
    429: RateLimited,
    503: ServiceUnavailable,
}


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Parse ``Retry-After`` (delta-seconds or an HTTP date) into seconds; None if absent/bad."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def problem_from_response(response: httpx.Response) -> ProblemError:
    """Build the typed exception for an error response whose body has been read."""
    status = response.status_code
    problem: dict[str, Any] | None = None
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        problem = body
    if problem is None:
        problem = {"type": "about:blank", "title": response.reason_phrase, "status": status}
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ProblemError
    return cls(status, problem, response.headers)
