# SPDX-License-Identifier: GPL-3.0-or-later
"""Raw run records: one JSON line per fact, one file per Locust process, merged after the run."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

RECORD_GLOB = "records-*.jsonl"

# Record kinds (the "k" field):
WRITE = "w"
"""A committed write: doc, writer, n, sent (wall time before POST), commit (POST response time)."""
WRITE_ERROR = "we"
"""A failed write: writer, n, sent, status (or null), error."""
OPEN = "open"
"""A stream connection answered: sub, conn, t (first byte), status, resume (header/since/null)."""
CLOSE = "close"
"""A stream connection ended: sub, conn, t, reason, max_gap (longest silence in seconds)."""
RECEIPT = "r"
"""An insert event of this run received: sub, doc, t (receipt wall time), sent, eid."""
SUBSCRIBER = "sub"
"""A subscriber's lifetime: sub, idle, opened (first byte of first stream, or null), ended."""
STATUS = "status"
"""An HTTP 5xx answer seen anywhere: what, code, t."""


@dataclass
class RecordWriter:
    """Appends records to ``<folder>/records-<pid>.jsonl``; thread- and greenlet-safe enough."""

    folder: Path
    _file: IO[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def write(self, kind: str, **fields: Any) -> None:
        """Append one record of the given kind."""
        line = json.dumps({"k": kind, **fields}, separators=(",", ":"))
        with self._lock:
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / f"records-{os.getpid()}.jsonl"
                self._file = path.open("a", encoding="utf-8")
            self._file.write(line + "\n")

    def flush(self) -> None:
        """Push buffered records to disk."""
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        """Flush and close the file (a later write reopens it)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_records(folder: Path) -> Iterator[dict[str, Any]]:
    """Every record of every process file in folder; a torn last line is skipped."""
    for path in sorted(folder.glob(RECORD_GLOB)):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a process killed mid-write leaves at most one torn line
                if isinstance(record, dict):
                    yield record
