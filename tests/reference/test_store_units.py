# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure parts of the store and security: Doc shaping, cursors, token buckets, client IPs."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any, cast

import falcon.asgi
import pytest
from bson import ObjectId
from dualstore_reference.security.auth import matches_any
from dualstore_reference.security.client_ip import client_ip, parse_networks
from dualstore_reference.security.ratelimit import TokenBuckets
from dualstore_reference.store import cursors, idempotency
from dualstore_reference.store.documents import CursorError, cursor_position, to_api


def test_to_api_hides_internal_fields_and_shapes_legacy_documents() -> None:
    oid = ObjectId.from_datetime(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    doc = to_api({"_id": oid, "text": 7, "metadata": "x", "_seq": 4, "_idem": {}, "extra": 1})
    assert doc == {
        "id": str(oid),
        "text": "7",
        "timestamp": "2025-01-02T03:04:05.000Z",
        "metadata": {},
    }
    nested = to_api(
        {"_id": "a", "text": "t", "timestamp": 0, "metadata": {"when": dt.datetime(2025, 1, 1)}}
    )
    assert nested["metadata"] == {"when": "2025-01-01T00:00:00.000Z"}
    assert nested["timestamp"] == "1970-01-01T00:00:00.000Z"
    odd = to_api({"_id": "b", "text": "t", "metadata": {"n": float("nan"), "l": [float("inf"), 1]}})
    assert odd["metadata"] == {"n": None, "l": [None, 1]}


def test_cursor_round_trip_and_rejection() -> None:
    document = {"timestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "_seq": 42}
    key, bound = b"k" * 32, cursors.scope("c", {"metadata.a": 1})
    cursor = cursors.encode(key, bound, *cursor_position(document))
    assert cursors.decode(key, bound, cursor) == (1767225600000, 42)
    assert len(cursor) <= 512
    for bad in ("", "a b", "e30", "eyJ0IjoxLCJzIjoiMiJ9", "x" * 300, "x" * 513):
        with pytest.raises(CursorError):
            cursors.decode(key, bound, bad)


def test_cursor_is_tamper_evident_and_bound_to_its_query() -> None:
    key, bound = b"k" * 32, cursors.scope("c", {"metadata.a": 1})
    cursor = cursors.encode(key, bound, 1767225600000, 42)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index in range(len(cursor)):  # every single-character edit, the last one included
        for other in alphabet.replace(cursor[index], "")[:8]:
            with pytest.raises(CursorError):
                cursors.decode(key, bound, cursor[:index] + other + cursor[index + 1:])
    for wrong_key, wrong_bound in ((b"j" * 32, bound), (key, cursors.scope("c", None)),
                                   (key, cursors.scope("d", {"metadata.a": 1}))):
        with pytest.raises(CursorError):
            cursors.decode(wrong_key, wrong_bound, cursor)
    # A position past int64 cannot be forged (the tag), and is refused even if signed.
    with pytest.raises(CursorError):
        cursors.decode(key, bound, cursors.encode(key, bound, 0, 2**64))


def test_idempotency_digest_ignores_key_order_but_not_values() -> None:
    assert idempotency.digest({"a": 1, "b": [1, 2]}) == idempotency.digest({"b": [1, 2], "a": 1})
    assert idempotency.digest({"a": 1}) != idempotency.digest({"a": 2})


def test_idempotency_digest_compares_numbers_by_value() -> None:
    one = idempotency.digest(json.loads('{"n": 1, "z": 0, "l": [2]}'))
    for spelling in ('{"n": 1.0, "z": -0.0, "l": [2.0]}', '{"l": [20e-1], "z": 0e5, "n": 1e0}'):
        assert idempotency.digest(json.loads(spelling)) == one, spelling
    assert idempotency.digest({"n": 1.5}) != idempotency.digest({"n": 1})
    assert idempotency.digest({"n": True}) != idempotency.digest({"n": 1})


def test_token_bucket_refills_at_the_rate() -> None:
    buckets = TokenBuckets(rate=2, burst=3)
    assert [buckets.take("k", now=0)[0] for _ in range(4)] == [True, True, True, False]
    allowed, _, wait = buckets.take("k", now=0)
    assert not allowed and wait == pytest.approx(0.5)
    assert buckets.take("k", now=0.5)[0]
    assert not buckets.take("k", now=0.5)[0]
    assert buckets.take("other", now=0.5)[0]


def test_matches_any_compares_every_token() -> None:
    assert matches_any("b", ("a", "b"))
    assert not matches_any("c", ("a", "b"))
    assert not matches_any("", ("a",))


def _request(peer: str, forwarded: str | None) -> falcon.asgi.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    fake: Any = SimpleNamespace(remote_addr=peer, get_header=lambda name: headers.get(name))
    return cast(falcon.asgi.Request, fake)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("127.0.0.1", "203.0.113.9", (), "127.0.0.1"),
        ("127.0.0.1", "203.0.113.9", ("127.0.0.1",), "203.0.113.9"),
        ("127.0.0.1", "198.51.100.1, 203.0.113.9", ("127.0.0.1",), "203.0.113.9"),
        ("127.0.0.1", "198.51.100.1, 10.0.0.5", ("127.0.0.1", "10.0.0.0/8"), "198.51.100.1"),
        ("192.0.2.1", "203.0.113.9", ("127.0.0.1",), "192.0.2.1"),
        ("127.0.0.1", "not-an-ip", ("127.0.0.1",), "127.0.0.1"),
        ("127.0.0.1", None, ("127.0.0.1",), "127.0.0.1"),
    ],
)
def test_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: str | None, trusted: tuple[str, ...], expected: str
) -> None:
    assert client_ip(_request(peer, forwarded), parse_networks(trusted)) == expected
