# SPDX-License-Identifier: GPL-3.0-or-later
"""The client's IP address: X-Forwarded-For is believed only when sent by a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import falcon.asgi

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """TRUSTED_PROXIES entries (addresses or CIDR networks) as networks."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(req: falcon.asgi.Request, proxies: tuple[Network, ...]) -> str:
    """The peer address, or, when the peer is a trusted proxy, the nearest untrusted
    address in X-Forwarded-For (read right to left, skipping trusted hops)."""
    peer = req.remote_addr or "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = req.get_header("X-Forwarded-For")
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a forged or garbled entry: fall back to the proxy itself
    return hops[0] if hops else peer
