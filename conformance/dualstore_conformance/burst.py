# SPDX-License-Identifier: GPL-3.0-or-later
"""A fast burst of identical requests (HTTP/1.1 pipelining over a few raw connections)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11


@dataclass
class Answer:
    """One response of a burst: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Burst:
    """What a burst sent and got back."""

    sent: int = 0
    elapsed_s: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _one_connection(host: str, port: int, secure: bool, request: bytes, count: int,
                          method: str, target: str, host_header: str,
                          headers: list[tuple[str, str]], out: Burst) -> None:
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        writer.write(request * count)  # every request at once: the server answers in order
        await writer.drain()
        parser = h11.Connection(h11.CLIENT)
        for _ in range(count):
            # h11 must see each request to expect its response; the bytes are already sent
            parser.send(h11.Request(method=method, target=target,
                                    headers=[("host", host_header), *headers]))
            parser.send(h11.EndOfMessage())
            status = 0
            answer_headers: dict[str, str] = {}
            body = bytearray()
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    parser.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    answer_headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                      for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body.extend(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    out.answers.append(Answer(status, answer_headers, bytes(body)))
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            if parser.our_state is h11.MUST_CLOSE or parser.their_state is h11.MUST_CLOSE:
                return
            parser.start_next_cycle()
    finally:
        writer.close()


async def send(url: str, path: str, headers: Mapping[str, str], total: int,
               connections: int = 8, timeout: float = 30.0) -> Burst:
    """GET ``path`` ``total`` times as fast as the target takes them; ``sent`` counts what
    was written, ``answers`` what came back (a server may close early)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    host_header = parts.netloc
    target = (parts.path.rstrip("/") + path) or "/"
    extra = [(k, v) for k, v in headers.items() if k.lower() != "host"]
    lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}",
             *(f"{k}: {v}" for k, v in extra), "", ""]
    request = "\r\n".join(lines).encode("latin-1")
    out = Burst()
    shares = [total // connections + (1 if i < total % connections else 0)
              for i in range(connections)]
    started = time.monotonic()
    tasks = [_one_connection(host, port, secure, request, share, "GET", target, host_header,
                             extra, out) for share in shares if share]
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)
    out.elapsed_s = time.monotonic() - started
    out.sent = total
    out.errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return out
