# SPDX-License-Identifier: GPL-3.0-or-later
"""The stream header predicates (SSE-FRAME-001..003, SSE-CAP-001), judged without a server."""

from __future__ import annotations

import pytest
from dualstore_conformance import stream_judging


@pytest.mark.parametrize("value, ok", [
    ("text/event-stream", True),
    ("Text/Event-Stream", True),
    ("text/event-stream; charset=utf-8", True),
    ('text/event-stream;charset="UTF-8"', True),
    ("text/event-stream; charset = utf-8", True),
    ("text/event-stream;", True),
    ("text/event-stream; charset=iso-8859-1", False),
    ("text/event-stream; foo=bar", False),
    ("application/json", False),
    ("", False),
    (None, False),
])
def test_event_stream_content_type(value: str | None, ok: bool) -> None:
    assert stream_judging.event_stream_type_ok(value) is ok


@pytest.mark.parametrize("value, ok", [
    ("no-cache", True),
    ("No-Cache", True),
    ("private, no-cache, no-store", True),
    ("no-store", False),
    ("max-age=0", False),
    ("", False),
    (None, False),
])
def test_cache_control_no_cache(value: str | None, ok: bool) -> None:
    assert stream_judging.no_cache_ok(value) is ok


@pytest.mark.parametrize("value, ok", [
    ("no", True), (" NO ", True), ("yes", False), ("", False), (None, False),
])
def test_x_accel_buffering_no(value: str | None, ok: bool) -> None:
    assert stream_judging.no_buffering_ok(value) is ok


@pytest.mark.parametrize("value, ok", [
    ("5", True),
    (" 0 ", True),
    ("Wed, 21 Oct 2015 07:28:00 GMT", True),
    ("1.5", False),
    ("soon", False),
    ("", False),
    (None, False),
])
def test_cap_retry_after_is_delay_seconds_or_http_date(value: str | None, ok: bool) -> None:
    errors = stream_judging.delay_or_date_errors(value)
    assert (errors == []) is ok
    if not ok:
        assert "delay-seconds or an HTTP date" in errors[0]
