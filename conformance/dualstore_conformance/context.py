# SPDX-License-Identifier: GPL-3.0-or-later
"""What a check runs with: ``CheckContext`` (target, client, requests, tagging, verdicts)."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx

from dualstore_conformance import client as http
from dualstore_conformance.limits import limit_value, spec_limits
from dualstore_conformance.model import Failure, Target
from dualstore_conformance.outcomes import CheckFailed, CheckSkipped, CheckUnobserved
from dualstore_conformance.pacing import RequestPacer
from dualstore_conformance.streams import StreamBudget, StreamReader

CONFORMANCE_KEY = "dualstore_conformance"
"""Metadata key tagging every document the harness writes."""


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
        self.deadline: float | None = None
        """When the check's (scaled) time budget ends (``time.monotonic()``), set by the runner."""

    # -- addressing -------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of an API path (``/v1/health`` -> ``http://host:port/v1/health``)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.target.url.rstrip("/") + "/" + path.lstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """``{}`` or ``{"Authorization": "Bearer T"}``."""
        return {"Authorization": f"Bearer {self.target.token}"} if self.target.token else {}

    def limit(self, path: str) -> int:
        """A positive integer of ``limits`` by dotted path (``"metadata.max_depth"``);
        SpecError when the spec does not state it (never a default)."""
        return limit_value(self.limits, path)

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

    def tagged_body(
        self,
        text: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        """A POST body of this check's: text (a unique one unless given), metadata with the
        conformance tag added, and the timestamp when given."""
        body: dict[str, Any] = {"text": text if text is not None else self.unique_text(),
                                "metadata": {**(metadata or {}), CONFORMANCE_KEY: self.tag()}}
        if timestamp is not None:
            body["timestamp"] = timestamp
        return body

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
        """Send a request; a 429 ``rate-limited`` answer is retried after its Retry-After
        (with or without the token: a 429 is the deployment's right, never evidence).

        ``auth=False`` sends no Authorization header even when the run has a token.
        Extra keyword arguments go to ``httpx.AsyncClient.request``.
        """
        if not auth:
            headers = httpx.Headers(kwargs.pop("headers", None) or {})
            kwargs["headers"] = headers
        deadline = time.monotonic() + self.rate_limit_patience()
        while True:
            if auth:
                response = await self._send(method, path, **kwargs)
            else:
                response = await self._without_auth(method, path, **kwargs)
            if not retry_rate_limited or not http.rate_limited(response):
                return response
            wait = http.retry_after_wait(response)
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
        body = self.tagged_body(text, metadata, timestamp)
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

    def time_left(self) -> float:
        """Seconds until the check's budget ends (infinite when the runner set none)."""
        if self.deadline is None:
            return math.inf
        return self.deadline - time.monotonic()

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


