# SPDX-License-Identifier: GPL-3.0-or-later
"""Hand-made malformed requests: each gets its documented 4xx/5xx problem+json, never a 500.

Sent over raw sockets, so that inputs no HTTP client would produce (lone surrogate
escapes, NUL bytes, negative or duplicate Content-Length, an HTTP/2 preface, a 1 MB
request line) reach the server exactly as written.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from urllib.parse import urlsplit

import pytest
from dualstore_reference.launcher import RunningReference

TOKEN = b"test-token"
AUTH = b"Authorization: Bearer " + TOKEN + b"\r\n"
PROBLEM = "application/problem+json"
URN = "urn:dualstore:problem:"


def exchange(url: str, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send data on a new connection; (status, lower-case headers, body) of the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before the end
            sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                headers = _headers(head)
                if len(body) >= int(headers.get("content-length", "-1")) >= 0:
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    assert status_line.startswith("HTTP/1.1 "), f"no HTTP answer: {received[:200]!r}"
    return int(status_line.split()[1]), _headers(head), body


def _headers(head: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def post(body: bytes, path: bytes = b"/v1/agent_tasks") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: t\r\n" + AUTH
        + b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip


def get(target: bytes, extra: bytes = b"") -> bytes:
    head = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n" + AUTH + extra
    return head + b"Connection: close\r\n\r\n"


def encoded_filter(raw_json: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw_json).rstrip(b"=")


def cursor(payload: dict[str, int]) -> bytes:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")


RECENT = b"/v1/agent_tasks/recent"
DEEP = b"[" * 30000 + b"]" * 30000
CASES: list[tuple[str, bytes, int, str | None]] = [
    # JSON bodies: I-JSON strings, nesting, numbers, encoding
    ("lone surrogate in text", post(b'{"text":"\\ud800"}'), 400, "invalid-json"),
    ("lone surrogate in metadata value", post(b'{"text":"a","metadata":{"k":"\\udc00"}}'),
     400, "invalid-json"),
    ("lone surrogate in metadata key", post(b'{"text":"a","metadata":{"\\ud800":1}}'),
     400, "invalid-json"),
    ("lone surrogate in an array", post(b'{"text":"a","metadata":{"k":["\\udfff"]}}'),
     400, "invalid-json"),
    ("body nested 30,000 deep", post(b'{"text":"a","metadata":{"k":' + DEEP + b"}}"),
     400, "invalid-json"),
    ("body nested 500 deep", post(b'{"text":"a","metadata":{"k":' + b"[" * 500 + b"]" * 500
     + b"}}"), 422, "validation-failed"),
    ("number with 5,000 digits", post(b'{"text":"a","metadata":{"n":1' + b"0" * 5000 + b"}}"),
     400, "invalid-json"),
    ("number beyond 2^53", post(b'{"text":"a","metadata":{"n":9007199254740993}}'),
     422, "validation-failed"),
    ("number overflowing a double", post(b'{"text":"a","metadata":{"n":1e400}}'),
     422, "validation-failed"),
    ("NaN", post(b'{"text":"a","metadata":{"n":NaN}}'), 400, "invalid-json"),
    ("NUL in a metadata key", post(b'{"text":"a","metadata":{"a\\u0000b":1}}'),
     422, "validation-failed"),
    ("invalid UTF-8", post(b'{"text":"\xff\xfe"}'), 400, "invalid-json"),
    ("raw UTF-8 surrogate bytes", post(b'{"text":"\xed\xa0\x80"}'), 400, "invalid-json"),
    # filters, cursors, resume tokens, parameters
    ("lone surrogate in a filter value",
     get(RECENT + b"?filter=" + encoded_filter(b'{"metadata.a":"\\ud800"}')),
     400, "invalid-filter"),
    ("lone surrogate in a filter key",
     get(RECENT + b"?filter=" + encoded_filter(b'{"metadata.\\ud800":"x"}')),
     400, "invalid-filter"),
    ("lone surrogate in a filter $in list",
     get(RECENT + b"?filter=" + encoded_filter(b'{"metadata.a":{"$in":["ok","\\udc00"]}}')),
     400, "invalid-filter"),
    ("filter nested 2,000 deep",
     get(RECENT + b"?filter=" + encoded_filter(b'{"metadata.a":' + b"[" * 2000 + b"]" * 2000
                                               + b"}")),
     400, "invalid-filter"),
    ("cursor with a sequence number beyond 64 bits",
     get(RECENT + b"?cursor=" + cursor({"t": 1, "s": 2**70})), 400, "invalid-cursor"),
    ("cursor with a time beyond 64 bits",
     get(RECENT + b"?cursor=" + cursor({"t": 2**70, "s": 1})), 400, "invalid-cursor"),
    ("resume token beyond 64 bits",
     get(b"/v1/agent_tasks/stream", b"Last-Event-ID: 99999999999999999999999\r\n"),
     400, "invalid-resume-token"),
    ("empty limit", get(RECENT + b"?limit="), 400, "invalid-request"),
    ("empty k", get(b"/v1/agent_tasks/search?q=x&k="), 400, "invalid-request"),
    ("limit beyond 64 bits", get(RECENT + b"?limit=" + b"9" * 30), 400, "invalid-request"),
    ("NUL in the path", get(b"/v1/agent_tasks/a%00b"), 404, "not-found"),
    # methods and request framing (below the application)
    ("unknown method on a known path",
     b"BREW /v1/agent_tasks HTTP/1.1\r\nHost: t\r\n" + AUTH + b"Connection: close\r\n\r\n",
     405, "method-not-allowed"),
    ("unknown method on an unknown path",
     b"BREW /v1/nothing/here/at/all HTTP/1.1\r\nHost: t\r\n" + AUTH
     + b"Connection: close\r\n\r\n", 404, "not-found"),
    ("HTTP/2 preface on the HTTP/1.1 port", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, None),
    ("negative Content-Length",
     b"POST /v1/agent_tasks HTTP/1.1\r\nHost: t\r\n" + AUTH
     + b"Content-Type: application/json\r\nContent-Length: -5\r\n\r\n", 400, "invalid-request"),
    ("two different Content-Length fields",
     b"POST /v1/agent_tasks HTTP/1.1\r\nHost: t\r\n" + AUTH
     + b"Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
     400, "invalid-request"),
    ("NUL in a header value", b"GET /v1/health HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
     400, "invalid-request"),
    ("HTTP/1.1 without Host", b"GET /v1/health HTTP/1.1\r\n\r\n", 400, "invalid-request"),
    ("1 MB request line",
     b"GET /v1/health?" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, None),
    ("20 KB request target in one packet",
     b"GET /v1/health?a=" + b"a" * 20000 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
     414, None),
    ("100 KB header field",
     b"GET /v1/health HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n", 431, None),
    ("5,000 header fields", b"GET /v1/health HTTP/1.1\r\nHost: t\r\n"
     + b"".join(b"X-%d: a\r\n" % i for i in range(5000)) + b"\r\n", 431, None),
    ("charset other than utf-8", post(b'{"text":"a"}').replace(
        b"application/json", b"application/json; charset=utf8"), 415, "unsupported-media-type"),
    ("duplicate member names in a body", post(b'{"text":"a","text":"b"}'), 400, "invalid-json"),
    ("duplicate names in metadata", post(b'{"text":"a","metadata":{"k":1,"k":2}}'),
     400, "invalid-json"),
    ("limit with a leading zero", get(RECENT + b"?limit=05"), 400, "invalid-request"),
    ("limit with a sign", get(RECENT + b"?limit=%2B5"), 400, "invalid-request"),
    ("limit as a decimal", get(RECENT + b"?limit=5.0"), 400, "invalid-request"),
    ("limit given twice", get(RECENT + b"?limit=5&limit=6"), 400, "invalid-request"),
    ("limit given twice, once empty", get(RECENT + b"?limit=5&limit="), 400, "invalid-request"),
    ("filter given twice", get(RECENT + b"?filter=e30&filter=e30"), 400, "invalid-request"),
    ("k given twice", get(b"/v1/agent_tasks/search?q=x&k=1&k=2"), 400, "invalid-request"),
    ("q given twice", get(b"/v1/agent_tasks/search?q=x&q=y"), 400, "invalid-request"),
    ("since given twice on the stream", get(b"/v1/agent_tasks/stream?since=1&since=2"),
     400, "invalid-request"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "status", "slug"),
    [pytest.param(data, status, slug, id=name) for name, data, status, slug in CASES],
)
def test_malformed_input_gets_its_problem(
    reference_server: RunningReference, data: bytes, status: int, slug: str | None
) -> None:
    got, headers, body = exchange(reference_server.url, data)
    assert got == status, body[:300]
    assert headers.get("content-type") == PROBLEM, (headers, body[:200])
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"] == (URN + slug if slug else "about:blank"), problem
    assert problem["title"] and problem.get("detail")


def test_unknown_method_names_the_allowed_ones(reference_server: RunningReference) -> None:
    data = b"BREW /v1/agent_tasks/recent HTTP/1.1\r\nHost: t\r\n" + AUTH
    data += b"Connection: close\r\n\r\n"
    status, headers, _ = exchange(reference_server.url, data)
    assert status == 405 and headers["allow"] == "GET"


def test_unknown_method_without_a_token_is_401_like_any_method(
    reference_server: RunningReference,
) -> None:
    data = b"BREW /v1/agent_tasks HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    status, headers, _ = exchange(reference_server.url, data)
    assert status == 401 and headers["content-type"] == PROBLEM


def test_the_spec_minimum_request_size_is_served(reference_server: RunningReference) -> None:
    # HTTP-020: a request line of 8,000 octets and a header section of 8,192 octets together.
    target = b"/v1/health?pad=" + b"a" * (8000 - len(b"GET /v1/health?pad= HTTP/1.1"))
    line = b"GET " + target + b" HTTP/1.1"
    assert len(line) == 8000
    fields = b"Host: t\r\nConnection: close\r\n"
    fields += b"X-Pad: " + b"b" * (8192 - len(fields) - len(b"X-Pad: \r\n\r\n")) + b"\r\n\r\n"
    assert len(fields) == 8192
    status, _, body = exchange(reference_server.url, line + b"\r\n" + fields)
    assert status == 200, body[:200]


def test_unknown_parameters_may_repeat(reference_server: RunningReference) -> None:
    status, _, body = exchange(reference_server.url, get(RECENT + b"?x=1&x=2&limit=1"))
    assert status == 200, body[:200]


def test_absolute_form_target_is_served_as_its_path(reference_server: RunningReference) -> None:
    data = b"GET http://t/v1/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    status, _, body = exchange(reference_server.url, data)
    assert status == 200 and json.loads(body)["ok"] is True
