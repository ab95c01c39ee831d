# SPDX-License-Identifier: GPL-3.0-or-later
"""A pymongo command listener for tests: which commands a client started, on what."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import monitoring


class CommandLog(monitoring.CommandListener):
    """Records every command a client starts: its name, target and document."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, Any, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        self.commands.append((name, event.command.get(name), dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.commands.clear()

    def names(self, collection: str) -> list[str]:
        """The names of the commands sent to collection, in order."""
        return [name for name, target, _ in self.commands if target == collection]

    def filters(self) -> list[dict[str, Any]]:
        """The filter of every find command."""
        return [dict(command.get("filter", {})) for name, _, command in self.commands
                if name == "find"]

    def counts(self, command_name: str) -> Counter[str]:
        """How many commands of this name went to each collection."""
        return Counter(str(target) for name, target, _ in self.commands if name == command_name)

    def change_streams(self) -> list[Any]:
        """The target of every change stream opened (1 for a database-level one)."""
        return [target for name, target, command in self.commands
                if name == "aggregate" and "$changeStream" in (command.get("pipeline") or [{}])[0]]
