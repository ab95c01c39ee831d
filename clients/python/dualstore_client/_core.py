# SPDX-License-Identifier: GPL-3.0-or-later
"""Request building and response decoding shared by the sync and async clients."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from dualstore_client.encoding import Filter, encode_filter, format_timestamp, path_segment
from dualstore_client.errors import ProtocolError, problem_from_response
from dualstore_client.models import Document, Page, SearchHit

T = TypeVar("T")

USER_AGENT = "dualstore-client/0.1"


def api_root(base_url: str) -> str:
    """Normalise a server URL to its ``/v1`` root (``http://h:4261`` and ``.../v1/`` both work)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def default_headers(token: str | None) -> dict[str, str]:
    """Headers every request carries: user agent and, with a token, bearer auth."""
    headers = {"User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@dataclass(frozen=True)
class Call(Generic[T]):
    """One REST call: what to send and how to decode a successful answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def finish(self, response: httpx.Response) -> T:
        """Raise the typed problem for an error status, else decode the body."""
        if response.status_code >= 400:
            raise problem_from_response(response)
        return self.decode(response)


def _json(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise ProtocolError(f"expected a JSON answer, got {content_type!r}")
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise ProtocolError(f"the answer is not valid JSON: {exc}") from exc


def _object(response: httpx.Response) -> dict[str, Any]:
    body = _json(response)
    if not isinstance(body, dict):
        raise ProtocolError(f"expected a JSON object, got {type(body).__name__}")
    return body


def _items(body: Mapping[str, Any]) -> list[Any]:
    items = body.get("items")
    if not isinstance(items, list):
        raise ProtocolError("the answer has no 'items' array")
    return items


def _decode_collections(response: httpx.Response) -> list[str]:
    body = _json(response)
    entries = body.get("collections", body.get("items")) if isinstance(body, dict) else body
    if not isinstance(entries, list):
        raise ProtocolError("the collections answer has no list of collections")
    names: list[str] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise ProtocolError(f"unexpected collection entry {entry!r}")
        names.append(name)
    return names


def _decode_page(response: httpx.Response) -> Page:
    body = _object(response)
    cursor = body.get("next")
    if cursor is not None and not isinstance(cursor, str):
        raise ProtocolError("'next' must be a string cursor")
    return Page(items=[Document.from_json(item) for item in _items(body)], next=cursor or None)


def _decode_hits(response: httpx.Response) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for item in _items(_object(response)):
        score = item.get("score") if isinstance(item, dict) else None
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise ProtocolError("every search result needs a numeric 'score'")
        hits.append(SearchHit(document=Document.from_json(item), score=float(score)))
    return hits


def _decode_inserted(response: httpx.Response) -> str:
    doc_id = _object(response).get("id")
    if not isinstance(doc_id, str):
        raise ProtocolError("the insert answer has no string 'id'")
    return doc_id


def _filter_params(params: dict[str, str], filter: Filter | str | None) -> dict[str, str]:
    if filter is not None:
        params["filter"] = encode_filter(filter)
    return params


def collections_call() -> Call[list[str]]:
    """``GET /collections``."""
    return Call("GET", "/collections", _decode_collections)


def recent_call(
    collection: str, limit: int | None, filter: Filter | str | None, cursor: str | None
) -> Call[Page]:
    """``GET /{collection}/recent``."""
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if cursor is not None:
        params["cursor"] = cursor
    return Call(
        "GET", f"/{path_segment(collection)}/recent", _decode_page, _filter_params(params, filter)
    )


def search_call(
    collection: str, q: str, k: int | None, filter: Filter | str | None
) -> Call[list[SearchHit]]:
    """``GET /{collection}/search``."""
    params = {"q": q}
    if k is not None:
        params["k"] = str(k)
    return Call(
        "GET", f"/{path_segment(collection)}/search", _decode_hits, _filter_params(params, filter)
    )


def get_call(collection: str, doc_id: str) -> Call[Document]:
    """``GET /{collection}/{id}``."""
    return Call(
        "GET",
        f"/{path_segment(collection)}/{path_segment(doc_id)}",
        lambda response: Document.from_json(_object(response)),
    )


def insert_call(
    collection: str,
    text: str,
    timestamp: datetime | str | None,
    metadata: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call[str]:
    """``POST /{collection}``; decodes to the new document's id."""
    body: dict[str, Any] = {"text": text}
    if timestamp is not None:
        body["timestamp"] = format_timestamp(timestamp)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return Call(
        "POST", f"/{path_segment(collection)}", _decode_inserted, headers=headers, body=body
    )
