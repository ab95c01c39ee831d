# SPDX-License-Identifier: GPL-3.0-or-later
"""The fault registry: ``@fault(name)`` registers a factory that wraps the reference app."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .asgi import ASGIApp

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings

FaultFactory = Callable[[ASGIApp, "Settings"], ASGIApp]
FAULTS: dict[str, FaultFactory] = {}
"""Fault name -> factory wrapping the app (filled by the rest, security, sse, ... modules)."""

F = TypeVar("F", bound=FaultFactory)


def fault(name: str) -> Callable[[F], F]:
    """Register a fault factory under name."""

    def register(factory: F) -> F:
        if name in FAULTS:
            raise ValueError(f"duplicate fault {name}")
        FAULTS[name] = factory
        return factory

    return register
