# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the reference-server tests: OpenAPI-validating HTTP clients."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from dualstore_reference.launcher import RunningReference


def _load_helper(name: str) -> ModuleType:
    """Import a helper module beside this file (pytest runs in importlib mode)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


openapi_validation = _load_helper("dualstore_openapi_validation")
commands = _load_helper("dualstore_commands")


@pytest.fixture
def command_log() -> Any:
    """A fresh pymongo command listener (pass it as ``event_listeners=[command_log]``)."""
    return commands.CommandLog()


@pytest.fixture
def openapi_validate() -> Callable[[httpx.Response], httpx.Response]:
    """Assert that an httpx response matches the OpenAPI document (openapi-core)."""
    validate: Callable[[httpx.Response], httpx.Response] = openapi_validation.validate
    return validate


@pytest.fixture
def validating_client() -> Iterator[Callable[..., httpx.Client]]:
    """Factory of httpx clients whose every response is validated against the OpenAPI doc."""
    clients: list[httpx.Client] = []

    def make(**kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        client: httpx.Client = openapi_validation.ValidatingClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(
    reference_server: RunningReference,
    reference_headers: dict[str, str],
    validating_client: Callable[..., httpx.Client],
) -> httpx.Client:
    """A validating client for the shared reference server, with the token."""
    return validating_client(base_url=reference_server.url, headers=reference_headers)


@pytest.fixture
def anonymous(
    reference_server: RunningReference, validating_client: Callable[..., httpx.Client]
) -> httpx.Client:
    """A validating client for the shared reference server, without a token."""
    return validating_client(base_url=reference_server.url)
