# SPDX-License-Identifier: GPL-3.0-or-later
"""The kill matrix: every mutant against ``dualstore conform`` and Schemathesis alone.

``PYTHONPATH=mutants python -m dualstore_mutants.matrix --doc docs/kill-matrix.md --json m.json``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dualstore_reference.embedded import EmbeddedDatabase
from dualstore_reference.launcher import start_reference, with_database

from . import CATALOGUE
from .launcher import start_mutant

BASELINE = "none"
"""The row for the unmodified reference."""
TOKEN = "kill-matrix-token-0123456789abcdef"
ORIGIN = "http://conformance.invalid"
RUN_ARGS = ("heartbeat", "max_examples", "seed", "parallel", "timeout_multiplier",
            "schemathesis", "schemathesis_seconds")
"""Run parameters saved with the rows (the doc states them)."""
SPEC = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"


@dataclass
class Row:
    """One mutant's results."""

    name: str
    family: str
    expect: str
    breaks: list[str]
    collateral: list[str]
    conform_exit: int | None = None
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conform_seconds: float = 0.0
    schemathesis_exit: int | None = None
    schemathesis_failed: list[str] = field(default_factory=list)
    schemathesis_seconds: float = 0.0
    problem: str = ""
    levels: dict[str, str] = field(default_factory=dict)
    """Level (must/should/may) of each failing check."""
    findings: list[str] = field(default_factory=list)
    """Documented SHOULD/MAY findings a must-pass row is allowed to have."""
    messages: dict[str, str] = field(default_factory=dict)
    """Each failing check's message (what the report said), for explaining a wrong verdict."""
    stream_only: bool = False
    """The fault touches only stream requests: the property layer and Schemathesis (both
    exclude the stream) would replay the baseline, so they are not run for it."""

    def failing(self) -> set[str]:
        """Checks that failed or errored."""
        return set(self.failed) | set(self.errors)

    def unlisted(self) -> set[str]:
        """Failing checks the catalogue lists for this row neither as broken, collateral
        nor as an allowed finding (what a wrong verdict has to explain)."""
        return self.failing() - set(self.breaks) - set(self.collateral) - set(self.findings)

    def verdict(self, ignore: frozenset[str] | set[str] = frozenset()) -> str:
        """killed / survived / passed / false-alarm / stray / error (see the doc's legend).

        ignore: SHOULD/MAY checks the unmodified reference fails in the same run;
        they are reported on the baseline row and not held against the others.
        """
        if self.problem:
            return "error"
        failing = self.failing() - (set(ignore) if self.name != BASELINE else set())
        if self.expect == "pass":
            allowed = set(self.findings)
            if self.name == BASELINE:
                allowed |= {c for c in failing if self.levels.get(c) != "must"}
            clean = self.conform_exit == 0 and failing <= allowed
            return "passed" if clean else "false-alarm"
        must_break = any(self.levels.get(c, "must") == "must" for c in self.breaks)
        if not set(self.breaks) <= failing or (must_break and self.conform_exit != 1):
            return "survived"
        if failing - set(self.breaks) - set(self.collateral):
            return "stray"
        return "killed"


def baseline_findings(rows: list[Row]) -> set[str]:
    """SHOULD/MAY checks the unmodified reference fails in this run."""
    for row in rows:
        if row.name == BASELINE:
            return {c for c in row.failing() if row.levels.get(c) != "must"}
    return set()


def server_env(heartbeat: float) -> dict[str, str]:
    """The reference's settings for every row (the mutant is chosen by the entry, not env)."""
    return {
        "AUTH_TOKEN": TOKEN,
        "CORS_ORIGIN": ORIGIN,
        "SSE_HEARTBEAT_SECONDS": f"{heartbeat:g}",
        "RATE_LIMIT_PER_SECOND": "50",
        "RATE_LIMIT_BURST": "100",
        "LOG_LEVEL": "WARNING",
    }


def run_conform(
    url: str, args: argparse.Namespace, report: Path, stream_only: bool = False,
    extra: list[str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """``dualstore conform`` against url (extra: the row's ``conform_args``, such as the
    deployment profile it declares); (exit code, JSON report)."""
    command = [
        sys.executable, "-m", "dualstore_cli", "conform", "--url", url,
        "--heartbeat-seconds", f"{args.heartbeat:g}", "--max-examples", str(args.max_examples),
        "--seed", str(args.seed), "--timeout-multiplier", f"{args.timeout_multiplier:g}",
        "--json", str(report),
    ]  # fmt: skip
    if stream_only:
        command += ["--skip", "property"]
    command += extra or []
    env = {**os.environ, "DUALSTORE_TOKEN": TOKEN, "DUALSTORE_CORS_ORIGIN": ORIGIN}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    data: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    if not data:
        raise RuntimeError(f"conform wrote no report (exit {completed.returncode}): "
                           f"{completed.stderr[-2000:]}")
    return completed.returncode, data


FAILED_CHECK = re.compile(r"^\s*(?:\d+\.\s+)?(?:[-*]\s+)?([A-Z][A-Za-z /-]+?)\s*$", re.M)


def run_schemathesis(url: str, args: argparse.Namespace, budget: float) -> tuple[int, list[str]]:
    """Schemathesis alone (default checks, stream excluded) within budget seconds."""
    with tempfile.TemporaryDirectory(prefix="kill-matrix-st-") as folder:
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", str(SPEC), "--url", url,
            "-H", f"Authorization: Bearer {TOKEN}", "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--max-time", str(int(min(max(budget, 10), args.schemathesis_seconds))),
            "--exclude-path-regex", "/stream$", "--report", "ndjson",
            "--report-dir", folder, "--no-color",
        ]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True, timeout=900,
                                   cwd=folder)
        failed: set[str] = set()
        for path in Path(folder).rglob("*.ndjson"):
            for line in path.read_text().splitlines():
                failed.update(_failed_checks(json.loads(line)))
        return completed.returncode, sorted(failed)


def _failed_checks(event: Any) -> set[str]:
    """Names of failed checks anywhere in one ndjson event."""
    found: set[str] = set()
    if isinstance(event, dict):
        if event.get("status") in ("failure", "FAILURE") and isinstance(event.get("name"), str):
            found.add(event["name"])
        for value in event.values():
            found |= _failed_checks(value)
    elif isinstance(event, list):
        for value in event:
            found |= _failed_checks(value)
    return found


def run_row(name: str, mongodb_uri: str, args: argparse.Namespace, workdir: Path) -> Row:
    """Start the reference with the fault, run conform (and Schemathesis), stop it."""
    entry = CATALOGUE.get(name, {"family": "-", "expect": "pass", "breaks": []})
    row = Row(
        name=name,
        family=str(entry.get("family", "-")),
        expect=str(entry.get("expect", "fail")) if name != BASELINE else "pass",
        breaks=list(entry.get("breaks", [])),
        collateral=[str(c) for c in entry.get("collateral", [])],
        findings=[str(c) for c in entry.get("findings", [])],
        stream_only=bool(entry.get("stream_only", entry.get("family") == "sse")),
    )
    folder = workdir / name
    try:
        options: dict[str, Any] = {
            "env": {**server_env(args.heartbeat),
                    **{str(k): str(v) for k, v in (entry.get("env") or {}).items()}},
            "workers": 1,
            "data_dir": folder,
            "mongodb_uri": with_database(mongodb_uri, "km_" + re.sub(r"\W", "_", name)),
        }
        server = (start_reference(**options) if name == BASELINE
                  else start_mutant([name], **options))
    except Exception as error:  # a mutant that cannot start is an error row, not a crash
        row.problem = f"did not start: {error}"[:500]
        return row
    try:
        started = time.monotonic()
        row.conform_exit, report = run_conform(
            server.url, args, folder / "conform.json", row.stream_only,
            [str(a) for a in entry.get("conform_args", [])],
        )
        row.conform_seconds = round(time.monotonic() - started, 1)
        for check in report.get("checks", []):
            if check["status"] == "failed":
                row.failed.append(check["id"])
            elif check["status"] == "error":
                row.errors.append(check["id"])
            else:
                continue
            row.levels[check["id"]] = str(check.get("level", "must")).lower()
            row.messages[check["id"]] = str(check.get("message", ""))[:600]
        if args.schemathesis and not row.stream_only:
            started = time.monotonic()
            row.schemathesis_exit, row.schemathesis_failed = run_schemathesis(
                server.url, args, row.conform_seconds
            )
            row.schemathesis_seconds = round(time.monotonic() - started, 1)
    except Exception as error:
        row.problem = f"{type(error).__name__}: {str(error)[-400:]}"
    finally:
        server.stop()
    return row


def run_matrix(names: list[str], args: argparse.Namespace) -> list[Row]:
    """Every row, args.parallel at a time, on one shared database daemon."""
    with tempfile.TemporaryDirectory(prefix="kill-matrix-") as tmp, EmbeddedDatabase(
        storage_path=":memory:"
    ) as database:
        workdir = Path(tmp)
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            futures = {pool.submit(run_row, n, database.uri, args, workdir): n for n in names}
            rows: dict[str, Row] = {}
            for future in concurrent.futures.as_completed(futures):
                row = future.result()
                rows[row.name] = row
                print(f"{row.name}: {row.verdict()} conform={row.conform_exit} "
                      f"failed={row.failed + row.errors} st={row.schemathesis_exit} "
                      f"({row.conform_seconds} s) {row.problem}", file=sys.stderr, flush=True)
    return [rows[name] for name in names]


def schemathesis_killed(row: Row, baseline: Row | None) -> bool:
    """Schemathesis alone kills a mutant when it fails a check it does not fail on the baseline."""
    if row.schemathesis_exit is None:
        return False
    base = set(baseline.schemathesis_failed) if baseline else set()
    new = set(row.schemathesis_failed) - base
    if new:
        return True
    return row.schemathesis_exit != 0 and (baseline is None or baseline.schemathesis_exit == 0)


def render(rows: list[Row], args: argparse.Namespace, seconds: float) -> str:
    """The kill-matrix page (Markdown)."""
    baseline = next((r for r in rows if r.name == BASELINE), None)
    ignore = baseline_findings(rows)
    mutants = [r for r in rows if r.name != BASELINE and r.expect == "fail"]
    legal = [r for r in rows if r.name != BASELINE and r.expect == "pass"]
    killed = [r for r in mutants if r.verdict(ignore) == "killed"]
    alarms = [r for r in rows if r.expect == "pass" and r.verdict(ignore) != "passed"]
    st_killed = [r for r in mutants if schemathesis_killed(r, baseline)]
    lines = [
        "# Kill matrix",
        "",
        "Generated by `PYTHONPATH=mutants python -m dualstore_mutants.matrix` from a real run "
        f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC); do not edit by hand. The mutants are "
        "documented in `mutants/dualstore_mutants/catalogue.yaml`.",
        "",
        f"Run: heartbeat {args.heartbeat:g} s, `--max-examples {args.max_examples}`, "
        f"seed {args.seed}, {args.parallel} servers at once (1 gunicorn worker each, one shared "
        f"database daemon), timeout multiplier {args.timeout_multiplier:g}; "
        f"wall time {seconds / 60:.1f} min. Schemathesis alone: `schemathesis run "
        f"spec/openapi.yaml` with its default checks, the same `--max-examples` and seed, "
        f"`--max-time` = conform's wall time for that mutant capped at "
        f"{getattr(args, 'schemathesis_seconds', 30):g} s (conform's own property layer took "
        "less than that), the stream excluded (its responses never end, so Schemathesis cannot "
        "judge it). Mutants that touch only the stream (family sse and `sec-stream-auth-off`) "
        "are not given to Schemathesis (it would replay the baseline: counted as survived) and "
        "conform skips its property layer for them (same reason).",
        "",
        "## Summary",
        "",
        f"- `dualstore conform`: **{len(killed)}/{len(mutants)} mutants killed** "
        f"({_percent(len(killed), len(mutants))}) on exactly their documented checks.",
        (f"- Schemathesis alone (default checks, same examples and time budget, stream "
         f"excluded): **{len(st_killed)}/{len(mutants)}** "
         f"({_percent(len(st_killed), len(mutants))})." if args.schemathesis
         else "- Schemathesis alone: not run this time."),
        f"- {'No false alarms' if not alarms else f'False alarms: {len(alarms)}'}: the "
        f"unmodified reference "
        f"{'passes' if baseline and baseline.verdict(ignore) == 'passed' else 'DOES NOT pass'}; "
        + ", ".join(
            f"`{r.name}` {'passes' if r.verdict(ignore) == 'passed' else 'FAILS'}" for r in legal
        )
        + ".",
    ]
    if baseline is not None and args.schemathesis:
        lines.append(
            "- Schemathesis alone on the unmodified reference: exit "
            f"{baseline.schemathesis_exit}, failing checks "
            f"{', '.join(baseline.schemathesis_failed) or 'none'} (a mutant counts as killed "
            "by Schemathesis only when it fails a check the baseline does not, or exits non-zero "
            "while the baseline exits 0)."
        )
    lines += [
        "",
        "Verdicts: *killed* = conform exits 1 and every documented check fails, nothing outside "
        "the documented breaks + collateral; *survived* = a documented check passed; *stray* = "
        "an undocumented check failed; *passed* = must-pass row passed.",
        "",
        "## Matrix",
        "",
        "| mutant | family | verdict | failing checks (documented **bold**) | conform s "
        "| Schemathesis alone |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        failing = sorted(set(row.failed) | set(row.errors))
        shown = ", ".join(f"**{c}**" if c in row.breaks else c for c in failing) or "-"
        if row.schemathesis_exit is None:
            st = "n/a: stream only (survived)" if row.stream_only else "not run"
        elif row.name == BASELINE or row.expect == "pass":
            st = f"exit {row.schemathesis_exit}"
        else:
            st = "killed" if schemathesis_killed(row, baseline) else "survived"
            extra = sorted(set(row.schemathesis_failed) - set(baseline.schemathesis_failed
                                                              if baseline else []))
            if extra:
                st += f" ({', '.join(extra)})"
        verdict = row.verdict(ignore) + (f": {row.problem}" if row.problem else "")
        lines.append(
            f"| `{row.name}` | {row.family} | {verdict} | {shown} | {row.conform_seconds:g} "
            f"| {st} |"
        )
    lines += ["", "## By family", "", "| family | mutants | conform killed | Schemathesis killed |",
              "|---|---|---|---|"]
    for family in ("rest", "security", "sse"):
        members = [r for r in mutants if r.family == family]
        conform_killed = sum(r.verdict(ignore) == "killed" for r in members)
        st_count = sum(schemathesis_killed(r, baseline) for r in members)
        lines.append(f"| {family} | {len(members)} | {conform_killed} | {st_count} |")
    should = sorted({c for r in rows for c in r.failing() if r.levels.get(c) in ("should", "may")})
    if ignore or should:
        lines += ["", "## SHOULD/MAY findings", "",
                  f"- On the unmodified reference: {', '.join(sorted(ignore)) or 'none'}.",
                  "- Documented for must-pass rows: "
                  + (", ".join(f"`{r.name}`: {', '.join(r.findings)}" for r in legal if r.findings)
                     or "none") + "."]
    reruns: dict[str, list[str]] = getattr(args, "reruns", {}) or {}
    if reruns:
        lines += ["", "## Rows run twice", "",
                  "These rows come from a second run of that mutant alone; the first run's "
                  "failing checks are kept here (a check failing in one run only is a timing "
                  "flake on the loaded machine or a real intermittent bug: read it).", ""]
        lines += [f"- `{name}`: first run failing {', '.join(first) or 'nothing'}"
                  for name, first in reruns.items()]
    lines += ["", "## Collateral (allowed, documented per mutant)", ""]
    for name, entry in CATALOGUE.items():
        why = entry.get("collateral_reason")
        if entry.get("collateral"):
            lines.append(f"- `{name}`: {', '.join(entry['collateral'])} - {why}")
    return "\n".join(lines) + "\n"


def save_rows(path: Path, rows: list[Row], args: argparse.Namespace, seconds: float) -> None:
    """Write the rows and run parameters as JSON (what ``--render-from`` reads)."""
    ignore = baseline_findings(rows)
    saved = {
        "seconds": round(seconds, 1),
        "args": {k: getattr(args, k) for k in RUN_ARGS},
        "rows": [asdict(r) | {"verdict": r.verdict(ignore)} for r in rows],
    }
    path.write_text(json.dumps(saved, indent=2) + "\n")


def render_saved(args: argparse.Namespace) -> int:
    """Re-render the doc from saved rows (catalogue changes apply; the runs are the saved ones)."""
    merged: dict[str, Row] = {}
    reruns: dict[str, list[str]] = {}
    seconds = 0.0
    for path in args.render_from:
        saved = json.loads(Path(path).read_text())
        seconds += float(saved.get("seconds", 0.0))
        for item in saved["rows"]:
            item.pop("verdict", None)
            row = Row(**item)
            entry = CATALOGUE.get(row.name)
            if entry is not None:  # documentation may have been refined since the run
                row.breaks = list(entry.get("breaks", []))
                row.collateral = [str(c) for c in entry.get("collateral", [])]
                row.findings = [str(c) for c in entry.get("findings", [])]
            if row.name in merged:
                reruns[row.name] = sorted(merged[row.name].failing())
            merged[row.name] = row
    names = [n for n in (BASELINE, *CATALOGUE) if n in merged]
    rows = [merged[n] for n in names]
    saved_args = json.loads(Path(args.render_from[0]).read_text()).get("args", {})
    for key, value in saved_args.items():
        setattr(args, key, value)
    args.reruns = reruns
    if args.doc:
        Path(args.doc).write_text(render(rows, args, seconds))
    ignore = baseline_findings(rows)
    return 0 if all(r.verdict(ignore) in ("killed", "passed") for r in rows) else 1


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The matrix options (also used by the kill-matrix test)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mutants", help="CSV of mutants (default: the whole catalogue)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmodified row")
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--max-examples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout-multiplier", type=float, default=2.0)
    parser.add_argument("--no-schemathesis", dest="schemathesis", action="store_false")
    parser.add_argument("--schemathesis-seconds", type=float, default=30.0,
                        help="cap on Schemathesis's --max-time (else conform's wall time)")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--doc", help="write the Markdown kill matrix")
    parser.add_argument("--render-from", action="append", metavar="JSON",
                        help="do not run: render --doc from saved --json rows (repeatable; "
                        "a later file's row replaces an earlier one's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the matrix; write the JSON rows and the Markdown page; exit 1 unless all is well."""
    args = parse_args(argv)
    if args.render_from:
        return render_saved(args)
    names = args.mutants.split(",") if args.mutants else list(CATALOGUE)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown or args.parallel < 1:
        print(f"matrix: error: unknown mutants {unknown}" if unknown else
              "matrix: error: --parallel must be at least 1", file=sys.stderr)
        return 2
    if not args.no_baseline:
        names = [BASELINE, *names]
    started = time.monotonic()
    rows = run_matrix(names, args)
    seconds = time.monotonic() - started
    ignore = baseline_findings(rows)
    if args.json:
        save_rows(Path(args.json), rows, args, seconds)
    if args.doc:
        Path(args.doc).write_text(render(rows, args, seconds))
    good = all(r.verdict(ignore) in ("killed", "passed") for r in rows)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
