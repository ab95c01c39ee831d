# SPDX-License-Identifier: GPL-3.0-or-later
"""The REST/security protocol checks pass against the reference and fail against a broken target."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from dualstore_conformance import runner
from dualstore_conformance.checks import cors
from dualstore_conformance.environment import Environment
from dualstore_conformance.limits import spec_limits
from dualstore_conformance.model import CheckResult, NotJudged, Status, Target, Verdict
from dualstore_conformance.profile import from_mapping, parse_rate_limit, spec_defaults
from dualstore_conformance.registry import CheckSpec, load_all
from dualstore_conformance.run_model import RunConfig

REST_MODULES = (
    "http",
    "health",
    "doc",
    "write",
    "read",
    "search",
    "filter",
    "auth",
    "cors",
    "limit",
)


def rest_specs() -> dict[str, CheckSpec]:
    """The checks registered by the REST/security modules."""
    modules = {f"dualstore_conformance.checks.{name}" for name in REST_MODULES}
    return {i: s for i, s in load_all().items() if s.function.__module__ in modules}


RATE_LIMIT_CHECK = "limit-rate-limited-429"


def run_rest_checks(
    url: str, token: str, origin: str, check_ids: list[str], rate_limit: str | None = None,
) -> dict[str, CheckResult]:
    """One harness run of the given checks (the allowed CORS origin on the target; the
    deployment's rate limit declared when given, else the spec's)."""
    profile = from_mapping({}, spec_defaults(), "test")
    if rate_limit is not None:
        rate = parse_rate_limit(rate_limit)
        profile = from_mapping({"rate_limit": None if rate is None else {
            "requests_per_second": rate.requests_per_second, "burst": rate.burst}},
            profile, "test")
    target = Target(url=url, token=token, cors_origin=origin, profile=profile)
    config = RunConfig(target=target, only=check_ids, property_layer=False, workers=8)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(cors.CORS_ORIGIN_ENV, raising=False)
        report = runner.run(config)
    return {result.id: result for result in report.results}


@pytest.fixture(scope="module")
def reference_results(reference_server: Any) -> dict[str, CheckResult]:
    """Every REST check against the shared reference (token and CORS origin configured)."""
    env = reference_server.env
    return run_rest_checks(
        reference_server.url,
        env["AUTH_TOKEN"].split(",")[0],
        env["CORS_ORIGIN"],
        sorted(rest_specs()),
        rate_limit="none",  # the shared reference runs with throttling effectively off
    )


@pytest.mark.parametrize("check_id", sorted(set(rest_specs()) - {RATE_LIMIT_CHECK}))
def test_check_passes_against_reference(
    reference_results: dict[str, CheckResult], check_id: str
) -> None:
    result = reference_results[check_id]
    assert result.status is Status.PASSED, f"{result.message}\n{result.reproduce}"


def test_rate_limit_check_fails_when_a_declared_limit_is_never_enforced(
    reference_server: Any,
) -> None:
    # the shared reference runs with throttling effectively off, while this run declares a
    # limit (1/s, burst 5) that the harness's requests exceed on any machine: a server that
    # never refuses has not enforced it
    env = reference_server.env
    results = run_rest_checks(reference_server.url, env["AUTH_TOKEN"].split(",")[0],
                              env["CORS_ORIGIN"], [RATE_LIMIT_CHECK], rate_limit="1/5")
    result = results[RATE_LIMIT_CHECK]
    assert result.verdict is Verdict.FAILED
    assert "no 429" in result.message


def test_rate_limit_check_cannot_judge_a_limit_it_never_exceeded(reference_server: Any) -> None:
    # a declared refill far above what the harness can send: one bucket admits everything it
    # sent, so no 429 proves nothing (a slow or loaded client is not evidence against a server)
    env = reference_server.env
    results = run_rest_checks(reference_server.url, env["AUTH_TOKEN"].split(",")[0],
                              env["CORS_ORIGIN"], [RATE_LIMIT_CHECK], rate_limit="100000/200")
    result = results[RATE_LIMIT_CHECK]
    assert result.verdict is Verdict.ERROR and "never exceeded" in result.message


def test_rate_limit_check_is_not_judged_when_the_profile_declares_none(
    reference_results: dict[str, CheckResult],
) -> None:
    result = reference_results[RATE_LIMIT_CHECK]
    assert result.verdict is Verdict.NOT_JUDGED
    assert result.not_judged is NotJudged.NOT_CONFIGURED


def test_rate_limit_check_cannot_observe_a_declared_burst_beyond_its_budget(
    reference_server: Any,
) -> None:
    env = reference_server.env
    results = run_rest_checks(reference_server.url, env["AUTH_TOKEN"].split(",")[0],
                              env["CORS_ORIGIN"], [RATE_LIMIT_CHECK],
                              rate_limit="100000/100000")
    result = results[RATE_LIMIT_CHECK]
    assert result.verdict is Verdict.ERROR and "could not observe" in result.message


def test_rate_limit_check_passes_against_a_throttled_reference(start_reference: Any) -> None:
    server = start_reference(
        env={"RATE_LIMIT_PER_SECOND": "20", "RATE_LIMIT_BURST": "40"}, workers=1
    )
    env = server.env
    token = env["AUTH_TOKEN"].split(",")[0]
    results = run_rest_checks(server.url, token, env["CORS_ORIGIN"], [RATE_LIMIT_CHECK])
    result = results[RATE_LIMIT_CHECK]
    assert result.status is Status.PASSED, result.message


def test_every_rest_check_cites_known_rules() -> None:
    import importlib

    known = importlib.import_module("dualstore_spec").rules_by_id()
    for spec in rest_specs().values():
        assert spec.rules, spec.id
        assert set(spec.rules) <= set(known), (spec.id, set(spec.rules) - set(known))


# -- a deliberately wrong target ------------------------------------------------------------
WRONG_COLLECTION = "things"


async def _send_json(
    send: Any,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    media: str = "application/json",
) -> None:
    raw = json.dumps(body).encode()
    head = [(b"content-type", media.encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


async def wrong_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that gets several rules wrong on purpose (each named below)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    path, method = scope["path"], scope["method"]
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    base = f"/v1/{WRONG_COLLECTION}"
    if path == "/v1/health":  # HEALTH-001: fields missing; HTTP-005: any method accepted
        await _send_json(send, 200, {"ok": True})
    elif "authorization" not in headers:  # AUTH-001: no WWW-Authenticate, not a problem
        await _send_json(send, 401, {"error": "unauthorized"})
    elif path == f"{base}/recent":  # LIMIT-003, FILTER-003: any limit and any filter accepted
        await _send_json(send, 200, {"items": []})
    elif path == base and method == "POST":  # WRITE-001: no Location
        await _send_json(send, 201, {"id": "abc"})
    elif path == f"{base}/abc":  # WRITE-003 / DOC-002: offset kept, no milliseconds
        await _send_json(
            send,
            200,
            {"id": "abc", "text": "t", "metadata": {}, "timestamp": "2026-03-04T12:34:56+02:00"},
        )
    else:  # HTTP-007 / READ-005: plain-text 404
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"nope"})


EXPECTED_TO_FAIL = [
    "health-ok-shape",
    "auth-required-every-operation",
    "limit-page-limit-range",
    "write-created-location",
    "write-timestamp-normalised",
    "http-unknown-route-404",
    "read-unknown-id-404",
    "filter-unsafe-operators-400",
    "http-method-not-allowed-allow",
]


async def _run_against_wrong(check_ids: list[str]) -> dict[str, CheckResult]:
    target = Target(url="http://wrong.test", token="t", collection=WRONG_COLLECTION)
    env = Environment(
        target=target, run_id="wrongrun", collection=WRONG_COLLECTION, limits=spec_limits(),
        health={},
    )
    transport = httpx.ASGITransport(app=wrong_app)
    async with httpx.AsyncClient(
        transport=transport, base_url=target.url, headers={"Authorization": "Bearer t"}
    ) as client:
        specs = load_all()
        return {i: await runner.run_one(specs[i], env, client, None) for i in check_ids}


def test_checks_fail_against_a_wrong_target() -> None:
    results = asyncio.run(_run_against_wrong(EXPECTED_TO_FAIL))
    for check_id in EXPECTED_TO_FAIL:
        result = results[check_id]
        assert result.status is Status.FAILED, (check_id, result.status, result.message)
        assert result.rules and result.message


async def buffering_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads every byte of a body before answering 413 (LIMIT-002 broken)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"type":"urn:dualstore:problem:payload-too-large","title":"x","status":413}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/problem+json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def test_body_buffering_check_fails_against_a_buffering_target() -> None:
    import threading

    import uvicorn
    from dualstore_reference.embedded import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            buffering_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)

        async def run() -> CheckResult:
            target = Target(url=f"http://127.0.0.1:{port}", token="buffering-token",
                            collection="things")
            env = Environment(
                target=target, run_id="buffered", collection="things", limits=spec_limits(),
                health={},
            )
            async with httpx.AsyncClient(base_url=target.url) as client:
                return await runner.run_one(
                    load_all()["limit-body-not-buffered"], env, client, None
                )

        result = asyncio.run(run())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert result.status is Status.FAILED, result.message
    # It got cap + 1 bytes of a far larger declared body and kept waiting for the rest.
    assert result.evidence["stage"] == "waited"
    assert result.evidence["sent_bytes"] == spec_limits()["max_body_bytes"] + 1
