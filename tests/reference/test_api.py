# SPDX-License-Identifier: GPL-3.0-or-later
"""The REST surface of the reference server (gunicorn, 2 workers, real database).

Every response is validated against the OpenAPI document (openapi-core).
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from typing import Any

import httpx
import pytest
from dualstore_reference.launcher import RunningReference

COLLECTION = "session_messages"


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:dualstore:problem:{slug}"
    assert body["status"] == status
    return body


def post(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    return client.post(f"/v1/{COLLECTION}", json=body, headers=headers)


def test_health_is_open_and_reports_the_database(anonymous: httpx.Client) -> None:
    body = anonymous.get("/v1/health").json()
    assert body["ok"] is True and body["database"] == "up"
    assert body["heartbeat_seconds"] == 1
    assert body["collections"] == ["session_messages", "agent_tasks", "opencode_events"]


def test_collections(client: httpx.Client) -> None:
    assert client.get("/v1/collections").json() == {
        "collections": ["session_messages", "agent_tasks", "opencode_events"]
    }


def test_post_then_get_normalises_the_timestamp_to_utc_ms(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    created = post(
        client,
        {"text": "hello", "timestamp": "2026-11-25T11:00:00.123456+01:00", "metadata": {"t": tag}},
    )
    assert created.status_code == 201
    doc_id = created.json()["id"]
    assert created.headers["location"] == f"/v1/{COLLECTION}/{doc_id}"
    fetched = client.get(created.headers["location"]).json()
    assert fetched == {
        "id": doc_id,
        "text": "hello",
        "timestamp": "2026-11-25T10:00:00.123Z",
        "metadata": {"t": tag},
    }


def test_post_without_timestamp_gets_server_time_and_empty_metadata(client: httpx.Client) -> None:
    doc_id = post(client, {"text": "minimal"}).json()["id"]
    fetched = client.get(f"/v1/{COLLECTION}/{doc_id}").json()
    assert fetched["metadata"] == {}
    assert fetched["timestamp"].endswith("Z") and len(fetched["timestamp"]) == 24


def test_unknown_document_and_collection_are_404(client: httpx.Client) -> None:
    problem(client.get(f"/v1/{COLLECTION}/{'f' * 32}"), 404, "not-found")
    problem(client.get("/v1/orders/recent"), 404, "unknown-collection")
    problem(client.post("/v1/orders", json={"text": "x"}), 404, "unknown-collection")


def test_unknown_routes_are_404_problems_even_without_a_token(anonymous: httpx.Client) -> None:
    for path in ("/nope", "/v2/health", "/v1/a/b/c", "/v1/ui/", "/v1/ui/ui.js", "/v1/ui/x"):
        problem(anonymous.get(path), 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/health", "GET"),
        ("DELETE", "/v1/collections", "GET"),
        ("GET", f"/v1/{COLLECTION}", "POST"),
        ("PUT", f"/v1/{COLLECTION}/{'a' * 32}", "GET"),
        ("POST", f"/v1/{COLLECTION}/recent", "GET"),
        ("PATCH", f"/v1/{COLLECTION}/search", "GET"),
        ("POST", "/metrics", "GET"),
    ],
)
def test_405_lists_exactly_the_documented_methods(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == allow


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_non_json_post_is_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(f"/v1/{COLLECTION}", content=b'{"text": "x"}', headers=headers)
    problem(response, 415, "unsupported-media-type")


def test_json_with_charset_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        f"/v1/{COLLECTION}",
        content=b'{"text": "charset"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b'{"text": NaN}', b"\xff\xfe{}", b"", b'{"text": "a"} x']
)
def test_malformed_json_is_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post(
        f"/v1/{COLLECTION}", content=raw, headers={"Content-Type": "application/json"}
    )
    problem(response, 400, "invalid-json")


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {},
        {"text": ""},
        {"text": 5},
        {"text": "x", "extra": 1},
        {"text": "x", "timestamp": "yesterday"},
        {"text": "x", "timestamp": "2026-11-25T10:00:00"},
        {"text": "x", "timestamp": "0999-01-01T00:00:00Z"},
        {"text": "x", "metadata": []},
        {"text": "x", "metadata": {"a.b": 1}},
        {"text": "x", "metadata": {"$where": 1}},
        {"text": "x", "metadata": {"n": 2**60}},
        {"text": "x", "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}},
    ],
)
def test_schema_violations_are_422_naming_the_field(client: httpx.Client, body: Any) -> None:
    found = problem(post(client, body), 422, "validation-failed")
    assert found["detail"]
    assert all({"pointer", "message"} <= set(error) for error in found["errors"])


def test_metadata_eight_levels_deep_is_accepted(client: httpx.Client) -> None:
    deep: dict[str, Any] = {"h": 1}
    for key in "gfedcba":
        deep = {key: deep}
    doc_id = post(client, {"text": "deep", "metadata": deep}).json()["id"]
    assert client.get(f"/v1/{COLLECTION}/{doc_id}").json()["metadata"] == deep


def test_body_over_64_kib_is_413(client: httpx.Client) -> None:
    body = json.dumps({"text": "a" * 70_000}).encode()
    response = client.post(
        f"/v1/{COLLECTION}", content=body, headers={"Content-Type": "application/json"}
    )
    problem(response, 413, "payload-too-large")


def test_body_of_exactly_64_kib_is_accepted(client: httpx.Client) -> None:
    overhead = len(json.dumps({"text": ""}).encode())
    body = json.dumps({"text": "a" * (65536 - overhead)}).encode()
    assert len(body) == 65536
    response = client.post(
        f"/v1/{COLLECTION}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201


def test_chunked_body_is_rejected_while_still_arriving(
    reference_server: RunningReference, reference_headers: dict[str, str]
) -> None:
    """No Content-Length: 413 comes once 64 KiB have arrived, before the body ends."""
    port = int(reference_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /v1/{COLLECTION} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {reference_headers['Authorization']}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        chunk = b"a" * 4096
        for _ in range(20):  # 80 KiB, and the terminating chunk is never sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert "application/problem+json" in head


def test_huge_content_length_is_rejected_before_the_body_arrives(
    reference_server: RunningReference, reference_headers: dict[str, str]
) -> None:
    """Announce 1 GB, send 1 KiB of it: the 413 comes at once, the rest is never awaited."""
    port = int(reference_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /v1/{COLLECTION} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {reference_headers['Authorization']}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
            ).encode()
            + b'{"text": "' + b"a" * 1024
        )
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head
    assert "application/problem+json" in head


def test_idempotency_same_key_same_body_returns_the_same_id(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    tag = uuid.uuid4().hex
    body = {"text": "idempotent", "metadata": {"tag": tag}}
    first = post(client, body, **{"Idempotency-Key": key})
    reordered = {"metadata": {"tag": tag}, "text": "idempotent"}
    second = post(client, reordered, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.headers["location"] == second.headers["location"]
    found = problem(
        post(client, {"text": "different"}, **{"Idempotency-Key": key}), 422,
        "idempotency-key-reuse",
    )
    assert key in found["detail"]
    recent = client.get(f"/v1/{COLLECTION}/recent", params={"limit": 200}).json()["items"]
    assert sum(1 for item in recent if item["metadata"].get("tag") == tag) == 1


@pytest.mark.parametrize("spelling", [b"1.0", b"1e0", b"10E-1", b"1.000"])
def test_idempotency_same_json_value_is_the_same_body(
    client: httpx.Client, spelling: bytes
) -> None:
    # WRITE-013: before, 1 and 1.0 hashed differently and the retry got 422.
    key = str(uuid.uuid4())
    tag = uuid.uuid4().hex.encode()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    first = client.post(f"/v1/{COLLECTION}", headers=headers,
                        content=b'{"text":"same value","metadata":{"n":1,"z":0,"tag":"%s"}}' % tag)
    again = client.post(
        f"/v1/{COLLECTION}", headers=headers,
        content=b'{ "metadata" : {"tag":"%s", "z": -0.0, "n": %s},\n "text": "same \\u0076alue" }'
        % (tag, spelling),
    )
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    other = client.post(
        f"/v1/{COLLECTION}", headers=headers,
        content=b'{"text":"same value","metadata":{"n":1.5,"z":0,"tag":"%s"}}' % tag,
    )
    problem(other, 422, "idempotency-key-reuse")


def test_idempotency_concurrent_requests_create_one_document(
    reference_server: RunningReference, reference_headers: dict[str, str]
) -> None:
    import concurrent.futures

    key = str(uuid.uuid4())
    tag = uuid.uuid4().hex

    def send(_: int) -> tuple[int, str]:
        with httpx.Client(base_url=reference_server.url, headers=reference_headers) as one:
            response = one.post(
                f"/v1/{COLLECTION}",
                json={"text": "race", "metadata": {"tag": tag}},
                headers={"Idempotency-Key": key},
            )
            return response.status_code, response.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(16)))
    assert {status for status, _ in results} == {201}
    assert len({doc_id for _, doc_id in results}) == 1


def test_empty_idempotency_key_is_absent_and_bad_key_is_400(client: httpx.Client) -> None:
    first = post(client, {"text": "no key"}, **{"Idempotency-Key": ""})
    second = post(client, {"text": "no key"}, **{"Idempotency-Key": ""})
    assert first.json()["id"] != second.json()["id"]
    problem(post(client, {"text": "x"}, **{"Idempotency-Key": "a b"}), 400, "invalid-request")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("recent", {"limit": "0"}),
        ("recent", {"limit": "201"}),
        ("recent", {"limit": "ten"}),
        ("search", {"q": "x", "k": "0"}),
        ("search", {"q": "x", "k": "51"}),
        ("search", {"q": "x", "k": "1.5"}),
        ("search", {}),
        ("search", {"q": ""}),
        ("search", {"q": "x" * 1025}),
    ],
)
def test_out_of_range_parameters_are_400(
    client: httpx.Client, path: str, params: dict[str, str]
) -> None:
    problem(client.get(f"/v1/{COLLECTION}/{path}", params=params), 400, "invalid-request")


@pytest.mark.parametrize("spelled", [
    "05", "%2B5", "+5", "%205", "5%20", "5.0", "5e0", "0x5", "-0", "%EF%BC%95", "5%E2%80%8B",
])
@pytest.mark.parametrize(("path", "name"), [("recent", "limit"), ("search?q=x", "k")])
def test_integers_are_ascii_digits_only(
    client: httpx.Client, path: str, name: str, spelled: str
) -> None:
    # LIMIT-008: ^[1-9][0-9]*$ only (int() took spaces, a sign and fullwidth digits before).
    joiner = "&" if "?" in path else "?"
    response = client.get(f"/v1/{COLLECTION}/{path}{joiner}{name}={spelled}")
    problem(response, 400, "invalid-request")
    assert client.get(f"/v1/{COLLECTION}/{path}{joiner}{name}=5").status_code == 200


@pytest.mark.parametrize("cursor", ["zzz", "eyJ0IjoxfQ", "AAAA", "x" * 512])
def test_foreign_cursors_are_400(client: httpx.Client, cursor: str) -> None:
    response = client.get(f"/v1/{COLLECTION}/recent", params={"cursor": cursor})
    problem(response, 400, "invalid-cursor")


def test_empty_cursor_and_filter_mean_absent(client: httpx.Client) -> None:
    plain = client.get(f"/v1/{COLLECTION}/recent", params={"limit": 5}).json()
    empty = client.get(
        f"/v1/{COLLECTION}/recent", params={"limit": 5, "cursor": "", "filter": ""}
    ).json()
    assert [i["id"] for i in empty["items"]] == [i["id"] for i in plain["items"]]


def _filter(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _filters_available() -> bool:
    try:
        from dualstore_reference.store import filters  # noqa: F401
    except ImportError:
        return False
    return True


needs_filters = pytest.mark.skipif(not _filters_available(), reason="store.filters not written yet")


@needs_filters
@pytest.mark.parametrize(
    "encoded",
    [
        _filter({"$where": "sleep(1000)"}),
        _filter({"metadata.a": {"$regex": ".*"}}),
        _filter({"$expr": {"$gt": ["$a", 1]}}),
        _filter({"metadata.a": {"$function": {"body": "x"}}}),
        _filter({"metadata.$a": 1}),
        _filter({"_id": {"$ne": None}}),
        _filter({"metadata.a": {"$bogus": 1}}),
        _filter(["metadata.a"]),
        "!!!not-base64!!!",
        base64.urlsafe_b64encode(b"{not json").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _filter({"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"metadata.a": 1}]}]}]}]}]}),
    ],
)
@pytest.mark.parametrize("path", ["recent", "search"])
def test_malicious_filters_are_400(client: httpx.Client, encoded: str, path: str) -> None:
    params = {"filter": encoded, "q": "x"}
    found = problem(client.get(f"/v1/{COLLECTION}/{path}", params=params), 400, "invalid-filter")
    assert found["detail"]


@needs_filters
def test_filter_selects_on_nested_metadata(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    ids = [
        post(client, {"text": f"f{i}", "metadata": {"tag": tag, "n": {"i": i}}}).json()["id"]
        for i in range(4)
    ]
    encoded = _filter({"metadata.tag": tag, "metadata.n.i": {"$gte": 2}})
    page = client.get(f"/v1/{COLLECTION}/recent", params={"filter": encoded}).json()
    assert {item["id"] for item in page["items"]} == set(ids[2:])
    hits = client.get(
        f"/v1/{COLLECTION}/search", params={"q": "f3", "k": 2, "filter": encoded}
    ).json()["items"]
    assert {item["id"] for item in hits} == set(ids[2:])


def test_recent_is_newest_first_and_paginates_stably_under_inserts(client: httpx.Client) -> None:
    collection = "opencode_events"
    tag = uuid.uuid4().hex
    base = "2030-01-01T00:00:{:02d}.000Z"
    created = []
    for second in range(12):
        for copy in range(2):  # two documents per timestamp: ties must be ordered too
            response = client.post(
                f"/v1/{collection}",
                json={"text": f"p{second}-{copy}", "timestamp": base.format(second),
                      "metadata": {"tag": tag}},
            )
            created.append(response.json()["id"])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/v1/{collection}/recent", params=params).json()
        seen.extend(item for item in page["items"] if item["metadata"].get("tag") == tag)
        # inserts during pagination, newer and older than the page boundary
        client.post(
            f"/v1/{collection}",
            json={"text": "late", "timestamp": "2030-01-01T00:00:30Z", "metadata": {"tag": "x"}},
        )
        client.post(
            f"/v1/{collection}",
            json={"text": "old", "timestamp": "2000-01-01T00:00:00.000Z", "metadata": {"tag": "x"}},
        )
        cursor = page.get("next")
        if not cursor:
            break
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == 24  # every document exactly once
    assert set(ids) == set(created)
    stamps = [item["timestamp"] for item in seen]
    assert stamps == sorted(stamps, reverse=True)


def test_search_returns_best_first_with_scores(client: httpx.Client) -> None:
    word = "zq" + uuid.uuid4().hex[:8]
    target = client.post(
        "/v1/agent_tasks", json={"text": f"the {word} planner refactors the parser"}
    ).json()["id"]
    client.post("/v1/agent_tasks", json={"text": "unrelated deployment message"})
    hits = client.get("/v1/agent_tasks/search", params={"q": word, "k": 5}).json()["items"]
    assert hits[0]["id"] == target
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert len(hits) <= 5


def test_metrics_are_open_prometheus_text(anonymous: httpx.Client) -> None:
    anonymous.get("/v1/health")
    response = anonymous.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "dualstore_http_requests_total",
        "dualstore_http_request_duration_seconds_bucket",
        "dualstore_sse_open_streams",
        "dualstore_vector_index_size",
    ):
        assert name in text, name
    assert 'route="/v1/health"' in text


def test_recent_pages_across_every_time_window_in_order(client: httpx.Client) -> None:
    """Documents minutes, hours, days, months and years old come out newest first."""
    import datetime as dt

    tag = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    ages = [dt.timedelta(minutes=5), dt.timedelta(hours=3), dt.timedelta(days=5),
            dt.timedelta(days=100), dt.timedelta(days=800), dt.timedelta(days=-3)]  # fmt: skip
    ids = {}
    for age in ages:
        stamp = (now - age).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ids[client.post(
            "/v1/agent_tasks", json={"text": "w", "timestamp": stamp, "metadata": {"tag": tag}}
        ).json()["id"]] = age  # fmt: skip
    expected = sorted(ids, key=lambda doc_id: ids[doc_id])
    encoded = _filter({"metadata.tag": tag})
    seen: list[str] = []
    cursor = ""
    while True:
        page = client.get(
            "/v1/agent_tasks/recent", params={"limit": 2, "filter": encoded, "cursor": cursor}
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page.get("next", "")
        if not cursor:
            break
    assert seen == expected


def test_metrics_add_up_over_both_workers(
    reference_server: RunningReference, reference_headers: dict[str, str]
) -> None:
    """Inserts answered by either worker all show in /metrics, whichever worker serves it."""
    import re

    def inserted() -> tuple[float, str]:
        response = httpx.get(f"{reference_server.url}/metrics")
        series = r'dualstore_documents_inserted_total\{collection="agent_tasks"\} (\S+)'
        found = re.search(series, response.text)
        return (float(found.group(1)) if found else 0.0), response.headers["x-dualstore-worker"]

    before, _ = inserted()
    # A fresh connection each time; the kernel decides which worker accepts it, and may give
    # one worker a long run, so post until both have answered (bounded).
    posted, writers = 0, set()
    while len(writers) < 2 and posted < 200:
        response = httpx.post(
            f"{reference_server.url}/v1/agent_tasks", json={"text": f"m{posted}"},
            headers=reference_headers,
        )  # fmt: skip
        assert response.status_code == 201
        writers.add(response.headers["x-dualstore-worker"])
        posted += 1
    assert len(writers) == 2, f"{posted} POSTs all answered by one worker"
    readers: set[str] = set()
    for _ in range(200):  # whichever worker answers /metrics reports the sum
        total, reader = inserted()
        assert total - before == posted, f"worker {reader} reported {total - before} of {posted}"
        readers.add(reader)
        if len(readers) == 2:
            break
    assert len(readers) == 2, "every /metrics request was answered by one worker"
