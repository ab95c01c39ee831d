# SPDX-License-Identifier: GPL-3.0-or-later
"""GET /v1/{collection}/stream served by the real app (in-process uvicorn, real database)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from dualstore_reference.app import create_app
from dualstore_reference.embedded import EmbeddedDatabase, free_port
from dualstore_reference.security.stream_slots import SLOTS_COLLECTION
from dualstore_reference.settings import Settings
from dualstore_reference.stream.rawclient import RawStream
from dualstore_reference.stream.service import StreamService
from pymongo import MongoClient

HEARTBEAT = 1.0
CAP = 3
QUEUE = 20


@dataclass
class Server:
    url: str
    uri: str
    database: str
    service: StreamService

    def open_streams(self, settle: float = 3.0) -> int:
        """Streams the server still has open, after letting closes land."""
        deadline = time.monotonic() + settle
        while self.service.open_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.service.open_streams

    def slots(self) -> int:
        with MongoClient(self.uri) as client:
            return client[self.database][SLOTS_COLLECTION].count_documents({})


@contextlib.contextmanager
def serve(database: EmbeddedDatabase, data_dir: Path, **options: Any) -> Iterator[Server]:
    """The real app in-process (uvicorn on a free port) on its own database name."""
    name = f"s_{uuid.uuid4().hex[:10]}"
    uri = f"mongodb://{database.host}:{database.port}/{name}?directConnection=true"
    settings = Settings(mongodb_uri=uri, data_dir=data_dir, collections=("notes", "other"),
                        rate_limit_burst=0, **options)
    port = free_port()
    app = create_app(settings)
    route = app._router.find("/v1/notes/stream")  # the StreamResource and its service
    assert route is not None
    service = route[0].service
    assert isinstance(service, StreamService)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                            log_level="warning", timeout_graceful_shutdown=2)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started
    try:
        yield Server(f"http://127.0.0.1:{port}", uri, name, service)
    finally:
        instance.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def server(database: EmbeddedDatabase, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """The app with a 1 s heartbeat, a cap of 3 and 20-item queues."""
    with serve(database, tmp_path_factory.mktemp("stream-app"),
               sse_heartbeat_seconds=HEARTBEAT, stream_cap_per_ip=CAP,
               subscriber_queue_size=QUEUE, gap_timeout_seconds=1.0) as running:
        yield running


def post(server: Server, count: int, prefix: str = "doc", size: int = 0,
         collection: str = "notes", **extra: Any) -> list[str]:
    ids = []
    with httpx.Client(base_url=server.url) as client:
        for i in range(count):
            body = {"text": f"{prefix} {i} " + "x" * size, **extra}
            response = client.post(f"/v1/{collection}", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture(autouse=True)
def no_stream_left_open(server: Server) -> Iterator[None]:
    """After every test, the server holds no stream (and so no slot) of a gone client."""
    yield
    assert server.open_streams() == 0


def test_open_sends_headers_retry_and_a_heartbeat_at_once(server: Server) -> None:
    async def main() -> None:
        opened = time.monotonic()
        stream = await RawStream.open(server.url + "/v1/notes/stream")
        try:
            assert stream.status == 200
            assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert stream.headers["cache-control"] == "no-cache"
            assert stream.headers["x-accel-buffering"] == "no"
            [first] = await stream.events(1, timeout=2, types=("heartbeat",))
            assert first.at - opened < 1.0
            assert stream.parser.retry_ms == 3000
            assert first.id == ""
            assert set(json.loads(first.data)) == {"t"}
        finally:
            await stream.aclose()

    run(main())


def test_heartbeat_cadence_is_within_tolerance(server: Server) -> None:
    async def main() -> list[float]:
        stream = await RawStream.open(server.url + "/v1/other/stream")
        try:
            beats = await stream.events(5, timeout=8, types=("heartbeat",))
        finally:
            await stream.aclose()
        return [b.at - a.at for a, b in itertools.pairwise(beats)]

    gaps = run(main())
    assert len(gaps) == 4
    tolerance = max(0.5, 0.2 * HEARTBEAT)
    assert all(abs(gap - HEARTBEAT) <= tolerance for gap in gaps), gaps


def test_inserts_arrive_once_in_order_as_docs(server: Server) -> None:
    async def main() -> None:
        stream = await RawStream.open(server.url + "/v1/notes/stream")
        try:
            await stream.events(1, types=("heartbeat",))
            ids = await asyncio.to_thread(post, server, 5, "order", 0, "notes",
                                          metadata={"k": 1})
            events = await stream.events(5, timeout=10)
            more = await stream.events(1, timeout=1.5)
        finally:
            await stream.aclose()
        assert [e.json()["id"] for e in events] == ids
        assert more == []
        tokens = [int(e.id) for e in events]
        assert tokens == sorted(tokens) and len(set(tokens)) == 5
        doc = events[0].json()
        assert set(doc) == {"id", "text", "timestamp", "metadata"}
        assert doc["metadata"] == {"k": 1} and doc["timestamp"].endswith("Z")
        with httpx.Client(base_url=server.url) as client:
            assert client.get(f"/v1/notes/{doc['id']}").json() == doc

    run(main())


def test_a_fresh_stream_sends_nothing_committed_before_it_opened(server: Server) -> None:
    async def main() -> None:
        await asyncio.to_thread(post, server, 3, "before")
        stream = await RawStream.open(server.url + "/v1/notes/stream")
        try:
            await stream.events(1, types=("heartbeat",))
            [after] = await asyncio.to_thread(post, server, 1, "after")
            events = await stream.events(2, timeout=2)
        finally:
            await stream.aclose()
        assert [e.json()["id"] for e in events] == [after]

    run(main())


def test_resume_by_header_since_token_and_since_time(server: Server) -> None:
    async def main() -> None:
        stream = await RawStream.open(server.url + "/v1/other/stream")
        await stream.events(1, types=("heartbeat",))
        ids = await asyncio.to_thread(post, server, 6, "resume", 0, "other")
        events = await stream.events(6)
        await stream.aclose()
        assert [e.json()["id"] for e in events] == ids
        middle = events[2]

        async def replay(path: str, headers: dict[str, str] | None = None) -> list[str]:
            again = await RawStream.open(server.url + path, headers)
            try:
                assert again.status == 200
                return [e.json()["id"] for e in await again.events(10, timeout=1.0)]
            finally:
                await again.aclose()

        assert await replay("/v1/other/stream", {"Last-Event-ID": middle.id}) == ids[3:]
        assert await replay(f"/v1/other/stream?since={middle.id}") == ids[3:]
        since_time = events[4].json()["timestamp"]
        assert await replay(f"/v1/other/stream?since={since_time}") == ids[4:]
        # The header wins over since; an empty header counts as absent.
        assert await replay(f"/v1/other/stream?since={events[0].id}",
                            {"Last-Event-ID": events[4].id}) == ids[5:]
        assert await replay(f"/v1/other/stream?since={events[3].id}",
                            {"Last-Event-ID": ""}) == ids[4:]
        # From the very beginning of history.
        assert (await replay("/v1/other/stream?since=0"))[-6:] == ids

    run(main())


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {"Last-Event-ID": "not!valid"}),
        ("", {"Last-Event-ID": "a" * 129}),
        ("", {"Last-Event-ID": "abc"}),
        ("", {"Last-Event-ID": "99999999"}),
        ("?since=2026-13-01T00:00:00Z", {}),
        ("?since=yesterday", {}),
    ],
)
def test_malformed_or_unknown_resume_tokens_get_400(
    server: Server, query: str, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/v1/notes/stream" + query, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:dualstore:problem:invalid-resume-token"


def encode_filter(query: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(query).encode()).decode().rstrip("=")


def test_filtered_stream_live_and_resumed_sends_only_matching(server: Server) -> None:
    query = encode_filter({"$or": [{"metadata.team": "red"}, {"metadata.score": {"$gte": 5}}]})
    path = f"/v1/other/stream?filter={query}"

    async def main() -> None:
        stream = await RawStream.open(server.url + path)
        await stream.events(1, types=("heartbeat",))
        bodies = [{"team": "red"}, {"team": "blue"}, {"score": 7}, {"score": 2},
                  {"team": "red", "score": 1}, {}]
        ids = []
        for metadata in bodies:
            ids += await asyncio.to_thread(post, server, 1, "f", 0, "other", metadata=metadata)
        wanted = [ids[0], ids[2], ids[4]]
        live = await stream.events(3, timeout=10)
        extra = await stream.events(1, timeout=1.0)
        await stream.aclose()
        assert [e.json()["id"] for e in live] == wanted and extra == []
        again = await RawStream.open(server.url + path, {"Last-Event-ID": live[0].id})
        replayed = await again.events(3, timeout=2)
        await again.aclose()
        assert [e.json()["id"] for e in replayed] == wanted[1:]

    run(main())


def test_invalid_filter_is_400_before_any_stream_bytes(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/v1/notes/stream",
                              params={"filter": encode_filter({"$where": "1"})})
    assert response.status_code == 400
    assert response.json()["type"] == "urn:dualstore:problem:invalid-filter"


def test_unknown_collection_is_404(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/v1/nope/stream")
    assert response.status_code == 404


def test_cap_gives_429_and_an_idle_disconnect_frees_the_slot(server: Server) -> None:
    async def main() -> None:
        streams = [await RawStream.open(server.url + "/v1/notes/stream") for _ in range(CAP)]
        try:
            assert [s.status for s in streams] == [200] * CAP
            extra = await RawStream.open(server.url + "/v1/notes/stream")
            assert extra.status == 429
            assert int(extra.headers["retry-after"]) > 0
            body = json.loads(await extra.read_body())
            assert body["type"] == "urn:dualstore:problem:too-many-streams"
            await extra.aclose()
            await streams[0].events(1, types=("heartbeat",))
            streams[0].close()  # idle: the server is waiting on an empty queue
            released_at = time.monotonic()
            while True:
                retry = await RawStream.open(server.url + "/v1/notes/stream")
                if retry.status == 200:
                    streams[0] = retry
                    break
                await retry.aclose()
                assert time.monotonic() - released_at < 2.0, "slot not released within 2 s"
                await asyncio.sleep(0.1)
        finally:
            for stream in streams:
                await stream.aclose()

    # A long heartbeat, so that only real disconnect detection (not the next send) can
    # free the slot within 2 s.
    config = server.service.config
    saved, config.heartbeat_seconds = config.heartbeat_seconds, 30.0
    try:
        run(main())
    finally:
        config.heartbeat_seconds = saved


def test_a_thousand_connect_disconnect_cycles_leak_no_slot(server: Server) -> None:
    async def cycle(limit: asyncio.Semaphore, opened: list[int]) -> None:
        async with limit:
            for _ in range(100):  # a 429 while the previous client's slot is being released
                stream = await RawStream.open(server.url + "/v1/other/stream")
                if stream.status == 200:
                    break
                refusals.append(1)
                await stream.aclose()
                await asyncio.sleep(0.05)
            assert stream.status == 200, "a slot never became free: the counter leaked"
            await stream.events(1, types=("heartbeat",))
            stream.close()  # vanish without reading further
            opened.append(1)

    refusals: list[int] = []

    async def main() -> int:
        opened: list[int] = []
        limit = asyncio.Semaphore(CAP - 1)  # one spare slot absorbs release latency
        await asyncio.gather(*(cycle(limit, opened) for _ in range(1000)))
        return len(opened)

    started = time.monotonic()
    assert run(main()) == 1000
    print(f"1000 cycles in {time.monotonic() - started:.1f} s, {len(refusals)} transient 429s")
    deadline = time.monotonic() + 3
    while server.slots() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.slots() == 0


def test_slow_consumer_is_cut_and_resumes_without_loss(server: Server) -> None:
    async def main() -> None:
        stream = await RawStream.open(server.url + "/v1/notes/stream")
        await stream.events(1, types=("heartbeat",))
        # Stop reading while far more than the socket buffers and the 20-item queue arrive.
        ids = await asyncio.to_thread(post, server, 200, "slow", 40_000)
        await asyncio.sleep(1.0)
        first = await stream.events(1000, timeout=10)
        assert stream.ended, "the overflowed stream should end"
        await stream.aclose()
        received = [e.json()["id"] for e in first]
        assert 0 < len(received) < len(ids)
        assert received == ids[: len(received)]
        resumed = await RawStream.open(server.url + "/v1/notes/stream",
                                       {"Last-Event-ID": first[-1].id})
        rest = await resumed.events(len(ids) - len(received), timeout=15)
        await resumed.aclose()
        assert received + [e.json()["id"] for e in rest] == ids

    run(main())


def test_a_client_that_stops_reading_is_cut_and_its_slot_freed(server: Server) -> None:
    config = server.service.config
    saved, config.stalled_send_seconds = config.stalled_send_seconds, 1.0
    try:

        async def main() -> None:
            stream = await RawStream.open(server.url + "/v1/notes/stream")
            await stream.events(1, types=("heartbeat",))
            # Never read again: the socket buffers fill, the 20-item queue overflows, and
            # the server gives up on the stalled send instead of holding the stream forever.
            await asyncio.to_thread(post, server, 200, "stall", 40_000)
            deadline = time.monotonic() + 10
            while server.service.open_streams and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert server.service.open_streams == 0, "a stalled stream was not cut"
            await stream.events(10_000, timeout=10)  # what was buffered, then the cut
            assert stream.ended and not stream.clean_end
            await stream.aclose()

        run(main())
    finally:
        config.stalled_send_seconds = saved


def test_stream_accepts_access_token_query_parameter(database: EmbeddedDatabase,
                                                     tmp_path: Path) -> None:
    async def status(url: str, headers: dict[str, str] | None = None) -> int:
        stream = await RawStream.open(url, headers)
        await stream.aclose()
        return stream.status

    with serve(database, tmp_path, auth_tokens=("s3cret",)) as secured:
        base = secured.url + "/v1/notes/stream"
        assert run(status(base)) == 401
        assert run(status(base + "?access_token=wrong")) == 401
        assert run(status(base + "?access_token=s3cret")) == 200
        assert run(status(base, {"Authorization": "Bearer s3cret"})) == 200
