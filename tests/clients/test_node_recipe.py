# SPDX-License-Identifier: GPL-3.0-or-later
"""The Node recipe of clients/js/README.md, run exactly as written against the reference."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from dualstore_reference.launcher import RunningReference

pytestmark = pytest.mark.slow  # downloads the polyfill from the npm registry

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: the README's npm commands run here (``./clients/js`` is relative to it)."""

JS_DIR = Path(__file__).resolve().parents[2] / "clients" / "js"
README = JS_DIR / "README.md"
PACKAGE = json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))
TOKEN = "test-token"  # start_reference's default (tests/conftest.py)
COLLECTION = "session_messages"  # the collection the recipe streams
WAIT = 20.0  # seconds for any one expected line
QUIET = 1.5  # seconds of silence that show nothing more is coming
NPM_OFFLINE = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH"
    r"|network|proxy|socket hang up",
    re.IGNORECASE,
)


def node_section() -> str:
    """The README's "## Node" section, up to the next second-level heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Node\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{README.name} has no '## Node' section"
    return match.group(1)


def fenced(section: str, language: str) -> list[str]:
    """The bodies of the section's ```language blocks, exactly as written."""
    return re.findall(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def recipe() -> tuple[list[list[str]], str]:
    """(the npm commands of the ```sh block, the app.mjs source) from the README."""
    section = node_section()
    shell = fenced(section, "sh")
    scripts = [body for body in fenced(section, "js") if body.startswith("// app.mjs\n")]
    assert len(shell) == 1, f"expected one ```sh block under ## Node, found {len(shell)}"
    assert len(scripts) == 1, f"expected one ```js block for app.mjs, found {len(scripts)}"
    commands = [shlex.split(line, comments=True) for line in shell[0].splitlines()]
    commands = [words for words in commands if words]
    assert commands and all(words[0] == "npm" for words in commands), commands
    assert commands[0][1] == "install", f"the recipe starts with npm install: {commands}"
    return commands, scripts[0]


def npm(npm_path: str, words: list[str], folder: Path) -> None:
    """Run one of the README's npm commands from the checkout, installing into ``folder``
    (no audit or funding chatter)."""
    quiet = ["--no-audit", "--no-fund"] if words[1] == "install" else []
    command = [npm_path, words[1], *quiet, "--prefix", str(folder), *words[2:]]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"{shlex.join(words)}: the npm registry did not answer within 300 s")
    if done.returncode != 0:
        if words[1] == "install" and NPM_OFFLINE.search(done.stderr):
            pytest.skip(f"the npm registry cannot be reached: {done.stderr.strip()[-400:]}")
        pytest.fail(f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as the README leaves it: its npm commands run, app.mjs and the module."""
    node, npm_path = shutil.which("node"), shutil.which("npm")
    if node is None or npm_path is None:
        pytest.skip("node and npm are needed for the Node recipe (apt-get install nodejs npm)")
    commands, source = recipe()
    folder = tmp_path_factory.mktemp("node-recipe")
    for words in commands:
        npm(npm_path, words, folder)
    installed = json.loads((folder / "node_modules" / "eventsource" / "package.json").read_text())
    print(f"eventsource {installed['version']} under node {node_version(node)}")
    ours = folder / "node_modules" / PACKAGE["name"]
    assert ours.resolve() == JS_DIR.resolve(), f"npm installed {ours}, not clients/js"
    (folder / "app.mjs").write_text(source, encoding="utf-8")
    return folder


def node_version(node: str) -> str:
    return subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()


class NodeApp:
    """`node app.mjs` in the background; its stdout lines arrive on a queue."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.stderr_path = folder / f"stderr-{uuid.uuid4().hex[:8]}.txt"
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", "app.mjs"],
            cwd=folder,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def next_line(self, timeout: float) -> str | None:
        """The next printed line, or None when none came within ``timeout`` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.seen.append(line)
        return line

    def expect(self, predicate: Callable[[str], bool], what: str) -> str:
        """Read lines until one matches; fail after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            line = self.next_line(left)
            if line is not None and predicate(line):
                return line
            if self.process.poll() is not None and self.lines.empty():
                break
        pytest.fail(
            f"node printed no {what} within {WAIT} s (exit {self.process.poll()}); "
            f"stdout so far {self.seen}; stderr:\n{self.stderr()}"
        )

    def drain(self) -> None:
        """Read whatever else is printed until QUIET seconds pass without a line."""
        while self.next_line(QUIET) is not None:
            pass

    def interrupt(self) -> int:
        """Ctrl-C as the recipe expects it: SIGINT, then wait for Node to exit by itself."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


@pytest.fixture
def run_app(app_dir: Path) -> Iterator[Callable[..., NodeApp]]:
    """Factory: start `node app.mjs` with these environment variables; killed after the test."""
    started: list[NodeApp] = []

    def start(**env: str) -> NodeApp:
        app = NodeApp(app_dir, env)
        started.append(app)
        return app

    try:
        yield start
    finally:
        for app in started:
            app.kill()


@pytest.fixture
def server(start_reference: Callable[..., RunningReference]) -> RunningReference:
    """A reference of its own (fresh database): nothing but this test writes to it."""
    return start_reference()


def parse(line: str) -> tuple[str, str]:
    """A recipe line `console.log(id, doc.text)`: (event id, text)."""
    event_id, _, text = line.partition(" ")
    return event_id, text


def test_node_recipe_prints_each_insert_once_and_resumes_after_last_id(
    server: RunningReference, run_app: Callable[..., NodeApp]
) -> None:
    run = uuid.uuid4().hex[:8]
    env = {"DUALSTORE_URL": server.url, "DUALSTORE_TOKEN": TOKEN}
    with httpx.Client(
        base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as rest:

        def insert(text: str) -> str:
            response = rest.post(f"/{COLLECTION}", json={"text": text})
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        # First run: the stream starts live, so probe until the app shows it is listening.
        app = run_app(**env)
        probes: list[str] = []
        deadline = time.monotonic() + WAIT
        while True:
            probes.append(f"probe {run} {len(probes)}")
            insert(probes[-1])
            line = app.next_line(0.5)
            if line is not None:
                break
            assert app.process.poll() is None, f"node exited early:\n{app.stderr()}"
            assert time.monotonic() < deadline, f"no insert reached node:\n{app.stderr()}"
        texts = [f"doc {run} {n}" for n in range(3)]
        for text in texts:
            insert(text)
        app.expect(lambda line: parse(line)[1] == texts[-1], "third document")
        app.drain()
        assert app.interrupt() == 0, f"Ctrl-C did not end node cleanly:\n{app.stderr()}"
        first = [parse(line) for line in app.seen]
        shown_probes = [text for _, text in first if text.startswith("probe ")]
        assert shown_probes and set(shown_probes) <= set(probes)
        assert [text for _, text in first] == [*shown_probes, *texts], app.seen
        ids = [event_id for event_id, _ in first]
        assert all(event_id.isdecimal() for event_id in ids), ids
        assert [int(i) for i in ids] == sorted({int(i) for i in ids}), "ids not increasing"
        assert app.stderr() == ""

        # Second run: resume after the second document; only what came after it is printed.
        second_id = {text: event_id for event_id, text in first}[texts[1]]
        app = run_app(**env, LAST_ID=second_id)
        app.expect(lambda line: parse(line)[1] == texts[2], "replayed third document")
        later = f"doc {run} 3"
        insert(later)
        app.expect(lambda line: parse(line)[1] == later, "document inserted after the resume")
        app.drain()
        assert app.interrupt() == 0, f"Ctrl-C did not end node cleanly:\n{app.stderr()}"
        resumed = [parse(line) for line in app.seen]
        assert [text for _, text in resumed] == [texts[2], later], app.seen
        assert resumed[0] == first[-1]  # the replayed event keeps its event id
        assert int(resumed[1][0]) > int(resumed[0][0])
        assert app.stderr() == ""
