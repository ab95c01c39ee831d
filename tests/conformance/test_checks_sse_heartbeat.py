# SPDX-License-Identifier: GPL-3.0-or-later
"""Heartbeat judging: format rules (no id field at all), the cadence tolerance from the spec."""

from __future__ import annotations

from dualstore_conformance.checks.sse_heartbeat import heartbeat_errors, tolerance
from dualstore_spec import facts
from dualstore_sse import Event, parse


def beat(data: str, last_id: str = "", id_set: bool = False) -> Event:
    return Event(type="heartbeat", data=data, last_event_id=last_id, id_set=id_set,
                 id_field=id_set)


def test_a_conforming_heartbeat_has_no_errors() -> None:
    assert heartbeat_errors(beat('{"t":"2026-11-25T10:00:00.000Z"}')) == []


def test_any_id_field_is_an_error_even_one_repeating_the_last_event_id() -> None:
    data = '{"t":"2026-11-25T10:00:00.000Z"}'
    for last_id in ("41", ""):
        errors = heartbeat_errors(beat(data, last_id, id_set=True))
        assert errors and "carries an id field" in errors[0]


def test_the_parser_tells_a_heartbeat_with_an_id_line_from_one_without() -> None:
    events = parse(b"event: insert\nid: 41\ndata: {}\n\n"
                   b"event: heartbeat\nid: 41\ndata: {\"t\":\"2026-11-25T10:00:00.000Z\"}\n\n"
                   b"event: heartbeat\ndata: {\"t\":\"2026-11-25T10:00:01.000Z\"}\n\n"
                   b"event: heartbeat\nid: a\x00b\ndata: {\"t\":\"2026-11-25T10:00:02.000Z\"}\n\n")
    with_id, without, ignored_id = events[1:]
    assert with_id.last_event_id == without.last_event_id == "41"  # the persisting buffer
    assert (with_id.id_field, without.id_field, ignored_id.id_field) == (True, False, True)
    assert heartbeat_errors(without) == []
    assert heartbeat_errors(with_id) and heartbeat_errors(ignored_id)


def test_bad_data_is_reported() -> None:
    assert "not JSON" in heartbeat_errors(beat("ping"))[0]
    assert "not an object with 't'" in heartbeat_errors(beat("[1]"))[0]
    assert "not a Timestamp" in heartbeat_errors(beat('{"t":"2026-11-25 10:00:00"}'))[0]
    assert "several lines" in " ".join(heartbeat_errors(beat('{"t":\n1}')))


def test_tolerance_is_the_specs_max_of_absolute_and_relative() -> None:
    spec = facts.current().heartbeat
    assert (spec.tolerance_absolute_seconds, spec.tolerance_relative) == (0.5, 0.2)
    assert tolerance(1.0) == 0.5
    assert tolerance(15.0) == 3.0
