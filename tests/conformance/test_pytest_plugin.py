# SPDX-License-Identifier: GPL-3.0-or-later
"""The pytest plugin: inert without --dualstore-url, one item per check, strict xfail file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:locust", "-p", "no:schemathesis")
"""Plugins this test does not need (faster subprocess start)."""
FRAMING = "sse-frame-content-type,sse-frame-cache-control,sse-frame-insert-event"


def test_inert_without_url(request: pytest.FixtureRequest) -> None:
    """This very session loads the plugin (entry point) without --dualstore-url."""
    from dualstore_conformance.pytest_plugin import DualstoreItem

    assert request.config.pluginmanager.has_plugin("dualstore")
    assert request.config.getoption("--dualstore-url") is None
    assert not any(isinstance(item, DualstoreItem) for item in request.session.items)


def test_one_item_per_check(pytester: pytest.Pytester, mini_target: tuple[str, Any]) -> None:
    url, _ = mini_target
    result = pytester.runpytest_subprocess(
        *QUIET, "-v", "--dualstore-url", url, "--dualstore-only", FRAMING
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*dualstore::sse-frame-insert-event PASSED*"])


def test_xfail_file_is_strict(pytester: pytest.Pytester, mini_target: tuple[str, Any]) -> None:
    url, state = mini_target
    state.mode = "wrong-type"
    xfail = pytester.makefile(
        ".yaml",
        expected="sse-frame-content-type: our stream says text/plain\n"
        "sse-frame-cache-control: believed broken, but it passes\n",
    )
    result = pytester.runpytest_subprocess(
        *QUIET, "-rxX", "--dualstore-url", url,
        "--dualstore-only", "sse-frame-content-type,sse-frame-cache-control",
        "--dualstore-xfail", str(xfail),
    )
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*sse-frame-cache-control*remove it from*"])
    assert result.ret == 1


def test_failure_shows_expected_received_and_curl(
    pytester: pytest.Pytester, mini_target: tuple[str, Any]
) -> None:
    url, state = mini_target
    state.mode = "wrong-type"
    result = pytester.runpytest_subprocess(
        *QUIET, "--dualstore-url", url,
        "--dualstore-only", "sse-frame-content-type",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*received: text/plain*", "*reproduce: curl*"])


def test_xfail_file_rejects_unknown_ids_and_bad_shapes(tmp_path: Path) -> None:
    from dualstore_conformance.pytest_plugin import load_xfail

    good = tmp_path / "good.yaml"
    good.write_text("sse-a: known bug\nsse-b:\n", "utf-8")
    assert load_xfail(good, {"sse-a", "sse-b"}) == {"sse-a": "known bug",
                                                    "sse-b": "expected failure"}
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("no-such-check: reason\n", "utf-8")
    with pytest.raises(pytest.UsageError, match="no-such-check"):
        load_xfail(unknown, {"sse-a"})
    listing = tmp_path / "list.yaml"
    listing.write_text("- sse-a\n", "utf-8")
    with pytest.raises(pytest.UsageError, match="must map"):
        load_xfail(listing, {"sse-a"})
