# SPDX-License-Identifier: GPL-3.0-or-later
"""SSE mutants (headers, framing, order, heartbeats, resume, cap, filter), the odd-but-legal
variant, and a memory-leaking one for the load test."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .asgi import (
    ASGIApp,
    BlockFilter,
    Message,
    Receive,
    Scope,
    Send,
    block_fields,
    event_type,
    is_stream,
    query,
    request_header,
    rewrite_request,
    rewrite_sse,
    set_header,
    with_query,
    with_request_header,
)
from .registry import fault

if TYPE_CHECKING:
    from dualstore_reference.settings import Settings


async def _same(block: bytes) -> list[bytes]:
    return [block]


def _headers_only(app: ASGIApp, change: Any) -> ASGIApp:
    return rewrite_sse(app, lambda scope: _same, start=change)


@fault("sse-content-type-plain")
def content_type_plain(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The stream is served as text/plain."""
    return _headers_only(
        app, lambda h: set_header(h, "content-type", "text/plain; charset=utf-8")
    )


@fault("sse-no-cache-missing")
def no_cache_missing(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The stream lacks Cache-Control: no-cache (proxies may cache or buffer it)."""
    return _headers_only(app, lambda h: set_header(h, "cache-control", None))


@fault("sse-silent-open")
def silent_open(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Nothing is sent on open: output is buffered until the first insert or for 3 s."""

    def make(scope: Scope) -> BlockFilter:
        opened = time.monotonic()
        held: list[bytes] = []
        flushed = False

        async def buffered(block: bytes) -> list[bytes]:
            nonlocal flushed
            if flushed:
                return [block]
            held.append(block)
            if event_type(block) == "insert" or time.monotonic() - opened >= 3.0:
                flushed = True
                return held
            return []

        return buffered

    return rewrite_sse(app, make)


@fault("sse-multiline-data")
def multiline_data(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Insert data is pretty-printed JSON written raw: continuation lines lack 'data:'."""

    async def pretty(block: bytes) -> list[bytes]:
        fields = block_fields(block)
        if fields.get("event") != "insert":
            return [block]
        data = json.dumps(json.loads(fields["data"]), indent=1, ensure_ascii=False)
        head = f"id: {fields['id']}\n" if "id" in fields else ""
        return [f"{head}event: insert\ndata: {data}\n\n".encode()]

    return rewrite_sse(app, lambda scope: pretty)


class _Inserts:
    """Counts insert events of one connection and lets a subclass rewrite them."""

    def __init__(self) -> None:
        self.count = 0
        self.held: bytes | None = None

    async def __call__(self, block: bytes) -> list[bytes]:
        if event_type(block) != "insert":
            return [block]
        self.count += 1
        return self.insert(self.count, block)

    def insert(self, number: int, block: bytes) -> list[bytes]:
        return [block]


class _DropEveryThird(_Inserts):
    def insert(self, number: int, block: bytes) -> list[bytes]:
        return [] if number % 3 == 0 else [block]


class _SwapSecondThird(_Inserts):
    def insert(self, number: int, block: bytes) -> list[bytes]:
        if number == 2:
            self.held = block
            return []
        if number == 3 and self.held is not None:
            return [block, self.held]
        return [block]


class _DuplicateSecond(_Inserts):
    def insert(self, number: int, block: bytes) -> list[bytes]:
        return [block, block] if number == 2 else [block]


def _with_id(block: bytes, event_id: str) -> bytes:
    lines = block.decode("utf-8").split("\n")
    return "\n".join(
        f"id: {event_id}" if line.startswith("id:") else line for line in lines
    ).encode()


class _IdsSwapped(_Inserts):
    def insert(self, number: int, block: bytes) -> list[bytes]:
        if number == 2:
            self.held = block
            return []
        if number == 3 and self.held is not None:
            second, third = block_fields(self.held)["id"], block_fields(block)["id"]
            return [_with_id(self.held, third), _with_id(block, second)]
        return [block]


@fault("sse-drop-every-nth-event")
def drop_every_nth(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Every third insert event of a connection is lost (a racy queue hand-off)."""
    return rewrite_sse(app, lambda scope: _DropEveryThird())


@fault("sse-swap-two-events")
def swap_two(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The 2nd and 3rd inserts of a connection are delivered in swapped order."""
    return rewrite_sse(app, lambda scope: _SwapSecondThird())


@fault("sse-duplicate-event")
def duplicate_event(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The 2nd insert of a connection is sent twice (a retried write)."""
    return rewrite_sse(app, lambda scope: _DuplicateSecond())


@fault("sse-ids-out-of-order")
def ids_out_of_order(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Events arrive in order but the ids of the 2nd and 3rd are swapped."""
    return rewrite_sse(app, lambda scope: _IdsSwapped())


class _Heartbeats:
    def __init__(self, keep: Any) -> None:
        self.count = 0
        self.keep = keep

    async def __call__(self, block: bytes) -> list[bytes]:
        if event_type(block) != "heartbeat":
            return [block]
        self.count += 1
        return [block] if self.keep(self.count) else []


@fault("sse-heartbeat-double-interval")
def heartbeat_double(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Heartbeats come every 2H (the interval is applied twice)."""
    return rewrite_sse(app, lambda scope: _Heartbeats(lambda n: n % 2 == 1))


@fault("sse-no-heartbeat")
def no_heartbeat(app: ASGIApp, settings: Settings) -> ASGIApp:
    """No heartbeat event is ever sent."""
    return rewrite_sse(app, lambda scope: _Heartbeats(lambda n: False))


class _HeartbeatWithId:
    """Heartbeats carry ``id:`` with the connection's last event id (once there is one)."""

    def __init__(self) -> None:
        self.last_id: str | None = None

    async def __call__(self, block: bytes) -> list[bytes]:
        fields = block_fields(block)
        if fields.get("event") == "insert" and "id" in fields:
            self.last_id = fields["id"]
        if fields.get("event") == "heartbeat" and self.last_id is not None:
            return [f"id: {self.last_id}\n".encode() + block]
        return [block]


@fault("sse-heartbeat-with-id")
def heartbeat_with_id(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Heartbeats repeat the last event id in an id field (harmless to EventSource's
    lastEventId, but the spec says a heartbeat carries no id field at all)."""
    return rewrite_sse(app, lambda scope: _HeartbeatWithId())


@fault("sse-heartbeat-reset-by-filtered")
def heartbeat_reset_by_filtered(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The heartbeat clock is kept per worker, not per stream: every committed document
    restarts it, so a filtered stream gets no heartbeat (after its first) while documents
    its filter leaves out keep arriving more often than H."""
    interval = settings.sse_heartbeat_seconds
    last_commit = [0.0]

    def make(scope: Scope) -> BlockFilter:
        filtered = any(k == "filter" and v for k, v in query(scope))
        first = [True]

        async def clock(block: bytes) -> list[bytes]:
            if event_type(block) != "heartbeat" or not filtered:
                return [block]
            if first[0]:  # the heartbeat sent on open
                first[0] = False
                return [block]
            return [] if time.monotonic() - last_commit[0] < interval else [block]

        return clock

    streams = rewrite_sse(app, make)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await streams(scope, receive, send)
            return

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 201:
                last_commit[0] = time.monotonic()
            await send(message)

        await app(scope, receive, noting)

    return middleware


@fault("sse-resume-join-duplicate")
def resume_join_duplicate(app: ASGIApp, settings: Settings) -> ASGIApp:
    """On a resumed stream the last replayed event is sent again just before the first live
    one (a join that re-reads its own boundary: replay (a, J] then live [J, ...))."""
    from dualstore_reference.resources import stream as resource

    original = resource.StreamResource._events

    async def joined(self: Any, stream: Any, collection: str) -> AsyncIterator[bytes]:
        last_replayed: bytes | None = None
        resumed = not stream.resume.live_only
        if resumed:
            stream.writer = None  # live events through this generator, not the hub's sink
        async for chunk in original(self, stream, collection):
            fields = block_fields(chunk)
            seq = fields.get("id", "")
            if resumed and fields.get("event") == "insert" and seq.isdigit():
                if int(seq) <= stream.subscription.start:
                    last_replayed = chunk
                elif last_replayed is not None:
                    yield last_replayed  # the join sends its boundary event once more
                    last_replayed = None
                    resumed = False
            yield chunk

    resource.StreamResource._events = joined  # type: ignore[method-assign]  # the fault
    return app


def _stream_rewrite(app: ASGIApp, change: Any) -> ASGIApp:
    return rewrite_request(app, lambda scope: change(scope) if is_stream(scope) else scope)


def _last_event_id(scope: Scope) -> str:
    return (request_header(scope, "last-event-id") or "").strip()


def _since(scope: Scope) -> str:
    return next((v for k, v in query(scope) if k == "since"), "")


@fault("sse-last-event-id-ignored")
def last_event_id_ignored(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Last-Event-ID is ignored: a reconnect replays the whole history from the start."""

    def change(scope: Scope) -> Scope:
        if _last_event_id(scope):
            return with_request_header(scope, "last-event-id", "0")
        return scope

    return _stream_rewrite(app, change)


def _shift(delta: int) -> Any:
    def shifted(value: str) -> str:
        if value.isdigit():
            return str(max(int(value) + delta, 0))
        return value

    def change(scope: Scope) -> Scope:
        header = _last_event_id(scope)
        if header:
            scope = with_request_header(scope, "last-event-id", shifted(header))
        pairs = query(scope)
        moved = [(k, shifted(v) if k == "since" else v) for k, v in pairs]
        return scope if moved == pairs else with_query(scope, moved)

    return change


class _SkipFirstReplayed(_Inserts):
    def insert(self, number: int, block: bytes) -> list[bytes]:
        return [] if number == 1 else [block]


@fault("sse-resume-skips-one")
def resume_skips_one(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A resumed stream loses the first event after the resume point (replay off by one)."""

    def make(scope: Scope) -> BlockFilter:
        if _last_event_id(scope) or _since(scope):
            return _SkipFirstReplayed()
        return _same

    return rewrite_sse(app, make)


@fault("sse-resume-repeats-one")
def resume_repeats_one(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Resume after token N starts at N (inclusive): the last seen event is sent again."""
    return _stream_rewrite(app, _shift(-1))


@fault("sse-since-wins")
def since_wins(app: ASGIApp, settings: Settings) -> ASGIApp:
    """With both present, ?since is used and Last-Event-ID dropped."""

    def change(scope: Scope) -> Scope:
        if _last_event_id(scope) and _since(scope):
            return with_request_header(scope, "last-event-id", None)
        return scope

    return _stream_rewrite(app, change)


@fault("sse-malformed-token-accepted")
def malformed_token_accepted(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A malformed Last-Event-ID or since is treated as absent (live stream) instead of 400."""
    from dualstore_reference.stream import tokens

    def change(scope: Scope) -> Scope:
        try:
            tokens.resume_point(_last_event_id(scope) or None, _since(scope) or None)
        except tokens.InvalidResumeToken:
            scope = with_request_header(scope, "last-event-id", None)
            return with_query(scope, [(k, v) for k, v in query(scope) if k != "since"])
        return scope

    return _stream_rewrite(app, change)


@fault("sse-cap-not-enforced")
def cap_not_enforced(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The per-IP stream cap is keyed by the client's port too, so it never bites."""
    numbers = itertools.count(1)

    def change(scope: Scope) -> Scope:
        n = next(numbers)
        return {**scope, "client": (f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}", 1)}

    return _stream_rewrite(app, change)


@fault("sse-cap-slot-leaked")
def cap_slot_leaked(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Client disconnects are never noticed: the stream (and its cap slot) lives on forever."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if not is_stream(scope):
            await app(scope, receive, send)
            return
        gone = False

        async def deaf_receive() -> Message:
            message = await receive()
            while message.get("type") == "http.disconnect":
                await asyncio.Event().wait()  # never: the disconnect is swallowed
            return message

        async def blind_send(message: Message) -> None:
            nonlocal gone
            if gone:
                return
            try:
                await send(message)
            except Exception:
                gone = True

        await app(scope, deaf_receive, blind_send)

    return middleware


@fault("sse-filter-not-applied")
def filter_not_applied(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The stream validates ?filter but delivers every document."""
    from .rest import _valid_filter

    def change(scope: Scope) -> Scope:
        pairs = query(scope)
        kept = [(k, v) for k, v in pairs if not (k == "filter" and v and _valid_filter(v))]
        return scope if kept == pairs else with_query(scope, kept)

    return _stream_rewrite(app, change)


class _OddButLegal:
    """Legal but unusual framing: BOM, CR / CRLF line ends, comments, unknown fields; with
    keep_retry False, no retry field either. (Heartbeats keep having no id: the spec's
    SSE-HEARTBEAT-001 forbids one even when it repeats the last event id.)"""

    def __init__(self, keep_retry: bool = True) -> None:
        self.keep_retry = keep_retry
        self.first = True
        self.blocks = 0

    async def __call__(self, block: bytes) -> list[bytes]:
        lines = [line for line in block.decode("utf-8").split("\n") if line]
        if not self.keep_retry:
            lines = [line for line in lines if not line.startswith("retry:")]
        if not lines:
            return []
        lines.append("x-unknown-field: ignored by every conforming client")
        lines.insert(0, ": comment before the event")
        self.blocks += 1
        end = "\r\n" if self.blocks % 2 else "\r"
        text = end.join(lines) + end + end
        if self.first:
            self.first = False
            text = "\ufeff" + text
        return [text.encode("utf-8")]


@fault("odd-legal-framing")
def odd_legal_framing(app: ASGIApp, settings: Settings) -> ASGIApp:
    """A correct server framing legally but unusually (the harness must pass it)."""
    return rewrite_sse(app, lambda scope: _OddButLegal())


@fault("odd-legal-no-retry")
def odd_legal_no_retry(app: ASGIApp, settings: Settings) -> ASGIApp:
    """odd-legal-framing that also never sends a retry field (legal; SSE-FRAME-005 is a SHOULD)."""
    return rewrite_sse(app, lambda scope: _OddButLegal(keep_retry=False))


@fault("odd-legal-strict-rate-limit")
def strict_rate_limit(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The unmodified reference; the catalogue entry runs it with a strict but legal rate
    limit (RATE_LIMIT_PER_SECOND=10, RATE_LIMIT_BURST=20) declared to conform."""
    return app


@fault("odd-legal-stream-cap-20")
def stream_cap_20(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The unmodified reference; the catalogue entry runs it with STREAM_CAP_PER_IP=20
    declared to conform (--stream-cap 20)."""
    return app


LEAKED: list[bytes] = []
"""What the leaking mutant keeps forever."""
LEAK_BYTES_PER_EVENT = 64 * 1024


class _Leak:
    async def __call__(self, block: bytes) -> list[bytes]:
        LEAKED.append(b"\xa5" * LEAK_BYTES_PER_EVENT)  # a per-event debug copy nobody frees
        return [block]


@fault("sse-memory-leak")
def memory_leak(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Every sent stream block keeps a 64 KiB buffer alive (RSS grows with traffic)."""
    return rewrite_sse(app, lambda scope: _Leak())


