# SPDX-License-Identifier: GPL-3.0-or-later
"""The DualStore HTTP specification files, installed as the package ``dualstore_spec``."""

from __future__ import annotations

import functools
import json
from typing import Any

import yaml
from dualstore_spec.location import SPEC_DIR as SPEC_DIR
from dualstore_spec.location import SPEC_DIR_ENV as SPEC_DIR_ENV
from dualstore_spec.location import folder as folder
from dualstore_spec.location import path as path

OPENAPI_FILE = "openapi.yaml"
SSE_CONTRACT_FILE = "sse-contract.yaml"
FILTER_SCHEMA_FILE = "filter.schema.json"
RULES_FILE = "rules.yaml"
META_SCHEMA_DIR = "meta-schemas"


YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (several times faster), else PyYAML's."""


def load_text(name: str, text: str) -> Any:
    """Parse a spec file's text: JSON for .json names, YAML (safe subset) otherwise."""
    return json.loads(text) if name.endswith(".json") else yaml.load(text, Loader=YamlLoader)


def _load(name: str) -> Any:
    return load_text(name, path(name).read_text(encoding="utf-8"))


@functools.cache
def openapi() -> dict[str, Any]:
    """The OpenAPI document (parsed, read-only by convention)."""
    result: dict[str, Any] = _load(OPENAPI_FILE)
    return result


@functools.cache
def sse_contract() -> dict[str, Any]:
    """The SSE contract (parsed)."""
    result: dict[str, Any] = _load(SSE_CONTRACT_FILE)
    return result


@functools.cache
def filter_schema() -> dict[str, Any]:
    """The JSON Schema of the decoded filter language."""
    result: dict[str, Any] = _load(FILTER_SCHEMA_FILE)
    return result


@functools.cache
def rules() -> list[dict[str, Any]]:
    """Every normative rule: dicts with id, level, statement, section."""
    result: list[dict[str, Any]] = _load(RULES_FILE)["rules"]
    return result


@functools.cache
def rules_by_id() -> dict[str, dict[str, Any]]:
    """Rules keyed by their stable ID."""
    return {rule["id"]: rule for rule in rules()}


def meta_schema(name: str) -> dict[str, Any]:
    """A meta-schema from spec/meta-schemas/ by file name."""
    result: dict[str, Any] = _load(f"{META_SCHEMA_DIR}/{name}")
    return result


def version() -> str:
    """The spec version (info.version of the OpenAPI document)."""
    return str(openapi()["info"]["version"])


def forget() -> None:
    """Drop every cached spec file and fact (after ``$DUALSTORE_SPEC_DIR`` changed)."""
    from dualstore_spec import facts

    for cached in (openapi, sse_contract, filter_schema, rules, rules_by_id):
        cached.cache_clear()
    facts.forget()
