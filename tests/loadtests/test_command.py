# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore load``: flags, and whole runs against a tiny server with and without faults."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dualstore_cli.main import main
from dualstore_loadtests import command
from dualstore_reference.embedded import free_port, wait_for_port

TINY_SERVER = Path(__file__).with_name("tiny_sse_server.py")
TOKEN = "load-test-token"


def test_durations_and_rates_parse() -> None:
    assert command.parse_duration("5m") == 300
    assert command.parse_duration("1h30m") == 5400
    assert command.parse_duration("25") == 25
    assert command.parse_duration("1.5s") == 1.5
    assert command.parse_rate("10/s") == 10
    assert command.parse_rate("600/m") == 10
    assert command.parse_rate("7") == 7
    for bad in ("", "5x", "m5", "0s", "-3s"):
        with pytest.raises(ValueError):
            command.parse_duration(bad)
    for bad in ("", "ten/s", "10/fortnight", "0/s"):
        with pytest.raises(ValueError):
            command.parse_rate(bad)
    assert command.parse_size("3072") == 3072
    assert command.parse_size("3KiB") == 3072
    assert command.parse_size("1.5 MiB") == 1.5 * 1024**2
    for bad in ("", "-1", "3 GB", "lots"):
        with pytest.raises(ValueError):
            command.parse_size(bad)


@pytest.mark.parametrize("argv", [
    ["--duration", "soon"],
    ["--writers-rate", "lots"],
    ["--users", "0"],
    ["--processes", "0"],
    ["--duration", "3s"],
    ["--url", "ftp://example"],
    ["--server-pid", "1"],
    ["--heartbeat", "-1"],
    ["--memory-per-document", "a lot"],
])
def test_bad_flags_give_one_line_and_exit_2(argv: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dualstore load: error: ")
    assert "\n" not in err


def test_an_unreachable_url_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["load", "--url", url, "--smoke", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dualstore load: error: cannot reach {url}")
    assert "\n" not in err


def test_profiles_and_derived_settings() -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    full = command.plan_from_args(parser.parse_args([]))
    assert (full.users, full.duration, full.writers_rate, full.heartbeat) == (100, 300, 10, 15)
    assert (full.writers, full.idle, full.warmup, full.drain) == (5, 10, 60, 10)
    assert full.token  # the started reference gets a random token
    smoke = command.plan_from_args(parser.parse_args(["--smoke", "--users", "20"]))
    assert (smoke.users, smoke.duration, smoke.heartbeat) == (20, 25, 1.0)
    remote = command.plan_from_args(parser.parse_args(["--url", "http://127.0.0.1:9/"]))
    assert remote.url == "http://127.0.0.1:9" and remote.heartbeat == 0.0  # asked later
    # memory budget per stored document: none for a remote server unless stated; the
    # started reference's stated index cost for each of its workers
    assert remote.memory_per_document == 0
    assert full.memory_per_document == (
        command.REFERENCE_WORKERS * command.REFERENCE_INDEX_BYTES_PER_DOCUMENT)
    stated = command.plan_from_args(parser.parse_args(
        ["--url", "http://127.0.0.1:9", "--memory-per-document", "2KiB"]))
    assert stated.memory_per_document == 2048


def test_the_token_never_reaches_the_report_command_line() -> None:
    assert command.public_argv(["--token", "s3cret", "--users", "5"]) == [
        "--token", "***", "--users", "5"]
    assert command.public_argv(["--token=s3cret"]) == ["--token=***"]


def test_locust_gets_distributed_mode_and_the_run_settings(tmp_path: Path) -> None:
    plan = command.Plan(users=10, duration=25, writers_rate=10, heartbeat=1, processes=2,
                        collection="c", report_dir=tmp_path, url=None, token="t", smoke=True)
    line = command.locust_command(plan, "http://127.0.0.1:1", "run1", tmp_path / "records")
    assert line[line.index("--processes") + 1] == "2"
    assert line[line.index("-u") + 1] == "15"  # 10 subscribers + 5 writers
    assert line[line.index("--ds-write-seconds") + 1] == "22"  # drain 3 s
    assert "t" not in line  # the token goes through the environment


@pytest.fixture
def tiny_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """The tiny server, with the faults given by indirect parametrization (none by default)."""
    faults: list[str] = list(getattr(request, "param", []))
    port = free_port()
    process = subprocess.Popen(
        # Heartbeat 5 s (tolerance 1 s): these runs prove the pipeline and the fault gates,
        # and must not flake on scheduling noise of a busy 2-core machine.
        [sys.executable, str(TINY_SERVER), str(port), "--token", TOKEN, "--heartbeat", "5",
         *faults],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 15, process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_load(url: str, pid: int, report: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["load", "--url", url, "--token", TOKEN, "--smoke", "--duration", "10s",
                 "--server-pid", str(pid), "--report-dir", str(report), *extra])
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    return code, summary


def gate(summary: dict[str, Any], name: str) -> bool | None:
    verdict: bool | None = next(g["passed"] for g in summary["gates"] if g["name"] == name)
    return verdict


@pytest.mark.parametrize("tiny_server", [["--close-after", "20", "--close-fresh"]],
                         indirect=True)
def test_a_correct_server_passes_in_distributed_mode(tiny_server: tuple[str, int],
                                                     tmp_path: Path) -> None:
    url, pid = tiny_server
    code, summary = run_load(url, pid, tmp_path, "--processes", "2")
    assert code == 0, json.dumps(summary["gates"], indent=1)
    assert summary["passed"] is True
    # The server drops every first stream before any event and ends every other one after
    # 20 documents: the subscribers resumed with `since` and then with Last-Event-ID, and
    # still got everything exactly once.
    assert summary["delivery"]["reconnects"] > 10 + 10
    assert summary["delivery"]["close_reasons"].get("eof", 0) > 10
    assert summary["delivery"]["expected"] > 0 and summary["delivery"]["lost"] == 0
    assert summary["heartbeat"]["interval_seconds"] == 5.0  # read from /v1/health
    assert summary["memory"]["samples"] > 5
    for name in ("rss.png", "latency.png", "clients.png", "locust.html", "locust_stats.csv",
                 "locust.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    stats = (tmp_path / "locust_stats.csv").read_text(encoding="utf-8")
    assert "SSE deliver" in stats and "SSE heartbeat" in stats  # Locust's own report
    records = list((tmp_path / "records").glob("records-*.jsonl"))
    assert len(records) == 2  # one per Locust worker process


@pytest.mark.parametrize(
    "tiny_server", [["--drop-every", "7", "--duplicate-every", "5", "--leak-kib", "4096"]],
    indirect=True,
)
def test_dropping_duplicating_leaking_server_fails_those_gates(tiny_server: tuple[str, int],
                                                                tmp_path: Path) -> None:
    url, pid = tiny_server
    code, summary = run_load(url, pid, tmp_path)
    assert code == 1
    assert summary["passed"] is False
    assert summary["delivery"]["lost"] > 0 and summary["delivery"]["duplicated"] > 0
    assert gate(summary, "zero lost events") is False
    assert gate(summary, "zero duplicated events") is False
    # 4 MiB kept per POST, about 20 POSTs inside the short window: ~80 MiB, far past the
    # 20 MiB margin (1 MiB per POST sat on the margin and made this test a coin toss)
    assert gate(summary, "no memory growth") is False
    assert summary["memory"]["trend_growth_mib"] > 40
    # The faults are specific: what the server still does right keeps passing.
    assert gate(summary, "heartbeat gaps within tolerance") is True
    assert gate(summary, "zero 5xx") is True
    assert gate(summary, "every subscriber connected and events flowed") is True
