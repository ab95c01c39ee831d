# SPDX-License-Identifier: GPL-3.0-or-later
"""The /v1/ui/ page: served files, media types, the browser module, and its absence when off."""

from __future__ import annotations

from pathlib import Path

import falcon.asgi
import falcon.testing
import httpx
import pytest
from dualstore_reference import problems
from dualstore_reference.launcher import RunningReference
from dualstore_reference.resources import ui

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def page() -> falcon.testing.TestClient:
    app = falcon.asgi.App()
    problems.install(app)
    ui.register(app, state=None)
    return falcon.testing.TestClient(app)


def test_page_is_html_that_loads_the_ui_script(page: falcon.testing.TestClient) -> None:
    result = page.simulate_get("/v1/ui/")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="ui.js">' in result.text
    assert 'id="collections"' in result.text and 'id="docs"' in result.text


def test_assets_have_their_media_types(page: falcon.testing.TestClient) -> None:
    for name, media_type in ui.ASSETS.items():
        result = page.simulate_get(f"/v1/ui/{name}")
        assert result.status_code == 200, name
        assert result.headers["content-type"] == media_type


def test_the_served_module_is_the_browser_client_from_clients_js(
    page: falcon.testing.TestClient,
) -> None:
    served = page.simulate_get("/v1/ui/dualstore-sse-client.js").content
    assert served == (ROOT / "clients" / "js" / "dualstore-sse-client.js").read_bytes()
    script = page.simulate_get("/v1/ui/ui.js").text
    assert 'from "./dualstore-sse-client.js"' in script


@pytest.mark.parametrize("name", ["missing.js", "..%2Fui.py", "%2E%2E%2Fapp.py", "__init__.py"])
def test_anything_else_is_a_404_problem(page: falcon.testing.TestClient, name: str) -> None:
    result = page.simulate_get(f"/v1/ui/{name}")
    assert result.status_code == 404
    assert result.headers["content-type"] == "application/problem+json"
    assert result.json["type"] == "urn:dualstore:problem:not-found"


def test_the_page_is_off_unless_enabled(reference_server: RunningReference) -> None:
    # the shared server runs without UI_ENABLED
    for path in ("/v1/ui/", "/v1/ui/dualstore-sse-client.js"):
        answer = httpx.get(reference_server.url + path, timeout=10)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
    page = httpx.get(reference_server.url + "/v1/ui/", timeout=10).json()
    assert page["type"] == "urn:dualstore:problem:not-found"  # rule HTTP-014
