# SPDX-License-Identifier: GPL-3.0-or-later
"""Validate httpx responses against the OpenAPI document with openapi-core."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit

import dualstore_spec
import httpx
from jsonschema import Draft202012Validator
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_URI = "urn:dualstore:openapi"


@functools.cache
def openapi() -> OpenAPI:
    """The project's OpenAPI document, loaded once."""
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(dualstore_spec.openapi(), config=config)


@functools.cache
def _component_validator(pointer: str) -> Draft202012Validator:
    resource = Resource.from_contents(dualstore_spec.openapi(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry)


class HttpxOpenAPIRequest:
    """openapi-core's Request protocol over an httpx.Request."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.full_url_pattern = self.host_url + self.path
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
        )

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes | None:
        try:
            return self.request.content or None
        except httpx.RequestNotRead:  # a streamed (generator) body: not kept
            return None

    @property
    def content_type(self) -> str:
        return self.request.headers.get("content-type", "").lower()


class HttpxOpenAPIResponse:
    """openapi-core's Response protocol over an httpx.Response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def content_type(self) -> str:
        return self.response.headers.get("content-type", "").lower()

    @property
    def headers(self) -> Headers:
        return Headers(list(self.response.headers.items()))

    @property
    def data(self) -> bytes | None:
        return self.response.content


def _check_problem(response: httpx.Response, schema: str) -> None:
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.headers
    )
    errors = list(_component_validator(f"/components/schemas/{schema}").iter_errors(
        json.loads(response.content)
    ))
    assert not errors, f"{response.status_code} body breaks {schema}: {errors[0].message}"


def validate(response: httpx.Response) -> httpx.Response:
    """Assert the response matches the OpenAPI document; returns it for chaining.

    Operations found in the document go through openapi-core; responses the document
    describes globally (405 for an undefined method, 404 for an undefined path) are
    checked against their component schemas.
    """
    request = HttpxOpenAPIRequest(response.request)
    try:
        openapi().validate_response(request, HttpxOpenAPIResponse(response))
    except ResponseNotFound:
        # POST /v1/health matches the template /v1/{collection}; the spec's pattern for
        # {collection} excludes "health", so the method is undefined for that path: 405.
        assert response.status_code == 405, f"undocumented status {response.status_code}"
        assert "allow" in response.headers
        _check_problem(response, "Problem405")
    except OperationNotFound:
        assert response.status_code == 405, f"undocumented method answered {response.status_code}"
        assert "allow" in response.headers
        _check_problem(response, "Problem405")
    except PathNotFound:
        assert response.status_code == 404, f"undocumented path answered {response.status_code}"
        _check_problem(response, "Problem404")
    return response


class ValidatingClient(httpx.Client):
    """An httpx client whose every response is validated against the OpenAPI document."""

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        response = super().send(request, **kwargs)
        if not kwargs.get("stream"):
            validate(response)
        return response
