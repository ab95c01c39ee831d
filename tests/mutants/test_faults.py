# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault middlewares in process: catalogue consistency and what each SSE/REST rewrite does."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import dualstore_mutants as faults
import pytest
from dualstore_conformance.registry import load_all
from dualstore_mutants.asgi import Message, Scope
from dualstore_reference.stream import sse as frames
from dualstore_sse import parse

FAMILIES = {"rest", "security", "sse"}


@dataclass
class FakeSettings:
    """The settings fields the faults read."""

    auth_tokens: tuple[str, ...] = ("secret-token",)
    max_body_bytes: int = 65536


def doc(n: int) -> dict[str, Any]:
    return {"id": f"{n:032x}", "text": f"t{n}", "timestamp": "2024-05-01T12:00:00.000Z",
            "metadata": {}}


@dataclass
class Upstream:
    """An ASGI app standing in for the reference: records the scope, answers fixed bytes."""

    status: int = 200
    content_type: bytes = b"application/json"
    chunks: list[bytes] = field(default_factory=lambda: [b"{}"])
    seen: list[Scope] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.seen.append(scope)
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", self.content_type)]})
        for i, chunk in enumerate(self.chunks):
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": i < len(self.chunks) - 1})


def call(app: Any, path: str, method: str = "GET", query: bytes = b"",
         headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": headers or [], "client": ("127.0.0.1", 5000)}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return int(start["status"]), dict(start["headers"]), body


def wrapped(name: str, upstream: Upstream) -> Any:
    return faults.wrap(upstream, [name], FakeSettings())  # type: ignore[arg-type]


def stream_of(*blocks: bytes) -> Upstream:
    return Upstream(content_type=b"text/event-stream; charset=utf-8", chunks=list(blocks))


def inserts(count: int) -> list[bytes]:
    return [frames.insert(str(n), doc(n)) for n in range(1, count + 1)]


def delivered(body: bytes) -> list[tuple[str, str]]:
    return [(e.type, e.last_event_id) for e in parse(body) if e.type == "insert"]


# -- catalogue ----------------------------------------------------------------------------
def test_every_fault_is_documented_and_every_entry_is_a_fault() -> None:
    assert set(faults.CATALOGUE) == set(faults.FAULTS)
    assert len([e for e in faults.CATALOGUE.values() if e.get("expect", "fail") == "fail"]) >= 30


@pytest.mark.parametrize("name", list(faults.CATALOGUE))
def test_catalogue_entry_names_real_checks(name: str) -> None:
    entry = faults.CATALOGUE[name]
    checks = load_all()
    assert entry["family"] in FAMILIES
    assert entry["description"].strip()
    named = [*entry.get("breaks", []), *entry.get("collateral", []), *entry.get("findings", [])]
    property_ids = {c for c in named if c.startswith("property-")}
    assert set(named) - property_ids <= set(checks), f"{name} names unknown check ids"
    if entry.get("expect", "fail") == "fail":
        assert entry["breaks"], f"{name} documents no check it breaks"
    if entry.get("collateral"):
        assert entry.get("collateral_reason"), f"{name}: collateral without a reason"


def test_families_are_all_covered() -> None:
    assert {e["family"] for e in faults.CATALOGUE.values()} == FAMILIES


def test_the_load_test_finds_the_event_dropping_fault_first() -> None:
    first = next(n for n in faults.CATALOGUE if "drop" in n.lower())
    assert faults.CATALOGUE[first].get("load_gate") == "lost"


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(faults.FaultError, match="unknown fault no-such-fault"):
        faults.wrap(Upstream(), ["no-such-fault"], FakeSettings())  # type: ignore[arg-type]
    with pytest.raises(faults.FaultError, match="no fault named"):
        faults.resolve([])


# -- SSE rewrites -------------------------------------------------------------------------
def test_drop_every_nth_loses_every_third_insert() -> None:
    app = wrapped("sse-drop-every-nth-event", stream_of(*inserts(7)))
    _, _, body = call(app, "/v1/c/stream")
    assert [i for _, i in delivered(body)] == ["1", "2", "4", "5", "7"]


def test_swap_duplicate_and_ids_rewrites() -> None:
    _, _, body = call(wrapped("sse-swap-two-events", stream_of(*inserts(4))), "/v1/c/stream")
    assert [i for _, i in delivered(body)] == ["1", "3", "2", "4"]
    _, _, body = call(wrapped("sse-duplicate-event", stream_of(*inserts(3))), "/v1/c/stream")
    assert [i for _, i in delivered(body)] == ["1", "2", "2", "3"]
    _, _, body = call(wrapped("sse-ids-out-of-order", stream_of(*inserts(3))), "/v1/c/stream")
    events = [e for e in parse(body) if e.type == "insert"]
    assert [json.loads(e.data)["text"] for e in events] == ["t1", "t2", "t3"]
    assert [e.last_event_id for e in events] == ["1", "3", "2"]


def test_multiline_data_breaks_the_json() -> None:
    _, _, body = call(wrapped("sse-multiline-data", stream_of(*inserts(1))), "/v1/c/stream")
    (event,) = parse(body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(event.data)


def test_heartbeat_faults() -> None:
    beats = [frames.heartbeat() for _ in range(6)]
    _, _, body = call(wrapped("sse-heartbeat-double-interval", stream_of(*beats)), "/v1/c/stream")
    assert len(parse(body)) == 3
    _, _, body = call(wrapped("sse-no-heartbeat", stream_of(*beats)), "/v1/c/stream")
    assert parse(body) == []


@pytest.mark.parametrize("name", ["odd-legal-framing", "odd-legal-no-retry"])
def test_odd_legal_framing_parses_to_the_same_events(name: str) -> None:
    original = [frames.retry(3000), frames.heartbeat(), *inserts(3), frames.heartbeat()]
    _, _, plain = call(Upstream(content_type=b"text/event-stream", chunks=original), "/v1/c/s")
    _, _, odd = call(wrapped(name, stream_of(*original)), "/v1/c/stream")
    assert odd.startswith("\ufeff".encode()) and b"\r\n" in odd and b"x-unknown-field" in odd
    assert b"\r\r" in odd  # CR-only block ends as well
    assert [(e.type, e.data) for e in parse(odd)] == [(e.type, e.data) for e in parse(plain)]
    assert [e.last_event_id for e in parse(odd) if e.type == "insert"] == ["1", "2", "3"]
    assert (b"retry: 3000" in odd) is (name == "odd-legal-framing")


def test_sse_header_faults() -> None:
    _, headers, _ = call(wrapped("sse-content-type-plain", stream_of()), "/v1/c/stream")
    assert headers[b"content-type"].startswith(b"text/plain")
    upstream = stream_of()
    upstream.content_type = b"text/event-stream"
    _, headers, _ = call(wrapped("sse-no-cache-missing", upstream), "/v1/c/stream")
    assert b"cache-control" not in headers


# -- request rewrites ---------------------------------------------------------------------
def resumed(name: str, header: str, since: str = "") -> Scope:
    upstream = stream_of()
    query = f"since={since}".encode() if since else b""
    call(wrapped(name, upstream), "/v1/c/stream", query=query,
         headers=[(b"last-event-id", header.encode())])
    return upstream.seen[0]


def header_of(scope: Scope, name: bytes) -> bytes | None:
    return dict(scope["headers"]).get(name)


def test_resume_faults_shift_or_drop_the_token() -> None:
    assert header_of(resumed("sse-resume-repeats-one", "41"), b"last-event-id") == b"40"
    assert header_of(resumed("sse-last-event-id-ignored", "41"), b"last-event-id") == b"0"
    since_scope = resumed("sse-since-wins", "41", since="3")
    assert header_of(since_scope, b"last-event-id") is None
    malformed = resumed("sse-malformed-token-accepted", "bad token!")
    assert header_of(malformed, b"last-event-id") is None
    assert header_of(resumed("sse-malformed-token-accepted", "41"), b"last-event-id") == b"41"


def test_resume_skips_one_loses_the_first_replayed_event() -> None:
    app = wrapped("sse-resume-skips-one", stream_of(*inserts(3)))
    _, _, body = call(app, "/v1/c/stream", headers=[(b"last-event-id", b"0")])
    assert [i for _, i in delivered(body)] == ["2", "3"]
    _, _, body = call(wrapped("sse-resume-skips-one", stream_of(*inserts(3))), "/v1/c/stream")
    assert [i for _, i in delivered(body)] == ["1", "2", "3"]


def test_cap_not_enforced_gives_each_stream_another_address() -> None:
    upstream = stream_of()
    app = wrapped("sse-cap-not-enforced", upstream)
    for _ in range(3):
        call(app, "/v1/c/stream")
    assert len({scope["client"][0] for scope in upstream.seen}) == 3


def test_token_prefix_match_only_completes_prefixes() -> None:
    upstream = Upstream()
    app = wrapped("sec-token-prefix-match", upstream)
    call(app, "/v1/c/recent", headers=[(b"authorization", b"Bearer secret")])
    call(app, "/v1/c/recent", headers=[(b"authorization", b"Bearer other")])
    assert [header_of(s, b"authorization") for s in upstream.seen] == [
        b"Bearer secret-token", b"Bearer other"]


# -- response rewrites --------------------------------------------------------------------
def test_doc_rewrites() -> None:
    body = json.dumps({"items": [doc(1)], "next": None}).encode()
    _, _, out = call(wrapped("rest-doc-missing-timestamp", Upstream(chunks=[body])), "/v1/c/recent")
    assert "timestamp" not in json.loads(out)["items"][0]
    _, _, out = call(wrapped("rest-timestamp-not-utc", Upstream(chunks=[body])), "/v1/c/recent")
    assert json.loads(out)["items"][0]["timestamp"] == "2024-05-01T14:00:00.000+02:00"
    _, _, out = call(wrapped("rest-timestamp-not-iso", Upstream(chunks=[body])), "/v1/c/recent")
    assert json.loads(out)["items"][0]["timestamp"] == "2024-05-01 12:00:00+00:00"


def test_unknown_id_200_and_no_retry_after() -> None:
    missing = Upstream(status=404, content_type=b"application/problem+json")
    status, _, out = call(wrapped("rest-unknown-id-200", missing), f"/v1/c/{'a' * 32}")
    assert status == 200 and json.loads(out)["id"] == "a" * 32
    limited = Upstream(status=429)

    async def with_retry_after(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})

    del limited
    status, headers, _ = call(
        faults.wrap(with_retry_after, ["sec-429-no-retry-after"], FakeSettings()),  # type: ignore[arg-type]
        "/v1/c/recent",
    )
    assert status == 429 and b"retry-after" not in headers


def test_body_cap_off_raises_the_configured_cap() -> None:
    settings = FakeSettings()
    faults.wrap(Upstream(), ["rest-body-cap-off"], settings)  # type: ignore[arg-type]
    assert settings.max_body_bytes == 16 * 65536




# -- issue 15 REST mutants --------------------------------------------------------------------
def test_flatten_merges_nested_logical_operators_into_the_parent() -> None:
    from dualstore_mutants.filters import flatten

    a, b, c = {"metadata.a": 1}, {"metadata.b": 1}, {"metadata.c": 1}
    assert flatten({"$or": [{"$and": [a, b]}, c]}) == {"$or": [a, b, c]}
    assert flatten({"x": 1, "$and": [{"$or": [a, b]}]}) == {"x": 1, "$and": [a, b]}
    assert flatten(a) == a


def test_coerce_widens_equality_across_json_types() -> None:
    from dualstore_mutants.filters import coerce

    assert coerce({"metadata.v": True}) == {"metadata.v": {"$in": [True, 1]}}
    assert coerce({"metadata.v": "1"}) == {"metadata.v": {"$in": ["1", 1]}}
    assert coerce({"metadata.v": "b"}) == {"metadata.v": "b"}
    assert coerce({"timestamp": "2026-01-01T00:00:00Z"}) == {"timestamp": "2026-01-01T00:00:00Z"}


def test_idempotency_race_strips_the_key_of_a_request_arriving_in_flight() -> None:
    upstream = Upstream(status=201)
    app = wrapped("rest-idempotency-race", upstream)
    headers = [(b"idempotency-key", b"k1")]

    async def both() -> None:
        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            pass

        scope = {"type": "http", "method": "POST", "path": "/v1/c", "query_string": b"",
                 "headers": headers}
        await asyncio.gather(app(dict(scope), receive, send), app(dict(scope), receive, send))

    asyncio.run(both())
    keys = [dict(s["headers"]).get(b"idempotency-key") for s in upstream.seen]
    assert sorted(keys, key=str) == sorted([None, b"k1"], key=str)


def test_cursor_mutants_replace_the_reference_decoder() -> None:
    from dualstore_mutants import cursor
    from dualstore_reference.store import cursors

    key, bound = b"k" * 32, cursors.scope("c", None)
    issued = cursors.encode(key, bound, 1000, 7)
    try:
        faults.wrap(Upstream(), ["rest-cursor-timestamp-only"], FakeSettings())  # type: ignore[arg-type]
        assert cursors.decode(key, bound, issued) == (1000, 0)
        faults.wrap(Upstream(), ["rest-cursor-unsigned"], FakeSettings())  # type: ignore[arg-type]
        other = cursors.scope("c", {"metadata.a": 1})
        assert cursors.decode(key, other, issued) == (1000, 7)  # another filter: accepted
    finally:
        cursors.decode = cursor.ORIGINAL  # type: ignore[assignment]  # reason: undo the patch
    with pytest.raises(cursors.CursorError):
        cursors.decode(key, cursors.scope("c", {"metadata.a": 1}), issued)
