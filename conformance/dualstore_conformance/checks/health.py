# SPDX-License-Identifier: GPL-3.0-or-later
"""HEALTH-* checks: health shape, unauthenticated health and metrics, the collections list."""

from __future__ import annotations

import itertools
from typing import TypeGuard

from dualstore_conformance import client as http
from dualstore_conformance.checks.http import expect_status, fail_response, probe_status
from dualstore_conformance.checks.sse_heartbeat import (
    cadence_evidence,
    heartbeat_times,
    idle_heartbeats,
    tolerance,
)
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import HEARTBEAT_WAIT, check
from dualstore_conformance.ssehelp import opened


def is_name_list(value: object) -> TypeGuard[list[str]]:
    """A JSON list of strings (the collections of health and of /v1/collections)."""
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def is_interval(value: object) -> TypeGuard[int | float]:
    """A JSON number above zero (health's heartbeat_seconds)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and not value <= 0


@check("health-ok-shape",
       "Health: GET /v1/health answers ok, database up, collections, heartbeat_seconds, version",
       ["HEALTH-001"])
async def health_shape(ctx: CheckContext) -> None:
    body, response, reproduce = await probe_status(ctx, "GET", "/v1/health", 200,
                                                   "health did not answer 200")
    problems = []
    if not isinstance(body, dict):
        problems.append("body is not a JSON object")
    else:
        if body.get("ok") is not True:
            problems.append(f"ok is {body.get('ok')!r}")
        if body.get("database") != "up":
            problems.append(f"database is {body.get('database')!r}")
        if not is_name_list(body.get("collections")):
            problems.append("collections is not a list of names")
        heartbeat = body.get("heartbeat_seconds")
        if not is_interval(heartbeat):
            problems.append(f"heartbeat_seconds is {heartbeat!r}")
        if not isinstance(body.get("version"), str):
            problems.append("version is missing")
    if problems:
        fail_response(ctx, response, "health answer has the wrong shape",
                      '{ok: true, collections: [...], database: "up", heartbeat_seconds, version}',
                      "; ".join(problems), reproduce)


@check("health-without-credentials",
       "Health: /v1/health and /metrics answer without credentials",
       ["HEALTH-002"])
async def health_without_credentials(ctx: CheckContext) -> None:
    for path in ("/v1/health", "/metrics"):
        response = await ctx.request("GET", path, auth=False)
        expect_status(
            ctx,
            response,
            200,
            f"GET {path} without credentials was not 200",
            ctx.curl("GET", path, headers={"Authorization": ""}),
        )


@check("health-heartbeat-measured",
       "Health: heartbeat_seconds is the interval the streams are measured to use",
       ["HEALTH-004"], timeout_s=10, tags=(HEARTBEAT_WAIT,))
async def heartbeat_measured(ctx: CheckContext) -> None:
    """Health's heartbeat_seconds against two heartbeat intervals measured on an idle stream."""
    reported = ctx.health.get("heartbeat_seconds")
    if not is_interval(reported):
        ctx.unobserved(f"health reports no usable heartbeat_seconds ({reported!r}; see "
                       "health-ok-shape): nothing to compare the streams with")
    async with opened(ctx) as reader:
        await idle_heartbeats(ctx, reader, 3)
        times = heartbeat_times(reader)[:3]
        if len(times) < 2:
            ctx.unobserved(f"{len(times)} heartbeat(s) on an idle stream: no interval to "
                           "measure (the cadence is judged by sse-heartbeat-cadence)")
        gaps = [b - a for a, b in itertools.pairwise(times)]
        measured = sum(gaps) / len(gaps)
        slack = tolerance(float(reported))
        if abs(measured - float(reported)) > slack:
            ctx.fail(
                "Health reports another heartbeat interval than the streams use",
                expected=f"heartbeat_seconds within {slack:g} s of the measured interval "
                         f"{measured:.2f} s",
                received=f"health heartbeat_seconds = {reported}",
                evidence={"measured_s": round(measured, 3), **cadence_evidence(
                    reader, float(reported))},
                reproduce=ctx.curl("GET", "/v1/health"),
            )


@check("health-collections-list",
       "Health: /v1/collections lists the same valid collection names as health",
       ["HEALTH-005"])
async def collections_list(ctx: CheckContext) -> None:
    body, response, reproduce = await probe_status(ctx, "GET", "/v1/collections", 200,
                                                   "/v1/collections did not answer 200")
    listed = body.get("collections") if isinstance(body, dict) else None
    if not is_name_list(listed):
        fail_response(ctx, response, "/v1/collections has no list of names",
                      "{collections: [names]}", response.text[:300], reproduce)
    health = await ctx.request("GET", "/v1/health")
    health_body = health.json() if health.status_code == 200 else {}
    from_health = health_body.get("collections") if isinstance(health_body, dict) else None
    if sorted(listed) != sorted(from_health or []):
        fail_response(ctx, response, "/v1/collections and health list different collections",
                      f"the same names as health: {from_health}", str(listed), reproduce)
    if ctx.collection not in listed:
        fail_response(ctx, response, "the collection under test is not listed",
                      f"{ctx.collection!r} in the list", str(listed), reproduce)


@check("health-metrics-prometheus",
       "Health: /metrics answers the Prometheus text format",
       ["HEALTH-006"])
async def metrics_prometheus(ctx: CheckContext) -> None:
    _, response, reproduce = await probe_status(ctx, "GET", "/metrics", 200,
                                                "/metrics did not answer 200")
    media = http.media_type(response.headers)
    lines = [line for line in response.text.splitlines() if line and not line.startswith("#")]
    if media != "text/plain" or not lines or any(len(line.split()) < 2 for line in lines):
        fail_response(ctx, response, "/metrics is not Prometheus text exposition",
                      "text/plain; version=0.0.4 with 'name value' sample lines",
                      f"{response.headers.get('content-type')}: {response.text[:200]}", reproduce)
