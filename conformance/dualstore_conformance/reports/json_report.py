# SPDX-License-Identifier: GPL-3.0-or-later
"""The JSON report (shape pinned by the issue; JSON Schema in data/report.schema.json)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from dualstore_conformance.model import CheckResult
from dualstore_conformance.run_model import RunReport


def check_entry(result: CheckResult) -> dict[str, Any]:
    """One check as a JSON object."""
    return {
        "id": result.id,
        "title": result.title,
        "level": result.level.value,
        "rules": list(result.rules),
        "status": result.status.value,
        "verdict": result.verdict.value,
        "not_judged": result.not_judged.value if result.not_judged else None,
        "duration_s": round(result.duration_s, 3),
        "message": result.message,
        "evidence": _jsonable(result.evidence),
        "reproduce": result.reproduce,
    }


def to_dict(report: RunReport) -> dict[str, Any]:
    """The whole report as a JSON-ready dict."""
    return {
        "target": report.target,
        "started_at": report.started_at,
        "duration_s": round(report.duration_s, 3),
        "spec_version": report.spec_version,
        "seed": report.seed,
        "verdict": report.verdict_line(),
        "conforms": report.conforms(),
        "exit_code": report.exit_code(),
        "profile": _jsonable(report.profile),
        "knobs": _jsonable(report.knobs),
        "summary": report.summary(),
        "verdicts": report.verdicts(),
        "checks": [check_entry(result) for result in report.results],
    }


def write(report: RunReport, path: str | Path) -> None:
    """Write the JSON report to path."""
    text = json.dumps(to_dict(report), indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def schema() -> dict[str, Any]:
    """The JSON Schema of the report."""
    text = (resources.files("dualstore_conformance") / "data" / "report.schema.json").read_text(
        "utf-8"
    )
    value: dict[str, Any] = json.loads(text)
    return value


def _jsonable(value: Any) -> Any:
    """Evidence made JSON-safe (bytes as text, unknown objects as their repr)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
