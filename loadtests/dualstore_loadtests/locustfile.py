# SPDX-License-Identifier: GPL-3.0-or-later
"""Locust scenario: SSE subscribers that hold a stream for the whole run, and tagged writers.

Run it through ``dualstore load`` (which also judges the records), or by hand::

    DUALSTORE_LOAD_TOKEN=secret locust -f locustfile.py --headless -u 102 -r 20 -t 5m \
        --host http://127.0.0.1:4261 --ds-records ./records --ds-writers 2

Every document a writer POSTs carries ``metadata.load = {run, writer, n, sent_at}`` and
every fact (commit, receipt, connection, 5xx) is appended to ``records-<pid>.jsonl`` in
``--ds-records``; ``dualstore load`` merges those files (from every Locust process) to
count lost and duplicated events. Live metrics go through Locust's request events:
``SSE connect`` (time to response headers), ``SSE deliver`` (POST send -> receipt),
``SSE heartbeat`` (silence before each heartbeat), ``SSE duplicate`` (failures).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import ssl
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import httpx
from dualstore_spec import facts
from dualstore_sse import Comment, Event, SSEParser
from locust import HttpUser, User, constant_throughput, events, task
from locust.env import Environment

from dualstore_loadtests import records as rec

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per stream open is noise

TOKEN_ENV = "DUALSTORE_LOAD_TOKEN"
"""The bearer token is passed through the environment, never on a command line."""

_recorder: rec.RecordWriter | None = None
_names = itertools.count(1)


def iso_ms(moment: float) -> str:
    """RFC 3339 UTC with milliseconds, truncated (never later than moment)."""
    stamp = datetime.fromtimestamp(int(moment * 1000) / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def idle_filter(run: str) -> str:
    """base64url filter matching none of this run's documents (a heartbeat-only stream)."""
    raw = json.dumps({"metadata.load.run": f"{run}-idle"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("DualStore load test")
    group.add_argument("--ds-run", default="", help="run id tagged into every document")
    group.add_argument("--ds-collection", default="session_messages", help="collection")
    group.add_argument("--ds-records", default="", help="folder for the raw records")
    group.add_argument("--ds-writers", type=int, default=2, help="number of writer users")
    group.add_argument("--ds-idle", type=int, default=0,
                       help="subscribers with a filter matching nothing (heartbeat only)")
    group.add_argument("--ds-writers-rate", type=float, default=10.0,
                       help="total POSTs per second over all writers")
    group.add_argument("--ds-write-seconds", type=float, default=0.0,
                       help="writers stop this many seconds after the test starts (0: never)")
    group.add_argument("--ds-heartbeat", type=float,
                       default=facts.current().heartbeat.default_seconds,
                       help="the server's heartbeat interval (sets the stream read timeout)")


def _init(environment: Environment, **_: Any) -> None:
    global _recorder
    options = environment.parsed_options
    if options is None:
        return
    if not options.ds_run:
        options.ds_run = uuid.uuid4().hex[:12]
    Writer.fixed_count = max(0, options.ds_writers)
    IdleSubscriber.fixed_count = max(0, options.ds_idle)
    if options.ds_records:
        _recorder = rec.RecordWriter(Path(options.ds_records))
        gevent.spawn(_flush_forever)


def _flush_forever() -> None:
    while True:
        gevent.sleep(1.0)
        if _recorder is not None:
            _recorder.flush()


def _test_start(environment: Environment, **_: Any) -> None:
    environment.ds_started = time.time()  # type: ignore[attr-defined]


def _test_stop(**_: Any) -> None:
    if _recorder is not None:
        _recorder.flush()


def _quitting(**_: Any) -> None:
    if _recorder is not None:
        _recorder.close()


_hooks: Any = events
_hooks.init_command_line_parser.add_listener(_arguments)
_hooks.init.add_listener(_init)
_hooks.test_start.add_listener(_test_start)
_hooks.test_stop.add_listener(_test_stop)
_hooks.quitting.add_listener(_quitting)


def record(kind: str, **fields: Any) -> None:
    """Append a raw record when the run has a records folder."""
    if _recorder is not None:
        _recorder.write(kind, **fields)


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One TLS context for all subscribers: building one per client costs ~100 ms of CPU,
    which with 100 subscribers would stall the whole Locust process while they spawn."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


def _auth_headers() -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV, "")
    return {"Authorization": f"Bearer {token}"} if token else {}


class Writer(HttpUser):
    """POSTs tagged documents; all writers together keep ``--ds-writers-rate``."""

    fixed_count = 2
    weight = 1

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.run_id: str = options.ds_run
        self.collection: str = options.ds_collection
        writers = max(1, options.ds_writers)
        self.pacer = constant_throughput(max(options.ds_writers_rate, 0.001) / writers)
        self.ds_name = f"w{os.getpid()}-{next(_names)}"
        self.n = 0
        self.stop_at = 0.0
        if options.ds_write_seconds > 0:
            started = getattr(self.environment, "ds_started", time.time())
            self.stop_at = started + options.ds_write_seconds
        self.client.headers.update(_auth_headers())

    def wait_time(self) -> float:
        pause: float = self.pacer(self)
        return pause

    @task
    def post(self) -> None:
        if self.stop_at and time.time() >= self.stop_at:
            gevent.sleep(1.0)  # writing phase over: let the streams drain
            return
        self.n += 1
        sent = time.time()
        body = {
            "text": f"load test document {self.n} from writer {self.ds_name} in run {self.run_id}",
            "timestamp": iso_ms(sent),
            "metadata": {"load": {"run": self.run_id, "writer": self.ds_name, "n": self.n,
                                  "sent_at": sent}},
        }
        with self.client.post(f"/v1/{self.collection}", json=body, catch_response=True,
                              name=f"POST /v1/{self.collection}") as response:
            commit = time.time()
            status = response.status_code
            if status >= 500:
                record(rec.STATUS, what="POST", code=status, t=commit)
            if status == 201:
                try:
                    doc = response.json()["id"]
                except (ValueError, KeyError, TypeError):
                    response.failure("201 without an id")
                    record(rec.WRITE_ERROR, writer=self.ds_name, n=self.n, sent=sent,
                           status=status, error="201 without an id")
                    return
                record(rec.WRITE, doc=doc, writer=self.ds_name, n=self.n, sent=sent,
                       commit=commit)
                response.success()
            else:
                response.failure(f"status {status}")
                record(rec.WRITE_ERROR, writer=self.ds_name, n=self.n, sent=sent,
                       status=status or None, error=str(response.error or "")[:200])


class Subscriber(User):
    """Holds one SSE stream for the whole run; resumes with Last-Event-ID when dropped."""

    weight = 1
    idle = False

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.run_id = options.ds_run
        self.collection = options.ds_collection
        self.heartbeat: float = options.ds_heartbeat
        self.ds_name = f"s{os.getpid()}-{next(_names)}"
        self.opened: float | None = None
        self.last_id = ""
        self.connections = 0
        self.connected_at: float | None = None
        self.last_item: float | None = None
        self.max_gap = 0.0
        self.seen: set[str] = set()
        read_timeout = 2 * self.heartbeat + 5
        self.http = httpx.Client(
            base_url=self.host or "",
            timeout=httpx.Timeout(10.0, read=read_timeout),
            headers=_auth_headers(),
            verify=_tls_context(),
        )

    def on_stop(self) -> None:
        now = time.time()
        self._closed(now, "stopped")
        record(rec.SUBSCRIBER, sub=self.ds_name, idle=self.idle, opened=self.opened, ended=now)
        self.http.close()

    def _fire(self, name: str, seconds: float, length: int = 0,
              exception: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="SSE", name=name, response_time=seconds * 1000.0,
            response_length=length, exception=exception, context={},
        )

    def _closed(self, now: float, reason: str) -> None:
        if self.connected_at is None:
            return
        if self.last_item is not None:
            self.max_gap = max(self.max_gap, now - self.last_item)
        record(rec.CLOSE, sub=self.ds_name, conn=self.connections, t=now, reason=reason,
               max_gap=self.max_gap)
        self.connected_at = None

    def _params_and_headers(self) -> tuple[dict[str, str], dict[str, str], str | None]:
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        resume: str | None = None
        if self.idle:
            params["filter"] = idle_filter(self.run_id)
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
            resume = "header"
        elif self.opened is not None:
            # Dropped before any event: ask for everything sent since we first subscribed
            # (writers set timestamp = send time).
            params["since"] = iso_ms(self.opened)
            resume = "since"
        return params, headers, resume

    @task
    def hold_stream(self) -> None:
        pause = 1.0
        while True:
            pause = self._one_connection(pause)
            gevent.sleep(pause)

    def _one_connection(self, pause: float) -> float:
        params, headers, resume = self._params_and_headers()
        started = time.time()
        try:
            with self.http.stream("GET", f"/v1/{self.collection}/stream", params=params,
                                  headers=headers) as response:
                answered = time.time()
                if response.status_code != 200:
                    response.read()
                    if response.status_code >= 500:
                        record(rec.STATUS, what="stream", code=response.status_code, t=answered)
                    self._fire("SSE connect", answered - started,
                               exception=RuntimeError(f"status {response.status_code}"))
                    retry_after = response.headers.get("Retry-After", "")
                    return float(retry_after) if retry_after.isdigit() else min(pause * 2, 10.0)
                self._fire("SSE connect", answered - started)
                self.connections += 1
                self.connected_at = answered
                self.last_item = answered
                self.max_gap = 0.0
                record(rec.OPEN, sub=self.ds_name, conn=self.connections, t=answered,
                       status=200, resume=resume)
                parser = SSEParser(last_event_id=self.last_id)
                for chunk in response.iter_raw():
                    now = time.time()
                    if self.opened is None:
                        self.opened = now  # first byte of the first stream: subscribed
                    for item in parser.feed(chunk):
                        self._item(item, now)
                    self.last_item = now
                    if parser.retry_ms is not None:
                        pause = parser.retry_ms / 1000.0
                self._closed(time.time(), "eof")
                self._fire("SSE reconnect", 0.0)
                return pause
        except httpx.ReadTimeout:
            if self.connected_at is None:
                self._fire("SSE connect", time.time() - started,
                           exception=RuntimeError("timed out waiting for response headers"))
            else:
                self._closed(time.time(), "read-timeout")
                self._fire("SSE reconnect", 0.0, exception=RuntimeError("read timeout"))
        except httpx.HTTPError as error:
            self._closed(time.time(), f"error: {type(error).__name__}")
            self._fire("SSE connect", time.time() - started, exception=error)
        return min(max(pause, 0.5), 10.0)

    def _item(self, item: Event | Comment, now: float) -> None:
        gap = now - self.last_item if self.last_item is not None else 0.0
        self.max_gap = max(self.max_gap, gap)
        if isinstance(item, Comment):
            return
        if item.id_set and item.last_event_id:
            self.last_id = item.last_event_id
        if item.type == "heartbeat":
            self._fire("SSE heartbeat", gap)
            return
        if item.type != "insert":
            return
        try:
            doc = json.loads(item.data)
            load = doc["metadata"]["load"]
        except (ValueError, KeyError, TypeError):
            return  # not one of ours (another producer shares the collection)
        if not isinstance(load, dict) or load.get("run") != self.run_id:
            return
        doc_id = str(doc.get("id"))
        sent = load.get("sent_at")
        if doc_id in self.seen:
            self._fire("SSE duplicate", 0.0, exception=RuntimeError(f"{doc_id} received twice"))
        self.seen.add(doc_id)
        record(rec.RECEIPT, sub=self.ds_name, doc=doc_id, t=now, sent=sent,
               eid=item.last_event_id)
        if isinstance(sent, int | float):
            self._fire("SSE deliver", now - float(sent), len(item.data))


class IdleSubscriber(Subscriber):
    """A subscriber whose filter matches nothing: it proves heartbeats under load."""

    fixed_count = 0
    idle = True
