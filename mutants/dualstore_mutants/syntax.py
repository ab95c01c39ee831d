# SPDX-License-Identifier: GPL-3.0-or-later
"""Spec 1.1 request-syntax mutants: lenient integers, last-wins parameters, charset alias,
resume parameters left unchecked, access_token fallback, idempotency by number spelling,
a small header buffer."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from dualstore_spec import facts as spec_facts

from .asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    dump,
    is_http,
    is_stream,
    query,
    request_header,
    rewrite_request,
    with_query,
    with_request_header,
)
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings

LIST_PATH = re.compile(r"^/v1/[^/]+/(recent|search|stream)$")
COLLECTION_PATH = re.compile(r"^/v1/[^/]+$")
INTEGER_PARAMETERS = ("limit", "k")
DOCUMENTED = ("limit", "k", "q", "cursor", "filter", "since")
CHARSET_UTF8 = re.compile(r"""(;\s*charset\s*=\s*)"?utf8"?""", re.IGNORECASE)


def lenient_integer(value: str) -> str:
    """What int() (then float()) makes of value, written back in digits; value if neither."""
    text = value.strip()
    try:
        return str(int(text))  # takes 05, +5, surrounding spaces and fullwidth digits
    except ValueError:
        pass
    try:
        number = float(text)  # takes 5.0 and 5e0
    except ValueError:
        return value
    return str(int(number)) if math.isfinite(number) and number.is_integer() else value


@fault("rest-integer-lenient")
def integer_lenient(app: ASGIApp, settings: Settings) -> ASGIApp:
    """limit and k are parsed with int()/float(): 05, +5, ' 5', 5.0, 5e0 and fullwidth
    digits are read as 5 instead of 400 invalid-request."""

    def rewrite(scope: Scope) -> Scope:
        if not LIST_PATH.match(str(scope.get("path", ""))):
            return scope
        pairs = query(scope)
        lenient = [(k, lenient_integer(v) if k in INTEGER_PARAMETERS and v else v)
                   for k, v in pairs]
        return scope if lenient == pairs else with_query(scope, lenient)

    return rewrite_request(app, rewrite)


@fault("rest-repeated-last-wins")
def repeated_last_wins(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A documented query parameter given twice is not refused: the last value wins (what
    a framework's get_param returns)."""

    def rewrite(scope: Scope) -> Scope:
        if not LIST_PATH.match(str(scope.get("path", ""))):
            return scope
        pairs = query(scope)
        counts = Counter(k for k, _ in pairs)
        if not any(counts[name] > 1 for name in DOCUMENTED):
            return scope
        last = {k: index for index, (k, _) in enumerate(pairs)}
        kept = [(k, v) for index, (k, v) in enumerate(pairs)
                if k not in DOCUMENTED or last[k] == index]
        return with_query(scope, kept)

    return rewrite_request(app, rewrite)


@fault("rest-charset-utf8-alias")
def charset_utf8_alias(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``charset=utf8`` (the common misspelling of utf-8) is accepted like utf-8, not 415."""

    def rewrite(scope: Scope) -> Scope:
        content_type = request_header(scope, "content-type")
        if content_type is None or not CHARSET_UTF8.search(content_type):
            return scope
        return with_request_header(scope, "content-type",
                                   CHARSET_UTF8.sub(r"\1utf-8", content_type))

    return rewrite_request(app, rewrite)


@fault("sse-resume-since-unchecked")
def since_unchecked(app: ASGIApp, settings: Settings) -> ASGIApp:
    """With a Last-Event-ID the stream never parses ``since`` (the header wins, so the other
    parameter is skipped): a malformed since beside a valid header streams."""

    def rewrite(scope: Scope) -> Scope:
        if not is_stream(scope) or not request_header(scope, "last-event-id"):
            return scope
        pairs = query(scope)
        kept = [(k, v) for k, v in pairs if k != "since"]
        return scope if kept == pairs else with_query(scope, kept)

    return rewrite_request(app, rewrite)


BEARER = re.compile(r"^\s*bearer\s+\S", re.IGNORECASE)


@fault("sec-access-token-fallback")
def access_token_fallback(app: ASGIApp, settings: Settings) -> ASGIApp:
    """On the stream, an Authorization header that is not a usable Bearer credential (another
    scheme, an empty Bearer) is passed over and access_token decides instead."""

    def rewrite(scope: Scope) -> Scope:
        header = request_header(scope, "authorization")
        if not is_stream(scope) or header is None or BEARER.match(header):
            return scope
        if not any(k == "access_token" and v for k, v in query(scope)):
            return scope
        return with_request_header(scope, "authorization", None)

    return rewrite_request(app, rewrite)


def _by_value(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, dict):
        return {k: _by_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_by_value(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@fault("rest-idempotency-number-spelling")
def idempotency_number_spelling(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The Idempotency-Key body digest keeps 1 and 1.0 apart (JSON re-serialised with the
    parsed int/float types): a retry spelling a number differently gets 422
    idempotency-key-reuse. Remembered per worker process (the kill matrix runs one)."""
    cap = spec_facts.current().max_body_bytes
    created: dict[tuple[str, str], str] = {}
    """(path, key) -> the type-keeping canonical JSON of the body that created a document."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = request_header(scope, "idempotency-key") if is_http(scope) else None
        length = request_header(scope, "content-length") if key else None
        path = str(scope.get("path", ""))
        if (not key or scope["method"] != "POST" or not COLLECTION_PATH.match(path)
                or length is None or not length.isdigit() or int(length) > cap):
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
            spelled: str | None = _canonical(json.loads(raw))
            by_value = _canonical(_by_value(json.loads(raw)))
        except ValueError:
            spelled = by_value = None
        earlier = created.get((path, key))
        if spelled is not None and earlier is not None and earlier != spelled and (
                _canonical(_by_value(json.loads(earlier))) == by_value):
            body = dump({
                "type": "urn:dualstore:problem:idempotency-key-reuse",
                "title": "Idempotency key reuse", "status": 422,
                "detail": f"The Idempotency-Key {key!r} was used with a different body.",
            })
            await send({"type": "http.response.start", "status": 422, "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def record(message: Message) -> None:
            if (message["type"] == "http.response.start" and message.get("status") == 201
                    and spelled is not None):
                created.setdefault((path, key), spelled)
            await send(message)

        await app(scope, replay, record)

    return middleware


SMALL_HEADER_BUFFER = 4096
"""Octets of header section the mutant's front end takes (a common proxy buffer size)."""


@fault("rest-small-header-buffer")
def small_header_buffer(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A front end with a 4 KiB header buffer: a header section over 4,096 octets gets 431,
    below the 8,192 octets HTTP-020 says every server accepts."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        fields = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))
        if not is_http(scope) or fields <= SMALL_HEADER_BUFFER:
            await app(scope, receive, send)
            return
        body = dump({"type": "about:blank", "title": "Request Header Fields Too Large",
                     "status": 431})
        await send({"type": "http.response.start", "status": 431, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return middleware
