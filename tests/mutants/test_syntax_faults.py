# SPDX-License-Identifier: GPL-3.0-or-later
"""The spec 1.1 syntax mutants in process: what each request rewrite hands the reference."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import dualstore_mutants as faults
import pytest
from dualstore_mutants.asgi import Message, Scope
from dualstore_mutants.syntax import lenient_integer


@dataclass
class FakeSettings:
    auth_tokens: tuple[str, ...] = ("secret-token",)
    max_body_bytes: int = 65536


@dataclass
class Upstream:
    """Stands in for the reference: records scope and body, answers ``status``."""

    status: int = 201
    seen: list[tuple[Scope, bytes]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope, body))
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})


def call(name: str, upstream: Upstream, path: str, method: str = "GET", query: bytes = b"",
         headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"") -> int:
    app = faults.wrap(upstream, [name], FakeSettings())  # type: ignore[arg-type]
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": headers or []}
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def sent_query(upstream: Upstream) -> list[tuple[str, str]]:
    return parse_qsl(upstream.seen[-1][0]["query_string"].decode(), keep_blank_values=True)


@pytest.mark.parametrize(("value", "read"), [
    ("05", "5"), ("+5", "5"), (" 5", "5"), ("5 ", "5"), ("5.0", "5"), ("5e0", "5"),
    ("\uff15", "5"), ("5", "5"), ("", ""), ("0x5", "0x5"), ("1.5", "1.5"), ("ten", "ten"),
])
def test_lenient_integer_reads_what_int_and_float_accept(value: str, read: str) -> None:
    assert lenient_integer(value) == read


def test_integer_lenient_rewrites_limit_and_k_only() -> None:
    upstream = Upstream()
    call("rest-integer-lenient", upstream, "/v1/c/recent", query=b"limit=%2B05&q=05")
    assert sent_query(upstream) == [("limit", "5"), ("q", "05")]
    call("rest-integer-lenient", upstream, "/v1/c/search", query=b"q=x&k=%EF%BC%98")
    assert sent_query(upstream) == [("q", "x"), ("k", "8")]


def test_repeated_last_wins_keeps_the_last_documented_value() -> None:
    upstream = Upstream()
    call("rest-repeated-last-wins", upstream, "/v1/c/recent",
         query=b"limit=1&x=a&limit=2&x=b&filter=&filter=e30")
    assert sent_query(upstream) == [("x", "a"), ("limit", "2"), ("x", "b"), ("filter", "e30")]
    call("rest-repeated-last-wins", upstream, "/v1/c/stream", query=b"since=1&since=2")
    assert sent_query(upstream) == [("since", "2")]


@pytest.mark.parametrize(("given", "seen"), [
    (b"application/json; charset=utf8", b"application/json; charset=utf-8"),
    (b'application/json;charset="UTF8"', b"application/json;charset=utf-8"),
    (b"application/json; charset=utf-16", b"application/json; charset=utf-16"),
    (b"application/json", b"application/json"),
])
def test_charset_utf8_alias_passes_only_utf8_as_utf_8(given: bytes, seen: bytes) -> None:
    upstream = Upstream()
    call("rest-charset-utf8-alias", upstream, "/v1/c", "POST",
         headers=[(b"content-type", given)], body=b"{}")
    assert dict(upstream.seen[-1][0]["headers"])[b"content-type"] == seen


def test_since_unchecked_drops_since_only_beside_a_last_event_id() -> None:
    upstream = Upstream()
    call("sse-resume-since-unchecked", upstream, "/v1/c/stream", query=b"since=bad%21&filter=x",
         headers=[(b"last-event-id", b"7")])
    assert sent_query(upstream) == [("filter", "x")]
    call("sse-resume-since-unchecked", upstream, "/v1/c/stream", query=b"since=bad%21")
    assert sent_query(upstream) == [("since", "bad!")]


@pytest.mark.parametrize(("header", "dropped"), [
    (b"Basic eDp5", True), (b"Bearer", True), (b"Token t", True),
    (b"Bearer wrong", False), (b"bearer t", False),
])
def test_access_token_fallback_drops_an_unusable_header_on_the_stream(
    header: bytes, dropped: bool
) -> None:
    upstream = Upstream()
    call("sec-access-token-fallback", upstream, "/v1/c/stream", query=b"access_token=t",
         headers=[(b"authorization", header)])
    assert (b"authorization" not in dict(upstream.seen[-1][0]["headers"])) is dropped
    call("sec-access-token-fallback", upstream, "/v1/c/recent", query=b"access_token=t",
         headers=[(b"authorization", header)])
    assert b"authorization" in dict(upstream.seen[-1][0]["headers"])


def test_idempotency_number_spelling_refuses_a_respelled_retry() -> None:
    upstream = Upstream(status=201)
    app = faults.wrap(upstream, ["rest-idempotency-number-spelling"],
                      FakeSettings())  # type: ignore[arg-type]

    def post(body: bytes, key: bytes = b"k1") -> int:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/c", "query_string": b"",
                 "headers": [(b"idempotency-key", key),
                             (b"content-length", str(len(body)).encode())]}
        asyncio.run(app(scope, receive, send))
        return int(sent[0]["status"])

    assert post(b'{"text":"a","metadata":{"n":1}}') == 201
    assert post(b'{"metadata":{"n":1},"text":"a"}') == 201  # same spelling: to the reference
    assert post(b'{"text":"a","metadata":{"n":1.0}}') == 422
    assert post(b'{"text":"a","metadata":{"n":1e0}}') == 422
    assert len(upstream.seen) == 2  # the respelled retries never reached the reference
    assert post(b'{"text":"a","metadata":{"n":2}}') == 201  # another value: the reference's
    assert post(b'{"text":"a","metadata":{"n":1.0}}', b"k2") == 201
    assert upstream.seen[-1][1] == b'{"text":"a","metadata":{"n":1.0}}'
    assert json.loads(upstream.seen[0][1]) == {"text": "a", "metadata": {"n": 1}}


def test_small_header_buffer_refuses_only_past_4096_octets() -> None:
    upstream = Upstream(status=200)
    at = [(b"x-pad", b"b" * (4096 - len(b"x-pad") - 4))]
    assert call("rest-small-header-buffer", upstream, "/v1/health", headers=at) == 200
    past = [(b"x-pad", b"b" * (4097 - len(b"x-pad") - 4))]
    assert call("rest-small-header-buffer", upstream, "/v1/health", headers=past) == 431
    assert len(upstream.seen) == 1
