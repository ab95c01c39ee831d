# SPDX-License-Identifier: GPL-3.0-or-later
"""The shipped spec documents: valid OpenAPI, meta-schema conformance, well-formed rules."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import dualstore_spec
import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "query")


def _meta(name: str) -> jsonschema.Draft202012Validator:
    schema = dualstore_spec.meta_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _messages(validator: jsonschema.Draft202012Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def test_openapi_document_is_valid_openapi() -> None:
    document = dualstore_spec.openapi()
    assert document["openapi"].startswith("3.2")
    validate_openapi(document)  # raises with the failing pointer


def test_openapi_paths_are_the_v1_api_plus_metrics() -> None:
    paths = set(dualstore_spec.openapi()["paths"])
    assert paths == {
        "/v1/health",
        "/v1/collections",
        "/v1/{collection}",
        "/v1/{collection}/recent",
        "/v1/{collection}/search",
        "/v1/{collection}/stream",
        "/v1/{collection}/{id}",
        "/v1/ui/",
        "/v1/ui/{name}",
        "/metrics",
    }
    assert dualstore_spec.openapi()["servers"] == [
        {"url": "/", "description": dualstore_spec.openapi()["servers"][0]["description"]}
    ]


def test_every_operation_has_an_example_for_each_body() -> None:
    """Realistic examples on every operation: each request and response body has one."""
    missing = []
    document = dualstore_spec.openapi()
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            bodies = []
            if "requestBody" in operation:
                bodies.append(("request", operation["requestBody"]))
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = responses[response["$ref"].rsplit("/", 1)[1]]
                bodies.append((status, response))
            for label, body in bodies:
                for media_type, media in body.get("content", {}).items():
                    if not (media.get("examples") or "example" in media):
                        missing.append(f"{method.upper()} {path} {label} {media_type}")
    assert missing == []


def test_every_error_status_is_problem_json_with_a_typed_schema() -> None:
    document = dualstore_spec.openapi()
    declared = document["x-dualstore-problem-types"]
    for name, response in document["components"]["responses"].items():
        content = response["content"]
        assert list(content) == ["application/problem+json"], name
        ref = content["application/problem+json"]["schema"]["$ref"]
        status = int(re.search(r"Problem([0-9]{3})", ref).group(1))  # type: ignore[union-attr]
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        typed = schema["allOf"][1]["properties"]["type"]
        types = typed.get("enum", [typed.get("const")])
        assert all(declared[t]["status"] == status for t in types), name


def test_problem_types_match_the_architecture_list() -> None:
    slugs = {t.rsplit(":", 1)[1] for t in dualstore_spec.openapi()["x-dualstore-problem-types"]}
    assert slugs == {
        "invalid-request",
        "invalid-filter",
        "invalid-cursor",
        "invalid-resume-token",
        "invalid-json",
        "unauthorized",
        "not-found",
        "unknown-collection",
        "method-not-allowed",
        "payload-too-large",
        "unsupported-media-type",
        "validation-failed",
        "idempotency-key-reuse",
        "rate-limited",
        "too-many-streams",
        "unavailable",
    }


def test_limits_are_published_for_the_harness() -> None:
    limits = dualstore_spec.openapi()["x-dualstore-limits"]
    assert limits["max_body_bytes"] == 65536
    assert limits["stream_cap_per_ip"] == 10
    assert limits["rate_limit"]["requests_per_second"] == 50
    assert limits["rate_limit"]["burst"] == 100
    assert limits["recent_limit"] == {"min": 1, "max": 200, "default": 50}
    assert limits["search_k"] == {"min": 1, "max": 50, "default": 8}
    assert set(limits["filter"]) >= {"max_encoded_length", "max_depth", "max_conditions"}


def test_post_links_to_get_by_id() -> None:
    post = dualstore_spec.openapi()["paths"]["/v1/{collection}"]["post"]
    link = post["responses"]["201"]["links"]["GetCreatedDocument"]
    assert link["operationId"] == "getDocument"
    assert link["parameters"] == {
        "collection": "$request.path.collection",
        "id": "$response.body#/id",
    }


def test_sse_contract_matches_its_meta_schema() -> None:
    assert _messages(_meta("sse-contract.schema.json"), dualstore_spec.sse_contract()) == []


def test_filter_schema_is_valid_json_schema_and_matches_its_meta_schema() -> None:
    schema = dualstore_spec.filter_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert _messages(_meta("filter-schema.schema.json"), schema) == []


def test_rules_match_their_meta_schema() -> None:
    document = yaml.safe_load(dualstore_spec.path(dualstore_spec.RULES_FILE).read_text())
    assert _messages(_meta("rules.schema.json"), document) == []
    assert document["spec_version"] == dualstore_spec.version()


def test_rule_ids_are_unique_and_well_formed() -> None:
    ids = [rule["id"] for rule in dualstore_spec.rules()]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert all(re.fullmatch(r"[A-Z]+(-[A-Z]+)*-[0-9]{3}", i) for i in ids)
    families = {i.rsplit("-", 1)[0] for i in ids}
    assert families >= {
        "HTTP",
        "HEALTH",
        "DOC",
        "WRITE",
        "READ",
        "SEARCH",
        "FILTER",
        "AUTH",
        "CORS",
        "LIMIT",
        "SSE-FRAME",
        "SSE-ORDER",
        "SSE-HEARTBEAT",
        "SSE-RESUME",
        "SSE-CAP",
        "SSE-FILTER",
        "SSE-SLOW",
    }
    assert dualstore_spec.rules_by_id()["SSE-RESUME-002"]["level"] == "MUST"


def test_the_meta_schema_rejects_a_malformed_rule() -> None:
    validator = _meta("rules.schema.json")
    bad = {
        "spec_version": "1.0.0",
        "rules": [
            {"id": "sse-resume-2", "level": "MUST", "statement": "x.", "section": "nowhere"},
        ],
    }
    problems = " ".join(_messages(validator, bad))
    assert "sse-resume-2" in problems and "nowhere" in problems


# --- the filter language schema on its own: a table of good and bad decoded filters
FILTER_GOOD = [
    {},
    {"metadata.session": "s-42"},
    {"metadata.a.b": 1.5, "timestamp": {"$gte": "2026-11-25T10:00:00+01:00"}},
    {"metadata.tags": {"$in": ["a", "b"]}, "metadata.n": {"$gt": 1, "$lte": 9}},
    {"$or": [{"metadata.x": {"$exists": False}}, {"metadata.y": True}]},
    {"$and": [{"$or": [{"$and": [{"$or": [{"metadata.a": 1}]}]}]}]},
]
FILTER_BAD = [
    {"$where": "this.a == 1"},
    {"$expr": {"$eq": [1, 1]}},
    {"$function": {"body": "", "args": [], "lang": "js"}},
    {"metadata.a": {"$regex": "^x"}},
    {"metadata.a": {"$ne": 1}},
    {"metadata.a": {"$elemMatch": {}}},
    {"metadata.$a": 1},
    {"metadata.a$": 1},
    {"metadata": {"a": 1}},
    {"text": "x"},
    {"metadata.a": None},
    {"metadata.a": {"nested": "object"}},
    {"timestamp": "not a time"},
    {"$and": []},
    {"$and": [{"$or": [{"$and": [{"$or": [{"$and": [{"metadata.a": 1}]}]}]}]}]},
    {"metadata.a": {"$in": list(range(101))}},
    {"metadata.a.b.c.d.e.f.g.h.i": 1},
]


@pytest.mark.parametrize("value", FILTER_GOOD, ids=str)
def test_filter_schema_accepts(value: Any) -> None:
    validator = jsonschema.Draft202012Validator(
        dualstore_spec.filter_schema(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert _messages(validator, value) == []


@pytest.mark.parametrize("value", FILTER_BAD, ids=lambda v: str(v)[:50])
def test_filter_schema_rejects(value: Any) -> None:
    validator = jsonschema.Draft202012Validator(
        dualstore_spec.filter_schema(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert not validator.is_valid(value)
