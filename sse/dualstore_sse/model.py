# SPDX-License-Identifier: GPL-3.0-or-later
"""What an event stream yields: dispatched events and comment lines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One dispatched event, as an EventSource would deliver it."""

    type: str
    """Event type; "message" when the stream gave none."""
    data: str
    """Data buffer with the one trailing LF removed."""
    last_event_id: str
    """The last event ID string after this event (ids persist across events)."""
    id_set: bool = False
    """True when this event's own block carried an ``id`` field (even an empty one)."""
    id_field: bool = False
    """True when this event's own block had an ``id`` line of any value, including one the
    WHATWG rules ignore (a value containing U+0000): what "carries no id field" judges."""


@dataclass(frozen=True)
class Comment:
    """A comment line (``:`` first), with the text after the colon."""

    text: str


Item = Event | Comment
