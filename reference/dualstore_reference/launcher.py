# SPDX-License-Identifier: GPL-3.0-or-later
"""Start ``dualstore serve`` in a child process from Python (harness, load test, tests)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil

from .embedded import free_port

SETTING_VARIABLES = (
    "HOST", "PORT", "WORKERS", "AUTH_TOKEN", "CORS_ORIGIN", "COLLECTIONS", "MONGODB_URI",
    "DATA_DIR", "SSE_HEARTBEAT_SECONDS", "SSE_RETRY_MS", "STREAM_CAP_PER_IP",
    "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST", "TRUSTED_PROXIES", "GAP_TIMEOUT_SECONDS",
    "SUBSCRIBER_QUEUE_SIZE", "EMBEDDER", "EMBEDDING_DIM", "VECTOR_METRIC", "UI_ENABLED",
    "DUALSTORE_DEBUG_HEADERS", "PROMETHEUS_MULTIPROC_DIR", "HEAD_TIMEOUT_SECONDS",
    "KEEPALIVE_SECONDS", "MAX_CONNECTIONS_PER_WORKER", "DATABASE_TIMEOUT_SECONDS",
)  # fmt: skip
"""Inherited variables dropped so that only the caller's env configures the child."""


class LaunchError(RuntimeError):
    """The reference server did not become healthy."""


def with_database(uri: str, name: str) -> str:
    """uri with its default database set to name (keeps the query string)."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class RunningReference:
    """A running ``dualstore serve``: ``.url``, ``.pids()``, ``.stop()``, ``.restart()``."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int,
        data_dir: Path,
        mongodb_uri: str | None,
        port: int,
        owns_data_dir: bool,
        timeout: float,
    ) -> None:
        self.env = env
        self.workers = workers
        self.data_dir = data_dir
        self.mongodb_uri = mongodb_uri
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "server.log"
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._owns_data_dir = owns_data_dir

    def command(self) -> list[str]:
        """The ``dualstore serve`` command line (its module run directly: no other imports)."""
        command = [
            sys.executable, "-m", "dualstore_reference.serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        if self.mongodb_uri:
            command += ["--mongodb-uri", self.mongodb_uri]
        return command

    def start(self) -> RunningReference:
        """Start the server and wait until /v1/health answers 200."""
        base = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env={**base, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        last = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise LaunchError(f"dualstore serve exited early; log:\n{self.log_tail()}")
                try:
                    response = client.get(self.url + "/v1/health")
                    if response.status_code == 200 and self._all_workers_up():
                        return
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    last = str(error)
                time.sleep(0.1)
        self.stop()
        raise LaunchError(f"not healthy within {self.timeout} s ({last}); log:\n{self.log_tail()}")

    def _all_workers_up(self) -> bool:
        return len(self.pids()) >= 1 + self.workers

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """gunicorn master first, then its workers (empty when not running)."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.Error:
            return []
        for child in children:
            try:
                if any("gunicorn" in part for part in child.cmdline()):
                    return [child.pid, *(worker.pid for worker in child.children())]
            except psutil.Error:
                continue
        return []

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (orderly: gunicorn, then the embedded database), SIGKILL after timeout."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            family = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            family = []
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for child in family:  # the database lives in its own session: never leak it
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.kill()

    def restart(self) -> RunningReference:
        """Stop, then start again on the same port and data directory."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove a data directory the launcher created."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RunningReference:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def start_reference(
    env: dict[str, str] | None = None,
    workers: int = 2,
    data_dir: Path | None = None,
    mongodb_uri: str | None = None,
    port: int | None = None,
    timeout: float = 90.0,
) -> RunningReference:
    """Start ``dualstore serve`` on 127.0.0.1 (embedded database unless mongodb_uri).

    env configures the server (settings variables); inherited settings variables are
    dropped. Without data_dir a temporary folder is used and removed by ``close()``.
    """
    owns = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="dualstore-")) if data_dir is None else Path(data_dir)
    running = RunningReference(
        env=dict(env or {}),
        workers=workers,
        data_dir=folder,
        mongodb_uri=mongodb_uri,
        port=port or free_port(),
        owns_data_dir=owns,
        timeout=timeout,
    )
    try:
        return running.start()
    except BaseException:
        running.close()
        raise
