# SPDX-License-Identifier: GPL-3.0-or-later
"""A small generic SSE client run as an adapter, correct by default; ``--break X`` plants
one known bug (the harness must catch each): ignore-retry, drop-cr, no-last-event-id,
dispatch-blank."""

from __future__ import annotations

import sys
import time

import httpx
from dualstore_conformance.client_suite.adapters import protocol
from dualstore_sse import Event, SSEParser

BREAKS = ("ignore-retry", "drop-cr", "no-last-event-id", "dispatch-blank")
DEFAULT_RETRY_MS = 1000


def run(cfg: protocol.AdapterConfig, broken: str | None) -> None:
    last_id = ""
    retry_ms = DEFAULT_RETRY_MS
    with httpx.Client(timeout=httpx.Timeout(5.0, read=None), follow_redirects=True) as http:
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id and broken != "no-last-event-id":
                headers["Last-Event-ID"] = last_id
            try:
                with http.stream("GET", cfg.url, headers=headers) as response:
                    media = response.headers.get("content-type", "").split(";")[0].strip()
                    if response.status_code != 200 or media != "text/event-stream":
                        protocol.emit("closed", reason=f"status {response.status_code} {media}")
                        return
                    protocol.emit("open")
                    parser = SSEParser(last_event_id=last_id)
                    blocks = 0
                    for chunk in response.iter_bytes():
                        if broken == "drop-cr":
                            chunk = chunk.replace(b"\r", b"")
                        items = parser.feed(chunk)
                        events = [item for item in items if isinstance(item, Event)]
                        for event in events:
                            if event.type in cfg.listen:
                                protocol.emit("event", type=event.type, data=event.data,
                                              last_event_id=event.last_event_id)
                        if broken == "dispatch-blank":
                            for _ in range(parser.blocks - blocks - len(events)):
                                protocol.emit("event", type="message", data="", last_event_id="")
                        blocks = parser.blocks
                        last_id = parser.last_event_id
                        if parser.retry_ms is not None and broken != "ignore-retry":
                            retry_ms = parser.retry_ms
                    parser.close()
            except httpx.HTTPError as error:
                protocol.emit("error", message=str(error))
            time.sleep(retry_ms / 1000.0)


def main() -> int:
    args = sys.argv[1:]
    broken = None
    if "--break" in args:
        at = args.index("--break")
        broken = args[at + 1]
        del args[at:at + 2]
        assert broken in BREAKS, broken
    cfg = protocol.config(args)
    protocol.hello(f"toy client ({broken or 'correct'})", "0", "eventsource", ["reconnect"])
    if not cfg.describe:
        run(cfg, broken)
    return 0


if __name__ == "__main__":
    sys.exit(main())
