# SPDX-License-Identifier: GPL-3.0-or-later
"""Our packages' import graph (read with ast from the sources): no cycle, no forbidden arrow.

Every import counts: at module level, inside a function, under ``TYPE_CHECKING``, and
``importlib.import_module("<literal>")``. A ``TYPE_CHECKING`` import is no cycle at run
time, but it is still a dependency of the importing module on the imported one (mypy
reads it, and a change of the one breaks the other), so a two-way typing arrow is a cycle
here too. ``python tests/test_import_graph.py`` prints the graph (module -> modules).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "dualstore_cli": "cli/dualstore_cli",
    "dualstore_sse": "sse/dualstore_sse",
    "dualstore_spec": "spec",
    "dualstore_reference": "reference/dualstore_reference",
    "dualstore_conformance": "conformance/dualstore_conformance",
    "dualstore_loadtests": "loadtests/dualstore_loadtests",
    "dualstore_client": "clients/python/dualstore_client",
    "dualstore_mutants": "mutants/dualstore_mutants",
}
"""Package -> its folder: every package of ours, the test-only mutants included."""


@dataclass(frozen=True)
class Arrow:
    """One import of one of our modules by another."""

    source: str
    target: str
    function: str | None
    """The innermost function the import is in (None at module or class level)."""
    typing_only: bool
    """Under ``if TYPE_CHECKING:``."""


def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of our packages."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for file in sorted((ROOT / folder).rglob("*.py")):
            parts = [package, *file.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = file
    return found


def _ours(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: dict[str, Path]) -> None:
        self.module, self.is_package, self.known = module, is_package, known
        self.functions: list[str] = []
        self.typing_depth = 0
        self.arrows: list[Arrow] = []

    def _add(self, name: str) -> None:
        target = _ours(name, self.known)
        if target is not None and target != self.module:
            function = self.functions[-1] if self.functions else None
            self.arrows.append(Arrow(self.module, target, function, self.typing_depth > 0))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.typing_depth += 1
            for child in node.body:
                self.visit(child)
            self.typing_depth -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = node.module or ""
        if node.level:
            base = self.module.split(".")
            if not self.is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            self._add(submodule if submodule in self.known else source)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if (
            isinstance(function, ast.Attribute)
            and function.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self._add(node.args[0].value)
        self.generic_visit(node)


def arrows() -> list[Arrow]:
    """Every import arrow between our modules."""
    known = modules()
    found: list[Arrow] = []
    for module, file in known.items():
        visitor = _Imports(module, file.name == "__init__.py", known)
        visitor.visit(ast.parse(file.read_text("utf-8"), str(file)))
        found.extend(visitor.arrows)
    return found


def graph(found: list[Arrow]) -> dict[str, set[str]]:
    """module -> the modules it imports."""
    result: dict[str, set[str]] = {module: set() for module in modules()}
    for arrow in found:
        result[arrow.source].add(arrow.target)
    return result


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _package(module: str) -> str:
    return module.split(".")[0]


ALLOWED: dict[str, set[str]] = {
    "dualstore_sse": set(),
    "dualstore_cli": set(),
    "dualstore_spec": {"dualstore_sse"},
    "dualstore_client": {"dualstore_sse"},
    "dualstore_reference": {"dualstore_spec", "dualstore_sse", "dualstore_cli"},
    "dualstore_loadtests": {"dualstore_spec", "dualstore_sse", "dualstore_cli",
                            "dualstore_reference"},
    "dualstore_conformance": {"dualstore_spec", "dualstore_sse", "dualstore_cli",
                              "dualstore_reference"},
    "dualstore_mutants": {"dualstore_spec", "dualstore_sse", "dualstore_reference"},
}
"""Package -> the other packages of ours it may import (the dispatcher imports the rooms by
name only; nothing installed imports the test-only mutants)."""

ADAPTERS = "dualstore_conformance.client_suite.adapters."
"""The conform-client adapters: programs the harness runs to drive a client under judgement;
the one for our Python client imports it (nothing else of the harness may)."""

HARNESS_STARTS_REFERENCE = ("dualstore_conformance.command", "_reference")
"""The one function of the harness that may import the reference: it starts it for the
embedded default run of ``dualstore conform``."""


def test_the_graph_has_arrows_and_finds_a_planted_cycle() -> None:
    found = arrows()
    assert len(found) > 100
    edges = graph(found)
    assert "dualstore_sse.model" in edges["dualstore_sse.parser"]
    planted = {name: set(targets) for name, targets in edges.items()}
    planted["dualstore_sse.model"].add("dualstore_sse.parser")
    assert ["dualstore_sse.model", "dualstore_sse.parser"] in cycles(planted)


def test_no_import_cycle() -> None:
    assert cycles(graph(arrows())) == []


def test_each_package_imports_only_what_it_may() -> None:
    wrong = sorted(
        f"{arrow.source} -> {arrow.target}"
        for arrow in arrows()
        if _package(arrow.target) != _package(arrow.source)
        and _package(arrow.target) not in ALLOWED[_package(arrow.source)]
        and not (arrow.source.startswith(ADAPTERS) and _package(arrow.target) == "dualstore_client")
    )
    assert wrong == []


def test_the_harness_imports_the_reference_only_to_start_it() -> None:
    uses = {
        (arrow.source, arrow.function, arrow.target)
        for arrow in arrows()
        if _package(arrow.source) == "dualstore_conformance"
        and _package(arrow.target) == "dualstore_reference"
    }
    assert uses == {(*HARNESS_STARTS_REFERENCE, "dualstore_reference.launcher")}


def test_the_load_test_imports_the_reference_only_to_start_it() -> None:
    uses = {
        (arrow.source, arrow.function, arrow.target)
        for arrow in arrows()
        if _package(arrow.source) == "dualstore_loadtests"
        and _package(arrow.target) == "dualstore_reference"
    }
    assert uses == {("dualstore_loadtests.command", "_start_reference",
                     "dualstore_reference.launcher")}


def test_the_reference_imports_no_harness_load_test_or_client() -> None:
    forbidden = {"dualstore_conformance", "dualstore_loadtests", "dualstore_client",
                 "dualstore_mutants"}
    assert not forbidden & ALLOWED["dualstore_reference"]
    assert not {"dualstore_conformance", "dualstore_reference", "dualstore_loadtests",
                "dualstore_spec"} & ALLOWED["dualstore_client"]


def main() -> int:
    """Print the graph (module -> modules it imports), then its cycles."""
    edges = graph(arrows())
    for module in sorted(edges):
        if edges[module]:
            print(f"{module} -> {', '.join(sorted(edges[module]))}")
    for component in cycles(edges):
        print("cycle:", " <-> ".join(component))
    return 0


if __name__ == "__main__":
    sys.exit(main())
