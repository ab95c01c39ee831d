# SPDX-License-Identifier: GPL-3.0-or-later
"""A self-contained HTML report a person can read (no external assets)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from dualstore_conformance.model import CheckResult, Status, Verdict
from dualstore_conformance.run_model import RunReport

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .3rem}
.meta{color:#555;margin-bottom:1rem}
.summary span{display:inline-block;margin-right:1rem;padding:.2rem .6rem;border-radius:4px}
.passed{background:#e3f6e8;color:#10602a}.failed{background:#fde7e7;color:#9b1c1c}
.skipped,.not-judged{background:#eef0f3;color:#4b5563}.error{background:#fff4dc;color:#8a5300}
.non-strict{background:#fdf0e3;color:#8a3b00}.informational{background:#e8eefc;color:#1e3a8a}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f3f4f6}
td.status{font-weight:600;white-space:nowrap}
code,pre{font:12px/1.4 ui-monospace,monospace}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:.5rem;margin:.3rem 0}
details summary{cursor:pointer;color:#374151}
.rules code{margin-right:.3rem}
"""


def _row(result: CheckResult) -> str:
    status = result.verdict.value
    if result.not_judged is not None:
        status = f"{status} ({result.not_judged.value})"
    rules = " ".join(f"<code>{escape(rule)}</code>" for rule in result.rules)
    detail = ""
    if result.status is not Status.PASSED:
        evidence = dict(result.evidence)
        parts = [f"<div>{escape(result.message)}</div>"]
        if result.reproduce:
            parts.append(f"<pre>{escape(result.reproduce)}</pre>")
        if evidence:
            body = escape(json.dumps(evidence, indent=2, default=repr, ensure_ascii=False))
            parts.append(f"<details><summary>evidence</summary><pre>{body}</pre></details>")
        detail = "".join(parts)
    return (
        f'<tr id="{escape(result.id)}"><td class="status {result.verdict.value}">'
        f"{escape(status)}</td>"
        f"<td><code>{escape(result.id)}</code><br>{escape(result.title)}</td>"
        f"<td>{escape(result.level.value)}</td><td class=\"rules\">{rules}</td>"
        f"<td>{result.duration_s:.2f} s</td><td>{detail}</td></tr>"
    )


def render(report: RunReport) -> str:
    """The report as one HTML document."""
    verdicts = report.verdicts()
    order = {Verdict.FAILED: 0, Verdict.ERROR: 1, Verdict.NON_STRICT: 2,
             Verdict.INFORMATIONAL: 3, Verdict.NOT_JUDGED: 4, Verdict.PASSED: 5}
    rows = "\n".join(
        _row(r) for r in sorted(report.results, key=lambda r: (order[r.verdict], r.id))
    )
    verdict = report.verdict_line()
    profile = escape(json.dumps(report.profile, sort_keys=True))
    knobs = escape(json.dumps(report.knobs, sort_keys=True, default=repr))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>dualstore conform: {escape(report.target)}</title><style>{_STYLE}</style></head>
<body>
<h1>DualStore HTTP conformance: {escape(report.target)}</h1>
<p class="verdict"><strong>{escape(verdict)}</strong></p>
<div class="meta">spec {escape(report.spec_version)} &middot; started {escape(report.started_at)}
&middot; {report.duration_s:.1f} s &middot; seed {report.seed}
&middot; collection <code>{escape(report.collection)}</code></div>
<div class="summary"><span class="passed">{verdicts["passed"]} passed</span>
<span class="failed">{verdicts["failed"]} failed (MUST)</span>
<span class="non-strict">{verdicts["non-strict"]} non-strict (SHOULD)</span>
<span class="informational">{verdicts["informational"]} informational (MAY)</span>
<span class="error">{verdicts["error"]} error (could not observe)</span>
<span class="not-judged">{verdicts["not-judged"]} not judged</span></div>
<details><summary>deployment profile and run settings</summary>
<pre>profile: {profile}
settings: {knobs}</pre></details>
<table><thead><tr><th>verdict</th><th>check</th><th>level</th><th>rules</th><th>time</th>
<th>details</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def write(report: RunReport, path: str | Path) -> None:
    """Write the HTML report to path."""
    Path(path).write_text(render(report), encoding="utf-8")
