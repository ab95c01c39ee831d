# SPDX-License-Identifier: GPL-3.0-or-later
"""Auth, CORS, rate limiting and trusted proxies on the real reference server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from dualstore_reference.launcher import RunningReference

COLLECTION = "agent_tasks"
ORIGIN = "http://allowed.example"


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:dualstore:problem:{slug}"
    return body


def test_missing_or_wrong_token_is_401_with_bearer_challenge(anonymous: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}):
        response = anonymous.get(f"/v1/{COLLECTION}/recent", headers=headers)
        _problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_every_configured_token_is_accepted(
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
) -> None:
    server = start_reference(env={"AUTH_TOKEN": "old-token,new-token"}, workers=1)
    client = validating_client(base_url=server.url)
    for token in ("old-token", "new-token"):
        response = client.get("/v1/collections", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    response = client.get("/v1/collections", headers={"Authorization": "Bearer test-token"})
    _problem(response, 401, "unauthorized")


def test_access_token_query_parameter_only_opens_the_stream(
    reference_server: RunningReference, anonymous: httpx.Client
) -> None:
    response = anonymous.get(f"/v1/{COLLECTION}/recent", params={"access_token": "test-token"})
    _problem(response, 401, "unauthorized")
    with httpx.stream(
        "GET",
        f"{reference_server.url}/v1/{COLLECTION}/stream",
        params={"access_token": "test-token"},
        timeout=10,
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
    with httpx.stream(
        "GET",
        f"{reference_server.url}/v1/{COLLECTION}/stream",
        params={"access_token": "wrong"},
        timeout=10,
    ) as stream:
        assert stream.status_code == 401


def test_allowed_origin_is_echoed_with_vary(client: httpx.Client) -> None:
    response = client.get("/v1/collections", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "origin" in response.headers["vary"].lower()
    header = response.headers["access-control-expose-headers"]
    exposed = {h.strip().lower() for h in header.split(",")}
    assert {"location", "retry-after", "ratelimit", "ratelimit-policy"} <= exposed


def test_disallowed_origin_gets_no_cors_headers(client: httpx.Client) -> None:
    response = client.get("/v1/collections", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_preflight_is_not_blocked_by_auth(reference_server: RunningReference) -> None:
    for path, method in ((f"/v1/{COLLECTION}", "POST"), (f"/v1/{COLLECTION}/stream", "GET")):
        response = httpx.options(
            reference_server.url + path,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type, last-event-id, "
                "idempotency-key",
            },
        )
        assert 200 <= response.status_code < 300, response.text
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert method in response.headers["access-control-allow-methods"]
        allowed = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {"authorization", "content-type", "last-event-id", "idempotency-key"} <= allowed


def test_rate_limit_429_carries_retry_after_and_ratelimit_fields(
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
    reference_headers: dict[str, str],
) -> None:
    server = start_reference(
        env={"RATE_LIMIT_PER_SECOND": "1", "RATE_LIMIT_BURST": "3"}, workers=1
    )
    client = validating_client(base_url=server.url, headers=reference_headers)
    statuses = [client.get("/v1/collections").status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    response = client.get("/v1/collections")
    _problem(response, 429, "rate-limited")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"] == '"default";q=3;w=3'
    assert response.headers["ratelimit"].startswith('"default";r=0;t=')
    # health and metrics are never limited
    assert client.get("/v1/health").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
) -> None:
    untrusted = start_reference(
        env={"RATE_LIMIT_PER_SECOND": "0.01", "RATE_LIMIT_BURST": "2", "AUTH_TOKEN": ""},
        workers=1,
    )
    trusted = start_reference(
        env={
            "RATE_LIMIT_PER_SECOND": "0.01",
            "RATE_LIMIT_BURST": "2",
            "AUTH_TOKEN": "",
            "TRUSTED_PROXIES": "127.0.0.1",
        },
        workers=1,
    )

    def statuses(server: RunningReference) -> list[int]:
        client = validating_client(base_url=server.url)
        return [
            client.get(
                "/v1/collections", headers={"X-Forwarded-For": f"203.0.113.{i}"}
            ).status_code
            for i in range(5)
        ]

    # Without trust every request is the proxy's own (one bucket of 2).
    assert statuses(untrusted) == [200, 200, 429, 429, 429]
    # With trust each forwarded client has its own bucket.
    assert statuses(trusted) == [200] * 5


def test_open_paths_are_exactly_health_metrics_and_the_demo_page(
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
) -> None:
    """A collection whose name merely starts like an open path still needs the token."""
    server = start_reference(env={"COLLECTIONS": "uix,metricsx"}, workers=1)
    anonymous = validating_client(base_url=server.url)
    for path in ("/v1/uix/recent", "/v1/metricsx/recent"):
        _problem(anonymous.get(path), 401, "unauthorized")
    assert anonymous.get("/v1/health").status_code == 200
    assert anonymous.get("/metrics").status_code == 200


def test_stream_cap_429_carries_the_headers_every_429_needs(
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
    reference_headers: dict[str, str],
) -> None:
    server = start_reference(env={"STREAM_CAP_PER_IP": "1"}, workers=1)
    client = validating_client(base_url=server.url, headers=reference_headers)
    with httpx.stream(
        "GET", f"{server.url}/v1/{COLLECTION}/stream", headers=reference_headers, timeout=10
    ) as first:
        assert first.status_code == 200
        response = client.get(f"/v1/{COLLECTION}/stream")  # validated: 429 is not a stream
    _problem(response, 429, "too-many-streams")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"].startswith('"streams";q=1;w=')
    assert response.headers["ratelimit"].startswith('"streams";r=0;t=')


def test_a_present_authorization_header_alone_decides(
    reference_server: RunningReference,
) -> None:
    # AUTH-008: before, another scheme (or an empty Bearer) fell back to access_token.
    for header in ("Basic dGVzdA==", "Bearer", "Bearer wrong", "Token test-token"):
        with httpx.stream(
            "GET",
            f"{reference_server.url}/v1/{COLLECTION}/stream",
            params={"access_token": "test-token"},
            headers={"Authorization": header},
            timeout=10,
        ) as stream:
            assert stream.status_code == 401, header
            stream.read()
            assert stream.json()["type"] == "urn:dualstore:problem:unauthorized"
    with httpx.stream(
        "GET",
        f"{reference_server.url}/v1/{COLLECTION}/stream",
        headers={"Authorization": "bearer test-token"},
        params={"access_token": "wrong"},
        timeout=10,
    ) as stream:
        assert stream.status_code == 200
