# SPDX-License-Identifier: GPL-3.0-or-later
"""Console, JSON, JUnit XML and HTML reports of a client run (the shapes ``conform`` uses)."""

from __future__ import annotations

import html
import json
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from dualstore_conformance.client_suite.verdicts import (
    STATUS,
    ClientReport,
    ScenarioResult,
    Verdict,
)

MARKS = {
    Verdict.PASSED: "PASS", Verdict.FAILED: "FAIL", Verdict.NON_STRICT: "WARN",
    Verdict.INFORMATIONAL: "INFO", Verdict.NOT_JUDGED: "SKIP", Verdict.ERROR: "ERR ",
}


def print_result(result: ScenarioResult, out: TextIO | None = None) -> None:
    """One console line per scenario (and its message when not passed)."""
    out = out or sys.stdout
    line = f"{MARKS[result.verdict]} {result.id} ({result.level}) {result.duration_s:5.1f}s"
    if result.verdict is not Verdict.PASSED and result.message:
        line += f" - {result.message}"
    print(line, file=out, flush=True)


def print_summary(report: ClientReport, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    name = report.client.get("client", report.adapter)
    parts = ", ".join(f"{value} {key}" for key, value in report.verdicts().items())
    print(f"{name}: {report.verdict_line()} ({parts}) in {report.duration_s:.1f}s", file=out,
          flush=True)


def result_entry(result: ScenarioResult) -> dict[str, Any]:
    return {
        "id": result.id, "title": result.title, "group": result.group, "level": result.level,
        "rules": list(result.rules), "status": STATUS[result.verdict],
        "verdict": result.verdict.value,
        "not_judged": result.not_judged.value if result.not_judged else None,
        "duration_s": round(result.duration_s, 3), "message": result.message,
        "evidence": result.evidence, "reproduce": result.reproduce,
    }


def to_dict(report: ClientReport) -> dict[str, Any]:
    """The JSON report (validated by client-report.schema.json)."""
    return {
        "target": report.adapter, "client": report.client, "started_at": report.started_at,
        "duration_s": round(report.duration_s, 3), "summary": report.summary(),
        "verdict": report.verdict_line(), "conforms": report.conforms(),
        "exit_code": report.exit_code(), "verdicts": report.verdicts(),
        "checks": [result_entry(result) for result in report.results],
    }


def schema() -> dict[str, Any]:
    text = (resources.files(__package__) / "client-report.schema.json").read_text("utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


def write_json(report: ClientReport, path: str | Path) -> None:
    text = json.dumps(to_dict(report), indent=2, ensure_ascii=False, default=repr)
    Path(path).write_text(text + "\n", encoding="utf-8")


def to_xml(report: ClientReport) -> ET.Element:
    """JUnit: failed and error as such, not-judged as skipped, SHOULD/MAY notes as output."""
    counts = report.verdicts()
    suites = ET.Element("testsuites", name="dualstore conform-client")
    suite = ET.SubElement(
        suites, "testsuite", name=str(report.client.get("client", report.adapter)),
        tests=str(len(report.results)), failures=str(counts["failed"]),
        errors=str(counts["error"]), skipped=str(counts["not-judged"]),
        time=f"{report.duration_s:.3f}", timestamp=report.started_at,
    )
    for result in report.results:
        rules = ", ".join(result.rules)
        case = ET.SubElement(suite, "testcase", name=f"{result.id} [{rules}]",
                             classname=f"sse-client.{result.group}",
                             time=f"{result.duration_s:.3f}")
        details = (f"{result.title} ({result.level})\n{result.message}\n"
                   f"reproduce: {result.reproduce}")
        if result.verdict is Verdict.FAILED:
            failure = ET.SubElement(case, "failure", message=result.message[:1000],
                                    type="MUST rule failed")
            failure.text = details
        elif result.verdict is Verdict.ERROR:
            error = ET.SubElement(case, "error", message=result.message[:1000], type="error")
            error.text = details
        elif result.verdict is Verdict.NOT_JUDGED:
            ET.SubElement(case, "skipped", message=result.message[:1000])
        elif result.verdict in (Verdict.NON_STRICT, Verdict.INFORMATIONAL):
            out = ET.SubElement(case, "system-out")
            out.text = f"{result.verdict.value}: {result.message}"
    return suites


def write_junit(report: ClientReport, path: str | Path) -> None:
    tree = ET.ElementTree(to_xml(report))
    ET.indent(tree)
    tree.write(str(path), encoding="utf-8", xml_declaration=True)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
.passed{background:#dfd}.failed{background:#fbb}.non-strict{background:#fe9}
.informational{background:#def}.not-judged{color:#777}.error{background:#f9c}
pre{white-space:pre-wrap;max-width:60em;margin:0}"""


def to_html(report: ClientReport) -> str:
    name = html.escape(str(report.client.get("client", report.adapter)))
    rows = []
    for result in report.results:
        evidence = html.escape(json.dumps(result.evidence, indent=1, default=repr)[:6000])
        rows.append(
            f'<tr id="{html.escape(result.id)}" class="{result.verdict.value}">'
            f"<td>{html.escape(result.id)}</td><td>{html.escape(result.title)}</td>"
            f"<td>{result.level}</td><td>{html.escape(', '.join(result.rules))}</td>"
            f"<td>{result.verdict.value}</td><td>{html.escape(result.message)}"
            f"<details><summary>evidence</summary><pre>{evidence}</pre></details></td></tr>")
    counts = ", ".join(f"{v} {k}" for k, v in report.verdicts().items())
    return (
        f"<!doctype html><meta charset=utf-8><title>{name}: SSE client conformance</title>"
        f"<style>{_STYLE}</style><h1>{name}</h1>"
        f"<p>adapter <code>{html.escape(report.adapter)}</code>, version "
        f"{html.escape(str(report.client.get('version', '')))}, started {report.started_at}; "
        f"{counts}</p><p><b>{html.escape(report.verdict_line())}</b></p><table><tr><th>scenario</th><th>title</th><th>level</th><th>cites</th>"
        f"<th>verdict</th><th>detail</th></tr>{''.join(rows)}</table>\n")


def write_html(report: ClientReport, path: str | Path) -> None:
    Path(path).write_text(to_html(report), encoding="utf-8")
