# SPDX-License-Identifier: GPL-3.0-or-later
"""Play each scenario to the client under test and judge it."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from dualstore_conformance.client_suite import judge
from dualstore_conformance.client_suite.adapters import protocol
from dualstore_conformance.client_suite.launcher import AdapterError, AdapterRun, launch
from dualstore_conformance.client_suite.scenarios import Scenario
from dualstore_conformance.client_suite.server import Play, ScriptedServer
from dualstore_conformance.client_suite.verdicts import (
    ClientReport,
    NotJudged,
    ScenarioResult,
    Verdict,
    for_level,
)

POLL_S = 0.02
STARTUP_S = 60.0
"""How long an adapter may take to send its first request (a browser starting)."""
DEFAULT_COLLECTION = "things"


def applies(scenario: Scenario, hello: dict[str, Any]) -> str | None:
    """None when the scenario applies to the client, else why it is not judged."""
    if hello.get("skip"):
        return f"the adapter cannot run here: {hello['skip']}"
    profile = hello.get("profile", "eventsource")
    if profile not in scenario.profiles:
        kind = "DualStore API clients" if profile == "dualstore" else "generic SSE clients"
        return f"does not apply to {kind}"
    features = set(hello.get("features", []))
    missing = [need for need in scenario.requires if need not in features]
    if missing:
        return f"the client does not {', '.join(missing)} by itself (its adapter says so)"
    return None


def scenario_env(scenario: Scenario, base_url: str, collection: str) -> dict[str, str]:
    """The environment an adapter gets for one scenario."""
    return {
        protocol.ENV_SCENARIO: scenario.id,
        protocol.ENV_LISTEN: ",".join(scenario.listen),
        protocol.ENV_BASE_URL: base_url,
        protocol.ENV_COLLECTION: collection,
        protocol.ENV_OPTIONS: json.dumps(scenario.options, ensure_ascii=False),
    }


def _wait(play: Play, run: AdapterRun, scenario: Scenario, timeout_s: float,
          startup_s: float, multiplier: float = 1.0) -> str:
    """Block until the scenario is over; return why ("settled", "exited", "timeout",
    "no-request"). The scenario's timeout counts from the client's first request, so a
    slow-starting adapter (a browser) gets the same time as a quick one."""
    settle = scenario.settle_ms / 1000.0 * multiplier  # the harness's own wait: scalable
    while True:
        if run.exited():
            time.sleep(0.1)  # lines still in the pipe
            return "exited"
        if play.script_played() and play.now() - play.last_action >= settle:
            return "settled"
        if not play.requests:
            if play.now() >= startup_s:
                return "no-request"
        elif play.now() - play.requests[0].arrived >= timeout_s:
            return "timeout"
        time.sleep(POLL_S)


def _reproduce(command: str, scenario: Scenario) -> str:
    return f"dualstore conform-client --adapter {shlex.quote(command)} --only {scenario.id}"


def play_one(server: ScriptedServer, command: str, hello: dict[str, Any], scenario: Scenario,
             timeout_multiplier: float = 1.0) -> ScenarioResult:
    """Run one scenario against the adapter and judge it."""
    result = ScenarioResult(id=scenario.id, title=scenario.title, group=scenario.group,
                            level=scenario.level, rules=list(scenario.cite),
                            verdict=Verdict.NOT_JUDGED, reproduce=_reproduce(command, scenario))
    reason = applies(scenario, hello)
    if reason is not None:
        result.message = reason
        result.not_judged = (NotJudged.NOT_CONFIGURED if hello.get("skip")
                             else NotJudged.NOT_APPLICABLE)
        return result
    started = time.monotonic()
    collection = scenario.options.get("collection", DEFAULT_COLLECTION)
    play = server.begin(scenario)
    url = server.stream_url(play, collection)
    base_url = f"{server.base_url}{play.prefix.rstrip('/')}"
    try:
        run = launch(command, url, scenario_env(scenario, base_url, collection))
    except AdapterError as error:
        server.end_play()
        result.verdict, result.message = Verdict.ERROR, str(error)
        return result
    try:
        why = _wait(play, run, scenario, scenario.timeout_ms / 1000.0 * timeout_multiplier,
                    STARTUP_S * timeout_multiplier, timeout_multiplier)
    finally:
        code = run.stop()
        server.end_play()
        time.sleep(0.05)  # let the server record the held connections' ends
    result.duration_s = time.monotonic() - started
    kinds = [line.get("kind") for line in run.lines]
    events = [line for line in run.lines if line.get("kind") == "event"]
    result.evidence = {
        "ended": why, "adapter_exit": code, "requests": [r.to_json() for r in play.requests],
        "delivered": [_brief(line) for line in run.lines if line.get("kind") != "hello"][:50],
    }
    if run.bad_lines:
        result.evidence["non_json_output"] = run.bad_lines[:5]
    skip = next((line for line in run.lines if line.get("kind") == "skip"), None)
    if skip is not None:
        result.message = f"the adapter cannot run here: {skip.get('reason', '')}"
        result.not_judged = NotJudged.NOT_CONFIGURED
        run.stderr.close()
        return result
    if "hello" not in kinds or (why == "exited" and code not in (0, None)):
        result.verdict = Verdict.ERROR
        result.message = (f"could not observe: the adapter exited with {code}; "
                          f"stderr: {run.stderr_tail().strip()[-400:]}")
        run.stderr.close()
        return result
    run.stderr.close()
    seen = judge.Observation(profile=str(hello.get("profile")), events=events,
                             requests=list(play.requests))
    problems = judge.judge(scenario, seen)
    if problems and why == "settled" and any(p.startswith("delivered") for p in problems):
        watched = round(scenario.settle_ms * timeout_multiplier)
        problems.append(f"watched {watched} ms after the server's last action"
                        + (", the stream still open" if _held(scenario, play) else ""))
    if problems:
        result.verdict = for_level(scenario.level)
        result.message = "; ".join(problems)
    else:
        result.verdict = Verdict.PASSED
    return result


def _held(scenario: Scenario, play: Play) -> bool:
    """True when the last request's connection was held open by the script."""
    if not play.requests:
        return False
    index = play.requests[-1].index
    if index > len(scenario.connections):
        return scenario.after_script == "hold"
    return scenario.connections[index - 1].end == "hold"


def _brief(line: dict[str, Any]) -> dict[str, Any]:
    brief = {k: v for k, v in line.items() if k != "_at"}
    data = brief.get("data")
    if isinstance(data, str) and len(data) > 200:
        brief["data"] = data[:200] + f"... ({len(data)} chars)"
    brief["at_ms"] = round(float(line.get("_at", 0.0)) * 1000, 1)
    return brief


def run_all(command: str, hello: dict[str, Any], selected: Sequence[Scenario],
            progress: Callable[[ScenarioResult], None] | None = None,
            timeout_multiplier: float = 1.0,
            left_out: Sequence[Scenario] = ()) -> ClientReport:
    """Play every selected scenario, one at a time, on one scripted server; the ones
    ``left_out`` (by --only/--skip) are listed as not judged, not selected."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    began = time.monotonic()
    results: list[ScenarioResult] = []
    with ScriptedServer() as server:
        for scenario in selected:
            result = play_one(server, command, hello, scenario, timeout_multiplier)
            results.append(result)
            if progress is not None:
                progress(result)
    results.extend(
        ScenarioResult(id=s.id, title=s.title, group=s.group, level=s.level,
                       rules=list(s.cite), verdict=Verdict.NOT_JUDGED,
                       not_judged=NotJudged.NOT_SELECTED, message="not selected (--only/--skip)",
                       reproduce=_reproduce(command, s))
        for s in left_out)
    client = {k: v for k, v in hello.items() if k != "kind"}
    return ClientReport(adapter=command, client=client, started_at=started_at,
                        duration_s=time.monotonic() - began, results=results)
