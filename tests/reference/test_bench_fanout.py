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
import pytest
from dualstore_reference.embedded import EmbeddedDatabase
from pymongo import MongoClient

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


def test_without_journal_sets_journal_false_and_keeps_the_rest() -> None:
    bench = load_bench()
    uri = "mongodb://a:1,b:2/old?replicaSet=rs&journal=true"
    assert bench.with_database(uri, "fresh") == "mongodb://a:1,b:2/fresh?replicaSet=rs&journal=true"
    assert (
        bench.without_journal(bench.with_database(uri, "fresh"))
        == "mongodb://a:1,b:2/fresh?replicaSet=rs&journal=false"
    )
    assert bench.with_database("mongodb://h", "x") == "mongodb://h/x"


def test_a_uri_that_is_not_mongodb_is_refused() -> None:
    bench = load_bench()
    assert bench.mongodb_uri("mongodb+srv://cluster/") == "mongodb+srv://cluster/"
    with pytest.raises(argparse.ArgumentTypeError, match="not a MongoDB URI"):
        bench.mongodb_uri("http://localhost:27017")


def test_an_external_database_gets_a_fresh_database_dropped_after(tmp_path: Path) -> None:
    """--mongodb-uri: the reference stores in a database of its own on that server, and the
    benchmark drops it when the server stops; the external daemon is not counted."""
    bench = load_bench()
    external = EmbeddedDatabase().start()
    client: MongoClient[dict[str, object]] = MongoClient(external.uri)
    try:
        server = bench.start_ours(1, 15.0, tmp_path, mongodb_uri=external.uri)
        try:
            counted = server.everything()
            args = argparse.Namespace(rate=10.0, seconds=1.0, per_address=2)
            result = asyncio.run(bench.run_cell(server, 3, args))
            names = [n for n in client.list_database_names() if n.startswith("dualstore_bench_")]
            stored = client[names[0]][bench.COLLECTION].count_documents({}) if names else 0
        finally:
            server.stop()
        left = [n for n in client.list_database_names() if n.startswith("dualstore_bench_")]
    finally:
        client.close()
        external.stop()
    assert server.name == "reference/1w external db"
    assert external.process is not None and external.process.pid not in counted
    assert result["posts"] == 10 and result["missing"] == 0 and result["dropped"] == 0
    assert len(names) == 1 and stored == 10
    assert left == []
