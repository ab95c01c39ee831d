# SPDX-License-Identifier: GPL-3.0-or-later
"""The Schemathesis property layer: clean against the reference, failing on a broken target."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from dualstore_conformance import property as prop
from dualstore_conformance import schemathesis_checks as sc
from dualstore_conformance.client import encode_filter
from dualstore_conformance.model import CheckResult, Status, Target
from schemathesis.config import SchemathesisConfig

spec: Any = importlib.import_module("dualstore_spec")
SEED = 20261125
RUN_ID = "proptest0001"


def by_id(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.id: result for result in results}


# -- against the reference ----------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_run(reference_server: Any) -> list[CheckResult]:
    token = reference_server.env["AUTH_TOKEN"].split(",")[0]
    target = Target(url=reference_server.url, token=token, collection="session_messages")
    return prop.run(target, seed=SEED, max_examples=10, run_id=RUN_ID)


def test_documents_the_property_layer_writes_are_tagged(
    reference_server: Any, reference_run: list[CheckResult]
) -> None:
    token = reference_server.env["AUTH_TOKEN"].split(",")[0]
    expression = {
        "metadata.dualstore_conformance.run": RUN_ID,
        "metadata.dualstore_conformance.check": "property",
    }
    answer = httpx.get(
        f"{reference_server.url}/v1/session_messages/recent",
        params={"filter": encode_filter(expression), "limit": "200"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert answer.json()["items"], "no document written by the property layer carries the tag"


def test_property_layer_finds_no_failure_against_reference(
    reference_run: list[CheckResult],
) -> None:
    bad = [f"{r.id}: {r.message}" for r in reference_run if r.status is not Status.PASSED]
    assert not bad, "\n".join(bad)
    results = by_id(reference_run)
    # the built-in checks and ours all ran
    for name in (
        "not_a_server_error",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        *sc.CHECK_NAMES,
    ):
        assert f"property-{name}" in results, name
        assert results[f"property-{name}"].evidence["passed"] > 0


def test_property_layer_without_token_judges_an_open_deployment(start_reference: Any) -> None:
    # auth is optional by deployment: no token given and none required is not a failure
    server = start_reference(env={"AUTH_TOKEN": ""}, workers=1)
    results = prop.run(Target(url=server.url, collection="agent_tasks"), seed=SEED, max_examples=5)
    bad = [f"{r.id}: {r.message}" for r in results if r.status is not Status.PASSED]
    assert not bad, "\n".join(bad)
    assert "property-ignored_auth" not in by_id(results)


def test_property_layer_covers_every_phase_but_not_the_stream(
    reference_run: list[CheckResult],
) -> None:
    evidence = reference_run[0].evidence
    phases = {key.split(" ", 1)[0] for key, count in evidence["requests"].items() if count}
    assert {"examples", "coverage", "fuzzing", "stateful"} <= phases
    assert evidence["excluded_operations"] == ["GET /v1/{collection}/stream"]
    assert not any("/stream" in key for key in evidence["requests"])
    assert evidence["seed"] == SEED


# -- against a deliberately wrong target -------------------------------------------------
async def broken_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Health is fine; every other answer is a plain-text 500 (HTTP-013, HTTP-001 broken)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/v1/health":
        body = json.dumps(
            {
                "ok": True,
                "database": "up",
                "collections": ["things"],
                "heartbeat_seconds": 15,
                "version": "0",
            }
        ).encode()
        status, media = 200, b"application/json"
    else:
        body, status, media = b"internal error", 500, b"text/plain"
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", media)]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def broken_url() -> Iterator[str]:
    from dualstore_reference.embedded import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(broken_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/v1/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def test_property_layer_fails_against_a_broken_target(broken_url: str) -> None:
    token = "conformance-secret-token"
    results = by_id(
        prop.run(
            Target(url=broken_url, token=token, collection="things"), seed=SEED, max_examples=3
        )
    )
    server_error = results["property-not_a_server_error"]
    assert server_error.status is Status.FAILED
    assert server_error.rules == ["HTTP-013"]
    assert server_error.reproduce.startswith("curl ")
    assert token not in server_error.reproduce
    assert "$TOKEN" in server_error.reproduce
    assert server_error.evidence["failures"][0]["status"] == 500
    problem = results["property-dualstore_problem_json"]
    assert problem.status is Status.FAILED
    assert "application/problem+json" in problem.message
    assert token not in json.dumps([r.evidence for r in results.values()], default=str)


class ThrottlingApp:
    """Every other request is answered 429 with Retry-After: 0; the rest 404 not-found."""

    def __init__(self) -> None:
        self.seen = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await broken_app(scope, receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        self.seen += 1
        status = 429 if self.seen % 2 else 404
        slug = "rate-limited" if status == 429 else "not-found"
        body = json.dumps(
            {"type": f"urn:dualstore:problem:{slug}", "title": slug, "status": status}
        ).encode()
        headers = [(b"content-type", b"application/problem+json")]
        if status == 429:
            headers += [
                (b"retry-after", b"0"),
                (b"ratelimit", b'"default";r=0;t=0'),
                (b"ratelimit-policy", b'"default";q=1;w=1'),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    from dualstore_reference.embedded import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not server.started:
        time.sleep(0.05)
    return server, thread, url


def test_property_layer_waits_out_429_and_resends() -> None:
    app = ThrottlingApp()
    server, thread, url = serve(app)
    try:
        results = prop.run(
            Target(url=url, token="t", collection="things"), seed=SEED, max_examples=2
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    statuses = results[0].evidence["statuses"]
    recorded = sum(statuses.values())
    # Every 429 was waited out (Retry-After: 0) and the request sent again: the app saw
    # about two requests per recorded case. (A recorded 429 is one that failed our
    # Retry-After >= 1 check: Schemathesis keeps such a 429 as the case's evidence.)
    assert recorded > 10
    assert statuses.get("404", 0) > 0
    assert app.seen >= 2 * recorded - 2
    assert by_id(results)["property-dualstore_rate_limit_headers"].status is Status.FAILED


# -- configuration and our own checks (no network) -----------------------------------------
def test_stream_is_excluded_and_opaque_parameters_may_be_rejected() -> None:
    document = spec.openapi()
    assert prop.streaming_operations(document) == ["GET /v1/{collection}/stream"]
    overrides = {o["include-name"]: o for o in prop._operation_overrides(document, 10)}
    recent = overrides["GET /v1/{collection}/recent"]["checks"]["positive_data_acceptance"]
    assert "400" in recent["expected-statuses"]
    post = overrides["POST /v1/{collection}"]
    assert "422" in post["checks"]["positive_data_acceptance"]["expected-statuses"]
    assert post["phases"] == {"coverage": {"enabled": False}}
    thorough = {o["include-name"]: o for o in prop._operation_overrides(document, 100)}
    assert "phases" not in thorough["POST /v1/{collection}"]
    assert "GET /v1/collections" not in overrides


def test_negative_data_over_the_body_cap_may_be_rejected_with_413() -> None:
    config = prop.build_config(Target(url="http://127.0.0.1:1"), seed=None, max_examples=7)
    statuses = config["checks"]["negative_data_rejection"]["expected-statuses"]
    assert "413" in statuses and "422" in statuses and "400" in statuses
    assert "200" not in statuses and "201" not in statuses and "2xx" not in statuses
    # Schemathesis reads the setting as given (not its default list, which lacks 413).
    loaded = SchemathesisConfig.from_dict({"checks": config["checks"]}).projects.get_default()
    assert "413" in (loaded.checks.negative_data_rejection.expected_statuses or [])


def test_config_carries_token_seed_and_rate_limit_handling() -> None:
    target = Target(url="http://127.0.0.1:1", token="abc", collection="c")
    config = prop.build_config(target, seed=5, max_examples=7)
    assert config["headers"] == {"Authorization": "Bearer abc"}
    assert config["seed"] == 5
    assert config["rate-limit"] == "auto"
    assert config["generation"]["max-examples"] == 7
    assert config["parameters"] == {"path.collection": "c"}
    assert "with-security-parameters" not in config["generation"]
    open_config = prop.build_config(Target(url="http://127.0.0.1:1"), seed=None, max_examples=7)
    assert "headers" not in open_config and "seed" not in open_config
    assert open_config["generation"]["with-security-parameters"] is False
    assert open_config["checks"]["ignored_auth"] == {"enabled": False}
    assert all(
        config["phases"][p]["enabled"] for p in ("examples", "coverage", "fuzzing", "stateful")
    )


def fake_response(
    status: int,
    headers: dict[str, str],
    body: Any = None,
    media: str = "application/json",
    method: str = "GET",
) -> Any:
    raw = json.dumps(body).encode() if body is not None else b""
    merged = {"content-type": [media], **{k.lower(): [v] for k, v in headers.items()}}
    return SimpleNamespace(
        status_code=status, headers=merged, content=raw, request=SimpleNamespace(method=method)
    )


def test_problem_check_needs_documented_type_and_matching_status() -> None:
    good = {"type": "urn:dualstore:problem:not-found", "title": "Not found", "status": 404}
    assert sc.problem_errors(fake_response(404, {}, good, "application/problem+json")) == []
    assert sc.problem_errors(fake_response(404, {}, good, "application/json"))
    wrong_status = {**good, "status": 400}
    assert sc.problem_errors(fake_response(404, {}, wrong_status, "application/problem+json"))
    undocumented = {**good, "type": "urn:dualstore:problem:made-up"}
    assert sc.problem_errors(fake_response(404, {}, undocumented, "application/problem+json"))
    mismatched = {**good, "type": "urn:dualstore:problem:invalid-request"}
    assert sc.problem_errors(fake_response(404, {}, mismatched, "application/problem+json"))
    assert sc.problem_errors(fake_response(200, {}, {"x": 1})) == []


def test_timestamp_check_wants_utc_milliseconds_z() -> None:
    doc = {"id": "a", "text": "t", "metadata": {}, "timestamp": "2026-11-25T10:00:00.000Z"}
    assert sc.timestamp_errors(fake_response(200, {}, doc)) == []
    assert sc.timestamp_errors(fake_response(200, {}, {"items": [doc]})) == []
    for bad in ("2026-11-25T10:00:00Z", "2026-11-25T12:00:00.000+02:00", "53-11-25T10:00:00.000Z"):
        assert sc.timestamp_errors(fake_response(200, {}, {"items": [{**doc, "timestamp": bad}]}))


def test_rate_limit_and_www_authenticate_checks() -> None:
    full = {
        "Retry-After": "2",
        "RateLimit": '"default";r=0;t=2',
        "RateLimit-Policy": '"default";q=100;w=1',
    }
    assert sc.rate_limit_errors(fake_response(429, full)) == []
    assert sc.rate_limit_errors(fake_response(429, {**full, "Retry-After": "0"}))
    assert sc.rate_limit_errors(fake_response(429, {"Retry-After": "1"}))
    assert (
        sc.www_authenticate_errors(fake_response(401, {"WWW-Authenticate": 'Bearer realm="x"'}))
        == []
    )
    assert sc.www_authenticate_errors(fake_response(401, {"WWW-Authenticate": "Basic"}))
    assert sc.www_authenticate_errors(fake_response(401, {}))


class HookCatcher:
    """Stands in for a schema: records the hooks registered on it."""

    def __init__(self) -> None:
        self.hooks: dict[str, Any] = {}

    def hook(self, function: Any) -> Any:
        self.hooks[function.__name__] = function
        return function


def test_failures_caused_only_by_a_rate_limited_probe_are_dropped() -> None:
    catcher = HookCatcher()
    prop.ignore_rate_limited_failures(catcher)
    keep = catcher.hooks["filter_failure"]
    probe_429 = SimpleNamespace(
        title="Unexpected response to a request without authentication",
        message="Expected 401 or 403, got `429 Too Many Requests` for `GET /x`",
    )
    assert keep(None, probe_429, None, SimpleNamespace(status_code=200)) is False
    ours = SimpleNamespace(title="Custom check failed: `dualstore_rate_limit_headers`", message="x")
    assert keep(None, ours, None, SimpleNamespace(status_code=429)) is True
    server_error = SimpleNamespace(title="Server error", message="got `500 Internal Server Error`")
    assert keep(None, server_error, None, SimpleNamespace(status_code=500)) is True


def test_only_valid_post_bodies_get_the_tag() -> None:
    catcher = HookCatcher()
    prop.tag_documents(catcher, {"run": "r", "check": "property"})
    tag = catcher.hooks["map_case"]

    def case(method: str, body: Any, positive: bool) -> Any:
        mode = SimpleNamespace(is_positive=positive)
        return SimpleNamespace(
            method=method, body=body, meta=SimpleNamespace(generation=SimpleNamespace(mode=mode))
        )

    tagged = tag(None, case("POST", {"text": "a", "metadata": {"k": 1}}, True))
    assert tagged.body["metadata"] == {
        "k": 1,
        "dualstore_conformance": {"run": "r", "check": "property"},
    }
    assert "metadata" in tag(None, case("POST", {"text": "a"}, True)).body
    negative = {"text": "a", "metadata": {"k": 1}}
    assert tag(None, case("POST", negative, False)).body == {"text": "a", "metadata": {"k": 1}}
    assert tag(None, case("POST", {"text": "a", "metadata": [1]}, True)).body["metadata"] == [1]
    assert tag(None, case("GET", None, True)).body is None
