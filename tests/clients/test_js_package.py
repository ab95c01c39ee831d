# SPDX-License-Identifier: GPL-3.0-or-later
"""clients/js is an npm package: ESM, ``exports`` to files that exist, a declaration per export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parents[2] / "clients" / "js"
PACKAGE = json.loads((JS_DIR / "package.json").read_text(encoding="utf-8"))
EXPORTED = re.compile(r"^export (?:async )?(?:function|class|const) (\w+)", re.MULTILINE)
DECLARED = re.compile(r"^export (?:declare )?(?:function|class|const) (\w+)", re.MULTILINE)


def test_the_package_is_an_es_module_whose_exports_exist() -> None:
    assert PACKAGE["type"] == "module"
    root = PACKAGE["exports"]["."]
    assert set(root) == {"types", "default"}
    assert list(root) == ["types", "default"]  # "types" must come first to be seen
    for target in (root["types"], root["default"], PACKAGE["types"]):
        assert (JS_DIR / target).is_file(), target
    for name in PACKAGE["files"]:
        assert (JS_DIR / name).is_file(), name
    assert PACKAGE["license"] == "GPL-3.0-or-later"
    assert "dependencies" not in PACKAGE


def test_every_export_of_the_module_is_declared_and_nothing_else() -> None:
    source = (JS_DIR / PACKAGE["exports"]["."]["default"]).read_text(encoding="utf-8")
    types = (JS_DIR / PACKAGE["exports"]["."]["types"]).read_text(encoding="utf-8")
    exported = set(EXPORTED.findall(source))
    assert exported == {"encodeFilter", "apiRoot", "ProblemError", "DualStoreStream",
                        "DualStoreClient"}
    assert set(DECLARED.findall(types)) == exported


def test_node_imports_the_package_by_name(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is needed (apt-get install nodejs)")
    modules = tmp_path / "node_modules"
    modules.mkdir()
    (modules / PACKAGE["name"]).symlink_to(JS_DIR, target_is_directory=True)
    script = (f'import * as m from "{PACKAGE["name"]}"; '
              'console.log(Object.keys(m).sort().join(","), m.encodeFilter({a: 1}))')
    done = subprocess.run([node, "--input-type=module", "-e", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "DualStoreClient,DualStoreStream,ProblemError,apiRoot,encodeFilter", "eyJhIjoxfQ"
    ]
