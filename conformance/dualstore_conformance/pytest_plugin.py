# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest plugin: the conformance checks as pytest items (inert without --dualstore-url)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the --dualstore-* options."""
    group = parser.getgroup("dualstore", "DualStore HTTP conformance checks")
    group.addoption("--dualstore-url", default=None, help="target base URL (enables the plugin)")
    group.addoption("--dualstore-token", default=None, help="bearer token for the target")
    group.addoption("--dualstore-collection", default=None, help="collection to write to")
    group.addoption("--dualstore-heartbeat-seconds", type=float, default=15.0)
    group.addoption("--dualstore-timeout-multiplier", type=float, default=1.0)
    group.addoption("--dualstore-only", default=None, help="check ids / prefixes / rule ids (CSV)")
    group.addoption("--dualstore-skip", default=None, help="check ids / prefixes / rule ids (CSV)")
    group.addoption("--dualstore-level", default="may", choices=["must", "should", "may"])
    group.addoption("--dualstore-xfail", default=None, help="YAML {check-id: reason} (strict)")
