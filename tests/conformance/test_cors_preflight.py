# SPDX-License-Identifier: GPL-3.0-or-later
"""CORS-003's preflight predicate, judged on recorded answers without a server."""

from __future__ import annotations

import httpx
from dualstore_conformance.checks.cors import REQUEST_HEADERS, preflight_errors

ORIGIN = "https://app.example"


def answer(**headers: str) -> httpx.Headers:
    base = {"Access-Control-Allow-Origin": ORIGIN, "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": ", ".join(REQUEST_HEADERS)}
    return httpx.Headers({**base, **headers})


def test_a_complete_preflight_has_no_errors() -> None:
    assert preflight_errors(answer(), 204, ORIGIN, REQUEST_HEADERS) == []
    wildcard = answer(**{"Access-Control-Allow-Methods": "*",
                         "Access-Control-Allow-Headers": "*"})
    assert preflight_errors(wildcard, 200, ORIGIN, REQUEST_HEADERS) == []


def test_each_shortfall_is_named() -> None:
    assert preflight_errors(answer(), 403, ORIGIN, REQUEST_HEADERS) == ["status 403"]
    other = answer(**{"Access-Control-Allow-Origin": "https://other.example"})
    assert "Access-Control-Allow-Origin" in preflight_errors(other, 204, ORIGIN,
                                                             REQUEST_HEADERS)[0]
    no_post = answer(**{"Access-Control-Allow-Methods": "GET"})
    assert "Access-Control-Allow-Methods" in preflight_errors(no_post, 204, ORIGIN,
                                                              REQUEST_HEADERS)[0]
    few = answer(**{"Access-Control-Allow-Headers": "content-type"})
    errors = preflight_errors(few, 204, ORIGIN, REQUEST_HEADERS)
    assert errors == [f"Access-Control-Allow-Headers lacks "
                      f"{[h for h in REQUEST_HEADERS if h != 'content-type']}"]
