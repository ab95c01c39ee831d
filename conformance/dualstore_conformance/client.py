# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP helpers for checks: curl reproductions (token redacted), evidence, filters, problems."""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx

from dualstore_conformance import judging

EVIDENCE_BODY_BYTES = 2048
"""How much of a body goes into a report's evidence."""

REDACTED = "$TOKEN"
"""What a bearer token is replaced with in every reproduction and evidence header."""

_SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "proxy-authorization"}


def encode_filter(expression: Mapping[str, Any]) -> str:
    """Encode a filter expression as the API's ``filter`` query value (base64url, no padding)."""
    raw = json.dumps(expression, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def redact(value: str, token: str | None) -> str:
    """Replace the token (and anything after ``Bearer``) so reports never leak it."""
    if token:
        value = value.replace(token, REDACTED)
    if value.lower().startswith("bearer ") and value[7:] != REDACTED:
        value = f"Bearer {REDACTED}"
    return value


def token_forms(token: str | None) -> list[str]:
    """The token as it may appear in text: raw, and percent-encoded in a URL."""
    if not token:
        return []
    return sorted({token, quote_plus(token), quote(token, safe="")}, key=len, reverse=True)


def redact_text(text: str, token: str | None) -> str:
    """Any occurrence of the token (raw or URL-encoded) becomes ``$TOKEN``."""
    for form in token_forms(token):
        text = text.replace(form, REDACTED)
    return text


def _shell_word(text: str, token: str | None) -> str:
    """Quote for a POSIX shell; a token inside becomes ``${TOKEN}`` (expanded by the shell)."""
    forms = [f for f in token_forms(token) if f in text]
    if not forms:
        return shlex.quote(text)
    for form in forms:
        text = text.replace(form, "\0TOKEN\0")
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
               .replace("`", "\\`"))
    return '"' + escaped.replace("\0TOKEN\0", "${TOKEN}") + '"'


def curl(
    url: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: object | None = None,
    params: Mapping[str, Any] | None = None,
    token: str | None = None,
    stream: bool = False,
) -> str:
    """A shell command reproducing a request; a bearer token becomes ``"$TOKEN"``.

    ``body`` may be bytes/str (sent verbatim) or any JSON value (serialised compactly).
    """
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
    parts = ["curl", "-sS", "-i"]
    if stream:
        parts.append("-N")
    if method.upper() != "GET" or body is not None:
        parts += ["-X", method.upper()]
    parts.append(_shell_word(url, token))
    sent = dict(headers or {})
    if token and not any(k.lower() == "authorization" for k in sent):
        sent["Authorization"] = f"Bearer {token}"
    json_body = body is not None and not isinstance(body, bytes | str)
    if json_body and not any(k.lower() == "content-type" for k in sent):
        sent["Content-Type"] = "application/json"
    for name, value in sent.items():
        if name.lower() == "authorization":
            # double quotes so the shell expands $TOKEN
            shown = redact(str(value), token)
            parts += ["-H", f'"{name}: {shown}"']
        else:
            parts += ["-H", _shell_word(f"{name}: {value}", token)]
    if body is not None:
        if isinstance(body, bytes):
            text = body.decode("utf-8", errors="replace")
        elif isinstance(body, str):
            text = body
        else:
            text = json.dumps(body, separators=(",", ":"))
        if len(text) > 4096:
            parts += ["--data-binary", shlex.quote(f"@<{len(text)} bytes, see evidence>")]
        else:
            parts += ["--data-raw", shlex.quote(text)]
    return " ".join(parts)


def curl_for(request: httpx.Request, token: str | None = None, stream: bool = False) -> str:
    """A curl reproduction of a request httpx actually sent."""
    skip = {"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"}
    headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
    body: bytes | None = None
    try:
        content = request.content
    except httpx.RequestNotRead:
        content = b""
    if content:
        body = content
    return curl(
        str(request.url), request.method, headers, body, token=token, stream=stream
    )


def safe_headers(headers: httpx.Headers | Mapping[str, str], token: str | None) -> dict[str, str]:
    """Headers as a plain dict with secrets redacted."""
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers.items()
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        shown = redact(value, token) if key in _SECRET_HEADERS else value
        out[key] = f"{out[key]}, {shown}" if key in out else shown
    return out


def body_excerpt(content: bytes, limit: int = EVIDENCE_BODY_BYTES) -> str:
    """The first bytes of a body as text (invalid UTF-8 replaced), marked when cut."""
    text = content[:limit].decode("utf-8", errors="replace")
    if len(content) > limit:
        text += f"... [{len(content) - limit} more bytes]"
    return text


def evidence(response: httpx.Response, token: str | None = None) -> dict[str, Any]:
    """Status, headers and the first bytes of the body of a (read) response."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    result: dict[str, Any] = {
        "request": redact_text(f"{response.request.method} {response.request.url}", token),
        "status": response.status_code,
        "headers": safe_headers(response.headers, token),
        "body": body_excerpt(content),
    }
    return result


def problem(response: httpx.Response) -> dict[str, Any] | None:
    """The RFC 9457 problem document of a response, or None when it is not one."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/problem+json":
        return None
    try:
        value = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def media_type(headers: httpx.Headers) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    value: str = headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def rate_limited(response: httpx.Response) -> bool:
    """A 429 ``rate-limited`` answer (not a stream cap's ``too-many-streams``)."""
    if response.status_code != 429:
        return False
    detail = problem(response) or {}
    kind = str(detail.get("type", ""))
    return not kind.endswith("too-many-streams")


def retry_after_wait(response: httpx.Response) -> float:
    """How long to wait before resending after a 429: its Retry-After within 0.05..5 s."""
    return judging.retry_after_seconds(response.headers.get("retry-after"), low=0.05, high=5.0,
                                       absent=1.0)
