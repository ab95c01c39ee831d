# SPDX-License-Identifier: GPL-3.0-or-later
"""Adapter for Debian's Chromium (Playwright, never a downloaded browser): its own
``EventSource`` (default), or ``--dualstore-js`` for clients/js's ``DualStoreStream``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dualstore_conformance.client_suite.adapters import protocol

CHROMIUM_ENV = "DUALSTORE_CHROMIUM"
"""Path of the Chromium binary (default /usr/bin/chromium)."""
JS_CLIENT_ENV = "DUALSTORE_JS_CLIENT"
"""Path of dualstore-sse-client.js (default: clients/js of this checkout)."""
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAGE_PATH = "/__page"

EVENTSOURCE_JS = """(args) => {
  const es = new EventSource(args.url);
  es.onopen = () => window.conformReport({kind: "open"});
  es.onerror = () => {
    window.conformReport({kind: "error", message: "error event", readyState: es.readyState});
    if (es.readyState === 2) window.conformReport({kind: "closed", reason: "readyState CLOSED"});
  };
  for (const type of args.listen) {
    es.addEventListener(type, (e) => window.conformReport(
      {kind: "event", type: e.type, data: e.data, last_event_id: e.lastEventId}));
  }
}"""

DUALSTORE_JS = """async (args) => {
  const mod = await import(args.module);
  const o = args.options;
  new mod.DualStoreStream(args.base, args.collection, {
    token: o.token, filter: o.filter, since: o.since, lastEventId: o.last_event_id,
    storage: null,
    onOpen: () => window.conformReport({kind: "open"}),
    onError: () => window.conformReport({kind: "error", message: "error event"}),
    onInsert: (doc, id) => {
      if (args.listen.includes("insert")) window.conformReport({kind: "event", type: "insert",
        data: JSON.stringify(doc), doc_id: doc.id, last_event_id: id});
    },
    onHeartbeat: (t) => {
      if (args.listen.includes("heartbeat")) window.conformReport(
        {kind: "event", type: "heartbeat", data: JSON.stringify({t})});
    },
  });
}"""


def _js_client() -> Path | None:
    configured = os.environ.get(JS_CLIENT_ENV)
    if configured:
        return Path(configured)
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "clients" / "js" / "dualstore-sse-client.js"
        if candidate.is_file():
            return candidate
    return None


def _missing(chromium: str, js_client: Path | None, use_js: bool) -> str | None:
    if not Path(chromium).exists() and shutil.which(chromium) is None:
        return f"Debian's chromium is not installed at {chromium} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401 - only whether it is installed
    except ImportError:
        return "the playwright Python package is not installed"
    if use_js and (js_client is None or not js_client.is_file()):
        return "clients/js/dualstore-sse-client.js not found (set DUALSTORE_JS_CLIENT)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    use_js = "--dualstore-js" in args
    cfg = protocol.config([a for a in args if a != "--dualstore-js"])
    chromium = os.environ.get(CHROMIUM_ENV, "/usr/bin/chromium")
    js_client = _js_client()
    name = "clients/js DualStoreStream in Chromium" if use_js else "Chromium EventSource"
    reason = _missing(chromium, js_client, use_js)
    if reason is not None:
        protocol.hello(name, "", "dualstore" if use_js else "eventsource", ["reconnect"])
        protocol.emit("skip", reason=reason)
        return 0
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        protocol.hello(name, f"Chromium {browser.version}",
                       "dualstore" if use_js else "eventsource", ["reconnect"])
        if cfg.describe:
            browser.close()
            return 0
        page = browser.new_page()
        page.expose_binding("conformReport", lambda _source, value: _forward(value))
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(cfg.url))
        page.goto(origin + PAGE_PATH)
        if use_js:
            assert js_client is not None
            source = base64.b64encode(js_client.read_bytes()).decode("ascii")
            page.evaluate(DUALSTORE_JS, {
                "module": f"data:text/javascript;base64,{source}", "base": cfg.base_url,
                "collection": cfg.collection, "options": cfg.options, "listen": cfg.listen})
        else:
            page.evaluate(EVENTSOURCE_JS, {"url": cfg.url, "listen": cfg.listen})
        while True:  # bindings are served while Playwright waits; the harness kills us
            page.wait_for_timeout(500)


def _forward(value: Any) -> None:
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        fields = {k: v for k, v in value.items() if k != "kind"}
        protocol.emit(value["kind"], **fields)
    else:
        protocol.emit("error", message=f"adapter page reported {json.dumps(value)[:200]}")


if __name__ == "__main__":
    sys.exit(main())
