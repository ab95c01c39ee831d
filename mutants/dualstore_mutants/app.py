# SPDX-License-Identifier: GPL-3.0-or-later
"""The gunicorn app factory of a mutant: the reference app wrapped by the named faults."""

from __future__ import annotations

import logging
import os
from typing import Any

from dualstore_reference.app import create_app
from dualstore_reference.settings import Settings

from . import resolve, wrap


def create(names: str) -> Any:
    """gunicorn entry ``dualstore_mutants.app:create('a,b')``: settings from env, faults wrapped.

    An unknown fault name raises (the worker does not boot, so the server does not start).
    """
    faults = [name.strip() for name in names.split(",") if name.strip()]
    resolve(faults)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings.from_env()
    return wrap(create_app(settings), faults, settings)
