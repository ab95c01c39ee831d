# SPDX-License-Identifier: GPL-3.0-or-later
"""Bearer tokens never reach the logs: access_token query values and Authorization values."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from dualstore_reference.launcher import RunningReference
from dualstore_reference.logs import redact


def _send(url: str, data: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


def test_tokens_in_queries_and_headers_are_not_logged(
    start_reference: Callable[..., RunningReference],
) -> None:
    # Before: every stream opened with ?access_token=<token> wrote the token to the access log.
    token, wrong = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    server = start_reference(env={"AUTH_TOKEN": token}, workers=1)
    for value in (token, wrong):
        for name in (b"access_token", b"access%5Ftoken", b"ACCESS_TOKEN"):
            answer = _send(
                server.url,
                b"GET /v1/agent_tasks/stream?" + name + b"=" + value.encode()
                + b"&since=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )  # fmt: skip
            assert answer.startswith(b"HTTP/1.1 "), answer
        with httpx.Client(base_url=server.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {value}"}
            client.get("/v1/agent_tasks/recent", headers=headers)
            client.get("/v1/agent_tasks/recent", headers={"Authorization": value})
            client.post("/v1/agent_tasks", headers=headers, content=b"{")
            client.get(f"/v1/agent_tasks/recent?limit=x&access_token={value}", headers=headers)
        # a malformed request carrying the token: refused below the application
        _send(server.url, b"GET /v1/health HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
              + value.encode() + b"\r\nX-A: a\x00b\r\n\r\n")  # fmt: skip
    server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "access_token=[REDACTED]" in log, "the access log did not record the stream requests"
    for value in (token, wrong):
        assert value not in log, [line for line in log.splitlines() if value in line]


def test_redaction_keeps_everything_but_the_credentials() -> None:
    line = '127.0.0.1:5 - "GET /v1/c/stream?since=5&access_token=abc.def&x=1 HTTP/1.1" 200'
    assert redact(line) == (
        '127.0.0.1:5 - "GET /v1/c/stream?since=5&access_token=[REDACTED]&x=1 HTTP/1.1" 200'
    )
    assert redact("/s?access%5Ftoken=abc") == "/s?access%5Ftoken=[REDACTED]"
    assert redact("Authorization: Bearer abc") == "Authorization: Bearer [REDACTED]"
    assert redact("{'authorization': 'Basic dXNlcg=='}") == (
        "{'authorization': 'Basic [REDACTED]'}"
    )
    assert redact("sent bearer abc-123 upstream") == "sent bearer [REDACTED] upstream"
    plain = 'GET /v1/c/recent?limit=5 HTTP/1.1" 200'
    assert redact(plain) == plain
