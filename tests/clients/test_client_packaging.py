# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python client installs on its own: a fresh venv gets httpx and the SSE package only."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_SIDE = {
    "dualstore-http", "falcon", "gunicorn", "uvicorn", "uvicorn-worker", "pymongo", "hnswlib",
    "numpy", "locust", "matplotlib", "schemathesis", "secantusdb", "psutil", "jsonschema",
    "prometheus-client", "pyyaml", "openapi-spec-validator", "sentence-transformers",
}
"""Distributions of the server, harness, load test and spec (normalized names)."""
CLIENT_SIDE = {"dualstore-client", "dualstore-sse", "httpx"}


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.mark.slow  # builds two wheels in a fresh virtual environment (about 50 s)
def test_the_client_alone_installs_no_server_dependency(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for room in ("sse", "clients/python"):  # copies: the build leaves files where it runs
        shutil.copytree(ROOT / room, source / room,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", str(source / "sse"), str(source / "clients/python")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    installed = {_normalized(entry["name"]) for entry in json.loads(listed.stdout)}
    print("installed:", ", ".join(sorted(installed)))
    assert installed >= CLIENT_SIDE
    assert installed & SERVER_SIDE == set()
    probe = subprocess.run(
        [python, "-c", "import dualstore_client, dualstore_sse, importlib.util as u; "
                       "print(dualstore_client.DualStoreClient.__name__, "
                       "[m for m in ('dualstore_conformance', 'dualstore_reference', "
                       "'dualstore_spec', 'dualstore_loadtests') if u.find_spec(m)])"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "DualStoreClient []"


def test_both_distributions_declare_what_the_client_imports() -> None:
    client = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text("utf-8"))
    sse = tomllib.loads((ROOT / "sse/pyproject.toml").read_text("utf-8"))
    assert sse["project"]["dependencies"] == []
    names = {_normalized(spec.split("=")[0].split(">")[0].split("<")[0])
             for spec in client["project"]["dependencies"]}
    assert names == {"httpx", "dualstore-sse"}
