# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter language: decode base64url JSON, validate against the spec, translate to MongoDB.

``parse(encoded)`` is what the HTTP layer calls. The translation is built from an
allow-list: every operator name in the output comes from this module's own tables, every
field path has been checked against the spec's grammar, and every value is a re-checked
scalar (or a datetime for ``timestamp``). User JSON is never passed through to the driver.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import re
from typing import Any

import dualstore_spec
import jsonschema

from . import timestamps

Filter = dict[str, Any]
"""A decoded, validated filter (the JSON object of filter.schema.json)."""
Query = dict[str, Any]
"""A MongoDB query document."""

LOGICAL = ("$and", "$or")
# Spec operator -> MongoDB operator. Output keys are taken from here, never from the input.
OPERATORS: dict[str, str] = {
    "$in": "$in",
    "$gt": "$gt",
    "$gte": "$gte",
    "$lt": "$lt",
    "$lte": "$lte",
    "$exists": "$exists",
}
TIMESTAMP_FIELD = "timestamp"
METADATA_PREFIX = "metadata."
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")
_BASE64URL_CHAR = re.compile(r"[A-Za-z0-9_-]")
_PATH_SEGMENT_BAD = re.compile(r"[.$\x00]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class FilterError(ValueError):
    """A filter that cannot be accepted; the message names the problem (for the 400 detail)."""


@functools.cache
def bounds() -> dict[str, int]:
    """The filter bounds published by the spec (filter.schema.json x-dualstore-bounds)."""
    published: dict[str, int] = dualstore_spec.filter_schema()["x-dualstore-bounds"]
    return dict(published)


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        dualstore_spec.filter_schema(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


# ------------------------------------------------------------------------------ decode
def _reject_constant(name: str) -> Any:
    raise FilterError(f"filter JSON contains {name}, which is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FilterError(f"filter JSON repeats the key {key!r}")
        result[key] = value
    return result


def decode(encoded: str) -> Filter:
    """base64url (padding optional) -> UTF-8 -> JSON object; FilterError naming the problem."""
    limit = bounds()["max_encoded_length"]
    if len(encoded) > limit:
        raise FilterError(f"filter is {len(encoded)} characters long; the limit is {limit}")
    if not _BASE64URL.match(encoded):
        for position, char in enumerate(encoded):
            if not _BASE64URL_CHAR.match(char) and not (
                char == "=" and "=" not in encoded[:position]
            ):
                break
        else:  # only '=' misplaced
            position, char = encoded.index("="), "="
        raise FilterError(
            f"filter is not base64url: character {char!r} at position {position} is not allowed "
            "(alphabet A-Z a-z 0-9 - _, optional trailing '=' padding)"
        )
    body = encoded.rstrip("=")
    padding = len(encoded) - len(body)
    if len(body) % 4 == 1 or (padding and len(encoded) % 4 != 0):
        raise FilterError(
            f"filter is not base64url: a length of {len(body)} characters is impossible"
        )
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as error:
        raise FilterError(f"filter is not base64url: {error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FilterError(
            f"filter is not UTF-8: byte 0x{raw[error.start]:02x} at position {error.start}"
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        raise FilterError(f"filter is not JSON: {error.msg} at character {error.pos}") from None
    except RecursionError:
        raise FilterError("filter JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise FilterError(f"filter must be a JSON object, got {_json_type(value)}")
    _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    """Every key and string is Unicode: a lone surrogate escape is refused (I-JSON)."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and _SURROGATE.search(node):
            raise FilterError(
                "filter JSON holds a lone surrogate escape (such as \\ud800), which is not "
                "a Unicode string (I-JSON, RFC 7493)"
            )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# ------------------------------------------------------------------------------ validate
def _check_field_name(name: str, where: str) -> None:
    if name.startswith("$"):
        allowed = ", ".join(LOGICAL)
        raise FilterError(
            f"{where}: operator {name!r} is not part of the filter language "
            f"(allowed at this level: {allowed})"
        )
    if name == TIMESTAMP_FIELD:
        return
    if not name.startswith(METADATA_PREFIX):
        raise FilterError(
            f"{where}: unknown field {name!r} (fields are 'timestamp' and 'metadata.<path>')"
        )
    if "$" in name:
        raise FilterError(f"{where}: '$' is not allowed in the field path {name!r}")
    segments = name[len(METADATA_PREFIX) :].split(".")
    if any(not segment or _PATH_SEGMENT_BAD.search(segment) for segment in segments):
        raise FilterError(f"{where}: malformed field path {name!r} (empty key or NUL)")
    if len(segments) > bounds()["max_path_segments"]:
        raise FilterError(
            f"{where}: field path {name!r} has {len(segments)} keys; "
            f"the limit is {bounds()['max_path_segments']}"
        )


def _check_condition(name: str, condition: Any, where: str) -> int:
    """Operator names of one field condition; returns how many conditions it holds."""
    if not isinstance(condition, dict):
        return 1
    if not condition:
        raise FilterError(f"{where}/{name}: an empty operator object matches nothing meaningful")
    for operator in condition:
        if operator not in OPERATORS:
            allowed = ", ".join(OPERATORS)
            kind = "operator" if operator.startswith("$") else "key"
            raise FilterError(
                f"{where}/{name}: {kind} {operator!r} is not part of the filter language "
                f"(allowed: {allowed}; compare objects by their dotted paths instead)"
            )
    return len(condition)


def _walk(node: Any, where: str, depth: int) -> int:
    """Friendly checks before the schema (names, depth); returns the number of conditions."""
    if not isinstance(node, dict):
        raise FilterError(f"{where}: expected an object, got {_json_type(node)}")
    count = 0
    for name, value in node.items():
        if name in LOGICAL:
            if depth >= bounds()["max_depth"]:
                raise FilterError(
                    f"{where}: $and/$or nest more than {bounds()['max_depth']} levels deep"
                )
            if not isinstance(value, list) or not value:
                raise FilterError(f"{where}/{name}: needs a non-empty array of filters")
            for index, sub in enumerate(value):
                count += _walk(sub, f"{where}/{name}/{index}", depth + 1)
            continue
        _check_field_name(name, where or "/")
        count += _check_condition(name, value, where)
    return count


def validate(value: Any) -> Filter:
    """Check a decoded filter against filter.schema.json and the bounds; return it."""
    if not isinstance(value, dict):
        raise FilterError(f"filter must be a JSON object, got {_json_type(value)}")
    conditions = _walk(value, "", 0)
    if conditions > bounds()["max_conditions"]:
        raise FilterError(
            f"filter holds {conditions} conditions; the limit is {bounds()['max_conditions']}"
        )
    error = jsonschema.exceptions.best_match(_validator().iter_errors(value))
    if error is not None:
        error = _deepest(error)
        where = "/" + "/".join(str(part) for part in error.absolute_path)
        raise FilterError(f"filter at {where}: {_schema_message(error)}")
    return value


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Inside anyOf/oneOf, the alternative that got furthest into the value names the problem."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        deeper = max(error.context, key=lambda sub: len(sub.absolute_path))
        if len(deeper.absolute_path) <= len(error.absolute_path):
            break
        error = deeper
    return error


def _schema_message(error: jsonschema.ValidationError) -> str:
    instance = error.instance
    sizes = {"maxItems": "items", "maxLength": "characters", "maxProperties": "keys"}
    if error.validator in sizes and isinstance(instance, list | str | dict):
        unit = sizes[str(error.validator)]
        return f"{len(instance)} {unit}; the limit is {error.validator_value}"
    if error.validator in ("minimum", "maximum"):
        return f"{instance} is outside the portable number range ±(2^53 - 1)"
    if error.validator in ("anyOf", "oneOf") and isinstance(instance, list | dict | None):
        return (
            f"{_json_type(instance)} is not a valid value here (values are strings, numbers "
            "and booleans; timestamps are RFC 3339 date-times)"
        )
    if error.validator == "anyOf" and isinstance(instance, str):
        return f"{instance!r} is not a valid RFC 3339 date-time (or a string is too long)"
    return str(error.message)


# ------------------------------------------------------------------------------ translate
def _scalar(value: Any, where: str) -> str | int | float | bool:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    raise FilterError(f"{where}: {_json_type(value)} is not a filter value")


def _time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise FilterError(f"{where}: timestamp values are RFC 3339 strings")
    try:
        return timestamps.parse_rfc3339(value)
    except timestamps.TimestampError as error:
        raise FilterError(f"{where}: {value!r} is not a usable timestamp: {error}") from None


def _operand(is_time: bool, operator: str, value: Any, where: str) -> Any:
    if operator == "$exists":
        return value is True
    if operator == "$in":
        if not isinstance(value, list):
            raise FilterError(f"{where}: $in needs an array")
        return [_time(v, where) if is_time else _scalar(v, where) for v in value]
    return _time(value, where) if is_time else _scalar(value, where)


def _clause(name: str, condition: Any, where: str) -> Query:
    _check_field_name(name, where or "/")  # defensive: to_mongo may get unvalidated input
    is_time = name == TIMESTAMP_FIELD
    path = TIMESTAMP_FIELD if is_time else name
    if not isinstance(condition, dict):
        value = _time(condition, where) if is_time else _scalar(condition, where)
        return {path: {"$eq": value}}
    ops: dict[str, Any] = {}
    for operator, value in condition.items():
        if operator not in OPERATORS:
            raise FilterError(f"{where}/{name}: operator {operator!r} is not allowed")
        ops[OPERATORS[operator]] = _operand(is_time, operator, value, f"{where}/{name}")
    return {path: ops}


def _translate(node: Filter, where: str) -> Query:
    clauses: list[Query] = []
    for name, value in node.items():
        if name in LOGICAL:
            mongo_name = "$and" if name == "$and" else "$or"
            if not isinstance(value, list) or not value:
                raise FilterError(f"{where}/{name}: needs a non-empty array of filters")
            subs = [_translate(sub, f"{where}/{name}/{i}") for i, sub in enumerate(value)]
            clauses.append({mongo_name: subs})
        else:
            clauses.append(_clause(name, value, where))
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": clauses}


def to_mongo(value: Filter) -> Query:
    """A validated filter -> a MongoDB query built only from allow-listed parts."""
    return _translate(value, "")


def parse(encoded: str) -> Query:
    """decode + validate + to_mongo; an empty string means no filter ({})."""
    if encoded == "":
        return {}
    return to_mongo(validate(decode(encoded)))
