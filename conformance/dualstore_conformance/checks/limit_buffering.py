# SPDX-License-Identifier: GPL-3.0-or-later
"""LIMIT-002 (SHOULD): an oversized body is refused without reading past the cap.

The probe never sends more than the cap + 1 bytes of a body that declares far more, so
socket buffers cannot blur the answer (they once absorbed a whole 8 MiB stream):

1. the request head alone, ``Content-Length`` far over the cap, no body: a server that
   decides from ``Content-Length`` answers 413 (or closes) at once;
2. otherwise cap + 1 body bytes, then nothing: a server that stops reading at the cap
   now has more than the cap and answers 413 (or closes); a server still waiting for the
   rest of the declared body is buffering past the cap.

Any other answer (a 429, a 401, no connection) decides nothing: could not observe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

DECLARED_BODY_BYTES = 8 * 1024 * 1024
"""Content-Length the probe declares (the harness's choice: far over any cap it judges)."""
HEAD_ONLY_WAIT = 2.0
"""Seconds the probe waits for an answer to the head alone (scaled)."""
AFTER_CAP_WAIT = 10.0
"""Seconds the probe waits for an answer once the cap + 1 bytes are sent (scaled)."""
CHUNK = 16384
RATE_LIMITED_WAIT = 1.0
"""Seconds between probes while the target answers 429 (the probe reads no Retry-After)."""


@dataclass(frozen=True)
class BodyObservation:
    """What the server did: ``on-head`` / ``after-cap`` (answered ``status`` or closed at
    that stage), ``waited`` (no answer after cap + 1 bytes), or ``no-connection``."""

    stage: str
    status: int | None
    sent: int
    status_line: str = ""


async def _answer(reader: asyncio.StreamReader, timeout: float) -> tuple[bool, str]:
    """(answered or closed within timeout, the status line or '' when closed/none)."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        return False, ""
    except (ConnectionError, OSError):
        return True, ""
    return True, line.decode("latin-1").strip()


def _status(line: str) -> int | None:
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


async def observe_oversized_body(
    host: str, port: int, head: list[str], cap: int, declared: int,
    head_wait: float, cap_wait: float, secure: bool = False,
) -> BodyObservation:
    """Send head (request line and headers, Content-Length declared), then cap + 1 body
    bytes only if the head alone got no answer; report when the server answered."""
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=True if secure else None)
    except OSError:
        return BodyObservation("no-connection", None, 0)
    sent = 0
    try:
        lines = [*head, f"Content-Length: {declared}", "Connection: close"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
        answered, line = await _answer(reader, head_wait)
        if answered:
            return BodyObservation("on-head", _status(line), 0, line)
        try:
            while sent <= cap:
                piece = b"x" * min(CHUNK, cap + 1 - sent)
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except (ConnectionError, OSError):
            return BodyObservation("after-cap", None, sent)  # closed while we sent: stopped
        answered, line = await _answer(reader, cap_wait)
        if answered:
            return BodyObservation("after-cap", _status(line), sent, line)
        return BodyObservation("waited", None, sent)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def verdict(observation: BodyObservation) -> str:
    """``stopped`` (refused or closed without reading past the cap), ``buffering`` or
    ``undecided`` (the answer says nothing about reading the body)."""
    if observation.stage == "waited":
        return "buffering"
    if observation.stage in ("on-head", "after-cap") and observation.status in (413, None):
        return "stopped"
    return "undecided"


@check("limit-body-not-buffered",
       "Limits: an oversized body is refused without reading past the cap",
       ["LIMIT-002", "LIMIT-001"])
async def body_not_buffered(ctx: CheckContext) -> None:
    cap = ctx.limit("max_body_bytes")
    url = urlsplit(ctx.url(ctx.collection_path))
    secure = url.scheme == "https"
    head = [f"POST {url.path} HTTP/1.1", f"Host: {url.netloc}",
            "Content-Type: application/json",
            *(f"{k}: {v}" for k, v in ctx.auth_headers().items())]
    deadline = time.monotonic() + ctx.rate_limit_patience()
    while True:
        observation = await observe_oversized_body(
            url.hostname or "", url.port or (443 if secure else 80), head, cap,
            DECLARED_BODY_BYTES, ctx.scaled(HEAD_ONLY_WAIT), ctx.scaled(AFTER_CAP_WAIT), secure)
        # a 429 is the deployment's right (rate limit): wait and probe again, within patience
        if observation.status != 429 or time.monotonic() + RATE_LIMITED_WAIT > deadline:
            break
        await asyncio.sleep(RATE_LIMITED_WAIT)
    decided = verdict(observation)
    if decided == "undecided":
        ctx.unobserved(
            f"the oversized-body probe got {observation.status_line or observation.stage!r} "
            f"after {observation.sent} body bytes: that answer says nothing about whether "
            "the body is read past the cap")
    if decided == "buffering":
        ctx.fail(
            "the server kept waiting for an oversized body after more than the cap arrived",
            expected=f"413 (or a close) from Content-Length: {DECLARED_BODY_BYTES}, or at the "
            f"latest once {cap + 1} bytes (cap + 1) had arrived",
            received=f"no answer within {ctx.scaled(AFTER_CAP_WAIT):g} s after {observation.sent}"
            f" of {DECLARED_BODY_BYTES} declared bytes (it is reading the whole body)",
            evidence={"sent_bytes": observation.sent, "declared_bytes": DECLARED_BODY_BYTES,
                      "stage": observation.stage},
        )
