# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore load``: run the Locust scenario, judge the gates, write the report and charts."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from dualstore_cli.usage import UsageError
from dualstore_spec import facts

from dualstore_loadtests import charts, gates
from dualstore_loadtests.memory import RssSampler
from dualstore_loadtests.records import read_records

HELP = "Load-test an implementation: SSE subscribers and writers under Locust, with gates."

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_COLLECTION = "session_messages"
DEFAULT_HEARTBEAT = facts.current().heartbeat.default_seconds
"""The contract's default heartbeat interval, used when the server does not report one."""


@dataclass(frozen=True)
class Profile:
    """What a run does when the flags do not say otherwise."""

    users: int
    duration: float
    writers_rate: float
    heartbeat: float
    """Heartbeat interval given to the reference server this command starts."""


DEFAULT_PROFILE = Profile(users=100, duration=300.0, writers_rate=10.0, heartbeat=DEFAULT_HEARTBEAT)
SMOKE_PROFILE = Profile(users=10, duration=25.0, writers_rate=10.0, heartbeat=1.0)


def _usage_error(message: str) -> Exception:
    return UsageError(message)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)?")


def parse_duration(text: str) -> float:
    """'5m', '90s', '1h30m', '25' (seconds) -> seconds; raises ValueError otherwise."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty duration")
    total = 0.0
    position = 0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m)")
        total += float(match.group(1)) * units[match.group(2)]
        position = match.end()
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return total


def parse_rate(text: str) -> float:
    """'10/s', '600/m', '10' -> writes per second; raises ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min|h))?\s*", text.lower())
    if match is None:
        raise ValueError(f"not a rate: {text!r} (use e.g. 10/s or 600/m)")
    per = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    rate = float(match.group(1)) / per[match.group(2)]
    if rate <= 0:
        raise ValueError(f"rate must be positive: {text!r}")
    return rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the flags of ``dualstore load``."""
    parser.add_argument("--url", help="base URL of the implementation under test "
                        "(default: start the reference with the embedded database)")
    parser.add_argument("--token", help="bearer token (default: $DUALSTORE_TOKEN; with the "
                        "started reference, a random one)")
    parser.add_argument("--users", type=int, help="SSE subscribers (default 100; smoke 10)")
    parser.add_argument("--writers-rate", help="total POSTs per second, e.g. 10/s (default)")
    parser.add_argument("--duration", help="run time, e.g. 5m (default; smoke 25s)")
    parser.add_argument("--report-dir", type=Path,
                        help="where the report goes (default: ./load-report/<UTC time>)")
    parser.add_argument("--smoke", action="store_true",
                        help="short CI profile: 10 users, 25 s, 1 s heartbeat on the reference")
    parser.add_argument("--processes", type=int, default=1,
                        help="Locust processes (>1: Locust's distributed mode, 1 master + N "
                        "workers on this machine)")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION,
                        help=f"collection to write and stream (default {DEFAULT_COLLECTION})")
    parser.add_argument("--heartbeat", type=float,
                        help="the server's heartbeat interval in seconds (default: as started, "
                        "or read from /v1/health, else 15)")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="with --url: sample this local process's RSS (repeatable)")
    parser.add_argument("--memory-per-document", metavar="BYTES",
                        help="memory the server may keep per stored document, summed over "
                        "its processes (e.g. 3KiB: a vector index entry per worker); added "
                        "to the memory gate's margin for each document written after "
                        "warm-up (default: 0 with --url; the started reference's stated "
                        "index cost otherwise)")


@dataclass
class Plan:
    """A fully resolved run."""

    users: int
    duration: float
    writers_rate: float
    heartbeat: float
    processes: int
    collection: str
    report_dir: Path
    url: str | None
    token: str
    smoke: bool
    server_pids: list[int] = field(default_factory=list)
    memory_per_document: float = 0.0
    """Bytes of RSS the server may keep per stored document (all its processes)."""

    @property
    def writers(self) -> int:
        """Writer users: 2 POSTs/s each (so a POST may take 500 ms), 1 to 16."""
        return max(1, min(16, math.ceil(self.writers_rate / 2.0)))

    @property
    def idle(self) -> int:
        """Subscribers with a filter that matches nothing (heartbeat-only streams): 10 %."""
        return self.users // 10

    @property
    def warmup(self) -> float:
        """Memory warm-up: 20 % of the run, between 5 and 60 s."""
        return min(60.0, max(5.0, 0.2 * self.duration))

    @property
    def drain(self) -> float:
        """Writers stop this long before the end so that every stream can catch up."""
        return min(10.0, max(3.0, 0.1 * self.duration))


REFERENCE_WORKERS = 2
REFERENCE_INDEX_BYTES_PER_DOCUMENT = 1536
"""Per worker: the reference's in-memory vector index costs 1.26 x the raw float32 vector
per document (about 1.3 KiB at the default 256 dimensions; measured by
reference/benchmarks/bench_index_memory.py); budgeted at 1.5 x, 1.5 KiB."""

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kib|kb|mib|mb)?\s*", re.IGNORECASE)


def parse_size(text: str) -> float:
    """'3072', '3KiB', '1.5 MiB' -> bytes (KiB/KB = 1024, MiB/MB = 1024**2); ValueError else."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 3072, 3KiB or 1MiB)")
    unit = (match.group(2) or "b").lower()
    return float(match.group(1)) * {"b": 1, "kib": 1024, "kb": 1024, "mib": 1024**2,
                                    "mb": 1024**2}[unit]


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Resolve flags against the profile; raise the CLI's usage error on bad input."""
    profile = SMOKE_PROFILE if args.smoke else DEFAULT_PROFILE
    try:
        duration = parse_duration(args.duration) if args.duration else profile.duration
        rate = parse_rate(args.writers_rate) if args.writers_rate else profile.writers_rate
    except ValueError as error:
        raise _usage_error(str(error)) from None
    users = profile.users if args.users is None else args.users
    if users < 1:
        raise _usage_error("--users must be at least 1")
    if args.processes < 1:
        raise _usage_error("--processes must be at least 1")
    if duration < 8:
        raise _usage_error("--duration must be at least 8s (warm-up and drain need time)")
    if args.heartbeat is not None and args.heartbeat <= 0:
        raise _usage_error("--heartbeat must be positive")
    url = args.url.rstrip("/") if args.url else None
    if url is not None and not re.match(r"https?://[^/\s]+", url):
        raise _usage_error(f"--url must be an http(s) URL, got {args.url!r}")
    if args.server_pid and url is None:
        raise _usage_error("--server-pid only makes sense with --url")
    report_dir = args.report_dir or Path("load-report") / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%SZ")
    token = args.token or os.environ.get("DUALSTORE_TOKEN", "")
    if url is None and not token:
        token = secrets.token_urlsafe(24)
    heartbeat = args.heartbeat or (profile.heartbeat if url is None else 0.0)
    if args.memory_per_document is not None:
        try:
            per_document = parse_size(args.memory_per_document)
        except ValueError as error:
            raise _usage_error(f"--memory-per-document: {error}") from None
    else:
        per_document = (0.0 if url is not None
                        else float(REFERENCE_WORKERS * REFERENCE_INDEX_BYTES_PER_DOCUMENT))
    return Plan(users=users, duration=duration, writers_rate=rate, heartbeat=heartbeat,
                processes=args.processes, collection=args.collection, report_dir=report_dir,
                url=url, token=token, smoke=args.smoke, server_pids=list(args.server_pid),
                memory_per_document=per_document)


def server_heartbeat(url: str, token: str) -> float | None:
    """The heartbeat interval a server reports in /v1/health, if it reports one.

    Raises the CLI's usage error when nothing answers at url at all.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(f"{url}/v1/health", headers=headers, timeout=10)
    except httpx.TransportError as error:
        raise _usage_error(f"cannot reach {url}: {error or type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for key in ("heartbeat_seconds", "sse_heartbeat_seconds", "heartbeat_interval",
                "heartbeat"):
        value = body.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def locust_command(plan: Plan, url: str, run_id: str, records: Path) -> list[str]:
    """The Locust command line (the token travels in the environment)."""
    report = plan.report_dir
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(plan.users + plan.writers), "-r", str(max(5, min(plan.users, 25))),
        "-t", f"{round(plan.duration)}s", "--host", url, "--stop-timeout", "0",
        "--csv", str(report / "locust"), "--html", str(report / "locust.html"),
        "--json-file", str(report / "locust"), "--only-summary",
        "--ds-run", run_id, "--ds-collection", plan.collection, "--ds-records", str(records),
        "--ds-writers", str(plan.writers), "--ds-idle", str(plan.idle),
        "--ds-writers-rate", f"{plan.writers_rate:g}",
        "--ds-write-seconds", f"{plan.duration - plan.drain:g}",
        "--ds-heartbeat", f"{plan.heartbeat:g}",
    ]
    if plan.processes > 1:
        command += ["--processes", str(plan.processes)]
    return command


def run_locust(plan: Plan, url: str, run_id: str, records: Path) -> int:
    """Run Locust to completion; its output goes to locust.log in the report folder."""
    env = dict(os.environ, DUALSTORE_LOAD_TOKEN=plan.token, PYTHONUNBUFFERED="1")
    command = locust_command(plan, url, run_id, records)
    with (plan.report_dir / "locust.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            return process.wait(timeout=plan.duration + 120)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                return process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait()
        except BaseException:
            process.terminate()
            process.wait(timeout=20)
            raise


def _mib(value: float) -> float:
    return round(value / gates.MIB, 2)


def summarize(plan: Plan, run_id: str, records: Path,
              samples: Sequence[tuple[float, dict[int, int]]], started: float, ended: float,
              locust_exit: int, reference: bool, argv: Sequence[str]) -> dict[str, Any]:
    """Judge the run and write summary.json and the charts; returns the summary."""
    data = gates.collect(read_records(records), run_end=ended)
    result = gates.delivery(data.commits, data.subscriptions)
    totals = [(t, float(sum(by_pid.values()))) for t, by_pid in samples]
    trend = gates.memory_trend(
        totals, plan.warmup, commit_times=[c.commit for c in data.commits],
        bytes_per_document=plan.memory_per_document,
    ) if totals else None
    verdicts = gates.evaluate_gates(
        result, server_errors=data.server_errors, max_gap=data.max_gap,
        heartbeat=plan.heartbeat, memory=trend, commits=len(data.commits),
        memory_sampled=bool(samples),
    )
    latencies = [lat for _, lat in result.latencies]
    negative = sum(1 for lat in latencies if lat < 0)
    out = plan.report_dir
    with (out / "rss.csv").open("w", encoding="utf-8") as handle:
        handle.write("time,pid,rss_bytes\n")
        for t, by_pid in samples:
            for pid, rss in sorted(by_pid.items()):
                handle.write(f"{t:.3f},{pid},{rss}\n")
    chart_paths = [
        charts.rss_chart(out / "rss.png", samples, plan.warmup, trend),
        charts.latency_chart(out / "latency.png", result.latencies, started,
                             gates.LATENCY_BUDGET_P99_SECONDS,
                             bucket_seconds=2.0 if plan.duration < 60 else 10.0),
        charts.clients_chart(out / "clients.png", data.connections, started, ended),
    ]
    passed = gates.passed(verdicts)
    first_sample = totals[0][1] if totals else None
    summary: dict[str, Any] = {
        "passed": passed,
        "run": run_id,
        "command": " ".join(["dualstore", "load", *argv]),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(ended - started, 1),
        "target": "reference (started by dualstore load)" if reference else plan.url,
        "profile": {
            "smoke": plan.smoke, "subscribers": plan.users, "idle_subscribers": plan.idle,
            "writers": plan.writers, "writers_rate_per_second": plan.writers_rate,
            "duration_seconds": plan.duration, "writers_stop_before_end_seconds": plan.drain,
            "heartbeat_seconds": plan.heartbeat, "locust_processes": plan.processes,
            "collection": plan.collection,
        },
        "gates": [gate.as_dict() for gate in verdicts],
        "delivery": {
            "subscribers": result.subscribers, "never_connected": result.never_connected,
            "expected": result.expected, "received": result.received, "lost": result.lost,
            "duplicated": result.duplicated, "unexpected": result.unexpected,
            "out_of_order": result.out_of_order,
            "lost_examples": result.lost_examples,
            "latency_seconds": {
                **{k: round(v, 4) for k, v in gates.percentiles(latencies).items()},
                **({"max": round(max(latencies), 4)} if latencies else {}),
                "samples": len(latencies),
                "received_before_post_returned": negative,
            },
            "reconnects": data.reconnects,
            "close_reasons": dict(data.close_reasons),
        },
        "writes": {
            "committed": len(data.commits), "failed": data.write_errors,
            "achieved_per_second": round(len(data.commits) / max(plan.duration - plan.drain,
                                                                1.0), 2),
        },
        "server_errors_5xx": data.server_errors,
        "heartbeat": {
            "interval_seconds": plan.heartbeat,
            "limit_seconds": round(plan.heartbeat + gates.heartbeat_tolerance(plan.heartbeat),
                                   3),
            "max_gap_seconds": None if data.max_gap is None else round(data.max_gap, 3),
        },
        "memory": {
            "sampled_pids": sorted({pid for _, by_pid in samples for pid in by_pid}),
            "samples": len(samples),
            "warmup_seconds": plan.warmup,
            "rss_start_mib": None if first_sample is None else _mib(first_sample),
            "rss_after_warmup_mib": None if trend is None else _mib(trend.start_bytes),
            "rss_end_mib": _mib(totals[-1][1]) if totals else None,
            "rss_peak_mib": _mib(max(v for _, v in totals)) if totals else None,
            "trend_growth_mib": None if trend is None else _mib(trend.growth_bytes),
            "trend_limit_mib": None if trend is None else _mib(trend.allowed_bytes),
            "slope_kib_per_minute": None if trend is None
            else round(trend.slope_bytes_per_second * 60 / 1024, 1),
            "documents_in_window": None if trend is None else trend.documents,
            "allowed_bytes_per_document": plan.memory_per_document,
            "data_allowance_mib": None if trend is None else _mib(trend.data_allowance_bytes),
            "growth_bytes_per_document": None if trend is None or not trend.documents
            else round(trend.growth_bytes / trend.documents),
        },
        "locust": {"exit_code": locust_exit, "csv_prefix": "locust", "html": "locust.html",
                   "json": "locust.json", "log": "locust.log"},
        "charts": [path.name for path in chart_paths if path is not None],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def print_verdict(summary: dict[str, Any]) -> None:
    """One line per gate, then the overall verdict."""
    for gate in summary["gates"]:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[gate["passed"]]
        print(f"  {mark}  {gate['name']}: {gate['measured']} (limit {gate['limit']})")
        if gate["passed"] is False and gate["detail"]:
            print(f"        {gate['detail']}")
    latency = summary["delivery"]["latency_seconds"]
    memory = summary["memory"]
    print(f"  latency s: p50 {latency.get('p50')} p99 {latency.get('p99')} "
          f"max {latency.get('max')}; RSS MiB start {memory['rss_start_mib']} "
          f"end {memory['rss_end_mib']}")
    if summary["locust"]["exit_code"] not in (0, 1):
        print(f"  Locust exited with code {summary['locust']['exit_code']}: see locust.log")
    print("load test " + ("PASSED" if summary["passed"] else "FAILED"))


StartReference = Callable[..., Any]


def _start_reference(plan: Plan) -> Any:
    from dualstore_reference.launcher import start_reference

    env = {
        "AUTH_TOKEN": plan.token,
        "SSE_HEARTBEAT_SECONDS": f"{plan.heartbeat:g}",
        # Every simulated client comes from 127.0.0.1: lift the per-IP stream cap above
        # the subscriber count (leaving rate limits at their production defaults).
        "STREAM_CAP_PER_IP": str(plan.users + 20),
    }
    return start_reference(env=env, workers=REFERENCE_WORKERS)


def _keep_server_log(server: Any, target: Path) -> None:
    """Copy the started reference's log into the report (its data folder is removed)."""
    source = getattr(server, "log_path", None)
    if isinstance(source, Path) and source.exists():
        target.write_bytes(source.read_bytes())


def execute(plan: Plan, argv: Sequence[str] = (),
            pids: Callable[[], Iterable[int]] | None = None) -> dict[str, Any]:
    """Run a resolved plan end to end; returns the summary (also written to disk)."""
    plan.report_dir.mkdir(parents=True, exist_ok=True)
    records = plan.report_dir / "records"
    records.mkdir(exist_ok=True)
    for stale in records.glob("records-*.jsonl"):
        stale.unlink()
    run_id = uuid.uuid4().hex[:12]
    server = None
    url = plan.url
    try:
        if url is None:
            print(f"starting the reference ({REFERENCE_WORKERS} workers, "
                  f"heartbeat {plan.heartbeat:g} s) ...")
            server = _start_reference(plan)
            url = str(server.url).rstrip("/")
            pids = server.pids
        else:
            reported = server_heartbeat(url, plan.token)  # also: is anything there?
            if not plan.heartbeat:
                plan.heartbeat = reported or DEFAULT_HEARTBEAT
            if pids is None and plan.server_pids:
                fixed = list(plan.server_pids)
                pids = lambda: fixed  # noqa: E731
        sampler = RssSampler(pids, interval=1.0).start() if pids is not None else None
        print(f"load run {run_id}: {plan.users} subscribers ({plan.idle} idle), "
              f"{plan.writers} writers at {plan.writers_rate:g}/s for {plan.duration:g} s "
              f"against {url} -> {plan.report_dir}")
        started = time.time()
        try:
            exit_code = run_locust(plan, url, run_id, records)
        finally:
            if sampler is not None:
                sampler.stop()
        ended = time.time()
    finally:
        if server is not None:
            _keep_server_log(server, plan.report_dir / "server.log")
            server.close()
    samples = sampler.samples if sampler is not None else []
    return summarize(plan, run_id, records, samples, started, ended, exit_code,
                     reference=plan.url is None, argv=argv)


def public_argv(argv: Sequence[str]) -> list[str]:
    """The command's arguments with a --token value masked (for the report)."""
    masked: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            masked.append("***")
            hide = False
        elif arg == "--token":
            masked.append(arg)
            hide = True
        elif arg.startswith("--token="):
            masked.append("--token=***")
        else:
            masked.append(arg)
    return masked


def run(args: argparse.Namespace) -> int:
    """Entry point of ``dualstore load``: 0 when every gate passes, 1 otherwise."""
    plan = plan_from_args(args)
    argv = public_argv(sys.argv[2:] if sys.argv[1:2] == ["load"] else [])
    summary = execute(plan, argv=argv)
    print_verdict(summary)
    print(f"report: {plan.report_dir}")
    return 0 if summary["passed"] else 1
