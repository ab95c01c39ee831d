# SPDX-License-Identifier: GPL-3.0-or-later
"""Interleave heartbeats into a slow source: a long filtered replay never goes silent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")


async def paced(
    source: AsyncIterator[T], due: Callable[[], float]
) -> AsyncGenerator[T | None, None]:
    """The items of ``source`` in order, plus ``None`` each time ``due()`` (a
    ``time.monotonic()`` instant, read again after every yield) passes while the source is
    still working on its next item: the caller sends a heartbeat then.

    The pending read is never cancelled for a heartbeat (a database cursor would lose its
    place); it is cancelled only when the consumer stops early.
    """
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            wait = max(due() - time.monotonic(), 0.0)
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
