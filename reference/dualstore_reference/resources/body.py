# SPDX-License-Identifier: GPL-3.0-or-later
"""Request bodies: media type (415), size cap without buffering (413), JSON (400), NewDoc (422)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import falcon.asgi
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..problems import Problem
from ..store.timestamps import TimestampError, parse_rfc3339

OPENAPI_URI = "urn:dualstore:openapi"
NEWDOC_FIELDS = frozenset({"text", "timestamp", "metadata"})
MAX_METADATA_DEPTH = 8
KEY_RULE = "keys are non-empty, without '.', NUL or a leading '$'"
INT64 = (-(2**53 - 1), 2**53 - 1)
MAX_BODY_DEPTH = MAX_METADATA_DEPTH + 1
"""Containers below the body object: metadata itself plus its nesting."""
_SURROGATE = re.compile("[\ud800-\udfff]")


async def read_json(req: falcon.asgi.Request, max_bytes: int) -> Any:
    """The parsed JSON body; never holds more than max_bytes + one chunk in memory."""
    media = (req.content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(
            "unsupported-media-type",
            f"Content-Type must be application/json, got {req.content_type or 'none'}.",
        )
    charset = _charset(req.content_type or "")
    if charset not in (None, "utf-8"):
        raise Problem("unsupported-media-type", f"JSON bodies are UTF-8; got charset={charset}.")
    length = req.content_length
    if length is not None and length > max_bytes:
        raise Problem(
            "payload-too-large", f"The body is {length} bytes; the limit is {max_bytes} bytes."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in req.stream:
        size += len(chunk)
        if size > max_bytes:
            raise Problem(
                "payload-too-large", f"The body exceeds the limit of {max_bytes} bytes."
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            text = text[1:]
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique)
    except RecursionError:
        raise Problem("invalid-json", "The body nests arrays or objects too deeply.") from None
    except UnicodeDecodeError:
        raise Problem("invalid-json", "The body is not valid UTF-8.") from None
    except json.JSONDecodeError as error:
        raise Problem(
            "invalid-json", f"The body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}."
        ) from None
    except ValueError as error:
        raise Problem("invalid-json", f"The body is not valid JSON: {error}.") from None
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    """I-JSON (RFC 7493) strings and a bounded depth, walked without recursion.

    A lone surrogate escape (``"\\ud800"``) is valid JSON syntax but no Unicode string:
    400 invalid-json. A body nested deeper than any valid NewDoc can be is 422 here,
    before the schema validator (which recurses) ever sees it.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node)
        elif isinstance(node, dict):
            if depth > MAX_BODY_DEPTH:
                _too_deep()
            for key, item in node.items():
                _check_string(key)
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_BODY_DEPTH:
                _too_deep()
            stack.extend((item, depth + 1) for item in node)


def _check_string(text: str) -> None:
    if _SURROGATE.search(text):
        raise Problem(
            "invalid-json",
            "The body holds a lone surrogate escape (such as \\ud800): not a Unicode string "
            "(I-JSON, RFC 7493).",
        )


def _too_deep() -> None:
    raise Problem(
        "validation-failed",
        f"The body nests deeper than a document can (metadata: {MAX_METADATA_DEPTH} levels).",
        extra={"errors": [{"pointer": "/metadata", "message": "nested too deeply"}]},
    )


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names are unique (I-JSON); a repeated name is invalid JSON."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"the member name {name[:60]!r} appears twice in one object")
        result[name] = value
    return result


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


@functools.cache
def newdoc_validator() -> Draft202012Validator | None:
    """A validator for the OpenAPI NewDoc schema (None if the spec has none)."""
    try:
        import dualstore_spec

        document = dualstore_spec.openapi()
    except Exception:
        return None
    if not isinstance(document, dict):
        return None
    if "NewDoc" not in document.get("components", {}).get("schemas", {}):
        return None
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(OPENAPI_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{OPENAPI_URI}#/components/schemas/NewDoc"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def validate_new_doc(body: Any) -> dict[str, Any]:
    """The body if it is a valid NewDoc; else 422 validation-failed naming the problem."""
    problems: list[tuple[str, str]] = []
    validator = newdoc_validator()
    if validator is not None:
        for error in sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.path]):
            pointer = "".join("/" + _escape(str(p)) for p in error.path)
            problems.append((pointer, _short(error.message)))
            if len(problems) >= 5:
                break
    if not problems:
        problems = _hand_check(body)
    if problems:
        raise Problem(
            "validation-failed",
            "; ".join(f"{pointer or '/'}: {message}" for pointer, message in problems),
            extra={"errors": [{"pointer": p, "message": m} for p, m in problems]},
        )
    assert isinstance(body, dict)
    return body


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _short(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


def _hand_check(body: Any) -> list[tuple[str, str]]:
    """The NewDoc rules by hand: a fallback, and what the schema cannot say (int64, dates)."""
    if not isinstance(body, dict):
        return [("", "the body must be a JSON object")]
    problems = [(f"/{_escape(key)}", "unknown field") for key in body if key not in NEWDOC_FIELDS]
    text = body.get("text")
    if not isinstance(text, str) or not text:
        problems.append(("/text", "required, a non-empty string"))
    if "timestamp" in body:
        stamp = body["timestamp"]
        if not isinstance(stamp, str):
            problems.append(("/timestamp", "must be an RFC 3339 date-time string"))
        else:
            try:
                parse_rfc3339(stamp)
            except TimestampError as error:
                problems.append(("/timestamp", str(error)))
    if "metadata" in body:
        metadata = body["metadata"]
        if not isinstance(metadata, dict):
            problems.append(("/metadata", "must be an object"))
        else:
            problems.extend(_check_value(metadata, "/metadata", 1))
    return problems[:5]


def _check_value(value: Any, where: str, depth: int) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        if depth > MAX_METADATA_DEPTH:
            return [(where, f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")]
        found: list[tuple[str, str]] = []
        for key, item in value.items():
            if not key or "." in key or key.startswith("$") or "\x00" in key:
                found.append((f"{where}/{_escape(key)}", KEY_RULE))
            else:
                found.extend(_check_value(item, f"{where}/{_escape(key)}", depth + 1))
        return found
    if isinstance(value, list):
        if depth > MAX_METADATA_DEPTH:
            return [(where, f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")]
        found = []
        for index, item in enumerate(value):
            found.extend(_check_value(item, f"{where}/{index}", depth + 1))
        return found
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        return [(where, "numbers must be within +-(2^53 - 1)")]
    return []
