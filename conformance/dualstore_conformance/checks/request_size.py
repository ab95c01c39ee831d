# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-020: a request line of the spec's minimum octets and a header section of its minimum
octets, together, are served like any request."""

from __future__ import annotations

from dualstore_spec import facts as spec_facts

from dualstore_conformance import oversize
from dualstore_conformance.context import CheckContext
from dualstore_conformance.registry import check

PAD_PARAMETER = "conformance-pad"
"""An unknown query parameter (ignored, HTTP-017) that lengthens the request line."""
PAD_HEADER = "X-Conformance-Pad"
"""An unknown header that lengthens the header section."""


def padded_to(ctx: CheckContext, minimum: spec_facts.RequestSize) -> tuple[str, dict[str, str]]:
    """(path with query, extra headers) whose request line and header section, as this
    client sends them, are exactly the spec's minimums."""
    path = f"{ctx.collection_path}/recent?limit=1&{PAD_PARAMETER}="
    probe = ctx.client.build_request("GET", path, headers={PAD_HEADER: ""})
    size = oversize.measure("GET", str(probe.url), probe.headers.multi_items())
    path += "a" * (minimum.min_request_line_octets - size.request_line)
    headers = {PAD_HEADER: "b" * (minimum.min_header_section_octets - size.header_section)}
    return path, headers


@check("http-request-size-minimums",
       "HTTP: an 8,000-octet request line with an 8,192-octet header section is served",
       ["HTTP-020"])
async def request_size_minimums(ctx: CheckContext) -> None:
    minimum = spec_facts.current().request_size
    path, headers = padded_to(ctx, minimum)
    request = ctx.client.build_request("GET", path, headers=headers)
    size = oversize.measure("GET", str(request.url), request.headers.multi_items())
    if (size.request_line, size.header_section) != (minimum.min_request_line_octets,
                                                    minimum.min_header_section_octets):
        ctx.unobserved(f"could not build a request of exactly the minimums: {size}")
    response = await ctx.request("GET", path, headers=headers)
    if response.status_code != 200:
        ctx.fail(
            "a request within the sizes every server must accept was not served",
            expected=f"200 (request line {minimum.min_request_line_octets} octets and header "
                     f"section {minimum.min_header_section_octets} octets are accepted)",
            received=f"{response.status_code} {response.text[:200]}",
            evidence={"request_line_octets": size.request_line,
                      "header_section_octets": size.header_section, **ctx.evidence(response)},
            reproduce=ctx.curl("GET", path, headers=headers),
        )
