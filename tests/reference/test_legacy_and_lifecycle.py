# SPDX-License-Identifier: GPL-3.0-or-later
"""Legacy-shaped documents, restarts on the same data, read-your-writes across workers,
and database outages, all against the real server (gunicorn workers, real SecantusDB)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from bson import ObjectId
from dualstore_reference import launcher
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import RunningReference, with_database
from pymongo import MongoClient

UTC = dt.UTC


def test_legacy_documents_are_served_correctly(
    mongodb_uri: str,
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
    reference_headers: dict[str, str],
) -> None:
    """Documents an older producer wrote straight into MongoDB: no internal fields,
    epoch-ms / BSON date / string timestamps, ObjectId ids."""
    uri = with_database(mongodb_uri, f"legacy_{uuid.uuid4().hex[:10]}")
    oid = ObjectId()
    legacy = [
        {"_id": oid, "text": "objectid and epoch ms", "timestamp": 1764064800123,
         "metadata": {"src": "old"}},
        {"_id": "legacy-date", "text": "bson date", "timestamp": dt.datetime(
            2025, 11, 25, 10, 0, 1, 456789, tzinfo=UTC), "metadata": {"src": "old"}},
        {"_id": "legacy-string", "text": "string with offset",
         "timestamp": "2025-11-25T12:00:02.5+02:00", "metadata": {"src": "old"}},
        {"_id": "legacy-naive", "text": "string without zone", "timestamp": "2025-11-25 10:00:03"},
        {"_id": "legacy-seconds", "text": "epoch seconds", "timestamp": 1764064804},
    ]  # fmt: skip
    with MongoClient(uri) as sync:
        sync.get_default_database()["session_messages"].insert_many(legacy)
    server = start_reference(mongodb_uri=uri, workers=1)
    client = validating_client(base_url=server.url, headers=reference_headers)
    expected = {
        str(oid): "2025-11-25T10:00:00.123Z",
        "legacy-date": "2025-11-25T10:00:01.456Z",
        "legacy-string": "2025-11-25T10:00:02.500Z",
        "legacy-naive": "2025-11-25T10:00:03.000Z",
        "legacy-seconds": "2025-11-25T10:00:04.000Z",
    }
    for doc_id, stamp in expected.items():
        doc = client.get(f"/v1/session_messages/{doc_id}").json()
        assert doc["timestamp"] == stamp, doc
        assert set(doc) == {"id", "text", "timestamp", "metadata"}
        assert isinstance(doc["metadata"], dict)
    # newest first across all the legacy forms (adopted and normalised at startup)
    items = client.get("/v1/session_messages/recent").json()["items"]
    assert [item["id"] for item in items] == list(reversed(expected))
    # they reach the vector index too
    hits = client.get("/v1/session_messages/search", params={"q": "objectid epoch"}).json()
    assert hits["items"][0]["id"] == str(oid)
    # and new documents sort among them by time
    new_id = client.post(
        "/v1/session_messages",
        json={"text": "new", "timestamp": "2025-11-25T10:00:02.000Z"},
    ).json()["id"]
    order = [item["id"] for item in client.get("/v1/session_messages/recent").json()["items"]]
    assert order.index("legacy-string") < order.index(new_id) < order.index("legacy-date")


def test_a_legacy_document_written_while_running_is_adopted_once(
    mongodb_uri: str,
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
    reference_headers: dict[str, str],
) -> None:
    """An older producer writes while the server runs: the stream tailers' sweep (the only
    one for streamed collections) numbers it once and normalises its timestamp."""
    uri = with_database(mongodb_uri, f"legacy_live_{uuid.uuid4().hex[:10]}")
    server = start_reference(mongodb_uri=uri, workers=2)
    client = validating_client(base_url=server.url, headers=reference_headers)
    first = client.post("/v1/session_messages", json={"text": "before"}).json()["id"]
    with MongoClient(uri) as sync:
        documents = sync.get_default_database()["session_messages"]
        documents.insert_one({"_id": "late-legacy", "text": "late", "timestamp": 1764064800123})
        deadline = time.monotonic() + 15
        while True:
            stored = documents.find_one({"_id": "late-legacy"})
            if (stored is not None and "_seq" in stored) or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        assert stored is not None and isinstance(stored.get("_seq"), int), stored
        assert isinstance(stored["timestamp"], dt.datetime)
        first_seq = documents.find_one({"_id": first})["_seq"]  # type: ignore[index]  # reason: the POST stored it
        assert stored["_seq"] > first_seq
        time.sleep(1.0)  # both workers' sweeps have run again: still one number, no copy
        assert documents.count_documents({"text": "late"}) == 1
        assert documents.find_one({"_id": "late-legacy"})["_seq"] == stored["_seq"]  # type: ignore[index]  # reason: found above
    doc = client.get("/v1/session_messages/late-legacy").json()
    assert doc["timestamp"] == "2025-11-25T10:00:00.123Z"


def test_restart_keeps_documents_and_search_results(
    tmp_path: Path, validating_client: Callable[..., httpx.Client]
) -> None:
    """Embedded database under the data directory: stop, start again, nothing lost."""
    headers = {"Authorization": "Bearer t"}
    word = "restartword" + uuid.uuid4().hex[:6]
    with launcher.start_reference(env={"AUTH_TOKEN": "t"}, workers=2, data_dir=tmp_path) as server:
        httpx = validating_client()  # every response checked against the OpenAPI document
        created = httpx.post(
            f"{server.url}/v1/agent_tasks", json={"text": f"{word} survives"}, headers=headers
        ).json()["id"]
        for i in range(5):
            httpx.post(
                f"{server.url}/v1/agent_tasks", json={"text": f"filler {i}"}, headers=headers
            )
        before = httpx.get(
            f"{server.url}/v1/agent_tasks/search", params={"q": word, "k": 3}, headers=headers
        ).json()["items"]
        server.restart()
        assert len(server.pids()) == 3
        doc = httpx.get(f"{server.url}/v1/agent_tasks/{created}", headers=headers)
        assert doc.status_code == 200 and doc.json()["text"] == f"{word} survives"
        after = httpx.get(
            f"{server.url}/v1/agent_tasks/search", params={"q": word, "k": 3}, headers=headers
        ).json()["items"]
        assert [hit["id"] for hit in after] == [hit["id"] for hit in before]
        assert after[0]["id"] == created
        for old, new in zip(before, after, strict=True):  # float32 noise only
            assert new["score"] == pytest.approx(old["score"], abs=1e-5)
        recent = httpx.get(f"{server.url}/v1/agent_tasks/recent", headers=headers).json()
        assert len(recent["items"]) == 6
    assert (tmp_path / "db").is_dir() and (tmp_path / "index").is_dir()


def test_read_your_writes_across_workers(
    reference_server: RunningReference,
    reference_headers: dict[str, str],
    openapi_validate: Callable[[httpx.Response], httpx.Response],
) -> None:
    """POST on one connection, then get and search on fresh connections: found every time,
    including when another worker answers (X-Dualstore-Worker, a test-only header)."""
    cross = 0
    workers: set[str] = set()
    # At least 30 rounds; more (bounded) when the kernel gave one worker a long run of
    # connections, so the cross-worker case is actually observed.
    for i in range(200):
        if i >= 30 and len(workers) == 2 and cross > 0:
            break
        word = f"ryw{uuid.uuid4().hex[:10]}"
        with httpx.Client(base_url=reference_server.url, headers=reference_headers) as writer:
            created = writer.post("/v1/opencode_events", json={"text": f"{word} event {i}"})
        assert created.status_code == 201
        doc_id = created.json()["id"]
        wrote_on = created.headers["x-dualstore-worker"]
        with httpx.Client(base_url=reference_server.url, headers=reference_headers) as reader:
            found = reader.get(f"/v1/opencode_events/{doc_id}")
        with httpx.Client(base_url=reference_server.url, headers=reference_headers) as searcher:
            hits = searcher.get("/v1/opencode_events/search", params={"q": word, "k": 1})
        for response in (created, found, hits):
            openapi_validate(response)
        assert found.status_code == 200
        assert hits.json()["items"][0]["id"] == doc_id, hits.json()
        workers |= {
            wrote_on, found.headers["x-dualstore-worker"], hits.headers["x-dualstore-worker"]
        }
        cross += hits.headers["x-dualstore-worker"] != wrote_on
    assert workers <= {str(pid) for pid in reference_server.pids()[1:]}
    assert len(workers) == 2, "both workers must have answered"
    assert cross > 0, "some searches must have run on the other worker"


def test_database_outage_gives_503_and_recovers(
    tmp_path: Path,
    start_reference: Callable[..., RunningReference],
    validating_client: Callable[..., httpx.Client],
    reference_headers: dict[str, str],
) -> None:
    database = EmbeddedDatabase(storage_path=str(tmp_path / "db")).start()
    try:
        server = start_reference(mongodb_uri=database.uri, workers=1)
        client = validating_client(base_url=server.url, headers=reference_headers)
        assert client.get("/v1/health").status_code == 200
        database.stop()
        health = client.get("/v1/health")
        assert health.status_code == 503
        assert health.json()["database"] == "down" and health.json()["ok"] is False
        response = client.post("/v1/agent_tasks", json={"text": "while down"})
        assert response.status_code == 503
        assert response.json()["type"] == "urn:dualstore:problem:unavailable"
        database.start()
        for _ in range(100):
            if client.get("/v1/health").status_code == 200:
                break
        assert client.post("/v1/agent_tasks", json={"text": "after"}).status_code == 201
        server.stop()
    finally:
        database.stop()
