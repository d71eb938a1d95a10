"""The embedder the model-based session signals take: a protocol, plus a batched and cached
wrapper so a re-run embeds nothing.

The feature layer never imports a model client (docs/architecture.md: embeddings come in
through a pluggable embedder passed to the pipeline). Anything with a ``model`` name and an
``embed(texts) -> vectors`` method is an :class:`Embedder`: the judge's OpenAI-compatible
client (``agentsignals._judge.session.HttpEmbedder``, any ``/v1/embeddings`` endpoint), a
local model, or a test double. :class:`CachedEmbedder` adds de-duplication, batching and a
persistent store; the store protocol is the one the judge's SQLite cache already has
(``get_embedding`` / ``put_embedding``, keyed by sha256 of model and text), so clustering and
session signals share one cache file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["CachedEmbedder", "Embedder", "EmbeddingStore", "MemoryEmbeddingStore", "cache_key"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors, in input order. ``model`` names the model (part of the cache
    key: vectors of different models are never mixed)."""

    @property
    def model(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingStore(Protocol):
    """Where vectors persist (the judge's ``JudgeCache`` is one)."""

    def get_embedding(self, key: str) -> list[float] | None: ...

    def put_embedding(self, key: str, model: str, vector: list[float]) -> None: ...


def cache_key(model: str, text: str) -> str:
    """The store key of one text's vector (the same key the judge's clustering uses)."""
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()


class MemoryEmbeddingStore:
    """An in-process store (the default: one run never embeds a text twice)."""

    def __init__(self) -> None:
        self._vectors: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def get_embedding(self, key: str) -> list[float] | None:
        with self._lock:
            return self._vectors.get(key)

    def put_embedding(self, key: str, model: str, vector: list[float]) -> None:
        with self._lock:
            self._vectors[key] = vector

    def __len__(self) -> int:
        return len(self._vectors)


class CachedEmbedder:
    """An :class:`Embedder` over another: identical texts are embedded once, the rest in
    batches of ``batch``, and every vector is kept in ``store``. ``embedded`` counts the texts
    actually sent to the model, ``requests`` the calls, ``hits`` the texts the store answered
    (so a caller, a test or a benchmark can see that a re-run embedded nothing)."""

    def __init__(
        self, inner: Embedder, store: EmbeddingStore | None = None, *, batch: int = 32
    ) -> None:
        self.inner = inner
        self.store: EmbeddingStore = store if store is not None else MemoryEmbeddingStore()
        self.batch = max(1, batch)
        self.embedded = 0
        self.requests = 0
        self.hits = 0
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.inner.model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self.inner.model
        keys = [cache_key(model, t) for t in texts]
        found: dict[str, list[float]] = {}
        todo: dict[str, str] = {}  # key -> text, first occurrence, in order
        for key, text in zip(keys, texts, strict=True):
            if key in found or key in todo:
                continue
            vector = self.store.get_embedding(key)
            if vector is None:
                todo[key] = text
            else:
                found[key] = vector
        with self._lock:
            self.hits += len(found)
        pending = list(todo.items())
        for start in range(0, len(pending), self.batch):
            part = pending[start : start + self.batch]
            vectors = self.inner.embed([text for _, text in part])
            if len(vectors) != len(part):
                raise ValueError(
                    f"the embedder returned {len(vectors)} vectors for {len(part)} texts"
                )
            with self._lock:
                self.requests += 1
                self.embedded += len(part)
            for (key, _), vector in zip(part, vectors, strict=True):
                vector = [float(x) for x in vector]
                found[key] = vector
                self.store.put_embedding(key, model, vector)
        return [found[key] for key in keys]
