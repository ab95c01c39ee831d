# SPDX-License-Identifier: GPL-3.0-or-later
"""Compact console output: live progress while checks wait, then a coloured summary."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from dualstore_conformance.model import CheckResult, Level, Status, Verdict
from dualstore_conformance.run_model import Progress, RunReport

_COLOURS = {
    Status.PASSED: "\033[32m",
    Status.FAILED: "\033[31m",
    Status.ERROR: "\033[33m",
    Status.SKIPPED: "\033[90m",
}
_RESET = "\033[0m"
_BOLD = "\033[1m"
_MARKS = {Verdict.PASSED: ".", Verdict.FAILED: "F", Verdict.NON_STRICT: "N",
          Verdict.INFORMATIONAL: "I", Verdict.ERROR: "E", Verdict.NOT_JUDGED: "s"}
_VERDICT_STATUS = {Verdict.PASSED: Status.PASSED, Verdict.FAILED: Status.FAILED,
                   Verdict.NON_STRICT: Status.ERROR, Verdict.INFORMATIONAL: Status.SKIPPED,
                   Verdict.ERROR: Status.ERROR, Verdict.NOT_JUDGED: Status.SKIPPED}
"""Which colour each verdict class is painted in."""


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
        mark = self._paint(_MARKS[result.verdict], _VERDICT_STATUS[result.verdict], bold=True)
        width = len(str(total))
        line = f"[{done:>{width}}/{total}] {mark} {result.id} ({result.duration_s:.1f} s)"
        if result.status is not Status.PASSED:
            kind = result.verdict.value
            if result.not_judged is not None:
                kind = result.not_judged.value
            first = result.message.splitlines()[0][:100] if result.message else ""
            line += f"  {kind}: {first}"
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
                head = self._paint(f"{result.verdict.value.upper()} {result.id}",
                                   _VERDICT_STATUS[result.verdict], bold=True)
                self.stream.write(f"\n{head} [{', '.join(result.rules)}] {result.title}\n")
                if "expected" in result.evidence:
                    self.stream.write(f"  expected: {result.evidence['expected']}\n")
                    self.stream.write(f"  received: {str(result.evidence['received'])[:500]}\n")
                else:
                    self.stream.write(f"  {result.message[:600]}\n")
                if result.reproduce:
                    self.stream.write(f"  reproduce: {result.reproduce}\n")
            verdicts = report.verdicts()
            parts = [
                self._paint(f"{verdicts['passed']} passed", Status.PASSED),
                self._paint(f"{verdicts['failed']} failed", Status.FAILED),
                self._paint(f"{verdicts['non-strict']} non-strict", Status.ERROR),
                self._paint(f"{verdicts['informational']} informational", Status.SKIPPED),
                self._paint(f"{verdicts['error']} errors", Status.ERROR),
                self._paint(f"{verdicts['not-judged']} not judged", Status.SKIPPED),
            ]
            must_unjudged = sum(1 for r in report.results
                                if r.level is Level.MUST and r.not_judged is not None)
            if must_unjudged:
                parts.append(f"{must_unjudged} of them MUST")
            profile = report.profile
            declared = profile.get("declared") or []
            self.stream.write(
                "\nprofile: " + (", ".join(f"{k}={profile.get(k)}" for k in declared)
                                 if declared else "the spec's defaults")
                + f"; heartbeat {report.heartbeat_seconds:g} s"
                + f"; timeout multiplier {report.knobs.get('timeout_multiplier', 1.0):g} "
                  "(harness waits only)\n")
            verdict = report.verdict_line()
            self.stream.write(
                f"\n{report.target} (collection {report.collection}, spec "
                f"{report.spec_version}, seed {report.seed}): {', '.join(parts)} "
                f"in {report.duration_s:.1f} s -> {self._paint(verdict, bold=True)}\n"
            )
            self.stream.flush()
