# SPDX-License-Identifier: GPL-3.0-or-later
"""Runner: selection by id / prefix / rule id / level, outcomes, timeouts, exclusive checks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from dualstore_conformance.context import CheckContext
from dualstore_conformance.environment import Environment
from dualstore_conformance.limits import spec_limits
from dualstore_conformance.model import CheckResult, Level, NotJudged, Status, Target, Verdict
from dualstore_conformance.registry import CheckSpec
from dualstore_conformance.run_model import RunReport
from dualstore_conformance.runner import run_checks
from dualstore_conformance.selection import SelectionError, select, split_ids


async def _noop(ctx: CheckContext) -> None:
    return None


def spec(check_id: str, rules: tuple[str, ...], level: Level = Level.MUST,
         function: Any = _noop, timeout_s: float = 5.0, exclusive: bool = False) -> CheckSpec:
    return CheckSpec(id=check_id, title=check_id, level=level, rules=rules, function=function,
                     timeout_s=timeout_s, exclusive=exclusive)


SPECS = {
    s.id: s
    for s in [
        spec("sse-cap-too-many", ("SSE-CAP-001",)),
        spec("sse-cap-matches", ("SSE-CAP-003",), Level.SHOULD),
        spec("sse-resume-header", ("SSE-RESUME-004",)),
        spec("auth-bearer", ("AUTH-001", "AUTH-002")),
        spec("cors-extra", ("CORS-004",), Level.MAY),
    ]
}


def ids(chosen: list[CheckSpec]) -> list[str]:
    return [s.id for s in chosen]


@pytest.mark.parametrize(
    ("only", "skip", "level", "expected"),
    [
        ([], [], Level.MAY, ["auth-bearer", "cors-extra", "sse-cap-matches", "sse-cap-too-many",
                             "sse-resume-header"]),
        (["sse-cap-too-many"], [], Level.MAY, ["sse-cap-too-many"]),
        (["sse-cap"], [], Level.MAY, ["sse-cap-matches", "sse-cap-too-many"]),
        (["SSE-RESUME-004"], [], Level.MAY, ["sse-resume-header"]),
        (["auth-002"], [], Level.MAY, ["auth-bearer"]),
        (["SSE-CAP"], [], Level.MAY, ["sse-cap-matches", "sse-cap-too-many"]),
        (["sse-"], ["SSE-CAP-003"], Level.MAY, ["sse-cap-too-many", "sse-resume-header"]),
        ([], [], Level.MUST, ["auth-bearer", "sse-cap-too-many", "sse-resume-header"]),
        ([], [], Level.SHOULD, ["auth-bearer", "sse-cap-matches", "sse-cap-too-many",
                                "sse-resume-header"]),
    ],
)
def test_select(only: list[str], skip: list[str], level: Level, expected: list[str]) -> None:
    assert ids(select(SPECS, only, skip, level)) == expected


def test_select_unknown_token_is_an_error() -> None:
    with pytest.raises(SelectionError, match="nope"):
        select(SPECS, ["nope"])


def test_split_ids_accepts_csv_and_repeats() -> None:
    assert split_ids(["a,b", " c ", ""]) == ["a", "b", "c"]
    assert split_ids(None) == []


def _env() -> Environment:
    target = Target(url="http://127.0.0.1:9", collection="things")
    return Environment(target=target, run_id="r1", collection="things", limits=spec_limits(),
                       health={})


def _run(specs: list[CheckSpec], workers: int = 4) -> dict[str, CheckResult]:
    results = asyncio.run(run_checks(specs, _env(), workers=workers))
    return {r.id: r for r in results}


def test_outcomes_failure_skip_error_and_timeout() -> None:
    async def fails(ctx: CheckContext) -> None:
        ctx.fail("Broken", expected="A", received="B", evidence={"k": 1}, reproduce="curl x")

    async def skips(ctx: CheckContext) -> None:
        ctx.skip("not here")

    async def crashes(ctx: CheckContext) -> None:
        raise RuntimeError("boom")

    async def hangs(ctx: CheckContext) -> None:
        await asyncio.sleep(30)

    results = _run([
        spec("c-ok", ("X-001",)),
        spec("c-fail", ("X-002",), function=fails),
        spec("c-skip", ("X-003",), function=skips),
        spec("c-crash", ("X-004",), function=crashes),
        spec("c-hang", ("X-005",), function=hangs, timeout_s=0.3),
    ])
    assert results["c-ok"].status is Status.PASSED
    failed = results["c-fail"]
    assert failed.status is Status.FAILED
    assert failed.message == "Broken. Expected: A. Received: B"
    assert failed.evidence["expected"] == "A" and failed.evidence["k"] == 1
    assert failed.reproduce == "curl x" and failed.rules == ["X-002"]
    assert results["c-skip"].status is Status.SKIPPED
    assert results["c-skip"].message == "not here"
    assert results["c-crash"].status is Status.ERROR
    assert "boom" in results["c-crash"].message
    assert results["c-hang"].status is Status.ERROR
    assert "did not finish" in results["c-hang"].message


def test_exclusive_checks_run_alone() -> None:
    running: set[str] = set()
    overlaps: dict[str, set[str]] = {}

    def make(name: str) -> Any:
        async def body(ctx: CheckContext) -> None:
            running.add(name)
            await asyncio.sleep(0.05)
            overlaps[name] = set(running) - {name}
            running.discard(name)
        return body

    specs = [spec(f"c-{i}", ("X-001",), function=make(f"c-{i}")) for i in range(4)]
    specs += [spec(f"x-{i}", ("X-002",), function=make(f"x-{i}"), exclusive=True)
              for i in range(2)]
    _run(specs, workers=4)
    assert overlaps["x-0"] == set() and overlaps["x-1"] == set()
    assert any(overlaps[f"c-{i}"] for i in range(4)), "non-exclusive checks run concurrently"


def _report(*results: CheckResult) -> RunReport:
    return RunReport(target="t", started_at="2026-01-01T00:00:00Z", duration_s=1.0,
                     spec_version="1", seed=1, results=list(results))


def test_exit_code_counts_must_failures_only() -> None:
    def result(level: Level, status: Status) -> CheckResult:
        return CheckResult(id="c", title="c", level=level, rules=[], status=status)

    passed = result(Level.MUST, Status.PASSED)
    assert _report(passed, result(Level.SHOULD, Status.FAILED)).exit_code() == 0
    assert _report(passed, result(Level.MUST, Status.SKIPPED)).exit_code() == 0
    assert _report(result(Level.MUST, Status.FAILED)).exit_code() == 1
    assert _report(result(Level.MUST, Status.ERROR)).exit_code() == 1
    summary = _report(result(Level.MUST, Status.ERROR), result(Level.MAY, Status.PASSED))
    assert summary.summary() == {"passed": 1, "failed": 0, "skipped": 0, "errors": 1}


def test_a_run_that_judged_nothing_exits_2() -> None:
    skipped = CheckResult(id="c", title="c", level=Level.MUST, rules=[], status=Status.SKIPPED,
                          not_judged=NotJudged.NOT_CONFIGURED)
    report = _report(skipped)
    assert report.exit_code() == 2 and not report.conforms()
    assert report.verdict_line().startswith("NOTHING JUDGED")


def test_verdict_classes_follow_the_level() -> None:
    def result(level: Level, status: Status) -> CheckResult:
        return CheckResult(id="c", title="c", level=level, rules=[], status=status)

    assert result(Level.MUST, Status.FAILED).verdict is Verdict.FAILED
    assert result(Level.SHOULD, Status.FAILED).verdict is Verdict.NON_STRICT
    assert result(Level.MAY, Status.FAILED).verdict is Verdict.INFORMATIONAL
    assert result(Level.MAY, Status.ERROR).verdict is Verdict.ERROR
    assert result(Level.MUST, Status.SKIPPED).verdict is Verdict.NOT_JUDGED
    report = _report(result(Level.MUST, Status.PASSED), result(Level.SHOULD, Status.FAILED),
                     result(Level.MAY, Status.FAILED), result(Level.MUST, Status.SKIPPED))
    assert report.verdicts() == {"passed": 1, "failed": 0, "non-strict": 1,
                                 "informational": 1, "not-judged": 1, "error": 0}


def test_verdict_line_names_must_checks_not_judged_and_why() -> None:
    def skipped(check_id: str, why: NotJudged) -> CheckResult:
        return CheckResult(id=check_id, title=check_id, level=Level.MUST, rules=[],
                           status=Status.SKIPPED, not_judged=why)

    report = _report(
        CheckResult(id="ok", title="ok", level=Level.MUST, rules=[], status=Status.PASSED),
        skipped("cors-a", NotJudged.NOT_CONFIGURED), skipped("sel-b", NotJudged.NOT_SELECTED),
    )
    line = report.verdict_line()
    assert line.startswith("conforms") and report.exit_code() == 0
    assert "not-configured: cors-a" in line and "not-selected: sel-b" in line


def test_unobserved_is_an_error_never_a_pass() -> None:
    async def saw_nothing(ctx: CheckContext) -> None:
        ctx.unobserved("zero events received")

    (result,) = asyncio.run(run_checks([spec("c-blind", ("X-001",), function=saw_nothing)],
                                       _env()))
    assert result.status is Status.ERROR and result.verdict is Verdict.ERROR
    assert "could not observe: zero events received" in result.message
    assert _report(result).exit_code() == 1


def test_skip_records_why_it_was_not_judged() -> None:
    async def needs_origin(ctx: CheckContext) -> None:
        ctx.skip("no allowed origin declared", why="not-configured")

    (result,) = asyncio.run(run_checks([spec("c-cors", ("X-001",), function=needs_origin)],
                                       _env()))
    assert result.verdict is Verdict.NOT_JUDGED
    assert result.not_judged is NotJudged.NOT_CONFIGURED


def test_token_is_scrubbed_from_results() -> None:
    async def leaks(ctx: CheckContext) -> None:
        ctx.fail("Leak", expected="x", received="saw secret-tok in a body",
                 evidence={"headers": {"x": "secret-tok"}, "list": ["secret-tok"]},
                 reproduce="curl 'http://h/?access_token=secret-tok'")

    env = _env()
    env.target = Target(url=env.target.url, token="secret-tok", collection="things")
    (result,) = asyncio.run(run_checks([spec("c-leak", ("X-001",), function=leaks)], env))
    assert "secret-tok" not in repr((result.message, result.evidence, result.reproduce))
    assert "$TOKEN" in result.message


def test_property_layer_that_cannot_load_is_an_error_not_a_silent_skip(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from dualstore_conformance import runner as runner_module

    real = importlib.import_module

    def broken(name: str, package: str | None = None) -> object:
        if name == "dualstore_conformance.property":
            raise ImportError("schemathesis is not installed")
        return real(name, package)

    monkeypatch.setattr(runner_module.importlib, "import_module", broken)
    stage = runner_module.property_stage(_env(), 1, 5, (), ())
    assert stage is not None
    (result,) = stage()
    assert result.verdict is Verdict.ERROR and result.level is Level.MUST
    assert "did not load" in result.message and "schemathesis is not installed" in result.message
    assert _report(result).exit_code() == 1
