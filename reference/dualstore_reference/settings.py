# SPDX-License-Identifier: GPL-3.0-or-later
"""Server settings: environment variables (names in docs/architecture.md), CLI flags override."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dualstore_spec import facts

COLLECTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DEFAULT_COLLECTIONS = ("session_messages", "agent_tasks", "opencode_events")
RESERVED_NAMES = frozenset({"health", "collections", "ui"})
"""Path segments under /v1 that are not collections (the spec's CollectionName excludes them)."""
VECTOR_METRICS = ("cosine", "ip", "l2")


T = TypeVar("T")


def spec_default(read: Callable[[facts.Facts], T]) -> T:
    """A field whose default is a spec fact (``dualstore_spec.facts``), read when built."""
    return field(default_factory=lambda: read(facts.current()))


class SettingsError(ValueError):
    """A setting has a value the server cannot use (message names the variable)."""


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with; build it with :meth:`from_env`."""

    host: str = "127.0.0.1"
    port: int = 4261
    workers: int = 2
    auth_tokens: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    collections: tuple[str, ...] = DEFAULT_COLLECTIONS
    mongodb_uri: str | None = None
    data_dir: Path = field(default_factory=lambda: Path("dualstore-data"))
    sse_heartbeat_seconds: float = spec_default(lambda spec: spec.heartbeat.default_seconds)
    sse_retry_ms: int = spec_default(lambda spec: spec.retry_ms_default)
    stream_cap_per_ip: int = spec_default(lambda spec: spec.stream_cap_per_ip)
    rate_limit_per_second: float = spec_default(lambda spec: spec.rate_limit.requests_per_second)
    rate_limit_burst: int = spec_default(lambda spec: spec.rate_limit.burst)
    trusted_proxies: tuple[str, ...] = ()
    gap_timeout_seconds: float = 5.0
    subscriber_queue_size: int = spec_default(lambda spec: spec.subscriber_queue_default)
    embedder: str = "hashing"
    embedding_dim: int = 256
    vector_metric: str = "cosine"
    """hnswlib space: cosine (default), ip (inner product) or l2 (scores are then -distance)."""
    ui_enabled: bool = False
    debug_headers: bool = False
    """Test-only: add ``X-Dualstore-Worker: <pid>`` to responses (DUALSTORE_DEBUG_HEADERS=1)."""
    max_body_bytes: int = spec_default(lambda spec: spec.max_body_bytes)
    head_timeout_seconds: float = 10.0
    """A connection must deliver a complete request head this soon after it opens (or
    after its first byte following an idle keep-alive), then its body within the same
    time again; else it is closed."""
    keepalive_seconds: float = 5.0
    """An idle keep-alive connection is closed after this long without a request."""
    max_connections_per_worker: int = 4096
    """Open connections per worker; beyond it requests get 503 problem+json."""
    database_timeout_seconds: float = 5.0
    """Bound on every database operation of a request; past it 503 with Retry-After."""

    @property
    def auth_required(self) -> bool:
        """True when at least one bearer token is configured."""
        return bool(self.auth_tokens)

    @property
    def rate_limit_enabled(self) -> bool:
        """RATE_LIMIT_BURST=0 (or a rate of 0) disables rate limiting."""
        return self.rate_limit_burst > 0 and self.rate_limit_per_second > 0

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Settings from env (default: os.environ); keyword overrides (CLI flags) win.

        Overrides whose value is None are ignored, so argparse defaults of None fall
        through to the environment.
        """
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, (parse, variable) in _PARSERS.items():
            raw = source.get(variable)
            if name in _FAIL_CLOSED and raw is not None:
                values[name] = token_list(raw, variable)
                continue
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw.strip())
            except (ValueError, TypeError) as error:
                raise SettingsError(f"{variable}: {error}") from None
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in _FIELD_NAMES:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = value
        settings = cls(**values)
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for worker processes)."""
        env: dict[str, str] = {}
        for name, (_, variable) in _PARSERS.items():
            value = getattr(self, name)
            if value is None or (name in _FAIL_CLOSED and not value):
                continue  # auth off is the variable unset, never set to ""
            if isinstance(value, tuple):
                env[variable] = ",".join(value)
            elif isinstance(value, bool):
                env[variable] = "1" if value else "0"
            else:
                env[variable] = str(value)
        return env

    def validate(self) -> None:
        """Raise SettingsError naming the first unusable value."""
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"PORT: must be 0..65535, got {self.port}")
        if not 1 <= self.workers <= 64:
            raise SettingsError(f"WORKERS: must be 1..64, got {self.workers}")
        if not self.collections:
            raise SettingsError("COLLECTIONS: at least one collection is needed")
        for name in self.collections:
            if not COLLECTION_PATTERN.match(name):
                raise SettingsError(
                    f"COLLECTIONS: {name!r} does not match {COLLECTION_PATTERN.pattern}"
                )
            if name in RESERVED_NAMES:
                raise SettingsError(f"COLLECTIONS: {name!r} is reserved (it names an API path)")
            if name.startswith("dualstore_"):
                raise SettingsError(f"COLLECTIONS: {name!r} uses the reserved prefix dualstore_")
        if len(set(self.collections)) != len(self.collections):
            raise SettingsError("COLLECTIONS: names must be unique")
        for token in self.auth_tokens:
            if not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token):
                raise SettingsError("AUTH_TOKEN: tokens must be RFC 6750 token68 strings")
        for origin in self.cors_origins:
            if origin == "*":
                continue
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise SettingsError(
                    f"CORS_ORIGIN: {origin!r} is not an origin (scheme://host[:port])"
                )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingsError(f"TRUSTED_PROXIES: {proxy!r} is not an IP address") from None
        _positive("SSE_HEARTBEAT_SECONDS", self.sse_heartbeat_seconds)
        _positive("SSE_RETRY_MS", self.sse_retry_ms)
        _positive("STREAM_CAP_PER_IP", self.stream_cap_per_ip)
        _positive("GAP_TIMEOUT_SECONDS", self.gap_timeout_seconds)
        _positive("SUBSCRIBER_QUEUE_SIZE", self.subscriber_queue_size)
        _positive("EMBEDDING_DIM", self.embedding_dim)
        if self.vector_metric not in VECTOR_METRICS:
            raise SettingsError(
                f"VECTOR_METRIC: one of {', '.join(VECTOR_METRICS)}, got {self.vector_metric!r}"
            )
        _positive("HEAD_TIMEOUT_SECONDS", self.head_timeout_seconds)
        _positive("KEEPALIVE_SECONDS", self.keepalive_seconds)
        _positive("MAX_CONNECTIONS_PER_WORKER", self.max_connections_per_worker)
        _positive("DATABASE_TIMEOUT_SECONDS", self.database_timeout_seconds)
        if self.rate_limit_per_second < 0:
            raise SettingsError("RATE_LIMIT_PER_SECOND: must be >= 0")
        if self.rate_limit_burst < 0:
            raise SettingsError("RATE_LIMIT_BURST: must be >= 0")
        if self.mongodb_uri is not None and not self.mongodb_uri.startswith(
            ("mongodb://", "mongodb+srv://")
        ):
            raise SettingsError("MONGODB_URI: must start with mongodb:// or mongodb+srv://")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated)."""
        settings = dataclasses.replace(self, **changes)
        settings.validate()
        return settings


def _positive(variable: str, value: float) -> None:
    if value <= 0:
        raise SettingsError(f"{variable}: must be > 0, got {value}")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def token_list(raw: str, variable: str) -> tuple[str, ...]:
    """A secret list that fails closed: set but empty, or any empty entry, is an error.

    Authentication is off only when the variable is unset (and no flag is given), so a
    typo such as ``AUTH_TOKEN=","`` or ``--auth-token ""`` can never switch it off.
    """
    parts = tuple(part.strip() for part in raw.split(","))
    if not any(parts):
        raise SettingsError(
            f"{variable}: set but empty; unset it to run without authentication"
        )
    if not all(parts):
        raise SettingsError(f"{variable}: an entry of the comma-separated list is empty")
    return parts


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None


def _float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"must be a finite number, got {raw!r}")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 0/1/true/false, got {raw!r}")


_PARSERS: dict[str, tuple[Any, str]] = {
    "host": (str, "HOST"),
    "port": (_int, "PORT"),
    "workers": (_int, "WORKERS"),
    "auth_tokens": (_csv, "AUTH_TOKEN"),
    "cors_origins": (_csv, "CORS_ORIGIN"),
    "collections": (_csv, "COLLECTIONS"),
    "mongodb_uri": (str, "MONGODB_URI"),
    "data_dir": (Path, "DATA_DIR"),
    "sse_heartbeat_seconds": (_float, "SSE_HEARTBEAT_SECONDS"),
    "sse_retry_ms": (_int, "SSE_RETRY_MS"),
    "stream_cap_per_ip": (_int, "STREAM_CAP_PER_IP"),
    "rate_limit_per_second": (_float, "RATE_LIMIT_PER_SECOND"),
    "rate_limit_burst": (_int, "RATE_LIMIT_BURST"),
    "trusted_proxies": (_csv, "TRUSTED_PROXIES"),
    "gap_timeout_seconds": (_float, "GAP_TIMEOUT_SECONDS"),
    "subscriber_queue_size": (_int, "SUBSCRIBER_QUEUE_SIZE"),
    "embedder": (str, "EMBEDDER"),
    "embedding_dim": (_int, "EMBEDDING_DIM"),
    "vector_metric": (str, "VECTOR_METRIC"),
    "ui_enabled": (_bool, "UI_ENABLED"),
    "debug_headers": (_bool, "DUALSTORE_DEBUG_HEADERS"),
    "head_timeout_seconds": (_float, "HEAD_TIMEOUT_SECONDS"),
    "keepalive_seconds": (_float, "KEEPALIVE_SECONDS"),
    "max_connections_per_worker": (_int, "MAX_CONNECTIONS_PER_WORKER"),
    "database_timeout_seconds": (_float, "DATABASE_TIMEOUT_SECONDS"),
}
_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))
_FAIL_CLOSED = {"auth_tokens": "AUTH_TOKEN"}
"""Security settings whose empty value is refused instead of meaning "off"."""
