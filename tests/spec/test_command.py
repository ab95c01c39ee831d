# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore spec path`` and ``dualstore spec lint``: output and exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dualstore_spec

DUALSTORE = str(Path(sys.executable).parent / "dualstore")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DUALSTORE, "spec", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_path_prints_the_folder_holding_the_spec() -> None:
    result = run("path")
    assert result.returncode == 0
    folder = Path(result.stdout.strip())
    for name in ("openapi.yaml", "sse-contract.yaml", "filter.schema.json", "rules.yaml"):
        assert (folder / name).is_file()


def test_lint_passes_on_the_shipped_spec() -> None:
    result = run("lint")
    assert (result.returncode, result.stdout.strip()) == (0, "spec lint: ok"), result.stderr


def test_lint_fails_with_a_pointed_message_on_a_broken_copy(tmp_path: Path) -> None:
    folder = tmp_path / "spec"
    shutil.copytree(dualstore_spec.path(), folder, ignore=shutil.ignore_patterns("*.py"))
    rules = folder / "rules.yaml"
    rules.write_text(rules.read_text().replace("id: HTTP-002", "id: HTTP-001", 1))
    result = run("lint", "--dir", str(folder))
    assert result.returncode == 1
    assert "rules.yaml: rule ID HTTP-001 is used 2 times" in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1] == "spec lint: 1 problem(s)"


def test_lint_of_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = run("lint", "--dir", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a directory" in result.stderr


def test_unknown_action_is_a_usage_error() -> None:
    assert run("frobnicate").returncode == 2
