# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP-020: how big a request was on the wire, and whether its refusal is excused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from dualstore_spec import facts as spec_facts

REFUSAL_STATUSES = frozenset({400, 414, 431})
"""How x-dualstore-implementation-defined ``oversize-request`` lets a server refuse (with
any body or none); a closed connection is the remaining alternative."""


@dataclass(frozen=True)
class RequestSize:
    """Octets of a request's request line and (at least) of its header section."""

    request_line: int
    header_section: int


def request_target(url: str) -> str:
    """The origin-form request target of url: its path and query as sent."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def measure(
    method: str, url: str, headers: Mapping[str, str] | Iterable[tuple[str, str]]
) -> RequestSize:
    """The size of ``METHOD target HTTP/1.1`` and of the field lines ``name: value CRLF``.

    The header section counts the given fields plus ``Host`` (from url, unless given); a
    transport may add more, so it is a lower bound, which is what an excuse needs.
    """
    line = len(f"{method.upper()} {request_target(url)} HTTP/1.1".encode("latin-1", "replace"))
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    if not any(name.lower() == "host" for name, _ in pairs):
        pairs.append(("Host", urlsplit(url).netloc))
    fields = sum(len(f"{name}: {value}\r\n".encode("latin-1", "replace")) for name, value in pairs)
    return RequestSize(request_line=line, header_section=fields)


def over_the_minimums(size: RequestSize, limits: spec_facts.RequestSize | None = None) -> bool:
    """True when the request line or header section exceeded what every server must accept."""
    minimum = limits or spec_facts.current().request_size
    return (
        size.request_line > minimum.min_request_line_octets
        or size.header_section > minimum.min_header_section_octets
    )


def excused_refusal(
    status: int,
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    limits: spec_facts.RequestSize | None = None,
) -> bool:
    """True when ``status`` refuses a request really over HTTP-020's minimums: such a
    refusal is implementation-defined (any body or none) and never judged."""
    return status in REFUSAL_STATUSES and over_the_minimums(measure(method, url, headers), limits)
