# SPDX-License-Identifier: GPL-3.0-or-later
"""stream.pacing.paced: heartbeats interleaved into a slow source, items kept in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from dualstore_reference.stream.pacing import paced


async def scripted(delays: list[float], log: list[str]) -> AsyncIterator[int]:
    """Yields 0, 1, ... each after its delay; records when it is closed or cancelled."""
    try:
        for number, delay in enumerate(delays):
            await asyncio.sleep(delay)
            yield number
    except asyncio.CancelledError:
        log.append("cancelled")
        raise
    finally:
        log.append("closed")


async def consume(delays: list[float], interval: float) -> list[int | None]:
    last_sent = [time.monotonic()]
    received: list[int | None] = []
    async for item in paced(scripted(delays, []), lambda: last_sent[0] + interval):
        received.append(item)
        last_sent[0] = time.monotonic()
    return received


def test_a_fast_source_gets_no_heartbeats() -> None:
    assert asyncio.run(consume([0.0, 0.0, 0.0], interval=1.0)) == [0, 1, 2]


def test_a_stalled_source_gets_heartbeats_and_keeps_its_order() -> None:
    received = asyncio.run(consume([0.0, 0.75, 0.0], interval=0.2))
    items = [item for item in received if item is not None]
    assert items == [0, 1, 2]
    heartbeats_before_1 = received[1:received.index(1)]
    # 0.75 s of silence at a 0.2 s interval: about three heartbeats (scheduling tolerance)
    assert heartbeats_before_1 and set(heartbeats_before_1) == {None}
    assert 2 <= len(heartbeats_before_1) <= 4


def test_the_pending_read_survives_a_heartbeat() -> None:
    """A heartbeat does not cancel the read in flight: nothing is skipped or repeated."""
    received = asyncio.run(consume([0.3, 0.3, 0.3, 0.3], interval=0.05))
    assert [item for item in received if item is not None] == [0, 1, 2, 3]


def test_stopping_early_cancels_the_read_in_flight() -> None:
    log: list[str] = []

    async def main() -> None:
        stream = paced(scripted([0.0, 10.0], log), lambda: time.monotonic() + 5.0)
        assert await anext(stream) == 0
        reading = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await stream.aclose()

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 5.0
    assert "cancelled" in log
