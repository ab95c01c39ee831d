# SPDX-License-Identifier: GPL-3.0-or-later
"""Run an adapter process (``CMD URL``), collect its JSON lines with arrival times, kill it."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from dualstore_conformance.client_suite.adapters import protocol

STDERR_TAIL = 2000


class AdapterError(Exception):
    """The adapter command cannot be started or did not say hello."""


@dataclass
class AdapterRun:
    """One running adapter process."""

    process: subprocess.Popen[bytes]
    stderr: IO[bytes]
    started: float = field(default_factory=time.monotonic)
    lines: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError:
                self.bad_lines.append(text[:200])
                continue
            if isinstance(value, dict):
                value["_at"] = time.monotonic() - self.started
                self.lines.append(value)
            else:
                self.bad_lines.append(text[:200])

    def exited(self) -> bool:
        return self.process.poll() is not None

    def stop(self, grace: float = 2.0) -> int | None:
        """Terminate the adapter's whole process group (browsers have children)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        else:
            # the leader is gone; children it left behind in its group go too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(2)
        return self.process.returncode

    def stderr_tail(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - STDERR_TAIL))
        return self.stderr.read().decode("utf-8", errors="replace")

    def hello(self) -> dict[str, Any] | None:
        return next((line for line in self.lines if line.get("kind") == "hello"), None)


def split_command(command: str) -> list[str]:
    """The adapter command as argv (shell-like quoting); raises AdapterError when empty."""
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise AdapterError(f"cannot parse the adapter command: {error}") from error
    if not argv:
        raise AdapterError("the adapter command is empty")
    return argv


def launch(command: str, url: str, env: dict[str, str]) -> AdapterRun:
    """Start ``command URL`` in its own process group with ``env`` added."""
    argv = [*split_command(command), url]
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the AdapterRun
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
            env={**os.environ, **env}, start_new_session=True,
        )
    except OSError as error:
        stderr.close()
        raise AdapterError(f"cannot start {argv[0]!r}: {error}") from error
    run = AdapterRun(process=process, stderr=stderr)
    run.start_reading()
    return run


def describe(command: str, url: str, timeout: float) -> dict[str, Any]:
    """Ask the adapter who it is (its hello line); raises AdapterError when it cannot say."""
    run = launch(command, url, {protocol.ENV_DESCRIBE: "1"})
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not run.exited():
            if run.hello() is not None or any(x.get("kind") == "skip" for x in run.lines):
                break
            time.sleep(0.05)
        run.stop(grace=5)
        skip = next((line for line in run.lines if line.get("kind") == "skip"), None)
        hello = run.hello()
        if hello is None and skip is not None:
            return {"kind": "hello", "client": command, "version": "", "profile": "eventsource",
                    "features": [], "skip": str(skip.get("reason", ""))}
        if hello is None:
            tail = run.stderr_tail().strip().splitlines()
            last = tail[-1] if tail else "no output"
            raise AdapterError(f"the adapter printed no hello line "
                               f"(exit {run.process.returncode}): {last}")
        if hello.get("profile") not in ("eventsource", "dualstore"):
            raise AdapterError(f"the adapter's hello names an unknown profile "
                               f"{hello.get('profile')!r}")
        return hello
    finally:
        run.stderr.close()
