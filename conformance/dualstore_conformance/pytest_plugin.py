# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest plugin: the conformance checks as pytest items (inert without --dualstore-url).

Installed with the package (entry point ``dualstore`` in ``pytest11``). Usage::

    pytest --dualstore-url http://127.0.0.1:4261 [--dualstore-token T]
           [--dualstore-collection NAME] [--dualstore-heartbeat-seconds S]
           [--dualstore-only IDS] [--dualstore-skip IDS] [--dualstore-level must|should|may]
           [--dualstore-workers N] [--dualstore-timeout-multiplier F]
           [--dualstore-xfail expected-failures.yaml] [--dualstore-property]

Every selected check becomes one item ``dualstore::<check-id>`` (``-k`` works on check ids).
All selected checks run once, concurrently, when the first item runs; each item then
reports its own outcome (failure text: expected, received, rule IDs and a curl command).

Expected failures: ``--dualstore-xfail FILE`` names a YAML mapping ``{check-id: reason}``.
A listed check that fails is reported as xfailed; a listed check that passes FAILS the run
(strict: a fixed failure must be noticed and the entry removed). Unknown ids in the file
are a usage error.

Fixtures (only meaningful with --dualstore-url): ``dualstore_target`` (the
``model.Target``), ``dualstore_report`` (the ``run_model.RunReport`` of the run, running it
when needed), ``dualstore_result(check_id)`` (one ``CheckResult``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from dualstore_conformance.model import CheckResult, Level, Status, Target
from dualstore_conformance.profile import ProfileError, from_arguments

_STATE = pytest.StashKey[dict[str, Any]]()
ITEM_PREFIX = "dualstore::"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the --dualstore-* options."""
    group = parser.getgroup("dualstore", "DualStore HTTP conformance checks")
    group.addoption("--dualstore-url", default=None, help="target base URL (enables the plugin)")
    group.addoption("--dualstore-token", default=None, help="bearer token for the target")
    group.addoption("--dualstore-collection", default=None, help="collection to write to")
    group.addoption("--dualstore-heartbeat-seconds", type=float, default=None,
                    help="heartbeat interval of the target "
                         "(default: health's, else the spec's default)")
    group.addoption("--dualstore-timeout-multiplier", type=float, default=1.0)
    group.addoption("--dualstore-cors-origin", default=None,
                    help="an origin on the target's CORS allow-list (default: "
                    "$DUALSTORE_CORS_ORIGIN; the allowed-origin checks skip without either)")
    group.addoption("--dualstore-workers", type=int, default=8)
    group.addoption("--dualstore-stream-cap", type=int, default=None,
                    help="the deployment's per-IP stream cap (default: the spec's)")
    group.addoption("--dualstore-rate-limit", default=None, metavar="PER_SECOND[/BURST]",
                    help="the deployment's rate limit or 'none' (default: the spec's)")
    group.addoption("--dualstore-profile", default=None, metavar="FILE",
                    help="deployment profile file (YAML/JSON); flags override it")
    group.addoption("--dualstore-only", default=None, help="check ids / prefixes / rule ids (CSV)")
    group.addoption("--dualstore-skip", default=None, help="check ids / prefixes / rule ids (CSV)")
    group.addoption("--dualstore-level", default="may", choices=["must", "should", "may"])
    group.addoption("--dualstore-xfail", default=None, help="YAML {check-id: reason} (strict)")
    group.addoption("--dualstore-property", action="store_true", default=False,
                    help="also run the Schemathesis layer as one item")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (always, for --strict-markers)."""
    config.addinivalue_line("markers", "dualstore: a DualStore HTTP conformance check")


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("--dualstore-url", default=None))


def _target(config: pytest.Config) -> Target:
    heartbeat = config.getoption("--dualstore-heartbeat-seconds")
    cors_origin = config.getoption("--dualstore-cors-origin")
    flags = argparse.Namespace(
        profile=config.getoption("--dualstore-profile"),
        stream_cap=config.getoption("--dualstore-stream-cap"),
        rate_limit=config.getoption("--dualstore-rate-limit"),
        heartbeat_seconds=heartbeat,
    )
    try:
        profile = from_arguments(flags, cors_origin)
    except ProfileError as error:
        raise pytest.UsageError(f"dualstore: {error}") from None
    return Target(
        url=str(config.getoption("--dualstore-url")).rstrip("/"),
        token=config.getoption("--dualstore-token"),
        collection=config.getoption("--dualstore-collection"),
        heartbeat_seconds=profile.heartbeat_seconds,
        timeout_multiplier=float(config.getoption("--dualstore-timeout-multiplier")),
        heartbeat_explicit=bool(heartbeat),
        cors_origin=cors_origin or (profile.cors_origins[0] if profile.cors_origins else None),
        profile=profile,
    )


def load_xfail(path: str | Path, known: Iterable[str]) -> dict[str, str]:
    """Read an expected-failures file; UsageError on a bad shape or an unknown check id."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise pytest.UsageError(f"--dualstore-xfail: cannot read {path}: {error}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise pytest.UsageError(f"--dualstore-xfail: {path} must map check ids to reasons")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise pytest.UsageError(f"--dualstore-xfail: unknown check ids {unknown} in {path}")
    return {k: str(v or "expected failure") for k, v in data.items()}


class DualstoreFailure(Exception):
    """A check failed (shown without a Python traceback)."""


class DualstoreItem(pytest.Item):
    """One conformance check."""

    def __init__(self, *, check_id: str, title: str, rules: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_id = check_id
        self.title = title
        self.rules = rules
        self.add_marker("dualstore")
        self.user_properties.append(("rules", ",".join(rules)))

    def runtest(self) -> None:
        """Look up (running the suite when needed) this check's result and report it."""
        state = self.config.stash[_STATE]
        result = _result(self.session, self.check_id)
        expected_failure = state["xfail"].get(self.check_id)
        bad = result.status in (Status.FAILED, Status.ERROR)
        if expected_failure is not None:
            if bad:
                pytest.xfail(f"{expected_failure} ({result.message[:200]})")
            raise DualstoreFailure(
                f"[XPASS(strict)] {self.check_id} is listed as an expected failure "
                f"({expected_failure!r}) but it {result.status.value}: remove it from "
                f"{state['xfail_path']}"
            )
        if result.status is Status.SKIPPED:
            pytest.skip(result.message or "not applicable")
        if bad:
            raise DualstoreFailure(_describe(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        """Failures are shown as text, not as harness tracebacks."""
        if isinstance(excinfo.value, DualstoreFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        """Location shown in reports: the check id and its rules."""
        return "dualstore", None, f"{self.check_id} [{', '.join(self.rules)}] {self.title}"


def _describe(result: CheckResult) -> str:
    lines = [f"{result.status.value.upper()} {result.id} [{', '.join(result.rules)}] "
             f"{result.title} ({result.level.value})"]
    if "expected" in result.evidence:
        lines.append(f"expected: {result.evidence['expected']}")
        lines.append(f"received: {result.evidence['received']}")
    else:
        lines.append(result.message)
    if result.reproduce:
        lines.append(f"reproduce: {result.reproduce}")
    return "\n".join(lines)


class DualstoreSuite(pytest.Collector):
    """The collector holding one item per selected check."""

    def collect(self) -> list[pytest.Item]:
        """Items for the checks chosen by --dualstore-only/-skip/-level."""
        from dualstore_conformance import selection
        from dualstore_conformance.registry import load_all

        config = self.config
        specs = load_all()
        try:
            chosen = selection.select(
                specs,
                selection.split_ids(config.getoption("--dualstore-only")),
                selection.split_ids(config.getoption("--dualstore-skip")),
                Level(str(config.getoption("--dualstore-level")).upper()),
            )
        except selection.SelectionError as error:
            raise pytest.UsageError(f"dualstore: {error}") from None
        items: list[pytest.Item] = [
            DualstoreItem.from_parent(
                self, name=spec.id, check_id=spec.id, title=spec.title, rules=list(spec.rules)
            )
            for spec in chosen
        ]
        if config.getoption("--dualstore-property"):
            items.append(DualstoreItem.from_parent(
                self, name=selection.PROPERTY_STAGE_ID, check_id=selection.PROPERTY_STAGE_ID,
                title="Property layer (Schemathesis)", rules=[],
            ))
        return items


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the conformance items (before -k / -m deselection sees the list)."""
    if not _active(config):
        return
    from dualstore_conformance.registry import load_all

    xfail_path = config.getoption("--dualstore-xfail")
    known = set(load_all())
    config.stash[_STATE] = {
        "xfail": load_xfail(xfail_path, known | {"property"}) if xfail_path else {},
        "xfail_path": xfail_path,
        "results": None,
        "report": None,
    }
    suite = DualstoreSuite.from_parent(session, name="dualstore")
    items.extend(item for item in suite.collect())


def _run_suite(session: pytest.Session) -> dict[str, CheckResult]:
    """Run every still-selected check once (concurrently) and cache the results."""
    from dualstore_conformance import environment, run_model, runner, selection

    state = session.config.stash[_STATE]
    if state["results"] is not None:
        results: dict[str, CheckResult] = state["results"]
        return results
    config = session.config
    ids = [item.check_id for item in session.items if isinstance(item, DualstoreItem)]
    check_ids = [i for i in ids if i != selection.PROPERTY_STAGE_ID]
    run_config = run_model.RunConfig(
        target=_target(config),
        only=check_ids or [selection.PROPERTY_STAGE_ID],
        level=Level.MAY,
        workers=int(config.getoption("--dualstore-workers")),
        property_layer=selection.PROPERTY_STAGE_ID in ids,
        heartbeat_from_health=config.getoption("--dualstore-heartbeat-seconds") is None,
    )
    if run_config.target.profile is not None and \
            "heartbeat_seconds" in run_config.target.profile.declared:
        run_config.heartbeat_from_health = False
    try:
        report = runner.run(run_config)
    except (environment.TargetUnreachable, selection.SelectionError) as error:
        raise pytest.UsageError(f"dualstore: {error}") from None
    state["report"] = report
    collected: dict[str, CheckResult] = {r.id: r for r in report.results}
    property_results = [r for r in report.results
                        if r.id.startswith(selection.PROPERTY_STAGE_ID)]
    if selection.PROPERTY_STAGE_ID in ids:
        collected[selection.PROPERTY_STAGE_ID] = _property_summary(property_results)
    state["results"] = collected
    return collected


def _property_summary(results: list[CheckResult]) -> CheckResult:
    bad = [r for r in results if r.level is Level.MUST and r.status in (Status.FAILED,
                                                                         Status.ERROR)]
    if not results:
        return CheckResult(id="property", title="Property layer (Schemathesis)",
                           level=Level.MUST, rules=[], status=Status.SKIPPED,
                           message="property layer not available")
    return CheckResult(
        id="property", title="Property layer (Schemathesis)", level=Level.MUST,
        rules=sorted({rule for r in results for rule in r.rules}),
        status=Status.FAILED if bad else Status.PASSED,
        message="; ".join(f"{r.id}: {r.message[:200]}" for r in bad),
    )


def _result(session: pytest.Session, check_id: str) -> CheckResult:
    results = _run_suite(session)
    if check_id not in results:
        return CheckResult(id=check_id, title=check_id, level=Level.MUST, rules=[],
                           status=Status.ERROR, message="the check produced no result")
    return results[check_id]


@pytest.fixture(scope="session")
def dualstore_target(request: pytest.FixtureRequest) -> Target:
    """The target given with --dualstore-url (skips the test without it)."""
    if not _active(request.config):
        pytest.skip("needs --dualstore-url")
    return _target(request.config)


@pytest.fixture(scope="session")
def dualstore_report(request: pytest.FixtureRequest) -> Any:
    """The RunReport of this session's conformance run (runs it when needed)."""
    if not _active(request.config):
        pytest.skip("needs --dualstore-url")
    _run_suite(request.session)
    return request.config.stash[_STATE]["report"]


@pytest.fixture(scope="session")
def dualstore_result(request: pytest.FixtureRequest) -> Callable[[str], CheckResult]:
    """``dualstore_result("check-id")`` -> that check's CheckResult."""
    if not _active(request.config):
        pytest.skip("needs --dualstore-url")
    return lambda check_id: _result(request.session, check_id)
