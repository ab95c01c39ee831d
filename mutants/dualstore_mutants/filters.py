# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter-semantics mutants: the ``filter`` parameter rewritten before the reference reads it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .asgi import ASGIApp, Scope, query, rewrite_request, with_query
from .registry import fault
from .rest import _valid_filter

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings

LOGICAL = ("$and", "$or")
NUMERIC = re.compile(r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]+)?$")


def _decode(value: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return None


def _encode(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def rewrite_filters(app: ASGIApp, change: Callable[[dict[str, Any]], dict[str, Any]]) -> ASGIApp:
    """Every valid ``filter`` (recent, search and stream) replaced by change(it): the server
    validates what the client sent (bounds included), then evaluates it wrongly."""

    def rewrite(scope: Scope) -> Scope:
        pairs = query(scope)
        changed = []
        for name, value in pairs:
            valid = name == "filter" and bool(value) and _valid_filter(value)
            decoded = _decode(value) if valid else None
            changed.append((name, _encode(change(decoded)) if isinstance(decoded, dict) else value))
        return scope if changed == pairs else with_query(scope, changed)

    return rewrite_request(app, rewrite)


def flatten(node: dict[str, Any], parent: str | None = None) -> dict[str, Any]:
    """A nested $and/$or merged into its parent's list: {$or: [{$and: [A, B]}, C]} becomes
    {$or: [A, B, C]} (each operator's own meaning lost below the top level)."""
    out: dict[str, Any] = {}
    for name, value in node.items():
        if name in LOGICAL and isinstance(value, list):
            merged: list[Any] = []
            for sub in value:
                if isinstance(sub, dict):
                    inner = flatten(sub, name)
                    logical = [k for k in inner if k in LOGICAL]
                    if len(inner) == 1 and logical:
                        merged.extend(inner[logical[0]])
                        continue
                    merged.append(inner)
                else:
                    merged.append(sub)
            out[name] = merged
        else:
            out[name] = value
    return out


@fault("rest-filter-flattened")
def filter_flattened(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Nested $and/$or are evaluated as if flattened into the outermost operator."""
    return rewrite_filters(app, flatten)


def _coerced(value: Any) -> list[Any]:
    """value and what a loose (JavaScript ==) comparison would also take for equal."""
    if isinstance(value, bool):
        return [value, int(value)]
    if isinstance(value, int | float):
        loose: list[Any] = [value, str(value)]
        if value in (0, 1):
            loose.append(bool(value))
        return loose
    if isinstance(value, str) and NUMERIC.match(value):
        number = float(value)
        return [value, int(number) if number.is_integer() else number]
    return [value]


def coerce(node: dict[str, Any]) -> dict[str, Any]:
    """Equality and $in on metadata fields widened to loosely equal values of other types."""
    out: dict[str, Any] = {}
    for name, value in node.items():
        if name in LOGICAL and isinstance(value, list):
            out[name] = [coerce(sub) if isinstance(sub, dict) else sub for sub in value]
        elif not name.startswith("metadata."):
            out[name] = value
        elif isinstance(value, dict):
            out[name] = {
                op: [v for item in arg for v in _coerced(item)][:100]
                if op == "$in" and isinstance(arg, list) else arg
                for op, arg in value.items()
            }
        else:
            loose = _coerced(value)
            out[name] = value if len(loose) == 1 else {"$in": loose}
    return out


@fault("rest-filter-type-coercing")
def filter_type_coercing(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Equality converts types (true == 1, "1" == 1), as a JavaScript == comparison would."""
    return rewrite_filters(app, coerce)
