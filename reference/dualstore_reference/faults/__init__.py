# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only fault injection (``DUALSTORE_FAULTS``): the mutant catalogue and ``wrap``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from .asgi import ASGIApp

if TYPE_CHECKING:
    from ..settings import Settings

FaultFactory = Callable[[ASGIApp, "Settings"], ASGIApp]
FAULTS: dict[str, FaultFactory] = {}
"""Fault name -> factory wrapping the app (filled by the rest, security and sse modules)."""

F = TypeVar("F", bound=FaultFactory)


def fault(name: str) -> Callable[[F], F]:
    """Register a fault factory under name."""

    def register(factory: F) -> F:
        if name in FAULTS:
            raise ValueError(f"duplicate fault {name}")
        FAULTS[name] = factory
        return factory

    return register


def load_catalogue() -> dict[str, dict[str, Any]]:
    """catalogue.yaml as name -> entry (description, family, breaks, collateral, ...)."""
    text = (resources.files(__package__) / "catalogue.yaml").read_text("utf-8")
    entries: list[dict[str, Any]] = yaml.safe_load(text)["mutants"]
    return {str(entry["name"]): entry for entry in entries}


CATALOGUE: dict[str, dict[str, Any]] = load_catalogue()
"""The documented mutants, in catalogue order."""

from . import rest, security, sse  # noqa: E402,F401  (registration side effects)


def wrap(app: Any, settings: Settings) -> Any:
    """app wrapped by every fault named in settings.faults (the first listed is outermost)."""
    unknown = [name for name in settings.faults if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown DUALSTORE_FAULTS {unknown}; known: {sorted(FAULTS)}")
    wrapped: ASGIApp = app
    for name in reversed(settings.faults):
        wrapped = FAULTS[name](wrapped, settings)
    return wrapped
