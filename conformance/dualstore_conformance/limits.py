# SPDX-License-Identifier: GPL-3.0-or-later
"""The limits in force: the spec's ``x-dualstore-limits`` with the deployment profile's values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dualstore_spec.facts import SpecError

from dualstore_conformance.profile import DeploymentProfile, limits_view, spec_defaults


def spec_limits(profile: DeploymentProfile | None = None) -> dict[str, Any]:
    """The spec's ``x-dualstore-limits`` with the deployment profile's configured values."""
    return limits_view(profile or spec_defaults())


def stream_cap(limits: Mapping[str, Any]) -> int:
    """The per-IP stream cap of the deployment (the spec's, or the profile's declared one)."""
    value = limits["stream_cap_per_ip"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"stream_cap_per_ip is not a positive integer: {value!r}")
    return value


def limit_value(limits: Mapping[str, Any], path: str) -> int:
    """A positive integer from the spec's x-dualstore-limits (with the deployment profile's
    values) by dotted path; SpecError when the spec does not state it (never a default)."""
    node: Any = limits
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise SpecError(f"the spec's x-dualstore-limits has no {path}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int) or node < 1:
        raise SpecError(f"the spec's x-dualstore-limits {path} is not a positive integer: "
                        f"{node!r}")
    return node
