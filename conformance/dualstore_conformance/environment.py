# SPDX-License-Identifier: GPL-3.0-or-later
"""Before the checks run: the shared HTTP client, reachability, credentials, the collection,
the heartbeat interval and the limits in force (an ``Environment``)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from dualstore_conformance.limits import spec_limits
from dualstore_conformance.model import Target
from dualstore_conformance.pacing import PacedTransport, RequestPacer
from dualstore_conformance.profile import DeploymentProfile, spec_defaults
from dualstore_conformance.selection import SelectionError

KEEPALIVE_EXPIRY_S = 1.0
"""How long the harness keeps an idle connection for reuse."""


class TargetUnreachable(Exception):
    """The target did not answer at all (exit code 2, one-line reason)."""


@dataclass
class Environment:
    """Facts about the target gathered before the checks run."""

    target: Target
    run_id: str
    collection: str
    limits: dict[str, Any]
    health: dict[str, Any]
    profile: DeploymentProfile = field(default_factory=spec_defaults)


def make_client(target: Target, pacer: RequestPacer | None = None) -> httpx.AsyncClient:
    """The shared client: base URL, bearer token, generous pool for open streams.

    With a pacer, every request waits for it (the deployment's declared rate limit).
    """
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    headers["User-Agent"] = "dualstore-conformance"
    # An idle pooled connection is dropped after KEEPALIVE_EXPIRY_S, well before common
    # server keep-alive timeouts (5 s in Node and uvicorn): reusing one the server is closing
    # fails the request with a transport error that says nothing about the target.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50,
                          keepalive_expiry=KEEPALIVE_EXPIRY_S)
    transport: httpx.AsyncBaseTransport | None = None
    if pacer is not None:
        transport = PacedTransport(httpx.AsyncHTTPTransport(limits=limits), pacer)
    return httpx.AsyncClient(
        base_url=target.url,
        headers=headers,
        timeout=httpx.Timeout(10.0 * target.timeout_multiplier),
        limits=limits,
        transport=transport,
        follow_redirects=False,
    )


async def prepare(target: Target, heartbeat_from_health: bool = True) -> Environment:
    """Reachability, health, collection choice; raises TargetUnreachable or SelectionError."""
    async with make_client(target) as client:
        try:
            health_response = await client.get("/v1/health",
                                               timeout=5.0 * target.timeout_multiplier)
        except httpx.HTTPError as error:
            reason = str(error) or type(error).__name__
            raise TargetUnreachable(f"target {target.url} unreachable: {reason}") from error
        health: dict[str, Any] = {}
        try:
            value = health_response.json()
            if isinstance(value, dict):
                health = value
        except ValueError:
            pass
        await _check_credentials(client, target)
        collection = target.collection
        if not collection:
            collection = await _pick_collection(client, health)
        else:
            served = await _served(client, health)
            if served and collection not in served:
                raise SelectionError(
                    f"the target does not serve collection {collection!r} "
                    f"(it serves: {', '.join(served)})"
                )
    profile = target.profile or spec_defaults()
    heartbeat = profile.heartbeat_seconds
    reported = health.get("heartbeat_seconds")
    declared = "heartbeat_seconds" in profile.declared or not heartbeat_from_health
    if not declared and isinstance(reported, int | float) and not isinstance(reported, bool) \
            and reported > 0:
        heartbeat = float(reported)
        profile = dataclasses.replace(
            profile, heartbeat_seconds=heartbeat,
            sources=(*profile.sources, "health: heartbeat_seconds"))
    resolved = dataclasses.replace(
        target, collection=collection, heartbeat_seconds=heartbeat,
        heartbeat_explicit=target.heartbeat_explicit or declared, profile=profile,
    )
    return Environment(
        target=resolved,
        run_id=uuid.uuid4().hex[:12],
        collection=collection,
        limits=spec_limits(profile),
        health=health,
        profile=profile,
    )


async def _check_credentials(client: httpx.AsyncClient, target: Target) -> None:
    """A 401 on /v1/collections means every check would fail: say so once (exit 2)."""
    try:
        response = await client.get("/v1/collections")
    except httpx.HTTPError:
        return
    if response.status_code != 401:
        return
    if target.token:
        raise SelectionError("the target refused the token (401 on /v1/collections)")
    raise SelectionError(
        "the target requires a token (401 on /v1/collections): pass --token "
        "or set DUALSTORE_TOKEN"
    )


async def _served(client: httpx.AsyncClient, health: dict[str, Any]) -> list[str]:
    """Collections the target lists (/v1/collections, else health's list)."""
    names: list[str] = []
    try:
        response = await client.get("/v1/collections")
        body = response.json() if response.status_code == 200 else {}
        names = [n for n in body.get("collections", []) if isinstance(n, str)]
    except (httpx.HTTPError, ValueError, AttributeError):
        names = []
    if not names:
        names = [n for n in health.get("collections", []) if isinstance(n, str)]
    return names


async def _pick_collection(client: httpx.AsyncClient, health: dict[str, Any]) -> str:
    names = await _served(client, health)
    if not names:
        raise SelectionError(
            "the target lists no collection at /v1/collections; pass --collection NAME"
        )
    return names[0]
