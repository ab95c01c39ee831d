# SPDX-License-Identifier: GPL-3.0-or-later
"""Pass/fail gates of a load run, computed from its raw records (pure functions, no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dualstore_spec import facts

from dualstore_loadtests import records as rec

MIB = 1024 * 1024

LATENCY_BUDGET_P99_SECONDS = 1.0
"""Gate: the 99th percentile of delivery latency (POST response -> event receipt) is below this."""

MEMORY_MARGIN_BYTES = 20 * MIB
MEMORY_MARGIN_RATIO = 0.10
"""Gate: the fitted RSS growth over the post-warm-up window is at most
max(20 MiB, 10 % of the fitted RSS at the window's start)."""

LOSS_GRACE_SECONDS = 2.0
"""A document committed less than this before a subscriber ended is not held against it."""


def _heartbeat() -> facts.Heartbeat:
    return facts.current().heartbeat


def heartbeat_tolerance(interval: float) -> float:
    """The contract's tolerance on a heartbeat interval H (max(absolute, relative x H))."""
    return _heartbeat().tolerance(interval)


def percentiles(
    values: Sequence[float], points: Iterable[float] = (50, 90, 95, 99)
) -> dict[str, float]:
    """Linear-interpolated percentiles as {"p50": ..., ...}; empty input gives an empty dict."""
    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    return {f"p{p:g}": float(np.percentile(array, p)) for p in points}


@dataclass(frozen=True)
class Commit:
    """A document a writer saw committed (POST answered 201)."""

    doc: str
    sent: float
    commit: float


@dataclass(frozen=True)
class Receipt:
    """An insert event of this run received by a subscriber."""

    doc: str
    t: float


@dataclass
class Subscription:
    """Everything one subscriber saw, across its reconnections."""

    sub: str
    opened: float | None
    """Wall time of the first byte of its first stream (None: it never got a stream)."""
    ended: float
    idle: bool = False
    """Idle subscribers use a filter that matches none of the run's documents."""
    receipts: list[Receipt] = field(default_factory=list)


@dataclass
class DeliveryResult:
    """Lost, duplicated and unexpected events, and delivery latencies."""

    subscribers: int
    expected: int
    """Sum over subscribers of the documents each had to receive."""
    received: int
    lost: int
    duplicated: int
    unexpected: int
    """Events of this run that no writer saw committed, or that an idle (filtered) stream got."""
    never_connected: int
    latencies: list[tuple[float, float]]
    """(receipt time, latency seconds from POST response) for every first receipt."""
    lost_examples: list[dict[str, str]]
    out_of_order: int = 0
    """Events a subscriber received before one that an earlier-receiving subscriber (the
    one with the most receipts) got ahead of it: streams must share one delivery order."""


def delivery(commits: Sequence[Commit], subscriptions: Sequence[Subscription],
             grace: float = LOSS_GRACE_SECONDS) -> DeliveryResult:
    """Compare what each subscriber received with what it had to receive.

    A subscriber must receive every document whose POST was *sent* after the first byte of
    its first stream arrived and that was committed at least ``grace`` seconds before it
    ended; documents in flight when it subscribed may arrive or not. It must never receive
    a document twice (reconnections included). An idle subscriber must receive nothing.
    """
    by_doc = {commit.doc: commit for commit in commits}
    expected_total = received_total = lost = duplicated = unexpected = never = 0
    latencies: list[tuple[float, float]] = []
    examples: list[dict[str, str]] = []
    for sub in subscriptions:
        counts = Counter(receipt.doc for receipt in sub.receipts)
        received_total += len(sub.receipts)
        duplicated += sum(n - 1 for n in counts.values() if n > 1)
        if sub.opened is None:
            never += 1
        if sub.idle:
            unexpected += len(sub.receipts)
            continue
        unexpected += sum(1 for doc in counts if doc not in by_doc)
        if sub.opened is None:
            continue
        opened = sub.opened
        expected = {
            c.doc for c in commits if c.sent > opened and c.commit + grace <= sub.ended
        }
        expected_total += len(expected)
        missing = expected - counts.keys()
        lost += len(missing)
        for doc in sorted(missing)[: max(0, 5 - len(examples))]:
            examples.append({"subscriber": sub.sub, "doc": doc})
        seen: set[str] = set()
        for receipt in sub.receipts:
            commit = by_doc.get(receipt.doc)
            if receipt.doc in seen or commit is None or commit.sent <= opened:
                continue
            seen.add(receipt.doc)
            latencies.append((receipt.t, receipt.t - commit.commit))
    return DeliveryResult(
        subscribers=len(subscriptions), expected=expected_total, received=received_total,
        lost=lost, duplicated=duplicated, unexpected=unexpected, never_connected=never,
        latencies=latencies, lost_examples=examples,
        out_of_order=out_of_order(subscriptions),
    )


def out_of_order(subscriptions: Sequence[Subscription]) -> int:
    """Receipts that break the order of the subscriber with the most receipts.

    Every stream delivers in the collection's one delivery order, so for any two
    subscribers the documents both received come in the same order. A subscriber's first
    receipt of each document is compared with the reference order; each receipt that
    comes after one with a later reference position counts once.
    """
    live = [s for s in subscriptions if not s.idle and s.receipts]
    if len(live) < 2:
        return 0
    reference = max(live, key=lambda s: len(s.receipts))
    position: dict[str, int] = {}
    for receipt in reference.receipts:
        position.setdefault(receipt.doc, len(position))
    broken = 0
    for sub in live:
        highest = -1
        seen: set[str] = set()
        for receipt in sub.receipts:
            if receipt.doc in seen or receipt.doc not in position:
                continue
            seen.add(receipt.doc)
            place = position[receipt.doc]
            if place < highest:
                broken += 1
            highest = max(highest, place)
    return broken


@dataclass(frozen=True)
class MemoryTrend:
    """Least-squares trend of RSS over the post-warm-up window."""

    samples: int
    window_seconds: float
    start_bytes: float
    """Fitted RSS at the window's start."""
    growth_bytes: float
    """Fitted slope times the window length."""
    allowed_bytes: float
    slope_bytes_per_second: float
    passed: bool
    documents: int = 0
    """Documents committed inside the window."""
    data_allowance_bytes: float = 0.0
    """The part of allowed_bytes that is stored data: documents x bytes per document."""


def memory_trend(samples: Sequence[tuple[float, float]], warmup_seconds: float,
                 margin_bytes: float = MEMORY_MARGIN_BYTES,
                 margin_ratio: float = MEMORY_MARGIN_RATIO,
                 commit_times: Sequence[float] = (),
                 bytes_per_document: float = 0.0) -> MemoryTrend | None:
    """Judge memory growth on the trend after warm-up; None when there are too few samples.

    ``samples`` are (time, RSS bytes). The window starts ``warmup_seconds`` after the first
    sample. Growth = least-squares slope x window length; it must not exceed
    max(margin_bytes, margin_ratio x fitted RSS at the window start) plus the memory the
    server may keep per stored document (``bytes_per_document``, e.g. a vector index entry)
    times the documents committed inside the window (``commit_times``).
    """
    if not samples:
        return None
    t0 = samples[0][0]
    window = [(t, rss) for t, rss in samples if t - t0 >= warmup_seconds]
    if len(window) < 3:
        return None
    times = np.asarray([t for t, _ in window], dtype=float)
    values = np.asarray([rss for _, rss in window], dtype=float)
    duration = float(times[-1] - times[0])
    if duration <= 0:
        return None
    slope, intercept = np.polyfit(times - times[0], values, 1)
    growth = float(slope) * duration
    start = float(intercept)
    documents = sum(1 for t in commit_times if times[0] <= t <= times[-1])
    data = documents * max(0.0, bytes_per_document)
    allowed = max(margin_bytes, margin_ratio * start) + data
    return MemoryTrend(
        samples=len(window), window_seconds=duration, start_bytes=start, growth_bytes=growth,
        allowed_bytes=allowed, slope_bytes_per_second=float(slope), passed=growth <= allowed,
        documents=documents, data_allowance_bytes=data,
    )


@dataclass(frozen=True)
class Gate:
    """One pass/fail criterion with the measured value and the limit, for people and JSON."""

    name: str
    passed: bool | None
    """None: skipped (nothing to judge it on, e.g. a remote server's memory)."""
    measured: Any
    limit: Any
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name, "passed": self.passed, "measured": self.measured,
            "limit": self.limit, "detail": self.detail,
        }


def passed(verdicts: Sequence[Gate]) -> bool:
    """True when no gate failed and at least one passed (skipped gates do not count)."""
    return all(g.passed is not False for g in verdicts) and any(g.passed for g in verdicts)


def evaluate_gates(result: DeliveryResult, *, server_errors: int, max_gap: float | None,
                   heartbeat: float, memory: MemoryTrend | None,
                   latency_budget: float = LATENCY_BUDGET_P99_SECONDS,
                   commits: int = 0, memory_sampled: bool = True) -> list[Gate]:
    """All gates of a run. A gate that had no data to judge fails (nothing proven), except
    the memory gate when the server's processes could not be sampled (``memory_sampled``
    False: a remote server), which is skipped."""
    gap_limit = heartbeat + heartbeat_tolerance(heartbeat)
    p99 = percentiles([lat for _, lat in result.latencies], (99,)).get("p99")
    gates = [
        Gate("every subscriber connected and events flowed",
             commits > 0 and result.expected > 0 and result.never_connected == 0,
             {"expected_receipts": result.expected, "never_connected": result.never_connected},
             {"expected_receipts": "> 0", "never_connected": 0},
             f"{commits} committed writes"),
        Gate("zero lost events", result.lost == 0, result.lost, 0,
             f"examples: {result.lost_examples}" if result.lost_examples else ""),
        Gate("zero duplicated events", result.duplicated == 0, result.duplicated, 0),
        Gate("one delivery order on every stream", result.out_of_order == 0,
             result.out_of_order, 0,
             "receipts out of the order the fullest stream saw (commit order is shared)"),
        Gate("zero unexpected events", result.unexpected == 0, result.unexpected, 0,
             "events of this run no writer saw committed, or received on a filtered stream"),
        Gate("zero 5xx", server_errors == 0, server_errors, 0),
        Gate("heartbeat gaps within tolerance",
             max_gap is not None and max_gap <= gap_limit,
             None if max_gap is None else round(max_gap, 3), round(gap_limit, 3),
             f"longest silence on any stream; H = {heartbeat:g} s, "
             f"tolerance max({_heartbeat().tolerance_absolute_seconds:g} s, "
             f"{_heartbeat().tolerance_relative:.0%} of H)"),
        Gate("p99 delivery latency under budget", p99 is not None and p99 <= latency_budget,
             None if p99 is None else round(p99, 4), latency_budget,
             "seconds from POST response to event receipt"),
    ]
    if memory is None and not memory_sampled:
        gates.append(Gate("no memory growth", None, None, None,
                          "skipped: no server process to sample (give --server-pid)"))
    elif memory is None:
        gates.append(Gate("no memory growth", False, None, None,
                          "too few RSS samples after warm-up"))
    else:
        gates.append(Gate(
            "no memory growth", memory.passed, round(memory.growth_bytes / MIB, 2),
            round(memory.allowed_bytes / MIB, 2),
            f"MiB: least-squares RSS slope x {memory.window_seconds:.0f} s post-warm-up "
            f"window, limit max(20 MiB, 10 % of {memory.start_bytes / MIB:.1f} MiB)"
            + (f" + {memory.documents} documents stored in the window x "
               f"{memory.data_allowance_bytes / memory.documents:.0f} bytes"
               if memory.data_allowance_bytes > 0 and memory.documents else ""),
        ))
    return gates


@dataclass
class RunData:
    """The records of a run, sorted into what the gates and charts need."""

    commits: list[Commit] = field(default_factory=list)
    write_errors: int = 0
    subscriptions: list[Subscription] = field(default_factory=list)
    connections: list[tuple[float, int]] = field(default_factory=list)
    """(time, +1 on open / -1 on close) for the connected-clients chart."""
    max_gap: float | None = None
    reconnects: int = 0
    server_errors: int = 0
    close_reasons: Counter[str] = field(default_factory=Counter)


def collect(records: Iterable[dict[str, Any]], run_end: float) -> RunData:
    """Sort raw records into RunData; a subscriber without an end record ends at run_end."""
    data = RunData()
    subs: dict[str, Subscription] = {}
    receipts: dict[str, list[Receipt]] = {}
    first_open: dict[str, float] = {}
    opens: Counter[str] = Counter()
    for record in records:
        kind = record.get("k")
        if kind == rec.WRITE:
            data.commits.append(Commit(record["doc"], record["sent"], record["commit"]))
        elif kind == rec.WRITE_ERROR:
            data.write_errors += 1
        elif kind == rec.RECEIPT:
            receipts.setdefault(record["sub"], []).append(Receipt(record["doc"], record["t"]))
        elif kind == rec.OPEN:
            data.connections.append((record["t"], 1))
            opens[record["sub"]] += 1
            first_open[record["sub"]] = min(record["t"], first_open.get(record["sub"], record["t"]))
        elif kind == rec.CLOSE:
            data.connections.append((record["t"], -1))
            data.close_reasons[str(record.get("reason"))] += 1
            gap = record.get("max_gap")
            if gap is not None:
                data.max_gap = gap if data.max_gap is None else max(data.max_gap, gap)
        elif kind == rec.SUBSCRIBER:
            subs[record["sub"]] = Subscription(
                record["sub"], record.get("opened"), record.get("ended") or run_end,
                bool(record.get("idle")),
            )
        elif kind == rec.STATUS:
            data.server_errors += 1
    for name in set(receipts) | set(first_open):
        if name not in subs:  # its process died before writing the lifetime record
            subs[name] = Subscription(name, first_open.get(name), run_end)
    for name, sub in subs.items():
        sub.receipts = sorted(receipts.get(name, []), key=lambda r: r.t)
    data.subscriptions = sorted(subs.values(), key=lambda s: s.sub)
    data.reconnects = sum(n - 1 for n in opens.values() if n > 1)
    data.connections.sort()
    return data
