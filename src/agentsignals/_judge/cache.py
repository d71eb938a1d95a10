"""The judge's persistent cache: every model answer and embedding, keyed by what produced it.

A call's key is the SHA-256 of (model, the rendered messages, the rubric's id, version and text
hash, the sampling: temperature, seed, sample number, max_tokens). A re-run with the same
settings reads every answer back and makes no model call; a run killed half way resumes where
it stopped, because each answer is committed the moment it arrives. Errors are never cached.
The cache is one SQLite file (WAL), safe for several threads and processes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CachedAnswer", "JudgeCache", "call_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    rubric TEXT NOT NULL,
    response TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    mode TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    vector TEXT NOT NULL,
    created REAL NOT NULL
);
"""


def call_key(model: str, messages: Any, rubric_key: str, sampling: dict[str, Any]) -> str:
    """The cache key of one model call."""
    payload = json.dumps(
        {"model": model, "messages": messages, "rubric": rubric_key, "sampling": sampling},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    response: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    mode: str | None


class JudgeCache:
    """Model answers and embeddings on disk (``path`` is a file, or ``:memory:``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response, input_tokens, output_tokens, cost_usd, mode "
                "FROM calls WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return CachedAnswer(row[0], row[1], row[2], row[3], row[4])

    def put(
        self,
        key: str,
        *,
        model: str,
        rubric: str,
        response: str,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_usd: float | None,
        mode: str | None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, rubric, response, input_tokens, output_tokens, cost_usd, mode,
                 time.time()),
            )  # fmt: skip
            self._db.commit()

    def get_embedding(self, key: str) -> list[float] | None:
        with self._lock:
            row = self._db.execute("SELECT vector FROM embeddings WHERE key = ?", (key,)).fetchone()
        return None if row is None else [float(x) for x in json.loads(row[0])]

    def put_embedding(self, key: str, model: str, vector: list[float]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                (key, model, json.dumps(vector), time.time()),
            )
            self._db.commit()

    def count(self) -> int:
        """Cached model answers."""
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM calls").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
