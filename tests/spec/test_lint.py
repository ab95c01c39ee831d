# SPDX-License-Identifier: GPL-3.0-or-later
"""spec lint: clean on the shipped spec, one pointed message per problem on broken copies."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import dualstore_spec
import pytest
import yaml
from dualstore_spec import lint


def test_shipped_spec_has_no_lint_problems() -> None:
    assert lint.lint(None) == []
    assert lint.lint(str(dualstore_spec.path())) == []


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "spec"
    shutil.copytree(
        dualstore_spec.path(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py")
    )
    return target


def _edit_yaml(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def apply(folder: Path) -> None:
        document = yaml.safe_load((folder / name).read_text())
        change(document)
        (folder / name).write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))

    return apply


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def apply(folder: Path) -> None:
        document = json.loads((folder / name).read_text())
        change(document)
        (folder / name).write_text(json.dumps(document))

    return apply


def _replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        text = (folder / name).read_text()
        assert old in text
        (folder / name).write_text(text.replace(old, new, 1))

    return apply


def _op(path: str, method: str = "get") -> Callable[[dict], dict]:  # type: ignore[type-arg]
    return lambda d: d["paths"][path][method]


BREAKAGES: list[tuple[str, Callable[[Path], None], str]] = [
    (
        "openapi-structure",
        _edit_yaml(
            "openapi.yaml", lambda d: d["paths"]["/v1/health"]["get"].update(parameters="oops")
        ),
        'openapi.yaml#/paths/~1v1~1health/get/parameters: "oops" is not of type "array"',
    ),
    (
        "openapi-response-example",
        _edit_yaml(
            "openapi.yaml",
            lambda d: _op("/v1/{collection}", "post")(d)["responses"]["201"]["content"][
                "application/json"
            ]["examples"]["created"].update(value={"id": "not valid!"}),
        ),
        "openapi.yaml#/paths/~1v1~1{collection}/post/responses/201/content/application~1json"
        "/examples/created/value at /id",
    ),
    (
        "openapi-parameter-example",
        _edit_yaml("openapi.yaml", lambda d: d["components"]["parameters"]["K"].update(example=51)),
        "openapi.yaml#/components/parameters/K/example: 51 is greater than the maximum of 50",
    ),
    (
        "openapi-schema-example",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["components"]["schemas"]["Heartbeat"].update(examples=[{"t": "now"}]),
        ),
        "openapi.yaml#/components/schemas/Heartbeat/examples/0 at /t",
    ),
    (
        "openapi-stream-example-event",
        _replace("openapi.yaml", "id: 42\\ndata", "id: 4 2\\ndata"),
        "serializedValue (event 2)",
    ),
    (
        "openapi-stream-example-data",
        _replace("openapi.yaml", '\\"t\\":\\"2026-11-25T10:00:15.000Z\\"', '\\"t\\":\\"later\\"'),
        "serializedValue (event 3) data at /t",
    ),
    (
        "openapi-limit-mismatch",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["components"]["parameters"]["Limit"]["schema"].update(maximum=300),
        ),
        "Limit/schema/maximum: 300 differs from x-dualstore-limits.recent_limit.max 200",
    ),
    (
        "openapi-problem-enum",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["components"]["schemas"]["Problem"]["properties"]["type"]["enum"].pop(),
        ),
        "must list exactly the keys of x-dualstore-problem-types",
    ),
    (
        "yaml-syntax",
        _replace("sse-contract.yaml", "asyncapi: 3.0.0", "asyncapi: [3.0.0"),
        "sse-contract.yaml: not parsable",
    ),
    (
        "contract-meta-schema",
        _edit_yaml("sse-contract.yaml", lambda d: d["x-heartbeat"].update(tolerance_relative=2)),
        "sse-contract.yaml at /x-heartbeat/tolerance_relative",
    ),
    (
        "contract-cross-check",
        _edit_yaml("sse-contract.yaml", lambda d: d["x-connection-cap"].update(default=12)),
        "sse-contract.yaml#/x-connection-cap/default: 12 differs",
    ),
    (
        "contract-example-payload",
        _edit_yaml(
            "sse-contract.yaml",
            lambda d: d["components"]["messages"]["heartbeat"]["examples"][0].update(
                payload={"t": "soon"}
            ),
        ),
        "sse-contract.yaml#/components/messages/heartbeat/examples/0/payload at /t",
    ),
    (
        "contract-example-serialized",
        _replace(
            "sse-contract.yaml",
            'x-serialized: "event: insert\\nid: 42',
            'x-serialized: "event: inserted\\nid: 42',
        ),
        "messages/insert/examples/0/x-serialized: must be exactly one",
    ),
    (
        "filter-schema-invalid",
        _edit_json("filter.schema.json", lambda d: d["$defs"]["scalar"].update(anyOf=7)),
        "filter.schema.json#/$defs/scalar/anyOf: not a valid JSON Schema 2020-12",
    ),
    (
        "filter-bounds",
        _edit_json("filter.schema.json", lambda d: d["x-dualstore-bounds"].update(max_depth=5)),
        "filter.schema.json#/x-dualstore-bounds/max_depth: 5 differs",
    ),
    (
        "filter-example",
        _edit_json("filter.schema.json", lambda d: d["examples"].append({"$where": "1"})),
        "filter.schema.json#/examples/7",
    ),
    (
        "rules-duplicate-id",
        _edit_yaml("rules.yaml", lambda d: d["rules"][1].update(id=d["rules"][0]["id"])),
        "rules.yaml: rule ID HTTP-001 is used 2 times",
    ),
    (
        "rules-level",
        _edit_yaml("rules.yaml", lambda d: d["rules"][0].update(level="MUSTN'T")),
        "rules.yaml at /rules/0/level",
    ),
    (
        "rules-section",
        _edit_yaml(
            "rules.yaml", lambda d: d["rules"][0].update(section="openapi.yaml#/nowhere/at/all")
        ),
        "rules.yaml HTTP-001: section 'openapi.yaml#/nowhere/at/all': the pointer does not resolve",
    ),
    (
        "rules-readme-anchor",
        _edit_yaml("rules.yaml", lambda d: d["rules"][0].update(section="README.md#no-such")),
        "README.md has no heading with that anchor",
    ),
    (
        "rules-version",
        _edit_yaml("rules.yaml", lambda d: d.update(spec_version="9.9.9")),
        "rules.yaml: spec_version '9.9.9' differs from openapi.yaml info.version",
    ),
    (
        "rules-uncited-section",
        _edit_yaml(
            "rules.yaml",
            lambda d: d.update(rules=[
                r for r in d["rules"]
                if not r["section"].startswith("sse-contract.yaml#/x-shutdown")
            ]),
        ),
        "sse-contract.yaml#/x-shutdown: no rule in rules.yaml cites this section",
    ),
    (
        "precedence-unknown-slug",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["x-dualstore-http"]["precedence"]["wins"]["unauthorized"].append("teapot"),
        ),
        "precedence/wins/unauthorized: 'teapot' is not a declared problem type",
    ),
    (
        "precedence-both-ways",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["x-dualstore-http"]["precedence"]["wins"]["invalid-json"].append(
                "payload-too-large"
            ),
        ),
        "payload-too-large and invalid-json each win over the other",
    ),
    (
        "implementation-defined-one-alternative",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["x-dualstore-implementation-defined"]["items"]["plain-options"].update(
                alternatives=["405"]
            ),
        ),
        "items/plain-options: needs at least two `alternatives`",
    ),
    (
        "configurable-default-differs",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["x-dualstore-configurable"]["values"]["stream_cap_per_ip"].update(
                default=12
            ),
        ),
        "values/stream_cap_per_ip/default: 12 differs from "
        "openapi.yaml#/x-dualstore-limits/stream_cap_per_ip 10",
    ),
    (
        "configurable-default-follows-the-spec",
        _edit_yaml("sse-contract.yaml", lambda d: d["x-heartbeat"].update(default_seconds=20)),
        "values/heartbeat_seconds/default: 15 differs from "
        "sse-contract.yaml#/x-heartbeat/default_seconds 20",
    ),
    (
        "configurable-not-in-profile",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["x-dualstore-configurable"]["values"].update(
                max_body_bytes={
                    "default": 65536,
                    "default_at": "openapi.yaml#/x-dualstore-limits/max_body_bytes",
                }
            ),
        ),
        "meta-schemas/deployment-profile.schema.json: lacks 'max_body_bytes'",
    ),
    (
        "contract-profile-key",
        _edit_yaml("sse-contract.yaml", lambda d: d["x-heartbeat"].update(profile_key="beat")),
        "sse-contract.yaml#/x-heartbeat/profile_key: 'beat' is not a value of",
    ),
    (
        "profile-schema-default",
        _edit_json(
            "meta-schemas/deployment-profile.schema.json",
            lambda d: d["properties"]["retry_ms"].update(default=1000),
        ),
        "deployment-profile.schema.json#/properties/retry_ms/default: differs",
    ),
    (
        "profile-schema-missing",
        lambda folder: (folder / "meta-schemas" / "deployment-profile.schema.json").unlink(),
        "meta-schemas/deployment-profile.schema.json: missing",
    ),
    (
        "metadata-key-length",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["components"]["schemas"]["MetadataKey"].update(maxLength=255),
        ),
        "MetadataKey/maxLength: differs from x-dualstore-limits.metadata.max_key_length",
    ),
    (
        "request-size-prose",
        _edit_yaml(
            "openapi.yaml",
            lambda d: d["x-dualstore-limits"]["request_size"].update(min_request_line_octets=9000),
        ),
        "request-size: does not state x-dualstore-limits.request_size.min_request_line_octets",
    ),
    (
        "request-size-missing",
        _edit_yaml("openapi.yaml", lambda d: d["x-dualstore-limits"].pop("request_size")),
        "x-dualstore-limits/request_size: needs integers",
    ),
    (
        "missing-file",
        lambda folder: (folder / "filter.schema.json").unlink(),
        "filter.schema.json: missing",
    ),
    (
        "missing-meta-schema",
        lambda folder: (folder / "meta-schemas" / "rules.schema.json").unlink(),
        "meta-schemas/rules.schema.json: missing",
    ),
]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [(b, m) for _, b, m in BREAKAGES],
    ids=[name for name, _, _ in BREAKAGES],
)
def test_lint_points_at_the_problem(
    tmp_path: Path, breakage: Callable[[Path], None], message: str
) -> None:
    folder = _copy(tmp_path)
    breakage(folder)
    problems = lint.lint(str(folder))
    assert any(message in problem for problem in problems), problems
    assert all("\n" not in problem for problem in problems)  # one line each


def test_an_untouched_copy_is_clean(tmp_path: Path) -> None:
    """The broken copies below start from a clean copy: what lint reports is the breakage."""
    assert lint.lint(str(_copy(tmp_path))) == []


def test_lint_of_a_missing_folder() -> None:
    assert lint.lint("/nonexistent/spec") == ["/nonexistent/spec: not a directory"]
