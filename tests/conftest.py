# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: a real SecantusDB daemon per test session, on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dualstore_reference import launcher
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import RunningReference, with_database

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for files a person may want to look at after a run (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def database() -> Iterator[EmbeddedDatabase]:
    """A real SecantusDB daemon (in-memory storage) for the whole test session."""
    with EmbeddedDatabase(storage_path=":memory:") as db:
        yield db


@pytest.fixture(scope="session")
def mongodb_uri(database: EmbeddedDatabase) -> str:
    """URI of the session's database."""
    return database.uri


# -- the reference server (gunicorn, 2 workers) on the session database ------------------

REFERENCE_TOKEN = "test-token"
REFERENCE_ENV = {
    "AUTH_TOKEN": REFERENCE_TOKEN,
    "CORS_ORIGIN": "http://allowed.example",
    "SSE_HEARTBEAT_SECONDS": "1",
    "RATE_LIMIT_PER_SECOND": "100000",
    "RATE_LIMIT_BURST": "100000",
    "DUALSTORE_DEBUG_HEADERS": "1",
}
"""Settings of the shared server: a token, one allowed origin, 1 s heartbeats, no throttling."""


@pytest.fixture(scope="session")
def reference_server(
    mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningReference]:
    """One reference server (2 workers) for the session, on its own database."""
    with launcher.start_reference(
        env=REFERENCE_ENV,
        workers=2,
        data_dir=tmp_path_factory.mktemp("reference"),
        mongodb_uri=with_database(mongodb_uri, "reference_session"),
    ) as server:
        yield server


@pytest.fixture
def reference_headers() -> dict[str, str]:
    """Authorization header accepted by reference_server."""
    return {"Authorization": f"Bearer {REFERENCE_TOKEN}"}


@pytest.fixture
def start_reference(
    mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., RunningReference]]:
    """Factory: start a reference server with other settings; stopped after the test.

    ``factory(env=None, workers=2, data_dir=None, mongodb_uri=None, port=None)``; env is
    added to REFERENCE_ENV (a value of "" removes the variable); without mongodb_uri the
    server gets a fresh database on the session's daemon.
    """
    started: list[RunningReference] = []

    def factory(
        env: dict[str, str] | None = None,
        workers: int = 2,
        data_dir: Path | None = None,
        mongodb_uri: str | None = None,
        port: int | None = None,
    ) -> RunningReference:
        merged = {k: v for k, v in {**REFERENCE_ENV, **(env or {})}.items() if v != ""}
        server = launcher.start_reference(
            env=merged,
            workers=workers,
            data_dir=data_dir or tmp_path_factory.mktemp("reference"),
            mongodb_uri=mongodb_uri or with_database(session_uri, f"ref_{uuid.uuid4().hex[:12]}"),
            port=port,
        )
        started.append(server)
        return server

    session_uri = mongodb_uri
    yield factory
    for server in started:
        server.close()
