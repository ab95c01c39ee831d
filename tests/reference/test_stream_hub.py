# SPDX-License-Identifier: GPL-3.0-or-later
"""Hub fan-out: join point, bounded queues that close on overflow, wake-ups, frame cache."""

from __future__ import annotations

import asyncio

import pytest
from dualstore_reference.stream.hub import Hub, SubscriptionClosed


def test_subscribers_get_only_items_after_their_join_point() -> None:
    async def main() -> None:
        hub = Hub("c", queue_size=10)
        hub.publish(1, {"n": 1})
        early = hub.subscribe()
        hub.publish(2, {"n": 2})
        hub.publish(3, None)  # a tombstone advances the watermark but is never delivered
        late = hub.subscribe()
        hub.publish(4, {"n": 4})
        assert (early.start, late.start) == (1, 3)
        assert [await early.get(0.1) for _ in range(2)] == [(2, {"n": 2}), (4, {"n": 4})]
        assert await late.get(0.1) == (4, {"n": 4})
        assert await late.get(0.05) is None

    asyncio.run(main())


def test_publish_refuses_to_go_backwards() -> None:
    hub = Hub("c")
    hub.publish(5, {})
    with pytest.raises(ValueError):
        hub.publish(5, {})


def test_a_full_queue_closes_the_subscription_after_draining_what_it_holds() -> None:
    async def main() -> None:
        hub = Hub("c", queue_size=3)
        slow = hub.subscribe()
        for seq in range(1, 6):
            hub.publish(seq, {"n": seq})
        assert slow.overflowed and hub.subscriber_count == 0
        assert [(await slow.get(0.1)) for _ in range(3)] == [(s, {"n": s}) for s in (1, 2, 3)]
        with pytest.raises(SubscriptionClosed):
            await slow.get(0.1)

    asyncio.run(main())


def test_filter_predicate_keeps_non_matching_items_out_of_the_queue() -> None:
    async def main() -> None:
        hub = Hub("c", queue_size=2)
        picky = hub.subscribe(lambda d: d["n"] % 2 == 0)
        for seq in range(1, 6):
            hub.publish(seq, {"n": seq})
        assert not picky.overflowed
        assert [await picky.get(0.1) for _ in range(2)] == [(2, {"n": 2}), (4, {"n": 4})]

    asyncio.run(main())


def test_closing_wakes_a_consumer_blocked_on_an_empty_queue() -> None:
    async def main() -> None:
        hub = Hub("c")
        waiting = hub.subscribe()
        getter = asyncio.create_task(waiting.get(30))
        await asyncio.sleep(0.05)
        hub.close_all("shutdown")
        with pytest.raises(SubscriptionClosed) as closed:
            await asyncio.wait_for(getter, 1)
        assert closed.value.reason == "shutdown"

    asyncio.run(main())


def test_each_frame_is_encoded_once() -> None:
    hub = Hub("c")
    calls: list[int] = []

    def encode() -> bytes:
        calls.append(1)
        return b"frame"

    assert [hub.frame(7, encode) for _ in range(100)] == [b"frame"] * 100
    assert len(calls) == 1


def test_wait_for_returns_when_the_watermark_arrives() -> None:
    async def main() -> None:
        hub = Hub("c")
        asyncio.get_running_loop().call_later(0.05, hub.publish, 3, {})
        assert await hub.wait_for(3, 2)
        assert not await hub.wait_for(4, 0.05)

    asyncio.run(main())


def test_an_idle_sink_takes_items_and_a_refusing_one_sends_them_to_the_queue() -> None:
    async def main() -> None:
        hub = Hub("c", queue_size=10)
        hub.encoder = lambda seq, document: f"{seq}".encode()
        taken: list[tuple[int, bytes]] = []
        accept = True

        def sink(seq: int, frame: bytes) -> bool:
            if accept:
                taken.append((seq, frame))
            return accept

        subscription = hub.subscribe()
        subscription.sink = sink
        hub.publish(1, {"n": 1})
        assert taken == [(1, b"1")] and subscription.pending() == 0
        accept = False
        hub.publish(2, {"n": 2})
        accept = True
        hub.publish(3, {"n": 3})  # the queue holds 2: 3 must queue behind it, not jump it
        assert taken == [(1, b"1")]
        assert [await subscription.get(0.1) for _ in range(2)] == [(2, {"n": 2}), (3, {"n": 3})]

    asyncio.run(main())


def test_overflow_calls_on_overflow_once_and_drops_the_sink() -> None:
    hub = Hub("c", queue_size=1)
    subscription = hub.subscribe()
    calls: list[int] = []
    subscription.on_overflow = lambda: calls.append(1)
    subscription.sink = lambda seq, frame: False
    hub.encoder = lambda seq, document: b"x"
    for seq in range(1, 5):
        hub.publish(seq, {"n": seq})
    assert calls == [1] and subscription.sink is None and subscription.overflowed
