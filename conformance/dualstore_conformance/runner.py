# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the selected checks against a prepared target: concurrency, timeouts, progress."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import random
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dualstore_spec
import httpx

from dualstore_conformance.client import redact_text
from dualstore_conformance.context import CheckContext
from dualstore_conformance.environment import Environment, make_client, prepare
from dualstore_conformance.limits import stream_cap
from dualstore_conformance.model import CheckResult, Level, NotJudged, Status, Target
from dualstore_conformance.outcomes import CheckFailed, CheckSkipped, CheckUnobserved
from dualstore_conformance.pacing import RequestPacer
from dualstore_conformance.registry import HEARTBEAT_WAIT, CheckSpec, load_all
from dualstore_conformance.run_model import Progress, ProgressCallback, RunConfig, RunReport
from dualstore_conformance.selection import (
    PROPERTY_STAGE_ID,
    SelectionError,
    matches,
    property_selected,
    select,
)
from dualstore_conformance.streams import StreamBudget


def spec_version() -> str:
    """Version of the spec the harness judges against."""
    return dualstore_spec.version()


def _budget(spec: CheckSpec, target: Target) -> float:
    """A check's timeout before scaling: heartbeat checks get 3 intervals more."""
    budget = spec.timeout_s
    if HEARTBEAT_WAIT in spec.tags:
        budget += 3 * target.heartbeat_seconds + 5
    return budget


# -- execution --------------------------------------------------------------------------
async def run_one(
    spec: CheckSpec,
    env: Environment,
    client: httpx.AsyncClient,
    budget: StreamBudget | None,
    pacer: RequestPacer | None = None,
) -> CheckResult:
    """Run one check with its (scaled) timeout and turn the outcome into a result."""
    ctx = CheckContext(
        target=env.target,
        check_id=spec.id,
        run_id=env.run_id,
        collection=env.collection,
        client=client,
        limits=env.limits,
        rules=spec.rules,
        stream_budget=budget,
        exclusive=spec.exclusive,
        health=env.health,
        pacer=pacer,
    )
    timeout = _budget(spec, env.target) * env.target.timeout_multiplier
    started = time.monotonic()
    result = CheckResult(
        id=spec.id, title=spec.title, level=spec.level, rules=list(spec.rules),
        status=Status.PASSED,
    )
    ctx.deadline = started + timeout
    try:
        await asyncio.wait_for(spec.function(ctx), timeout)
    except CheckFailed as failed:
        failure = failed.failure
        result.status = Status.FAILED
        result.rules = sorted(set(failure.rules) | set(spec.rules)) if failure.rules else list(
            spec.rules)
        result.message = (
            f"{failure.title}. Expected: {failure.expected}. Received: {failure.received}"
        )
        result.evidence = {
            "expected": failure.expected,
            "received": failure.received,
            "severity": failure.severity,
            "failed_rules": list(failure.rules),
            **failure.evidence,
        }
        result.reproduce = failure.reproduce
    except CheckSkipped as skipped:
        result.status = Status.SKIPPED
        result.message = str(skipped)
        result.not_judged = NotJudged(skipped.why)
    except CheckUnobserved as unobserved:
        result.status = Status.ERROR
        result.message = f"could not observe: {unobserved}"
    except TimeoutError:
        result.status = Status.ERROR
        result.message = (
            f"check did not finish within {timeout:.0f} s "
            "(a slow target may need --timeout-multiplier)"
        )
    except httpx.HTTPError as error:
        result.status = Status.ERROR
        result.message = f"HTTP error talking to the target: {type(error).__name__}: {error}"
    except Exception as error:
        result.status = Status.ERROR
        result.message = f"harness error: {type(error).__name__}: {error}"
        result.evidence = {"traceback": traceback.format_exc(limit=8)}
    result.duration_s = round(time.monotonic() - started, 3)
    if ctx.notes and result.status is not Status.PASSED:
        result.evidence.setdefault("notes", list(ctx.notes))
    return scrub(result, env.target.token)


def scrub(result: CheckResult, token: str | None) -> CheckResult:
    """Remove the token from everything a report shows (message, evidence, reproduction)."""
    if not token:
        return result

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, token)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    result.message = clean(result.message)
    result.evidence = clean(result.evidence)
    result.reproduce = clean(result.reproduce)
    return result


async def run_checks(
    specs: Sequence[CheckSpec],
    env: Environment,
    workers: int = 8,
    progress: ProgressCallback | None = None,
    extra_stage: Callable[[], list[CheckResult]] | None = None,
    status: dict[str, str] | None = None,
) -> list[CheckResult]:
    """Exclusive checks first, each alone; then the rest, ``workers`` at a time.

    ``extra_stage`` (the property layer) runs in a thread alongside the concurrent checks.
    """
    results: dict[str, CheckResult] = {}
    running: dict[str, float] = {}
    total = len(specs) + (1 if extra_stage else 0)

    def notify(kind: str, check_id: str = "", result: CheckResult | None = None,
               message: str = "") -> None:
        if progress is not None:
            progress(Progress(kind, check_id, result, len(results), total, dict(running),
                              message))

    pacer = RequestPacer(env.profile.rate_limit)
    async with make_client(env.target, pacer) as client:
        budget = StreamBudget(max(1, stream_cap(env.limits) - 1))

        async def execute(spec: CheckSpec) -> None:
            running[spec.id] = time.monotonic()
            notify("start", spec.id)
            result = await run_one(spec, env, client, budget, pacer)
            running.pop(spec.id, None)
            results[spec.id] = result
            notify("finish", spec.id, result)

        exclusive = [s for s in specs if s.exclusive]
        shared = [s for s in specs if not s.exclusive]
        ticker = asyncio.create_task(_tick(notify, status if status is not None else {}))
        try:
            for spec in exclusive:
                await execute(spec)
            extra: asyncio.Future[list[CheckResult]] | None = None
            if extra_stage is not None:
                running[PROPERTY_STAGE_ID] = time.monotonic()
                notify("start", PROPERTY_STAGE_ID)
                extra = asyncio.ensure_future(asyncio.to_thread(extra_stage))
            semaphore = asyncio.Semaphore(max(1, workers))

            async def limited(spec: CheckSpec) -> None:
                async with semaphore:
                    await execute(spec)

            # the longest checks first so they overlap with everything else
            ordered = sorted(shared, key=lambda s: -_budget(s, env.target))
            await asyncio.gather(*(limited(spec) for spec in ordered))
            extra_results: list[CheckResult] = []
            if extra is not None:
                try:
                    extra_results = await extra
                except Exception as error:
                    extra_results = [CheckResult(
                        id=PROPERTY_STAGE_ID, title="Property layer (Schemathesis)",
                        level=Level.MUST, rules=[], status=Status.ERROR,
                        message=f"property layer crashed: {type(error).__name__}: {error}",
                        evidence={"traceback": traceback.format_exc(limit=8)},
                    )]
                running.pop(PROPERTY_STAGE_ID, None)
                for result in extra_results:
                    results[result.id] = scrub(result, env.target.token)
                notify("finish", PROPERTY_STAGE_ID)
        finally:
            ticker.cancel()
    ordered_ids = [s.id for s in specs]
    out = [results[i] for i in ordered_ids if i in results]
    out += [r for k, r in results.items() if k not in ordered_ids]
    return out


async def _tick(notify: Callable[..., None], status: dict[str, str]) -> None:
    while True:
        await asyncio.sleep(1.0)
        notify("tick", message=status.get(PROPERTY_STAGE_ID, ""))


def property_stage(
    env: Environment,
    seed: int,
    max_examples: int,
    only: Sequence[str],
    skip: Sequence[str],
    status: dict[str, str] | None = None,
) -> Callable[[], list[CheckResult]] | None:
    """The Schemathesis layer as a callable (an error result when it cannot load)."""
    try:
        module = importlib.import_module("dualstore_conformance.property")
        function = module.run
    except Exception as error:  # the layer is part of the verdict: unloadable is an error
        reason = f"{type(error).__name__}: {error}"

        def unavailable() -> list[CheckResult]:
            return [CheckResult(
                id=PROPERTY_STAGE_ID, title="Property layer (Schemathesis)",
                level=Level.MUST, rules=["HTTP-004", "HTTP-013"], status=Status.ERROR,
                message=f"could not observe: the property layer did not load ({reason})",
            )]

        return unavailable
    parameters = inspect.signature(function).parameters
    offered: dict[str, Any] = {
        "collection": env.collection,
        "limits": env.limits,
        "run_id": env.run_id,
    }
    if status is not None:
        box = status

        def on_progress(message: str) -> None:
            box[PROPERTY_STAGE_ID] = message

        offered["on_progress"] = on_progress
    kwargs = {k: v for k, v in offered.items() if k in parameters}

    def stage() -> list[CheckResult]:
        produced = function(env.target, seed, max_examples, **kwargs)
        chosen = []
        for result in produced:
            if only and not any(matches(result.id, result.rules, t) for t in only):
                continue
            if any(matches(result.id, result.rules, t) for t in skip):
                continue
            chosen.append(result)
        return list(chosen)

    return stage


async def run_async(config: RunConfig, progress: ProgressCallback | None = None) -> RunReport:
    """Prepare, select, run; the report."""
    specs = select(load_all(), config.only, config.skip, config.level)
    run_property = config.property_layer and property_selected(config.only, config.skip)
    if not specs and not run_property:
        raise SelectionError("the selection contains no check")
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = time.monotonic()
    env = await prepare(config.target, config.heartbeat_from_health)
    seed = config.seed if config.seed is not None else random.randrange(2**31)
    status: dict[str, str] = {}
    stage = (
        property_stage(env, seed, config.max_examples, config.only, config.skip, status)
        if run_property
        else None
    )
    results = await run_checks(specs, env, config.workers, progress, stage, status)
    results += not_selected(load_all(), specs, config, run_property)
    return RunReport(
        target=config.target.url,
        started_at=started_at,
        duration_s=round(time.monotonic() - started, 3),
        spec_version=spec_version(),
        seed=seed,
        results=results,
        collection=env.collection,
        heartbeat_seconds=env.target.heartbeat_seconds,
        profile=env.profile.as_dict(),
        knobs=config.knobs(),
    )


def not_selected(
    registry: dict[str, CheckSpec],
    chosen: Sequence[CheckSpec],
    config: RunConfig,
    property_ran: bool,
) -> list[CheckResult]:
    """A not-judged (not-selected) result for every check the selection left out."""
    ran = {spec.id for spec in chosen}
    out = [
        CheckResult(
            id=spec.id, title=spec.title, level=spec.level, rules=list(spec.rules),
            status=Status.SKIPPED, not_judged=NotJudged.NOT_SELECTED,
            message="left out by --only, --skip or --level",
        )
        for spec in sorted(registry.values(), key=lambda s: s.id) if spec.id not in ran
    ]
    if not property_ran:
        why = ("--no-property" if not config.property_layer
               else "left out by --only or --skip")
        out.append(CheckResult(
            id=PROPERTY_STAGE_ID, title="Property layer (Schemathesis)", level=Level.MUST,
            rules=["HTTP-004", "HTTP-013"], status=Status.SKIPPED,
            not_judged=NotJudged.NOT_SELECTED, message=why,
        ))
    return out


def run(config: RunConfig, progress: ProgressCallback | None = None) -> RunReport:
    """Synchronous entry point (own event loop; works from a thread with a running loop)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["report"] = asyncio.run(run_async(config, progress))
        except BaseException as error:
            outcome["error"] = error

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_async(config, progress))
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    report: RunReport = outcome["report"]
    return report
