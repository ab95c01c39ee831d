# SPDX-License-Identifier: GPL-3.0-or-later
"""The fan-out benchmark's own parts: the naive baseline serves a stream, the client counts."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import psutil

BENCH = Path(__file__).resolve().parents[2] / "reference" / "benchmarks" / "bench_fanout.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fanout", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fanout"] = module
    spec.loader.exec_module(module)
    return module


def test_naive_baseline_delivers_every_post_to_every_subscriber() -> None:
    bench = load_bench()
    server = bench.start_naive(15.0)
    try:
        args = argparse.Namespace(rate=10.0, seconds=1.0, per_address=2)
        result = asyncio.run(bench.run_cell(server, 3, args))
    finally:
        server.stop()
    assert result["asked"] == 10 and result["posts"] == 10
    assert result["missing"] == 0 and result["dropped"] == 0
    assert 0 < result["p50"] <= result["p99"] <= result["max"]


def test_subscribers_spread_over_loopback_source_addresses() -> None:
    bench = load_bench()
    addresses = [bench.source_address(i, 50) for i in range(12550)]
    assert addresses[0] == addresses[49] == "127.0.1.1"
    assert addresses[50] == "127.0.1.2"
    assert len(set(addresses)) == 251 and addresses[-1] == "127.0.2.1"


def test_the_no_journal_reference_delivers_and_counts_its_database(tmp_path: Path) -> None:
    """--journal-off's server: its own daemon, whose process counts in RSS and CPU, and whose
    URI tells the reference not to wait for the journal; events still reach every subscriber."""
    bench = load_bench()
    server = bench.start_ours(1, 15.0, tmp_path, journal=False)
    try:
        commands = [" ".join(psutil.Process(pid).cmdline()) for pid in server.everything()]
        args = argparse.Namespace(rate=10.0, seconds=1.0, per_address=2)
        result = asyncio.run(bench.run_cell(server, 3, args))
    finally:
        server.stop()
    assert server.name == "reference/1w no journal"
    assert any("--storage-path" in command for command in commands), commands
    assert any("journal=false" in command for command in commands), commands
    assert result["asked"] == 10 and result["posts"] == 10
    assert result["missing"] == 0 and result["dropped"] == 0
