# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore serve`` with the embedded database: supervision and clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from dualstore_reference import launcher


def _database_process(server: launcher.RunningReference) -> psutil.Process:
    assert server.process is not None
    for child in psutil.Process(server.process.pid).children():
        if any("secantusd" in part for part in child.cmdline()):
            return child
    raise AssertionError("no embedded database process")


def test_embedded_database_is_supervised_and_everything_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    with launcher.start_reference(workers=1, data_dir=tmp_path) as server:
        assert server.process is not None
        family = psutil.Process(server.process.pid).children(recursive=True)
        database = _database_process(server)
        assert str(tmp_path / "db") in " ".join(database.cmdline())
        kept = httpx.post(f"{server.url}/v1/agent_tasks", json={"text": "kept"}).json()["id"]
        database.kill()  # the daemon dies: serve restarts it on the same port and storage
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                created = httpx.post(f"{server.url}/v1/agent_tasks", json={"text": "after"})
                if created.status_code == 201:
                    doc_id = created.json()["id"]
                    assert httpx.get(f"{server.url}/v1/agent_tasks/{doc_id}").status_code == 200
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the server did not recover after the database died")
        # acknowledged before the crash = journaled: still there
        assert httpx.get(f"{server.url}/v1/agent_tasks/{kept}").status_code == 200
        replacement = _database_process(server)
        assert replacement.pid != database.pid
        family.append(replacement)

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"left running: {alive}"


def test_bad_configuration_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in launcher.SETTING_VARIABLES}
    cli = [sys.executable, "-m", "dualstore_cli", "serve"]
    module = [sys.executable, "-m", "dualstore_reference.serve"]
    for command, extra, args in (
        (cli, {"PORT": "eighty"}, []),
        (module, {}, ["--workers", "0"]),
        (module, {"CORS_ORIGIN": "nope"}, []),
    ):
        result = subprocess.run(
            [*command, "--data-dir", str(tmp_path), *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dualstore serve: error:"), lines


def test_ambiguous_authentication_refuses_to_start(tmp_path: Path) -> None:
    # Each of these once started a server that answered every route without a token.
    env = {k: v for k, v in os.environ.items() if k not in launcher.SETTING_VARIABLES}
    module = [sys.executable, "-m", "dualstore_reference.serve", "--data-dir", str(tmp_path)]
    for extra, args, named in (
        ({"AUTH_TOKEN": ","}, [], "AUTH_TOKEN"),
        ({"AUTH_TOKEN": ""}, [], "AUTH_TOKEN"),
        ({"AUTH_TOKEN": "secret,"}, [], "AUTH_TOKEN"),
        ({"AUTH_TOKEN": "secret"}, ["--auth-token", ""], "--auth-token"),
        ({}, ["--auth-token", ","], "--auth-token"),
    ):
        result = subprocess.run(
            [*module, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, (extra, args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dualstore serve: error:"), lines
        assert named in lines[0], lines


def test_authentication_off_is_logged_at_startup(tmp_path: Path) -> None:
    with launcher.start_reference(workers=1, data_dir=tmp_path / "off") as server:
        assert "authentication OFF" in server.log_path.read_text()
    with launcher.start_reference(
        env={"AUTH_TOKEN": "t"}, workers=1, data_dir=tmp_path / "on"
    ) as server:
        text = server.log_path.read_text()
        assert "authentication OFF" not in text and "authentication on" in text
