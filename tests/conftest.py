# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: a real SecantusDB daemon per test session, on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dualstore_reference.embedded import EmbeddedDatabase

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
