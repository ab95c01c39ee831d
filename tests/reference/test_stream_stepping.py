# SPDX-License-Identifier: GPL-3.0-or-later
"""Stepped runs a coroutine to its end without a Task: results, errors, waits and closing."""

from __future__ import annotations

import asyncio
from typing import Any

from dualstore_reference.stream.stepping import Stepped


def test_a_coroutine_that_never_waits_finishes_inside_the_constructor() -> None:
    async def main() -> None:
        seen: list[Any] = []

        async def quick() -> str:
            return "done"

        stepped = Stepped(quick(), lambda result, error: seen.append((result, error)))
        assert seen == [("done", None)] and not stepped.running

    asyncio.run(main())


def test_waits_are_resumed_by_the_awaited_future_and_no_task_is_made() -> None:
    async def main() -> None:
        seen: list[Any] = []
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def waiter() -> int:
            await asyncio.sleep(0)  # a bare yield: resumed on the next loop pass
            return await gate + 1

        tasks_before = len(asyncio.all_tasks())
        stepped = Stepped(waiter(), lambda result, error: seen.append((result, error)))
        assert stepped.running and seen == []
        assert len(asyncio.all_tasks()) == tasks_before
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert stepped.running and seen == []  # now parked on the gate
        gate.set_result(41)
        await asyncio.sleep(0)
        assert seen == [(42, None)] and not stepped.running

    asyncio.run(main())


def test_an_error_is_reported_and_close_abandons_without_reporting() -> None:
    async def main() -> None:
        seen: list[Any] = []
        closed: list[bool] = []

        async def failing() -> None:
            raise ValueError("broken")

        Stepped(failing(), lambda result, error: seen.append((result, type(error))))
        assert seen == [(None, ValueError)]

        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def parked() -> None:
            try:
                await gate
            except GeneratorExit:
                closed.append(True)
                raise

        stepped = Stepped(parked(), lambda result, error: seen.append(("late", error)))
        stepped.close()
        gate.set_result(None)  # its callback finds the coroutine gone
        await asyncio.sleep(0)
        assert closed == [True] and not stepped.running and len(seen) == 1

    asyncio.run(main())
