# SPDX-License-Identifier: GPL-3.0-or-later
"""Start, wait for and stop the embedded SecantusDB daemon (a separate process, never imported)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMON_COMMAND = "secantusd-py"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def daemon_executable() -> str:
    """Path of the SecantusDB daemon launcher: beside this interpreter first, then PATH."""
    beside = Path(sys.executable).parent / DAEMON_COMMAND
    if beside.exists():
        return str(beside)
    found = shutil.which(DAEMON_COMMAND)
    if found is None:
        raise EmbeddedDatabaseError(
            f"{DAEMON_COMMAND} not found: install the SecantusDB package or set MONGODB_URI"
        )
    return found


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Block until host:port accepts connections, the process dies, or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedDatabaseError(f"database exited early with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise EmbeddedDatabaseError(f"database did not listen on {host}:{port} within {timeout} s")


@dataclass
class EmbeddedDatabase:
    """A SecantusDB daemon on a loopback port; storage ':memory:' or a folder."""

    storage_path: str = ":memory:"
    port: int = 0
    host: str = "127.0.0.1"
    standalone: bool = False
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        """The MongoDB URI that reaches this daemon."""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> EmbeddedDatabase:
        """Start the daemon and wait until it accepts connections."""
        if self.port == 0:
            self.port = free_port(self.host)
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        command = [
            daemon_executable(),
            "--host", self.host,
            "--port", str(self.port),
            "--storage-path", self.storage_path,
            "--log-level", "WARNING",
        ]
        if self.standalone:
            command.append("--standalone")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]  # reason: a file object when a path was given
        wait_for_port(self.host, self.port, timeout, self.process)
        return self

    def running(self) -> bool:
        """True while the daemon process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the daemon: SIGTERM, then SIGKILL after timeout."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> EmbeddedDatabase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
