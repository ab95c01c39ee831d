# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare what a client delivered and what the server saw with a scenario's expectation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dualstore_conformance.client_suite.scenarios import Scenario
from dualstore_conformance.client_suite.server import RequestRecord

DUALSTORE_TYPES = ("insert", "heartbeat")
"""The only event types a DualStore API client hands to its caller (SSE-FRAME-009)."""


@dataclass(frozen=True)
class Observation:
    """Everything seen in one scenario run."""

    profile: str
    events: list[dict[str, Any]]
    """``event`` lines of the adapter, in order."""
    requests: list[RequestRecord]


def _expected_events(scenario: Scenario, profile: str) -> list[dict[str, Any]] | None:
    events: list[dict[str, Any]] | None = scenario.expect.get("events")
    if events is None:
        return None
    if profile == "dualstore":
        return [event for event in events if event["type"] in DUALSTORE_TYPES]
    return list(events)


def _doc_id(event: dict[str, Any]) -> str | None:
    if "doc_id" in event:
        return str(event["doc_id"])
    try:
        value = json.loads(event.get("data", ""))
    except ValueError:
        return None
    return str(value["id"]) if isinstance(value, dict) and "id" in value else None


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _event_difference(expected: dict[str, Any], got: dict[str, Any], profile: str) -> str | None:
    """None when ``got`` matches ``expected``, else what differs."""
    if got.get("type") != expected["type"]:
        return f"type {_short(got.get('type'))}, expected {_short(expected['type'])}"
    data = got.get("data")
    if profile == "dualstore":
        if expected["type"] == "insert":
            want = _doc_id(expected)
            if got.get("doc_id") != want:
                return f"document id {_short(got.get('doc_id'))}, expected {_short(want)}"
    elif "data" in expected and data != expected["data"]:
        return f"data {_short(data)}, expected {_short(expected['data'])}"
    if "data_length" in expected and profile != "dualstore" and (
            not isinstance(data, str) or len(data) != expected["data_length"]):
        length = len(data) if isinstance(data, str) else None
        return f"data length {length}, expected {expected['data_length']}"
    if "data_sha256" in expected and profile != "dualstore" and (
            hashlib.sha256(str(data).encode("utf-8")).hexdigest() != expected["data_sha256"]):
        return "data differs from the long line sent (sha256)"
    if ("last_event_id" in expected and got.get("last_event_id") != expected["last_event_id"]
            and not (profile == "dualstore" and expected["type"] == "heartbeat")):
        return (f"last event id {_short(got.get('last_event_id'))}, "
                f"expected {_short(expected['last_event_id'])}")
    return None


def check_events(scenario: Scenario, seen: Observation) -> list[str]:
    """Delivered events must be exactly the expected ones, in order."""
    expected = _expected_events(scenario, seen.profile)
    if expected is None:
        return []
    got = seen.events
    for index, (want, have) in enumerate(zip(expected, got, strict=False), start=1):
        difference = _event_difference(want, have, seen.profile)
        if difference:
            return [f"event {index}: {difference}"]
    if len(got) < len(expected):
        missing = expected[len(got)]
        label = (_doc_id(missing) if seen.profile == "dualstore"
                 else missing.get("data", f"<{missing.get('data_length', '?')} characters>"))
        return [f"delivered {len(got)} of {len(expected)} expected events; missing next: "
                f"{missing['type']} {_short(label)}"]
    if len(got) > len(expected):
        extra = got[len(expected)]
        return [f"delivered {len(got)} events, expected {len(expected)}; extra: "
                f"{_short(extra.get('type'))} {_short(extra.get('data'))}"]
    return []


def check_connections(scenario: Scenario, seen: Observation) -> list[str]:
    bounds = scenario.expect.get("connections")
    if not bounds:
        return []
    count = len(seen.requests)
    if "min" in bounds and count < bounds["min"]:
        return [f"{count} request(s) reached the server, expected at least {bounds['min']}"]
    if "max" in bounds and count > bounds["max"]:
        return [f"{count} request(s) reached the server, expected at most {bounds['max']}"]
    return []


def _resume_token(record: RequestRecord) -> str | None:
    header = record.header("last-event-id")
    if header:
        return header
    since = [value for value in record.query.get("since", []) if value]
    return since[0] if since else None


def _decode_filter(encoded: str) -> Any:
    padded = encoded + "=" * (-len(encoded) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))


def _token(record: RequestRecord) -> str | None:
    auth = record.header("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    values = record.query.get("access_token", [])
    return values[0] if values else None


def _request_problems(want: dict[str, Any], record: RequestRecord) -> list[str]:
    number = want["connection"]
    problems: list[str] = []
    if "last_event_id" in want:
        header = record.header("last-event-id")
        if want["last_event_id"] is None and header is not None:
            problems.append(f"request {number} sent Last-Event-ID {header!r}, expected none")
        elif want["last_event_id"] is not None and header != want["last_event_id"]:
            problems.append(f"request {number} sent Last-Event-ID {_short(header)}, "
                            f"expected {want['last_event_id']!r}")
    if "resume_token" in want:
        token = _resume_token(record)
        if token != want["resume_token"]:
            problems.append(f"request {number} resumes from {_short(token)} (Last-Event-ID or "
                            f"since), expected {_short(want['resume_token'])}")
    if "path_suffix" in want and not record.path.endswith(want["path_suffix"]):
        problems.append(f"request {number} went to {record.path!r}, expected a path ending "
                        f"{want['path_suffix']!r}")
    if "filter" in want:
        values = record.query.get("filter", [])
        try:
            decoded = _decode_filter(values[0]) if values else None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            decoded = f"<not base64url JSON: {values[0]!r}>"
        if decoded != want["filter"]:
            problems.append(f"request {number} filter decodes to {_short(decoded)}, "
                            f"expected {_short(want['filter'])}")
    if "token" in want and _token(record) != want["token"]:
        problems.append(f"request {number} carried token {_short(_token(record))} "
                        "(Authorization Bearer or access_token), expected the configured one")
    return problems


def check_requests(scenario: Scenario, seen: Observation) -> list[str]:
    problems: list[str] = []
    for want in scenario.expect.get("requests", []):
        number = want["connection"]
        if number > len(seen.requests):
            problems.append(f"request {number} never came ({len(seen.requests)} arrived)")
            continue
        problems.extend(_request_problems(want, seen.requests[number - 1]))
    return problems


def reconnect_delay_ms(requests: list[RequestRecord], before: int) -> float | None:
    """Milliseconds from the end of request ``before - 1`` to the arrival of ``before``."""
    if before > len(requests):
        return None
    previous = requests[before - 2]
    if previous.ended is None:
        return None
    return (requests[before - 1].arrived - previous.ended) * 1000.0


def check_delays(scenario: Scenario, seen: Observation) -> list[str]:
    problems: list[str] = []
    for want in scenario.expect.get("reconnect_delays", []):
        delay = reconnect_delay_ms(seen.requests, want["before"])
        tolerance = want["tolerance_ms"]
        if delay is None:
            problems.append(f"no reconnect (request {want['before']}) was observed")
        elif delay < want["min_ms"] - tolerance:
            problems.append(f"reconnected after {delay:.0f} ms, expected at least "
                            f"{want['min_ms']} ms (tolerance {tolerance} ms)")
        elif "max_ms" in want and delay > want["max_ms"] + tolerance:
            problems.append(f"reconnected after {delay:.0f} ms, expected at most "
                            f"{want['max_ms']} ms (tolerance {tolerance} ms)")
    return problems


def check_backoff(scenario: Scenario, seen: Observation) -> list[str]:
    """Delays after the failed (dropped) attempts: the last must exceed 1.5 x the first."""
    if not scenario.expect.get("backoff_grows"):
        return []
    failed = [index for index, connection in enumerate(scenario.connections, start=1)
              if connection.end == "drop"]
    delays = [reconnect_delay_ms(seen.requests, index + 1) for index in failed]
    known = [delay for delay in delays if delay is not None]
    if len(known) < 2:
        return [f"only {len(known)} reconnect(s) after failed attempts were observed"]
    if not known[-1] > 1.5 * known[0]:
        shown = ", ".join(f"{delay:.0f}" for delay in known)
        return [f"delays after failed attempts did not grow: {shown} ms"]
    return []


def judge(scenario: Scenario, seen: Observation) -> list[str]:
    """Every difference between expectation and observation (empty: the scenario held)."""
    return (check_events(scenario, seen) + check_connections(scenario, seen)
            + check_requests(scenario, seen) + check_delays(scenario, seen)
            + check_backoff(scenario, seen))
