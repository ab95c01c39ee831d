# SPDX-License-Identifier: GPL-3.0-or-later
"""A WHATWG-exact, incremental Server-Sent Events parser."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from dualstore_sse.model import Comment, Event, Item

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class SSEParser:
    """Feed bytes as they arrive; get events back in order.

    Follows the WHATWG HTML "Interpreting an event stream" rules exactly: UTF-8 with one
    leading BOM stripped, CRLF / LF / CR line endings (also when split across chunks),
    comments, one leading space of a value removed, ``retry`` only when all ASCII digits,
    ``id`` containing U+0000 ignored, empty data buffer dispatches nothing, and an
    incomplete event at end of stream is discarded.
    """

    last_event_id: str = ""
    """Persists across events, like EventSource's lastEventId."""
    retry_ms: int | None = None
    """The reconnection time last set by a valid ``retry`` field."""
    comments: int = 0
    """How many comment lines were seen."""
    blocks: int = 0
    """How many non-empty blocks a blank line completed (including ones dispatching nothing)."""
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    _buffer: str = ""
    _bom_checked: bool = False
    _pending_cr: bool = False
    _data: list[str] = field(default_factory=list)
    _has_data: bool = False
    _event_type: str = ""
    _id_set: bool = False
    _id_field: bool = False
    _block_lines: int = 0

    def feed(self, chunk: bytes) -> list[Item]:
        """Parse a chunk; return the events and comments it completed, in order."""
        text = self._decoder.decode(chunk)
        if not self._bom_checked:
            if not text:
                return []
            if text.startswith("\ufeff"):
                text = text[1:]
            self._bom_checked = True
        return list(self._lines(text))

    def close(self) -> list[Item]:
        """End of stream: flush the decoder; an incomplete event is discarded (per spec)."""
        text = self._decoder.decode(b"", final=True)
        items = list(self._lines(text)) if text else []
        self._buffer = ""
        self._reset_event()
        return items

    def _lines(self, text: str) -> Iterator[Item]:
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF pair split across chunks
        self._pending_cr = False
        if not text:
            return
        self._pending_cr = text.endswith("\r")
        *complete, self._buffer = _LINE_END.split(self._buffer + text)
        for line in complete:
            yield from self._line(line)

    def _line(self, line: str) -> Iterator[Item]:
        if line == "":
            if self._block_lines:
                self.blocks += 1
                self._block_lines = 0
            event = self._dispatch()
            if event is not None:
                yield event
            return
        self._block_lines += 1
        if line.startswith(":"):
            self.comments += 1
            yield Comment(line[1:])
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(name, value)

    def _field(self, name: str, value: str) -> None:
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            self._id_field = True
            if "\x00" not in value:
                self.last_event_id = value
                self._id_set = True
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            self.retry_ms = int(value)
        # any other field name is ignored

    def _dispatch(self) -> Event | None:
        event_type, data, has_data, id_set, id_field = (
            self._event_type, self._data, self._has_data, self._id_set, self._id_field
        )
        self._reset_event()
        if not has_data:
            return None
        return Event(
            type=event_type or "message",
            data="\n".join(data),
            last_event_id=self.last_event_id,
            id_set=id_set,
            id_field=id_field,
        )

    def _reset_event(self) -> None:
        self._data = []
        self._has_data = False
        self._event_type = ""
        self._id_set = False
        self._id_field = False


def parse(stream: bytes | Iterable[bytes]) -> list[Event]:
    """Parse a complete stream (bytes or chunks) and return its events only."""
    parser = SSEParser()
    chunks = [stream] if isinstance(stream, bytes) else stream
    items: list[Item] = []
    for chunk in chunks:
        items.extend(parser.feed(chunk))
    items.extend(parser.close())
    return [item for item in items if isinstance(item, Event)]
