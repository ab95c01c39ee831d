# SPDX-License-Identifier: GPL-3.0-or-later
"""``UsageError``: bad command-line input, reported by ``dualstore`` in one line with exit 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""
