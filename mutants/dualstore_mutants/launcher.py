# SPDX-License-Identifier: GPL-3.0-or-later
"""Start a mutant (the reference wrapped by faults) in a child process, like ``start_reference``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dualstore_reference.embedded import free_port
from dualstore_reference.launcher import RunningReference

from . import resolve

ROOT = Path(__file__).resolve().parents[1]
"""The folder holding this package: put on the children's PYTHONPATH (it is not installed)."""


class RunningMutant(RunningReference):
    """A running ``python -m dualstore_mutants.serve --faults ...``."""

    faults: tuple[str, ...] = ()
    """The fault names, outermost first (set by ``start_mutant``)."""

    def command(self) -> list[str]:
        """The reference's serve command line, through the mutants' entry with --faults."""
        command = super().command()
        command[command.index("dualstore_reference.serve")] = "dualstore_mutants.serve"
        return [*command, "--faults", ",".join(self.faults)]


def child_pythonpath() -> str:
    """PYTHONPATH for a child that must import dualstore_mutants (this root first)."""
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(part for part in (str(ROOT), inherited) if part)


def start_mutant(
    faults: Sequence[str],
    env: dict[str, str] | None = None,
    workers: int = 2,
    data_dir: Path | None = None,
    mongodb_uri: str | None = None,
    port: int | None = None,
    timeout: float = 90.0,
) -> RunningMutant:
    """Start the reference wrapped by faults (FaultError at once for an unknown name)."""
    resolve(list(faults))
    owns = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="dualstore-mutant-")) if data_dir is None else data_dir
    running = RunningMutant(
        env={**(env or {}), "PYTHONPATH": child_pythonpath()},
        workers=workers,
        data_dir=Path(folder),
        mongodb_uri=mongodb_uri,
        port=port or free_port(),
        owns_data_dir=owns,
        timeout=timeout,
    )
    running.faults = tuple(faults)
    try:
        running.start()
    except BaseException:
        running.close()
        raise
    return running
