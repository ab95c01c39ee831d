# SPDX-License-Identifier: GPL-3.0-or-later
"""requests-sse's EventSource (it reconnects, sending Last-Event-ID)."""

from __future__ import annotations

import sys

import _protocol
from requests_sse import EventSource


def main(url: str) -> int:
    _protocol.hello("requests-sse", ["reconnect"])
    if _protocol.DESCRIBE:
        return 0
    try:
        with EventSource(url, timeout=(10, None),
                         on_open=lambda: _protocol.emit("open"),
                         on_error=lambda: _protocol.emit("error", message="on_error")) as source:
            for event in source:
                _protocol.event(event.type, event.data, event.last_event_id)
        _protocol.emit("closed", reason="iteration ended")
    except Exception as error:  # report whatever the library raised
        _protocol.emit("error", message=f"{type(error).__name__}: {error}")
        _protocol.emit("closed", reason="raised")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
