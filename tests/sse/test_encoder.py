# SPDX-License-Identifier: GPL-3.0-or-later
"""The encoder's bytes read back through the WHATWG parser as the same events."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dualstore_sse import Comment, Event, SSEParser, comment, event, parse, retry


def test_an_event_with_type_and_id_reads_back() -> None:
    data = event('{"a":1}', type="insert", id="0000000000000042")
    assert data == b'id: 0000000000000042\nevent: insert\ndata: {"a":1}\n\n'
    assert parse(data) == [
        Event(type="insert", data='{"a":1}', last_event_id="0000000000000042",
              id_set=True, id_field=True)
    ]


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb", "", "\n", "x\n\ny"])
def test_multiline_data_is_split_into_data_lines_and_joined_back_with_lf(text: str) -> None:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    assert [e.data for e in parse(event(text))] == [normalized]


def test_an_event_without_type_is_a_message_and_sets_no_id() -> None:
    (only,) = parse(event("x"))
    assert (only.type, only.id_set, only.id_field) == ("message", False, False)


def test_retry_sets_the_reconnection_time_and_dispatches_nothing() -> None:
    parser = SSEParser()
    assert parser.feed(retry(2500)) == []
    assert parser.retry_ms == 2500


def test_a_comment_reads_back_as_a_comment() -> None:
    assert SSEParser().feed(comment(" keep-alive")) == [Comment(" keep-alive")]


@pytest.mark.parametrize(
    "call",
    [
        lambda: event("x", type="in\nsert"),
        lambda: event("x", id="1\r2"),
        lambda: event("x", id="1\x002"),
        lambda: comment("a\nb"),
        lambda: retry(-1),
    ],
    ids=["type-with-lf", "id-with-cr", "id-with-nul", "comment-with-lf", "negative-retry"],
)
def test_what_cannot_be_framed_is_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
