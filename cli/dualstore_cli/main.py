# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``dualstore`` command: dispatches to the rooms (serve, conform[-client], load, spec)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from dualstore_cli.usage import UsageError


class Subcommand(Protocol):
    """What a subcommand module provides."""

    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


SUBCOMMANDS: dict[str, str] = {
    "serve": "dualstore_reference.serve",
    "conform": "dualstore_conformance.command",
    "conform-client": "dualstore_conformance.client_suite.command",
    "load": "dualstore_loadtests.command",
    "spec": "dualstore_spec.command",
}
"""Subcommand name -> module with HELP, add_arguments(parser) and run(args) -> exit code."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="dualstore",
        description="DualStore HTTP: spec, reference server, conformance harness, load test.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = cast(Subcommand, importlib.import_module(module_name))
        except ImportError as error:
            # one broken or missing subcommand must not take the others down
            child = sub.add_parser(name, help=f"(unavailable: {error})")
            child.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            child.set_defaults(_run=_unavailable(name, error))
            continue
        child = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(child)
        child.set_defaults(_run=module.run)
    return parser


def _unavailable(name: str, error: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise UsageError(f"the {name} subcommand is not available: {error}")

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run = cast(Callable[[argparse.Namespace], int], args._run)
    try:
        return run(args)
    except UsageError as error:
        print(f"dualstore {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
