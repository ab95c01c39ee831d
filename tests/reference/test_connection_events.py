# SPDX-License-Identifier: GPL-3.0-or-later
"""LeanEvent behaves as asyncio.Event where uvicorn uses it, and is much smaller."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest
from dualstore_reference.connection import LeanEvent, _leaner


def test_wait_returns_at_once_when_set_and_after_set_otherwise() -> None:
    async def body() -> None:
        event = LeanEvent()
        assert not event.is_set()
        waiter = asyncio.ensure_future(event.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        event.set()
        assert await asyncio.wait_for(waiter, 1) is True
        assert event.is_set()
        assert await asyncio.wait_for(event.wait(), 1) is True  # still set
        event.clear()
        assert not event.is_set()
        late = asyncio.ensure_future(event.wait())
        await asyncio.sleep(0.01)
        assert not late.done()  # cleared: waits again
        event.set()
        await asyncio.wait_for(late, 1)

    asyncio.run(body())


def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    async def body() -> None:
        event = LeanEvent()
        first = asyncio.ensure_future(event.wait())
        second = asyncio.ensure_future(event.wait())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        event.set()
        assert await asyncio.wait_for(second, 1) is True
        assert event._waiters is None  # nothing kept once nobody waits

    asyncio.run(body())


def test_only_an_unwaited_asyncio_event_is_replaced_keeping_its_state() -> None:
    async def body() -> None:
        unset, done = asyncio.Event(), asyncio.Event()
        done.set()
        lean_unset, lean_done = _leaner(unset), _leaner(done)
        assert isinstance(lean_unset, LeanEvent) and not lean_unset.is_set()
        assert isinstance(lean_done, LeanEvent) and lean_done.is_set()
        waited = asyncio.Event()
        task = asyncio.ensure_future(waited.wait())
        await asyncio.sleep(0)
        assert _leaner(waited) is waited  # someone waits on it: left alone
        waited.set()
        await task
        other = object()
        assert _leaner(other) is other

    asyncio.run(body())


def test_a_lean_event_is_a_fraction_of_an_asyncio_event() -> None:
    def size_of(make: Any) -> float:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        kept = [make() for _ in range(1000)]
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        assert len(kept) == 1000
        return sum(s.size_diff for s in after.compare_to(before, "filename")) / 1000

    assert size_of(LeanEvent) * 5 < size_of(asyncio.Event)


def test_a_served_connection_uses_lean_events_and_still_sees_the_disconnect() -> None:
    """uvicorn with DualstoreProtocol: an open streaming response's connection holds
    LeanEvents (flow control and request cycle), and receive() still reports the client's
    disconnect through them."""
    import uvicorn
    from dualstore_reference.connection import ConnectionLimits, DualstoreProtocol

    async def body() -> None:
        disconnected = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "body": b": open\n\n",
                        "more_body": True})
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off",
                                http=DualstoreProtocol.configured(ConnectionLimits(5.0, 100)))
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b": open\n\n"), 5)
        assert b"200" in head.split(b"\r\n", 1)[0]
        assert len(server.server_state.connections) == 1
        protocol: Any = next(iter(server.server_state.connections))  # uvicorn internals
        assert isinstance(protocol.flow._is_writable_event, LeanEvent)
        assert isinstance(protocol.cycle.message_event, LeanEvent)
        writer.close()
        await asyncio.wait_for(disconnected.wait(), 5)
        server.should_exit = True
        await asyncio.wait_for(serving, 10)

    asyncio.run(body())


def test_the_protocol_instance_is_as_small_as_uvicorns_own() -> None:
    """Our per-connection state lives in one slotted attribute: an instance with more than
    30 attributes loses CPython's shared-key dict (about 1.6 KB instead of 0.3 KB, for the
    whole life of every stream)."""
    import sys

    from dualstore_reference.connection import DualstoreProtocol
    from uvicorn.config import Config
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.server import ServerState

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    config = Config(app)
    config.load()
    loop = asyncio.new_event_loop()

    def instance_dict_size(protocol: type) -> int:
        # A fresh subclass, as each worker configures its own (the shared keys CPython
        # caches per class do not depend on what other tests made before); the second
        # instance is measured, as every connection after a worker's first is.
        fresh = type(f"Fresh{protocol.__name__}", (protocol,), {})
        fresh(config, ServerState(), config.loaded_app, loop)
        return sys.getsizeof(vars(fresh(config, ServerState(), config.loaded_app, loop)))

    try:
        assert instance_dict_size(DualstoreProtocol) <= instance_dict_size(H11Protocol)
    finally:
        loop.close()
