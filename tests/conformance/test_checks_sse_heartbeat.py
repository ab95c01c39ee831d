# SPDX-License-Identifier: GPL-3.0-or-later
"""Heartbeat judging: format rules, the id-repeat allowance, the cadence tolerance."""

from __future__ import annotations

from dualstore_conformance.checks.sse_heartbeat import heartbeat_errors, tolerance
from dualstore_conformance.sse import Event


def beat(data: str, last_id: str = "", id_set: bool = False) -> Event:
    return Event(type="heartbeat", data=data, last_event_id=last_id, id_set=id_set)


def test_a_conforming_heartbeat_has_no_errors() -> None:
    assert heartbeat_errors(beat('{"t":"2026-11-25T10:00:00.000Z"}')) == []


def test_an_id_repeating_the_last_event_id_is_accepted_a_new_one_is_not() -> None:
    data = '{"t":"2026-11-25T10:00:00.000Z"}'
    assert heartbeat_errors(beat(data, "41", id_set=True), previous_id="41") == []
    errors = heartbeat_errors(beat(data, "42", id_set=True), previous_id="41")
    assert errors and "changes the last event id" in errors[0]


def test_bad_data_is_reported() -> None:
    assert "not JSON" in heartbeat_errors(beat("ping"))[0]
    assert "not an object with 't'" in heartbeat_errors(beat("[1]"))[0]
    assert "not a Timestamp" in heartbeat_errors(beat('{"t":"2026-11-25 10:00:00"}'))[0]
    assert "several lines" in " ".join(heartbeat_errors(beat('{"t":\n1}')))


def test_tolerance_is_max_of_half_a_second_and_a_fifth() -> None:
    assert tolerance(1.0) == 0.5
    assert tolerance(15.0) == 3.0
