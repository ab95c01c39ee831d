# SPDX-License-Identifier: GPL-3.0-or-later
"""PNG charts of a load run: server RSS, delivery latency percentiles, connected clients."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from dualstore_loadtests.gates import MIB, MemoryTrend

RssSamples = Sequence[tuple[float, dict[int, int]]]


def rss_chart(path: Path, samples: RssSamples, warmup_seconds: float,
              trend: MemoryTrend | None) -> Path | None:
    """Server RSS over time: every sampled process, their total, and the fitted trend."""
    if not samples:
        return None
    t0 = samples[0][0]
    times = np.asarray([t - t0 for t, _ in samples])
    pids = sorted({pid for _, by_pid in samples for pid in by_pid})
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for pid in pids:
        values = [by_pid.get(pid, np.nan) / MIB for _, by_pid in samples]
        ax.plot(times, values, linewidth=1, label=f"pid {pid}")
    totals = np.asarray([sum(by_pid.values()) / MIB for _, by_pid in samples])
    ax.plot(times, totals, color="black", linewidth=2, label="total")
    if trend is not None:
        start = warmup_seconds
        xs = np.asarray([start, start + trend.window_seconds])
        ys = (trend.start_bytes + trend.slope_bytes_per_second * (xs - start)) / MIB
        ax.plot(xs, ys, color="red", linestyle="--", linewidth=2,
                label=f"trend: {trend.growth_bytes / MIB:+.1f} MiB "
                      f"(limit {trend.allowed_bytes / MIB:.0f})")
    ax.axvline(warmup_seconds, color="grey", linestyle=":", label="end of warm-up")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Server memory (RSS per process)")
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def latency_chart(path: Path, latencies: Sequence[tuple[float, float]], t0: float,
                  budget: float, bucket_seconds: float) -> Path | None:
    """Delivery latency p50 / p95 / p99 / max per time bucket, with the p99 budget."""
    if not latencies:
        return None
    buckets: dict[int, list[float]] = {}
    for t, latency in latencies:
        buckets.setdefault(int((t - t0) // bucket_seconds), []).append(latency)
    keys = sorted(buckets)
    xs = np.asarray([(k + 0.5) * bucket_seconds for k in keys])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    floor = 1.0  # ms: an event can arrive before its POST returned (negative latency)
    for point in (50, 95, 99):
        ys = [max(floor, float(np.percentile(buckets[k], point)) * 1000) for k in keys]
        ax.plot(xs, ys, "-", label=f"p{point}")
    ax.plot(xs, [max(floor, max(buckets[k]) * 1000) for k in keys], ":", color="grey",
            label="max")
    ax.axhline(budget * 1000, color="red", linestyle="--", label=f"p99 budget {budget:g} s")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("latency (ms, log scale; <= 1 ms drawn at 1)")
    ax.set_title(f"Delivery latency, POST response -> receipt ({bucket_seconds:g} s buckets)")
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def clients_chart(path: Path, connections: Sequence[tuple[float, int]], t0: float,
                  end: float) -> Path | None:
    """Connected SSE clients over time (a step function of opens and closes)."""
    if not connections:
        return None
    xs = [0.0]
    ys = [0]
    level = 0
    for t, delta in connections:
        level += delta
        xs.append(t - t0)
        ys.append(level)
    xs.append(max(end - t0, xs[-1]))
    ys.append(level)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.step(xs, ys, where="post")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("open streams")
    ax.set_title("Connected SSE clients")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
