# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore conform``: exit codes 0/1/2, JSON report against its schema, JUnit, HTML."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from dualstore_cli.main import main
from dualstore_conformance.reports import json_report

FRAMING = (
    "sse-frame-content-type,sse-frame-cache-control,sse-frame-no-proxy-buffering,"
    "sse-frame-sent-on-open,sse-frame-insert-event,sse-frame-event-types,"
    "sse-order-concurrent-exactly-once"
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["conform", "--no-such-flag"])
    assert raised.value.code == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "ftp://example.org"],
        ["--url", "http://127.0.0.1:1", "--workers", "0"],
        ["--url", "http://127.0.0.1:1", "--timeout-multiplier", "0"],
        ["--url", "http://127.0.0.1:1", "--heartbeat-seconds", "-1"],
        ["--url", "http://127.0.0.1:1", "--cors-origin", "app.example"],
        ["--url", "http://127.0.0.1:1", "--cors-origin", "https://app.example/page"],
    ],
)
def test_invalid_values_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conform", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dualstore conform: error:") and "\n" not in err


def test_unreachable_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    assert main(["conform", "--url", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unreachable" in err and "\n" not in err


def test_selection_matching_nothing_exits_2(
    mini_target: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = mini_target
    assert main(["conform", "--url", url, "--only", "no-such-check"]) == 2
    assert "no-such-check" in capsys.readouterr().err


def test_unknown_collection_exits_2(
    mini_target: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = mini_target
    assert main(["conform", "--url", url, "--collection", "nope", "--only", "sse-frame"]) == 2
    assert "does not serve collection 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(("token", "message"), [
    (None, "requires a token"), ("wrong", "refused the token"),
])
def test_missing_or_refused_token_exits_2(
    mini_target: tuple[str, Any], capsys: pytest.CaptureFixture[str], token: str | None,
    message: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, state = mini_target
    state.mode = "auth"
    monkeypatch.delenv("DUALSTORE_TOKEN", raising=False)
    argv = ["conform", "--url", url, "--only", "sse-frame"]
    assert main(argv + (["--token", token] if token else [])) == 2
    assert message in capsys.readouterr().err


def _run(url: str, tmp_path: Path, only: str) -> tuple[int, dict[str, Any], ET.Element]:
    code = main([
        "conform", "--url", url, "--only", only, "--json", str(tmp_path / "r.json"),
        "--junit", str(tmp_path / "r.xml"), "--html", str(tmp_path / "r.html"),
    ])
    report = json.loads((tmp_path / "r.json").read_text("utf-8"))
    junit = ET.parse(tmp_path / "r.xml").getroot()
    return code, report, junit


def test_legal_but_unusual_framing_passes_and_reports_validate(
    mini_target: tuple[str, Any], tmp_path: Path
) -> None:
    """BOM, CR-only line ends, comments, id-only block, unknown field, no retry: all legal."""
    url, _ = mini_target
    code, report, junit = _run(url, tmp_path, FRAMING)
    selected = _selected(report)
    failing = [c for c in selected if c["status"] != "passed"]
    assert failing == []
    assert code == 0
    jsonschema.validate(report, json_report.schema())
    assert {c["id"] for c in selected} == set(FRAMING.split(","))
    # every other check is listed as not judged because the run did not select it
    assert all(c["verdict"] == "not-judged" for c in report["checks"] if c not in selected)
    assert report["summary"]["passed"] == len(FRAMING.split(","))
    cases = junit.findall(".//testcase")
    assert len(cases) == len(selected)  # JUnit leaves out what the run did not select
    assert all("[SSE-" in case.get("name", "") for case in cases)
    html = (tmp_path / "r.html").read_text("utf-8")
    assert "sse-frame-insert-event" in html and "<script" not in html


def _selected(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks the run selected (the report also lists the others as not-selected)."""
    return [c for c in report["checks"] if c["not_judged"] != "not-selected"]


def test_wrong_content_type_exits_1_with_evidence(
    mini_target: tuple[str, Any], tmp_path: Path
) -> None:
    url, state = mini_target
    state.mode = "wrong-type"
    code, report, junit = _run(url, tmp_path, "sse-frame-content-type")
    assert code == 1
    jsonschema.validate(report, json_report.schema())
    (check,) = _selected(report)
    assert check["status"] == "failed"
    assert check["rules"] == ["SSE-FRAME-001"]
    assert "text/plain" in check["message"]
    assert check["reproduce"].startswith("curl ")
    assert check["evidence"]["headers"]["content-type"] == "text/plain"
    (case,) = junit.findall(".//testcase")
    failure = case.find("failure")
    assert failure is not None and "text/plain" in (failure.text or "")
    assert "reproduce: curl" in (failure.text or "")


def test_token_is_redacted_in_reproductions(
    mini_target: tuple[str, Any], tmp_path: Path
) -> None:
    url, state = mini_target
    state.mode = "wrong-type"
    main(["conform", "--url", url, "--token", "s3cret-value", "--only",
          "sse-frame-content-type", "--json", str(tmp_path / "r.json")])
    text = (tmp_path / "r.json").read_text("utf-8")
    assert "s3cret-value" not in text
    assert '"Authorization: Bearer $TOKEN"' in json.loads(text)["checks"][0]["reproduce"]


@pytest.mark.parametrize(
    ("mode", "check_id", "rule"),
    [
        ("no-cache-header", "sse-frame-cache-control", "SSE-FRAME-002"),
        ("silent-open", "sse-frame-sent-on-open", "SSE-FRAME-004"),
        ("no-id", "sse-frame-insert-event", "SSE-FRAME-006"),
        ("multiline-data", "sse-frame-insert-event", "SSE-FRAME-006"),
        ("unknown-type", "sse-frame-event-types", "SSE-FRAME-009"),
        ("duplicate", "sse-order-concurrent-exactly-once", "SSE-ORDER-001"),
        ("resume-off-by-one", "sse-order-concurrent-exactly-once", "SSE-ORDER-003"),
    ],
)
def test_each_fault_is_caught_by_its_check(
    mini_target: tuple[str, Any], tmp_path: Path, mode: str, check_id: str, rule: str
) -> None:
    url, state = mini_target
    state.mode = mode
    code = main(["conform", "--url", url, "--only", check_id,
                 "--json", str(tmp_path / "r.json")])
    (check,) = _selected(json.loads((tmp_path / "r.json").read_text("utf-8")))
    assert (code, check["status"]) == (1, "failed"), check["message"]
    assert rule in check["evidence"]["failed_rules"]


def _cors_statuses(url: str, token: str, tmp_path: Path, *flags: str) -> dict[str, str]:
    main(["conform", "--url", url, "--token", token, "--only", "cors-",
          "--json", str(tmp_path / "cors.json"), *flags])
    report = json.loads((tmp_path / "cors.json").read_text("utf-8"))
    return {c["id"]: c["status"] for c in _selected(report)}


def test_cors_origin_flag_runs_the_allowed_origin_checks(
    reference_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUALSTORE_CORS_ORIGIN", raising=False)
    token = reference_server.env["AUTH_TOKEN"].split(",")[0]
    origin = reference_server.env["CORS_ORIGIN"].split(",")[0]
    without = _cors_statuses(reference_server.url, token, tmp_path)
    assert without["cors-allowed-origin"] == "skipped"
    flagged = _cors_statuses(reference_server.url, token, tmp_path, "--cors-origin", origin)
    assert flagged["cors-allowed-origin"] == "passed"
    assert set(flagged.values()) == {"passed"}


def test_cors_origin_flag_wins_over_the_environment(
    reference_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUALSTORE_CORS_ORIGIN", "https://not-on-the-list.invalid")
    token = reference_server.env["AUTH_TOKEN"].split(",")[0]
    origin = reference_server.env["CORS_ORIGIN"].split(",")[0]
    assert _cors_statuses(reference_server.url, token, tmp_path)["cors-allowed-origin"] == (
        "failed"
    )
    flagged = _cors_statuses(reference_server.url, token, tmp_path, "--cors-origin", origin)
    assert flagged["cors-allowed-origin"] == "passed"
