# SPDX-License-Identifier: GPL-3.0-or-later
"""Third-party library adapters: installed on demand into a private cache, skipped with a
reason when the registry cannot be reached, and each run against a few scenarios (slow)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from dualstore_conformance.client_suite import runner
from dualstore_conformance.client_suite.launcher import describe
from dualstore_conformance.client_suite.scenarios import load_all
from dualstore_conformance.client_suite.verdicts import Verdict

ROOT = Path(__file__).resolve().parents[3]
RUN = ROOT / "conformance" / "client-adapters" / "third_party" / "run.py"
SCENARIOS = {scenario.id: scenario for scenario in load_all()}


def _command(library: str) -> str:
    return shlex.join([sys.executable, str(RUN), library])


@pytest.mark.parametrize("library", ["httpx-sse", "eventsource"])
def test_unreachable_registry_skips_with_a_reason(library: str, tmp_path: Path) -> None:
    env = {**os.environ, "DUALSTORE_ADAPTER_CACHE": str(tmp_path), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": "", "npm_config_registry": "http://127.0.0.1:9/",
           "npm_config_fetch_retries": "0", "npm_config_offline": "true",
           "SSE_CONFORM_DESCRIBE": "1"}
    done = subprocess.run([sys.executable, str(RUN), library, "http://127.0.0.1:9/"], env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["kind"] == "hello" and lines[0]["client"] == library
    assert lines[1]["kind"] == "skip" and "cannot install" in lines[1]["reason"]
    assert not (tmp_path / "site").exists()


def test_unknown_library_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, str(RUN), "no-such-lib", "http://x/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "LIBRARY one of" in done.stderr


# library -> {scenario: verdict} on a few scenarios, as the committed table shows them
FEW = {
    "httpx-sse": {"lf-line-endings": Verdict.PASSED, "block-without-data": Verdict.FAILED,
                  "reconnect-after-close": Verdict.NOT_JUDGED},
    "sseclient-py": {"fail-on-404": Verdict.PASSED, "incomplete-final-block": Verdict.FAILED,
                     "reconnect-after-close": Verdict.NOT_JUDGED},
    "requests-sse": {"retry-invalid-ignored": Verdict.FAILED},
    "aiohttp-sse-client2": {"lf-line-endings": Verdict.PASSED,
                            "cr-line-endings": Verdict.FAILED},
    "eventsource": {"cr-line-endings": Verdict.PASSED, "last-event-id-sent": Verdict.PASSED,
                    "stop-on-204": Verdict.PASSED},
    "@microsoft/fetch-event-source": {"lf-line-endings": Verdict.PASSED,
                                      "stop-on-204": Verdict.FAILED},
    "eventsource-client": {"lf-line-endings": Verdict.PASSED,
                           "fail-on-wrong-content-type": Verdict.FAILED},
    "extended-eventsource": {"lf-line-endings": Verdict.PASSED,
                             "block-without-data": Verdict.FAILED},
}


@pytest.mark.slow
@pytest.mark.parametrize("library", sorted(FEW))
def test_third_party_adapter(library: str) -> None:
    command = _command(library)
    hello = describe(command, "http://127.0.0.1:9/", 900)
    if hello.get("skip"):
        pytest.skip(f"{library}: {hello['skip']}")
    report = runner.run_all(command, hello, [SCENARIOS[i] for i in FEW[library]])
    got = {r.id: (r.verdict, r.message) for r in report.results}
    for scenario_id, verdict in FEW[library].items():
        assert got[scenario_id][0] is verdict, (library, scenario_id, got[scenario_id])
