# SPDX-License-Identifier: GPL-3.0-or-later
"""Compact console output: live progress while checks wait, then a coloured summary."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from dualstore_conformance.model import CheckResult, Status
from dualstore_conformance.runner import Progress, RunReport

_COLOURS = {
    Status.PASSED: "\033[32m",
    Status.FAILED: "\033[31m",
    Status.ERROR: "\033[33m",
    Status.SKIPPED: "\033[90m",
}
_RESET = "\033[0m"
_BOLD = "\033[1m"
_MARKS = {Status.PASSED: ".", Status.FAILED: "F", Status.ERROR: "E", Status.SKIPPED: "s"}


def use_colour(stream: TextIO) -> bool:
    """Colour only on a TTY, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class Console:
    """Progress callback + final summary writer."""

    def __init__(self, stream: TextIO | None = None, colour: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.colour = use_colour(self.stream) if colour is None else colour
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self._status_line = False
        self._last_plain = 0.0

    def _paint(self, text: str, status: Status | None = None, bold: bool = False) -> str:
        if not self.colour:
            return text
        prefix = (_COLOURS.get(status, "") if status else "") + (_BOLD if bold else "")
        return f"{prefix}{text}{_RESET}" if prefix else text

    def _clear(self) -> None:
        if self._status_line:
            self.stream.write("\r\033[K")
            self._status_line = False

    def __call__(self, event: Progress) -> None:
        """Receive a runner progress event."""
        with self._lock:
            if event.kind == "finish" and event.result is not None:
                self._clear()
                self._line(event.result, event.done, event.total)
            elif event.kind == "stage":
                self._clear()
                self.stream.write(f"  {event.message}\n")
            elif event.kind == "tick" and event.running:
                self._waiting(event)
            self.stream.flush()

    def _line(self, result: CheckResult, done: int, total: int) -> None:
        mark = self._paint(_MARKS[result.status], result.status, bold=True)
        width = len(str(total))
        line = f"[{done:>{width}}/{total}] {mark} {result.id} ({result.duration_s:.1f} s)"
        if result.status is not Status.PASSED:
            line += f"  {result.message.splitlines()[0][:110] if result.message else ''}"
        self.stream.write(line + "\n")

    def _waiting(self, event: Progress) -> None:
        now = time.monotonic()
        longest = sorted(event.running.items(), key=lambda kv: kv[1])[:3]
        names = ", ".join(f"{name} {now - start:.0f}s" for name, start in longest)
        more = len(event.running) - len(longest)
        text = f"  waiting on {names}" + (f" (+{more})" if more > 0 else "")
        if event.message and "property" in event.running:
            text += f" | {event.message}"
        if self.tty:
            self.stream.write("\r\033[K" + text[:150])
            self._status_line = True
        elif now - self._last_plain >= 10:
            # not a terminal: a line every 10 s so CI logs show progress without noise
            self.stream.write(text + "\n")
            self._last_plain = now

    def summary(self, report: RunReport) -> None:
        """Print the failures in detail and the totals."""
        with self._lock:
            self._clear()
            bad = [r for r in report.results if r.status in (Status.FAILED, Status.ERROR)]
            for result in bad:
                head = self._paint(f"{result.status.value.upper()} {result.id}", result.status,
                                   bold=True)
                self.stream.write(f"\n{head} [{', '.join(result.rules)}] {result.title}\n")
                if "expected" in result.evidence:
                    self.stream.write(f"  expected: {result.evidence['expected']}\n")
                    self.stream.write(f"  received: {str(result.evidence['received'])[:500]}\n")
                else:
                    self.stream.write(f"  {result.message[:600]}\n")
                if result.reproduce:
                    self.stream.write(f"  reproduce: {result.reproduce}\n")
            summary = report.summary()
            parts = [
                self._paint(f"{summary['passed']} passed", Status.PASSED),
                self._paint(f"{summary['failed']} failed", Status.FAILED),
                self._paint(f"{summary['errors']} errors", Status.ERROR),
                self._paint(f"{summary['skipped']} skipped", Status.SKIPPED),
            ]
            verdict = "conforms" if report.exit_code() == 0 else "DOES NOT CONFORM"
            self.stream.write(
                f"\n{report.target} (collection {report.collection}, spec "
                f"{report.spec_version}, seed {report.seed}): {', '.join(parts)} "
                f"in {report.duration_s:.1f} s -> {self._paint(verdict, bold=True)}\n"
            )
            self.stream.flush()
