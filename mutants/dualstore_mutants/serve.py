# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only: ``python -m dualstore_mutants.serve --faults NAME[,NAME] [serve flags]``.

``dualstore serve`` with the reference app wrapped by the named faults (gunicorn workers
import ``dualstore_mutants``, so this folder's parent must be on their PYTHONPATH). An
unknown fault name is a one-line error and exit code 2; nothing is started.
"""

from __future__ import annotations

import argparse
import sys

from dualstore_reference import serve

from . import FaultError, resolve


def app_factory(names: list[str]) -> str:
    """The gunicorn app spec building the reference wrapped by names."""
    return f"dualstore_mutants.app:create({','.join(names)!r})"


def main(argv: list[str] | None = None) -> int:
    """Parse ``--faults`` and the serve flags; run the reference with those faults."""
    parser = argparse.ArgumentParser(prog="dualstore-mutant-serve", description=__doc__)
    parser.add_argument("--faults", required=True, help="comma-separated fault names")
    serve.add_arguments(parser)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.faults.split(",") if name.strip()]
    try:
        resolve(names)
    except FaultError as error:
        print(f"dualstore-mutant-serve: error: {error}", file=sys.stderr)
        return 2
    return serve.run(args, app_factory(names))


if __name__ == "__main__":
    sys.exit(main())
