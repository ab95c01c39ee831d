# SPDX-License-Identifier: GPL-3.0-or-later
"""What the REST resources need of the worker's shared state (``app.AppState`` provides it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..metrics import Metrics
    from ..search.index import VectorIndex
    from ..settings import Settings
    from ..store.documents import Store


class ApiState(Protocol):
    """Settings, metrics, the store and the vector indexes, and a database ping."""

    settings: Settings
    metrics: Metrics
    store: Store
    indexes: dict[str, VectorIndex]

    async def ping(self) -> bool:
        """True if the database answers a ping within a short timeout."""
        ...
