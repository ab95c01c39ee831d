# SPDX-License-Identifier: GPL-3.0-or-later
"""Problem+json responses become typed exceptions carrying the body."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from dualstore_client import (
    AsyncDualStoreClient,
    BadRequest,
    Conflict,
    DualStoreClient,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ProtocolError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    UnprocessableContent,
    UnsupportedMediaType,
)

CASES = [
    (400, BadRequest, "invalid-filter"),
    (401, Unauthorized, "unauthorized"),
    (403, Forbidden, "forbidden"),
    (404, NotFound, "unknown-collection"),
    (405, MethodNotAllowed, "method-not-allowed"),
    (409, Conflict, "conflict"),
    (413, PayloadTooLarge, "payload-too-large"),
    (415, UnsupportedMediaType, "unsupported-media-type"),
    (422, UnprocessableContent, "idempotency-key-reuse"),
    (429, RateLimited, "rate-limited"),
    (500, ServerError, "internal"),
    (503, ServiceUnavailable, "unavailable"),
    (418, ProblemError, "teapot"),
]


def _answer(status: int, slug: str, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    body = {
        "type": f"urn:dualstore:problem:{slug}",
        "title": slug.replace("-", " "),
        "status": status,
        "detail": f"detail of {slug}",
        "errors": [{"path": "/q"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            headers={"Content-Type": "application/problem+json", **(headers or {})},
            content=json.dumps(body).encode(),
        )

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("status", "cls", "slug"), CASES)
def test_status_maps_to_typed_error_with_problem_body(
    status: int, cls: type[ProblemError], slug: str
) -> None:
    with (
        DualStoreClient("http://server", transport=_answer(status, slug)) as client,
        pytest.raises(ProblemError) as caught,
    ):
        client.get("notes", "abc")
    error = caught.value
    assert type(error) is cls
    assert error.status == status
    assert error.type == f"urn:dualstore:problem:{slug}" and error.slug == slug
    assert error.detail == f"detail of {slug}"
    assert error.problem["errors"] == [{"path": "/q"}]  # extension members are kept
    assert slug in str(error)


def test_retry_after_as_seconds_and_as_http_date() -> None:
    with (
        DualStoreClient(
            "http://server", transport=_answer(429, "rate-limited", {"Retry-After": "3"})
        ) as client,
        pytest.raises(RateLimited) as caught,
    ):
        client.recent("notes")
    assert caught.value.retry_after == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with (
        DualStoreClient(
            "http://server", transport=_answer(503, "unavailable", {"Retry-After": later})
        ) as client,
        pytest.raises(ServiceUnavailable) as unavailable,
    ):
        client.recent("notes")
    assert unavailable.value.retry_after is not None
    assert 100 < unavailable.value.retry_after <= 120


def test_an_error_without_problem_body_still_has_type_and_title() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(502, headers={"Content-Type": "text/html"}, content=b"<h1>")
    )
    with (
        DualStoreClient("http://server", transport=transport) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.collections()
    assert caught.value.status == 502
    assert caught.value.type == "about:blank" and caught.value.title == "Bad Gateway"


def test_a_success_that_is_not_json_is_a_protocol_error() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<p>")
    )
    with (
        DualStoreClient("http://server", transport=transport) as client,
        pytest.raises(ProtocolError),
    ):
        client.collections()


def test_requests_carry_bearer_token_idempotency_key_and_encoded_filter() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={"id": "d1"}, headers={"Location": "/v1/n/d1"})
        return httpx.Response(200, json={"items": [], "next": None})

    transport = httpx.MockTransport(handler)
    with DualStoreClient("http://server/", token="s3cret", transport=transport) as c:
        assert c.insert("my notes", "hello", metadata={"k": 1}, idempotency_key="key-1") == "d1"
        page = c.recent("my notes", limit=5, filter={"metadata.k": 1}, cursor="abc")
    assert page.items == [] and page.next is None
    post, get = seen
    assert post.url.raw_path == b"/v1/my%20notes"
    assert post.headers["authorization"] == "Bearer s3cret"
    assert post.headers["idempotency-key"] == "key-1"
    assert json.loads(post.content) == {"text": "hello", "metadata": {"k": 1}}
    assert get.url.params["filter"] == "eyJtZXRhZGF0YS5rIjoxfQ"
    assert get.url.params["limit"] == "5" and get.url.params["cursor"] == "abc"


def test_connection_failure_is_a_transport_error_in_both_clients() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with (
        DualStoreClient("http://server", transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(TransportError),
    ):
        client.collections()

    async def run() -> None:
        async with AsyncDualStoreClient(
            "http://server", transport=httpx.MockTransport(refuse)
        ) as client:
            with pytest.raises(TransportError):
                await client.collections()
            with pytest.raises(TransportError):
                await client.search("notes", "q")

    asyncio.run(run())
