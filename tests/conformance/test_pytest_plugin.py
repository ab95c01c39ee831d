# SPDX-License-Identifier: GPL-3.0-or-later
"""The pytest plugin: inert without --dualstore-url, one item per check, strict xfail file."""

from __future__ import annotations

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


def test_unknown_id_in_xfail_file_is_a_usage_error(
    pytester: pytest.Pytester, mini_target: tuple[str, Any]
) -> None:
    url, _ = mini_target
    xfail = pytester.makefile(".yaml", expected="no-such-check: reason\n")
    result = pytester.runpytest_subprocess(
        *QUIET, "--dualstore-url", url, "--dualstore-xfail", str(xfail)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown check ids*no-such-check*"])
