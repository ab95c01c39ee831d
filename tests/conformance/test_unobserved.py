# SPDX-License-Identifier: GPL-3.0-or-later
"""No check passes on nothing observed; the SSE checks of issue 15 catch their defects.

Each vacuous-pass path that used to exist is driven with a scripted target that gives the
check nothing to judge: the verdict must be error ("could not observe"), never passed. The
same targets, conforming, are the positive controls (the checks can pass at all).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

import dualstore_spec
import httpx
import pytest
import yaml
from dualstore_conformance import runner
from dualstore_conformance.checks import http as http_checks
from dualstore_conformance.environment import Environment
from dualstore_conformance.limits import spec_limits
from dualstore_conformance.model import CheckResult, Status, Target
from dualstore_conformance.registry import load_all

from .scripted_sse import COLLECTION, Script, serve


def run_check(check_id: str, url: str, limits: dict[str, Any] | None = None,
              transport: httpx.AsyncBaseTransport | None = None) -> CheckResult:
    """One check against url, as the runner runs it (1 s heartbeats, no multiplier)."""

    async def go() -> CheckResult:
        target = Target(url=url, collection=COLLECTION, heartbeat_seconds=1.0)
        async with httpx.AsyncClient(base_url=url, timeout=10, transport=transport) as client:
            health = (await client.get("/v1/health")).json()
            env = Environment(target=target, run_id=uuid.uuid4().hex[:12], collection=COLLECTION,
                              limits=limits or spec_limits(), health=health)
            return await runner.run_one(load_all()[check_id], env, client, None)

    return asyncio.run(go())


@pytest.mark.parametrize("check_id", ["sse-order-committed-before-event", "sse-frame-event-types"])
def test_a_stream_delivering_no_insert_event_is_not_a_pass(check_id: str) -> None:
    script = Script(deliver_inserts=False)
    with serve(script) as url:
        result = run_check(check_id, url)
    assert result.status is Status.ERROR, result.message
    assert "arrived" in result.message
    assert any(r.startswith("POST") for r in script.requests)  # it did write and wait


@pytest.mark.parametrize("check_id", ["sse-order-committed-before-event", "sse-frame-event-types"])
def test_the_same_checks_pass_when_the_events_arrive(check_id: str) -> None:
    with serve(Script()) as url:
        result = run_check(check_id, url)
    assert result.status is Status.PASSED, result.message


def test_method_not_allowed_without_a_documented_path_sends_nothing_and_is_not_a_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_checks, "documented_methods", lambda template: set())
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/health":
            return httpx.Response(200, json={"heartbeat_seconds": 1})
        return httpx.Response(405, headers={"Allow": "GET"})

    result = run_check("http-method-not-allowed-allow", "http://scripted.invalid",
                       transport=httpx.MockTransport(answer))
    assert result.status is Status.ERROR, result.message
    assert "no undocumented method" in result.message
    assert sent == ["GET /v1/health"]  # the check itself sent no request


def test_health_heartbeat_is_compared_with_the_measured_interval() -> None:
    with serve(Script(heartbeat_seconds=2.0, reported_heartbeat=1.0)) as url:
        lying = run_check("health-heartbeat-measured", url)
    with serve(Script(heartbeat_seconds=1.0)) as url:
        honest = run_check("health-heartbeat-measured", url)
    assert lying.status is Status.FAILED, lying.message
    assert "measured interval 2" in lying.message
    assert honest.status is Status.PASSED, honest.message


def test_health_heartbeat_without_heartbeats_to_measure_is_not_a_pass() -> None:
    with serve(Script(heartbeat_seconds=30.0, reported_heartbeat=1.0)) as url:
        result = run_check("health-heartbeat-measured", url)
    assert result.status is Status.ERROR, result.message
    assert "no interval to measure" in result.message


def test_a_heartbeat_repeating_the_last_event_id_fails_the_format_check() -> None:
    with serve(Script(heartbeat_id=True)) as url:
        with_id = run_check("sse-heartbeat-format", url)
    with serve(Script()) as url:
        clean = run_check("sse-heartbeat-format", url)
    assert with_id.status is Status.FAILED, with_id.message
    assert "carries an id field ('1')" in with_id.message
    assert clean.status is Status.PASSED, clean.message


def test_a_heartbeat_clock_reset_by_filtered_out_documents_fails_every_time() -> None:
    verdicts = []
    for _ in range(2):
        with serve(Script(reset_on_any_insert=True)) as url:
            verdicts.append(run_check("sse-heartbeat-filtered-cadence", url))
    assert [v.status for v in verdicts] == [Status.FAILED, Status.FAILED], verdicts
    assert "SSE-HEARTBEAT-004" in verdicts[0].rules
    with serve(Script()) as url:
        clean = run_check("sse-heartbeat-filtered-cadence", url)
    assert clean.status is Status.PASSED, clean.message


def test_a_window_the_writer_could_not_keep_dense_is_not_judged_and_the_next_one_is() -> None:
    """Writes stall for 1.5 s (more than H = 1 s) at the start: that window proves nothing,
    so the check judges the next two heartbeat gaps instead of giving up; a target whose
    heartbeat clock filtered-out writes reset still fails the same way."""
    stall = (0.2, 1.5)
    with serve(Script(stall_writes=stall)) as url:
        stalled = run_check("sse-heartbeat-filtered-cadence", url)
    assert stalled.status is Status.PASSED, stalled.message
    with serve(Script(stall_writes=stall, reset_on_any_insert=True)) as url:
        broken = run_check("sse-heartbeat-filtered-cadence", url)
    assert broken.status is Status.FAILED, broken.message


@pytest.mark.parametrize(("server_cap", "status"), [(3, Status.PASSED), (5, Status.FAILED)])
def test_the_cap_check_uses_the_declared_cap(server_cap: int, status: Status) -> None:
    limits = {**spec_limits(), "stream_cap_per_ip": 3}
    with serve(Script(stream_cap=server_cap)) as url:
        result = run_check("sse-cap-too-many-streams", url, limits=limits)
    assert result.status is status, result.message
    if status is Status.FAILED:
        assert "429 for stream number 4" in result.message


def test_a_duplicate_at_the_resume_join_fails_the_join_check() -> None:
    with serve(Script(join_duplicate=True)) as url:
        duplicated = run_check("sse-resume-join-no-duplicate", url)
    with serve(Script()) as url:
        clean = run_check("sse-resume-join-no-duplicate", url)
    assert duplicated.status is Status.FAILED, duplicated.message
    assert "SSE-RESUME-010" in duplicated.rules and "sent twice" in duplicated.message
    assert clean.status is Status.PASSED, clean.message


@pytest.mark.parametrize(("server_cap", "status"), [(100, Status.ERROR), (3, Status.PASSED)])
def test_slot_release_is_judged_only_at_the_cap(server_cap: int, status: Status) -> None:
    limits = {**spec_limits(), "stream_cap_per_ip": 3}
    with serve(Script(stream_cap=server_cap)) as url:
        result = run_check("sse-cap-slot-released", url, limits=limits)
    assert result.status is status, result.message
    if status is Status.ERROR:
        assert "could not reach the cap" in result.message


def _spec_with_tolerance(tmp_path: Path, absolute: float, relative: float) -> Path:
    copy = tmp_path / "spec"
    shutil.copytree(dualstore_spec.SPEC_DIR, copy,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    contract = yaml.safe_load((copy / "sse-contract.yaml").read_text("utf-8"))
    contract["x-heartbeat"]["tolerance_absolute_seconds"] = absolute
    contract["x-heartbeat"]["tolerance_relative"] = relative
    (copy / "sse-contract.yaml").write_text(yaml.safe_dump(contract, sort_keys=False), "utf-8")
    return copy


def test_the_cadence_verdict_follows_the_specs_tolerance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats 1.3 s apart for H = 1 s: inside the spec's max(0.5 s, 20%), outside a spec
    copy saying max(0.25 s, 10%); the check has no tolerance of its own."""
    script = Script(heartbeat_seconds=1.3, reported_heartbeat=1.0)
    with serve(script) as url:
        as_published = run_check("sse-heartbeat-cadence", url)
        monkeypatch.setenv(dualstore_spec.SPEC_DIR_ENV, str(_spec_with_tolerance(tmp_path, 0.25,
                                                                                 0.1)))
        dualstore_spec.forget()
        try:
            tighter = run_check("sse-heartbeat-cadence", url)
        finally:
            monkeypatch.delenv(dualstore_spec.SPEC_DIR_ENV)
            dualstore_spec.forget()
    assert as_published.status is Status.PASSED, as_published.message
    assert tighter.status is Status.FAILED, tighter.message
    assert "+/- 0.25 s" in tighter.message
