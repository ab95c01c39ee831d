# SPDX-License-Identifier: GPL-3.0-or-later
"""Render rules.yaml as a Markdown table and keep the README's copy in sync."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import dualstore_spec

START = "<!-- rules:start -->"
END = "<!-- rules:end -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rules_table(rules: list[dict[str, Any]] | None = None) -> str:
    """The rules as a Markdown table (ID, level, statement, source), one row per rule."""
    rows = [
        "| ID | Level | Rule | Source |",
        "|---|---|---|---|",
    ]
    for rule in dualstore_spec.rules() if rules is None else rules:
        statement = _cell(rule["statement"])
        if rule.get("not_checkable"):
            statement += f" *(not machine-checkable: {_cell(rule['not_checkable'])})*"
        source = f"`spec/{rule['section']}`"
        rows.append(f"| {rule['id']} | {rule['level']} | {statement} | {source} |")
    return "\n".join(rows) + "\n"


def block(rules: list[dict[str, Any]] | None = None) -> str:
    """The text that belongs between the README markers (markers included)."""
    return f"{START}\n{rules_table(rules)}{END}"


def current_block(readme_text: str) -> str | None:
    """The marked block of a README (markers included), or None without both markers."""
    start = readme_text.find(START)
    end = readme_text.find(END, start)
    if start < 0 or end < 0:
        return None
    return readme_text[start : end + len(END)]


def update(readme: Path) -> bool:
    """Rewrite the README's marked block from rules.yaml; True when the file changed."""
    text = readme.read_text(encoding="utf-8")
    old = current_block(text)
    if old is None:
        raise ValueError(f"{readme}: no {START} ... {END} markers")
    new_text = text.replace(old, block(), 1)
    if new_text == text:
        return False
    readme.write_text(new_text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m dualstore_spec.render [--check] [README]``: update or check the table."""
    parser = argparse.ArgumentParser(prog="python -m dualstore_spec.render", description=__doc__)
    parser.add_argument("readme", nargs="?", default="README.md", help="default: ./README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    if not readme.is_file():
        print(f"render: {readme} is not a file", file=sys.stderr)
        return 2
    text = readme.read_text(encoding="utf-8")
    existing = current_block(text)
    if existing is None:
        print(f"render: {readme} has no {START} ... {END} markers", file=sys.stderr)
        return 2
    if args.check:
        if existing != block():
            print(f"render: the rules table in {readme} is stale; run without --check")
            return 1
        print("render: rules table up to date")
        return 0
    print("render: updated" if update(readme) else "render: already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
