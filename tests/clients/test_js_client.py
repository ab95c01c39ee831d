# SPDX-License-Identifier: GPL-3.0-or-later
"""The browser ES module's encodings and REST client, run under Node against the reference."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from dualstore_client import encode_filter
from dualstore_reference.launcher import RunningReference

MODULE = Path(__file__).resolve().parents[2] / "clients" / "js" / "dualstore-sse-client.js"
TOKEN = "test-token"  # the shared reference_server's (tests/conftest.py)
FILTERS: list[dict[str, Any]] = [
    {"metadata.session": "s-42"},
    {"$and": [{"metadata.role": "user"}, {"timestamp": {"$gte": "2026-11-25T00:00:00Z"}}]},
    {"metadata.agent.name": {"$in": ["planner", "coder"]}, "metadata.n": {"$lt": 2.5}},
    {"metadata.note": "héllo wörld ✓ 🚀 /+?="},
]

SCRIPT = """
const [moduleUrl, api, token, filters, via] = process.argv.slice(1);
const name = "session_messages";
const { DualStoreClient, ProblemError, encodeFilter } = await import(moduleUrl);
const out = { encoded: JSON.parse(filters).map(encodeFilter) };
const client = new DualStoreClient(api, { token });
out.collections = await client.collections();
out.id = await client.insert(name, "from node", { metadata: { via },
  timestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0, 5)), idempotencyKey: via });
out.again = await client.insert(name, "from node", { metadata: { via },
  timestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0, 5)), idempotencyKey: via });
out.doc = await client.get(name, out.id);
const mine = { "metadata.via": via };
out.recent = (await client.recent(name, { limit: 5, filter: mine })).items.map((d) => d.id);
out.hits = (await client.search(name, "from node", { k: 1, filter: mine })).items
  .map((d) => d.id);
const failure = async (promise) => {
  try { await promise; return null; } catch (e) {
    return { problemError: e instanceof ProblemError, status: e.status, type: e.type };
  }
};
out.missing = await failure(client.get(name, "0".repeat(32)));
out.anonymous = await failure(new DualStoreClient(api).collections());
class Recorder { constructor(url) { this.url = url; } addEventListener() {} close() {} }
const stream = client.stream(name, { storage: null, EventSource: Recorder });
out.stream = stream._source.url;  // what an EventSource would have been given
console.log(JSON.stringify(out));
"""


def test_module_under_node_matches_python_and_speaks_rest(
    reference_server: RunningReference,
) -> None:
    via = f"node-{uuid.uuid4().hex}"
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, MODULE.as_uri(), reference_server.url,
         TOKEN, json.dumps(FILTERS), via],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["encoded"] == [encode_filter(f) for f in FILTERS]
    assert "session_messages" in out["collections"]
    assert out["again"] == out["id"]  # same Idempotency-Key, same body: same document
    assert out["doc"] == {
        "id": out["id"],
        "text": "from node",
        "timestamp": "2026-11-25T10:00:00.005Z",
        "metadata": {"via": via},
    }
    assert out["recent"] == [out["id"]] and out["hits"] == [out["id"]]
    assert out["missing"] == {
        "problemError": True, "status": 404, "type": "urn:dualstore:problem:not-found"
    }  # fmt: skip
    assert out["anonymous"]["status"] == 401 and out["anonymous"]["problemError"]
    assert (
        out["stream"] == f"{reference_server.url}/v1/session_messages/stream?access_token={TOKEN}"
    )
