# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/clients.md rendering: one row per scenario, a column per client, links, issues."""

from __future__ import annotations

from pathlib import Path

from dualstore_conformance.client_suite import reports, table
from dualstore_conformance.client_suite.scenarios import load_all
from dualstore_conformance.client_suite.verdicts import ClientReport, ScenarioResult, Verdict


def _report(client: str, failing: str | None) -> ClientReport:
    results = [
        ScenarioResult(id=s.id, title=s.title, group=s.group, level=s.level, rules=s.cite,
                       verdict=Verdict.FAILED if s.id == failing else Verdict.PASSED,
                       message="delivered 0 of 1 expected events" if s.id == failing else "")
        for s in load_all()
    ]
    return ClientReport(adapter="cmd", client={"client": client, "version": "1.2.3"},
                        started_at="2026-01-01T00:00:00+00:00", duration_s=1.0, results=results)


def test_render_makes_the_matrix_with_links_and_known_issues(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "clients"
    out.mkdir(parents=True)
    reports.write_json(_report("ours", None), out / "dualstore-python-sync.json")
    reports.write_json(_report("httpx-sse", "block-without-data"), out / "py-httpx-sse.json")
    issues = tmp_path / table.THIRD_PARTY
    issues.mkdir(parents=True)
    (issues / "known-issues.yaml").write_text(
        "py-httpx-sse:\n  block-without-data: https://example.org/issue/35\n")
    text = table.render(out, tmp_path, "python -m dualstore_conformance.client_suite.table")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(load_all())
    row = next(line for line in rows if line.startswith("| `block-without-data`"))
    assert "[pass](clients/dualstore-python-sync.html#block-without-data)" in row
    assert "[**FAIL**](clients/py-httpx-sse.html#block-without-data)" in row
    assert "- `block-without-data` (failed): delivered 0 of 1 expected events. " \
           "Public issue: https://example.org/issue/35" in text
    assert "- dualstore_client (sync): every scenario that applies passed." in text
    assert "python -m dualstore_conformance.client_suite.table" in text
