# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python clients against the running reference server (gunicorn, 2 workers, real DB)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dualstore_client import (
    AsyncDualStoreClient,
    BadRequest,
    DualStoreClient,
    HeartbeatEvent,
    InsertEvent,
    NotFound,
    Unauthorized,
    UnprocessableContent,
)
from dualstore_reference.launcher import RunningReference

TOKEN = "test-token"  # the shared reference_server's (tests/conftest.py)
NOTES = "session_messages"
FEED = "agent_tasks"


@pytest.fixture
def client(reference_server: RunningReference) -> Iterator[DualStoreClient]:
    with DualStoreClient(reference_server.url, token=TOKEN) as client:
        yield client


@pytest.fixture
def tag() -> str:
    """A metadata value unique to the test: the shared server holds other tests' data."""
    return uuid.uuid4().hex


def test_insert_get_recent_pages_and_search(client: DualStoreClient, tag: str) -> None:
    when = datetime(2026, 11, 25, 10, 0, 0, 250000, UTC)
    ids = [
        client.insert(
            NOTES,
            f"the quick brown fox {n}",
            timestamp=when + timedelta(seconds=n),
            metadata={"tag": tag, "n": n},
        )
        for n in range(3)
    ]
    assert NOTES in client.collections()
    doc = client.get(NOTES, ids[1])
    assert doc.id == ids[1] and doc.text == "the quick brown fox 1"
    assert doc.timestamp == when + timedelta(seconds=1)
    assert doc.metadata == {"tag": tag, "n": 1}

    mine = {"metadata.tag": tag}
    first = client.recent(NOTES, limit=2, filter=mine)
    assert [d.id for d in first.items] == [ids[2], ids[1]]  # newest first
    assert first.next is not None
    second = client.recent(NOTES, limit=2, filter=mine, cursor=first.next)
    assert [d.id for d in second.items] == [ids[0]]
    some = client.recent(NOTES, filter={"metadata.tag": tag, "metadata.n": {"$in": [0, 2]}})
    assert [d.id for d in some.items] == [ids[2], ids[0]]

    hits = client.search(NOTES, "quick brown fox 2", k=3, filter=mine)
    assert {hit.document.id for hit in hits} == set(ids)
    assert hits[0].document.id == ids[2]
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_problems_surface_as_typed_errors(client: DualStoreClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.get(NOTES, uuid.uuid4().hex)
    assert missing.value.slug == "not-found"
    with pytest.raises(NotFound) as unknown:
        client.recent("no_such_collection")
    assert unknown.value.slug == "unknown-collection"
    with pytest.raises(BadRequest) as injected:
        client.recent(NOTES, filter={"$where": "sleep(1000)"})
    assert injected.value.slug == "invalid-filter"
    assert injected.value.problem["status"] == 400


def test_a_missing_or_wrong_token_is_unauthorized(reference_server: RunningReference) -> None:
    for token in (None, "wrong"):
        with DualStoreClient(reference_server.url, token=token) as anonymous:
            with pytest.raises(Unauthorized) as caught:
                anonymous.recent(NOTES)
            assert caught.value.headers["www-authenticate"].startswith("Bearer")
            with pytest.raises(Unauthorized):
                next(iter(anonymous.stream(NOTES)))


def test_idempotency_key(client: DualStoreClient) -> None:
    key = uuid.uuid4().hex
    first = client.insert(NOTES, "pay invoice 7", idempotency_key=key)
    assert client.insert(NOTES, "pay invoice 7", idempotency_key=key) == first
    with pytest.raises(UnprocessableContent) as reuse:
        client.insert(NOTES, "pay invoice 8", idempotency_key=key)
    assert reuse.value.slug == "idempotency-key-reuse"


def test_sync_stream_replays_since_a_time_then_resumes_after_a_saved_id(
    client: DualStoreClient, tag: str
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    mine = {"metadata.tag": tag}

    def insert(text: str) -> str:
        return client.insert(FEED, text, metadata={"tag": tag})

    ids = [insert(f"event {n}") for n in range(3)]
    with client.stream(FEED, since=start, filter=mine) as stream:
        got = [next(e for e in stream if isinstance(e, InsertEvent)) for _ in range(3)]
    assert [event.doc.id for event in got] == ids
    assert stream.last_event_id == got[2].id

    ids.append(insert("event 3"))
    # resume in "another process" after the second event: exactly the rest, then live
    with client.stream(FEED, since=start, filter=mine, last_event_id=got[1].id) as resumed:
        rest = [next(e for e in resumed if isinstance(e, InsertEvent)) for _ in range(2)]
        threading.Timer(0.3, insert, ("event 4",)).start()
        live = next(e for e in resumed if isinstance(e, InsertEvent))
        heartbeat = next(e for e in resumed if isinstance(e, HeartbeatEvent))
    assert [event.doc.id for event in rest] == ids[2:4]
    assert live.doc.text == "event 4"
    assert datetime.fromisoformat(heartbeat.t.replace("Z", "+00:00")).tzinfo is not None


def test_async_stream_receives_live_inserts_in_order(
    reference_server: RunningReference, tag: str
) -> None:
    async def run() -> tuple[list[str], list[str]]:
        async with (
            AsyncDualStoreClient(reference_server.url, token=TOKEN) as client,
            client.stream(FEED, filter={"metadata.tag": tag}) as stream,
        ):
            events = aiter(stream)
            # the stream is open once its first heartbeat arrives (1 s on this server)
            assert isinstance(await anext(events), HeartbeatEvent)
            sent = [await client.insert(FEED, f"live {n}", metadata={"tag": tag}) for n in range(5)]
            await client.insert(FEED, "not mine", metadata={"tag": "other"})
            got: list[str] = []
            while len(got) < 5:
                event = await asyncio.wait_for(anext(events), 10)
                if isinstance(event, InsertEvent):
                    got.append(event.doc.id)
            return sent, got

    sent, got = asyncio.run(run())
    assert got == sent


def test_stream_survives_a_server_restart_without_loss_or_repeat(
    start_reference: Callable[..., RunningReference],
) -> None:
    server = start_reference(env={"SSE_RETRY_MS": "300"})
    with DualStoreClient(server.url, token=TOKEN) as client:
        before = [client.insert(FEED, f"before {n}") for n in range(2)]
        received: list[str] = []
        with client.stream(FEED, since="2000-01-01T00:00:00Z") as stream:
            for event in stream:
                if isinstance(event, InsertEvent):
                    received.append(event.doc.id)
                    if len(received) == 2:
                        break
            # the next read happens after the restart: the stream must reconnect itself
            server.restart()
            after = [client.insert(FEED, f"after {n}") for n in range(2)]
            for event in stream:
                if isinstance(event, InsertEvent):
                    received.append(event.doc.id)
                    if len(received) == 4:
                        break
            assert stream.session.connections >= 2
            assert stream.session.duplicates_dropped == 0  # the server itself repeated nothing
    assert received == before + after
