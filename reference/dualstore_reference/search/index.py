# SPDX-License-Identifier: GPL-3.0-or-later
"""One hnswlib index per collection, derived from MongoDB, caught up by ``_seq``, saved atomically.

MongoDB is the source of truth; the index is derived state labelled by each document's
``_seq``. ``catch_up`` reads every document with a ``_seq`` above ``top`` (the highest
number handled) and looks up the *holes* below it. A number that is missing while higher
ones are visible is a writer still in flight: documents above it are indexed at once and
the number is remembered as a hole, looked up on every catch-up until the document arrives
or a reader fences it with a tombstone (see ``store.sequence``; this index fences holes
older than ``gap_timeout``). The *watermark* is the number below which nothing is missing.
``search`` catches up first, so a document whose POST has returned on any worker or
instance is found (read-your-writes).

hnswlib's rules are kept with one ``asyncio.Lock`` per index: ``add_items``,
``knn_query``, ``get_items`` and ``resize_index`` never overlap, and each runs in a thread
(``asyncio.to_thread``) while the lock is held.

Persistence (``<DATA_DIR>/index/<collection>/``): ``index-<token>.bin`` and ``meta.json``
(embedder name, dimension, space, count, watermark, top, holes, file checksum, and the
``_id`` of the newest indexed document to notice a database that was replaced). Saving
writes a new index file, then replaces ``meta.json`` by rename: the meta is the commit
point, so a reader sees the old snapshot or the new one, never half of one. An exclusive
``fcntl`` lock on ``.lock`` serialises savers of several worker processes (each worker
keeps its own in-memory index; every snapshot is self-consistent, the last one wins). A
missing, corrupt (checksum), or mismatched (embedder, dimension, space, database) snapshot is
rebuilt from MongoDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import hnswlib
import numpy as np
from pymongo.asynchronous.collection import AsyncCollection

from dualstore_reference.search.embedders import Embedder, Vectors, normalise_rows
from dualstore_reference.store import sequence

log = logging.getLogger(__name__)

META_FILE = "meta.json"
LOCK_FILE = ".lock"
META_FORMAT = 1
SPACES = ("cosine", "ip", "l2")
EXACT_SCORING_LIMIT = 512
"""Filtered searches over at most this many allowed documents are scored exactly.

Measured with hnswlib 0.8 (20,000 documents, dim 256): ``get_items`` costs about 15-60 us
per vector, a filtered ``knn_query`` 1-10 ms whatever the selectivity; they cross near 500.
"""
EXACT_CHUNK = 4096
"""Vectors fetched per ``get_items`` call while scoring exactly."""
BATCH = 1000
"""Documents read and embedded per step of a catch-up."""
HOLES_PER_QUERY = 1000
"""Holes looked up (or fenced) per query."""
RECENT_EXACT = 1024
"""The newest documents are also scored exactly on every search and merged with the graph's
answer: a document just written is found first by its own text even where the approximate
graph search would miss it (and collections this small are searched exactly)."""


class VectorIndex:
    """The vector index of one collection in one worker process."""

    def __init__(
        self,
        documents: AsyncCollection[dict[str, Any]],
        embedder: Embedder,
        directory: Path,
        space: str = "cosine",
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 128,
        initial_capacity: int = 1024,
        gap_timeout: float | None = 5.0,
    ) -> None:
        if space not in SPACES:
            raise ValueError(f"unknown vector space {space!r}: use one of {', '.join(SPACES)}")
        self.documents = documents
        self.embedder = embedder
        self.directory = Path(directory)
        self.space = space
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.initial_capacity = max(16, initial_capacity)
        self.gap_timeout = gap_timeout
        self._lock = asyncio.Lock()  # hnswlib calls
        self._catchup_lock = asyncio.Lock()  # one catch-up at a time
        self._save_lock = asyncio.Lock()  # one save at a time in this process
        self._runs_started = 0  # catch-up runs begun
        self._run_succeeded = 0  # number of the last run that finished without an error
        self._index: Any = None
        self._labels: set[int] = set()
        self._top = 0  # highest number handled; every lower one is handled or a hole
        self._holes: set[int] = set()  # numbers below _top not seen yet (writers in flight)
        self._hole_seen: dict[int, float] = {}  # when each hole was first seen (monotonic)
        self._head_id: Any = None
        self._head_seq = 0
        self._dirty = False
        self._recent_labels = np.full(RECENT_EXACT, -1, dtype=np.int64)
        self._recent_vectors = np.zeros((RECENT_EXACT, embedder.dim), dtype=np.float32)
        self._recent_next = 0

    # -- state -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def watermark(self) -> int:
        """Every ``_seq`` up to this one is indexed or known not to be a live document."""
        return min(self._holes) - 1 if self._holes else self._top

    @property
    def dirty(self) -> bool:
        """True when documents were added since the last save or load."""
        return self._dirty

    def __contains__(self, seq: object) -> bool:
        return seq in self._labels

    def _new_index(self, capacity: int) -> Any:
        index = hnswlib.Index(space=self.space, dim=self.embedder.dim)
        index.init_index(
            max_elements=capacity, ef_construction=self.ef_construction, M=self.m, random_seed=100
        )
        index.set_ef(self.ef_search)
        return index

    def _reset(self) -> None:
        self._index = self._new_index(self.initial_capacity)
        self._labels = set()
        self._top = 0
        self._holes = set()
        self._hole_seen = {}
        self._head_id = None
        self._head_seq = 0
        self._dirty = True
        self._recent_labels.fill(-1)
        self._recent_next = 0

    # -- open / persistence ------------------------------------------------------------

    async def open(self) -> None:
        """Load the persisted snapshot (or start empty when unusable), then catch up."""
        try:
            loaded = await asyncio.to_thread(self._load)
        except Exception as error:  # anything unreadable means: rebuild from MongoDB
            log.warning("vector index in %s unusable, rebuilding: %s", self.directory, error)
            loaded = False
        if loaded and not await self._same_database():
            log.warning("vector index in %s belongs to other data, rebuilding", self.directory)
            loaded = False
        async with self._lock:
            if loaded:
                newest = sorted(self._labels)[-RECENT_EXACT:]
                if newest:
                    vectors = await asyncio.to_thread(self._index.get_items, newest)
                    self._remember(np.asarray(vectors, dtype=np.float32), newest)
            else:
                self._reset()
        added = await self.catch_up()
        log.info(
            "vector index %s: %d documents (%d added on open)", self.directory, len(self), added
        )

    def _load(self) -> bool:
        meta_path = self.directory / META_FILE
        if not meta_path.exists():
            return False
        with self._file_lock(shared=True):
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            expected = {
                "format": META_FORMAT,
                "embedder": self.embedder.name,
                "dim": self.embedder.dim,
                "space": self.space,
            }
            for key, value in expected.items():
                if meta.get(key) != value:
                    raise ValueError(f"{key} is {meta.get(key)!r}, expected {value!r}")
            index_path = self.directory / str(meta["index_file"])
            if Path(meta["index_file"]).name != meta["index_file"]:
                raise ValueError("index_file must be a plain file name")
            data = index_path.read_bytes()
            if len(data) != int(meta["size"]) or hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise ValueError(f"{index_path.name} does not match its checksum")
            count = int(meta["count"])
            capacity = max(self.initial_capacity, int(meta.get("capacity", 0)), count)
            index = hnswlib.Index(space=self.space, dim=self.embedder.dim)
            index.load_index(str(index_path), max_elements=capacity)
        index.set_ef(self.ef_search)  # ef is not saved in the file
        labels = {int(label) for label in index.get_ids_list()}
        if len(labels) != count or index.get_current_count() != count:
            raise ValueError(f"index holds {len(labels)} vectors, meta says {count}")
        self._index = index
        self._labels = labels
        self._top = int(meta["top"])
        self._holes = {int(seq) for seq in meta["holes"]}
        self._hole_seen = {}
        self._head_id = meta.get("head_id")
        self._head_seq = int(meta.get("head_seq", 0))
        self._dirty = False
        return True

    async def _same_database(self) -> bool:
        """Whether the newest indexed document is still in the collection under the same number."""
        if self._head_seq == 0:
            return self._top == 0 and not self._labels
        found = await self.documents.find_one({sequence.SEQ_FIELD: self._head_seq}, {"_id": 1})
        return found is not None and str(found["_id"]) == str(self._head_id)

    @contextlib.contextmanager
    def _file_lock(self, shared: bool) -> Iterator[None]:
        handle = self._take_file_lock(shared)
        try:
            yield
        finally:
            handle.close()  # closing the file releases the lock

    def _take_file_lock(self, shared: bool) -> BinaryIO:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.directory / LOCK_FILE, "a+b")  # noqa: SIM115  # closed by the caller
        try:
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
        return handle

    async def save(self) -> None:
        """Write a snapshot atomically (new index file, then ``meta.json`` replaced by rename).

        Searches and catch-up wait only while hnswlib writes the file; the checksum, fsync
        and the switch of ``meta.json`` happen after the index lock is released.
        """
        async with self._save_lock:
            if self._index is None:
                return
            handle = await asyncio.to_thread(self._take_file_lock, False)
            try:
                token = f"{os.getpid()}-{secrets.token_hex(6)}"
                index_path = self.directory / f"index-{token}.bin"
                async with self._lock:
                    meta = self._meta(index_path.name)
                    await asyncio.to_thread(self._index.save_index, str(index_path))
                    self._dirty = False
                try:
                    await asyncio.to_thread(self._commit, index_path, meta, token)
                except BaseException:
                    self._dirty = True
                    raise
            finally:
                handle.close()

    def _meta(self, index_name: str) -> dict[str, Any]:
        return {
            "format": META_FORMAT,
            "embedder": self.embedder.name,
            "dim": self.embedder.dim,
            "space": self.space,
            "count": len(self._labels),
            "capacity": int(self._index.get_max_elements()),
            "watermark": self.watermark,
            "top": self._top,
            "holes": sorted(self._holes),
            "head_seq": self._head_seq,
            "head_id": None if self._head_id is None else str(self._head_id),
            "index_file": index_name,
        }

    def _commit(self, index_path: Path, meta: dict[str, Any], token: str) -> None:
        """Checksum and sync the written index file, then make meta.json point to it."""
        data = index_path.read_bytes()
        meta["size"] = len(data)
        meta["sha256"] = hashlib.sha256(data).hexdigest()
        meta["saved_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        with open(index_path, "rb") as handle:
            os.fsync(handle.fileno())
        temporary = self.directory / f"{META_FILE}.{token}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / META_FILE)
        for old in self.directory.glob("index-*.bin"):
            if old.name != index_path.name:
                old.unlink(missing_ok=True)
        for old in self.directory.glob(f"{META_FILE}.*.tmp"):
            old.unlink(missing_ok=True)

    # -- catch-up ----------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Index every live document whose ``_seq`` is not indexed yet; return how many were added.

        Concurrent callers share a run: a caller returns once a run that *started after it
        was called* has finished, so what was committed before the call is indexed.
        """
        arrived = self._runs_started
        async with self._catchup_lock:
            if self._run_succeeded > arrived:
                return 0  # a whole run started after this call, and has succeeded
            self._runs_started += 1
            number = self._runs_started
            if self._index is None:
                async with self._lock:
                    self._reset()
            added = await self._catch_up()
            self._run_succeeded = number
            return added

    async def _catch_up(self) -> int:
        # Read now, after the caller's writes: everything above the top stored so far.
        added = 0
        pending = sorted(self._holes)
        for start in range(0, len(pending), HOLES_PER_QUERY):
            chunk = pending[start : start + HOLES_PER_QUERY]
            added += await self._apply(await self._read({"$in": chunk}), fills_holes=True)
        while True:
            batch = await self._read({"$gt": self._top}, limit=BATCH)
            added += await self._apply(batch, fills_holes=False)
            if len(batch) < BATCH:
                break
        added += await self._fence_old_holes()
        return added

    async def _read(self, condition: dict[str, Any], limit: int = 0) -> list[dict[str, Any]]:
        """Documents and tombstones whose ``_seq`` meets condition, in ``_seq`` order."""
        projection = {sequence.SEQ_FIELD: 1, "text": 1, sequence.TOMBSTONE_FIELD: 1}
        cursor = (
            self.documents.find({sequence.SEQ_FIELD: condition}, projection)
            .sort(sequence.SEQ_FIELD, 1)
            .limit(limit)
        )
        found: list[dict[str, Any]] = []
        async for document in cursor:
            seq = document.get(sequence.SEQ_FIELD)
            if isinstance(seq, bool) or not isinstance(seq, int | float) or seq != int(seq):
                continue  # not a sequence number this server wrote
            document[sequence.SEQ_FIELD] = int(seq)
            found.append(document)
        return found

    async def _apply(self, batch: list[dict[str, Any]], fills_holes: bool) -> int:
        """Index the live documents of batch and account for every number in it."""
        if not batch:
            return 0
        live = [
            doc
            for doc in batch
            if not doc.get(sequence.TOMBSTONE_FIELD) and doc[sequence.SEQ_FIELD] not in self._labels
        ]
        texts = [_text_of(doc) for doc in live]
        vectors: Vectors = await asyncio.to_thread(self.embedder.embed, texts)
        seqs = [doc[sequence.SEQ_FIELD] for doc in live]
        async with self._lock:
            if seqs:
                await asyncio.to_thread(self._add, vectors, seqs)
                self._labels.update(seqs)
                self._remember(vectors, seqs)
                newest = max(live, key=lambda doc: doc[sequence.SEQ_FIELD])
                if newest[sequence.SEQ_FIELD] > self._head_seq:
                    self._head_seq = newest[sequence.SEQ_FIELD]
                    self._head_id = newest.get("_id")
            for doc in batch:
                seq = doc[sequence.SEQ_FIELD]
                if fills_holes:
                    self._holes.discard(seq)
                    self._hole_seen.pop(seq, None)
                elif seq > self._top:
                    self._holes.update(range(self._top + 1, seq))  # in flight, or abandoned
                    self._top = seq
            self._dirty = True
        return len(seqs)

    def _add(self, vectors: Vectors, seqs: list[int]) -> None:
        needed = self._index.get_current_count() + len(seqs)
        capacity = int(self._index.get_max_elements())
        if needed > capacity:
            while capacity < needed:
                capacity *= 2
            self._index.resize_index(capacity)
        self._index.add_items(vectors, np.asarray(seqs, dtype=np.uint64))

    def _remember(self, vectors: Vectors, seqs: list[int]) -> None:
        """Keep the newest vectors (unit length) in the ring scored exactly on every search."""
        rows = normalise_rows(vectors[-RECENT_EXACT:])
        labels = np.asarray(seqs[-RECENT_EXACT:], dtype=np.int64)
        positions = (self._recent_next + np.arange(len(labels))) % RECENT_EXACT
        self._recent_labels[positions] = labels
        self._recent_vectors[positions] = rows
        self._recent_next = int((self._recent_next + len(labels)) % RECENT_EXACT)

    def _recent(
        self, query: Vectors, accept: Callable[[int], bool] | None, k: int
    ) -> list[tuple[int, float]]:
        """The k best of the newest documents (those accept allows), scored exactly."""
        used = self._recent_labels >= 0
        labels = self._recent_labels[used]
        scores = self._recent_vectors[used] @ _unit(query[0])
        if accept is not None:
            allowed = np.fromiter((accept(int(x)) for x in labels), dtype=bool, count=len(labels))
            labels, scores = labels[allowed], scores[allowed]
        if len(scores) > k:
            best = np.argpartition(-scores, k - 1)[:k]
            labels, scores = labels[best], scores[best]
        return list(zip(labels.tolist(), scores.tolist(), strict=True))

    def _merge(
        self, found: list[tuple[int, float]], exact: list[tuple[int, float]], k: int
    ) -> list[tuple[int, float]]:
        best = dict(found)
        best.update(exact)
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]

    async def _fence_old_holes(self) -> int:
        """Claim holes older than gap_timeout with tombstones; return documents added meanwhile."""
        now = time.monotonic()
        for seq in list(self._hole_seen):
            if seq not in self._holes:
                del self._hole_seen[seq]
        for seq in self._holes:
            self._hole_seen.setdefault(seq, now)
        if self.gap_timeout is None:
            return 0
        expired = sorted(s for s, seen in self._hole_seen.items() if now - seen >= self.gap_timeout)
        if not expired:
            return 0
        for seq in expired[:HOLES_PER_QUERY]:
            await sequence.fence(self.documents, seq)  # False: the late document won the number
        found = await self._read({"$in": expired[:HOLES_PER_QUERY]})
        return await self._apply(found, fills_holes=True)

    # -- search ------------------------------------------------------------------------

    async def search(
        self, q: str, k: int, allowed_seqs: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k best documents for q as ``(seq, score)``, best first; score = cosine similarity.

        With ``allowed_seqs`` (the documents matching a filter) only those are candidates,
        and k results are returned whenever at least k of them are indexed.
        """
        if k <= 0:
            return []
        await self.catch_up()
        query: Vectors = await asyncio.to_thread(self.embedder.embed, [q])
        async with self._lock:
            if allowed_seqs is None:
                if not self._labels:
                    return []
                return await asyncio.to_thread(self._search_all, query, min(k, len(self._labels)))
            allowed = [seq for seq in allowed_seqs if seq in self._labels]
            if not allowed:
                return []
            if len(allowed) <= EXACT_SCORING_LIMIT:
                return await asyncio.to_thread(self._exact, query, allowed, k)
            return await asyncio.to_thread(self._search_filtered, query, allowed, k)

    def _score(self, distances: Any) -> list[float]:
        values = np.asarray(distances, dtype=np.float64)
        if self.space == "l2":  # squared L2 of unit vectors = 2 - 2 cos
            return [float(v) for v in 1.0 - values / 2.0]
        return [float(v) for v in 1.0 - values]

    def _knn(
        self, query: Vectors, k: int, accept: Callable[[int], bool] | None
    ) -> list[tuple[int, float]]:
        self._index.set_ef(max(self.ef_search, k))
        if accept is None:
            labels, distances = self._index.knn_query(query, k=k)
        else:
            labels, distances = self._index.knn_query(query, k=k, filter=accept, num_threads=1)
        return list(zip((int(x) for x in labels[0]), self._score(distances[0]), strict=True))

    def _search_all(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        try:
            found = self._knn(query, k, None)
        except RuntimeError:  # the graph could not produce k results: score exactly
            return self._exact(query, list(self._labels), k)
        return self._merge(found, self._recent(query, None, k), k)

    def _search_filtered(
        self, query: Vectors, allowed: list[int], k: int
    ) -> list[tuple[int, float]]:
        wanted = min(k, len(allowed))
        accepted = set(allowed)
        try:
            found = self._knn(query, wanted, accepted.__contains__)
        except RuntimeError:
            found = []
        if len(found) >= wanted:
            return self._merge(found, self._recent(query, accepted.__contains__, k), k)
        return self._exact(query, allowed, k)

    def _exact(self, query: Vectors, seqs: list[int], k: int) -> list[tuple[int, float]]:
        """Brute-force cosine similarity over the stored vectors of seqs (in chunks)."""
        target = _unit(query[0])
        ordered = sorted(seqs)
        scored: list[tuple[int, float]] = []
        for start in range(0, len(ordered), EXACT_CHUNK):
            chunk = ordered[start : start + EXACT_CHUNK]
            vectors = np.asarray(self._index.get_items(chunk), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1)
            norms[norms == 0] = 1.0
            scores = (vectors @ target) / norms
            scored.extend(zip(chunk, (float(s) for s in scores), strict=True))
            if len(scored) > 4 * k:
                scored.sort(key=lambda item: (-item[1], item[0]))
                del scored[k:]
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored[:k]


def _unit(vector: Vectors) -> Vectors:
    norm = float(np.linalg.norm(vector))
    unit: Vectors = (vector / norm if norm > 0 else vector).astype(np.float32)
    return unit


def _text_of(document: dict[str, Any]) -> str:
    text = document.get("text")
    if text is None:
        return ""
    return text if isinstance(text, str) else str(text)
