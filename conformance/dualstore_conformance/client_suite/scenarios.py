# SPDX-License-Identifier: GPL-3.0-or-later
"""Scenario data: load the YAML files, validate them against the meta-schema, expand chunks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jsonschema
import yaml

GROUPS = ("framing", "connection", "dualstore")
"""Scenario files, in run order."""
DEFAULT_TIMEOUT_MS = 8000
DEFAULT_SETTLE_MS = 800
DEFAULT_CHUNK_GAP_MS = 40


class ScenarioError(Exception):
    """A scenario file does not match the meta-schema (or two scenarios share an id)."""


@dataclass(frozen=True)
class Step:
    """One step of a response body: bytes to write, or a pause."""

    data: bytes = b""
    delay_ms: int = 0


@dataclass(frozen=True)
class Connection:
    """What the server does with one request to the stream."""

    status: int
    headers: dict[str, str]
    steps: list[Step]
    end: str
    """close, hold or drop."""


@dataclass(frozen=True)
class Scenario:
    """One scenario: the scripted server side and the expectation."""

    id: str
    title: str
    group: str
    level: str
    cite: list[str]
    profiles: list[str]
    requires: list[str]
    listen: list[str]
    options: dict[str, Any]
    connections: list[Connection]
    after_script: str
    expect: dict[str, Any]
    timeout_ms: int
    settle_ms: int
    chunk_gap_ms: int
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def meta_schema() -> dict[str, Any]:
    """The scenario meta-schema (JSON Schema 2020-12)."""
    text = (resources.files(__package__) / "scenario.schema.json").read_text("utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


def validate_document(document: Any, name: str = "<scenarios>") -> None:
    """Raise ScenarioError when a scenario file does not match the meta-schema."""
    validator = jsonschema.Draft202012Validator(meta_schema())
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path)
        raise ScenarioError(f"{name}: {where or '(top)'}: {first.message}")


def _steps(body: list[dict[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    for item in body:
        if "text" in item:
            steps.append(Step(data=item["text"].encode("utf-8")))
        elif "hex" in item:
            steps.append(Step(data=bytes.fromhex(item["hex"])))
        elif "repeat" in item:
            steps.append(Step(data=item["repeat"].encode("utf-8") * item["times"]))
        else:
            steps.append(Step(delay_ms=item["delay_ms"]))
    return steps


def _connection(raw: dict[str, Any]) -> Connection:
    status = raw.get("status", 200)
    headers = dict(raw.get("headers", {}))
    if status == 200 and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "text/event-stream"
    return Connection(status=status, headers=headers, steps=_steps(raw.get("body", [])),
                      end=raw.get("end", "close"))


def from_dict(raw: dict[str, Any], group: str) -> Scenario:
    """One validated scenario object as a Scenario."""
    timing = raw.get("timing", {})
    return Scenario(
        id=raw["id"], title=raw["title"], group=group, level=raw["level"],
        cite=list(raw["cite"]), profiles=list(raw["profiles"]),
        requires=list(raw.get("requires", [])), listen=list(raw.get("listen", ["message"])),
        options=dict(raw.get("options", {})),
        connections=[_connection(item) for item in raw["connections"]],
        after_script=raw.get("after_script", "no-content"), expect=dict(raw["expect"]),
        timeout_ms=timing.get("timeout_ms", DEFAULT_TIMEOUT_MS),
        settle_ms=timing.get("settle_ms", DEFAULT_SETTLE_MS),
        chunk_gap_ms=timing.get("chunk_gap_ms", DEFAULT_CHUNK_GAP_MS),
        note=raw.get("note", ""), raw=raw,
    )


def load_text(text: str, name: str) -> list[Scenario]:
    """Parse and validate one scenario file's text."""
    document = yaml.safe_load(text)
    validate_document(document, name)
    return [from_dict(item, document["group"]) for item in document["scenarios"]]


def load_all() -> list[Scenario]:
    """Every bundled scenario, in group order; ids are unique."""
    folder = resources.files(__package__) / "scenarios"
    found: list[Scenario] = []
    for group in GROUPS:
        name = f"{group}.yaml"
        found.extend(load_text((folder / name).read_text("utf-8"), name))
    seen: set[str] = set()
    for scenario in found:
        if scenario.id in seen:
            raise ScenarioError(f"scenario id {scenario.id!r} is used twice")
        seen.add(scenario.id)
    return found
