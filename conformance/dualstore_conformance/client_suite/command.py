# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore conform-client``: judge an SSE client through its adapter and report."""

from __future__ import annotations

import argparse
from pathlib import Path

from dualstore_cli.usage import UsageError

from dualstore_conformance.client_suite import reports, runner
from dualstore_conformance.client_suite.launcher import AdapterError, describe
from dualstore_conformance.client_suite.scenarios import Scenario, ScenarioError, load_all

HELP = "Judge an SSE client (through an adapter command) against scripted SSE servers."

DESCRIBE_TIMEOUT_S = 600.0
"""The first run of a third-party adapter may install its library from its registry."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The conform-client flags."""
    parser.add_argument("--adapter", required=True, metavar="CMD",
                        help="adapter command; run as CMD URL, prints JSON lines (see "
                        "dualstore_conformance/client_suite/adapters/protocol.py)")
    parser.add_argument("--only", action="append", metavar="IDS",
                        help="run only these scenario ids, id prefixes, groups or cited rule "
                        "ids (CSV, repeatable)")
    parser.add_argument("--skip", action="append", metavar="IDS",
                        help="skip these scenario ids, id prefixes, groups or rules")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report")
    parser.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    parser.add_argument("--html", metavar="PATH", help="write an HTML report")
    parser.add_argument("--timeout-multiplier", type=float, default=1.0, metavar="F",
                        help="scale the harness's own waits (startup, scenario timeout, "
                        "settle time; never a tolerance a scenario states) for slow machines")


def _tokens(values: list[str] | None) -> list[str]:
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def _matches(scenario: Scenario, token: str) -> bool:
    return (scenario.id == token or scenario.id.startswith(token) or scenario.group == token
            or token in scenario.cite)


def select(scenarios: list[Scenario], only: list[str], skip: list[str]) -> list[Scenario]:
    """The scenarios --only/--skip leave; a token that matches nothing is a usage error."""
    for token in only + skip:
        if not any(_matches(s, token) for s in scenarios):
            raise UsageError(f"no scenario matches {token!r} (see --list)")
    chosen = [s for s in scenarios if not only or any(_matches(s, t) for t in only)]
    return [s for s in chosen if not any(_matches(s, t) for t in skip)]


def _validate(args: argparse.Namespace) -> None:
    if not args.timeout_multiplier > 0:
        raise UsageError("--timeout-multiplier must be positive")
    for flag in ("junit", "json", "html"):
        value = getattr(args, flag)
        if value and not Path(value).resolve().parent.is_dir():
            raise UsageError(f"--{flag}: folder of {value!r} does not exist")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``dualstore conform-client``."""
    _validate(args)
    try:
        scenarios = load_all()
    except ScenarioError as error:
        raise UsageError(f"bundled scenarios are broken: {error}") from error
    selected = select(scenarios, _tokens(args.only), _tokens(args.skip))
    if args.list:
        for scenario in selected:
            print(f"{scenario.id}\t{scenario.level}\t{','.join(scenario.profiles)}\t"
                  f"{scenario.title}")
        return 0
    try:
        hello = describe(args.adapter, "http://127.0.0.1:9/describe", DESCRIBE_TIMEOUT_S)
    except AdapterError as error:
        raise UsageError(f"could not run the adapter: {error}") from error
    label = f"{hello.get('client')} {hello.get('version', '')}".strip()
    print(f"judging {label} ({hello.get('profile')} profile, features: "
          f"{', '.join(hello.get('features', [])) or 'none'}) on {len(selected)} scenarios",
          flush=True)
    left_out = [s for s in scenarios if s not in selected]
    report = runner.run_all(args.adapter, hello, selected, progress=reports.print_result,
                            left_out=left_out,
                            timeout_multiplier=args.timeout_multiplier)
    reports.print_summary(report)
    if args.json:
        reports.write_json(report, args.json)
    if args.junit:
        reports.write_junit(report, args.junit)
    if args.html:
        reports.write_html(report, args.html)
    return report.exit_code()
