# SPDX-License-Identifier: GPL-3.0-or-later
"""The scripted server: exact bytes and chunk boundaries, statuses, drops, holds, records."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from dualstore_conformance.client_suite.scenarios import from_dict
from dualstore_conformance.client_suite.server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def _scenario(connections: list[dict[str, object]], **extra: object) -> object:
    raw = {"id": "probe", "title": "probe", "level": "MUST", "cite": ["SSE-FRAME-008"],
           "profiles": ["eventsource"], "connections": connections, "expect": {}, **extra}
    return from_dict(raw, "framing")


def _request(server: ScriptedServer, path: str, headers: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    # latin-1: the test's header text stands for raw bytes (UTF-8 already spelled out)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode("latin-1"))
    return sock


def _read_all(sock: socket.socket) -> list[tuple[float, bytes]]:
    pieces: list[tuple[float, bytes]] = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        pieces.append((time.monotonic(), data))
    return pieces


def test_chunks_arrive_apart_with_exact_bytes(server: ScriptedServer) -> None:
    scenario = _scenario([{"body": [{"text": "data: a\r"}, {"hex": "0a0a"},
                                    {"delay_ms": 300}, {"text": "data: b\n\n"}],
                           "end": "close"}])
    play = server.begin(scenario)  # type: ignore[arg-type]  # reason: from_dict returns Any
    path = server.stream_url(play, "things").split(str(server.port), 1)[1]
    sock = _request(server, path + "?since=x", "Last-Event-ID: caf\xc3\xa9\r\n")
    pieces = _read_all(sock)
    raw = b"".join(data for _, data in pieces)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/event-stream" in head
    assert body == b"data: a\r\n\ndata: b\n\n"
    times = [at for at, data in pieces if b"data: b" in data]
    first = pieces[0][0]
    assert times and times[0] - first >= 0.25  # the 300 ms pause is kept
    record = play.requests[0]
    assert record.header("Last-Event-ID") == "café"
    assert record.query == {"since": ["x"]}
    assert record.ended_by == "server" and record.status == 200
    deadline = time.monotonic() + 2
    while not play.script_played() and time.monotonic() < deadline:
        time.sleep(0.01)  # the server thread counts the connection after its last write
    assert play.script_played()


def test_status_redirect_drop_and_after_script(server: ScriptedServer) -> None:
    scenario = _scenario([{"status": 307, "headers": {"Location": "moved"}},
                          {"end": "drop"}])
    play = server.begin(scenario)  # type: ignore[arg-type]  # reason: from_dict returns Any
    path = server.stream_url(play, "things").split(str(server.port), 1)[1]
    first = b"".join(d for _, d in _read_all(_request(server, path)))
    assert first.startswith(b"HTTP/1.1 307 Temporary Redirect")
    assert b"Location: moved" in first and b"Content-Length: 0" in first
    assert b"".join(d for _, d in _read_all(_request(server, path))) == b""
    third = b"".join(d for _, d in _read_all(_request(server, path)))
    assert third.startswith(b"HTTP/1.1 204")
    assert [r.status for r in play.requests] == [307, None, 204]


def test_hold_lasts_until_the_play_ends_and_strays_are_not_recorded(
        server: ScriptedServer) -> None:
    scenario = _scenario([{"body": [{"text": ": hi\n\n"}], "end": "hold"}])
    play = server.begin(scenario)  # type: ignore[arg-type]  # reason: from_dict returns Any
    path = server.stream_url(play, "things").split(str(server.port), 1)[1]
    sock = _request(server, path)
    sock.settimeout(2)
    received = b""
    while b": hi" not in received:
        received += sock.recv(4096)
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(4096)  # still open
    stray = b"".join(d for _, d in _read_all(_request(server, "/s/other-1/v1/x/stream")))
    assert stray.startswith(b"HTTP/1.1 404")
    server.end_play()
    sock.settimeout(5)
    assert sock.recv(4096) == b""
    time.sleep(0.1)
    assert len(play.requests) == 1 and play.requests[0].ended_by == "scenario-end"
