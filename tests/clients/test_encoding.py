# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter, timestamp and URL encodings of the Python client."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from dualstore_client import decode_filter, encode_filter
from dualstore_client._core import api_root
from dualstore_client.encoding import format_timestamp, parse_timestamp, path_segment


def test_filter_is_base64url_of_compact_utf8_json_without_padding() -> None:
    flt = {"metadata.tag": {"$in": ["é", "a/b?"]}, "$or": [{"timestamp": {"$gte": "x"}}]}
    encoded = encode_filter(flt)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    assert raw == json.dumps(flt, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert decode_filter(encoded) == flt


def test_a_string_filter_is_passed_through_and_a_non_mapping_is_refused() -> None:
    assert encode_filter("eyJhIjoxfQ") == "eyJhIjoxfQ"
    with pytest.raises(TypeError):
        encode_filter([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode_filter({"x": float("nan")})
    with pytest.raises(ValueError):
        decode_filter("***")


def test_timestamps_are_sent_as_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_timestamp(datetime(2026, 11, 25, 11, 0, 0, 123456, paris)) == (
        "2026-11-25T10:00:00.123Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 11, 25))
    assert parse_timestamp("2026-11-25T10:00:00.000Z") == datetime(2026, 11, 25, 10, tzinfo=UTC)


def test_path_segments_are_percent_encoded_and_api_root_is_normalised() -> None:
    assert path_segment("a b/../c") == "a%20b%2F..%2Fc"
    with pytest.raises(ValueError):
        path_segment("")
    for url in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/"):
        assert api_root(url) == "http://h:1/v1"
    assert api_root("https://h/prefix") == "https://h/prefix/v1"
    with pytest.raises(ValueError):
        api_root("h:1")
