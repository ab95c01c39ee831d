# SPDX-License-Identifier: GPL-3.0-or-later
"""Evaluate the allow-listed MongoDB query subset in Python, to filter live stream events.

The stream tests each live document against the subscriber's filter in memory, so that the
database load stays independent of the number of (filtered) subscribers. Replay uses the
same query on the database; ``tests/reference/test_stream_matcher.py`` checks both agree.
Supported: field equality (with MongoDB's array-element rule), ``$eq``, ``$ne``, ``$in``,
``$nin``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$exists``, ``$and``, ``$or``, ``$nor``,
dotted paths through objects and arrays. Comparisons are type-bracketed (numbers with
numbers, strings with strings, dates with dates), as MongoDB does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

Document = dict[str, Any]
Predicate = Callable[[Document], bool]

_ORDERED = ("number", "string", "date", "bool")


class UnsupportedQuery(ValueError):
    """The query uses an operator this matcher does not evaluate."""


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _bracket(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "date"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    a, b = _normal(a), _normal(b)
    if _bracket(a) != _bracket(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _values(document: Any, path: list[str]) -> list[Any]:
    """Values at a dotted path; arrays met on the way are traversed element-wise."""
    if not path:
        return [document]
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        if head not in document:
            return []
        return _values(document[head], rest)
    if isinstance(document, list):
        found: list[Any] = []
        if head.isdigit() and int(head) < len(document):
            found.extend(_values(document[int(head)], rest))
        for element in document:
            if isinstance(element, dict):
                found.extend(_values(element, path))
        return found
    return []


def _candidates(values: list[Any]) -> list[Any]:
    """A value and, for arrays, also each element (MongoDB's equality/comparison rule)."""
    out: list[Any] = []
    for value in values:
        out.append(value)
        if isinstance(value, list):
            out.extend(value)
    return out


def _matches_eq(values: list[Any], operand: Any) -> bool:
    if operand is None and not values:
        return True  # {field: null} matches a missing field
    return any(_equal(candidate, operand) for candidate in _candidates(values))


def _compare(values: list[Any], operand: Any, test: Callable[[Any, Any], bool]) -> bool:
    operand = _normal(operand)
    bracket = _bracket(operand)
    for candidate in _candidates(values):
        candidate = _normal(candidate)
        if _bracket(candidate) == bracket and bracket in _ORDERED and test(candidate, operand):
            return True
    return False


def _field(path: str, condition: Any) -> Predicate:
    parts = path.split(".")
    is_operators = isinstance(condition, dict) and bool(condition)
    if not (is_operators and all(key.startswith("$") for key in condition)):
        return lambda document: _matches_eq(_values(document, parts), condition)
    tests: list[Callable[[list[Any]], bool]] = []
    for operator, operand in condition.items():
        tests.append(_operator(operator, operand))
    return lambda document: all(test(_values(document, parts)) for test in tests)


def _operator(operator: str, operand: Any) -> Callable[[list[Any]], bool]:
    if operator == "$eq":
        return lambda values: _matches_eq(values, operand)
    if operator == "$ne":
        return lambda values: not _matches_eq(values, operand)
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise UnsupportedQuery(f"{operator} needs an array")
        options = list(operand)

        def in_(values: list[Any]) -> bool:
            return any(_matches_eq(values, option) for option in options)

        return in_ if operator == "$in" else (lambda values: not in_(values))
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }
    if operator in comparisons:
        test = comparisons[operator]
        return lambda values: _compare(values, operand, test)
    if operator == "$exists":
        wanted = bool(operand)
        return lambda values: bool(values) is wanted
    raise UnsupportedQuery(f"operator {operator} is not supported by the stream matcher")


def _combine(operator: str, subs: list[Predicate]) -> Predicate:
    if operator == "$and":
        return lambda document: all(sub(document) for sub in subs)
    if operator == "$or":
        return lambda document: any(sub(document) for sub in subs)
    return lambda document: not any(sub(document) for sub in subs)


def compile_query(query: Document) -> Predicate:
    """A predicate equivalent to the MongoDB query (for the supported subset)."""
    parts: list[Predicate] = []
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not value:
                raise UnsupportedQuery(f"{key} needs a non-empty array")
            parts.append(_combine(key, [compile_query(sub) for sub in value]))
        elif key.startswith("$"):
            raise UnsupportedQuery(f"operator {key} is not supported by the stream matcher")
        else:
            parts.append(_field(key, value))
    return lambda document: all(p(document) for p in parts)
