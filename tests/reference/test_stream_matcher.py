# SPDX-License-Identifier: GPL-3.0-or-later
"""The live-event matcher agrees with the database on the allow-listed query subset."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from dualstore_reference.stream.matcher import UnsupportedQuery, compile_query
from pymongo import AsyncMongoClient

Document = dict[str, Any]
T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)

DOCUMENTS: list[Document] = [
    {"_id": "a", "timestamp": T0, "metadata": {"role": "user", "n": 1, "tags": ["x", "y"]}},
    {"_id": "b", "timestamp": T0 + dt.timedelta(minutes=1), "metadata": {"role": "ag", "n": 2.5}},
    {"_id": "c", "timestamp": T0 + dt.timedelta(minutes=2), "metadata": {"role": None, "n": "3"}},
    {"_id": "d", "timestamp": T0 + dt.timedelta(minutes=3), "metadata": {"nested": {"k": True}}},
    {"_id": "e", "timestamp": T0 - dt.timedelta(days=1), "metadata": {"n": 10, "tags": []}},
    {"_id": "f", "timestamp": T0, "metadata": {"items": [{"k": 1}, {"k": 2}], "n": True}},
    {"_id": "g", "timestamp": T0, "metadata": {}},
]

QUERIES: list[Document] = [
    {"metadata.role": "user"},
    {"metadata.role": None},
    {"metadata.role": {"$exists": True}},
    {"metadata.role": {"$exists": False}},
    {"metadata.n": {"$gt": 1}},
    {"metadata.n": {"$gte": 1, "$lt": 10}},
    {"metadata.n": {"$lte": "3"}},
    {"metadata.n": 1},
    {"metadata.n": True},
    {"metadata.tags": "x"},
    {"metadata.tags": ["x", "y"]},
    {"metadata.tags": {"$in": ["y", "z"]}},
    {"metadata.role": {"$in": ["ag", None]}},
    {"metadata.role": {"$nin": ["ag"]}},
    {"metadata.role": {"$ne": "user"}},
    {"metadata.nested.k": True},
    {"metadata.items.k": 2},
    {"metadata.items.k": {"$gt": 1}},
    {"timestamp": T0},
    {"timestamp": {"$gte": T0, "$lt": T0 + dt.timedelta(minutes=2)}},
    {"$or": [{"metadata.role": "user"}, {"metadata.n": {"$gte": 10}}]},
    {"$and": [{"timestamp": {"$gte": T0}}, {"$or": [{"metadata.n": 2.5}, {"metadata.n": True}]}]},
    {"$nor": [{"metadata.role": "user"}, {"metadata.n": {"$exists": True}}]},
]


@pytest.fixture(scope="module")
def stored(mongodb_uri: str) -> dict[str, Any]:
    """The documents as read back from the database (BSON types), and the query answers."""

    async def main() -> dict[str, Any]:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri)
        try:
            collection = client[f"m_{uuid.uuid4().hex[:12]}"]["docs"]
            await collection.insert_many([dict(d) for d in DOCUMENTS])
            read_back = await collection.find({}).to_list(None)
            answers = []
            for query in QUERIES:
                found = await collection.find(query, {"_id": 1}).to_list(None)
                answers.append(sorted(d["_id"] for d in found))
            return {"documents": read_back, "answers": answers}
        finally:
            await client.close()

    return asyncio.run(main())


@pytest.mark.parametrize("index", range(len(QUERIES)), ids=[str(q) for q in QUERIES])
def test_matcher_agrees_with_the_database(stored: dict[str, Any], index: int) -> None:
    predicate = compile_query(QUERIES[index])
    matched = sorted(d["_id"] for d in stored["documents"] if predicate(d))
    assert matched == stored["answers"][index]


@pytest.mark.parametrize("query", [{"$where": "1"}, {"a": {"$regex": "x"}}, {"$or": []}])
def test_unsupported_operators_are_refused(query: Document) -> None:
    with pytest.raises(UnsupportedQuery):
        compile_query(query)
