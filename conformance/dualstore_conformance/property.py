# SPDX-License-Identifier: GPL-3.0-or-later
"""Spec-driven property testing: Schemathesis (all phases) against the target, as CheckResults."""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from dualstore_spec import facts as spec_facts

from dualstore_conformance import oversize
from dualstore_conformance.client import REDACTED
from dualstore_conformance.context import CONFORMANCE_KEY
from dualstore_conformance.model import CheckResult, Level, Status, Target

dualstore_spec: Any = importlib.import_module("dualstore_spec")
"""The spec package (imported by name: it lives outside mypy's package roots)."""

ProgressCallback = Callable[[str], None]
"""Receives one short human-readable line per finished Schemathesis scenario."""

OPAQUE_PARAMETERS = frozenset({"filter", "cursor", "since", "last-event-id"})
"""Parameters whose valid values a JSON Schema cannot describe (see ``_operation_overrides``)."""

THOROUGH_EXAMPLES = 100
"""From this --max-examples on, the coverage phase also enumerates request bodies."""

TAG_BODY_BYTES = 32768
"""Bodies larger than this are sent untagged (the tag must not push one over the 64 KiB cap)."""

MAX_FAILURES_PER_CHECK = 5
"""Distinct failures kept as evidence for one Schemathesis check."""

CHECK_RULES: dict[str, tuple[str, ...]] = {
    "not_a_server_error": ("HTTP-013",),
    "status_code_conformance": ("HTTP-004",),
    "content_type_conformance": ("HTTP-003", "HTTP-004"),
    "response_headers_conformance": ("HTTP-004",),
    "response_schema_conformance": ("HTTP-004",),
    "negative_data_rejection": ("HTTP-010",),
    "positive_data_acceptance": ("HTTP-010",),
    "missing_required_header": ("HTTP-010",),
    "unsupported_method": ("HTTP-005",),
    "allow_header_conformance": ("HTTP-005",),
    "use_after_free": ("READ-005",),
    "ensure_resource_availability": ("WRITE-009", "READ-005"),
    "ignored_auth": ("AUTH-001",),
    "dualstore_problem_json": ("HTTP-001", "HTTP-002"),
    "dualstore_doc_timestamps": ("DOC-002",),
    "dualstore_rate_limit_headers": ("LIMIT-004",),
    "dualstore_www_authenticate": ("AUTH-001",),
}
"""Schemathesis check name -> the spec rules a failure of it breaks."""

CHECK_TITLES: dict[str, str] = {
    "not_a_server_error": "Property: no 5xx for any generated request",
    "status_code_conformance": "Property: every status code is documented",
    "content_type_conformance": "Property: every Content-Type is documented",
    "response_headers_conformance": "Property: documented response headers are present and valid",
    "response_schema_conformance": "Property: every response body matches its schema",
    "negative_data_rejection": "Property: requests the schema forbids are rejected",
    "positive_data_acceptance": "Property: requests the schema allows are accepted",
    "missing_required_header": "Property: a missing required header is rejected",
    "unsupported_method": "Property: undocumented methods get 405",
    "allow_header_conformance": "Property: 405 carries Allow listing the documented methods",
    "use_after_free": "Property (stateful): nothing is served after it is gone",
    "ensure_resource_availability": "Property (stateful): a created document is reachable",
    "ignored_auth": "Property: authentication is not ignored",
    "dualstore_problem_json": "Property: every error is problem+json with a documented type",
    "dualstore_doc_timestamps": "Property: every Doc timestamp is ISO 8601 UTC with ms and Z",
    "dualstore_rate_limit_headers": "Property: every 429 carries Retry-After and RateLimit headers",
    "dualstore_www_authenticate": "Property: every 401 carries WWW-Authenticate: Bearer",
}


@dataclass
class _Tally:
    """What one Schemathesis check saw during the run."""

    passed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_count: int = 0
    seen: set[str] = field(default_factory=set)


def _known_rules(ids: Iterable[str]) -> list[str]:
    try:
        known = dualstore_spec.rules_by_id()
    except Exception:  # rules file missing or broken: report the IDs as given
        return list(ids)
    return [rule for rule in ids if rule in known]


def base_url(target: Target) -> str:
    """The target URL plus the path of the spec's first server (``/v1`` when servers say so)."""
    servers = dualstore_spec.openapi().get("servers") or []
    path = urlparse(str(servers[0].get("url", ""))).path if servers else ""
    return target.url.rstrip("/") + path.rstrip("/")


def _operations(document: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any], list[Any]]]:
    for path, item in (document.get("paths") or {}).items():
        shared = list(item.get("parameters") or [])
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield (
                    method.upper(),
                    path,
                    operation,
                    shared + list(operation.get("parameters") or []),
                )


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def streaming_operations(document: dict[str, Any]) -> list[str]:
    """Names (``GET /path``) of operations answering text/event-stream: they never end."""
    names = []
    for method, path, operation, _ in _operations(document):
        for response in (operation.get("responses") or {}).values():
            content = _resolve(document, response).get("content") or {}
            if any(media.startswith("text/event-stream") for media in content):
                names.append(f"{method} {path}")
                break
    return names


def _operation_overrides(document: dict[str, Any], max_examples: int) -> list[dict[str, Any]]:
    """Per-operation settings: accepted statuses for opaque parameters, bounded coverage.

    ``filter`` (base64url JSON in the filter language), ``cursor`` (a token only the server
    can mint) and ``since`` (a resume token or an RFC 3339 time) are strings whose validity
    no JSON Schema can express (the spec marks such parameters ``x-dualstore-server-validated``):
    a random string that fits the schema is almost never a valid filter or cursor, so the
    server's 400 is the correct answer, not a failure of positive_data_acceptance. For
    operations taking such a parameter, 400 joins the statuses that check accepts. Likewise
    Idempotency-Key: Hypothesis reuses small values ("0", "a") with different bodies, and the
    spec answers that with 422 ``idempotency-key-reuse``, so 422 is accepted where that header
    is taken. negative_data_rejection is unchanged: invalid data must still be rejected.

    The coverage phase enumerates boundary values of every schema with no example budget;
    on a request body with eight levels of nested metadata that is thousands of real
    inserts (over a minute). Below ``THOROUGH_EXAMPLES`` the coverage phase is therefore
    switched off for operations with a request body (examples, fuzzing and stateful still
    exercise them); a thorough run (``--max-examples`` at or above it) keeps it.
    """
    overrides: list[dict[str, Any]] = []
    for method, path, operation, parameters in _operations(document):
        resolved = [_resolve(document, p) for p in parameters]
        names = {str(p.get("name", "")).lower() for p in resolved}
        opaque = names & OPAQUE_PARAMETERS or any(
            "x-dualstore-server-validated" in p
            and str(p.get("name", "")).lower() != "idempotency-key"
            for p in resolved
        )
        extra: list[str] = []
        if opaque:
            extra.append("400")
        if "idempotency-key" in names:
            extra.append("422")
        entry: dict[str, Any] = {}
        if extra:
            statuses = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", *extra]
            entry["checks"] = {"positive_data_acceptance": {"expected-statuses": statuses}}
        if "requestBody" in operation and max_examples < THOROUGH_EXAMPLES:
            entry["phases"] = {"coverage": {"enabled": False}}
        if entry:
            overrides.append({"include-name": f"{method} {path}", **entry})
    return overrides


def rejection_statuses() -> list[str]:
    """Statuses that reject a request the schema forbids: every 4xx the spec's problem types
    use (a schema-breaking body over the cap is rightly 413 first, LIMIT-001), plus 5xx,
    which not_a_server_error judges on its own."""
    problems = spec_facts.current().problem_types.values()
    return [*sorted({str(p.status) for p in problems if 400 <= p.status < 500}), "5xx"]


def build_config(
    target: Target, seed: int | None, max_examples: int, workers: int = 1
) -> dict[str, Any]:
    """The Schemathesis configuration (the dict form of schemathesis.toml) for a run."""
    document = dualstore_spec.openapi()
    config: dict[str, Any] = {
        "base-url": base_url(target),
        "workers": max(1, workers),
        # Wait out the target's rate limiter: on 429 sleep Retry-After and resend.
        "rate-limit": "auto",
        "request-timeout": 10.0 * target.timeout_multiplier,
        "generation": {
            "max-examples": max_examples,
            # A guest leaves nothing behind: no .hypothesis/ folder in the working directory.
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": max(2, min(6, max_examples))},
        },
        "checks": {
            "enabled": True,
            "negative_data_rejection": {"expected-statuses": rejection_statuses()},
        },
        "operations": _operation_overrides(document, max_examples),
        "suppress-health-check": ["all"],
        # Reproductions must be pasteable (Idempotency-Key values matter): Schemathesis'
        # own masking is off and the bearer token is redacted here instead (redact_command).
        "output": {"sanitization": {"enabled": False}},
        # Nor a .schemathesis/ cache folder in the working directory.
        "cache": {"enabled": False},
    }
    if seed is not None:
        config["seed"] = seed
    if target.token:
        config["headers"] = {"Authorization": f"Bearer {target.token}"}
    else:
        # Authentication is optional by deployment (the spec's security is per deployment):
        # without a token the target is judged as one that runs without auth, so
        # Schemathesis neither generates nor drops an Authorization header, nor expects a
        # 401 for a missing one (the auth-* protocol checks judge authentication).
        config["generation"]["with-security-parameters"] = False
        config["checks"]["ignored_auth"] = {"enabled": False}
    if target.collection:
        # Exercise the collection we were given (a random name is just 404 unknown-collection).
        config["parameters"] = {"path.collection": target.collection}
    return config


def _failure_entry(
    check: str, failure: Any, code_sample: str, interaction: Any, token: str | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "check": check,
        "code": getattr(failure, "code", ""),
        "title": str(getattr(failure, "title", check)),
        "message": str(getattr(failure, "message", "")).strip(),
        "operation": str(getattr(failure, "operation", "")),
        "reproduce": redact_command(code_sample, token),
    }
    response = getattr(interaction, "response", None) if interaction is not None else None
    if response is not None:
        entry["status"] = response.status_code
        entry["response_headers"] = {
            name: ", ".join(values) if isinstance(values, list) else str(values)
            for name, values in response.headers.items()
        }
        entry["response_body"] = bytes(response.content[:1024]).decode("utf-8", errors="replace")
    return entry


def redact_command(command: str, token: str | None) -> str:
    """A Schemathesis code sample with the bearer token replaced by ``$TOKEN``."""
    if token:
        command = command.replace(token, REDACTED)
    # double quotes, so that the shell expands $TOKEN
    return command.replace(
        " -H 'Authorization: Bearer $TOKEN'", ' -H "Authorization: Bearer $TOKEN"'
    )


def tag_documents(schema: Any, tag: dict[str, str]) -> None:
    """Add the harness tag to the metadata of each generated valid POST body.

    Only bodies generated as valid are tagged (a negative case stays exactly as generated),
    and only when the tag keeps the body well within the size cap.
    """

    @schema.hook  # type: ignore[untyped-decorator]
    def map_case(context: Any, case: Any) -> Any:
        body = case.body
        meta = getattr(case, "meta", None)
        mode = getattr(getattr(meta, "generation", None), "mode", None)
        if case.method.upper() != "POST" or not isinstance(body, dict) or mode is None:
            return case
        if not mode.is_positive or not isinstance(body.get("metadata", {}), dict):
            return case
        if len(json.dumps(body, default=str)) > TAG_BODY_BYTES:
            return case
        case.body = {**body, "metadata": {**body.get("metadata", {}), CONFORMANCE_KEY: dict(tag)}}
        return case


RATE_LIMITED_MARK = "`429 "
"""How Schemathesis quotes a 429 answer to one of its own probe requests in a failure message."""


def ignore_rate_limited_failures(schema: Any) -> None:
    """Drop failures whose only cause is a 429 from the target's rate limiter.

    Schemathesis resends a generated request after a 429, but some checks send probes of
    their own (ignored_auth removes the token; a request without a token is limited per
    client IP, which the concurrently running protocol checks also spend). A probe answered
    429 says nothing about what the check looks for, so such a failure is dropped. Our own
    checks are never filtered: the 429 headers are what dualstore_rate_limit_headers judges.
    """

    @schema.hook  # type: ignore[untyped-decorator]
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        if "dualstore_" in str(getattr(failure, "title", "")):
            return True
        if getattr(response, "status_code", None) == 429:
            return False
        return RATE_LIMITED_MARK not in str(getattr(failure, "message", ""))


def excuse_oversize_refusals(schema: Any, excused: dict[str, int]) -> None:
    """Drop failures about a refusal of a request over HTTP-020's minimums.

    A request line over ``x-dualstore-limits.request_size.min_request_line_octets`` or a
    header section over ``min_header_section_octets`` may be refused with 414, 431 or 400,
    with any body or none (x-dualstore-implementation-defined ``oversize-request``): such a
    refusal is exempt from HTTP-001 and HTTP-004 and never judged. Schemathesis' negative
    data (a filter far over its maxLength) can be that big. The excuse holds only when the
    request really was bigger (measured from what was sent); any other answer to it, and a
    refusal of a request within the minimums, is judged as usual (a 5xx always is).
    ``excused["refused"]`` counts the failures dropped.
    """

    @schema.hook("filter_failure")  # type: ignore[untyped-decorator]
    def keep_unless_oversize(context: Any, failure: Any, case: Any, response: Any) -> bool:
        request = getattr(response, "request", None)
        status = getattr(response, "status_code", None)
        if request is None or not isinstance(status, int):
            return True
        headers = [(str(k), str(v)) for k, v in (request.headers or {}).items()]
        if oversize.excused_refusal(
                status, str(request.method or "GET"), str(request.url or ""), headers):
            excused["refused"] += 1
            return False
        return True


def closed_on_oversize(error: BaseException) -> bool:
    """True when error is the connection closed on a request over HTTP-020's minimums (the
    ``oversize-request`` alternative "the connection closed"), not a timeout."""
    import requests

    request = getattr(error, "request", None)
    if (not isinstance(error, requests.ConnectionError) or isinstance(error, requests.Timeout)
            or request is None):
        return False
    headers = [(str(k), str(v)) for k, v in (request.headers or {}).items()]
    size = oversize.measure(str(request.method or "GET"), str(request.url or ""), headers)
    return oversize.over_the_minimums(size)


def run(
    target: Target,
    seed: int | None,
    max_examples: int,
    workers: int = 1,
    on_progress: ProgressCallback | None = None,
    run_id: str | None = None,
    collection: str | None = None,
) -> list[CheckResult]:
    """Run Schemathesis against target; one CheckResult per Schemathesis check (plus errors).

    ``collection`` (default ``target.collection``) pins the ``{collection}`` path parameter;
    documents the run creates carry ``metadata.dualstore_conformance = {run, check:
    "property"}`` like every other harness document (see ``tag_documents``).

    Uses the Schemathesis engine in-process (``schemathesis.engine.from_schema``): the
    events it yields carry the failing case, the response and a curl reproduction, which
    the CLI would otherwise serialise to a report we would have to parse back.
    """
    import schemathesis
    from schemathesis.engine import events, from_schema

    from dualstore_conformance import schemathesis_checks  # noqa: F401  (registers our checks)

    started = time.monotonic()
    document = dualstore_spec.openapi()
    if collection and not target.collection:
        target = dataclasses.replace(target, collection=collection)
    config = schemathesis.Config.from_dict(build_config(target, seed, max_examples, workers))
    schema: Any = schemathesis.openapi.from_path(
        str(dualstore_spec.path(dualstore_spec.OPENAPI_FILE)), config=config
    )
    excluded = streaming_operations(document)
    if excluded:
        schema = schema.exclude(name=excluded)
    tag_documents(schema, {"run": run_id or uuid.uuid4().hex[:12], "check": "property"})
    ignore_rate_limited_failures(schema)
    excused = {"refused": 0, "closed": 0}
    excuse_oversize_refusals(schema, excused)
    used_seed = config.seed
    tallies: dict[str, _Tally] = {}
    errors: list[dict[str, Any]] = []
    stop_reason = ""

    requests: dict[str, int] = {}
    statuses: dict[str, int] = {}
    waits: list[float] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(event.recorder, tallies, target.token)
            key = f"{event.phase.value} {event.recorder.label}"
            requests[key] = requests.get(key, 0) + len(event.recorder.interactions)
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    code = str(interaction.response.status_code)
                    statuses[code] = statuses.get(code, 0) + 1
            if on_progress is not None:
                on_progress(
                    f"property: {event.phase.value} {event.recorder.label} {event.status.value}"
                )
        elif isinstance(event, events.RateLimitRetry):
            waits.append(round(event.delay, 3))
            if on_progress is not None:
                on_progress(f"property: rate limited, waiting {event.delay:.0f} s")
        elif isinstance(event, events.NonFatalError) and closed_on_oversize(event.value):
            excused["closed"] += 1
        elif isinstance(event, events.NonFatalError):
            errors.append(
                {
                    "title": event.info.title,
                    "message": event.info.message,
                    "operation": event.label,
                    "phase": str(event.phase),
                }
            )
        elif isinstance(event, events.FatalError):
            errors.append({"title": "Schemathesis could not run", "message": str(event.exception)})
        elif isinstance(event, events.EngineFinished):
            stop_reason = str(event.stop_reason)
            for failure in event.failures:  # after-run (global) check failures
                tally = tallies.setdefault(_check_name(failure), _Tally())
                tally.failure_count += 1
                tally.failures.append(
                    {"title": str(failure.title), "message": str(failure.message)}
                )

    duration = time.monotonic() - started
    common = {
        "seed": used_seed,
        "stop_reason": stop_reason,
        "excluded_operations": excluded,
        "requests": requests,
        "statuses": statuses,
        "long_rate_limit_waits_s": waits,
        "excused_oversize_failures": excused,
    }
    results = [_result(name, tally, duration, common) for name, tally in sorted(tallies.items())]
    if errors:
        results.append(
            CheckResult(
                id="property-engine",
                title="Property: Schemathesis ran every operation without errors",
                level=Level.MUST,
                rules=[],
                status=Status.ERROR,
                duration_s=duration,
                message=f"{len(errors)} error(s): {errors[0]['title']}: {errors[0]['message']}"[
                    :500
                ],
                evidence={**common, "errors": errors[:10]},
            )
        )
    return results


def _check_name(failure: Any) -> str:
    checks = getattr(type(failure), "checks", ()) or ()
    return str(checks[0]) if checks else "custom"


def _record(recorder: Any, tallies: dict[str, _Tally], token: str | None) -> None:
    for case_id, nodes in recorder.checks.items():
        for node in nodes:
            tally = tallies.setdefault(node.name, _Tally())
            if node.failure_info is None:
                tally.passed += 1
                continue
            failure = node.failure_info.failure
            tally.failure_count += 1
            key = f"{getattr(failure, 'operation', '')}|{getattr(failure, 'title', '')}"
            if key in tally.seen or len(tally.failures) >= MAX_FAILURES_PER_CHECK:
                continue
            tally.seen.add(key)
            tally.failures.append(
                _failure_entry(
                    node.name,
                    failure,
                    node.failure_info.code_sample,
                    recorder.interactions.get(case_id),
                    token,
                )
            )


def _result(name: str, tally: _Tally, duration: float, common: dict[str, Any]) -> CheckResult:
    rules = _known_rules(CHECK_RULES.get(name, ()))
    title = CHECK_TITLES.get(name, f"Property: Schemathesis check {name}")
    if tally.failure_count:
        first = tally.failures[0]
        message = (
            f"{tally.failure_count} failing response(s); first: {first.get('operation', '')} "
            f"{first.get('title', '')}: {first.get('message', '')}"
        )
        return CheckResult(
            id=f"property-{name}",
            title=title,
            level=Level.MUST,
            rules=rules,
            status=Status.FAILED,
            duration_s=duration,
            message=message[:1000],
            evidence={**common, "failures": tally.failures, "passed": tally.passed},
            reproduce=str(first.get("reproduce", "")),
        )
    return CheckResult(
        id=f"property-{name}",
        title=title,
        level=Level.MUST,
        rules=rules,
        status=Status.PASSED,
        duration_s=duration,
        message=f"{tally.passed} response(s) checked",
        evidence={**common, "passed": tally.passed},
    )
