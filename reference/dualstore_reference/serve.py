# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore serve``: the reference server under gunicorn, with the embedded database by default.

Without MONGODB_URI a SecantusDB daemon is started with its storage in ``<data-dir>/db``,
supervised (restarted on the same port and storage if it dies) and stopped on exit, so
data survives restarts. gunicorn runs as a child process with uvicorn-worker's
``UvicornWorker``; SIGTERM/SIGINT are forwarded to it and open streams get
``--graceful-timeout`` seconds to end.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from .embedded import EmbeddedDatabase, EmbeddedDatabaseError
from .metrics import MULTIPROC_ENV
from .settings import Settings, SettingsError, token_list

HELP = "Run the reference server (gunicorn + uvicorn workers; embedded SecantusDB by default)."
WORKER_CLASS = "dualstore_reference.worker.DualstoreWorker"
"""uvicorn_worker.UvicornWorker, with uvicorn's own X-Forwarded-For handling off."""
APP_FACTORY = "dualstore_reference.app:asgi_from_env()"
SUPERVISE_SECONDS = 0.5
OPEN_FILES_CEILING = 1 << 20
"""Soft open-file limit asked for when the hard limit is unlimited."""
log = logging.getLogger("dualstore.serve")


class ServeError(Exception):
    """Bad configuration or a failure to start (reported in one line)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags; each overrides the environment variable named in its help."""
    parser.add_argument("--host", help="bind address (HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (PORT, default 4261)")
    parser.add_argument("--workers", type=int, help="worker processes (WORKERS, default 2)")
    parser.add_argument("--mongodb-uri", help="use this MongoDB (MONGODB_URI); default: embedded")
    parser.add_argument("--data-dir", type=Path, help="data folder (DATA_DIR)")
    parser.add_argument("--auth-token", help="comma-separated bearer tokens (AUTH_TOKEN)")
    parser.add_argument("--cors-origin", help="comma-separated allowed origins (CORS_ORIGIN)")
    parser.add_argument("--collections", help="comma-separated collections (COLLECTIONS)")
    parser.add_argument(
        "--heartbeat-seconds", type=float, help="SSE heartbeat interval (SSE_HEARTBEAT_SECONDS)"
    )
    parser.add_argument(
        "--ui", action="store_true", default=None, help="serve /v1/ui/ (UI_ENABLED)"
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=10.0,
        help="seconds workers get to finish open requests and streams on shutdown (default 10)",
    )


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Environment settings with the command-line flags applied."""
    try:
        tokens = None if args.auth_token is None else token_list(args.auth_token, "--auth-token")
        return Settings.from_env(
            os.environ,
            host=args.host,
            port=args.port,
            workers=args.workers,
            mongodb_uri=args.mongodb_uri,
            data_dir=args.data_dir,
            auth_tokens=tokens,
            cors_origins=_csv(args.cors_origin),
            collections=_csv(args.collections),
            sse_heartbeat_seconds=args.heartbeat_seconds,
            ui_enabled=args.ui,
        )
    except SettingsError as error:
        raise ServeError(str(error)) from None


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_command(
    settings: Settings, graceful_timeout: float, app_factory: str = APP_FACTORY
) -> list[str]:
    """The gunicorn command line for these settings (app_factory: ``module:callable(...)``)."""
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", WORKER_CLASS,
        "--workers", str(settings.workers),
        "--bind", _bind(settings.host, settings.port),
        "--graceful-timeout", str(math.ceil(graceful_timeout)),
        "--timeout", "60",
        "--keep-alive", str(math.ceil(settings.keepalive_seconds)),
        "--no-control-socket",
        "--access-logfile", "-",
        "--error-logfile", "-",
        "--config", "python:dualstore_reference.gunicorn_conf",
        app_factory,
    ]  # fmt: skip


class Supervisor:
    """Runs the database (when embedded) and gunicorn until a signal or gunicorn exits."""

    def __init__(
        self, settings: Settings, graceful_timeout: float, app_factory: str = APP_FACTORY
    ) -> None:
        self.settings = settings
        self.app_factory = app_factory
        self.graceful_timeout = graceful_timeout
        self.database: EmbeddedDatabase | None = None
        self.gunicorn: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.data_dir = settings.data_dir.resolve()
        self.metrics_dir = self.data_dir / "run" / f"metrics-{os.getpid()}"

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.gunicorn is not None and self.gunicorn.poll() is None:
            self.gunicorn.send_signal(signal.SIGTERM)

    def _start_database(self) -> str:
        self.database = EmbeddedDatabase(
            storage_path=str(self.data_dir / "db"),
            log_path=self.data_dir / "db.log",
        )
        try:
            self.database.start()
        except EmbeddedDatabaseError as error:
            raise ServeError(f"embedded database: {error}") from None
        log.info("embedded SecantusDB on %s (storage %s)", self.database.uri, self.data_dir / "db")
        return self.database.uri

    def _supervise_database(self) -> None:
        database = self.database
        if database is None or database.running() or self.stopping:
            return
        log.warning("embedded database exited; restarting it on port %s", database.port)
        try:
            database.start()
        except EmbeddedDatabaseError as error:
            log.error("could not restart the embedded database: %s", error)

    def run(self) -> int:
        """Start everything, wait, shut down cleanly; the exit code of the server."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            uri = self.settings.mongodb_uri or self._start_database()
            if self.metrics_dir.exists():
                shutil.rmtree(self.metrics_dir)
            self.metrics_dir.mkdir(parents=True)
            env = {
                **os.environ,
                **self.settings.replace(mongodb_uri=uri, data_dir=self.data_dir).to_env(),
                MULTIPROC_ENV: str(self.metrics_dir),
            }
            if self.stopping:
                return 0
            self.gunicorn = subprocess.Popen(
                gunicorn_command(self.settings, self.graceful_timeout, self.app_factory), env=env
            )
            while self.gunicorn.poll() is None:
                time.sleep(SUPERVISE_SECONDS)
                self._supervise_database()
            code = self.gunicorn.returncode
            return 0 if self.stopping else (code or 1)
        finally:
            if self.gunicorn is not None and self.gunicorn.poll() is None:
                self.gunicorn.send_signal(signal.SIGTERM)
                try:
                    self.gunicorn.wait(self.graceful_timeout + 5)
                except subprocess.TimeoutExpired:
                    self.gunicorn.kill()
                    self.gunicorn.wait()
            if self.database is not None:
                self.database.stop()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def raise_open_files() -> None:
    """Raise the open-file limit (RLIMIT_NOFILE) to its hard limit where allowed.

    Every client connection is a file; the usual soft limit of 1,024 let a few thousand
    idle sockets starve a worker. gunicorn and its workers inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        log.warning("could not raise the open-file limit from %d: %s", soft, error)
        return
    log.info("open-file limit raised from %d to %d", soft, target)


def run(args: argparse.Namespace, app_factory: str = APP_FACTORY) -> int:
    """Entry point of ``dualstore serve``: bad configuration is one line and exit code 2.

    app_factory is the gunicorn app spec the workers import (the reference's by default).
    """
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s serve %(levelname)s %(message)s"
    )
    try:
        settings = settings_from_args(args)
        if args.graceful_timeout <= 0:
            raise ServeError("--graceful-timeout must be > 0")
        raise_open_files()
        if settings.auth_required:
            log.info("authentication on: %d bearer token(s) accepted", len(settings.auth_tokens))
        else:
            log.warning(
                "authentication OFF: AUTH_TOKEN is unset, every route answers without a token"
            )
        return Supervisor(settings, args.graceful_timeout, app_factory).run()
    except ServeError as error:
        print(f"dualstore serve: error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m dualstore_reference.serve``: the same as ``dualstore serve`` (starts faster)."""
    parser = argparse.ArgumentParser(prog="dualstore serve", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
