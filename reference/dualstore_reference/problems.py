# SPDX-License-Identifier: GPL-3.0-or-later
"""RFC 9457 problem details (application/problem+json) for every error the server returns."""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Mapping
from typing import Any

import falcon
import falcon.asgi
from dualstore_spec import facts
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = facts.current().problem_prefix

SLUGS: dict[str, tuple[int, str]] = {
    slug: (entry.status, entry.title) for slug, entry in facts.current().problem_types.items()
}
"""Problem slug -> (status, title): the spec's x-dualstore-problem-types."""

_DEFAULT_SLUG_FOR_STATUS = {
    400: "invalid-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
    503: "unavailable",
}

log = logging.getLogger("dualstore.problems")


def problem_type(slug: str) -> str:
    """The URN used as the problem ``type`` for slug."""
    return TYPE_PREFIX + slug


class Problem(falcon.HTTPError):
    """An error rendered as RFC 9457 problem+json with a documented type."""

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        status, title = SLUGS[slug]
        super().__init__(status, title=title, description=detail, headers=dict(headers or {}))
        self.slug = slug
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The problem+json object of this error."""
        return problem_body(self.status_code, self.slug, self.title, self.description, self.extra)


def problem_body(
    status: int,
    slug: str | None,
    title: str | None,
    detail: str | None,
    extra: Mapping[str, Any] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The JSON object of a problem."""
    body: dict[str, Any] = {
        "type": problem_type(slug) if slug else "about:blank",
        "title": title or (SLUGS[slug][1] if slug else "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return body


def raw_response(
    status: int,
    slug: str | None,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a problem sent below Falcon (connection layer, ASGI guard).

    Without a slug the type is ``about:blank`` and the title the status phrase (RFC 9457
    section 4.2.1): for statuses the API defines no problem type for (408, 414, 431, 505).
    """
    title = SLUGS[slug][1] if slug else http.HTTPStatus(status).phrase
    body = json.dumps(problem_body(status, slug, title, detail), separators=(",", ":")).encode()
    fields = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
    ]
    return fields, body


def _slug_for(error: falcon.HTTPError) -> str | None:
    if isinstance(error, Problem):
        return error.slug
    return _DEFAULT_SLUG_FOR_STATUS.get(error.status_code)


def _complete_429(resp: falcon.Response, slug: str | None, stream_cap: int) -> None:
    """Every 429 carries Retry-After, RateLimit and RateLimit-Policy (the spec requires all
    three); fill in what the raiser left out (the stream cap's 429 sets only Retry-After)."""
    retry = resp.get_header("Retry-After") or "1"
    if resp.get_header("Retry-After") is None:
        resp.set_header("Retry-After", retry)
    name = "streams" if slug == "too-many-streams" else "default"
    if resp.get_header("RateLimit-Policy") is None:
        quota = stream_cap if slug == "too-many-streams" else 0
        resp.set_header("RateLimit-Policy", f'"{name}";q={quota};w={retry}')
    if resp.get_header("RateLimit") is None:
        resp.set_header("RateLimit", f'"{name}";r=0;t={retry}')


def serialize_error(
    req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError, stream_cap: int = 10
) -> None:
    """Falcon error serializer: always problem+json, whatever the client accepts."""
    slug = _slug_for(error)
    if isinstance(error, Problem):
        body = error.body()
    else:
        title = SLUGS[slug][1] if slug else (error.title or "Error")
        detail = error.description
        if isinstance(error, falcon.HTTPRouteNotFound) or (
            error.status_code == 404 and not detail
        ):
            detail = f"No resource at {req.path}"
        if isinstance(error, falcon.HTTPMethodNotAllowed):
            # Falcon lists its automatic OPTIONS responder; Allow names documented methods.
            headers = dict(error.headers or {})
            methods = headers.get("Allow", "").split(",")
            allow = ", ".join(m.strip() for m in methods if m.strip() not in ("", "OPTIONS"))
            resp.set_header("Allow", allow)
            detail = f"{req.method} is not allowed here; allowed: {allow}"
        body = problem_body(error.status_code, slug, title, detail)
    if error.status_code == 429:
        _complete_429(resp, slug, stream_cap)
    resp.data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    resp.content_type = PROBLEM_CONTENT_TYPE
    resp.append_header("Vary", "Accept")


async def handle_database_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: Any
) -> None:
    """Database unreachable -> 503 unavailable (retryable)."""
    log.warning("database unavailable: %s", error)
    raise Problem(
        "unavailable", "The database is not reachable; retry later.", headers={"Retry-After": "1"}
    )


async def handle_database_failure(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: Any
) -> None:
    """Any other database error: past the operation bound (``error.timeout``) -> 503."""
    if isinstance(error, PyMongoError) and error.timeout:
        await handle_database_error(req, resp, error, params)
    await handle_unexpected(req, resp, error, params)


async def handle_unexpected(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Exception, params: Any
) -> None:
    """Any other exception -> 500 problem (logged with its traceback)."""
    if isinstance(error, falcon.HTTPError):
        raise error
    log.exception("unhandled error on %s %s", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.content_type = PROBLEM_CONTENT_TYPE
    resp.data = json.dumps(
        problem_body(500, None, "Internal server error", "The server failed unexpectedly.")
    ).encode("utf-8")


def install(app: falcon.asgi.App[Any, Any], stream_cap: int = 10) -> None:
    """Register the serializer and handlers so that every error is problem+json."""

    def serializer(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
        serialize_error(req, resp, error, stream_cap)

    app.set_error_serializer(serializer)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(PyMongoError, handle_database_failure)
    for database_error in (ConnectionFailure, ServerSelectionTimeoutError, ExecutionTimeout):
        app.add_error_handler(database_error, handle_database_error)
