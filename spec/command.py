# SPDX-License-Identifier: GPL-3.0-or-later
"""``dualstore spec``: print where the spec files are, or lint them."""

from __future__ import annotations

import argparse
import os
import sys

import dualstore_spec

HELP = "Show where the specification files are (path) or validate them (lint)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``spec path`` and ``spec lint``."""
    parser.add_argument("action", choices=["path", "lint"], help="what to do")
    parser.add_argument(
        "--dir", default=None, help="lint this folder instead of the installed spec"
    )


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; exit code 0 ok, 1 lint findings, 2 usage."""
    if args.action == "path":
        print(dualstore_spec.path())
        return 0
    if args.dir is not None and not os.path.isdir(args.dir):
        print(f"dualstore spec lint: --dir {args.dir}: not a directory", file=sys.stderr)
        return 2
    from dualstore_spec import lint  # imported lazily: validators are heavy

    problems = lint.lint(args.dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"spec lint: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("spec lint: ok")
    return 0
