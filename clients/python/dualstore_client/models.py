# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed values the clients return: documents, pages, search hits and stream events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dualstore_client.encoding import parse_timestamp
from dualstore_client.errors import ProtocolError


@dataclass(frozen=True)
class Document:
    """A stored document as the API serves it."""

    id: str
    text: str
    timestamp: datetime
    """Timezone-aware (UTC)."""
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> Document:
        """Build from the API's Doc JSON; raises ProtocolError when it has the wrong shape."""
        if not isinstance(value, Mapping):
            raise ProtocolError(f"a document is a JSON object, got {type(value).__name__}")
        try:
            doc_id, text, stamp = value["id"], value["text"], value["timestamp"]
        except KeyError as exc:
            raise ProtocolError(f"document without {exc.args[0]!r}") from exc
        metadata = value.get("metadata", {})
        if not (isinstance(doc_id, str) and isinstance(text, str) and isinstance(stamp, str)):
            raise ProtocolError("document id, text and timestamp must be strings")
        if not isinstance(metadata, dict):
            raise ProtocolError("document metadata must be an object")
        try:
            when = parse_timestamp(stamp)
        except ValueError as exc:
            raise ProtocolError(f"bad document timestamp {stamp!r}") from exc
        return cls(id=doc_id, text=text, timestamp=when, metadata=metadata)


@dataclass(frozen=True)
class Page:
    """One page of ``recent``: newest first; ``next`` is the cursor of the following page."""

    items: list[Document]
    next: str | None = None


@dataclass(frozen=True)
class SearchHit:
    """One search result: the document and its similarity score (higher is better)."""

    document: Document
    score: float


@dataclass(frozen=True)
class InsertEvent:
    """``event: insert``: a document was committed; ``id`` is its opaque resume token."""

    id: str
    doc: Document


@dataclass(frozen=True)
class HeartbeatEvent:
    """``event: heartbeat``: the stream is alive; ``t`` is the server's time (ISO 8601)."""

    t: str


StreamEvent = InsertEvent | HeartbeatEvent
