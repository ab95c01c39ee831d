# SPDX-License-Identifier: GPL-3.0-or-later
"""The spec 1.1 request-syntax checks: their probes, and a clean pass against the reference.

The kill matrix proves each fails against the mutant of its rule (catalogue rows
rest-integer-lenient, rest-repeated-last-wins, rest-charset-utf8-alias,
sse-resume-since-unchecked, sec-access-token-fallback, rest-idempotency-number-spelling,
rest-small-header-buffer).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

import pytest
from dualstore_conformance import runner
from dualstore_conformance.checks import auth_header_decides, params_integers, write_same_value
from dualstore_conformance.checks.params_repeated import allowed_types, repeated
from dualstore_conformance.model import Status, Target
from dualstore_conformance.run_model import RunConfig

SYNTAX_CHECKS = [
    "limit-integer-syntax",
    "http-repeated-parameters",
    "http-content-type-charset",
    "sse-resume-every-parameter-validated",
    "auth-header-decides-over-access-token",
    "write-idempotency-same-json-value",
    "http-request-size-minimums",
]
SPEC_INTEGER = re.compile(r"^[1-9][0-9]*$")


@pytest.mark.parametrize("value", [1, 8, 50, 200])
def test_every_spelling_breaks_the_syntax_but_names_the_number(value: int) -> None:
    for label, spelled in params_integers.spellings(value):
        decoded = unquote(spelled)
        assert not SPEC_INTEGER.match(decoded), label
        if decoded:
            lenient: int | float
            try:
                lenient = int(decoded.strip(), 0 if decoded.startswith("0x") else 10)
            except ValueError:
                lenient = float(decoded)
            assert lenient == value, label


def test_fullwidth_digits_are_what_int_accepts() -> None:
    assert params_integers.fullwidth("50") == "\uff15\uff10"
    assert int(params_integers.fullwidth("50")) == 50


def test_repeated_parameters_allow_the_parameters_own_type() -> None:
    assert repeated("q", "a b", "c") == "q=a%20b&q=c"
    assert allowed_types("limit") == ("invalid-request",)
    assert allowed_types("since") == ("invalid-request", "invalid-resume-token")


def test_unusable_headers_never_carry_the_token_in_another_encoding() -> None:
    for label, value in auth_header_decides.unusable_headers("s3cret"):
        scheme, _, credentials = value.partition(" ")
        assert scheme.lower() != "bearer" or credentials != "s3cret", label


def test_respelled_bodies_are_one_json_value() -> None:
    tag = {"run": "r", "check": "c"}
    bodies = write_same_value.bodies("a \"quoted\" text", tag)
    values = [json.loads(raw) for _, raw in bodies]
    assert all(value == values[0] for value in values)
    raws = [raw for _, raw in bodies]
    assert len(set(raws)) == len(raws)
    assert b"1.0" in raws[1] and b"1e0" in raws[2] and b"\\u00e9" in raws[1]


def test_syntax_checks_pass_against_the_reference(reference_server: Any) -> None:
    env = reference_server.env
    target = Target(url=reference_server.url, token=env["AUTH_TOKEN"].split(",")[0])
    report = runner.run(RunConfig(target=target, only=SYNTAX_CHECKS, property_layer=False,
                                  workers=4))
    results = {result.id: result for result in report.results}
    for check_id in SYNTAX_CHECKS:
        result = results[check_id]
        assert result.status is Status.PASSED, f"{check_id}: {result.message}"
