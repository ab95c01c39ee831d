# SPDX-License-Identifier: GPL-3.0-or-later
"""The REST resources: health, collections, insert, get by id, recent, search, metrics."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import falcon
import falcon.asgi
from dualstore_spec import facts

from ..problems import Problem
from ..store import idempotency
from ..store.documents import CollectionStore, CursorError, to_api
from .body import read_json, validate_new_doc
from .state import ApiState

log = logging.getLogger("dualstore.api")
_SPEC = facts.current()
RECENT_LIMIT = (_SPEC.recent_limit.min, _SPEC.recent_limit.max, _SPEC.recent_limit.default)
SEARCH_K = (_SPEC.search_k.min, _SPEC.search_k.max, _SPEC.search_k.default)
MAX_QUERY_LENGTH = _SPEC.search_q_max_length
"""(min, max, default) of ``limit`` and ``k``, and the longest ``q``: the spec's numbers."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
INTEGER = re.compile(r"[1-9][0-9]{0,8}")
"""The spec's integer syntax (x-dualstore-http.integers), at most 9 digits (any range here)."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dualstore-http")
    except Exception:
        return "0"


VERSION = _version()


def collection_of(state: ApiState, name: str) -> CollectionStore:
    """The store of an API collection; 404 unknown-collection otherwise."""
    if name not in state.settings.collections:
        raise Problem("unknown-collection", f"There is no collection named {name!r}.")
    return state.store[name]


def int_param(req: falcon.asgi.Request, name: str, bounds: tuple[int, int, int]) -> int:
    """An integer query parameter within [low, high]; the default only when absent.

    The spec's integer syntax is ``^[1-9][0-9]*$``: ``05``, ``+5``, ``5.0`` and an empty
    value (``limit=``) are malformed (400), never the default.
    """
    low, high, default = bounds
    raw = req.get_param(name)
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        shown = "empty" if raw == "" else repr(raw[:40])
        raise Problem(
            "invalid-request",
            f"{name} must be an integer {low}..{high} written in decimal digits, got {shown}.",
        )
    return int(raw)


def filter_query(req: falcon.asgi.Request) -> dict[str, Any] | None:
    """The MongoDB query of the ``filter`` parameter (None when absent or empty)."""
    encoded = req.get_param("filter")
    if not encoded:
        return None
    try:
        from ..store import filters
    except ImportError:
        raise Problem("invalid-filter", "This server cannot evaluate filters.") from None
    try:
        query: dict[str, Any] = filters.parse(encoded)
    except filters.FilterError as error:
        raise Problem("invalid-filter", str(error)) from None
    return query


class HealthResource:
    """GET /v1/health: database reachability, heartbeat interval, collections."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        up = await self.state.ping()
        resp.media = {
            "ok": up,
            "database": "up" if up else "down",
            "collections": list(self.state.settings.collections),
            "heartbeat_seconds": self.state.settings.sse_heartbeat_seconds,
            "version": VERSION,
        }
        resp.set_header("Cache-Control", "no-store")
        if not up:
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", "1")


class CollectionsResource:
    """GET /v1/collections."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"collections": list(self.state.settings.collections)}


class CollectionResource:
    """POST /v1/{collection}: store a document."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, collection: str
    ) -> None:
        store = collection_of(self.state, collection)
        key = req.get_header(IDEMPOTENCY_HEADER) or None
        if key is not None and not idempotency.KEY_PATTERN.match(key):
            raise Problem(
                "invalid-request",
                f"{IDEMPOTENCY_HEADER} must match {idempotency.KEY_PATTERN.pattern}.",
            )
        body = validate_new_doc(await read_json(req, self.state.settings.max_body_bytes))
        try:
            result = await store.insert(body, key)
        except idempotency.KeyReuse:
            raise Problem(
                "idempotency-key-reuse",
                f"{IDEMPOTENCY_HEADER} {key!r} was already used with a different body.",
            ) from None
        if result.created:
            self.state.metrics.documents_inserted.labels(collection).inc()
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/{collection}/{result.id}"
        resp.media = {"id": result.id}


class DocumentResource:
    """GET /v1/{collection}/{id}."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, collection: str, id: str
    ) -> None:
        store = collection_of(self.state, collection)
        found = await store.get(id)
        if found is None:
            raise Problem("not-found", f"No document {id!r} in {collection}.")
        resp.media = to_api(found)


class RecentResource:
    """GET /v1/{collection}/recent: newest first, keyset cursor."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, collection: str
    ) -> None:
        store = collection_of(self.state, collection)
        limit = int_param(req, "limit", RECENT_LIMIT)
        query = filter_query(req)
        cursor = req.get_param("cursor") or None
        try:
            page, next_cursor = await store.recent(limit, query, cursor)
        except CursorError as error:
            raise Problem("invalid-cursor", str(error)) from None
        body: dict[str, Any] = {"items": [to_api(document) for document in page]}
        if next_cursor is not None:
            body["next"] = next_cursor
        resp.media = body


class SearchResource:
    """GET /v1/{collection}/search: vector search, best first, optional filter."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, collection: str
    ) -> None:
        store = collection_of(self.state, collection)
        q = req.get_param("q")
        if not q:
            raise Problem("invalid-request", "q is required and must not be empty.")
        if len(q) > MAX_QUERY_LENGTH:
            raise Problem("invalid-request", f"q is longer than {MAX_QUERY_LENGTH} characters.")
        k = int_param(req, "k", SEARCH_K)
        query = filter_query(req)
        index = self.state.indexes.get(collection)
        if index is None:
            raise Problem("unavailable", "Vector search is not available on this server.")
        allowed = await store.seqs_matching(query) if query is not None else None
        if allowed is not None and not allowed:
            resp.media = {"items": []}
            return
        hits = await index.search(q, k, allowed)
        documents = await store.by_seqs([seq for seq, _ in hits])
        items = []
        for seq, score in hits:
            document = documents.get(seq)
            if document is None:
                continue
            items.append({**to_api(document), "score": float(score)})
        self.state.metrics.index_size.labels(collection).set(len(index))
        resp.media = {"items": items}


class MetricsResource:
    """GET /metrics: Prometheus text exposition."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        for name, index in self.state.indexes.items():
            self.state.metrics.index_size.labels(name).set(len(index))
        resp.data = await asyncio.to_thread(self.state.metrics.render)
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"


__all__ = [
    "CollectionResource",
    "CollectionsResource",
    "DocumentResource",
    "HealthResource",
    "MetricsResource",
    "RecentResource",
    "SearchResource",
]
