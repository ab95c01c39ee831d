# SPDX-License-Identifier: GPL-3.0-or-later
"""httpx-sse as its README shows it: connect_sse + iter_sse (it does not reconnect)."""

from __future__ import annotations

import sys

import _protocol
import httpx
from httpx_sse import connect_sse


def main(url: str) -> int:
    _protocol.hello("httpx-sse", [])
    if _protocol.DESCRIBE:
        return 0
    try:
        # redirects are the httpx client's choice (off by default): on, as EventSource does
        with httpx.Client(timeout=httpx.Timeout(10.0, read=None),
                          follow_redirects=True) as client, \
                connect_sse(client, "GET", url) as source:
            _protocol.emit("open")
            for sse in source.iter_sse():
                _protocol.event(sse.event, sse.data, sse.id)
        _protocol.emit("closed", reason="stream ended")
    except Exception as error:  # report whatever the library raised
        _protocol.emit("error", message=f"{type(error).__name__}: {error}")
        _protocol.emit("closed", reason="raised")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
