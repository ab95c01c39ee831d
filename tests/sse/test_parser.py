# SPDX-License-Identifier: GPL-3.0-or-later
"""The WHATWG parser against the framing vectors in framing-vectors.yaml (next to this file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dualstore_sse import Event, SSEParser

DATA = Path(__file__).resolve().parent
DOCUMENT: dict[str, Any] = yaml.safe_load((DATA / "framing-vectors.yaml").read_text("utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]


def chunks_of(vector: dict[str, Any]) -> list[bytes]:
    if "chunks_hex" in vector:
        return [bytes.fromhex(chunk) for chunk in vector["chunks_hex"]]
    return [chunk.encode("utf-8") for chunk in vector["chunks"]]


def run(chunks: list[bytes]) -> tuple[list[Event], SSEParser]:
    parser = SSEParser()
    items = []
    for chunk in chunks:
        items.extend(parser.feed(chunk))
    items.extend(parser.close())
    return [item for item in items if isinstance(item, Event)], parser


def assert_matches(vector: dict[str, Any], events: list[Event], parser: SSEParser) -> None:
    expected = vector["expected"]
    assert len(events) == len(expected["events"]), events
    for got, want in zip(events, expected["events"], strict=True):
        assert got.type == want["type"]
        assert got.data == want["data"]
        if "last_event_id" in want:
            assert got.last_event_id == want["last_event_id"]
        if "id_set" in want:
            assert got.id_set == want["id_set"]
    if "comments" in expected:
        assert parser.comments == expected["comments"]
    if "blocks" in expected:
        assert parser.blocks == expected["blocks"]
    if "last_event_id" in expected:
        assert parser.last_event_id == expected["last_event_id"]
    if "retry_ms" in expected:
        assert parser.retry_ms == expected["retry_ms"]


def test_vectors_file_is_valid_against_its_meta_schema() -> None:
    schema = json.loads((DATA / "framing-vectors.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(DOCUMENT, schema)
    names = [vector["name"] for vector in VECTORS]
    assert len(names) == len(set(names)), "vector names must be unique"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_as_chunked(vector: dict[str, Any]) -> None:
    events, parser = run(chunks_of(vector))
    assert_matches(vector, events, parser)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_byte_by_byte(vector: dict[str, Any]) -> None:
    whole = b"".join(chunks_of(vector))
    events, parser = run([whole[i : i + 1] for i in range(len(whole))])
    assert_matches(vector, events, parser)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_in_one_piece(vector: dict[str, Any]) -> None:
    events, parser = run([b"".join(chunks_of(vector))])
    assert_matches(vector, events, parser)
