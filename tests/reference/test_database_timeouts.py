# SPDX-License-Identifier: GPL-3.0-or-later
"""A frozen database (SIGSTOP) gets 503 problem+json with Retry-After, not a hanging request."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
from dualstore_reference import launcher

PROBLEM = "application/problem+json"
UNAVAILABLE = "urn:dualstore:problem:unavailable"


def _database(server: launcher.RunningReference) -> psutil.Process:
    assert server.process is not None
    for child in psutil.Process(server.process.pid).children():
        if any("secantusd" in part for part in child.cmdline()):
            return child
    raise AssertionError("no embedded database process")


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == UNAVAILABLE
    assert int(response.headers["retry-after"]) >= 1


def test_requests_answer_503_while_the_database_is_frozen(tmp_path: Path) -> None:
    # Before: with the database stopped every POST hung until it was resumed (15 s here:
    # the client below gives up after 10 s).
    env = {"DATABASE_TIMEOUT_SECONDS": "1", "AUTH_TOKEN": "t"}
    with launcher.start_reference(env=env, workers=1, data_dir=tmp_path) as server:
        headers = {"Authorization": "Bearer t"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            kept = client.post("/v1/agent_tasks", json={"text": "before"})
            assert kept.status_code == 201
            database = _database(server)
            os.kill(database.pid, signal.SIGSTOP)
            try:
                keyed = {**headers, "Idempotency-Key": "frozen-1"}
                started = time.monotonic()
                _assert_unavailable(client.post("/v1/agent_tasks", json={"text": "k"},
                                                headers=keyed))  # fmt: skip
                print(f"POST answered 503 after {time.monotonic() - started:.2f} s "
                      f"(DATABASE_TIMEOUT_SECONDS=1)")  # fmt: skip
                _assert_unavailable(client.post("/v1/agent_tasks", json={"text": "plain"}))
                _assert_unavailable(client.get(f"/v1/agent_tasks/{kept.json()['id']}"))
                _assert_unavailable(client.get("/v1/agent_tasks/recent"))
                _assert_unavailable(client.get("/v1/agent_tasks/stream"))
            finally:
                os.kill(database.pid, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while client.get("/v1/health").status_code != 200:
                assert time.monotonic() < deadline, "the server did not recover"
                time.sleep(0.2)
            # The retry with the same key creates the document once (or replays the one
            # whose write reached the database before the timeout): never two.
            retried = client.post("/v1/agent_tasks", json={"text": "k"}, headers=keyed)
            assert retried.status_code == 201
            again = client.post("/v1/agent_tasks", json={"text": "k"}, headers=keyed)
            assert again.json()["id"] == retried.json()["id"]
            items = client.get("/v1/agent_tasks/recent", params={"limit": 200}).json()["items"]
            assert sum(item["text"] == "k" for item in items) == 1
            assert client.get(f"/v1/agent_tasks/{kept.json()['id']}").status_code == 200
