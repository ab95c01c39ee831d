# SPDX-License-Identifier: GPL-3.0-or-later
"""The browser ES module's encodings and REST client, run under Node against the reference."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dualstore_client import encode_filter
from dualstore_reference.launcher import RunningReference

MODULE = Path(__file__).resolve().parents[2] / "clients" / "js" / "dualstore-sse-client.js"
TOKEN = "client-tests-token"
FILTERS: list[dict[str, Any]] = [
    {"metadata.session": "s-42"},
    {"$and": [{"metadata.role": "user"}, {"timestamp": {"$gte": "2026-11-25T00:00:00Z"}}]},
    {"metadata.agent.name": {"$in": ["planner", "coder"]}, "metadata.n": {"$lt": 2.5}},
    {"metadata.note": "héllo wörld ✓ 🚀 /+?="},
]

SCRIPT = """
const [moduleUrl, api, token, filters] = process.argv.slice(1);
const { DualStoreClient, ProblemError, encodeFilter } = await import(moduleUrl);
const out = { encoded: JSON.parse(filters).map(encodeFilter) };
const client = new DualStoreClient(api, { token });
out.collections = await client.collections();
out.id = await client.insert("feed_js", "from node", { metadata: { via: "node" },
  timestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0, 5)), idempotencyKey: "node-1" });
out.again = await client.insert("feed_js", "from node", { metadata: { via: "node" },
  timestamp: new Date(Date.UTC(2026, 10, 25, 10, 0, 0, 5)), idempotencyKey: "node-1" });
out.doc = await client.get("feed_js", out.id);
out.recent = (await client.recent("feed_js", { limit: 5 })).items.map((d) => d.id);
out.hits = (await client.search("feed_js", "from node", { k: 1 })).items.map((d) => d.id);
const failure = async (promise) => {
  try { await promise; return null; } catch (e) {
    return { problemError: e instanceof ProblemError, status: e.status, type: e.type };
  }
};
out.missing = await failure(client.get("feed_js", "0".repeat(32)));
out.anonymous = await failure(new DualStoreClient(api).collections());
class Recorder { constructor(url) { this.url = url; } addEventListener() {} close() {} }
const stream = client.stream("feed_js", { storage: null, EventSource: Recorder });
out.stream = stream._source.url;  // what an EventSource would have been given
console.log(JSON.stringify(out));
"""


def test_module_under_node_matches_python_and_speaks_rest(
    client_reference: RunningReference,
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT, MODULE.as_uri(), client_reference.url,
         TOKEN, json.dumps(FILTERS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["encoded"] == [encode_filter(f) for f in FILTERS]
    assert "feed_js" in out["collections"]
    assert out["again"] == out["id"]  # same Idempotency-Key, same body: same document
    assert out["doc"] == {
        "id": out["id"],
        "text": "from node",
        "timestamp": "2026-11-25T10:00:00.005Z",
        "metadata": {"via": "node"},
    }
    assert out["recent"] == [out["id"]] and out["hits"] == [out["id"]]
    assert out["missing"] == {
        "problemError": True, "status": 404, "type": "urn:dualstore:problem:not-found"
    }  # fmt: skip
    assert out["anonymous"]["status"] == 401 and out["anonymous"]["problemError"]
    assert out["stream"] == (f"{client_reference.url}/v1/feed_js/stream?access_token={TOKEN}")
