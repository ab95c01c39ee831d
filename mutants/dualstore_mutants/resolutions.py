# SPDX-License-Identifier: GPL-3.0-or-later
"""Spec 1.1 mutants for the questions issue 15 resolved: precedence, HEAD, nested keys, deep
bodies, sub-millisecond filter instants, RateLimit fields, never-issued and foreign resume
tokens, since filtering live events."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

import yaml
from dualstore_spec import facts as spec_facts
from dualstore_spec.location import path

from .asgi import (
    ASGIApp,
    BlockFilter,
    Headers,
    Message,
    Receive,
    Response,
    Scope,
    Send,
    block_fields,
    dump,
    get_header,
    is_http,
    is_stream,
    query,
    request_header,
    rewrite_request,
    rewrite_response,
    rewrite_sse,
    set_header,
    with_query,
    with_request_header,
)
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings

COLLECTION_SEGMENT = re.compile(r"^/v1/([^/]+)(/.*)?$")
NOT_COLLECTIONS = frozenset({"health", "collections", "ui"})


async def answer(send: Send, status: int, slug_or_type: str, title: str) -> None:
    """Send a problem+json answer (slug: a spec problem type; else the type as given)."""
    spec = spec_facts.current()
    kind = spec.problem(slug_or_type).type if slug_or_type in spec.problem_types else (
        slug_or_type)
    body = dump({"type": kind, "title": title, "status": status})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def read_body(receive: Receive) -> bytes:
    """The whole request body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(raw: bytes, receive: Receive) -> Receive:
    """A receive that hands raw once, then defers to receive."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return replay


@fault("rest-collection-before-auth")
def collection_before_auth(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The collection is resolved before authentication: a request to an unknown collection
    is let through without a valid token and gets 404 unknown-collection instead of 401
    (HTTP-015)."""
    known = set(settings.collections)
    bearer = f"Bearer {settings.auth_tokens[0]}" if settings.auth_tokens else None

    def rewrite(scope: Scope) -> Scope:
        match = COLLECTION_SEGMENT.match(str(scope.get("path", "")))
        if (bearer is None or not match or match.group(1) in NOT_COLLECTIONS
                or match.group(1) in known):
            return scope
        return with_request_header(scope, "authorization", bearer)

    return rewrite_request(app, rewrite)


@fault("rest-head-always-200")
def head_always_200(app: ASGIApp, settings: Settings) -> ASGIApp:
    """HEAD is answered 200 application/json on every path without asking the handler (a
    catch-all HEAD route): a missing document's HEAD says 200 where its GET says 404."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not is_http(scope) or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return middleware


def _truncate_nested_keys(value: Any, longest: int, level: int) -> Any:
    """value with every object key below the metadata object cut to longest characters."""
    if isinstance(value, dict):
        return {(k[:longest] if level >= 2 else k): _truncate_nested_keys(v, longest, level + 1)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate_nested_keys(v, longest, level) for v in value]
    return value


def _is_collection_post(scope: Scope) -> bool:
    match = COLLECTION_SEGMENT.match(str(scope.get("path", "")))
    return bool(is_http(scope) and scope["method"] == "POST" and match and not match.group(2))


@fault("rest-nested-key-unchecked")
def nested_key_unchecked(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The metadata key length is checked on the top level only: a nested key of 257
    characters is stored (cut to 256 here) instead of 422 validation-failed (WRITE-011)."""
    cap = spec_facts.current().max_body_bytes
    longest = int(_metadata_limit("max_key_length"))

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not _within_cap(scope, cap):
            await app(scope, receive, send)
            return
        raw = await read_body(receive)
        try:
            body = json.loads(raw)
            metadata = body.get("metadata") if isinstance(body, dict) else None
            if isinstance(metadata, dict):
                cut = _truncate_nested_keys(metadata, longest, 1)
                if cut != metadata:
                    raw = dump({**body, "metadata": cut})
                    scope = with_request_header(scope, "content-length", str(len(raw)))
        except (ValueError, RecursionError, UnicodeError):
            pass  # not this mutant's business: the reference answers it
        await app(scope, replaying(raw, receive), send)

    return middleware


def _within_cap(scope: Scope, cap: int) -> bool:
    """A collection POST declaring a Content-Length within the cap (others pass untouched,
    so the mutants never buffer what the reference would refuse unread)."""
    length = request_header(scope, "content-length") if is_http(scope) else None
    return (_is_collection_post(scope) and length is not None and length.isdigit()
            and int(length) <= cap)


def _metadata_limit(name: str) -> Any:
    """x-dualstore-limits.metadata.<name> of the installed spec."""
    openapi = yaml.safe_load((path() / "openapi.yaml").read_text(encoding="utf-8"))
    return openapi["x-dualstore-limits"]["metadata"][name]


RECURSION_LIMIT = 20_000
"""Nesting depth at which the mutant's parser gives up (above the 10,000 of
http-deep-nesting, below the deepest body the cap admits)."""


def nesting_depth(raw: bytes) -> int:
    """The deepest [ / { nesting of raw JSON (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


@fault("rest-deep-body-500")
def deep_body_500(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A body nested 20,000 deep (within the body cap) overflows the parser's recursion and
    the uncaught error answers 500 (WRITE-012)."""

    cap = spec_facts.current().max_body_bytes

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not _within_cap(scope, cap):
            await app(scope, receive, send)
            return
        raw = await read_body(receive)
        if nesting_depth(raw) > RECURSION_LIMIT:
            await answer(send, 500, "about:blank", "Internal Server Error")
            return
        await app(scope, replaying(raw, receive), send)

    return middleware


FRACTION = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{4,})(.*)$")


def rounded_instant(value: str) -> str:
    """value with more than 3 fractional digits rounded to the nearest millisecond (the
    mutant's mistake; the spec truncates). Values it cannot round stay as they are."""
    match = FRACTION.match(value)
    if not match:
        return value
    millis = round(int(match.group(2)[:4]) / 10)
    if millis >= 1000:
        return value
    return f"{match.group(1)}.{millis:03d}{match.group(3)}"


def _round_timestamps(node: Any, under_timestamp: bool = False) -> Any:
    if isinstance(node, dict):
        return {k: _round_timestamps(v, under_timestamp or k == "timestamp")
                for k, v in node.items()}
    if isinstance(node, list):
        return [_round_timestamps(v, under_timestamp) for v in node]
    if isinstance(node, str) and under_timestamp:
        return rounded_instant(node)
    return node


def _decode_filter(value: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return None


@fault("rest-filter-instant-rounded")
def filter_instant_rounded(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Filter instants with more than three fractional digits are rounded to the nearest
    millisecond instead of truncated: 10:00:00.123999Z compares as .124 (FILTER-013)."""

    def rewrite(scope: Scope) -> Scope:
        pairs = query(scope)
        changed = []
        for key, value in pairs:
            if key == "filter":
                try:
                    expression = _decode_filter(value)
                    rounded = _round_timestamps(expression)
                    if expression is not None and rounded != expression:
                        value = base64.urlsafe_b64encode(dump(rounded)).decode().rstrip("=")
                except (RecursionError, UnicodeError):
                    pass  # too deep or not text for this mutant: the reference refuses it
            changed.append((key, value))
        return scope if changed == pairs else with_query(scope, changed)

    return rewrite_request(app, rewrite)


@fault("sec-ratelimit-t-zero")
def ratelimit_t_zero(app: ASGIApp, settings: Settings) -> ASGIApp:
    """RateLimit t is computed with floor instead of ceil: a 429 says t=0 while the next
    token is still under a second away (LIMIT-009 asks for at least 1)."""

    def rewrite(scope: Scope, status: int, headers: Headers, body: bytes) -> Response:
        value = get_header(headers, "ratelimit")
        if status != 429 or value is None:
            return status, headers, body
        return status, set_header(headers, "ratelimit", re.sub(r"t=\d+", "t=0", value)), body

    return rewrite_response(app, rewrite)


LONG_DIGITS = re.compile(r"^[0-9]{20,}$")


@fault("sse-resume-token-overflow-500")
def resume_token_overflow(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A resume token of 20 or more digits overflows the 64-bit integer it is parsed into and
    the stream answers 500 (SSE-RESUME-011)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if is_stream(scope):
            tokens = [request_header(scope, "last-event-id") or "",
                      *(v for k, v in query(scope) if k == "since")]
            if any(LONG_DIGITS.match(token.strip()) for token in tokens):
                await answer(send, 500, "about:blank", "Internal Server Error")
                return
        await app(scope, receive, send)

    return middleware


def _since_time(scope: Scope) -> dt.datetime | None:
    for key, value in query(scope):
        if key == "since":
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
    return None


@fault("sse-since-filters-live")
def since_filters_live(app: ASGIApp, settings: Settings) -> ASGIApp:
    """since=<time> is applied as a filter on live events too: documents committed after
    the stream opened whose timestamp is before since are never delivered (SSE-RESUME-012)."""

    def make(scope: Scope) -> BlockFilter:
        since = _since_time(scope)

        async def drop_older(block: bytes) -> list[bytes]:
            fields = block_fields(block)
            if since is None or fields.get("event") != "insert":
                return [block]
            try:
                stamp = dt.datetime.fromisoformat(
                    json.loads(fields["data"])["timestamp"].replace("Z", "+00:00"))
            except (KeyError, ValueError, TypeError):
                return [block]
            return [] if stamp < since else [block]

        return drop_older

    return rewrite_sse(app, make)


def _on_path(scope: Scope, collection: str) -> Scope:
    """scope for collection's stream (raw_path dropped, so the path is what routes)."""
    moved = {**scope, "path": f"/v1/{collection}/stream"}
    moved.pop("raw_path", None)
    return moved


@fault("sse-resume-token-names-collection")
def token_names_collection(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Event ids carry the collection that issued them (``<collection>.<id>``) and a resume
    trusts the token's collection over the path's: a stream given another collection's token
    streams that collection (SSE-RESUME-014)."""
    known = set(settings.collections)

    def make(scope: Scope) -> BlockFilter:
        match = COLLECTION_SEGMENT.match(str(scope.get("path", "")))
        collection = match.group(1) if match else ""

        async def name_ids(block: bytes) -> list[bytes]:
            text = block.decode("utf-8")
            return [re.sub(r"(?m)^id: ?(.*)$", lambda m: f"id: {collection}.{m.group(1)}",
                           text).encode("utf-8")]

        return name_ids

    streamed = rewrite_sse(app, make)

    def split(token: str) -> tuple[str, str] | None:
        name, dot, rest = token.partition(".")
        return (name, rest) if dot and name in known and rest else None

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if is_stream(scope):
            header = split(request_header(scope, "last-event-id") or "")
            if header is not None:
                scope = _on_path(with_request_header(scope, "last-event-id", header[1]),
                                 header[0])
            pairs = query(scope)
            since = [(k, split(v)) for k, v in pairs if k == "since"]
            if since and since[0][1] is not None:
                name, token = since[0][1]
                scope = _on_path(with_query(scope, [(k, token if k == "since" else v)
                                                    for k, v in pairs]), name)
        await streamed(scope, receive, send)

    return middleware
