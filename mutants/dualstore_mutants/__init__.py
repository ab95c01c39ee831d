# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only mutants of the reference (never installed): the catalogue, the registry, ``wrap``."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from .asgi import ASGIApp
from .registry import FAULTS as FAULTS
from .registry import FaultFactory as FaultFactory
from .registry import fault as fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings


def load_catalogue() -> dict[str, dict[str, Any]]:
    """catalogue.yaml as name -> entry (description, family, breaks, collateral, ...)."""
    text = (resources.files(__package__) / "catalogue.yaml").read_text("utf-8")
    entries: list[dict[str, Any]] = yaml.safe_load(text)["mutants"]
    return {str(entry["name"]): entry for entry in entries}


CATALOGUE: dict[str, dict[str, Any]] = load_catalogue()
"""The documented mutants, in catalogue order."""

from . import cursor, filters, legal, limits, resolutions, rest, security, sse, syntax  # noqa: E402,F401  (registration side effects)


class FaultError(ValueError):
    """A fault name that is not registered (or a catalogue entry without a factory)."""


def resolve(names: Sequence[str]) -> list[FaultFactory]:
    """The factories of names, in order; FaultError unless every name is known and loaded."""
    if not names:
        raise FaultError("no fault named")
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise FaultError(f"unknown fault {', '.join(unknown)}; known: {', '.join(sorted(FAULTS))}")
    return [FAULTS[name] for name in names]


def wrap(app: Any, names: Sequence[str], settings: Settings) -> Any:
    """app wrapped by every named fault (the first listed is outermost); FaultError if unknown."""
    wrapped: ASGIApp = app
    for factory in reversed(resolve(names)):
        wrapped = factory(wrapped, settings)
    return wrapped
