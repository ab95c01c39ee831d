# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the spec files are: the installed folder, or ``$DUALSTORE_SPEC_DIR`` when set."""

from __future__ import annotations

import os
from pathlib import Path

SPEC_DIR: Path = Path(__file__).resolve().parent
"""Folder holding openapi.yaml, sse-contract.yaml, filter.schema.json, rules.yaml."""

SPEC_DIR_ENV = "DUALSTORE_SPEC_DIR"
"""When set, the folder of the spec to read instead (a spec under revision; tests)."""


def folder() -> Path:
    """The spec folder in use: ``$DUALSTORE_SPEC_DIR`` when set, else the installed one."""
    override = os.environ.get(SPEC_DIR_ENV)
    return Path(override).resolve() if override else SPEC_DIR


def path(name: str = "") -> Path:
    """Absolute path of a spec file (or of the spec folder with no name)."""
    base = folder()
    return base / name if name else base
