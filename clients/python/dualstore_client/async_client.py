# SPDX-License-Identifier: GPL-3.0-or-later
"""The asyncio DualStore client (httpx)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from dualstore_client import _core
from dualstore_client.encoding import Filter, path_segment
from dualstore_client.errors import TransportError
from dualstore_client.models import Document, Page, SearchHit, StreamEvent
from dualstore_client.streaming import Backoff, StreamClosed, StreamSession, interrupt

T = TypeVar("T")


class AsyncEventStream:
    """Async iterator of typed stream events that survives disconnects.

    Same behaviour as :class:`dualstore_client.client.EventStream`; use it as
    ``async with client.stream(...) as events: async for event in events: ...`` so that
    the connection is closed when you stop early.
    """

    def __init__(
        self,
        open_response: Callable[[StreamSession], Awaitable[httpx.Response]],
        session: StreamSession,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._open = open_response
        self.session = session
        self._sleep = sleep
        self._response: httpx.Response | None = None
        self._closed = False
        self._iterator = self._run()

    @property
    def last_event_id(self) -> str:
        """Resume token of the last event yielded ('' before the first)."""
        return self.session.last_event_id

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        return await anext(self._iterator)

    async def aclose(self) -> None:
        """Stop: closes the current connection; iteration ends."""
        self._closed = True
        if self._response is not None:
            interrupt(self._response)  # ends a read in progress in another task
        with contextlib.suppress(RuntimeError):  # RuntimeError: being iterated right now
            await self._iterator.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[StreamEvent, None]:
        session = self.session
        while not self._closed:
            try:
                self._response = response = await self._open(session)
                try:
                    if self._closed:
                        return
                    if response.status_code >= 400:
                        await response.aread()
                    if session.accept(response):
                        async for chunk in response.aiter_bytes():
                            for event in session.feed(chunk):
                                yield event
                        for event in session.end():
                            yield event
                finally:
                    await response.aclose()
                    self._response = None
            except StreamClosed:
                return
            except (httpx.TransportError, httpx.StreamError) as exc:
                session.broken(exc)
            if self._closed:
                return
            try:
                delay = session.next_delay()
            except StreamClosed:
                return
            await self._sleep(delay)


class AsyncDualStoreClient:
    """Asyncio client for a DualStore HTTP server (same API as ``DualStoreClient``, awaited)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        stream_read_timeout: float = 45.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = _core.api_root(base_url)
        self.stream_read_timeout = stream_read_timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_core.default_headers(token),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncDualStoreClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, call: _core.Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, headers=call.headers, json=call.body
            )
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        return call.finish(response)

    async def collections(self) -> list[str]:
        """Names of the collections the server serves."""
        return await self._send(_core.collections_call())

    async def recent(
        self,
        collection: str,
        limit: int | None = None,
        filter: Filter | str | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of documents, newest first; pass ``page.next`` as ``cursor`` for more."""
        return await self._send(_core.recent_call(collection, limit, filter, cursor))

    async def search(
        self, collection: str, q: str, k: int | None = None, filter: Filter | str | None = None
    ) -> list[SearchHit]:
        """The ``k`` documents most similar to ``q`` (best first) matching ``filter``."""
        return await self._send(_core.search_call(collection, q, k, filter))

    async def get(self, collection: str, id: str) -> Document:
        """One document by id; raises NotFound when there is none."""
        return await self._send(_core.get_call(collection, id))

    async def insert(
        self,
        collection: str,
        text: str,
        timestamp: datetime | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Store a document and return its id (idempotent with ``idempotency_key``)."""
        return await self._send(
            _core.insert_call(collection, text, timestamp, metadata, idempotency_key)
        )

    def stream(
        self,
        collection: str,
        since: str | datetime | None = None,
        filter: Filter | str | None = None,
        *,
        last_event_id: str | None = None,
        max_reconnects: int | None = None,
        backoff: Backoff | None = None,
    ) -> AsyncEventStream:
        """Live events of a collection (see :class:`AsyncEventStream`)."""
        session = StreamSession.create(
            since, filter, last_event_id, max_reconnects=max_reconnects, backoff=backoff
        )
        path = f"/{path_segment(collection)}/stream"
        timeout = httpx.Timeout(self._http.timeout.connect, read=self.stream_read_timeout)

        async def open_response(current: StreamSession) -> httpx.Response:
            request = self._http.build_request(
                "GET", path, params=current.params(), headers=current.headers(), timeout=timeout
            )
            return await self._http.send(request, stream=True, follow_redirects=True)

        return AsyncEventStream(open_response, session)
