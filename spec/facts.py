# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed accessors for every number, name and pattern the spec states (raise on a missing one)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from dualstore_spec.location import path


class SpecError(Exception):
    """A fact the code needs is missing from the spec files, or has the wrong type."""


def _node(document: object, pointer: str) -> object:
    node = document
    walked: list[str] = []
    for part in pointer.split("/"):
        walked.append(part)
        if not isinstance(node, Mapping) or part not in node:
            raise SpecError(f"the spec has no {'/'.join(walked)}")
        node = node[part]
    return node


def _int(document: object, pointer: str) -> int:
    value = _node(document, pointer)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"the spec's {pointer} is not an integer: {value!r}")
    return value


def _number(document: object, pointer: str) -> float:
    value = _node(document, pointer)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SpecError(f"the spec's {pointer} is not a number: {value!r}")
    return float(value)


def _str(document: object, pointer: str) -> str:
    value = _node(document, pointer)
    if not isinstance(value, str):
        raise SpecError(f"the spec's {pointer} is not a string: {value!r}")
    return value


def _str_list(document: object, pointer: str) -> tuple[str, ...]:
    value = _node(document, pointer)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"the spec's {pointer} is not a list of strings: {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Range:
    """An integer parameter's bounds and default."""

    min: int
    max: int
    default: int


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: refill rate per second and bucket size."""

    requests_per_second: float
    burst: int


@dataclass(frozen=True)
class FilterBounds:
    """Bounds of the filter language."""

    max_encoded_length: int
    max_depth: int
    max_conditions: int
    max_in_items: int
    max_path_segments: int


@dataclass(frozen=True)
class RequestSize:
    """HTTP-020: the request line and header section every server accepts at least."""

    min_request_line_octets: int
    min_header_section_octets: int


@dataclass(frozen=True)
class Heartbeat:
    """Heartbeat interval default and the judge's tolerance on gaps."""

    default_seconds: float
    tolerance_absolute_seconds: float
    tolerance_relative: float

    def tolerance(self, interval: float) -> float:
        """max(absolute, relative x H): how far a gap may stray from H."""
        return max(self.tolerance_absolute_seconds, self.tolerance_relative * interval)


@dataclass(frozen=True)
class ProblemType:
    """One problem type: its URN, HTTP status and title."""

    type: str
    status: int
    title: str

    @property
    def slug(self) -> str:
        """The last part of the URN (``invalid-filter``)."""
        return self.type.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Facts:
    """Everything numeric or enumerated that the reference, harness and load test read."""

    version: str
    max_body_bytes: int
    stream_cap_per_ip: int
    rate_limit: RateLimit
    recent_limit: Range
    search_k: Range
    search_q_max_length: int
    filter: FilterBounds
    metadata_max_depth: int
    metadata_max_abs_number: int
    request_size: RequestSize
    heartbeat: Heartbeat
    retry_ms_default: int
    open_within_seconds: float
    slot_release_within_seconds: float
    latency_target_seconds: float
    subscriber_queue_default: int
    event_id_pattern: str
    problem_types: Mapping[str, ProblemType]
    """Keyed by slug."""
    cors_allow_headers: tuple[str, ...]
    cors_expose_headers: tuple[str, ...]
    precedence: Mapping[str, tuple[str, ...]]
    """HTTP-015: each problem slug -> the slugs it wins over (x-dualstore-http.precedence.wins)."""

    def problem(self, slug: str) -> ProblemType:
        """The problem type with this slug; SpecError when the spec has none."""
        try:
            return self.problem_types[slug]
        except KeyError:
            raise SpecError(f"the spec lists no problem type {slug!r}") from None

    @property
    def problem_prefix(self) -> str:
        """The URN prefix every problem type shares (``urn:dualstore:problem:``)."""
        first = next(iter(self.problem_types.values()))
        return first.type[: len(first.type) - len(first.slug)]


def _load(folder: Path, name: str) -> object:
    text = (folder / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


def read(folder: Path) -> Facts:
    """The facts of the spec files in ``folder``; SpecError on anything missing."""
    openapi = _load(folder, "openapi.yaml")
    contract = _load(folder, "sse-contract.yaml")
    limits = "x-dualstore-limits"
    problems_node = _node(openapi, "x-dualstore-problem-types")
    if not isinstance(problems_node, Mapping) or not problems_node:
        raise SpecError("the spec's x-dualstore-problem-types is empty")
    problems: dict[str, ProblemType] = {}
    for urn in problems_node:
        entry = ProblemType(
            type=str(urn),
            status=_int(problems_node, f"{urn}/status"),
            title=_str(problems_node, f"{urn}/title"),
        )
        problems[entry.slug] = entry
    return Facts(
        version=_str(openapi, "info/version"),
        max_body_bytes=_int(openapi, f"{limits}/max_body_bytes"),
        stream_cap_per_ip=_int(openapi, f"{limits}/stream_cap_per_ip"),
        rate_limit=RateLimit(
            requests_per_second=_number(openapi, f"{limits}/rate_limit/requests_per_second"),
            burst=_int(openapi, f"{limits}/rate_limit/burst"),
        ),
        recent_limit=Range(*(_int(openapi, f"{limits}/recent_limit/{k}")
                             for k in ("min", "max", "default"))),
        search_k=Range(*(_int(openapi, f"{limits}/search_k/{k}")
                         for k in ("min", "max", "default"))),
        search_q_max_length=_int(openapi, f"{limits}/search_q_max_length"),
        filter=FilterBounds(*(_int(openapi, f"{limits}/filter/{k}") for k in (
            "max_encoded_length", "max_depth", "max_conditions", "max_in_items",
            "max_path_segments"))),
        metadata_max_depth=_int(openapi, f"{limits}/metadata/max_depth"),
        metadata_max_abs_number=_int(openapi, f"{limits}/metadata/max_abs_number"),
        request_size=RequestSize(
            min_request_line_octets=_int(openapi, f"{limits}/request_size/min_request_line_octets"),
            min_header_section_octets=_int(
                openapi, f"{limits}/request_size/min_header_section_octets"),
        ),
        heartbeat=Heartbeat(
            default_seconds=_number(contract, "x-heartbeat/default_seconds"),
            tolerance_absolute_seconds=_number(contract, "x-heartbeat/tolerance_absolute_seconds"),
            tolerance_relative=_number(contract, "x-heartbeat/tolerance_relative"),
        ),
        retry_ms_default=_int(contract, "x-on-open/retry_ms"),
        open_within_seconds=_number(contract, "x-on-open/within_seconds"),
        slot_release_within_seconds=_number(contract, "x-connection-cap/release_within_seconds"),
        latency_target_seconds=_number(contract, "x-delivery/latency_target_seconds"),
        subscriber_queue_default=_int(contract, "x-slow-consumer/buffer_events_default"),
        event_id_pattern=_str(contract, "x-event-id/pattern"),
        problem_types=problems,
        cors_allow_headers=_str_list(openapi, "x-dualstore-cors/allow-headers"),
        cors_expose_headers=_str_list(openapi, "x-dualstore-cors/expose-headers"),
        precedence=_precedence(openapi, problems),
    )


def _precedence(openapi: object, problems: Mapping[str, ProblemType]
                ) -> dict[str, tuple[str, ...]]:
    """x-dualstore-http.precedence.wins, every slug checked against the problem types."""
    wins = _node(openapi, "x-dualstore-http/precedence/wins")
    if not isinstance(wins, Mapping) or not wins:
        raise SpecError("the spec's x-dualstore-http/precedence/wins is empty")
    table = {str(winner): _str_list(wins, str(winner)) for winner in wins}
    for slug in {*table, *(s for losers in table.values() for s in losers)}:
        if slug not in problems:
            raise SpecError(f"x-dualstore-http/precedence names no problem type {slug!r}")
    return table


@functools.cache
def _cached(folder: str) -> Facts:
    return read(Path(folder))


def current() -> Facts:
    """The facts of the installed spec (or of ``$DUALSTORE_SPEC_DIR`` when set); cached."""
    return _cached(str(path()))


def forget() -> None:
    """Drop the cached facts (``dualstore_spec.forget`` drops everything)."""
    _cached.cache_clear()
