# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-015: a request breaking two rules gets the problem the spec's precedence table names.

Every pair probed comes from ``x-dualstore-http.precedence.wins`` (``dualstore_spec.facts``):
for each listed (winner, loser) the check builds one request that breaks the loser's rule and
then the winner's on top of it. Pairs the table does not list are implementation-defined and
never built; listed pairs no single request can break together are named in a note.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dualstore_spec import facts

from dualstore_conformance import judging
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

JSON = "application/json"
IDEMPOTENCY = "Idempotency-Key"


@dataclass(frozen=True)
class Probe:
    """One request, described so a winner's breakage can be put on top of a loser's."""

    kind: str
    """get-doc, recent, stream or post: which breakages can be combined with it."""
    method: str
    tail: str
    """The path after /v1/{collection}."""
    collection: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    pad: Callable[[int], bytes] | None = None
    """For posts: the same body grown to exactly n bytes, still breaking the same rule."""
    auth: bool = True

    @property
    def path(self) -> str:
        return f"/v1/{self.collection}{self.tail}"


def post(collection: str, body: bytes, pad: Callable[[int], bytes],
         headers: dict[str, str] | None = None) -> Probe:
    """A POST of body (application/json unless headers say otherwise)."""
    return Probe("post", "POST", "", collection, headers={"Content-Type": JSON, **(headers or {})},
                 body=body, pad=pad)


def padded(prefix: bytes, suffix: bytes) -> Callable[[int], bytes]:
    """prefix + 'x' * k + suffix of exactly n bytes."""
    return lambda n: prefix + b"x" * (n - len(prefix) - len(suffix)) + suffix


def losers(collection: str, key: str, unknown: str) -> dict[str, Probe]:
    """A request breaking each loser's rule alone (idempotency: key already used for another
    body). Slugs without an entry cannot be broken by a request the winners can combine with."""
    missing = uuid.uuid4().hex  # a server-assigned id shape nobody was given
    return {
        "unknown-collection": Probe("recent", "GET", "/recent", unknown),
        "not-found": Probe("get-doc", "GET", f"/{missing}", collection),
        "invalid-request": Probe("recent", "GET", "/recent", collection, params={"limit": "0"}),
        "invalid-filter": Probe("recent", "GET", "/recent", collection,
                                params={"filter": "not-a-filter!"}),
        "invalid-cursor": Probe("recent", "GET", "/recent", collection,
                                params={"cursor": "not-a-cursor!"}),
        "invalid-resume-token": Probe("stream", "GET", "/stream", collection,
                                      headers={"Last-Event-ID": "not a token!"}),
        "unsupported-media-type": replace(
            post(collection, b'{"text":"precedence media"}', padded(b"", b"")),
            headers={"Content-Type": "text/plain"}, pad=None),
        "invalid-json": post(collection, b'{"text":', padded(b'{"text":"', b"")),
        "validation-failed": post(collection, b'{"text":""}',
                                  padded(b'{"text":"","metadata":{"pad":"', b'"}}')),
        "idempotency-key-reuse": post(
            collection, b'{"text":"precedence other body"}',
            padded(b'{"text":"precedence other body","metadata":{"pad":"', b'"}}'),
            headers={IDEMPOTENCY: key}),
    }


def winners(ctx: CheckContext, unknown: str) -> dict[str, Callable[[Probe], Probe | None]]:
    """How each winner's rule is broken on top of a probe (None: not on that kind)."""
    cap = int(ctx.limits["max_body_bytes"])

    def oversize(probe: Probe) -> Probe | None:
        if probe.pad is None:
            return None
        return replace(probe, body=probe.pad(cap + 1))

    def media(probe: Probe) -> Probe | None:
        if probe.kind != "post":
            return None
        return replace(probe, headers={**probe.headers, "Content-Type": "text/plain"})

    return {
        "unauthorized": lambda probe: replace(probe, auth=False),
        "unknown-collection": lambda probe: replace(probe, collection=unknown),
        "unsupported-media-type": media,
        "payload-too-large": oversize,
    }


async def send(ctx: CheckContext, probe: Probe) -> tuple[int, str, bytes, str]:
    """(status, content type, body, reproduction) of a probe."""
    if probe.kind == "stream":
        async with ctx.open_stream(probe.params, headers=probe.headers, auth=probe.auth,
                                   path=probe.path) as reader:
            return (reader.status, reader.headers.get("content-type", ""), reader.body,
                    reader.reproduce())
    response = await ctx.request(probe.method, probe.path, params=probe.params,
                                 headers=probe.headers, content=probe.body, auth=probe.auth)
    shown = None if probe.body is None else probe.body[:80] + (
        b"..." if len(probe.body) > 80 else b"")
    return (response.status_code, response.headers.get("content-type", ""), response.content,
            ctx.curl(probe.method, probe.path, headers=probe.headers, body=shown,
                     params=probe.params))


@check("http-precedence",
       "Precedence: a request breaking two rules gets the problem the spec's table names",
       ["HTTP-015"], timeout_s=60)
async def precedence(ctx: CheckContext) -> None:
    spec = facts.current()
    key = f"precedence-{uuid.uuid4().hex}"
    first = await ctx.request("POST", ctx.collection_path, headers={IDEMPOTENCY: key},
                              json=ctx.tagged_body(ctx.unique_text("precedence")))
    if first.status_code != 201:
        ctx.unobserved(f"the POST that claims an Idempotency-Key answered {first.status_code}")
    unknown = f"no_such_collection_{uuid.uuid4().hex[:12]}"
    built = losers(ctx.collection, key, unknown)
    breakers = winners(ctx, unknown)
    judged: list[str] = []
    left_out: list[str] = []
    for winner, beaten in spec.precedence.items():
        for loser in beaten:
            base = built.get(loser)
            probe = breakers[winner](base) if winner in breakers and base else None
            if probe is None:
                left_out.append(f"{winner} > {loser} (no single request breaks both)")
                continue
            if winner == "unauthorized" and not ctx.target.token:
                left_out.append(f"{winner} > {loser} (no token declared)")
                continue
            status, content_type, body, reproduce = await send(ctx, probe)
            errors = judging.expected_problem_errors(status, content_type, body,
                                                     spec.problem(winner).status, (winner,),
                                                     check_media_type=False)
            if errors:
                ctx.fail(
                    f"a request breaking both {winner} and {loser} was not answered {winner}",
                    expected=f"{spec.problem(winner).status} problem {winner} "
                    "(x-dualstore-http.precedence)",
                    received="; ".join(errors) + f": {body[:200].decode('utf-8', 'replace')}",
                    reproduce=reproduce,
                )
            judged.append(f"{winner} > {loser}")
    if not judged:
        ctx.unobserved("no pair of the precedence table could be probed: "
                       + "; ".join(left_out))
    ctx.note(f"judged {len(judged)} pairs: {', '.join(judged)}")
    if left_out:
        ctx.note("not probed: " + "; ".join(left_out))
