# SPDX-License-Identifier: GPL-3.0-or-later
"""Event streams of a check: ``StreamReader`` (opened, read in the background, parsed with
the WHATWG parser) and ``StreamBudget`` (the per-IP stream cap shared between checks)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NoReturn, Protocol

import httpx
from dualstore_sse import Comment, Event, SSEParser

from dualstore_conformance import client as http
from dualstore_conformance.model import Target


class StreamBudget:
    """Shares the target's per-IP stream cap between concurrently running checks."""

    def __init__(self, streams: int) -> None:
        self._semaphore = asyncio.Semaphore(max(1, streams))

    async def acquire(self, timeout: float) -> bool:
        """Take a slot; after timeout go ahead without one (returns False)."""
        try:
            await asyncio.wait_for(self._semaphore.acquire(), timeout)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        """Give a slot back."""
        self._semaphore.release()


class StreamHost(Protocol):
    """What a stream needs of the check that opens it (``CheckContext`` provides it)."""

    client: httpx.AsyncClient
    target: Target
    exclusive: bool
    stream_budget: StreamBudget | None

    def url(self, path: str) -> str: ...

    def scaled(self, seconds: float) -> float: ...

    def rate_limit_patience(self) -> float: ...

    def curl(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: object | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> str: ...

    def fail(
        self,
        title: str,
        expected: str,
        received: str,
        rules: list[str] | None = None,
        evidence: dict[str, Any] | None = None,
        reproduce: str = "",
        severity: str = "high",
    ) -> NoReturn: ...

    def unobserved(self, reason: str) -> NoReturn: ...


class StreamReader:
    """An open event stream read in the background and parsed with the WHATWG parser.

    After ``__aenter__``: ``status`` and ``headers`` are set. A 200 answer is read
    continuously into ``raw`` / ``items``; any other answer is read whole (capped) into
    ``body``. ``next_event`` and ``collect`` consume events from a cursor; ``items`` always
    holds everything received so far with monotonic receive times.
    """

    MAX_ERROR_BODY = 65536

    def __init__(
        self,
        ctx: StreamHost,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        retry_rate_limited: bool = True,
    ) -> None:
        self.ctx = ctx
        self.path = path
        self.params = dict(params or {})
        self.request_headers = dict(headers or {})
        self.auth = auth
        self.retry_rate_limited = retry_rate_limited
        self.status: int = 0
        self.headers: httpx.Headers = httpx.Headers()
        self.opened_at: float = 0.0
        self.headers_at: float | None = None
        self.first_byte_at: float | None = None
        self.items: list[tuple[float, Event | Comment]] = []
        self.raw = bytearray()
        self.body: bytes = b""
        self.parser = SSEParser()
        self.closed = False
        """The server ended the stream (or the connection failed: see ``error``)."""
        self.error: BaseException | None = None
        self.response: httpx.Response | None = None
        self._cursor = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slot = False

    # -- lifecycle --------------------------------------------------------------------
    async def __aenter__(self) -> StreamReader:
        ctx = self.ctx
        if ctx.stream_budget is not None and not ctx.exclusive:
            self._slot = await ctx.stream_budget.acquire(ctx.scaled(20.0))
        patience = ctx.rate_limit_patience()
        deadline = time.monotonic() + patience
        while True:
            await self._open()
            if not (self.retry_rate_limited and self.response is not None
                    and self.status == 429):
                break
            # rate-limited, or too-many-streams while other checks' slots drain: wait
            await self.response.aread()
            wait = http.retry_after_wait(self.response)
            await self.response.aclose()
            if time.monotonic() + wait > deadline:
                self.body = self.response.content
                await self.close()
                ctx.unobserved(
                    f"the stream open was refused with 429 for {patience:.0f} s "
                    f"({self.body[:200]!r}): a 429 is the deployment's right, so the stream "
                    "could not be observed (declare the deployment's rate limit and stream "
                    "cap with --rate-limit and --stream-cap)")
            await asyncio.sleep(wait)
        response = self.response
        assert response is not None
        if self.status == 200:
            self._task = asyncio.create_task(self._read(response))
        else:
            try:
                self.body = await asyncio.wait_for(self._read_capped(response), ctx.scaled(5.0))
            except TimeoutError:
                self.body = bytes(self.raw)
            finally:
                await response.aclose()
        return self

    async def _open(self) -> None:
        ctx = self.ctx
        headers = httpx.Headers(self.request_headers)
        timeout = httpx.Timeout(ctx.scaled(10.0), read=None)
        request = ctx.client.build_request(
            "GET", self.path, params=self.params or None, headers=headers, timeout=timeout
        )
        if not self.auth and "authorization" in request.headers:
            del request.headers["authorization"]
        self.request = request
        self.opened_at = time.monotonic()
        try:
            self.response = await asyncio.wait_for(
                ctx.client.send(request, stream=True), ctx.scaled(10.0)
            )
        except TimeoutError:
            ctx.fail(
                "Stream request got no response headers",
                expected=f"response headers within {ctx.scaled(10.0):.1f} s",
                received="nothing",
                reproduce=self.reproduce(),
            )
        self.headers_at = time.monotonic()
        self.status = self.response.status_code
        self.headers = self.response.headers

    async def _read_capped(self, response: httpx.Response) -> bytes:
        async for chunk in response.aiter_bytes():
            self.raw.extend(chunk)
            if len(self.raw) >= self.MAX_ERROR_BODY:
                break
        return bytes(self.raw)

    async def _read(self, response: httpx.Response) -> None:
        try:
            async for chunk in response.aiter_bytes():
                if not chunk:
                    continue
                now = time.monotonic()
                if self.first_byte_at is None:
                    self.first_byte_at = now
                self.raw.extend(chunk)
                for item in self.parser.feed(chunk):
                    self.items.append((now, item))
                self._notify()
            now = time.monotonic()
            for item in self.parser.close():
                self.items.append((now, item))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # connection dropped: recorded, the check decides
            self.error = error
        finally:
            self.closed = True
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.response is not None:
            with contextlib.suppress(Exception):
                await self.response.aclose()
        if self._slot and self.ctx.stream_budget is not None:
            self.ctx.stream_budget.release()
            self._slot = False

    # -- reading ----------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        """Every event received so far."""
        return [item for _, item in self.items if isinstance(item, Event)]

    def events_of(self, type: str) -> list[Event]:
        """Every event of one type received so far."""
        return [item for _, item in self.items if isinstance(item, Event) and item.type == type]

    @property
    def comments(self) -> list[Comment]:
        """Every comment received so far."""
        return [item for _, item in self.items if isinstance(item, Comment)]

    async def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate(self)`` is true or the stream ends; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if self.closed:
                return bool(predicate(self))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_first_byte(self, timeout: float) -> bool:
        """Wait until the first body byte arrived."""
        return await self.wait_for(lambda r: r.first_byte_at is not None, timeout)

    async def next_event(self, timeout: float, type: str | None = None) -> Event | None:
        """The next unconsumed event (of ``type`` when given; others are skipped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.items):
                _, item = self.items[self._cursor]
                self._cursor += 1
                if isinstance(item, Event) and (type is None or item.type == type):
                    return item
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def collect(self, count: int, timeout: float, type: str = "insert") -> list[Event]:
        """Up to ``count`` next events of ``type`` within ``timeout`` (fewer on timeout)."""
        deadline = time.monotonic() + timeout
        found: list[Event] = []
        while len(found) < count:
            event = await self.next_event(max(0.0, deadline - time.monotonic()), type)
            if event is None:
                break
            found.append(event)
        return found

    # -- reporting --------------------------------------------------------------------
    def reproduce(self) -> str:
        """curl for this stream request (token redacted)."""
        headers = dict(self.request_headers)
        if not self.auth:
            headers["Authorization"] = ""
        return self.ctx.curl("GET", self.path, headers=headers or None,
                             params=self.params or None, stream=True)

    def evidence(self, limit: int = http.EVIDENCE_BODY_BYTES) -> dict[str, Any]:
        """Status, headers and the first bytes received."""
        data = bytes(self.raw) if self.status == 200 else self.body
        token = self.ctx.target.token
        return {
            "request": f"GET {self.ctx.url(self.path)}",
            "params": {k: http.redact_text(str(v), token) for k, v in self.params.items()},
            "status": self.status,
            "headers": http.safe_headers(self.headers, self.ctx.target.token),
            "body": http.body_excerpt(data, limit),
        }

    def json(self) -> Any:
        """The non-200 body parsed as JSON (None when it is not JSON)."""
        import json as _json

        try:
            return _json.loads(self.body)
        except ValueError:
            return None
