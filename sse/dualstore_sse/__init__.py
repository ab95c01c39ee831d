# SPDX-License-Identifier: GPL-3.0-or-later
"""Server-Sent Events: a WHATWG-exact parser, its event model and an encoder; no dependencies."""

from dualstore_sse.encoder import comment, event, retry
from dualstore_sse.model import Comment, Event, Item
from dualstore_sse.parser import SSEParser, parse

__all__ = ["Comment", "Event", "Item", "SSEParser", "comment", "event", "parse", "retry"]
