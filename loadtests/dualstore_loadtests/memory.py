# SPDX-License-Identifier: GPL-3.0-or-later
"""Sample the resident memory (RSS) of server processes in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import psutil


class RssSampler:
    """Every ``interval`` seconds, records (wall time, {pid: RSS bytes}) of the given pids.

    ``pids`` is called at every sample, so restarted workers are picked up; processes that
    have gone are skipped.
    """

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float = 1.0) -> None:
        self._pids = pids
        self.interval = interval
        self.samples: list[tuple[float, dict[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._processes: dict[int, psutil.Process] = {}

    def sample(self) -> None:
        """Take one sample now."""
        by_pid: dict[int, int] = {}
        for pid in self._pids():
            try:
                process = self._processes.get(pid) or psutil.Process(pid)
                self._processes[pid] = process
                by_pid[pid] = int(process.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._processes.pop(pid, None)
        if by_pid:
            self.samples.append((time.time(), by_pid))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        """Start sampling in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (one last sample is taken)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def totals(self) -> list[tuple[float, float]]:
        """(time, summed RSS bytes) per sample."""
        return [(t, float(sum(by_pid.values()))) for t, by_pid in self.samples]
