# SPDX-License-Identifier: GPL-3.0-or-later
"""Stream proofs with real gunicorn workers (2) and a real SecantusDB daemon.

Concurrency (exactly once, one order, across workers, filtered too), resume at random
points, SIGTERM hand-over to another instance, database restart, standalone database.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import RunningReference, start_reference, with_database
from dualstore_reference.stream.rawclient import RawStream

ENV = {
    "SSE_HEARTBEAT_SECONDS": "1",
    "GAP_TIMEOUT_SECONDS": "1",
    "RATE_LIMIT_BURST": "0",
    "DUALSTORE_DEBUG_HEADERS": "1",
    "COLLECTIONS": "events",
    "EMBEDDING_DIM": "16",
}
HAVE_FILTERS = importlib.util.find_spec("dualstore_reference.store.filters") is not None


def encode_filter(query: dict[str, Any]) -> str:
    raw = json.dumps(query, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    """A daemon with on-disk storage, so that it can be restarted without losing data."""
    storage = tmp_path_factory.mktemp("stream-db")
    with EmbeddedDatabase(storage_path=str(storage / "data")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def reference(db: EmbeddedDatabase, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[RunningReference]:
    """dualstore serve with 2 workers on that daemon."""
    data = tmp_path_factory.mktemp("stream-ref")
    with start_reference(env=ENV, workers=2, data_dir=data,
                         mongodb_uri=with_database(db.uri, "proofs")) as running:
        yield running


async def open_on_each_worker(url: str, count: int, paths: list[str]) -> list[RawStream]:
    """Open streams (paths[i] for the i-th) until both workers serve at least one.

    Which worker accepts a connection is the kernel's and the workers' business; on a busy
    machine one may take many in a row, so one stream at a time is reopened until the
    other worker takes one.
    """

    async def opened(i: int) -> RawStream:
        stream = await RawStream.open(url + paths[i % len(paths)])
        assert stream.status == 200
        return stream

    streams = [await opened(i) for i in range(count)]
    for attempt in range(100):
        if len({s.headers.get("x-dualstore-worker") for s in streams}) >= 2:
            return streams
        slot = attempt % count
        await streams[slot].aclose()
        await asyncio.sleep(0.05)
        streams[slot] = await opened(slot)
    for stream in streams:
        await stream.aclose()
    raise AssertionError("could not get streams on both workers")


async def write(url: str, writer: int, count: int, ids: list[str],
                collection: str = "events") -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i in range(count):
            for _ in range(100):
                try:
                    response = await client.post(
                        f"/v1/{collection}",
                        json={"text": f"w{writer} #{i}", "metadata": {"writer": writer, "i": i}},
                    )
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 201:
                    ids.append(response.json()["id"])
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("a POST never succeeded")


def test_concurrent_writers_and_streams_on_both_workers(reference: RunningReference) -> None:
    writers, per_writer = 4, 40
    selected = {0, 1}
    paths = ["/v1/events/stream"]
    if HAVE_FILTERS:
        paths.append("/v1/events/stream?filter="
                     + encode_filter({"metadata.writer": {"$in": sorted(selected)}}))

    async def main() -> None:
        streams = await open_on_each_worker(reference.url, 5, paths)
        for stream in streams:
            await stream.events(1, types=("heartbeat",))
        ids: list[str] = []
        await asyncio.gather(*(write(reference.url, w, per_writer, ids) for w in range(writers)))
        total = writers * per_writer
        filtered_total = len(selected) * per_writer
        expected = [
            total if "filter=" not in paths[i % len(paths)] else filtered_total
            for i in range(len(streams))
        ]
        received = await asyncio.gather(*(
            s.events(n, timeout=max(15.0, total / 10)) for s, n in zip(streams, expected,
                                                                      strict=True)
        ))
        extras = await asyncio.gather(*(s.events(1, timeout=1.5) for s in streams))
        assert extras == [[]] * len(streams)  # nothing beyond the expected documents
        for stream in streams:
            await stream.aclose()
        full = [e for stream, got in zip(streams, received, strict=True)
                for e in got if stream is streams[0]]
        assert sorted(e.json()["id"] for e in full) == sorted(ids)  # every one, once
        order = [(e.id, e.json()["id"]) for e in full]
        tokens = [int(token) for token, _ in order]
        assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
        for i, got in enumerate(received):
            pairs = [(e.id, e.json()["id"]) for e in got]
            if "filter=" in paths[i % len(paths)]:
                wanted = [p for p, e in zip(order, full, strict=True)
                          if e.json()["metadata"]["writer"] in selected]
                assert pairs == wanted
            else:
                assert pairs == order  # same documents, same ids, same order on every worker

    asyncio.run(main())


def test_per_ip_cap_holds_across_workers(reference: RunningReference) -> None:
    url = reference.url + "/v1/events/stream"

    async def reopen() -> RawStream | None:
        """A new stream, retrying for 2 s while a released slot is on its way back."""
        for _ in range(40):
            again = await RawStream.open(url)
            if again.status == 200:
                return again
            await again.aclose()
            await asyncio.sleep(0.05)
        return None

    def workers(streams: list[RawStream]) -> set[str | None]:
        return {s.headers.get("x-dualstore-worker") for s in streams}

    async def main() -> None:
        streams: list[RawStream] = []
        for _ in range(100):  # slots of earlier tests' streams may still be on their way back
            stream = await RawStream.open(url)
            if stream.status == 200:
                streams.append(stream)
                if len(streams) == 10:
                    break
            else:
                await stream.aclose()
                await asyncio.sleep(0.05)
        try:
            assert len(streams) == 10
            # The kernel may hand one worker every connection in a row: swap one stream at
            # a time (bounded) until the other worker holds some of the 10.
            for _ in range(100):
                if len(workers(streams)) == 2:
                    break
                await streams.pop(0).aclose()
                again = await reopen()
                assert again is not None, "the slot was not released within 2 s"
                streams.append(again)
            assert len(workers(streams)) == 2
            refused = await RawStream.open(url)
            assert refused.status == 429 and "retry-after" in refused.headers
            await refused.aclose()
            streams.pop().close()
            again = await reopen()
            if again is None:
                raise AssertionError("the slot was not released within 2 s")
            streams.append(again)
        finally:
            for stream in streams:
                await stream.aclose()

    asyncio.run(main())


def test_random_disconnects_resume_to_the_exact_sequence(reference: RunningReference) -> None:
    rng = random.Random(4)

    async def resuming_reader(total: int, use_since: bool) -> list[tuple[str, str]]:
        got: list[tuple[str, str]] = []
        last = ""
        while len(got) < total:
            if not last:
                path, headers = "/v1/events/stream?since=" + start_token, {}
            elif use_since:
                path, headers = f"/v1/events/stream?since={last}", {}
            else:  # the header wins over a stale since
                path, headers = f"/v1/events/stream?since={start_token}", {"Last-Event-ID": last}
            stream = await RawStream.open(reference.url + path, headers)
            assert stream.status == 200
            events = await stream.events(min(rng.randint(1, 25), total - len(got)), timeout=10)
            stream.close()
            if not events and stream.ended:
                continue
            assert events, "no progress"
            got += [(e.id, e.json()["id"]) for e in events]
            last = got[-1][0]
        return got

    async def main() -> None:
        nonlocal start_token
        async with httpx.AsyncClient(base_url=reference.url) as client:
            await client.post("/v1/events", json={"text": "marker"})
        marker = await RawStream.open(reference.url + "/v1/events/stream?since=0")
        events = await marker.events(100000, timeout=3)
        await marker.aclose()
        start_token = events[-1].id
        reference_stream = await RawStream.open(
            reference.url + "/v1/events/stream", {"Last-Event-ID": start_token})
        ids: list[str] = []
        total = 120
        writing = asyncio.gather(*(write(reference.url, w, total // 4, ids) for w in range(4)))
        readers = asyncio.gather(resuming_reader(total, False), resuming_reader(total, True))
        await writing
        uninterrupted = await reference_stream.events(total, timeout=30)
        await reference_stream.aclose()
        by_header, by_since = await readers
        truth = [(e.id, e.json()["id"]) for e in uninterrupted]
        assert sorted(doc for _, doc in truth) == sorted(ids)
        assert by_header == truth
        assert by_since == truth

    start_token = "0"
    asyncio.run(main())


def test_sigterm_ends_streams_cleanly_and_clients_resume_elsewhere(
    db: EmbeddedDatabase, tmp_path: Path
) -> None:
    uri = with_database(db.uri, "handover")
    first = start_reference(env=ENV, workers=2, data_dir=tmp_path / "a", mongodb_uri=uri)
    second = start_reference(env=ENV, workers=2, data_dir=tmp_path / "b", mongodb_uri=uri)
    try:
        async def main() -> None:
            streams = await open_on_each_worker(first.url, 4, ["/v1/events/stream"])
            for stream in streams:
                await stream.events(1, types=("heartbeat",))
            ids: list[str] = []
            writing = asyncio.create_task(
                write(second.url, 9, 60, ids))  # writes go to the surviving instance
            await asyncio.sleep(1.0)
            loop = asyncio.get_running_loop()
            stopped_at = loop.time()
            stopping = loop.run_in_executor(None, first.stop)
            before = await asyncio.gather(*(s.events(1000, timeout=25) for s in streams))
            assert all(s.ended for s in streams), "streams must end when the worker stops"
            assert all(s.clean_end for s in streams), "streams must end cleanly, not be killed"
            ended_after = loop.time() - stopped_at
            await stopping
            assert ended_after < 5, ended_after  # gunicorn's graceful timeout is 10 s
            await writing
            for stream, got in zip(streams, before, strict=True):
                headers = {"Last-Event-ID": got[-1].id} if got else {}
                assert got, "a stream received nothing before the stop"
                resumed = await RawStream.open(second.url + "/v1/events/stream", headers)
                rest = await resumed.events(len(ids) - len(got), timeout=20)
                await resumed.aclose()
                assert [e.json()["id"] for e in got + rest] == ids
                assert stream.parser.close() == []  # it ended at an event boundary

        asyncio.run(main())
    finally:
        first.close()
        second.close()


def test_streams_survive_a_database_restart(db: EmbeddedDatabase,
                                            reference: RunningReference) -> None:
    async def main() -> None:
        stream = await RawStream.open(reference.url + "/v1/events/stream")
        await stream.events(1, types=("heartbeat",))
        before: list[str] = []
        await write(reference.url, 1, 5, before)
        got = await stream.events(5, timeout=10)
        await asyncio.to_thread(db.stop)
        async with httpx.AsyncClient(base_url=reference.url, timeout=30) as client:
            refused = await client.post("/v1/events", json={"text": "while down"})
        assert refused.status_code == 503
        beats = await stream.events(3, timeout=6, types=("heartbeat",))
        assert len(beats) == 3  # the stream stays alive while the database is away
        await asyncio.to_thread(db.start)
        after: list[str] = []
        await write(reference.url, 2, 5, after)
        received = got + await stream.events(5, timeout=30)
        # The open stream rode out the outage (heartbeats kept it alive; the tailer retried).
        assert not stream.ended
        await stream.aclose()
        assert [e.json()["id"] for e in received] == before + after
        # A stream opened after the restart resumes across the outage too.
        again = await RawStream.open(reference.url + "/v1/events/stream",
                                     {"Last-Event-ID": got[0].id})
        resumed = await again.events(9, timeout=15)
        await again.aclose()
        assert [e.json()["id"] for e in resumed] == (before + after)[1:]

    asyncio.run(main())


def test_standalone_database_streams_everything(tmp_path: Path) -> None:
    with EmbeddedDatabase(standalone=True) as standalone, start_reference(
        env=ENV, workers=2, data_dir=tmp_path, mongodb_uri=with_database(standalone.uri, "solo")
    ) as running:

        async def main() -> None:
            streams = await open_on_each_worker(running.url, 2, ["/v1/events/stream"])
            for stream in streams:
                await stream.events(1, types=("heartbeat",))
            ids: list[str] = []
            await asyncio.gather(*(write(running.url, w, 15, ids) for w in range(3)))
            received = await asyncio.gather(*(s.events(len(ids), timeout=15)
                                              for s in streams))
            extras = await asyncio.gather(*(s.events(1, timeout=1.0) for s in streams))
            assert extras == [[], []]
            for stream in streams:
                await stream.aclose()
            lists = [[(e.id, e.json()["id"]) for e in got] for got in received]
            assert sorted(doc for _, doc in lists[0]) == sorted(ids)
            assert lists[0] == lists[1]

        asyncio.run(main())

