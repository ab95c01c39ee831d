# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs selected checks against a target: selection, concurrency, timeouts, progress, report."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import random
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dualstore_spec
import httpx

from dualstore_conformance.client import redact_text
from dualstore_conformance.context import CheckContext, StreamBudget, spec_limits, stream_cap
from dualstore_conformance.model import CheckResult, Level, NotJudged, Status, Target, Verdict
from dualstore_conformance.outcomes import CheckFailed, CheckSkipped, CheckUnobserved
from dualstore_conformance.pacing import PacedTransport, RequestPacer
from dualstore_conformance.profile import DeploymentProfile, spec_defaults
from dualstore_conformance.registry import CheckSpec, load_all

PROPERTY_STAGE_ID = "property"
"""Selection id of the Schemathesis layer (its results have ids starting with it)."""

HEARTBEAT_WAIT = "heartbeat-wait"
"""Check tag: the check waits for heartbeats; its timeout grows by 3 intervals."""

LEVEL_ORDER = {Level.MUST: 0, Level.SHOULD: 1, Level.MAY: 2}

KEEPALIVE_EXPIRY_S = 1.0
"""How long the harness keeps an idle connection for reuse."""


class TargetUnreachable(Exception):
    """The target did not answer at all (exit code 2, one-line reason)."""


class SelectionError(Exception):
    """--only / --skip select nothing or name something unknown (exit code 2)."""


@dataclass
class RunConfig:
    """What to run and how."""

    target: Target
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    level: Level = Level.MAY
    seed: int | None = None
    max_examples: int = 25
    workers: int = 8
    property_layer: bool = True
    heartbeat_from_health: bool = True
    """When True and the target's health reports heartbeat_seconds, use it (the flag wins)."""

    def knobs(self) -> dict[str, Any]:
        """Every setting of the run that is not the deployment profile (for the report)."""
        return {
            "only": list(self.only),
            "skip": list(self.skip),
            "level": self.level.value,
            "max_examples": self.max_examples,
            "workers": self.workers,
            "property_layer": self.property_layer,
            "timeout_multiplier": self.target.timeout_multiplier,
            "timeout_multiplier_scope": "the harness's own waits only; never a limit the "
                                        "spec states",
            "heartbeat_from_health": self.heartbeat_from_health,
            "token": "given" if self.target.token else "none",
            "cors_origin": self.target.cors_origin,
        }


@dataclass
class Progress:
    """One progress notification: a check started or finished, or a periodic tick."""

    kind: str
    """"start", "finish", "tick" or "stage"."""
    check_id: str = ""
    result: CheckResult | None = None
    done: int = 0
    total: int = 0
    running: dict[str, float] = field(default_factory=dict)
    """check id -> monotonic start time of every running check."""
    message: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass
class RunReport:
    """Everything the reporters need."""

    target: str
    started_at: str
    duration_s: float
    spec_version: str
    seed: int
    results: list[CheckResult]
    collection: str = ""
    heartbeat_seconds: float = 0.0
    profile: dict[str, Any] = field(default_factory=lambda: spec_defaults().as_dict())
    """The deployment profile the run judged against (DeploymentProfile.as_dict)."""
    knobs: dict[str, Any] = field(default_factory=dict)
    """Every other setting of the run (RunConfig.knobs)."""

    def summary(self) -> dict[str, int]:
        """Counts per status (keys: passed, failed, skipped, errors)."""
        counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
        for result in self.results:
            key = "errors" if result.status is Status.ERROR else result.status.value
            counts[key] += 1
        return counts

    def verdicts(self) -> dict[str, int]:
        """Counts per verdict class (passed, failed, non-strict, informational, not-judged,
        error)."""
        counts = {verdict.value: 0 for verdict in Verdict}
        for result in self.results:
            counts[result.verdict.value] += 1
        return counts

    def judged(self) -> list[CheckResult]:
        """Results of checks that ran to a verdict (everything but not-judged)."""
        return [r for r in self.results if r.verdict is not Verdict.NOT_JUDGED]

    def blocking(self) -> list[CheckResult]:
        """MUST checks that failed or could not observe: each one denies conformance."""
        return [r for r in self.results
                if r.level is Level.MUST and r.verdict in (Verdict.FAILED, Verdict.ERROR)]

    def must_not_judged(self) -> list[CheckResult]:
        """MUST checks left unjudged (each with its reason): the verdict line names them."""
        return [r for r in self.results
                if r.level is Level.MUST and r.verdict is Verdict.NOT_JUDGED]

    def conforms(self) -> bool:
        """Every judged MUST check held, and at least one check was judged."""
        return bool(self.judged()) and not self.blocking()

    def verdict_line(self) -> str:
        """"conforms" or "DOES NOT CONFORM", with what was left unjudged and why."""
        if not self.judged():
            return "NOTHING JUDGED (no check ran to a verdict)"
        head = "conforms" if self.conforms() else "DOES NOT CONFORM"
        if not self.conforms():
            head += f" ({len(self.blocking())} MUST check(s) failed or could not observe)"
        unjudged = self.must_not_judged()
        if unjudged:
            reasons: dict[str, list[str]] = {}
            for result in unjudged:
                why = result.not_judged.value if result.not_judged else "not-judged"
                reasons.setdefault(why, []).append(result.id)
            named = "; ".join(f"{why}: {', '.join(ids)}" for why, ids in sorted(reasons.items()))
            head += f"; MUST checks not judged ({len(unjudged)}): {named}"
        return head

    def exit_code(self) -> int:
        """0 conforms, 1 a MUST check failed or could not observe, 2 nothing was judged."""
        if not self.judged():
            return 2
        return 0 if self.conforms() else 1


@dataclass
class Environment:
    """Facts about the target gathered before the checks run."""

    target: Target
    run_id: str
    collection: str
    limits: dict[str, Any]
    health: dict[str, Any]
    profile: DeploymentProfile = field(default_factory=spec_defaults)


def spec_version() -> str:
    """Version of the spec the harness judges against."""
    return dualstore_spec.version()


# -- selection --------------------------------------------------------------------------
def _matches(spec_id: str, rules: Iterable[str], token: str) -> bool:
    token = token.strip()
    if not token:
        return False
    if spec_id == token or spec_id.startswith(token.lower()):
        return True
    upper = token.upper()
    return any(rule == upper or rule.startswith(upper.rstrip("-") + "-") for rule in rules)


def split_ids(values: Sequence[str] | str | None) -> list[str]:
    """Flatten CSV / repeated option values into ids."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def select(
    specs: dict[str, CheckSpec],
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    level: Level = Level.MAY,
) -> list[CheckSpec]:
    """The checks chosen by --only, --skip (ids, id prefixes, rule ids) and --level."""
    known_rule_ids = {rule for spec in specs.values() for rule in spec.rules}
    for token in [*only, *skip]:
        if token.startswith(PROPERTY_STAGE_ID):
            continue
        if not any(_matches(s.id, s.rules, token) for s in specs.values()):
            hint = "rule" if token.upper() in known_rule_ids else "check id, prefix or rule id"
            raise SelectionError(f"{token!r} matches no {hint}")
    chosen = []
    for spec in sorted(specs.values(), key=lambda s: s.id):
        if only and not any(_matches(spec.id, spec.rules, t) for t in only):
            continue
        if any(_matches(spec.id, spec.rules, t) for t in skip):
            continue
        if LEVEL_ORDER[spec.level] > LEVEL_ORDER[level]:
            continue
        chosen.append(spec)
    return chosen


def property_selected(only: Sequence[str], skip: Sequence[str]) -> bool:
    """Whether the Schemathesis stage runs under this selection."""
    if any(PROPERTY_STAGE_ID.startswith(t) or t.startswith(PROPERTY_STAGE_ID) for t in skip):
        return False
    if only:
        return any(PROPERTY_STAGE_ID.startswith(t) or t.startswith(PROPERTY_STAGE_ID)
                   for t in only)
    return True


# -- environment ------------------------------------------------------------------------
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
            if only and not any(_matches(result.id, result.rules, t) for t in only):
                continue
            if any(_matches(result.id, result.rules, t) for t in skip):
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
