# SPDX-License-Identifier: GPL-3.0-or-later
"""The browser client and the /v1/ui/ page in Debian's real Chromium (headless, Playwright)."""

from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from dualstore_client import DualStoreClient
from dualstore_reference.embedded import free_port
from dualstore_reference.launcher import RunningReference, start_reference

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-token"
WAIT_MS = 20_000


class Origin:
    """A static file server on its own loopback port: a web origin for the test pages."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[Origin, Origin]]:
    """(allowed, disallowed): both serve the page's files (the same ui.js and module)."""
    with resources.as_file(resources.files("dualstore_reference") / "static") as folder:
        allowed, blocked = Origin(folder), Origin(folder)
        try:
            yield allowed, blocked
        finally:
            allowed.close()
            blocked.close()


@pytest.fixture(scope="module")
def server(origins: tuple[Origin, Origin]) -> Iterator[RunningReference]:
    """A reference with the UI on, auth on, CORS allowing only the first origin."""
    folder = Path(tempfile.mkdtemp(prefix="dualstore-browser-"))
    env = {
        "UI_ENABLED": "1",
        "AUTH_TOKEN": TOKEN,
        "CORS_ORIGIN": origins[0].url,
        "COLLECTIONS": "live,restart,blocked,stored,demo",
        "SSE_HEARTBEAT_SECONDS": "2",
        "SSE_RETRY_MS": "1500",
        "RATE_LIMIT_BURST": "0",
    }
    running = start_reference(env=env, workers=2, data_dir=folder, port=free_port())
    try:
        yield running
    finally:
        running.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, server: RunningReference) -> Iterator[Any]:
    """A fresh browser context whose session already holds the token for ``server``."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    key = f"dualstore-token:{server.url}/v1"
    context.add_init_script(f"sessionStorage.setItem('{key}', '{TOKEN}')")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def rest(server: RunningReference) -> Iterator[DualStoreClient]:
    with DualStoreClient(server.url, token=TOKEN) as client:
        yield client


def open_ui(page: Any, base: str, server: RunningReference, collection: str) -> None:
    """Load the live page (from ``base``) against the reference and wait until it is live."""
    page.goto(f"{base}/index.html?api={server.url}&collection={collection}")
    page.wait_for_selector("#status.open")
    page.wait_for_function(
        "name => document.querySelector('#title').textContent === name", arg=collection
    )


def shown_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("li.doc", "items => items.map(i => i.dataset.id)")


def wait_shown(page: Any, ids: list[str]) -> None:
    page.wait_for_function(
        "ids => ids.every(id => document.querySelector(`li.doc[data-id='${id}']`))", arg=ids
    )


def test_page_from_an_allowed_origin_receives_inserts_made_through_rest(
    page: Any, origins: tuple[Origin, Origin], server: RunningReference, rest: DualStoreClient
) -> None:
    earlier = rest.insert("live", "inserted before the page opened")
    open_ui(page, origins[0].url, server, "live")
    wait_shown(page, [earlier])  # the recent list
    sent = [rest.insert("live", f"live insert {n}", metadata={"n": n}) for n in range(3)]
    wait_shown(page, sent)
    assert sorted(shown_ids(page)) == sorted([earlier, *sent])
    live = page.evaluate("window.dualstoreUi.inserts.map(i => i.id)")
    assert live == sent  # the three arrived through the stream, in commit order
    assert page.evaluate("window.dualstoreUi.errors") == []


def test_browser_reconnects_itself_with_last_event_id_across_a_server_restart(
    page: Any, origins: tuple[Origin, Origin], server: RunningReference, rest: DualStoreClient
) -> None:
    stream_requests: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: (
            stream_requests.append(request.all_headers())
            if "/restart/stream" in request.url
            else None
        ),
    )
    open_ui(page, origins[0].url, server, "restart")
    before = [rest.insert("restart", f"before restart {n}") for n in range(2)]
    wait_shown(page, before)
    last_id = page.evaluate("window.dualstoreUi.inserts.at(-1).eventId")

    # Offline keeps the browser's reconnects failing (it keeps retrying) until these
    # inserts have been made: they can only reach the page by replay after Last-Event-ID.
    page.context.set_offline(True)
    server.restart()  # same data directory, same port
    after = [rest.insert("restart", f"after restart {n}") for n in range(2)]
    assert shown_ids(page) == list(reversed(before))
    page.context.set_offline(False)
    wait_shown(page, after)
    page.wait_for_selector("#status.open")

    ids = shown_ids(page)
    assert sorted(ids) == sorted(before + after)  # every insert exactly once
    assert page.evaluate("window.dualstoreUi.inserts.map(i => i.id)") == before + after
    stats = page.evaluate("window.dualstoreUi.stream.stats")
    assert stats["duplicates"] == 0, "the browser was sent an event twice"
    assert stats["reopens"] == 0, "the wrapper had to reopen: the browser gave up"
    assert stats["opens"] >= 2
    resumed = [headers for headers in stream_requests if "last-event-id" in headers]
    assert resumed, f"no stream request carried Last-Event-ID: {stream_requests}"
    assert resumed[-1]["last-event-id"] == last_id
    assert "last-event-id" not in stream_requests[0]


def test_page_from_a_disallowed_origin_cannot_read_the_stream(
    page: Any, origins: tuple[Origin, Origin], server: RunningReference, rest: DualStoreClient
) -> None:
    blocked = origins[1].url
    page.goto(f"{blocked}/index.html?api={server.url}&collection=blocked")
    page.wait_for_selector("#error:not([hidden])")
    assert "Cannot reach the server" in page.inner_text("#error")

    stream_url = f"{server.url}/v1/blocked/stream?access_token={TOKEN}"
    page.evaluate(
        """url => {
          window.seen = []; window.errors = 0;
          const source = new EventSource(url);
          window.source = source;
          source.addEventListener('insert', e => window.seen.push(e.data));
          source.addEventListener('heartbeat', e => window.seen.push(e.data));
          source.onerror = () => { window.errors += 1; };
        }""",
        stream_url,
    )
    page.wait_for_function("window.errors > 0")
    rest.insert("blocked", "nobody on the blocked origin may read this")
    page.wait_for_timeout(1000)
    assert page.evaluate("window.source.readyState") == 2  # CLOSED: the browser refused it
    assert page.evaluate("window.seen") == []
    # The server does answer; it is the browser that withholds the body (no CORS grant).
    with httpx.stream("GET", stream_url, headers={"Origin": blocked}, timeout=5) as answer:
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers
    # ...while the allowed origin is granted.
    with httpx.stream("GET", stream_url, headers={"Origin": origins[0].url}, timeout=5) as ok:
        assert ok.headers["access-control-allow-origin"] == origins[0].url


def test_module_resumes_filtered_from_the_id_stored_in_local_storage(
    page: Any, origins: tuple[Origin, Origin], server: RunningReference, rest: DualStoreClient
) -> None:
    start_stream = """async ([api, token]) => {
        const { DualStoreStream } = await import('/dualstore-sse-client.js');
        window.got = [];
        window.stream = new DualStoreStream(api, 'stored', {
          token, filter: { 'metadata.keep': true },
          onInsert: (doc) => window.got.push(doc.id) });
    }"""

    def insert(text: str, keep: bool) -> str:
        return rest.insert("stored", text, metadata={"keep": keep})

    page.goto(f"{origins[0].url}/index.html?api=http://127.0.0.1:1")  # only for its origin
    page.evaluate("localStorage.clear()")
    page.evaluate(start_stream, [server.url, TOKEN])
    page.wait_for_function("window.stream.state === 'open'")
    insert("filtered out", keep=False)
    first = [insert(f"seen {n}", keep=True) for n in range(2)]
    page.wait_for_function("window.got.length >= 2")
    assert page.evaluate("window.got") == first

    page.reload()  # the page goes away; these arrive while nobody listens
    missed = [insert(f"missed {n}", keep=True) for n in range(2)]
    insert("filtered out too", keep=False)
    page.evaluate(start_stream, [server.url, TOKEN])
    page.wait_for_function("window.got.length >= 2")
    sentinel = insert("sentinel", keep=True)  # arrives after anything else it could send
    page.wait_for_function("window.got.length >= 3")
    # exactly the missed matching ones, none repeated, nothing the filter excludes
    assert page.evaluate("window.got") == [*missed, sentinel]


def test_screenshot_of_the_live_page(
    page: Any, server: RunningReference, rest: DualStoreClient, artifacts_dir: Path
) -> None:
    for n, text in enumerate(["Can you summarise the failing test?", "Ran the suite: 2 failures"]):
        rest.insert("demo", text, metadata={"role": "user" if n == 0 else "agent", "turn": n})
    page.goto(f"{server.url}/v1/ui/?collection=demo")  # same origin: the page as served
    page.wait_for_selector("#status.open")
    page.wait_for_selector("li.doc")
    page.fill("#text", "Inserted from the page itself")
    page.click("#insert button")
    live = rest.insert("demo", "Inserted through the REST API", metadata={"role": "agent"})
    wait_shown(page, [live])
    page.wait_for_function("document.querySelectorAll('li.doc').length === 4")
    path = artifacts_dir / "ui-live-page.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_page_asks_for_the_token_and_uses_it(
    browser: Any, server: RunningReference, rest: DualStoreClient
) -> None:
    doc = rest.insert("demo", "visible once the token is given")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/v1/ui/?collection=demo")
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error").startswith("401")
        page.fill("#token", TOKEN)
        page.click("#auth button")
        page.wait_for_selector("#status.open")
        wait_shown(page, [doc])
        # a link pointing the page at another server does not hand it this token
        elsewhere: list[dict[str, str]] = []

        def record(route: Any) -> None:
            elsewhere.append(route.request.headers)
            route.abort()

        page.route("http://127.0.0.1:9/**", record)
        page.goto(f"{server.url}/v1/ui/?api=http://127.0.0.1:9&collection=demo")
        page.wait_for_selector("#error:not([hidden])")
        assert elsewhere, "the page did not call the other server at all"
        assert all("authorization" not in headers for headers in elsewhere)
    finally:
        context.close()
