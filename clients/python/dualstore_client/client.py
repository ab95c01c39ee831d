# SPDX-License-Identifier: GPL-3.0-or-later
"""The synchronous DualStore client (httpx)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Mapping
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


class EventStream:
    """Iterator of typed stream events that survives disconnects.

    It reconnects with ``Last-Event-ID`` after any break (transport error, end of body,
    429, 5xx), waiting the server's ``retry`` hint with exponential backoff and jitter,
    and never yields the same document twice. Iteration ends only on ``close()`` or a
    204; a non-retryable problem (400, 401, 404, ...) is raised. ``last_event_id`` is the
    token to persist if you want to resume in another process later.
    """

    def __init__(
        self,
        open_response: Callable[[StreamSession], httpx.Response],
        session: StreamSession,
        sleep: Callable[[float], None] = time.sleep,
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

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._iterator)

    def close(self) -> None:
        """Stop: closes the current connection; iteration ends."""
        self._closed = True
        if self._response is not None:
            interrupt(self._response)  # unblocks a read in progress in another thread
        with contextlib.suppress(ValueError):  # ValueError: being iterated right now
            self._iterator.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> Generator[StreamEvent, None, None]:
        session = self.session
        while not self._closed:
            try:
                self._response = response = self._open(session)
                try:
                    if self._closed:
                        return
                    if response.status_code >= 400:
                        response.read()
                    if session.accept(response):
                        for chunk in response.iter_bytes():
                            yield from session.feed(chunk)
                        yield from session.end()
                finally:
                    response.close()
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
            self._sleep(delay)


class DualStoreClient:
    """Synchronous client for a DualStore HTTP server.

    ``base_url`` is the server root (``http://127.0.0.1:4261``; a trailing ``/v1`` is
    accepted). ``token`` is sent as ``Authorization: Bearer``. Every error status raises a
    :class:`~dualstore_client.errors.ProblemError` subclass carrying the problem+json
    body; network failures raise :class:`~dualstore_client.errors.TransportError`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        stream_read_timeout: float = 45.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _core.api_root(base_url)
        self.stream_read_timeout = stream_read_timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_core.default_headers(token),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> DualStoreClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, call: _core.Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, headers=call.headers, json=call.body
            )
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        return call.finish(response)

    def collections(self) -> list[str]:
        """Names of the collections the server serves."""
        return self._send(_core.collections_call())

    def recent(
        self,
        collection: str,
        limit: int | None = None,
        filter: Filter | str | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of documents, newest first; pass ``page.next`` as ``cursor`` for more."""
        return self._send(_core.recent_call(collection, limit, filter, cursor))

    def search(
        self, collection: str, q: str, k: int | None = None, filter: Filter | str | None = None
    ) -> list[SearchHit]:
        """The ``k`` documents most similar to ``q`` (best first) matching ``filter``."""
        return self._send(_core.search_call(collection, q, k, filter))

    def get(self, collection: str, id: str) -> Document:
        """One document by id; raises NotFound when there is none."""
        return self._send(_core.get_call(collection, id))

    def insert(
        self,
        collection: str,
        text: str,
        timestamp: datetime | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Store a document and return its id. With ``idempotency_key`` a retry of the
        same body returns the same id and creates nothing new."""
        return self._send(_core.insert_call(collection, text, timestamp, metadata, idempotency_key))

    def stream(
        self,
        collection: str,
        since: str | datetime | None = None,
        filter: Filter | str | None = None,
        *,
        last_event_id: str | None = None,
        max_reconnects: int | None = None,
        backoff: Backoff | None = None,
    ) -> EventStream:
        """Live events of a collection (see :class:`EventStream`).

        ``since`` is a resume token or a time (events whose document timestamp is at or
        after it are replayed first); ``last_event_id`` resumes after a token saved from
        an earlier stream and wins over ``since``; with neither, only live events come.
        """
        session = StreamSession.create(
            since, filter, last_event_id, max_reconnects=max_reconnects, backoff=backoff
        )
        path = f"/{path_segment(collection)}/stream"
        timeout = httpx.Timeout(self._http.timeout.connect, read=self.stream_read_timeout)

        def open_response(current: StreamSession) -> httpx.Response:
            request = self._http.build_request(
                "GET", path, params=current.params(), headers=current.headers(), timeout=timeout
            )
            return self._http.send(request, stream=True, follow_redirects=True)

        return EventStream(open_response, session)
