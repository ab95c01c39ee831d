# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore conform``: judge an implementation (or the bundled reference) and report."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from dualstore_cli.usage import UsageError

from dualstore_conformance import runner
from dualstore_conformance.environment import TargetUnreachable
from dualstore_conformance.model import Level, Target
from dualstore_conformance.profile import (
    DeploymentProfile,
    ProfileError,
    from_arguments,
    is_origin,
)
from dualstore_conformance.reports import html as html_report
from dualstore_conformance.reports import json_report, junit
from dualstore_conformance.reports.console import Console
from dualstore_conformance.run_model import RunConfig
from dualstore_conformance.selection import SelectionError, split_ids

HELP = "Judge an implementation against the spec (starts the reference when --url is absent)."

TOKEN_ENV = "DUALSTORE_TOKEN"
"""Read when --token is not given (keeps the token out of process listings)."""
CORS_ORIGIN_ENV = "DUALSTORE_CORS_ORIGIN"
"""Read when --cors-origin is not given."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The conform flags (pinned by the issue: keep names and meaning)."""
    parser.add_argument("--url", help="base URL of the target (without /v1); default: start "
                        "the reference on the embedded store in a temporary folder")
    parser.add_argument("--token", help=f"bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--collection", metavar="NAME",
                        help="collection to write to (default: first of /v1/collections)")
    parser.add_argument("--heartbeat-seconds", type=float, metavar="S",
                        help="heartbeat interval the target uses (default: health's "
                        "heartbeat_seconds, else the spec's default interval)")
    parser.add_argument("--only", action="append", metavar="IDS",
                        help="run only these check ids, id prefixes or rule ids (CSV, repeatable)")
    parser.add_argument("--skip", action="append", metavar="IDS",
                        help="skip these check ids, id prefixes or rule ids (CSV, repeatable)")
    parser.add_argument("--level", choices=["must", "should", "may"], default="may",
                        help="lowest rule level to check (default: may = everything)")
    parser.add_argument("--seed", type=int, metavar="N", help="property-layer seed")
    parser.add_argument("--max-examples", type=int, default=25, metavar="N",
                        help="property-layer examples per operation (default 25)")
    parser.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report")
    parser.add_argument("--html", metavar="PATH", help="write an HTML report")
    parser.add_argument("--workers", type=int, default=8, metavar="N",
                        help="checks run at once (default 8; exclusive checks run alone)")
    parser.add_argument("--timeout-multiplier", type=float, default=1.0, metavar="F",
                        help="scale every timeout (slow targets or CI machines)")
    parser.add_argument("--cors-origin", metavar="ORIGIN",
                        help="an origin on the target's CORS allow-list, for the allowed-origin "
                        f"CORS checks (default: ${CORS_ORIGIN_ENV}; skipped without either)")
    parser.add_argument("--stream-cap", type=int, metavar="N",
                        help="the deployment's per-IP stream cap (default: the spec's)")
    parser.add_argument("--rate-limit", metavar="PER_SECOND[/BURST]",
                        help="the deployment's rate limit, e.g. 10/20, or 'none' when it does "
                        "not rate limit (default: the spec's); the harness paces itself under it")
    parser.add_argument("--profile", metavar="FILE",
                        help="deployment profile (YAML or JSON): every value the spec lets a "
                        "deployment configure; flags override it, the spec gives the rest")


def _validate(args: argparse.Namespace) -> None:
    if args.url is not None:
        parsed = urlparse(args.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--url must be an http(s) URL, got {args.url!r}")
    if args.heartbeat_seconds is not None and not args.heartbeat_seconds > 0:
        raise UsageError("--heartbeat-seconds must be positive")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.cors_origin is not None and not is_origin(args.cors_origin):
        raise UsageError(f"--cors-origin must be an origin like https://app.example, "
                         f"got {args.cors_origin!r}")
    if not args.timeout_multiplier > 0:
        raise UsageError("--timeout-multiplier must be positive")
    if args.max_examples < 1:
        raise UsageError("--max-examples must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise UsageError("--seed must be a non-negative integer")
    if args.stream_cap is not None and args.stream_cap < 1:
        raise UsageError("--stream-cap must be at least 1")
    if args.profile is not None and not Path(args.profile).is_file():
        raise UsageError(f"--profile: no such file {args.profile!r}")
    build_profile(args, args.cors_origin)  # a bad --profile / --rate-limit: exit 2 now
    for flag in ("junit", "json", "html"):
        value = getattr(args, flag)
        if value and not Path(value).resolve().parent.is_dir():
            raise UsageError(f"--{flag}: folder of {value!r} does not exist")


def build_profile(args: argparse.Namespace, cors_origin: str | None) -> DeploymentProfile:
    """The deployment profile from --profile and the flags (UsageError when unusable)."""
    try:
        return from_arguments(args, cors_origin)
    except ProfileError as error:
        raise UsageError(str(error)) from error


REFERENCE_ORIGIN = "http://conformance.invalid"
"""The CORS origin the bundled reference is started with (so the CORS checks run)."""


@contextlib.contextmanager
def _reference(token: str) -> Iterator[str]:
    """Start the reference on the embedded store in a temporary folder, with auth and CORS
    enabled so that the auth and CORS checks have something to judge."""
    try:
        launcher = importlib.import_module("dualstore_reference.launcher")
    except ImportError as error:
        raise UsageError(f"cannot start the reference server ({error}); pass --url") from error
    env = {"AUTH_TOKEN": token, "CORS_ORIGIN": REFERENCE_ORIGIN}
    with tempfile.TemporaryDirectory(prefix="dualstore-conform-") as folder:
        print("starting the reference server (embedded store) ...", file=sys.stderr)
        try:
            server = launcher.start_reference(env=env, data_dir=Path(folder))
        except Exception as error:
            raise UsageError(f"the reference server did not start: {error}") from error
        try:
            print(f"reference server at {server.url}", file=sys.stderr)
            yield str(server.url)
        finally:
            server.stop()


def run_command(args: argparse.Namespace) -> int:
    """Run with a known URL (the reference started already when needed)."""
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    cors_origin = args.cors_origin or os.environ.get(CORS_ORIGIN_ENV) or None
    profile = build_profile(args, cors_origin)
    if cors_origin is None and profile.cors_origins:
        cors_origin = profile.cors_origins[0]
    target = Target(
        url=args.url.rstrip("/"),
        token=token,
        collection=args.collection,
        heartbeat_seconds=profile.heartbeat_seconds,
        timeout_multiplier=args.timeout_multiplier,
        cors_origin=cors_origin,
        profile=profile,
    )
    config = RunConfig(
        target=target,
        only=split_ids(args.only),
        skip=split_ids(args.skip),
        level=Level(args.level.upper()),
        seed=args.seed,
        max_examples=args.max_examples,
        workers=args.workers,
        heartbeat_from_health="heartbeat_seconds" not in profile.declared,
    )
    console = Console()
    try:
        report = runner.run(config, console)
    except TargetUnreachable as error:
        raise UsageError(str(error)) from error
    except SelectionError as error:
        raise UsageError(str(error)) from error
    console.summary(report)
    if args.json:
        json_report.write(report, args.json)
    if args.junit:
        junit.write(report, args.junit)
    if args.html:
        html_report.write(report, args.html)
    return report.exit_code()


def run(args: argparse.Namespace) -> int:
    """Entry point of ``dualstore conform``."""
    _validate(args)
    if args.url:
        return run_command(args)
    token = args.token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    args.token = token
    args.cors_origin = REFERENCE_ORIGIN
    with _reference(token) as url:
        args.url = url
        return run_command(args)
