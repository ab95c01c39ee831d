# SPDX-License-Identifier: GPL-3.0-or-later
"""Idle and slow connections cannot starve the server: head deadline, keep-alive, connection cap."""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from dualstore_reference.launcher import RunningReference

HALF_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: t\r\n"
"""A request head that never ends (slowloris)."""


@contextlib.contextmanager
def open_files(soft: int) -> Iterator[None]:
    """This process's soft open-file limit set to soft (at most the hard limit) for a while."""
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (before, hard))


def connect(url: str, count: int, send: bytes = b"") -> list[socket.socket]:
    parts = urlsplit(url)
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        if send:
            sock.sendall(send)
        sockets.append(sock)
    return sockets


def wait_closed(sockets: list[socket.socket], timeout: float) -> tuple[float, dict[int, bytes]]:
    """Seconds until the server closed every socket (inf if not within timeout), and what
    each socket received before the close (by index)."""
    started = time.monotonic()
    received: dict[int, bytes] = {}
    selector = selectors.DefaultSelector()
    for index, sock in enumerate(sockets):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
    open_count = len(sockets)
    while open_count and time.monotonic() - started < timeout:
        for key, _ in selector.select(timeout=0.2):
            sock = sockets[key.data]
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[key.data] = received.get(key.data, b"") + chunk
                continue
            selector.unregister(sock)
            open_count -= 1
    elapsed = time.monotonic() - started if not open_count else float("inf")
    selector.close()
    return elapsed, received


def test_serve_raises_the_open_file_limit(
    start_reference: Callable[..., RunningReference],
) -> None:
    # Before: workers kept the inherited soft limit (1,024), so ~2,200 idle sockets took
    # /v1/health down.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = 2048  # the usual default is 1,024; this process may already hold more files
    if hard != resource.RLIM_INFINITY and hard <= lowered:
        pytest.skip(f"the hard open-file limit is {hard}: nothing to raise")
    with open_files(lowered):
        server = start_reference(workers=1)
    pids = server.pids()
    assert len(pids) == 2, pids
    soft = psutil.Process(pids[-1]).rlimit(psutil.RLIMIT_NOFILE)[0]
    assert soft > lowered and (hard == resource.RLIM_INFINITY or soft == hard)


def test_a_worker_past_its_connection_cap_answers_503_problem(
    start_reference: Callable[..., RunningReference],
) -> None:
    server = start_reference(env={"MAX_CONNECTIONS_PER_WORKER": "20"}, workers=1)
    idle = connect(server.url, 25)
    try:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            refused = client.get("/v1/health")
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "urn:dualstore:problem:unavailable"
            assert refused.headers["retry-after"] == "1"
        # the silent sockets past the cap are closed after about a second, the others wait
        # for the head deadline (10 s)
        elapsed, _ = wait_closed(idle[20:], timeout=5)
        assert elapsed <= 1.0 + 1.5, f"over-cap idle sockets closed after {elapsed:.1f} s"
        still_open, _ = wait_closed(idle[:20], timeout=0.5)
        assert still_open == float("inf"), "sockets under the cap were closed early"
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while httpx.get(server.url + "/v1/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the worker did not recover below its cap"
        time.sleep(0.1)


def test_idle_keep_alive_connections_are_closed(
    start_reference: Callable[..., RunningReference],
) -> None:
    server = start_reference(env={"KEEPALIVE_SECONDS": "1"}, workers=1)
    sock = connect(server.url, 1, b"GET /v1/health HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    elapsed, received = wait_closed([sock], timeout=10)
    sock.close()
    assert received[0].startswith(b"HTTP/1.1 200"), received
    assert elapsed <= 1 + 1.5, f"closed after {elapsed:.1f} s"


def test_two_thousand_idle_sockets_do_not_starve_the_server(
    start_reference: Callable[..., RunningReference], reference_headers: dict[str, str]
) -> None:
    # Before: sockets that never sent a complete request head stayed open forever (still
    # open after 60 s), and 2,200 of them made /v1/health time out.
    head_timeout = 5.0
    server = start_reference(env={"HEAD_TIMEOUT_SECONDS": f"{head_timeout:g}"}, workers=2)
    with open_files(4096):
        opened = time.monotonic()
        silent = connect(server.url, 1000)
        slow = connect(server.url, 1000, HALF_HEAD)
        opening = time.monotonic() - opened
        try:
            with httpx.Client(base_url=server.url, headers=reference_headers) as client:
                started = time.monotonic()
                health = client.get("/v1/health", timeout=1.0)
                created = client.post("/v1/agent_tasks", json={"text": "busy"}, timeout=1.0)
                answered = time.monotonic() - started
            assert health.status_code == 200 and created.status_code == 201
            held = time.monotonic() - opened
            elapsed, received = wait_closed(silent + slow, timeout=head_timeout + 20)
        finally:
            for sock in silent + slow:
                sock.close()
    assert held < head_timeout, "the sockets were not all open while the requests ran"
    closed = held + elapsed  # since the first socket opened; the last opened `opening` later
    assert closed <= head_timeout + opening + 2.0, (
        f"idle sockets closed {closed:.1f} s after opening (bound {head_timeout:g} s, "
        f"opening took {opening:.1f} s)"
    )
    assert not any(index < 1000 for index in received), "a silent socket got an answer"
    timed_out = [received.get(1000 + index, b"") for index in range(1000)]
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in timed_out)
    body = timed_out[0].partition(b"\r\n\r\n")[2]
    assert json.loads(body)["status"] == 408
    print(f"health + POST answered in {answered * 1000:.0f} ms with 2,000 idle sockets; "
          f"all closed {closed:.1f} s after the first opened "
          f"({opening:.1f} s to open)")  # fmt: skip


def test_a_trickled_body_is_cut_with_408(
    start_reference: Callable[..., RunningReference], reference_headers: dict[str, str]
) -> None:
    # A complete head, then a body that never completes (slow POST): the body gets its own
    # deadline, so the connection and its request task cannot be held forever.
    server = start_reference(env={"HEAD_TIMEOUT_SECONDS": "2"}, workers=1)
    head = (
        b"POST /v1/agent_tasks HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Authorization: " + reference_headers["Authorization"].encode() + b"\r\n"
        b"Content-Length: 100\r\n\r\n{\"text\":"
    )  # fmt: skip
    sock = connect(server.url, 1, head)[0]
    elapsed, received = wait_closed([sock], timeout=15)
    sock.close()
    answer = received.get(0, b"")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 408
    assert elapsed <= 2 + 1.5, f"closed after {elapsed:.1f} s"
