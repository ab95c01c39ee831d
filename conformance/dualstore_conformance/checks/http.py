# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-* checks (problems, 404/405/415, malformed JSON) and helpers the REST checks share."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import httpx

from dualstore_conformance import client as http
from dualstore_conformance import judging
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


# -- helpers shared by the REST check modules ---------------------------------------------
def problem_slug(response: httpx.Response) -> str | None:
    """The slug of a problem+json answer's ``type`` (``not-found``), or None if not a problem."""
    return judging.problem_slug(http.problem(response))


def fail_response(
    ctx: CheckContext,
    response: httpx.Response,
    title: str,
    expected: str,
    received: str,
    reproduce: str,
    rules: list[str] | None = None,
) -> NoReturn:
    """Fail the check with the response as evidence."""
    ctx.fail(title, expected=expected, received=received, rules=rules,
             evidence=ctx.evidence(response), reproduce=reproduce)


def _send_kwargs(params: dict[str, Any] | None, headers: dict[str, str] | None,
                 body: object | None) -> dict[str, Any]:
    """ctx.request keywords for a query, headers and a body (bytes/str raw, else JSON)."""
    kwargs: dict[str, Any] = {k: v for k, v in (("params", params), ("headers", headers)) if v}
    if isinstance(body, bytes | str):
        kwargs["content"] = body.encode() if isinstance(body, str) else body
    elif body is not None:
        kwargs["json"] = body
    return kwargs


async def probe_problem(
    ctx: CheckContext,
    method: str,
    path: str,
    status: int,
    slugs: str | tuple[str, ...],
    title: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    body: object | None = None,
    rules: list[str] | None = None,
) -> httpx.Response:
    """Send a request; fail unless it is answered a ``status`` problem of one of ``slugs``."""
    response = await ctx.request(method, path, **_send_kwargs(params, headers, body))
    expect_problem(ctx, response, status, slugs, title,
                   ctx.curl(method, path, headers=headers, body=body, params=params), rules)
    return response


async def probe_status(
    ctx: CheckContext,
    method: str,
    path: str,
    status: int,
    title: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    body: object | None = None,
    rules: list[str] | None = None,
) -> tuple[Any, httpx.Response, str]:
    """Send a request; fail unless it is answered ``status``: (JSON body or None, answer, curl)."""
    response = await ctx.request(method, path, **_send_kwargs(params, headers, body))
    reproduce = ctx.curl(method, path, headers=headers, body=body, params=params)
    return expect_status(ctx, response, status, title, reproduce, rules), response, reproduce


def items_of(ctx: CheckContext, body: Any, response: httpx.Response, title: str,
             reproduce: str) -> list[Any]:
    """The ``items`` list of a page or search answer; fail when it has none."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        fail_response(ctx, response, title, "{items: [...]}", response.text[:300], reproduce)
    return items


def expect_problem(
    ctx: CheckContext,
    response: httpx.Response,
    status: int,
    slugs: str | tuple[str, ...],
    title: str,
    reproduce: str,
    rules: list[str] | None = None,
) -> None:
    """Fail unless response is a problem+json with that status and one of those slugs."""
    wanted = (slugs,) if isinstance(slugs, str) else slugs
    errors = judging.expected_problem_errors(
        response.status_code, response.headers.get("content-type"), response.content, status,
        wanted, check_media_type=False)
    if errors:
        prefix = judging.problem_prefix()
        fail_response(
            ctx, response, title,
            f"{status} application/problem+json, type " + " or ".join(prefix + s for s in wanted),
            f"{response.status_code} {http.media_type(response.headers) or '-'}, "
            f"type {problem_slug(response)!r}: {response.text[:200]}",
            reproduce, rules)


def expect_at_bound(ctx: CheckContext, response: httpx.Response, label: str, status: int,
                    slug: str | None, reproduce: str, past: str = "was not refused") -> None:
    """A probe at or past a limit: at it (``slug`` None) the answer must be ``status``; past
    it, a ``status`` problem ``slug`` (the title says the probe ``past``)."""
    if slug is not None:
        expect_problem(ctx, response, status, slug, f"{label} {past}", reproduce)
    elif response.status_code != status:
        fail_response(ctx, response, f"{label} was refused",
                      f"{status} (a value at the limit is accepted)",
                      f"{response.status_code}: {response.text[:200]}", reproduce)


def expect_status(
    ctx: CheckContext,
    response: httpx.Response,
    status: int,
    title: str,
    reproduce: str,
    rules: list[str] | None = None,
) -> Any:
    """Fail unless the response has that status; return its JSON body (None if not JSON)."""
    if response.status_code != status:
        fail_response(ctx, response, title, f"{status}",
                      f"{response.status_code}: {response.text[:300]}", reproduce, rules)
    try:
        return response.json()
    except ValueError:
        return None


async def recent_own(
    ctx: CheckContext, extra: dict[str, Any] | None = None, limit: int = 200
) -> tuple[list[dict[str, Any]], httpx.Response, str]:
    """This check's documents via recent (filtered on the run/check tag): items, response, curl."""
    params = {"filter": ctx.own_filter(extra), "limit": str(limit)}
    body, response, reproduce = await probe_status(
        ctx, "GET", f"{ctx.collection_path}/recent", 200,
        "recent with a filter was not answered 200", params=params)
    items = items_of(ctx, body, response, "recent answer has no items list", reproduce)
    return items, response, reproduce


async def expect_only_own(ctx: CheckContext, doc_id: object, title: str) -> None:
    """Fail (``title``) unless doc_id is the one document this check stored (via recent)."""
    items, _, reproduce = await recent_own(ctx)
    ids = [item.get("id") for item in items]
    if ids != [doc_id]:
        ctx.fail(title, expected=f"only {doc_id}", received=str(ids), reproduce=reproduce)


def documented_methods(template: str) -> set[str]:
    """Methods the OpenAPI document lists for a path template (``/v1/health``), upper case."""
    import importlib

    document = importlib.import_module("dualstore_spec").openapi()
    paths = document.get("paths") or {}
    prefix = ""
    servers = document.get("servers") or []
    if servers:
        from urllib.parse import urlparse

        prefix = urlparse(str(servers[0].get("url", ""))).path.rstrip("/")
    for key, item in paths.items():
        if prefix + key == template or key == template:
            return {m.upper() for m in item if m in HTTP_METHODS}
    return set()


ALSO_ALLOWED = frozenset({"HEAD", "OPTIONS"})
"""Methods an Allow header may list beside the documented ones (HTTP-005)."""


def allow_lists_exactly(allow: set[str], documented: set[str]) -> bool:
    """Allow names every documented method and nothing else, except HEAD and OPTIONS."""
    return documented <= allow <= documented | ALSO_ALLOWED


def missing_collection_name() -> str:
    """A collection name that fits the usual pattern and that no deployment serves."""
    return f"conformance_missing_{uuid.uuid4().hex[:12]}"


# -- checks -------------------------------------------------------------------------------
@check("http-unknown-route-404",
       "HTTP: a path the API does not define gets 404 not-found problem",
       ["HTTP-007", "HTTP-001"])
async def unknown_route(ctx: CheckContext) -> None:
    for path in ("/conformance-no-such-route", f"{ctx.collection_path}/recent/conformance/extra"):
        await probe_problem(ctx, "GET", path, 404, "not-found",
                            f"GET {path} was not a 404 not-found problem")


@check("http-unknown-collection-404",
       "HTTP: a collection the deployment does not serve gets 404 unknown-collection",
       ["HTTP-008", "HTTP-001"])
async def unknown_collection(ctx: CheckContext) -> None:
    path = f"/v1/{missing_collection_name()}/recent"
    await probe_problem(ctx, "GET", path, 404, "unknown-collection",
                        "recent of an unknown collection was not 404 unknown-collection")


@check("http-method-not-allowed-allow",
       "HTTP: an unsupported method gets 405 with Allow listing the documented methods "
       "(plus HEAD/OPTIONS)",
       ["HTTP-005", "HTTP-001"])
async def method_not_allowed(ctx: CheckContext) -> None:
    cases = [
        ("POST", "/v1/health", "/v1/health"),
        ("DELETE", ctx.collection_path, "/v1/{collection}"),
        ("PUT", f"{ctx.collection_path}/recent", "/v1/{collection}/recent"),
    ]
    for method, path, template in cases:
        documented = documented_methods(template)
        if not documented or method in documented:
            # the harness's own probe table no longer fits the spec: nothing was sent
            ctx.unobserved(f"the spec documents {sorted(documented) or 'no methods'} for "
                           f"{template}: no undocumented method to probe with {method}")
        body: dict[str, Any] | None = {} if method in {"POST", "PUT"} else None
        response = await probe_problem(
            ctx, method, path, 405, "method-not-allowed",
            f"{method} {template} was not a 405 method-not-allowed problem", body=body)
        allow = {
            m.strip().upper() for m in response.headers.get("allow", "").split(",") if m.strip()
        }
        if not allow_lists_exactly(allow, documented):
            fail_response(
                ctx, response, f"405 for {method} {template} has a wrong Allow header",
                f"Allow: {', '.join(sorted(documented))} (HEAD and OPTIONS may also be listed)",
                f"Allow: {response.headers.get('allow', '(missing)')}",
                ctx.curl(method, path, body=body))


@check("http-unsupported-media-type-415",
       "HTTP: a POST that is not application/json gets 415 unsupported-media-type",
       ["HTTP-006", "HTTP-001"])
async def unsupported_media_type(ctx: CheckContext) -> None:
    await probe_problem(
        ctx, "POST", ctx.collection_path, 415, "unsupported-media-type",
        "POST with Content-Type text/plain was not 415 unsupported-media-type",
        headers={"Content-Type": "text/plain"}, body="conformance: not json")


@check("http-invalid-json-400",
       "HTTP: a POST body that is not well-formed JSON gets 400 invalid-json",
       ["HTTP-009", "HTTP-001"])
async def invalid_json(ctx: CheckContext) -> None:
    headers = {"Content-Type": "application/json"}
    for body in (b'{"text": "conformance', b"\xff\xfe{}"):
        await probe_problem(ctx, "POST", ctx.collection_path, 400, "invalid-json",
                            "POST with a malformed JSON body was not 400 invalid-json",
                            headers=headers, body=body)


@check("http-empty-optional-parameters",
       "HTTP: empty cursor, filter and Idempotency-Key values count as absent",
       ["HTTP-011"])
async def empty_optional_parameters(ctx: CheckContext) -> None:
    path = f"{ctx.collection_path}/recent"
    body, response, reproduce = await probe_status(
        ctx, "GET", path, 200, "recent with empty cursor and filter was not 200",
        params={"cursor": "", "filter": "", "limit": "1"})
    items_of(ctx, body, response, "recent with empty cursor and filter has no items list",
             reproduce)
    await probe_status(ctx, "GET", f"{ctx.collection_path}/search", 200,
                       "search with an empty filter was not 200",
                       params={"q": "conformance", "filter": ""})
    # An empty Idempotency-Key is no key: the same body posted twice makes two documents.
    headers = {"Idempotency-Key": ""}
    text = ctx.unique_text("empty-key")
    first = await ctx.insert(text=text, headers=headers)
    second = await ctx.insert(text=text, headers=headers)
    if first["id"] == second["id"]:
        ctx.fail(
            "an empty Idempotency-Key was treated as a key",
            expected="two POSTs with Idempotency-Key: '' create two documents",
            received=f"both answered id {first['id']}",
            reproduce=ctx.curl("POST", ctx.collection_path, headers=headers, body=first["body"]),
        )


@check("http-ui-page-or-404",
       "HTTP: /v1/ui/ serves an HTML page, or 404 not-found when the deployment disables it",
       ["HTTP-014"])
async def ui_page(ctx: CheckContext) -> None:
    response = await ctx.request("GET", "/v1/ui/")
    if response.status_code == 404:
        expect_problem(ctx, response, 404, "not-found", "a disabled /v1/ui/ is not a 404 problem",
                       ctx.curl("GET", "/v1/ui/"))
        return
    if response.status_code != 200 or http.media_type(response.headers) != "text/html":
        fail_response(ctx, response, "/v1/ui/ is neither an HTML page nor 404",
                      "200 text/html, or 404 not-found",
                      f"{response.status_code} {response.headers.get('content-type')}",
                      ctx.curl("GET", "/v1/ui/"))
