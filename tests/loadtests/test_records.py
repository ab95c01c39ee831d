# SPDX-License-Identifier: GPL-3.0-or-later
"""Raw records: written per process, merged back, a torn last line skipped."""

from __future__ import annotations

from pathlib import Path

from dualstore_loadtests import records as rec


def test_records_round_trip_and_tolerate_a_torn_line(tmp_path: Path) -> None:
    writer = rec.RecordWriter(tmp_path)
    writer.write(rec.WRITE, doc="a", sent=1.0, commit=1.5)
    writer.write(rec.RECEIPT, sub="s", doc="a", t=2.0)
    writer.close()
    other = tmp_path / "records-99999999.jsonl"  # another process, killed mid-line
    other.write_text('{"k":"r","sub":"t","doc":"a","t":3.0}\n{"k":"r","sub', encoding="utf-8")
    rows = list(rec.read_records(tmp_path))
    assert {"k": "w", "doc": "a", "sent": 1.0, "commit": 1.5} in rows
    assert {"k": "r", "sub": "s", "doc": "a", "t": 2.0} in rows
    assert {"k": "r", "sub": "t", "doc": "a", "t": 3.0} in rows
    assert len(rows) == 3
