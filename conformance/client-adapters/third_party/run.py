# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a third-party SSE library's adapter, installing the library on first use.

Usage (as a ``dualstore conform-client --adapter`` command): ``python run.py LIBRARY URL``.
Python libraries are installed with pip into a private target folder, npm packages with npm
into a private prefix, both under a cache folder (``$DUALSTORE_ADAPTER_CACHE``, default
``~/.cache/dualstore/client-adapters``), never into the project's environment. When the
registry (or pip, npm, node) is not reachable, the adapter says ``skip`` with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE_ENV = "DUALSTORE_ADAPTER_CACHE"

LIBRARIES: dict[str, dict[str, object]] = {
    # name: registry, pinned requirement, adapter file, profile, features
    "httpx-sse": {"registry": "pypi", "spec": "httpx-sse==0.4.3",
                  "adapter": "python/httpx_sse_adapter.py", "features": []},
    "sseclient-py": {"registry": "pypi", "spec": "sseclient-py==1.9.0",
                     "adapter": "python/sseclient_py_adapter.py", "features": []},
    "requests-sse": {"registry": "pypi", "spec": "requests-sse==0.5.3",
                     "adapter": "python/requests_sse_adapter.py", "features": ["reconnect"]},
    "aiohttp-sse-client2": {"registry": "pypi", "spec": "aiohttp-sse-client2==0.3.0",
                            "adapter": "python/aiohttp_sse_client2_adapter.py",
                            "features": ["reconnect"]},
    "eventsource": {"registry": "npm", "spec": "eventsource@5.1.5",
                    "adapter": "node/eventsource.mjs", "features": ["reconnect"]},
    "@microsoft/fetch-event-source": {"registry": "npm",
                                      "spec": "@microsoft/fetch-event-source@2.0.1",
                                      "adapter": "node/fetch-event-source.mjs",
                                      "features": ["reconnect"]},
    "eventsource-client": {"registry": "npm", "spec": "eventsource-client@1.2.0",
                           "adapter": "node/eventsource-client.mjs", "features": ["reconnect"]},
    "extended-eventsource": {"registry": "npm", "spec": "extended-eventsource@2.1.0",
                             "adapter": "node/extended-eventsource.mjs",
                             "features": ["reconnect"]},
}


def _emit(kind: str, **fields: object) -> None:
    print(json.dumps({"kind": kind, **fields}), flush=True)


def _skip(name: str, reason: str) -> int:
    library = LIBRARIES.get(name, {})
    _emit("hello", client=name, version="", profile="eventsource",
          features=library.get("features", []))
    _emit("skip", reason=reason)
    return 0


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    base = Path(configured) if configured else Path.home() / ".cache" / "dualstore"
    return base / "client-adapters" if not configured else base


def _folder(spec: str) -> Path:
    safe = spec.replace("/", "_").replace("@", "_at_").replace("=", "_")
    return cache_root() / safe


def _install(registry: str, spec: str, folder: Path) -> str | None:
    """Install once (under a lock); None on success, else the reason it failed."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".installed"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return None
        if registry == "pypi":
            argv = [sys.executable, "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--target", str(folder / "site"), spec]
        else:
            if shutil.which("npm") is None or shutil.which("node") is None:
                return "node and npm are not installed"
            argv = ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund",
                    "--silent", "--no-save", spec]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"cannot install {spec}: {error}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            return f"cannot install {spec} from its registry: {last[:300]}"
        marker.write_text(spec + "\n")
    return None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in LIBRARIES:
        names = ", ".join(LIBRARIES)
        print(f"usage: run.py LIBRARY URL (LIBRARY one of: {names})", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    library = LIBRARIES[name]
    registry, spec = str(library["registry"]), str(library["spec"])
    folder = _folder(spec)
    reason = _install(registry, spec, folder)
    if reason is not None:
        return _skip(name, reason)
    adapter = HERE / str(library["adapter"])
    env = dict(os.environ)
    if registry == "pypi":
        env["PYTHONPATH"] = os.pathsep.join(
            [str(folder / "site"), *filter(None, [env.get("PYTHONPATH")])])
        command = [sys.executable, str(adapter), *rest]
    else:
        # ES modules resolve packages from the importing file's folder: run a copy there
        local = folder / adapter.name
        with contextlib.suppress(OSError):
            shutil.copyfile(HERE / "node" / "protocol.mjs", folder / "protocol.mjs")
        shutil.copyfile(adapter, local)
        command = ["node", str(local), *rest]
    os.execvpe(command[0], command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
