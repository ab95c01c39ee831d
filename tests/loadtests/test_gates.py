# SPDX-License-Identifier: GPL-3.0-or-later
"""Gate logic on synthetic data: lost/duplicate detection, memory trend, heartbeat gaps."""

from __future__ import annotations

import random

import pytest
from dualstore_loadtests import gates
from dualstore_loadtests import records as rec
from dualstore_loadtests.gates import Commit, Receipt, Subscription

MIB = gates.MIB


def commits(n: int, start: float = 100.0, every: float = 0.1) -> list[Commit]:
    """n commits, one every `every` seconds, each committed 5 ms after sending."""
    return [Commit(f"d{i}", start + i * every, start + i * every + 0.005) for i in range(n)]


def receive_all(docs: list[Commit], delay: float = 0.01) -> list[Receipt]:
    return [Receipt(c.doc, c.commit + delay) for c in docs]


def judge(result: gates.DeliveryResult, **overrides: object) -> dict[str, bool | None]:
    arguments: dict[str, object] = {
        "server_errors": 0, "max_gap": 1.0, "heartbeat": 1.0, "memory": None,
        "commits": 10, "memory_sampled": False,
    }
    arguments.update(overrides)
    verdicts = gates.evaluate_gates(result, **arguments)  # type: ignore[arg-type]
    return {g.name: g.passed for g in verdicts}


def test_complete_delivery_passes_and_measures_latency() -> None:
    docs = commits(50)
    sub = Subscription("s1", opened=99.0, ended=200.0, receipts=receive_all(docs, 0.02))
    result = gates.delivery(docs, [sub])
    assert (result.expected, result.lost, result.duplicated, result.unexpected) == (50, 0, 0, 0)
    assert len(result.latencies) == 50
    assert all(lat == pytest.approx(0.02) for _, lat in result.latencies)
    assert gates.passed(gates.evaluate_gates(result, server_errors=0, max_gap=1.0,
                                             heartbeat=1.0, memory=None, commits=50,
                                             memory_sampled=False))


def test_a_missing_event_is_lost_and_fails_the_gate() -> None:
    docs = commits(50)
    received = [r for r in receive_all(docs) if r.doc != "d17"]
    sub = Subscription("s1", opened=99.0, ended=200.0, receipts=received)
    result = gates.delivery(docs, [sub])
    assert result.lost == 1
    assert result.lost_examples == [{"subscriber": "s1", "doc": "d17"}]
    assert judge(result)["zero lost events"] is False


def test_duplicates_count_across_reconnections() -> None:
    docs = commits(20)
    received = [*receive_all(docs), Receipt("d3", 500.0), Receipt("d3", 501.0)]
    sub = Subscription("s1", opened=99.0, ended=600.0, receipts=received)
    result = gates.delivery(docs, [sub])
    assert result.duplicated == 2
    assert result.lost == 0
    assert judge(result)["zero duplicated events"] is False


def test_streams_must_share_one_delivery_order() -> None:
    docs = commits(30)
    a = Subscription("a", 99.0, 200.0, receipts=receive_all(docs))
    b = Subscription("b", 100.95, 200.0, receipts=receive_all(docs[10:]))  # joined late
    assert gates.delivery(docs, [a, b]).out_of_order == 0
    swapped = receive_all(docs)
    swapped[5], swapped[6] = Receipt(swapped[6].doc, swapped[5].t), Receipt(swapped[5].doc,
                                                                             swapped[6].t)
    c = Subscription("c", 99.0, 200.0, receipts=swapped)
    result = gates.delivery(docs, [a, b, c])
    assert result.out_of_order == 1
    assert (result.lost, result.duplicated) == (0, 0)  # nothing else is wrong
    assert judge(result)["one delivery order on every stream"] is False
    assert judge(gates.delivery(docs, [a, b]))["one delivery order on every stream"] is True


def test_only_documents_sent_after_subscribing_are_expected() -> None:
    docs = commits(100)  # sent 100.0 .. 109.9
    opened = 105.0
    late = Subscription("late", opened=opened, ended=200.0,
                        receipts=receive_all([c for c in docs if c.sent > opened]))
    result = gates.delivery(docs, [late])
    assert result.expected == sum(1 for c in docs if c.sent > opened)
    assert result.lost == 0
    # Documents in flight when it subscribed may also arrive: neither lost nor unexpected.
    early = [c for c in docs if c.sent <= opened][-3:]
    late.receipts = sorted(receive_all(early) + late.receipts, key=lambda r: r.t)
    again = gates.delivery(docs, [late])
    assert (again.lost, again.unexpected, again.duplicated) == (0, 0, 0)
    assert len(again.latencies) == result.expected  # latency only for live documents


def test_documents_committed_just_before_a_subscriber_ended_are_not_held_against_it() -> None:
    docs = commits(50)  # last commit at 104.905
    sub = Subscription("s1", opened=99.0, ended=105.5,
                       receipts=receive_all([c for c in docs if c.commit <= 103.5]))
    result = gates.delivery(docs, [sub], grace=2.0)
    assert result.lost == 0
    strict = gates.delivery(docs, [sub], grace=0.0)
    assert strict.lost == sum(1 for c in docs if c.commit > 103.5)
    assert strict.lost > 0


def test_idle_subscribers_must_receive_nothing_and_unknown_documents_are_flagged() -> None:
    docs = commits(10)
    idle = Subscription("idle", opened=99.0, ended=200.0, idle=True,
                        receipts=[Receipt("d1", 101.0)])
    stranger = Subscription("s1", opened=99.0, ended=200.0,
                            receipts=[*receive_all(docs), Receipt("ghost", 150.0)])
    result = gates.delivery(docs, [idle, stranger])
    assert result.unexpected == 2
    assert judge(result)["zero unexpected events"] is False


def test_a_subscriber_that_never_connected_fails_the_delivery_gate() -> None:
    result = gates.delivery(commits(5), [Subscription("s1", opened=None, ended=200.0)])
    assert result.never_connected == 1
    assert result.expected == 0
    assert judge(result, commits=5)["every subscriber connected and events flowed"] is False
    docs = commits(5)
    fine = Subscription("s1", 99.0, 200.0, receipts=receive_all(docs))
    idle_never = Subscription("idle", opened=None, ended=200.0, idle=True)
    result = gates.delivery(docs, [fine, idle_never])
    assert result.never_connected == 1  # e.g. the server rejected the idle filter
    assert judge(result, commits=5)["every subscriber connected and events flowed"] is False
    assert judge(gates.delivery(docs, [fine]), commits=5)[
        "every subscriber connected and events flowed"] is True


def test_heartbeat_gate_uses_the_contract_tolerance() -> None:
    assert gates.heartbeat_tolerance(15.0) == pytest.approx(3.0)
    assert gates.heartbeat_tolerance(1.0) == pytest.approx(0.5)
    docs = commits(5)
    result = gates.delivery(docs, [Subscription("s", 99.0, 200.0, receipts=receive_all(docs))])
    assert judge(result, heartbeat=15.0, max_gap=17.9)["heartbeat gaps within tolerance"]
    assert not judge(result, heartbeat=15.0, max_gap=18.1)["heartbeat gaps within tolerance"]
    assert judge(result, heartbeat=1.0, max_gap=1.49)["heartbeat gaps within tolerance"]
    assert not judge(result, heartbeat=1.0, max_gap=1.51)["heartbeat gaps within tolerance"]
    assert not judge(result, max_gap=None)["heartbeat gaps within tolerance"]


def test_latency_gate_judges_the_99th_percentile() -> None:
    docs = commits(200)
    fast = [Receipt(c.doc, c.commit + (0.05 if i % 100 else 3.0)) for i, c in enumerate(docs)]
    result = gates.delivery(docs, [Subscription("s", 99.0, 200.0, receipts=fast)])
    assert judge(result)["p99 delivery latency under budget"] is True  # 1 % slow: p99 fast
    slow = [Receipt(c.doc, c.commit + (0.05 if i % 20 else 3.0)) for i, c in enumerate(docs)]
    result = gates.delivery(docs, [Subscription("s", 99.0, 200.0, receipts=slow)])
    assert judge(result)["p99 delivery latency under budget"] is False  # 5 % slow


def rss_series(seconds: int, base: float, growth_per_second: float, noise: float,
               seed: int = 7) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(1000.0 + t, base + growth_per_second * t + rng.uniform(-noise, noise))
            for t in range(seconds)]


def test_memory_gate_passes_a_flat_noisy_series() -> None:
    samples = rss_series(300, 200 * MIB, 0.0, 8 * MIB)
    trend = gates.memory_trend(samples, warmup_seconds=60)
    assert trend is not None and trend.passed
    assert abs(trend.growth_bytes) < 5 * MIB


def test_memory_gate_ignores_warm_up_growth_and_single_spikes() -> None:
    warm = [(1000.0 + t, (100 + t) * MIB) for t in range(60)]  # +60 MiB while warming up
    flat = [(1060.0 + t, 160 * MIB) for t in range(240)]
    flat[120] = (flat[120][0], 400 * MIB)  # one sample spikes by 240 MiB
    trend = gates.memory_trend(warm + flat, warmup_seconds=60)
    assert trend is not None and trend.passed
    assert trend.start_bytes == pytest.approx(160 * MIB, rel=0.05)


def test_memory_gate_fails_a_steady_leak() -> None:
    samples = rss_series(300, 200 * MIB, 0.2 * MIB, 8 * MIB)  # 48 MiB over the window
    trend = gates.memory_trend(samples, warmup_seconds=60)
    assert trend is not None and not trend.passed
    assert trend.growth_bytes == pytest.approx(0.2 * MIB * 239, rel=0.15)


def test_memory_margin_is_the_larger_of_20_mib_and_10_percent() -> None:
    small = gates.memory_trend(rss_series(100, 50 * MIB, 0.15 * MIB, 0), warmup_seconds=10)
    assert small is not None and small.allowed_bytes == 20 * MIB and small.passed  # +13.4 MiB
    big = gates.memory_trend(rss_series(100, 1000 * MIB, 1.0 * MIB, 0), warmup_seconds=10)
    assert big is not None and big.allowed_bytes == pytest.approx(101 * MIB, rel=0.02)
    assert big.passed  # +89 MiB on ~1 GiB


def test_stored_documents_may_grow_memory_by_their_stated_cost_and_no_more() -> None:
    """An index that keeps 3 KiB per document passes with a 3 KiB budget, not without one;
    a leak on top of it still fails, and writes during warm-up are not counted."""
    per_second, cost = 10, 3 * 1024
    samples = rss_series(900, 200 * MIB, per_second * cost, 2 * MIB)  # ~25 MiB after warm-up
    writes = [1000.0 + i / per_second for i in range(900 * per_second)]
    strict = gates.memory_trend(samples, warmup_seconds=60, commit_times=writes)
    assert strict is not None and not strict.passed and strict.data_allowance_bytes == 0
    budget = gates.memory_trend(samples, warmup_seconds=60, commit_times=writes,
                                bytes_per_document=cost)
    assert budget is not None and budget.passed
    assert budget.documents == pytest.approx(839 * per_second, abs=per_second)
    assert budget.data_allowance_bytes == budget.documents * cost
    leaking = rss_series(900, 200 * MIB, per_second * cost + 0.1 * MIB, 2 * MIB)
    leak = gates.memory_trend(leaking, warmup_seconds=60, commit_times=writes,
                              bytes_per_document=cost)
    assert leak is not None and not leak.passed  # +84 MiB of leak beyond the budget


def test_memory_gate_skipped_without_samples_but_fails_with_too_few() -> None:
    assert gates.memory_trend([], warmup_seconds=5) is None
    assert gates.memory_trend([(0.0, 1.0), (10.0, 2.0)], warmup_seconds=5) is None
    docs = commits(5)
    result = gates.delivery(docs, [Subscription("s", 99.0, 200.0, receipts=receive_all(docs))])
    assert judge(result, memory_sampled=False)["no memory growth"] is None
    assert judge(result, memory_sampled=True)["no memory growth"] is False


def test_collect_sorts_records_from_several_processes(tmp_path: object) -> None:
    rows = [
        {"k": rec.WRITE, "doc": "a", "writer": "w1", "n": 1, "sent": 10.0, "commit": 10.01},
        {"k": rec.OPEN, "sub": "s1", "conn": 1, "t": 5.0, "status": 200, "resume": None},
        {"k": rec.RECEIPT, "sub": "s1", "doc": "a", "t": 10.02, "sent": 10.0, "eid": "1"},
        {"k": rec.CLOSE, "sub": "s1", "conn": 1, "t": 12.0, "reason": "eof", "max_gap": 1.2},
        {"k": rec.OPEN, "sub": "s1", "conn": 2, "t": 13.0, "status": 200, "resume": "header"},
        {"k": rec.RECEIPT, "sub": "s2", "doc": "a", "t": 10.03, "sent": 10.0, "eid": "1"},
        {"k": rec.SUBSCRIBER, "sub": "s1", "idle": False, "opened": 5.1, "ended": 20.0},
        {"k": rec.STATUS, "what": "POST", "code": 503, "t": 11.0},
        {"k": rec.WRITE_ERROR, "writer": "w1", "n": 2, "sent": 11.0, "status": 503},
    ]
    data = gates.collect(rows, run_end=30.0)
    assert [c.doc for c in data.commits] == ["a"]
    assert data.write_errors == 1 and data.server_errors == 1
    assert data.reconnects == 1 and data.max_gap == 1.2
    by_name = {s.sub: s for s in data.subscriptions}
    assert by_name["s1"].opened == 5.1 and by_name["s1"].ended == 20.0
    assert by_name["s2"].ended == 30.0  # no lifetime record: ends with the run
    assert [r.doc for r in by_name["s2"].receipts] == ["a"]
    assert data.connections == [(5.0, 1), (12.0, -1), (13.0, 1)]
