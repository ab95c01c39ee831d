# SPDX-License-Identifier: GPL-3.0-or-later
"""The app factory: ``create_app(settings)`` builds the Falcon ASGI app of one worker process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import falcon
import falcon.asgi
from bson.codec_options import DatetimeConversion
from falcon.routing import CompiledRouter
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from . import problems
from .guard import Guard
from .logs import install_redaction
from .methods import UnknownMethods
from .metrics import Metrics
from .repeated import RepeatedParameters
from .resources import api
from .security.auth import AuthMiddleware
from .security.client_ip import Network, client_ip, parse_networks
from .security.cors import CORS
from .security.ratelimit import RateLimitMiddleware
from .settings import Settings
from .store.documents import Store
from .stream.asgi import StreamingApp

if TYPE_CHECKING:
    from .search.index import VectorIndex

Hook = Callable[[], Awaitable[None]]
Document = dict[str, Any]
log = logging.getLogger("dualstore.app")
DEFAULT_DATABASE = "dualstore"
MAINTENANCE_SECONDS = 5.0
SAVE_SECONDS = 60.0
PING_TIMEOUT_SECONDS = 2.0


@dataclass
class AppState:
    """Everything one worker process shares between requests."""

    settings: Settings
    metrics: Metrics
    client: AsyncMongoClient[Document]
    database: AsyncDatabase[Document]
    store: Store
    indexes: dict[str, VectorIndex] = field(default_factory=dict)
    startup_hooks: list[Hook] = field(default_factory=list)
    """Run in order after the store is ready (the stream registers its tailers here)."""
    shutdown_hooks: list[Hook] = field(default_factory=list)
    """Run in reverse order at shutdown, before the database client closes."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    swept_elsewhere: set[str] = field(default_factory=set)
    """Collections whose legacy documents a stream tailer adopts (its own sweep, woken by
    the change feed): the maintenance loop leaves them alone."""
    proxies: tuple[Network, ...] = ()
    started: bool = False
    request_client: AsyncMongoClient[Document] | None = None
    """The client of the request path (every operation bounded); ``store`` uses it."""

    def client_ip(self, req: falcon.asgi.Request) -> str:
        """The client address (X-Forwarded-For only from TRUSTED_PROXIES)."""
        return client_ip(req, self.proxies)

    async def ping(self) -> bool:
        """True if the database answers a ping within a short timeout."""
        try:
            await asyncio.wait_for(self.client.admin.command("ping"), PING_TIMEOUT_SECONDS)
        except (TimeoutError, PyMongoError, OSError):
            return False
        return True

    async def start(self) -> None:
        """Indexes, legacy adoption, vector indexes, then the registered startup hooks."""
        for name in self.settings.collections:  # every series exists from the start
            self.metrics.open_streams.labels(name)
            self.metrics.events_sent.labels(name, "insert")
            self.metrics.events_sent.labels(name, "heartbeat")
        await self._prepare_store()
        await self._open_indexes()
        for hook in self.startup_hooks:
            await hook()
        self.tasks.append(asyncio.create_task(self._maintain(), name="dualstore-maintenance"))
        self.started = True

    async def stop(self) -> None:
        """Stop background work, run shutdown hooks, save indexes, close the client."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for hook in reversed(self.shutdown_hooks):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        for index in self.indexes.values():
            try:
                await index.save()
            except Exception:
                log.exception("saving a vector index failed")
        await self.client.close()
        if self.request_client is not None:
            await self.request_client.close()

    async def _prepare_store(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                await self.store.ensure_indexes()
                for collection in self.store.collections.values():
                    await collection.adopt_legacy()
                return
            except PyMongoError as error:
                if time.monotonic() > deadline:
                    raise
                log.warning("database not ready (%s); retrying", error)
                await asyncio.sleep(1)

    async def _open_indexes(self) -> None:
        try:
            from .search.embedders import embedder_from_settings
            from .search.index import VectorIndex
        except ImportError:
            log.warning("vector search is not available (search package missing)")
            return
        embedder = embedder_from_settings(self.settings.embedder, self.settings.embedding_dim)
        for name in self.settings.collections:
            index = VectorIndex(
                self.database[name],
                embedder,
                self.settings.data_dir / "index" / name,
                space=self.settings.vector_metric,
                gap_timeout=self.settings.gap_timeout_seconds,
            )
            await index.open()
            self.indexes[name] = index
            self.metrics.index_size.labels(name).set(len(index))

    async def _maintain(self) -> None:
        """Every few seconds adopt legacy documents (of collections no tailer sweeps) and
        catch indexes up; save them now and then (a lost snapshot only costs a catch-up
        from the database on start)."""
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            save = time.monotonic() - last_save >= SAVE_SECONDS
            try:
                for name, collection in self.store.collections.items():
                    if name not in self.swept_elsewhere:
                        await collection.adopt_legacy()
                    index = self.indexes.get(name)
                    if index is not None:
                        await index.catch_up()
                        if save and index.dirty:
                            await index.save()
                        self.metrics.index_size.labels(name).set(len(index))
                if save:
                    last_save = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("maintenance pass failed", exc_info=True)


class Lifespan:
    """ASGI lifespan: start and stop the state with the worker."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self.state.start()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self.state.stop()


class RequestMetrics:
    """Count requests by route template and status; time them; optional worker header."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.pid = str(os.getpid())

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.started = time.perf_counter()

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        route = req.uri_template or "unmatched"
        status = str(resp.status_code)
        metrics = self.state.metrics
        metrics.requests.labels(route, req.method, status).inc()
        started = getattr(req.context, "started", None)
        if started is not None:
            metrics.latency.labels(route).observe(time.perf_counter() - started)
        if self.state.settings.debug_headers:
            resp.set_header("X-Dualstore-Worker", self.pid)


class StreamUnavailable:
    """Placeholder stream endpoint while the stream package is missing: 503 problem."""

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, collection: str
    ) -> None:
        raise problems.Problem("unavailable", "Streaming is not available on this server.")


class UIDisabled:
    """/v1/ui/ when the deployment does not enable the demo page: 404 problem."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise problems.Problem("not-found", "The demo page is not enabled on this deployment.")

    async def on_get_file(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ) -> None:
        await self.on_get(req, resp)


def _filter_parser() -> Callable[[str], Document] | None:
    try:
        from .store import filters
    except ImportError:
        return None

    def parse(encoded: str) -> Document:
        try:
            query: Document = filters.parse(encoded)
        except filters.FilterError as error:
            raise problems.Problem("invalid-filter", str(error)) from None
        return query

    return parse


def _stream_resource(state: AppState) -> object:
    """The stream engineer's StreamResource wired to this state (hooks registered)."""
    try:
        from .resources.stream import StreamResource
        from .stream.service import StreamConfig, StreamService
    except ImportError:
        log.warning("streaming is not available (stream package missing)")
        return StreamUnavailable()
    settings = state.settings
    service = StreamService(
        state.database,
        list(settings.collections),
        StreamConfig(
            heartbeat_seconds=settings.sse_heartbeat_seconds,
            retry_ms=settings.sse_retry_ms,
            cap_per_ip=settings.stream_cap_per_ip,
            gap_timeout_seconds=settings.gap_timeout_seconds,
            subscriber_queue_size=settings.subscriber_queue_size,
        ),
    )
    service.slots.operation_timeout = settings.database_timeout_seconds
    for name, tailer in service.tailers.items():
        if name in state.store:
            # This worker's own acknowledged inserts reach its subscribers at once, and its
            # inserts are numbered after what the tailer has published (no head read when
            # another worker wrote last).
            batcher = state.store[name].batcher
            batcher.on_committed = tailer.committed
            batcher.known_head = tailer.published_head
    state.swept_elsewhere.update(service.tailers)
    state.startup_hooks.append(service.start)
    state.shutdown_hooks.append(service.stop)
    return StreamResource(
        service,
        parse_filter=_filter_parser(),
        client_ip=state.client_ip,
        metrics=state.metrics,
    )


def build_state(settings: Settings) -> AppState:
    """The per-process state (database client created, not yet connected)."""
    if not settings.mongodb_uri:
        raise ValueError("MONGODB_URI is required to build the app (dualstore serve sets it)")
    options: dict[str, Any] = {}
    query = urlsplit(settings.mongodb_uri).query.lower()
    if not any(name in query for name in ("journal=", "w=", "wtimeoutms=")):
        # A 201 means the document is on disk: acknowledged writes survive a crash of the
        # database (without it the embedded daemon lost the last write on SIGKILL).
        options["journal"] = True
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        datetime_conversion=DatetimeConversion.DATETIME_AUTO,
        serverSelectionTimeoutMS=5000,
        appname="dualstore-reference",
        **options,
    )
    database = client.get_default_database(DEFAULT_DATABASE)
    if "timeoutms=" not in query:
        # Client-side operation timeout (CSOT): every operation of the request path, from
        # server selection to the reply, ends within this bound (then 503 + Retry-After).
        # Streams and the vector index keep the first client: their cursors live long.
        options["timeoutMS"] = round(settings.database_timeout_seconds * 1000)
    request_client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        datetime_conversion=DatetimeConversion.DATETIME_AUTO,
        appname="dualstore-reference",
        **options,
    )
    request_database = request_client.get_default_database(DEFAULT_DATABASE)
    return AppState(
        settings=settings,
        metrics=Metrics(),
        client=client,
        database=database,
        store=Store(request_database, settings.collections),
        proxies=parse_networks(settings.trusted_proxies),
        request_client=request_client,
    )


def create_app(settings: Settings) -> falcon.asgi.App[Any, Any]:
    """The ASGI app of one worker: middleware, routes, problem+json errors."""
    state = build_state(settings)
    middleware: list[Any] = [Lifespan(state), RequestMetrics(state)]
    if settings.cors_origins:
        middleware.append(CORS(settings.cors_origins))
    if settings.rate_limit_enabled:
        middleware.append(
            RateLimitMiddleware(
                settings.rate_limit_per_second, settings.rate_limit_burst, state.proxies
            )
        )
    middleware.append(AuthMiddleware(settings.auth_tokens))
    router = CompiledRouter()
    middleware.append(UnknownMethods(router))
    middleware.append(RepeatedParameters(settings.collections))
    app = StreamingApp(middleware=middleware, router=router)  # falcon.asgi.App + send in scope
    app.req_options.strip_url_path_trailing_slash = False
    problems.install(app, stream_cap=settings.stream_cap_per_ip)
    app.add_route("/v1/health", api.HealthResource(state))
    app.add_route("/v1/collections", api.CollectionsResource(state))
    app.add_route("/v1/{collection}", api.CollectionResource(state))
    app.add_route("/v1/{collection}/recent", api.RecentResource(state))
    app.add_route("/v1/{collection}/search", api.SearchResource(state))
    app.add_route("/v1/{collection}/stream", _stream_resource(state))
    app.add_route("/v1/{collection}/{id}", api.DocumentResource(state))
    app.add_route("/metrics", api.MetricsResource(state))
    ui_registered = False
    if settings.ui_enabled:
        try:
            from .resources import ui
        except ImportError:
            log.warning("UI_ENABLED=1 but the UI module is missing")
        else:
            ui.register(app, state)
            ui_registered = True
    if not ui_registered:
        app.add_route("/v1/ui/", UIDisabled())
        app.add_route("/v1/ui/{name}", UIDisabled(), suffix="file")
    return app


def configure_logging() -> None:
    """Logging as the server runs it: LOG_LEVEL, and credentials redacted in every handler.

    Other entry points serving the reference app (the mutants) call this, and wrap their
    app in :class:`~dualstore_reference.guard.Guard` as :func:`asgi_from_env` does.
    """
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    install_redaction()


def asgi_from_env() -> Guard:
    """gunicorn entry point (``dualstore_reference.app:asgi_from_env()``): settings from env,
    wrapped by the guard (requests Falcon must not see become problems)."""
    configure_logging()
    app: Any = create_app(Settings.from_env())  # an ASGI callable (Falcon's types are narrower)
    return Guard(app)
