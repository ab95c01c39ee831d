# SPDX-License-Identifier: GPL-3.0-or-later
"""Run conform-client over a list of clients and render docs/clients.md (scenarios x clients).

``python -m dualstore_conformance.client_suite.table --out docs/clients`` runs every client
and writes ``<slug>.json`` and ``<slug>.html`` there; ``--render-only`` re-renders the table
from those files. Known public issues of third-party libraries come from
``conformance/client-adapters/third_party/known-issues.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dualstore_conformance.client_suite import reports, runner
from dualstore_conformance.client_suite.launcher import AdapterError, describe
from dualstore_conformance.client_suite.scenarios import load_all

THIRD_PARTY = "conformance/client-adapters/third_party"
OURS = "dualstore_conformance.client_suite.adapters"


@dataclass(frozen=True)
class Client:
    """One column of the table."""

    slug: str
    label: str
    command: str
    """The adapter command as a person types it from the repository root."""
    ours: bool = False


CLIENTS = [
    Client("dualstore-python-sync", "dualstore_client (sync)",
           f"python -m {OURS}.dualstore_python", ours=True),
    Client("dualstore-python-async", "dualstore_client (async)",
           f"python -m {OURS}.dualstore_python --async", ours=True),
    Client("dualstore-js-chromium", "clients/js in Chromium",
           f"python -m {OURS}.chromium --dualstore-js", ours=True),
    Client("chromium-eventsource", "Chromium EventSource", f"python -m {OURS}.chromium"),
    Client("npm-eventsource", "eventsource (npm)", f"python {THIRD_PARTY}/run.py eventsource"),
    Client("npm-fetch-event-source", "@microsoft/fetch-event-source (npm)",
           f"python {THIRD_PARTY}/run.py @microsoft/fetch-event-source"),
    Client("npm-eventsource-client", "eventsource-client (npm)",
           f"python {THIRD_PARTY}/run.py eventsource-client"),
    Client("npm-extended-eventsource", "extended-eventsource (npm)",
           f"python {THIRD_PARTY}/run.py extended-eventsource"),
    Client("py-httpx-sse", "httpx-sse (PyPI)", f"python {THIRD_PARTY}/run.py httpx-sse"),
    Client("py-sseclient-py", "sseclient-py (PyPI)", f"python {THIRD_PARTY}/run.py sseclient-py"),
    Client("py-requests-sse", "requests-sse (PyPI)", f"python {THIRD_PARTY}/run.py requests-sse"),
    Client("py-aiohttp-sse-client2", "aiohttp-sse-client2 (PyPI)",
           f"python {THIRD_PARTY}/run.py aiohttp-sse-client2"),
]

NOTES = {
    "py-sseclient-py": "Most failures share one cause: SSEClient over a requests response (the "
                       "README's example) reads 128-byte blocks, so an event waits until more "
                       "bytes arrive or the stream closes",
    "py-requests-sse": "Most failures share one cause: requests-sse reads the body with "
                       "requests' iter_lines(), which holds the last line until 512 more bytes "
                       "arrive or the stream closes",
}
"""The shared cause behind a client's "*" issue."""

SYMBOL = {"passed": "pass", "failed": "**FAIL**", "non-strict": "non-strict",
          "informational": "info", "not-judged": "-", "error": "error"}


def _runnable(command: str) -> str:
    """The command with ``python`` replaced by this interpreter."""
    if command.startswith("python "):
        return f"{sys.executable} {command[len('python '):]}"
    return command


def _machine() -> dict[str, str]:
    """What the run ran on (written beside the reports, shown under the table)."""
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        node = "not installed"
    return {"python": platform.python_version(), "node": node or "unknown",
            "system": f"{platform.system()} {platform.machine()}",
            "cpus": str(os.cpu_count() or "?")}


def run_clients(out: Path, only: list[str]) -> None:
    """Run each client over every scenario; write its JSON and HTML report into ``out``."""
    scenarios = load_all()
    meta = {**_machine(), "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    for client in CLIENTS:
        if only and client.slug not in only:
            continue
        command = _runnable(client.command)
        print(f"== {client.label}: {client.command}", flush=True)
        try:
            hello = describe(command, "http://127.0.0.1:9/", 900)
        except AdapterError as error:
            print(f"   cannot run: {error}", flush=True)
            continue
        report = runner.run_all(command, hello, scenarios, progress=reports.print_result)
        report.adapter = client.command
        for result in report.results:  # reports name the portable command, not this interpreter
            result.reproduce = result.reproduce.replace(command, client.command)
        reports.print_summary(report)
        reports.write_json(report, out / f"{client.slug}.json")
        reports.write_html(report, out / f"{client.slug}.html")
    if not only:
        meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _known_issues(root: Path) -> dict[str, dict[str, str]]:
    path = root / THIRD_PARTY / "known-issues.yaml"
    if not path.exists():
        return {}
    value: dict[str, dict[str, str]] = yaml.safe_load(path.read_text("utf-8")) or {}
    return value


def _run_line(out: Path) -> list[str]:
    path = out / "run.json"
    if not path.exists():
        return []
    meta = json.loads(path.read_text("utf-8"))
    return [f"Run from {meta['started_at']} to {meta.get('finished_at', '?')} on {meta['system']} "
            f"({meta['cpus']} CPUs) with Python {meta['python']} and Node.js {meta['node']}; "
            "one scenario at a time, one client after another.", ""]


def render(out: Path, root: Path, command: str) -> str:
    """docs/clients.md from the JSON reports in ``out``."""
    loaded: list[tuple[Client, dict[str, Any]]] = []
    for client in CLIENTS:
        path = out / f"{client.slug}.json"
        if path.exists():
            loaded.append((client, json.loads(path.read_text("utf-8"))))
    scenarios = load_all()
    issues = _known_issues(root)
    rel = out.relative_to(root / "docs") if out.is_relative_to(root / "docs") else out
    lines = [
        "# SSE clients judged by `dualstore conform-client`",
        "",
        "<!-- generated by dualstore_conformance.client_suite.table: do not edit by hand -->",
        "",
        "Each column is one client library run through its adapter against every scenario",
        "of the scripted SSE server (`conformance/dualstore_conformance/client_suite/scenarios/`).",
        "Verdicts: **FAIL** a MUST did not hold; non-strict a SHOULD did not hold; info an",
        "optional (MAY) behaviour was not seen; - not judged (the scenario does not apply to the",
        "client's kind, or needs a feature the library does not have, such as reconnecting).",
        "Each cell links to the scenario in that client's report.",
        "",
        "Made by this command (from the repository root; it installs the third-party",
        "libraries into a private cache on first use):",
        "",
        "```sh",
        command,
        "```",
        "",
        *_run_line(out),
        "| client | version | adapter | passed | failed | non-strict | info | not judged "
        "| errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for client, report in loaded:
        s = report["verdicts"]
        version = str(report["client"].get("version", ""))
        lines.append(
            f"| [{client.label}]({rel}/{client.slug}.html) | {version} | "
            f"`{client.command}` | {s['passed']} | {s['failed']} | {s['non-strict']} | "
            f"{s['informational']} | {s['not-judged']} | {s['error']} |")
    lines += ["", "## Scenarios x clients", ""]
    header = "| scenario | level | " + " | ".join(
        f"[{i + 1}]({rel}/{c.slug}.html)" for i, (c, _) in enumerate(loaded)) + " |"
    lines += [
        "Columns: " + ", ".join(f"{i + 1} = {c.label}"
                                for i, (c, _) in enumerate(loaded)) + ".",
        "", header, "| --- | --- |" + " --- |" * len(loaded)]
    verdicts = {c.slug: {check["id"]: check for check in r["checks"]} for c, r in loaded}
    for scenario in scenarios:
        cells = []
        for client, _ in loaded:
            check = verdicts[client.slug].get(scenario.id)
            text = SYMBOL.get(check["verdict"], "?") if check else ""
            cells.append(f"[{text}]({rel}/{client.slug}.html#{scenario.id})" if check else "")
        lines.append(f"| `{scenario.id}` | {scenario.level} | " + " | ".join(cells) + " |")
    lines += ["", "## Failures of third-party libraries", "",
              "Each failed, non-strict or errored scenario of a library we do not maintain,",
              "with what the harness saw and the matching public issue when one exists.", ""]
    for client, report in loaded:
        if client.ours or client.slug == "chromium-eventsource":
            continue
        bad = [c for c in report["checks"] if c["verdict"] in ("failed", "non-strict", "error")]
        if not bad:
            continue
        lines += [f"### {client.label} {report['client'].get('version', '')}", ""]
        known = issues.get(client.slug, {})
        if "*" in known:
            lines += [f"{NOTES.get(client.slug, 'Shared cause')}: {known['*']}", ""]
        for check in bad:
            link = known.get(check["id"])
            issue = f" Public issue: {link}" if link else ""
            message = check["message"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"- `{check['id']}` ({check['verdict']}): {message}.{issue}")
        lines.append("")
    lines += [
        "## Reading the table", "",
        "- Our two clients are DualStore API clients: they hand their caller only `insert` and",
        "  `heartbeat` events, so the generic framing scenarios about raw `message` events,",
        "  last-event-id values and giving up (204, error statuses) do not apply to them; the",
        "  `dualstore-*` scenarios apply to them only.",
        "- A library without its own reconnection (httpx-sse, sseclient-py) is not judged on",
        "  scenarios that need one; its adapter declares that.",
        "- Several libraries expose the `id` field of each event rather than the EventSource",
        "  last event id (which persists across events); the id scenarios judge the latter.",
        "- Timing scenarios state their tolerance (e.g. `retry-is-a-lower-bound`: at least",
        "  3,500 ms after `retry: 3500`, 30 ms slack); a run on a busy machine can make a",
        "  SHOULD timing scenario non-strict.",
        "",
        "## Adding a client", "",
        "Write an adapter: a command that takes the stream URL as its last argument, opens it",
        "with the client, and prints JSON lines (`hello` first, then `open`, `event`, `error`,",
        "`closed`; `skip` with a reason when it cannot run). See",
        "`conformance/dualstore_conformance/client_suite/adapters/protocol.py` and the",
        "adapters in `conformance/client-adapters/third_party/`. Then run",
        "`dualstore conform-client --adapter \"CMD\" --html report.html`.",
        "",
    ]
    lines += ["## Our own clients and Chromium", ""]
    for client, report in loaded:
        if not (client.ours or client.slug == "chromium-eventsource"):
            continue
        bad = [c for c in report["checks"]
               if c["verdict"] not in ("passed", "not-judged")]
        if not bad:
            lines.append(f"- {client.label}: every scenario that applies passed.")
            continue
        notes = "; ".join(f"`{c['id']}` {c['verdict']}: {c['message']}" for c in bad)
        lines.append(f"- {client.label}: {notes}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--out", default="docs/clients", help="folder of the per-client reports")
    parser.add_argument("--root", default=".", help="repository root")
    parser.add_argument("--only", action="append", default=[], help="client slugs to (re)run")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    out = (root / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        run_clients(out, args.only)
    command = f"python -m dualstore_conformance.client_suite.table --out {args.out}"
    (root / "docs" / "clients.md").write_text(render(out, root, command), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
