# SPDX-License-Identifier: GPL-3.0-or-later
"""Reports: console (plain off a TTY, coloured on one), JUnit, HTML escaping, JSON schema."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import jsonschema
from dualstore_conformance.model import CheckResult, Level, Status
from dualstore_conformance.reports import html, json_report, junit
from dualstore_conformance.reports.console import Console
from dualstore_conformance.run_model import Progress, RunReport


def report() -> RunReport:
    return RunReport(
        target="http://127.0.0.1:1", started_at="2026-11-25T12:00:00Z", duration_s=2.5,
        spec_version="1.0.0", seed=7, collection="things",
        results=[
            CheckResult(id="sse-a", title="A <b>", level=Level.MUST, rules=["SSE-FRAME-001"],
                        status=Status.PASSED, duration_s=0.1),
            CheckResult(id="sse-b", title="B", level=Level.MUST, rules=["SSE-FRAME-002"],
                        status=Status.FAILED, duration_s=0.2,
                        message="B broke. Expected: x. Received: <script>",
                        evidence={"expected": "x", "received": "<script>", "raw": b"\xff"},
                        reproduce="curl -sS -i 'http://127.0.0.1:1/v1/things/stream'"),
            CheckResult(id="sse-c", title="C", level=Level.SHOULD, rules=["SSE-FRAME-005"],
                        status=Status.SKIPPED, message="n/a"),
            CheckResult(id="sse-d", title="D", level=Level.MAY, rules=[],
                        status=Status.ERROR, message="harness error: boom"),
        ],
    )


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_plain_when_not_a_tty() -> None:
    out = io.StringIO()
    console = Console(out)
    for done, result in enumerate(report().results, start=1):
        console(Progress("finish", result.id, result, done, 4))
    console.summary(report())
    text = out.getvalue()
    assert "\033[" not in text
    assert "[2/4] F sse-b" in text
    assert "expected: x" in text and "reproduce: curl" in text
    assert "DOES NOT CONFORM" in text
    assert ("1 passed, 1 failed, 0 non-strict, 0 informational, 1 errors, 1 not judged"
            in text)


def test_console_colour_and_live_status_on_a_tty() -> None:
    out = Tty()
    console = Console(out, colour=True)
    console(Progress("tick", running={"sse-heartbeat-cadence": 0.0}, total=4))
    console(Progress("finish", "sse-b", report().results[1], 1, 4))
    text = out.getvalue()
    assert "waiting on sse-heartbeat-cadence" in text
    assert "\r\033[K" in text and "\033[31m" in text


def test_junit_one_case_per_check() -> None:
    root = junit.to_xml(report())
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == [
        "sse-a [SSE-FRAME-001]", "sse-b [SSE-FRAME-002]", "sse-c [SSE-FRAME-005]", "sse-d"
    ]
    assert cases[1].find("failure") is not None
    assert "received: <script>" in (cases[1].find("failure").text or "")  # type: ignore[union-attr]
    assert cases[2].find("skipped") is not None and cases[3].find("error") is not None
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("errors") == "1"
    props = {p.get("name"): p.get("value") for p in root.findall(".//property")}
    assert props["verdict"].startswith("DOES NOT CONFORM")
    ET.fromstring(ET.tostring(root))  # well-formed


def test_html_escapes_everything() -> None:
    page = html.render(report())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "A &lt;b&gt;" in page and "DOES NOT CONFORM" in page


def test_json_report_matches_schema_with_bytes_evidence() -> None:
    data = json_report.to_dict(report())
    jsonschema.validate(data, json_report.schema())
    assert data["checks"][1]["evidence"]["raw"] == "\ufffd"
    assert data["summary"] == {"passed": 1, "failed": 1, "skipped": 1, "errors": 1}
    assert data["verdicts"]["failed"] == 1 and data["verdicts"]["not-judged"] == 1
    assert data["conforms"] is False and data["exit_code"] == 1
