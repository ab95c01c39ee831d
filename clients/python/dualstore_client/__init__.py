# SPDX-License-Identifier: GPL-3.0-or-later
"""Python clients (sync and asyncio) for DualStore HTTP, with a resuming SSE stream."""

from dualstore_client.async_client import AsyncDualStoreClient, AsyncEventStream
from dualstore_client.client import DualStoreClient, EventStream
from dualstore_client.encoding import decode_filter, encode_filter
from dualstore_client.errors import (
    BadRequest,
    Conflict,
    DualStoreError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ProtocolError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    UnprocessableContent,
    UnsupportedMediaType,
)
from dualstore_client.models import (
    Document,
    HeartbeatEvent,
    InsertEvent,
    Page,
    SearchHit,
    StreamEvent,
)
from dualstore_client.streaming import Backoff, StreamClosed

__all__ = [
    "AsyncDualStoreClient",
    "AsyncEventStream",
    "Backoff",
    "BadRequest",
    "Conflict",
    "Document",
    "DualStoreClient",
    "DualStoreError",
    "EventStream",
    "Forbidden",
    "HeartbeatEvent",
    "InsertEvent",
    "MethodNotAllowed",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "ProblemError",
    "ProtocolError",
    "RateLimited",
    "SearchHit",
    "ServerError",
    "ServiceUnavailable",
    "StreamClosed",
    "StreamEvent",
    "TransportError",
    "Unauthorized",
    "UnprocessableContent",
    "UnsupportedMediaType",
    "decode_filter",
    "encode_filter",
]
