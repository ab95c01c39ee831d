# SPDX-License-Identifier: GPL-3.0-or-later
"""The spec 1.1 resolution mutants' pure helpers: what they change and what they leave."""

from __future__ import annotations

from dualstore_mutants.resolutions import (
    RECURSION_LIMIT,
    nesting_depth,
    rounded_instant,
)


def test_rounding_differs_from_truncation_only_past_the_half_millisecond() -> None:
    assert rounded_instant("2026-05-01T10:00:00.123456Z") == "2026-05-01T10:00:00.123Z"
    assert rounded_instant("2026-05-01T10:00:00.123999999Z") == "2026-05-01T10:00:00.124Z"
    assert rounded_instant("2026-05-01T12:00:00.1237+02:00") == "2026-05-01T12:00:00.124+02:00"
    assert rounded_instant("2026-05-01T10:00:00.123Z") == "2026-05-01T10:00:00.123Z"
    assert rounded_instant("2026-05-01T10:00:00.9999Z") == "2026-05-01T10:00:00.9999Z"


def test_nesting_depth_ignores_brackets_in_strings() -> None:
    assert nesting_depth(b'{"a":[[1]]}') == 3
    assert nesting_depth(b'{"a":"[[[[\\"[[["}') == 1
    deep = b"[" * (RECURSION_LIMIT + 1) + b"]" * (RECURSION_LIMIT + 1)
    assert nesting_depth(deep) > RECURSION_LIMIT
