# SPDX-License-Identifier: GPL-3.0-or-later
"""The spec files ship inside the wheel (so ``dualstore spec path`` works wherever installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "test-artifacts",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "dualstore-data",
)
SPEC_FILES = {
    "dualstore_spec/__init__.py",
    "dualstore_spec/command.py",
    "dualstore_spec/lint.py",
    "dualstore_spec/render.py",
    "dualstore_spec/openapi.yaml",
    "dualstore_spec/sse-contract.yaml",
    "dualstore_spec/filter.schema.json",
    "dualstore_spec/rules.yaml",
    "dualstore_spec/README.md",
    "dualstore_spec/meta-schemas/rules.schema.json",
    "dualstore_spec/meta-schemas/sse-contract.schema.json",
    "dualstore_spec/meta-schemas/filter-schema.schema.json",
}


def test_wheel_contains_the_spec_files(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("dualstore_http-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert names >= SPEC_FILES, sorted(SPEC_FILES - names)
    assert not any(n.split("/")[0] in ("reference", "conformance", "spec") for n in names)

    # Installed from the wheel (not the checkout), the spec is found and lints clean.
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    probe = (
        "import sys, dualstore_spec; from dualstore_spec import command, lint;"
        "print(dualstore_spec.path()); sys.exit(len(lint.lint(None)))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    installed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert Path(installed.stdout.strip()) == target / "dualstore_spec"
