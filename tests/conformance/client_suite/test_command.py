# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore conform-client``: exit codes, selection and the three report files."""

from __future__ import annotations

import json
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from dualstore_cli.main import main
from dualstore_conformance.client_suite import reports
from dualstore_conformance.client_suite.scenarios import load_all

PY = shlex.quote(sys.executable)
OURS = f"{PY} -m dualstore_conformance.client_suite.adapters.dualstore_python"
TOY = Path(__file__).with_name("toy_client.py")


def test_python_client_conforms_with_reports(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    paths = {kind: tmp_path / f"r.{kind}" for kind in ("json", "xml", "html")}
    code = main(["conform-client", "--adapter", OURS, "--only", "cr-line,dualstore-resume",
                 "--only", "field-without-colon", "--json", str(paths["json"]),
                 "--junit", str(paths["xml"]), "--html", str(paths["html"])])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dualstore_client (sync): conforms" in out
    report = json.loads(paths["json"].read_text())
    jsonschema.validate(report, reports.schema())
    verdicts = {c["id"]: (c["verdict"], c["not_judged"]) for c in report["checks"]}
    assert verdicts.pop("cr-line-endings") == ("passed", None)
    assert verdicts.pop("dualstore-resume-after-drop") == ("passed", None)
    assert verdicts.pop("field-without-colon") == ("not-judged", "not-applicable")
    assert len(verdicts) == len(load_all()) - 3  # the rest: listed, not selected
    assert set(verdicts.values()) == {("not-judged", "not-selected")}
    assert report["conforms"] is True and report["exit_code"] == 0
    assert report["verdicts"]["passed"] == 2
    suite = ET.parse(paths["xml"]).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(load_all()))
    assert suite.get("skipped") == str(len(load_all()) - 2)
    assert "dualstore-resume-after-drop" in paths["html"].read_text()


def test_must_failure_exits_1(tmp_path: Path) -> None:
    adapter = f"{PY} {shlex.quote(str(TOY))} --break no-last-event-id"
    out = tmp_path / "r.json"
    assert main(["conform-client", "--adapter", adapter, "--only", "last-event-id-sent",
                 "--json", str(out)]) == 1
    check = json.loads(out.read_text())["checks"][0]
    assert check["verdict"] == "failed" and "Last-Event-ID" in check["message"]
    assert "--only last-event-id-sent" in check["reproduce"]


@pytest.mark.parametrize("argv, says", [
    (["--adapter", OURS, "--only", "no-such-scenario"], "no scenario matches"),
    (["--adapter", "/nonexistent/adapter"], "could not run the adapter"),
    (["--adapter", f"{PY} -c pass"], "no hello line"),
    (["--adapter", OURS, "--json", "/nonexistent/dir/r.json"], "folder of"),
    (["--adapter", OURS, "--timeout-multiplier", "0"], "must be positive"),
])
def test_usage_errors_exit_2(argv: list[str], says: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform-client", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_nothing_judged_exits_2(tmp_path: Path) -> None:
    """A generic-client scenario only, run on a DualStore API client: nothing judged."""
    out = tmp_path / "r.json"
    assert main(["conform-client", "--adapter", OURS, "--only", "field-without-colon",
                 "--json", str(out)]) == 2
    report = json.loads(out.read_text())
    assert report["verdict"].startswith("NOTHING JUDGED") and report["conforms"] is False


def test_list_names_every_selected_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform-client", "--adapter", "unused", "--list", "--only", "dualstore"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(line.startswith("dualstore-") for line in lines)
