# SPDX-License-Identifier: GPL-3.0-or-later
"""sseclient-py as its README shows it: SSEClient over a streamed requests response."""

from __future__ import annotations

import sys

import _protocol
import requests
import sseclient


def main(url: str) -> int:
    _protocol.hello("sseclient-py", [])
    if _protocol.DESCRIBE:
        return 0
    try:
        response = requests.get(url, stream=True, headers={"Accept": "text/event-stream"},
                                timeout=(10, None))
        _protocol.emit("open")
        client = sseclient.SSEClient(response)
        for event in client.events():
            _protocol.event(event.event, event.data, event.id)
        _protocol.emit("closed", reason="stream ended")
    except Exception as error:  # report whatever the library raised
        _protocol.emit("error", message=f"{type(error).__name__}: {error}")
        _protocol.emit("closed", reason="raised")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
