# SPDX-License-Identifier: GPL-3.0-or-later
"""The deployment profile: what a deployment configured where the spec lets it choose."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dualstore_spec
import jsonschema
import yaml
from dualstore_spec import facts as spec_facts
from dualstore_spec.facts import Facts, RateLimit

PROFILE_KEYS = (
    "stream_cap_per_ip", "rate_limit", "heartbeat_seconds", "retry_ms", "cors_origins",
    "subscriber_queue_size",
)
"""Every key a profile file may hold (spec/meta-schemas/deployment-profile.schema.json)."""

PROFILE_SCHEMA = "deployment-profile.schema.json"
"""The spec's meta-schema every profile file is validated against."""


class ProfileError(Exception):
    """A profile file or flag that cannot be used (reported in one line, exit code 2)."""


@dataclass(frozen=True)
class DeploymentProfile:
    """Configurable values of the deployment under test; defaults come from the spec."""

    stream_cap_per_ip: int
    rate_limit: RateLimit | None
    """None: the deployment declares that it does not rate limit."""
    heartbeat_seconds: float
    retry_ms: int
    cors_origins: tuple[str, ...]
    subscriber_queue_size: int
    declared: frozenset[str] = field(default_factory=frozenset)
    """Keys the user declared (flags or file); the others are the spec's defaults."""
    sources: tuple[str, ...] = ()
    """Where declared values came from, in order of precedence (lowest first)."""

    def as_dict(self) -> dict[str, Any]:
        """The profile as the report records it."""
        rate = self.rate_limit
        return {
            "stream_cap_per_ip": self.stream_cap_per_ip,
            "rate_limit": None if rate is None else {
                "requests_per_second": rate.requests_per_second, "burst": rate.burst},
            "heartbeat_seconds": self.heartbeat_seconds,
            "retry_ms": self.retry_ms,
            "cors_origins": list(self.cors_origins),
            "subscriber_queue_size": self.subscriber_queue_size,
            "declared": sorted(self.declared),
            "sources": list(self.sources) or ["spec defaults"],
        }


def spec_defaults(facts: Facts | None = None) -> DeploymentProfile:
    """The profile of a deployment that configured nothing: every value from the spec."""
    facts = facts or spec_facts.current()
    return DeploymentProfile(
        stream_cap_per_ip=facts.stream_cap_per_ip,
        rate_limit=facts.rate_limit,
        heartbeat_seconds=facts.heartbeat.default_seconds,
        retry_ms=facts.retry_ms_default,
        cors_origins=(),
        subscriber_queue_size=facts.subscriber_queue_default,
    )


_RATE = re.compile(r"^\s*(?P<rate>[0-9]+(?:\.[0-9]+)?)\s*(?:/\s*(?P<burst>[0-9]+)\s*)?$")


def parse_rate_limit(text: str, facts: Facts | None = None) -> RateLimit | None:
    """``PER_SECOND[/BURST]`` or ``none``; a missing burst keeps the spec's burst/rate ratio."""
    if text.strip().lower() in ("none", "off"):
        return None
    match = _RATE.match(text)
    if not match:
        raise ProfileError(f"--rate-limit must be PER_SECOND[/BURST] or none, got {text!r}")
    rate = float(match["rate"])
    if rate <= 0:
        raise ProfileError(f"--rate-limit: the rate must be positive, got {text!r}")
    if match["burst"] is not None:
        burst = int(match["burst"])
    else:
        default = (facts or spec_facts.current()).rate_limit
        burst = max(1, round(rate * default.burst / default.requests_per_second))
    if burst < 1:
        raise ProfileError(f"--rate-limit: the burst must be at least 1, got {text!r}")
    return RateLimit(requests_per_second=rate, burst=burst)


def is_origin(value: str) -> bool:
    """scheme://host[:port] with nothing after it (what an Origin header carries)."""
    parsed = urlparse(value)
    return (parsed.scheme in ("http", "https") and bool(parsed.netloc)
            and not parsed.path and not parsed.query and not parsed.fragment)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProfileError(f"profile: {name} must be an integer of at least 1, got {value!r}")
    return value


def _positive_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ProfileError(f"profile: {name} must be a positive number, got {value!r}")
    return float(value)


def from_mapping(values: Mapping[str, Any], base: DeploymentProfile,
                 source: str) -> DeploymentProfile:
    """``base`` with the values of a parsed profile file (strictly validated)."""
    unknown = sorted(set(values) - set(PROFILE_KEYS))
    if unknown:
        raise ProfileError(f"profile {source}: unknown key(s) {', '.join(unknown)}; "
                           f"known: {', '.join(PROFILE_KEYS)}")
    changes: dict[str, Any] = {}
    if "stream_cap_per_ip" in values:
        changes["stream_cap_per_ip"] = _positive_int("stream_cap_per_ip",
                                                     values["stream_cap_per_ip"])
    if "rate_limit" in values:
        rate = values["rate_limit"]
        if rate is None:
            changes["rate_limit"] = None
        elif isinstance(rate, Mapping) and set(rate) == {"requests_per_second", "burst"}:
            changes["rate_limit"] = RateLimit(
                requests_per_second=_positive_number("rate_limit.requests_per_second",
                                                     rate["requests_per_second"]),
                burst=_positive_int("rate_limit.burst", rate["burst"]),
            )
        else:
            raise ProfileError("profile: rate_limit must be null or "
                               "{requests_per_second: N, burst: N}")
    if "heartbeat_seconds" in values:
        changes["heartbeat_seconds"] = _positive_number("heartbeat_seconds",
                                                        values["heartbeat_seconds"])
    if "retry_ms" in values:
        retry = values["retry_ms"]
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ProfileError(f"profile: retry_ms must be a non-negative integer, got {retry!r}")
        changes["retry_ms"] = retry
    if "cors_origins" in values:
        origins = values["cors_origins"]
        if not isinstance(origins, list) or not all(
                isinstance(o, str) and is_origin(o) for o in origins):
            raise ProfileError("profile: cors_origins must be a list of origins like "
                               "https://app.example")
        changes["cors_origins"] = tuple(origins)
    if "subscriber_queue_size" in values:
        changes["subscriber_queue_size"] = _positive_int("subscriber_queue_size",
                                                         values["subscriber_queue_size"])
    return replace(base, **changes, declared=base.declared | frozenset(changes),
                   sources=(*base.sources, source))


def load_file(path: str | Path, base: DeploymentProfile) -> DeploymentProfile:
    """``base`` overridden by a YAML or JSON profile file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"--profile: cannot read {str(path)!r}: {error.strerror}") from error
    try:
        values = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ProfileError(f"--profile {str(path)!r} is not valid YAML/JSON: "
                           f"{str(error).splitlines()[0]}") from error
    if not isinstance(values, Mapping):
        raise ProfileError(f"--profile {str(path)!r} must hold a mapping of profile keys")
    schema = dualstore_spec.meta_schema(PROFILE_SCHEMA)
    invalid = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(values))
    if invalid is not None:
        where = "/".join(str(part) for part in invalid.absolute_path) or "(top level)"
        raise ProfileError(f"--profile {str(path)!r}: {where}: {invalid.message} "
                           f"(spec/meta-schemas/{PROFILE_SCHEMA})")
    return from_mapping(values, base, str(path))


def limits_view(profile: DeploymentProfile, facts: Facts | None = None) -> dict[str, Any]:
    """The spec's limits as checks read them (``x-dualstore-limits``), with the profile's
    configured values in place of the spec's defaults."""
    document = dualstore_spec.openapi()
    limits = document.get("x-dualstore-limits")
    if not isinstance(limits, Mapping):
        raise spec_facts.SpecError("the spec has no x-dualstore-limits")
    view: dict[str, Any] = json.loads(json.dumps(limits))  # a deep, plain copy
    view["stream_cap_per_ip"] = profile.stream_cap_per_ip
    rate = profile.rate_limit
    if rate is None:
        view["rate_limit"] = None
    else:
        view["rate_limit"] = {**view.get("rate_limit", {}),
                              "requests_per_second": rate.requests_per_second,
                              "burst": rate.burst}
    view["heartbeat_seconds"] = profile.heartbeat_seconds
    view["retry_ms"] = profile.retry_ms
    view["subscriber_queue_size"] = profile.subscriber_queue_size
    return view


def from_arguments(args: Any, cors_origin: str | None) -> DeploymentProfile:
    """The spec's defaults, then the file named by ``args.profile``, then the flags
    (``stream_cap``, ``rate_limit``, ``heartbeat_seconds``) and the allowed CORS origin."""
    profile = spec_defaults()
    if getattr(args, "profile", None):
        profile = load_file(args.profile, profile)
    flags: dict[str, Any] = {}
    if getattr(args, "stream_cap", None) is not None:
        flags["stream_cap_per_ip"] = args.stream_cap
    if getattr(args, "rate_limit", None) is not None:
        rate = parse_rate_limit(args.rate_limit)
        flags["rate_limit"] = None if rate is None else {
            "requests_per_second": rate.requests_per_second, "burst": rate.burst}
    if getattr(args, "heartbeat_seconds", None) is not None:
        flags["heartbeat_seconds"] = args.heartbeat_seconds
    if cors_origin and cors_origin not in profile.cors_origins:
        flags["cors_origins"] = [cors_origin, *profile.cors_origins]
    return from_mapping(flags, profile, "flags") if flags else profile
