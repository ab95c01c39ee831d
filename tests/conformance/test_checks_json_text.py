# SPDX-License-Identifier: GPL-3.0-or-later
"""The JSON-text checks (HTTP-019, HTTP-013) pass against the reference, fail against a 500."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dualstore_conformance import runner
from dualstore_conformance.model import CheckResult, Status, Target
from dualstore_conformance.run_model import RunConfig

CHECKS = ["http-lone-surrogate-body", "filter-lone-surrogate", "http-deep-nesting"]
HEALTH = {
    "ok": True,
    "database": "up",
    "collections": ["session_messages"],
    "heartbeat_seconds": 15,
    "version": "0",
}


def run_checks(url: str, token: str | None) -> dict[str, CheckResult]:
    config = RunConfig(target=Target(url=url, token=token), only=CHECKS, property_layer=False)
    return {result.id: result for result in runner.run(config).results}


class Crashing(BaseHTTPRequestHandler):
    """Health is fine; every other request is a 500 (what a driver error used to give)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body, kind = 500, {"type": "about:blank", "status": 500}, "problem+json"
        if self.path.startswith("/v1/health"):
            status, body, kind = 200, HEALTH, "json"
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", f"application/{kind}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def crashing_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Crashing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_reference_passes(reference_server: Any) -> None:
    token = reference_server.env["AUTH_TOKEN"].split(",")[0]
    results = run_checks(reference_server.url, token)
    assert {check: results[check].status for check in CHECKS} == dict.fromkeys(
        CHECKS, Status.PASSED
    ), {check: results[check].message for check in CHECKS}


def test_a_server_answering_500_fails_every_check(crashing_url: str) -> None:
    results = run_checks(crashing_url, None)
    assert {check: results[check].status for check in CHECKS} == dict.fromkeys(
        CHECKS, Status.FAILED
    ), {check: results[check].message for check in CHECKS}
