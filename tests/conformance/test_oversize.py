# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-020 in the property layer: a refusal is excused only for a request really over size."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
import uvicorn
from dualstore_conformance import oversize
from dualstore_conformance import property as prop
from dualstore_conformance.model import Target
from dualstore_spec import facts as spec_facts

SEED = 20261125
MINIMUM = spec_facts.current().request_size


def test_the_minimums_come_from_the_spec() -> None:
    assert (MINIMUM.min_request_line_octets, MINIMUM.min_header_section_octets) == (8000, 8192)


def line_of(octets: int) -> str:
    """A URL whose ``GET target HTTP/1.1`` request line is exactly octets long."""
    base = "http://h:1/v1/c/recent?filter="
    pad = octets - len("GET /v1/c/recent?filter= HTTP/1.1")
    return base + "a" * pad


def test_request_line_is_measured_as_sent() -> None:
    url = line_of(MINIMUM.min_request_line_octets)
    size = oversize.measure("get", url, {})
    assert size.request_line == MINIMUM.min_request_line_octets
    assert size.header_section == len("Host: h:1\r\n")


@pytest.mark.parametrize("status", sorted(oversize.REFUSAL_STATUSES))
def test_a_refusal_is_excused_only_one_octet_past_the_request_line_minimum(status: int) -> None:
    at = line_of(MINIMUM.min_request_line_octets)
    past = line_of(MINIMUM.min_request_line_octets + 1)
    assert not oversize.excused_refusal(status, "GET", at, {})
    assert oversize.excused_refusal(status, "GET", past, {})


def test_a_refusal_is_excused_only_past_the_header_section_minimum() -> None:
    url = "http://h:1/v1/health"
    fixed = len("Host: h:1\r\n") + len("X-Pad: \r\n")
    at = [("X-Pad", "b" * (MINIMUM.min_header_section_octets - fixed))]
    past = [("X-Pad", "b" * (MINIMUM.min_header_section_octets - fixed + 1))]
    assert oversize.measure("GET", url, at).header_section == MINIMUM.min_header_section_octets
    assert not oversize.excused_refusal(431, "GET", url, at)
    assert oversize.excused_refusal(431, "GET", url, past)


@pytest.mark.parametrize("status", [200, 404, 413, 500, 503])
def test_other_answers_to_an_oversize_request_are_judged(status: int) -> None:
    assert not oversize.excused_refusal(status, "GET", line_of(20_000), {})


def test_the_minimums_follow_the_spec() -> None:
    smaller = spec_facts.RequestSize(min_request_line_octets=100, min_header_section_octets=50)
    assert oversize.excused_refusal(414, "GET", line_of(101), {}, smaller)
    assert not oversize.excused_refusal(414, "GET", line_of(100), {}, smaller)
    assert oversize.excused_refusal(431, "GET", "http://h:1/", [("X", "y" * 40)], smaller)


# -- end to end: a Schemathesis run against a target refusing long request lines ---------
class RefusingApp:
    """404 unknown-collection for everything (health aside); 414 ``about:blank`` for a
    request line longer than ``limit`` octets, as an outer request guard answers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        while (await receive()).get("more_body"):
            pass
        target = scope.get("raw_path", b"") + (
            b"?" + scope["query_string"] if scope.get("query_string") else b"")
        line = len(scope["method"]) + 1 + len(target) + len(b" HTTP/1.1")
        if line > self.limit:
            self.refused += 1
            status, slug, title = 414, "about:blank", "URI Too Long"
        else:
            status, slug, title = 404, "urn:dualstore:problem:unknown-collection", "Unknown"
        body = json.dumps({"type": slug, "title": title, "status": status}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/problem+json")]})
        await send({"type": "http.response.body", "body": body})


def refusals_judged(limit: int) -> tuple[int, list[str]]:
    """(414s the app sent, property checks that failed on a 414) for one seeded run."""
    from dualstore_reference.embedded import free_port

    app = RefusingApp(limit)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not server.started:
        time.sleep(0.05)
    try:
        results = prop.run(Target(url=f"http://127.0.0.1:{port}", collection="things"),
                           seed=SEED, max_examples=3)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    failed_on_414 = sorted(
        result.id for result in results
        if any(failure.get("status") == 414 for failure in result.evidence.get("failures", []))
    )
    return app.refused, failed_on_414


def test_property_layer_excuses_a_refusal_over_the_minimums_and_judges_one_within() -> None:
    refused, judged = refusals_judged(MINIMUM.min_request_line_octets)
    if not refused:
        # What Schemathesis generates for a seed depends on what else the process imported
        # (seen when other tests ran first): without an over-size request there is nothing
        # to excuse, and the predicate's own tests above still judge the rule.
        pytest.skip("Schemathesis sent no request over the minimum in this process")
    assert judged == []
    refused, judged = refusals_judged(MINIMUM.min_request_line_octets // 2)
    assert refused
    assert "property-status_code_conformance" in judged
    assert "property-dualstore_problem_json" in judged


class ClosingServer:
    """A raw HTTP/1.1 server: 404 unknown-collection problems, and the connection closed
    without an answer on a request line longer than ``limit`` octets."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.closed = 0
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True).start()
        self._ready.wait(10)

    async def _main(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await asyncio.sleep(600)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                for field in lines[1:]:
                    if field.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(field.split(b":")[1]))
                if len(lines[0]) > self.limit:
                    self.closed += 1
                    writer.close()
                    return
                body = json.dumps({"type": "urn:dualstore:problem:unknown-collection",
                                   "title": "Unknown collection", "status": 404}).encode()
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json"
                             b"\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()


def test_a_connection_closed_on_an_oversize_request_is_excused_not_within() -> None:
    over = ClosingServer(MINIMUM.min_request_line_octets)
    results = prop.run(Target(url=f"http://127.0.0.1:{over.port}", collection="things"),
                       seed=SEED, max_examples=3)
    if not over.closed:
        pytest.skip("Schemathesis sent no request over the minimum in this process "
                    "(its generation depends on what else the process imported)")
    assert "property-engine" not in {r.id for r in results}
    assert results[0].evidence["excused_oversize_failures"]["closed"] >= 1
    within = ClosingServer(MINIMUM.min_request_line_octets // 2)
    results = prop.run(Target(url=f"http://127.0.0.1:{within.port}", collection="things"),
                       seed=SEED, max_examples=3)
    assert within.closed
    engine = {r.id: r for r in results}["property-engine"]
    assert "Network Error" in engine.message
