# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's rules table is generated from rules.yaml and kept in sync."""

from __future__ import annotations

from pathlib import Path

import dualstore_spec
import pytest
from dualstore_spec import render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_rules_table_is_in_sync_with_rules_yaml() -> None:
    block = render.current_block(README.read_text(encoding="utf-8"))
    assert block is not None, "README.md lacks the rules markers"
    assert block == render.block(), "run: python -m dualstore_spec.render"


def test_table_has_one_row_per_rule_and_escapes_pipes() -> None:
    table = render.rules_table()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(dualstore_spec.rules()) + 1  # header
    odd = [{"id": "X-001", "level": "MAY", "statement": "a | b.", "section": "README.md"}]
    assert "a \\| b." in render.rules_table(odd)


def test_update_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\n{render.START}\nstale\n{render.END}\n\nafter\n")
    assert render.main(["--check", str(readme)]) == 1
    assert render.update(readme) is True
    assert render.update(readme) is False
    assert render.main(["--check", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# T\n\n") and text.endswith("\n\nafter\n")
    assert "SSE-RESUME-002" in text


def test_missing_markers_or_file_is_a_usage_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert render.main([str(readme)]) == 2
    assert render.main([str(tmp_path / "absent.md")]) == 2
