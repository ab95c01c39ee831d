# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP helpers: curl reproductions with the token redacted, filters, evidence."""

from __future__ import annotations

import base64
import json
import shlex

import httpx
from dualstore_conformance.client import curl, encode_filter, evidence, problem


def test_curl_redacts_the_token_and_quotes_for_the_shell() -> None:
    command = curl("http://h:1/v1/c", "POST", {"Idempotency-Key": "k 1"}, {"text": "it's"},
                   token="s3cret")
    assert "s3cret" not in command
    assert '-H "Authorization: Bearer $TOKEN"' in command
    words = shlex.split(command.replace('"Authorization: Bearer $TOKEN"', "AUTH"))
    assert words[:5] == ["curl", "-sS", "-i", "-X", "POST"]
    assert "Idempotency-Key: k 1" in words
    assert json.loads(words[words.index("--data-raw") + 1]) == {"text": "it's"}
    assert "Content-Type: application/json" in words


def test_curl_for_streams_adds_no_buffering_and_params() -> None:
    command = curl("http://h:1/v1/c/stream", params={"since": "a b"}, stream=True)
    assert " -N " in command and "since=a+b" in command and "-X" not in command


def test_curl_redacts_an_explicit_authorization_header() -> None:
    command = curl("http://h", headers={"Authorization": "Bearer other"}, token=None)
    assert "other" not in command and "$TOKEN" in command


def test_encode_filter_is_unpadded_base64url_json() -> None:
    value = encode_filter({"metadata.k": "ü?>"})
    assert "=" not in value and "+" not in value and "/" not in value
    decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert json.loads(decoded) == {"metadata.k": "ü?>"}


def test_evidence_and_problem() -> None:
    request = httpx.Request("GET", "http://h/v1/x", headers={"Authorization": "Bearer tok"})
    body = json.dumps({"type": "urn:dualstore:problem:not-found", "status": 404}).encode()
    response = httpx.Response(404, headers={"Content-Type": "application/problem+json",
                                            "Set-Cookie": "tok"},
                              content=body + b" " * 5000, request=request)
    found = evidence(response, token="tok")
    assert found["status"] == 404
    assert "tok" not in json.dumps(found)
    assert found["body"].endswith("more bytes]")
    assert problem(httpx.Response(404, json={"a": 1}, request=request)) is None  # not problem
    short = httpx.Response(404, headers={"Content-Type": "application/problem+json"},
                           content=body, request=request)
    assert problem(short) == {"type": "urn:dualstore:problem:not-found", "status": 404}


def test_token_in_a_query_parameter_becomes_a_shell_variable() -> None:
    token = "a+b/c=="
    command = curl("http://h/v1/c/stream", params={"access_token": token, "q": "it's $x"},
                   token=token, stream=True)
    assert token not in command and "a%2Bb%2Fc%3D%3D" not in command
    assert "access_token=${TOKEN}" in command
    # the rest of the word stays literal for the shell
    word = next(w for w in command.split(" ") if w.startswith('"http'))
    assert "\\$x" in word or "%24x" in word
