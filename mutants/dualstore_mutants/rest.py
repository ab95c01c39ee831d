# SPDX-License-Identifier: GPL-3.0-or-later
"""REST mutants: wrong statuses, Doc shape and timestamps, limits, filters, cursors, idempotency."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

from .asgi import (
    ASGIApp,
    Headers,
    Response,
    Scope,
    dump,
    is_http,
    is_stream,
    json_body,
    query,
    request_header,
    rewrite_docs,
    rewrite_request,
    rewrite_response,
    set_header,
    with_query,
    with_request_header,
)
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings

COLLECTION_PATH = re.compile(r"^/v1/[^/]+$")
BY_ID_PATH = re.compile(r"^/v1/(?!health$|collections$)[^/]+/(?!recent$|search$|stream$)([^/]+)$")
RECENT_PATH = re.compile(r"^/v1/[^/]+/recent$")
SEARCH_PATH = re.compile(r"^/v1/[^/]+/search$")
UNSAFE = ("$where", "$expr", "$function", "$regex", "$accumulator", "$jsonSchema")


def _path(scope: Scope) -> str:
    return str(scope.get("path", ""))


@fault("rest-422-as-400")
def validation_as_400(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Schema validation failures answer 400 instead of 422 validation-failed."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        value = json_body(headers, body)
        slug = str(value.get("type", "")) if isinstance(value, dict) else ""
        if status == 422 and isinstance(value, dict) and slug.endswith(":validation-failed"):
            value["status"] = 400
            return 400, headers, dump(value)
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("rest-doc-missing-timestamp")
def doc_missing_timestamp(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Docs are served without their timestamp field."""
    return rewrite_docs(app, lambda doc: {k: v for k, v in doc.items() if k != "timestamp"})


@fault("rest-doc-extra-field")
def doc_extra_field(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Docs leak an undocumented storage field."""
    return rewrite_docs(app, lambda doc: {**doc, "_ingested_at": doc["timestamp"]})


@fault("rest-json-as-text-plain")
def json_as_text(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Successful JSON answers are labelled text/plain."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        if status < 400 and json_body(headers, body) is not None:
            headers = set_header(headers, "content-type", "text/plain; charset=utf-8")
        return status, headers, body

    return rewrite_response(app, rewrite)


def _reformat(value: Any, render: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return render(moment)


@fault("rest-timestamp-not-iso")
def timestamp_not_iso(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Doc timestamps rendered with str(datetime): a space, microseconds, +00:00."""
    return rewrite_docs(
        app, lambda doc: {**doc, "timestamp": _reformat(doc["timestamp"], lambda m: str(m))}
    )


@fault("rest-timestamp-not-utc")
def timestamp_not_utc(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Doc timestamps rendered in the server's local zone (+02:00), not UTC with Z."""
    zone = dt.timezone(dt.timedelta(hours=2))

    def render(moment: dt.datetime) -> str:
        local = moment.astimezone(zone)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}+02:00"

    return rewrite_docs(
        app, lambda doc: {**doc, "timestamp": _reformat(doc["timestamp"], render)}
    )


@fault("rest-invalid-json-500")
def invalid_json_500(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A body that is not JSON crashes the handler: 500 instead of 400 invalid-json."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        value = json_body(headers, body)
        if isinstance(value, dict) and str(value.get("type", "")).endswith(":invalid-json"):
            problem = {
                "type": "about:blank",
                "title": "Internal Server Error",
                "status": 500,
            }
            return 500, headers, dump(problem)
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("rest-limit-not-enforced")
def limit_not_enforced(app: ASGIApp, settings: Settings) -> ASGIApp:
    """recent silently clamps limit above 200 instead of answering 400."""

    def rewrite(scope: Scope) -> Scope:
        if not RECENT_PATH.match(_path(scope)):
            return scope
        pairs = [
            (k, "200" if k == "limit" and v.isdigit() and int(v) > 200 else v)
            for k, v in query(scope)
        ]
        return with_query(scope, pairs)

    return rewrite_request(app, rewrite)


@fault("rest-body-cap-off")
def body_cap_off(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The 64 KiB body cap is configured 16 times too high (a unit slip: KiB read as 1/16 MiB)."""
    object.__setattr__(settings, "max_body_bytes", settings.max_body_bytes * 16)
    return app


def _decoded_filter(value: str) -> str:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""


def _valid_filter(value: str) -> bool:
    from dualstore_reference.store import filters

    try:
        filters.parse(value)
    except (filters.FilterError, ValueError):
        return False
    return True


@fault("rest-unsafe-filter-accepted")
def unsafe_filter_accepted(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A filter with $where/$regex/$expr/... is passed on (here: dropped) instead of 400."""

    def rewrite(scope: Scope) -> Scope:
        if is_stream(scope):
            return scope
        pairs = query(scope)
        kept = [
            (k, v)
            for k, v in pairs
            if not (k == "filter" and any(op in _decoded_filter(v) for op in UNSAFE))
        ]
        return scope if kept == pairs else with_query(scope, kept)

    return rewrite_request(app, rewrite)


@fault("rest-filter-ignored")
def filter_ignored(app: ASGIApp, settings: Settings) -> ASGIApp:
    """recent and search validate the filter but never apply it."""

    def rewrite(scope: Scope) -> Scope:
        path = _path(scope)
        if not (RECENT_PATH.match(path) or SEARCH_PATH.match(path)):
            return scope
        pairs = query(scope)
        kept = [(k, v) for k, v in pairs if not (k == "filter" and v and _valid_filter(v))]
        return scope if kept == pairs else with_query(scope, kept)

    return rewrite_request(app, rewrite)


@fault("rest-unknown-id-200")
def unknown_id_200(app: ASGIApp, settings: Settings) -> ASGIApp:
    """By-id lookups of a missing document answer 200 with an empty Doc."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        found = BY_ID_PATH.match(_path(scope))
        if scope["method"] == "GET" and status == 404 and found:
            doc: dict[str, Any] = {
                "id": found.group(1),
                "text": "",
                "timestamp": "1970-01-01T00:00:00.000Z",
                "metadata": {},
            }
            return 200, set_header(headers, "content-type", "application/json"), dump(doc)
        return status, headers, body

    return rewrite_response(app, rewrite)


def reverse_items(app: ASGIApp, path: re.Pattern[str]) -> ASGIApp:
    """Answers on path list their ``items`` in reverse order."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        value = json_body(headers, body)
        if path.match(_path(scope)) and isinstance(value, dict):
            items = value.get("items")
            if isinstance(items, list):
                value["items"] = list(reversed(items))
                return status, headers, dump(value)
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("rest-search-unordered")
def search_unordered(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Search hits come back worst first (sorted ascending by score)."""
    return reverse_items(app, SEARCH_PATH)


@fault("rest-idempotency-ignored")
def idempotency_ignored(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The Idempotency-Key header is ignored: every retry creates a new document."""

    def rewrite(scope: Scope) -> Scope:
        if scope["method"] == "POST":
            return with_request_header(scope, "idempotency-key", None)
        return scope

    return rewrite_request(app, rewrite)


@fault("rest-cursor-skips")
def cursor_skips(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A page offering next loses its last item (next points past it): one skipped per page."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        value = json_body(headers, body)
        if RECENT_PATH.match(_path(scope)) and isinstance(value, dict) and value.get("next"):
            items = value.get("items")
            if isinstance(items, list) and len(items) > 1:
                value["items"] = items[:-1]
                return status, headers, dump(value)
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("rest-location-missing")
def location_missing(app: ASGIApp, settings: Settings) -> ASGIApp:
    """POST 201 answers without the Location header."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        if scope["method"] == "POST" and status == 201:
            headers = set_header(headers, "location", None)
        return status, headers, body

    return rewrite_response(app, rewrite)


@fault("rest-recent-oldest-first")
def recent_oldest_first(app: ASGIApp, settings: Settings) -> ASGIApp:
    """recent lists each page oldest first (sort direction flipped)."""
    return reverse_items(app, RECENT_PATH)


@fault("rest-validation-lenient")
def validation_lenient(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Unknown NewDoc properties are silently dropped instead of answering 422."""
    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        if not (scope.get("type") == "http" and scope["method"] == "POST"
                and COLLECTION_PATH.match(_path(scope))):
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            raw = dump({k: v for k, v in value.items() if k in ("text", "timestamp", "metadata")})
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        headers = [(h, v) for h, v in scope.get("headers", []) if h.lower() != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        await app({**scope, "headers": headers}, replay, send)

    return middleware


RACE_WINDOW_SECONDS = 0.3
"""How long the racy lookup-then-insert takes (wide enough for concurrent retries to meet)."""


@fault("rest-idempotency-race")
def idempotency_race(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Idempotency is check-then-insert without a lock or unique index: a POST arriving while
    another with the same key is still in flight finds nothing and creates a second document."""
    in_flight: set[str] = set()

    async def middleware(scope: Scope, receive: Any, send: Any) -> None:
        key = request_header(scope, "idempotency-key") if is_http(scope) else None
        if not key or scope["method"] != "POST" or not COLLECTION_PATH.match(_path(scope)):
            await app(scope, receive, send)
            return
        if key in in_flight:  # the lookup missed the first request's uncommitted insert
            await app(with_request_header(scope, "idempotency-key", None), receive, send)
            return
        in_flight.add(key)
        try:
            await asyncio.sleep(RACE_WINDOW_SECONDS)
            await app(scope, receive, send)
        finally:
            in_flight.discard(key)

    return middleware
