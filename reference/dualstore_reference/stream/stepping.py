# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a coroutine without a Task: step it by hand, resuming it from its futures' callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

Done = Callable[[Any, BaseException | None], None]
"""Told (result, None) when the coroutine returned, or (None, error) when it raised."""


class Stepped:
    """Drives one coroutine to its end, as a Task would, but with no Task.

    A Task costs memory for as long as it lives (the task, its entry in asyncio's weak set
    of all tasks, a name) and a loop pass per step. For a coroutine that mostly waits
    (an ASGI ``receive`` on an idle stream, a ``send`` held by flow control) stepping it
    from the awaited future's done-callback does the same job: each ``send(None)`` runs it
    to its next await, exactly as a task's step does. ``on_done`` is called once, possibly
    from inside the constructor when the coroutine finishes without waiting.
    """

    __slots__ = ("_coro", "_on_done")

    def __init__(self, coro: Coroutine[Any, Any, Any], on_done: Done) -> None:
        self._coro: Coroutine[Any, Any, Any] | None = coro
        self._on_done = on_done
        self._step()

    @property
    def running(self) -> bool:
        """True until the coroutine returned, raised or was closed."""
        return self._coro is not None

    def _step(self, _awaited: object = None) -> None:
        coro = self._coro
        if coro is None:  # closed while a future was pending
            return
        try:
            waiting = coro.send(None)
        except StopIteration as stop:
            self._coro = None
            self._on_done(stop.value, None)
            return
        except BaseException as error:  # the coroutine failed (or was cancelled inside)
            self._coro = None
            self._on_done(None, error)
            return
        if waiting is None:  # a bare yield (sleep(0)): resume on the next loop pass
            asyncio.get_running_loop().call_soon(self._step)
        elif isinstance(waiting, asyncio.Future):
            waiting._asyncio_future_blocking = False  # what a task does with what it awaits
            waiting.add_done_callback(self._step)
        else:
            self._coro = None
            coro.close()
            self._on_done(None, RuntimeError(f"awaited an unsupported object {waiting!r}"))

    def close(self) -> None:
        """Abandon the coroutine (GeneratorExit at its await); on_done is not called."""
        coro, self._coro = self._coro, None
        if coro is not None:
            coro.close()
