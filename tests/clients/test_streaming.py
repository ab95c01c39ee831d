# SPDX-License-Identifier: GPL-3.0-or-later
"""Stream reconnect logic against a scripted SSE server that drops connections."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from dualstore_client import (
    AsyncDualStoreClient,
    Backoff,
    BadRequest,
    DualStoreClient,
    HeartbeatEvent,
    InsertEvent,
    StreamEvent,
    TransportError,
    Unauthorized,
)


def _drop_then_resume(server: Any) -> None:
    """Connection 1: retry 100 ms, a, b, half of c, drop. Connection 2 (misbehaving):
    repeats b, then c, a heartbeat and d."""
    server.scripts = [
        [
            server.head(),
            b"retry: 100\n: hello\n\n",
            server.insert("1", "a"),
            server.insert("2", "b"),
            b"event: insert\nid: 3\ndata: {\"id\":\"c\"",  # incomplete: discarded
            0.05,
            None,
        ],
        [
            server.head(),
            server.insert("2", "b"),
            server.insert("3", "c"),
            b'event: heartbeat\ndata: {"t":"2026-11-25T10:00:01.000Z"}\n\n',
            server.insert("4", "d"),
            30.0,
        ],
    ]


def _check_resume(server: Any, events: list[StreamEvent], last_event_id: str) -> None:
    inserts = [event for event in events if isinstance(event, InsertEvent)]
    assert [event.doc.id for event in inserts] == ["a", "b", "c", "d"]
    assert [event.id for event in inserts] == ["1", "2", "3", "4"]
    assert HeartbeatEvent("2026-11-25T10:00:01.000Z") in events
    assert last_event_id == "4"
    first, second = server.seen[0], server.seen[1]
    assert "last-event-id" not in first.headers
    assert first.query == {"since": ["2026-11-25T09:00:00Z"], "filter": ["eyJhIjoxfQ"]}
    assert second.headers["last-event-id"] == "2"
    # since is dropped once a resume token exists; the filter is kept
    assert second.query == {"filter": ["eyJhIjoxfQ"]}
    gap = second.at - first.closed_at
    assert gap >= 0.1, "the server's retry (100 ms) must be honoured"
    assert gap < 2.5, "the default 3 s delay was used instead of the server's retry"


def test_sync_stream_resumes_with_last_event_id_and_never_repeats(sse_server: Any) -> None:
    _drop_then_resume(sse_server)
    with DualStoreClient(sse_server.url) as client:
        events: list[StreamEvent] = []
        with client.stream("notes", since="2026-11-25T09:00:00Z", filter={"a": 1}) as stream:
            for event in stream:
                events.append(event)
                if isinstance(event, InsertEvent) and event.doc.id == "d":
                    break
            assert stream.session.connections == 2
            assert stream.session.duplicates_dropped == 1
        _check_resume(sse_server, events, stream.last_event_id)


def test_async_stream_resumes_with_last_event_id_and_never_repeats(sse_server: Any) -> None:
    _drop_then_resume(sse_server)

    async def run() -> tuple[list[StreamEvent], str, int]:
        async with AsyncDualStoreClient(sse_server.url) as client:
            events: list[StreamEvent] = []
            async with client.stream(
                "notes", since="2026-11-25T09:00:00Z", filter={"a": 1}
            ) as stream:
                async for event in stream:
                    events.append(event)
                    if isinstance(event, InsertEvent) and event.doc.id == "d":
                        break
                return events, stream.last_event_id, stream.session.duplicates_dropped

    events, last_id, dropped = asyncio.run(run())
    assert dropped == 1
    _check_resume(sse_server, events, last_id)


def test_retryable_statuses_wait_and_retry_after_is_honoured(sse_server: Any) -> None:
    sse_server.scripts = [
        [sse_server.problem(503, "unavailable")],
        [sse_server.problem(429, "too-many-streams", "Retry-After: 1\r\n")],
        [sse_server.head(), b"retry: 50\n\n", sse_server.insert("7", "x"), 30.0],
    ]
    with DualStoreClient(sse_server.url) as client, client.stream(
        "notes", backoff=Backoff(jitter=0.0)
    ) as stream:
        stream.session.retry_ms = 100  # as if a previous connection had sent retry: 100
        first = next(iter(stream))
    assert isinstance(first, InsertEvent) and first.doc.id == "x"
    assert len(sse_server.seen) == 3
    assert sse_server.seen[2].at - sse_server.seen[1].closed_at >= 1.0


@pytest.mark.parametrize(
    ("status", "slug", "error"),
    [(400, "invalid-resume-token", BadRequest), (401, "unauthorized", Unauthorized)],
)
def test_client_errors_are_raised_not_retried(
    sse_server: Any, status: int, slug: str, error: type[Exception]
) -> None:
    sse_server.scripts = [[sse_server.problem(status, slug)]]
    with DualStoreClient(sse_server.url) as client, pytest.raises(error) as caught:
        next(iter(client.stream("notes", last_event_id="zz")))
    assert caught.value.problem["type"] == f"urn:dualstore:problem:{slug}"  # type: ignore[attr-defined]
    assert len(sse_server.seen) == 1
    assert sse_server.seen[0].headers["last-event-id"] == "zz"


def test_a_200_that_is_not_an_event_stream_is_a_protocol_error(sse_server: Any) -> None:
    from dualstore_client import ProtocolError

    sse_server.scripts = [[sse_server.head(content_type="text/html"), b"<html>"]]
    with DualStoreClient(sse_server.url) as client, pytest.raises(ProtocolError):
        next(iter(client.stream("notes")))


def test_gives_up_after_max_reconnects_with_the_transport_error() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fast = Backoff(max_delay=0.01, jitter=0.0)
    with DualStoreClient(f"http://127.0.0.1:{port}") as client:
        stream = client.stream("notes", max_reconnects=2, backoff=fast)
        stream.session.retry_ms = 1
        with pytest.raises(TransportError):
            next(iter(stream))


def test_backoff_doubles_caps_and_jitters_above_the_retry_hint() -> None:
    plain = Backoff(max_delay=4.0, jitter=0.0)
    assert [plain.delay(1000, n) for n in (0, 1, 2, 3, 4, 5)] == [1, 1, 2, 4, 4, 4]
    assert plain.delay(1000, 1, retry_after=7.0) == 7.0
    assert plain.delay(60_000, 3) == 60.0  # a server hint above the cap still wins
    jittery = Backoff(max_delay=30.0, jitter=0.5, rng=random.Random(1))
    delays = [jittery.delay(2000, 1) for _ in range(200)]
    assert all(2.0 <= d <= 3.0 for d in delays)
    assert len(set(delays)) > 150  # really random, so clients do not reconnect in lockstep


def test_close_from_another_thread_ends_a_quiet_stream_without_reconnecting(
    sse_server: Any,
) -> None:
    import threading

    sse_server.scripts = [[sse_server.head(), b"retry: 10\n\n", 30.0]]
    outcome: list[object] = []
    with DualStoreClient(sse_server.url) as client:
        stream = client.stream("notes")

        def consume() -> None:
            try:
                outcome.append(list(stream))
            except Exception as exc:  # recorded, asserted below
                outcome.append(exc)

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        sse_server.wait_for(1)
        stream.close()
        reader.join(5)
        assert not reader.is_alive(), "close() did not end the iteration"
    assert len(outcome) == 1
    time_for_a_reconnect = 0.3
    reader.join(time_for_a_reconnect)
    assert len(sse_server.seen) == 1


def test_async_aclose_from_another_task_ends_a_quiet_stream(sse_server: Any) -> None:
    sse_server.scripts = [[sse_server.head(), b"retry: 10\n\n", 30.0]]

    async def run() -> list[StreamEvent]:
        async with AsyncDualStoreClient(sse_server.url) as client:
            stream = client.stream("notes")

            async def consume() -> list[StreamEvent]:
                return [event async for event in stream]

            reader = asyncio.create_task(consume())
            while not sse_server.seen:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            await stream.aclose()
            return await asyncio.wait_for(reader, 5)

    assert asyncio.run(run()) == []
    assert len(sse_server.seen) == 1
