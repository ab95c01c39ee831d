# SPDX-License-Identifier: GPL-3.0-or-later
"""What a check runs with: ``CheckContext`` (target, client, helpers) and ``StreamReader``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NoReturn

import httpx
from dualstore_spec.facts import SpecError
from dualstore_sse import Comment, Event, SSEParser

from dualstore_conformance import client as http
from dualstore_conformance import judging
from dualstore_conformance.model import Failure, Target
from dualstore_conformance.outcomes import CheckFailed, CheckSkipped, CheckUnobserved
from dualstore_conformance.pacing import RequestPacer
from dualstore_conformance.profile import DeploymentProfile, limits_view, spec_defaults

CONFORMANCE_KEY = "dualstore_conformance"
"""Metadata key tagging every document the harness writes."""


def spec_limits(profile: DeploymentProfile | None = None) -> dict[str, Any]:
    """The spec's ``x-dualstore-limits`` with the deployment profile's configured values."""
    return limits_view(profile or spec_defaults())


def stream_cap(limits: Mapping[str, Any]) -> int:
    """The per-IP stream cap of the deployment (the spec's, or the profile's declared one)."""
    value = limits["stream_cap_per_ip"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"stream_cap_per_ip is not a positive integer: {value!r}")
    return value


class StreamBudget:
    """Shares the target's per-IP stream cap between concurrently running checks."""

    def __init__(self, streams: int) -> None:
        self._semaphore = asyncio.Semaphore(max(1, streams))

    async def acquire(self, timeout: float) -> bool:
        """Take a slot; after timeout go ahead without one (returns False)."""
        try:
            await asyncio.wait_for(self._semaphore.acquire(), timeout)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        """Give a slot back."""
        self._semaphore.release()


class CheckContext:
    """Everything a check needs; one per check execution."""

    def __init__(
        self,
        target: Target,
        check_id: str,
        run_id: str,
        collection: str,
        client: httpx.AsyncClient,
        limits: Mapping[str, Any] | None = None,
        rules: list[str] | tuple[str, ...] = (),
        stream_budget: StreamBudget | None = None,
        exclusive: bool = False,
        health: Mapping[str, Any] | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        self.target = target
        self.check_id = check_id
        self.run_id = run_id
        self.collection = collection
        self.client = client
        self.limits: dict[str, Any] = dict(limits if limits is not None else spec_limits())
        """The spec's x-dualstore-limits with the deployment profile's values."""
        self.rules = list(rules)
        self.stream_budget = stream_budget
        self.exclusive = exclusive
        self.pacer = pacer
        """The run's client-side pacer (the declared rate limit), when there is one."""
        self.health: dict[str, Any] = dict(health or {})
        """The target's GET /v1/health answer, read once before the checks ran."""
        self.notes: list[str] = []
        """Free-form progress notes (shown on verbose consoles)."""

    # -- addressing -------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of an API path (``/v1/health`` -> ``http://host:port/v1/health``)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.target.url.rstrip("/") + "/" + path.lstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """``{}`` or ``{"Authorization": "Bearer T"}``."""
        return {"Authorization": f"Bearer {self.target.token}"} if self.target.token else {}

    @property
    def collection_path(self) -> str:
        """``/v1/{collection}``."""
        return f"/v1/{self.collection}"

    # -- tagging ----------------------------------------------------------------------
    def tag(self) -> dict[str, str]:
        """The metadata tag put on every document this check inserts."""
        return {"run": self.run_id, "check": self.check_id}

    def own_filter_expression(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A filter expression matching exactly this check's documents (plus extra terms)."""
        expression: dict[str, Any] = {
            f"metadata.{CONFORMANCE_KEY}.check": self.check_id,
            f"metadata.{CONFORMANCE_KEY}.run": self.run_id,
        }
        expression.update(extra or {})
        return expression

    def own_filter(self, extra: Mapping[str, Any] | None = None) -> str:
        """The encoded ``filter`` query value matching exactly this check's documents."""
        return http.encode_filter(self.own_filter_expression(extra))

    def unique_text(self, label: str = "") -> str:
        """A document text nobody else wrote (for search and read-after-write checks)."""
        return f"conformance {self.check_id} {label} {uuid.uuid4().hex}".replace("  ", " ")

    # -- requests ---------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        retry_rate_limited: bool = True,
        auth: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; a 429 ``rate-limited`` answer is retried after its Retry-After.

        ``auth=False`` sends no Authorization header even when the run has a token.
        Extra keyword arguments go to ``httpx.AsyncClient.request``.
        """
        if not auth:
            headers = httpx.Headers(kwargs.pop("headers", None) or {})
            kwargs["headers"] = headers
            return await self._without_auth(method, path, **kwargs)
        deadline = time.monotonic() + self.rate_limit_patience()
        while True:
            response = await self._send(method, path, **kwargs)
            if not retry_rate_limited or not _rate_limited(response):
                return response
            wait = _retry_after(response)
            if time.monotonic() + wait > deadline:
                self.unobserved(
                    f"{method} {path} was rate limited (429) for "
                    f"{self.rate_limit_patience():.0f} s: a 429 is the deployment's right, "
                    "so nothing else could be judged from it (declare the deployment's rate "
                    "limit with --rate-limit so the harness paces itself)")
            await asyncio.sleep(wait)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a safe method is resent once when a reused connection was dropped.

        A keep-alive connection the server closes while the request is on its way fails with
        a transport error that says nothing about the target (RFC 9112 §9.3.1 lets clients
        retry idempotent requests then).
        """
        try:
            return await self.client.request(method, path, **kwargs)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                raise
            return await self.client.request(method, path, **kwargs)

    def rate_limit_patience(self) -> float:
        """How long the harness waits out 429 rate-limited answers before giving up.

        Long enough for the declared bucket to refill twice over, at least 20 s (a harness
        wait, so --timeout-multiplier scales it).
        """
        rate = self.limits.get("rate_limit")
        refill = 0.0
        if isinstance(rate, Mapping):
            per_second = rate.get("requests_per_second")
            burst = rate.get("burst")
            if isinstance(per_second, int | float) and per_second > 0 and isinstance(burst, int):
                refill = 2 * burst / per_second
        return self.scaled(max(20.0, refill + 5.0))

    async def _without_auth(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self.client.build_request(method, path, **kwargs)
        if "authorization" in request.headers:
            del request.headers["authorization"]
        return await self.client.send(request)

    async def insert(
        self,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        timestamp: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one tagged document to the run's collection; fail the check unless 201.

        Returns ``{"id", "body" (sent), "response", "document" (parsed answer)}``.
        """
        meta = dict(metadata or {})
        meta[CONFORMANCE_KEY] = self.tag()
        body: dict[str, Any] = {"text": text if text is not None else self.unique_text(),
                                "metadata": meta}
        if timestamp is not None:
            body["timestamp"] = timestamp
        response = await self.request("POST", self.collection_path, json=body, headers=headers)
        if response.status_code != 201:
            self.fail(
                "Insert of a valid document was not accepted",
                expected="201 Created",
                received=f"{response.status_code} {response.text[:300]}",
                evidence=self.evidence(response),
                reproduce=self.curl("POST", self.collection_path, headers=headers, body=body),
            )
        try:
            document = response.json()
        except ValueError:
            document = None
        doc_id = document.get("id") if isinstance(document, dict) else None
        if not isinstance(doc_id, str) or not doc_id:
            self.fail(
                "Insert answer carries no document id",
                expected="201 with a JSON document having a string 'id'",
                received=response.text[:300],
                evidence=self.evidence(response),
                reproduce=self.curl("POST", self.collection_path, headers=headers, body=body),
            )
        return {"id": doc_id, "body": body, "response": response, "document": document}

    # -- reporting --------------------------------------------------------------------
    def curl(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: object | None = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> str:
        """A shell reproduction of a request; the token appears as ``"$TOKEN"``."""
        return http.curl(
            self.url(path), method, headers, body, params=params,
            token=self.target.token, stream=stream or path.rstrip("/").endswith("/stream"),
        )

    def evidence(self, response: httpx.Response) -> dict[str, Any]:
        """Status, headers (redacted) and the first bytes of the body."""
        return http.evidence(response, self.target.token)

    def fail(
        self,
        title: str,
        expected: str,
        received: str,
        rules: list[str] | None = None,
        evidence: dict[str, Any] | None = None,
        reproduce: str = "",
        severity: str = "high",
    ) -> NoReturn:
        """Stop the check as failed."""
        raise CheckFailed(
            Failure(
                title=title,
                expected=expected,
                received=received,
                rules=list(rules) if rules else list(self.rules),
                severity=severity,
                evidence=dict(evidence or {}),
                reproduce=reproduce,
            )
        )

    def skip(self, reason: str, why: str = "not-applicable") -> NoReturn:
        """Stop the check as not judged: ``not-applicable`` or ``not-configured``."""
        raise CheckSkipped(reason, why)

    def unobserved(self, reason: str) -> NoReturn:
        """Stop the check as undecided: it could not observe what it needs (an error)."""
        raise CheckUnobserved(reason)

    def scaled(self, seconds: float) -> float:
        """seconds x --timeout-multiplier."""
        return seconds * self.target.timeout_multiplier

    def note(self, text: str) -> None:
        """Record a progress note."""
        self.notes.append(text)

    # -- streams ----------------------------------------------------------------------
    def open_stream(
        self,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
        path: str | None = None,
        retry_rate_limited: bool = True,
    ) -> StreamReader:
        """``async with ctx.open_stream(...) as reader``: GET /v1/{collection}/stream.

        Any 429 is retried after its Retry-After (for up to 20 s, scaled) unless
        ``retry_rate_limited=False`` (the stream cap checks want to see the 429).
        """
        return StreamReader(
            self,
            path or f"{self.collection_path}/stream",
            params=params,
            headers=headers,
            auth=auth,
            retry_rate_limited=retry_rate_limited,
        )


def _rate_limited(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    detail = http.problem(response) or {}
    kind = str(detail.get("type", ""))
    return not kind.endswith("too-many-streams")


def _retry_after(response: httpx.Response) -> float:
    return judging.retry_after_seconds(response.headers.get("retry-after"), low=0.05, high=5.0,
                                       absent=1.0)


class StreamReader:
    """An open event stream read in the background and parsed with the WHATWG parser.

    After ``__aenter__``: ``status`` and ``headers`` are set. A 200 answer is read
    continuously into ``raw`` / ``items``; any other answer is read whole (capped) into
    ``body``. ``next_event`` and ``collect`` consume events from a cursor; ``items`` always
    holds everything received so far with monotonic receive times.
    """

    MAX_ERROR_BODY = 65536

    def __init__(
        self,
        ctx: CheckContext,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        retry_rate_limited: bool = True,
    ) -> None:
        self.ctx = ctx
        self.path = path
        self.params = dict(params or {})
        self.request_headers = dict(headers or {})
        self.auth = auth
        self.retry_rate_limited = retry_rate_limited
        self.status: int = 0
        self.headers: httpx.Headers = httpx.Headers()
        self.opened_at: float = 0.0
        self.headers_at: float | None = None
        self.first_byte_at: float | None = None
        self.items: list[tuple[float, Event | Comment]] = []
        self.raw = bytearray()
        self.body: bytes = b""
        self.parser = SSEParser()
        self.closed = False
        """The server ended the stream (or the connection failed: see ``error``)."""
        self.error: BaseException | None = None
        self.response: httpx.Response | None = None
        self._cursor = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slot = False

    # -- lifecycle --------------------------------------------------------------------
    async def __aenter__(self) -> StreamReader:
        ctx = self.ctx
        if ctx.stream_budget is not None and not ctx.exclusive:
            self._slot = await ctx.stream_budget.acquire(ctx.scaled(20.0))
        patience = ctx.rate_limit_patience()
        deadline = time.monotonic() + patience
        while True:
            await self._open()
            if not (self.retry_rate_limited and self.response is not None
                    and self.status == 429):
                break
            # rate-limited, or too-many-streams while other checks' slots drain: wait
            await self.response.aread()
            wait = _retry_after(self.response)
            await self.response.aclose()
            if time.monotonic() + wait > deadline:
                self.body = self.response.content
                await self.close()
                ctx.unobserved(
                    f"the stream open was refused with 429 for {patience:.0f} s "
                    f"({self.body[:200]!r}): a 429 is the deployment's right, so the stream "
                    "could not be observed (declare the deployment's rate limit and stream "
                    "cap with --rate-limit and --stream-cap)")
            await asyncio.sleep(wait)
        response = self.response
        assert response is not None
        if self.status == 200:
            self._task = asyncio.create_task(self._read(response))
        else:
            try:
                self.body = await asyncio.wait_for(self._read_capped(response), ctx.scaled(5.0))
            except TimeoutError:
                self.body = bytes(self.raw)
            finally:
                await response.aclose()
        return self

    async def _open(self) -> None:
        ctx = self.ctx
        headers = httpx.Headers(self.request_headers)
        timeout = httpx.Timeout(ctx.scaled(10.0), read=None)
        request = ctx.client.build_request(
            "GET", self.path, params=self.params or None, headers=headers, timeout=timeout
        )
        if not self.auth and "authorization" in request.headers:
            del request.headers["authorization"]
        self.request = request
        self.opened_at = time.monotonic()
        try:
            self.response = await asyncio.wait_for(
                ctx.client.send(request, stream=True), ctx.scaled(10.0)
            )
        except TimeoutError:
            ctx.fail(
                "Stream request got no response headers",
                expected=f"response headers within {ctx.scaled(10.0):.1f} s",
                received="nothing",
                reproduce=self.reproduce(),
            )
        self.headers_at = time.monotonic()
        self.status = self.response.status_code
        self.headers = self.response.headers

    async def _read_capped(self, response: httpx.Response) -> bytes:
        async for chunk in response.aiter_bytes():
            self.raw.extend(chunk)
            if len(self.raw) >= self.MAX_ERROR_BODY:
                break
        return bytes(self.raw)

    async def _read(self, response: httpx.Response) -> None:
        try:
            async for chunk in response.aiter_bytes():
                if not chunk:
                    continue
                now = time.monotonic()
                if self.first_byte_at is None:
                    self.first_byte_at = now
                self.raw.extend(chunk)
                for item in self.parser.feed(chunk):
                    self.items.append((now, item))
                self._notify()
            now = time.monotonic()
            for item in self.parser.close():
                self.items.append((now, item))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # connection dropped: recorded, the check decides
            self.error = error
        finally:
            self.closed = True
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.response is not None:
            with contextlib.suppress(Exception):
                await self.response.aclose()
        if self._slot and self.ctx.stream_budget is not None:
            self.ctx.stream_budget.release()
            self._slot = False

    # -- reading ----------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        """Every event received so far."""
        return [item for _, item in self.items if isinstance(item, Event)]

    def events_of(self, type: str) -> list[Event]:
        """Every event of one type received so far."""
        return [item for _, item in self.items if isinstance(item, Event) and item.type == type]

    @property
    def comments(self) -> list[Comment]:
        """Every comment received so far."""
        return [item for _, item in self.items if isinstance(item, Comment)]

    async def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate(self)`` is true or the stream ends; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if self.closed:
                return bool(predicate(self))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_first_byte(self, timeout: float) -> bool:
        """Wait until the first body byte arrived."""
        return await self.wait_for(lambda r: r.first_byte_at is not None, timeout)

    async def next_event(self, timeout: float, type: str | None = None) -> Event | None:
        """The next unconsumed event (of ``type`` when given; others are skipped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.items):
                _, item = self.items[self._cursor]
                self._cursor += 1
                if isinstance(item, Event) and (type is None or item.type == type):
                    return item
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def collect(self, count: int, timeout: float, type: str = "insert") -> list[Event]:
        """Up to ``count`` next events of ``type`` within ``timeout`` (fewer on timeout)."""
        deadline = time.monotonic() + timeout
        found: list[Event] = []
        while len(found) < count:
            event = await self.next_event(max(0.0, deadline - time.monotonic()), type)
            if event is None:
                break
            found.append(event)
        return found

    # -- reporting --------------------------------------------------------------------
    def reproduce(self) -> str:
        """curl for this stream request (token redacted)."""
        headers = dict(self.request_headers)
        if not self.auth:
            headers["Authorization"] = ""
        return self.ctx.curl("GET", self.path, headers=headers or None,
                             params=self.params or None, stream=True)

    def evidence(self, limit: int = http.EVIDENCE_BODY_BYTES) -> dict[str, Any]:
        """Status, headers and the first bytes received."""
        data = bytes(self.raw) if self.status == 200 else self.body
        token = self.ctx.target.token
        return {
            "request": f"GET {self.ctx.url(self.path)}",
            "params": {k: http.redact_text(str(v), token) for k, v in self.params.items()},
            "status": self.status,
            "headers": http.safe_headers(self.headers, self.ctx.target.token),
            "body": http.body_excerpt(data, limit),
        }

    def json(self) -> Any:
        """The non-200 body parsed as JSON (None when it is not JSON)."""
        import json as _json

        try:
            return _json.loads(self.body)
        except ValueError:
            return None
