# SPDX-License-Identifier: GPL-3.0-or-later
"""Each shipped adapter against a few scenarios (browsers: slow, Debian's chromium)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from dualstore_conformance.client_suite import runner
from dualstore_conformance.client_suite.launcher import describe
from dualstore_conformance.client_suite.scenarios import load_all
from dualstore_conformance.client_suite.verdicts import Verdict

SCENARIOS = {scenario.id: scenario for scenario in load_all()}
PY = shlex.quote(sys.executable)
OURS = "dualstore_conformance.client_suite.adapters"


def _run(command: str, ids: list[str]) -> dict[str, tuple[Verdict, str]]:
    hello = describe(command, "http://127.0.0.1:9/", 120)
    assert "skip" not in hello, hello
    report = runner.run_all(command, hello, [SCENARIOS[i] for i in ids])
    return {r.id: (r.verdict, r.message) for r in report.results}


DUALSTORE_FEW = ["cr-line-endings", "utf8-split-across-chunks", "dualstore-resume-after-drop",
                 "dualstore-no-duplicate-after-reconnect", "dualstore-filter-encoding",
                 "dualstore-auth-on-stream", "redirect-followed", "field-without-colon"]


@pytest.mark.parametrize("flag", ["", "--async"])
def test_python_client_adapter(flag: str) -> None:
    got = _run(f"{PY} -m {OURS}.dualstore_python {flag}".strip(), DUALSTORE_FEW)
    for scenario_id in DUALSTORE_FEW[:-1]:
        assert got[scenario_id][0] is Verdict.PASSED, (scenario_id, got[scenario_id])
    verdict, message = got["field-without-colon"]  # a generic-client scenario
    assert verdict is Verdict.NOT_JUDGED and "DualStore API clients" in message


def test_adapter_that_prints_nothing_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "mute.py"
    script.write_text("import sys, json\n"
                      "print(json.dumps({'kind': 'hello', 'client': 'mute', 'version': '0',"
                      " 'profile': 'eventsource', 'features': []}), flush=True)\n"
                      "import os\n"
                      "sys.exit(0 if os.environ.get('SSE_CONFORM_DESCRIBE') else 3)\n")
    got = _run(f"{PY} {script}", ["lf-line-endings"])
    verdict, message = got["lf-line-endings"]
    assert verdict is Verdict.ERROR and "exited with 3" in message


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("flag, ids", [
    ("", ["cr-line-endings", "id-with-nul-ignored", "last-event-id-sent", "stop-on-204"]),
    ("--dualstore-js", ["crlf-split-across-chunks", "dualstore-resume-after-drop",
                        "dualstore-auth-on-stream"]),
])
def test_chromium_adapters(flag: str, ids: list[str]) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api")
    got = _run(f"{PY} -m {OURS}.chromium {flag}".strip(), ids)
    for scenario_id in ids:
        assert got[scenario_id][0] is Verdict.PASSED, (scenario_id, got[scenario_id])


@pytest.mark.slow
@pytest.mark.browser
def test_chromium_backoff_is_informational_not_failed() -> None:
    """Chromium reconnects at the same delay after failures: allowed (MAY), so informational."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api")
    got = _run(f"{PY} -m {OURS}.chromium", ["backoff-on-failures"])
    assert got["backoff-on-failures"][0] in (Verdict.INFORMATIONAL, Verdict.PASSED)


def test_adapter_exits_when_the_harness_is_gone() -> None:
    """An adapter whose parent died (a killed harness) exits by itself within seconds."""
    import os
    import signal
    import subprocess
    import time

    shell = subprocess.Popen(
        ["sh", "-c", f"SSE_CONFORM_BASE_URL=http://127.0.0.1:9/x {PY} -m {OURS}.dualstore_python "
                     "http://127.0.0.1:9/x/v1/c/stream "
                     ">/dev/null 2>&1 & echo $!; wait"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert shell.stdout is not None
    child = int(shell.stdout.readline())
    time.sleep(1.5)  # the adapter is up, retrying an unreachable port
    os.kill(child, 0)  # alive
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the orphaned adapter kept running")
