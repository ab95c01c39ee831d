# SPDX-License-Identifier: GPL-3.0-or-later
"""Vector search: text embedders and the per-collection hnswlib index derived from MongoDB."""

from dualstore_reference.search.embedders import (
    Embedder,
    EmbedderError,
    HashingEmbedder,
    HTTPEmbedder,
    SentenceTransformerEmbedder,
    embedder_from_settings,
)
from dualstore_reference.search.index import VectorIndex

__all__ = [
    "Embedder",
    "EmbedderError",
    "HTTPEmbedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "VectorIndex",
    "embedder_from_settings",
]
