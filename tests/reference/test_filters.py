# SPDX-License-Identifier: GPL-3.0-or-later
"""The filter language in the reference: accept/reject tables, translation, real queries."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import dualstore_spec
import jsonschema
import pytest
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.store import filters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from pymongo.collection import Collection

UTC = dt.UTC


def enc(value: Any, pad: bool = False) -> str:
    """base64url of compact JSON (unpadded unless pad)."""
    text = base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    return text if pad else text.rstrip("=")


def raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 25, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------------------- accept table
ACCEPT: list[tuple[Any, dict[str, Any]]] = [
    ({}, {}),
    ({"metadata.session": "s-42"}, {"metadata.session": {"$eq": "s-42"}}),
    ({"metadata.agent.name": "planner"}, {"metadata.agent.name": {"$eq": "planner"}}),
    ({"metadata.flag": True}, {"metadata.flag": {"$eq": True}}),
    ({"metadata.n": 2.5}, {"metadata.n": {"$eq": 2.5}}),
    (
        {"metadata.agent.name": {"$in": ["planner", "coder"]}},
        {"metadata.agent.name": {"$in": ["planner", "coder"]}},
    ),
    ({"metadata.turn": {"$gte": 2, "$lt": 10}}, {"metadata.turn": {"$gte": 2, "$lt": 10}}),
    ({"metadata.x": {"$exists": False}}, {"metadata.x": {"$exists": False}}),
    (
        {"metadata.a": 1, "metadata.b": "x"},
        {"$and": [{"metadata.a": {"$eq": 1}}, {"metadata.b": {"$eq": "x"}}]},
    ),
    (
        {"$or": [{"metadata.p": "high"}, {"metadata.e": {"$exists": True}}]},
        {"$or": [{"metadata.p": {"$eq": "high"}}, {"metadata.e": {"$exists": True}}]},
    ),
    (
        {"timestamp": {"$gte": "2026-11-25T11:00:00+01:00", "$lt": "2026-11-26T00:00:00z"}},
        {"timestamp": {"$gte": at(10), "$lt": dt.datetime(2026, 11, 26, tzinfo=UTC)}},
    ),
    (
        {"timestamp": "2026-11-25T10:00:00.123456Z"},
        {"timestamp": {"$eq": at(10).replace(microsecond=123000)}},
    ),
    (
        {"timestamp": {"$in": ["2026-11-25T10:00:00Z", "2026-11-25t12:30:00-01:30"]}},
        {"timestamp": {"$in": [at(10), at(14)]}},
    ),
    # A string that looks like an operator is a plain value compared for equality.
    ({"metadata.a": "$where"}, {"metadata.a": {"$eq": "$where"}}),
    ({"metadata.a": {"$in": ["$gt", '{"$ne":1}']}}, {"metadata.a": {"$in": ["$gt", '{"$ne":1}']}}),
    # Keys that are dangerous elsewhere are just keys here.
    ({"metadata.__proto__.constructor": 1}, {"metadata.__proto__.constructor": {"$eq": 1}}),
    ({"metadata.a.b.c.d.e.f.g.h": 1}, {"metadata.a.b.c.d.e.f.g.h": {"$eq": 1}}),
    (
        {"$and": [{"$or": [{"$and": [{"$or": [{"metadata.a": 1}]}]}]}]},
        {"$and": [{"$or": [{"$and": [{"$or": [{"metadata.a": {"$eq": 1}}]}]}]}]},
    ),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPT, ids=[json.dumps(v) for v, _ in ACCEPT])
def test_accepted_filters_translate_to_allow_listed_queries(value: Any, expected: Any) -> None:
    assert filters.parse(enc(value)) == expected
    assert filters.parse(enc(value, pad=True)) == expected  # padding is optional


# ---------------------------------------------------------------------------- reject tables
REJECT_DECODED: list[tuple[Any, str]] = [
    # Injection attempts: operators outside the language, anywhere.
    ({"$where": "sleep(1000) || true"}, "'$where'"),
    ({"$expr": {"$gt": ["$metadata.a", 1]}}, "'$expr'"),
    ({"$function": {"body": "return true", "args": [], "lang": "js"}}, "'$function'"),
    ({"metadata.a": {"$regex": "^.*$"}}, "'$regex'"),
    ({"metadata.a": {"$where": "1"}}, "'$where'"),
    ({"metadata.a": {"$ne": 1}}, "'$ne'"),
    ({"metadata.a": {"$not": {"$eq": 1}}}, "'$not'"),
    ({"metadata.a": {"$eq": 1}}, "'$eq'"),
    ({"$nor": [{"metadata.a": 1}]}, "'$nor'"),
    ({"$or": [{"$where": "1"}]}, "'$where'"),
    ({"$and": [{"metadata.a": {"$in": [{"$gt": ""}]}}]}, "not a valid value"),
    ({"metadata.a": {"$gt": {"$function": {}}}}, "not a valid value"),
    ({"metadata.a": {"$in": "abc"}}, "/metadata.a/$in"),
    ({"metadata.$where": 1}, "'$' is not allowed"),
    ({"metadata.a$b": 1}, "'$' is not allowed"),
    ({"metadata.a.$ne": 1}, "'$' is not allowed"),
    ({"metadata.a\u0000b": 1}, "malformed field path"),
    ({"metadata.a..b": 1}, "malformed field path"),
    ({"metadata.": 1}, "malformed field path"),
    ({"\uff04where": 1}, "unknown field"),  # fullwidth dollar sign is not an operator, nor a field
    # Fields and values outside the language.
    ({"text": "hello"}, "unknown field 'text'"),
    ({"_id": "x"}, "unknown field '_id'"),
    ({"_seq": {"$gt": 1}}, "unknown field '_seq'"),
    ({"metadata": {"a": 1}}, "unknown field 'metadata'"),
    ({"metadata.a": {"b": 1}}, "key 'b'"),
    ({"metadata.a": None}, "null is not a valid value"),
    ({"metadata.a": [1, 2]}, "an array is not a valid value"),
    ({"metadata.a": {}}, "empty operator object"),
    ({"metadata.a": {"$in": []}}, "/metadata.a/$in"),
    ({"metadata.a": {"$exists": "yes"}}, "/metadata.a/$exists"),
    ({"metadata.a": {"$gt": True}}, "/metadata.a/$gt"),
    ({"metadata.a": 2**53}, "portable number range"),
    ({"metadata.a": "x" * 1025}, "1025 characters"),
    ({"timestamp": "yesterday"}, "/timestamp"),
    ({"timestamp": "2026-02-30T00:00:00Z"}, "/timestamp"),
    ({"timestamp": "2026-11-25T10:00:00"}, "/timestamp"),  # no offset
    ({"timestamp": "2026-11-25 10:00:00Z"}, "/timestamp"),
    ({"timestamp": 1764064800000}, "/timestamp"),
    ({"timestamp": {"$gt": "2026-11-25T10:00:60Z"}}, "/timestamp/$gt"),
    ({"$and": []}, "non-empty array"),
    ({"$or": {"metadata.a": 1}}, "non-empty array"),
    ({"$and": [1]}, "expected an object"),
    # Bounds.
    ({"metadata.a.b.c.d.e.f.g.h.i": 1}, "has 9 keys; the limit is 8"),
    ({"$and": [{"$or": [{"$and": [{"$or": [{"$and": [{"metadata.a": 1}]}]}]}]}]}, "levels deep"),
    ({"$and": [{"metadata.a": i} for i in range(33)]}, "33 conditions; the limit is 32"),
    ({"metadata.a": {"$in": list(range(101))}}, "101 items; the limit is 100"),
]


@pytest.mark.parametrize(
    ("value", "message"), REJECT_DECODED, ids=[json.dumps(v)[:60] for v, _ in REJECT_DECODED]
)
def test_rejected_filters_name_the_problem(value: Any, message: str) -> None:
    with pytest.raises(filters.FilterError) as caught:
        filters.parse(enc(value))
    assert message in str(caught.value)


REJECT_ENCODED: list[tuple[str, str]] = [
    ("a+b/", "character '+' at position 1"),
    ("eyJ9 ", "character ' ' at position 4"),
    ("ab=c", "character '=' at position 2"),
    ("eyJhIjogMX0===", "'=' at position 12"),
    ("abc==", "impossible"),  # padding makes the length not a multiple of 4
    ("a", "length of 1 characters is impossible"),
    ("x" * 4097, "4097 characters long; the limit is 4096"),
    (raw(b"\xff\xfe{}"), "not UTF-8: byte 0xff at position 0"),
    (raw(b"{bad json"), "not JSON"),
    (raw(b"[1,2]"), "must be a JSON object, got an array"),
    (raw(b'"str"'), "got a string"),
    (raw(b"null"), "got null"),
    (raw(b'{"metadata.a": NaN}'), "NaN"),
    (raw(b'{"metadata.a": 1, "metadata.a": 2}'), "repeats the key 'metadata.a'"),
    (raw(b"[" * 2000 + b"]" * 1000)[:4096], "nested too deeply"),
]


@pytest.mark.parametrize(("encoded", "message"), REJECT_ENCODED, ids=[m for _, m in REJECT_ENCODED])
def test_undecodable_filters_name_the_problem(encoded: str, message: str) -> None:
    with pytest.raises(filters.FilterError) as caught:
        filters.parse(encoded)
    assert message in str(caught.value)


def test_empty_filter_means_no_filter() -> None:
    assert filters.parse("") == {}


def test_bounds_come_from_the_spec() -> None:
    assert filters.bounds() == dualstore_spec.filter_schema()["x-dualstore-bounds"]
    published = dualstore_spec.openapi()["x-dualstore-limits"]["filter"]
    assert filters.bounds() == published


def test_to_mongo_refuses_unvalidated_input() -> None:
    """Even when validation is skipped, the translator builds nothing outside its allow-list."""
    for value in ({"$where": "1"}, {"metadata.a": {"$regex": "x"}}, {"metadata.$x": 1}):
        with pytest.raises(filters.FilterError):
            filters.to_mongo(value)


# ---------------------------------------------------------------------------- property
def _operators(query: Any) -> Iterator[str]:
    if isinstance(query, dict):
        for key, value in query.items():
            if key.startswith("$"):
                yield key
            yield from _operators(value)
    elif isinstance(query, list):
        for value in query:
            yield from _operators(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["s-42", "2026-11-25T10:00:00Z", "$where", ""]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "metadata.a",
                    "metadata.b.c",
                    "timestamp",
                    "$and",
                    "$or",
                    "$in",
                    "$gt",
                    "$lte",
                    "$exists",
                    "$where",
                    "$regex",
                    "$expr",
                    "text",
                    "metadata.$x",
                    "a",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_is_rejected_cleanly_or_translated_to_the_allow_list(value: Any) -> None:
    """parse either raises FilterError or returns a query of allow-listed operators only,
    and it accepts exactly what filter.schema.json accepts (within the condition bound)."""
    schema_ok = jsonschema.Draft202012Validator(
        dualstore_spec.filter_schema(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).is_valid(value)
    try:
        query = filters.parse(enc(value))
    except filters.FilterError:
        accepted = False
    else:
        accepted = True
        assert set(_operators(query)) <= {"$and", "$or", "$eq", *filters.OPERATORS.values()}
    if len(enc(value)) <= filters.bounds()["max_encoded_length"]:
        assert accepted == schema_ok


# ---------------------------------------------------------------------------- real queries
DOCS: list[dict[str, Any]] = [
    {
        "_id": "d1",
        "timestamp": at(10),
        "metadata": {
            "agent": {"name": "planner", "version": 2},
            "priority": "high",
            "turn": 3,
            "flag": True,
        },
    },
    {
        "_id": "d2",
        "timestamp": at(11),
        "metadata": {
            "agent": {"name": "coder", "version": 1},
            "priority": "low",
            "turn": 10,
            "flag": 1,
        },
    },
    {"_id": "d3", "timestamp": at(12), "metadata": {"agent": {"name": "planner"}, "turn": "3"}},
    {"_id": "d4", "timestamp": at(13), "metadata": {"agent": "planner", "note": "$where"}},
    {"_id": "d5", "timestamp": at(14), "metadata": {}},
    {"_id": "d6", "timestamp": at(15), "metadata": {"turn": 3.0, "deep": {"a": {"b": {"c": 1}}}}},
]

SEMANTICS: list[tuple[Any, set[str]]] = [
    ({}, {"d1", "d2", "d3", "d4", "d5", "d6"}),
    ({"metadata.agent.name": "planner"}, {"d1", "d3"}),  # not d4, where agent is a string
    ({"metadata.agent": "planner"}, {"d4"}),
    ({"metadata.agent.version": {"$gte": 2}}, {"d1"}),
    ({"metadata.turn": 3}, {"d1", "d6"}),  # 3 equals 3.0, not the string "3"
    ({"metadata.turn": "3"}, {"d3"}),
    ({"metadata.turn": {"$gt": "2"}}, {"d3"}),  # strings compare with strings only
    ({"metadata.turn": {"$lt": 5}}, {"d1", "d6"}),
    ({"metadata.flag": True}, {"d1"}),  # true is not 1
    ({"metadata.flag": 1}, {"d2"}),
    ({"metadata.agent.version": {"$exists": False}}, {"d3", "d4", "d5", "d6"}),
    ({"metadata.deep.a.b.c": 1}, {"d6"}),
    ({"metadata.deep.a.b": {"$exists": True}}, {"d6"}),
    ({"metadata.agent.name": {"$in": ["coder", "nobody"]}}, {"d2"}),
    ({"$or": [{"metadata.priority": "high"}, {"metadata.agent": "planner"}]}, {"d1", "d4"}),
    ({"$and": [{"metadata.agent.name": "planner"}, {"metadata.turn": 3}]}, {"d1"}),
    ({"metadata.agent.name": "planner", "metadata.turn": "3"}, {"d3"}),
    ({"metadata.note": "$where"}, {"d4"}),
    ({"timestamp": {"$gte": "2026-11-25T11:00:00Z", "$lt": "2026-11-25T13:00:00+01:00"}}, {"d2"}),
    ({"timestamp": "2026-11-25T12:00:00+01:00"}, {"d2"}),
    (
        {"timestamp": {"$in": ["2026-11-25T10:00:00.000Z", "2026-11-25T09:00:00-05:00"]}},
        {"d1", "d5"},
    ),
    ({"timestamp": {"$lte": "2026-11-25T10:00:00Z"}}, {"d1"}),
]


@pytest.fixture(scope="module")
def documents(database: EmbeddedDatabase) -> Iterator[Collection[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(database.uri, tz_aware=True)
    collection = client[f"filters_{uuid.uuid4().hex[:8]}"]["docs"]
    collection.insert_many([{**doc, "text": doc["_id"]} for doc in DOCS])
    yield collection
    client.drop_database(collection.database.name)
    client.close()


@pytest.mark.parametrize(
    ("value", "expected"), SEMANTICS, ids=[json.dumps(v) for v, _ in SEMANTICS]
)
def test_filter_semantics_on_a_real_database(
    documents: Collection[dict[str, Any]], value: Any, expected: set[str]
) -> None:
    query = filters.parse(enc(value))
    found = {doc["_id"] for doc in documents.find(query, {"_id": 1})}
    assert found == expected


@pytest.mark.parametrize(
    ("value", "expected"), SEMANTICS, ids=[json.dumps(v) for v, _ in SEMANTICS]
)
def test_stream_matcher_agrees_with_the_database(
    documents: Collection[dict[str, Any]], value: Any, expected: set[str]
) -> None:
    """FILTER-010: the stream's in-memory matcher gives the same answer as the store."""
    matcher = pytest.importorskip("dualstore_reference.stream.matcher")
    predicate = matcher.compile_query(filters.parse(enc(value)))
    found = {doc["_id"] for doc in documents.find({}) if predicate(doc)}
    assert found == expected
