# SPDX-License-Identifier: GPL-3.0-or-later
"""JUnit XML: one testcase per check, rule IDs in the name, failures with expected/received/curl."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from dualstore_conformance.model import CheckResult, NotJudged, Status
from dualstore_conformance.run_model import RunReport, status_counts


def case_name(result: CheckResult) -> str:
    """``check-id [RULE-001, RULE-002]``."""
    rules = ", ".join(result.rules)
    return f"{result.id} [{rules}]" if rules else result.id


def _details(result: CheckResult) -> str:
    lines = [f"{result.title} ({result.level.value}, verdict {result.verdict.value})"]
    evidence = dict(result.evidence)
    if "expected" in evidence:
        lines.append(f"expected: {evidence.pop('expected')}")
    if "received" in evidence:
        lines.append(f"received: {evidence.pop('received')}")
    if result.reproduce:
        lines.append(f"reproduce: {result.reproduce}")
    if evidence:
        lines.append("evidence: " + json.dumps(evidence, indent=2, default=repr)[:8000])
    return "\n".join(lines)


def to_xml(report: RunReport) -> ET.Element:
    """The <testsuites> element."""
    # Checks the user left out stay out of the JUnit file (the JSON report lists them, and
    # the verdict line in the properties names every MUST one).
    results = [r for r in report.results if r.not_judged is not NotJudged.NOT_SELECTED]
    summary = status_counts(results)
    suites = ET.Element("testsuites", name="dualstore conform")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="dualstore-conformance",
        tests=str(len(results)),
        failures=str(summary["failed"]),
        errors=str(summary["errors"]),
        skipped=str(summary["skipped"]),
        time=f"{report.duration_s:.3f}",
        timestamp=report.started_at,
        hostname=report.target,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("target", report.target), ("spec_version", report.spec_version),
                        ("seed", str(report.seed)), ("collection", report.collection),
                        ("verdict", report.verdict_line()),
                        ("profile", json.dumps(report.profile, sort_keys=True)),
                        ("knobs", json.dumps(report.knobs, sort_keys=True, default=repr))):
        ET.SubElement(properties, "property", name=name, value=value)
    for result in results:
        family = result.id.split("-")[0]
        case = ET.SubElement(
            suite,
            "testcase",
            name=case_name(result),
            classname=f"dualstore.{family}",
            time=f"{result.duration_s:.3f}",
        )
        if result.status is Status.FAILED:
            failure = ET.SubElement(case, "failure", message=result.message[:1000],
                                    type=f"{result.verdict.value}: {result.level.value} rule "
                                         "failed")
            failure.text = _details(result)
        elif result.status is Status.ERROR:
            error = ET.SubElement(case, "error", message=result.message[:1000], type="error")
            error.text = _details(result)
        elif result.status is Status.SKIPPED:
            why = result.not_judged.value if result.not_judged else "not-judged"
            ET.SubElement(case, "skipped", message=f"{why}: {result.message}"[:1000])
    return suites


def write(report: RunReport, path: str | Path) -> None:
    """Write the JUnit XML to path."""
    tree = ET.ElementTree(to_xml(report))
    ET.indent(tree)
    tree.write(str(path), encoding="utf-8", xml_declaration=True)
