"""The model-based product-session signals over trace files: what `agentsignals judge
sessions` runs. The feature pipeline (`agentsignals._features.run.extract`) builds the session
records and calls the semantic pass with the models given here: an embedder (HTTP or the local
ONNX one, cached in the judge's SQLite cache) and/or the `session_*` rubrics on the judge's
engine (answers cached there too), so a re-run embeds and asks nothing.

A model that fails is tried once: the first failure is kept (one line for the caller) and the
later sessions leave that model's signals null without asking again, so a server that is down
costs one set of retries, not one per session. A session whose spans carry no text (imported
without ``--content``, or live without content capture) is counted, and nothing is asked for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentsignals._features.session_semantic import SessionText

if TYPE_CHECKING:
    from agentsignals._features.embedding import CachedEmbedder, Embedder
    from agentsignals._features.record import SessionRecord
    from agentsignals._judge.engine import Usage
    from agentsignals._judge.session import RubricSessionJudge
    from agentsignals._spans.decode import DecodeProblem

__all__ = ["SessionRun", "judge_sessions"]


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


class ModelDown(Exception):
    """A model failed earlier in this run; it is not asked again."""


class _GuardedEmbedder:
    """Passes calls to ``inner`` until one fails; then fails at once (kept in `failure`)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.failure: str | None = None

    @property
    def model(self) -> str:
        return self.inner.model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.failure is not None:
            raise ModelDown(self.failure)
        try:
            return self.inner.embed(texts)
        except Exception as exc:
            self.failure = _one_line(exc)
            raise


@dataclass
class SessionRun:
    """What `judge_sessions` produced: the session records (joins across sessions filled),
    the input problems, and what was asked of the models."""

    sessions: list[SessionRecord] = field(default_factory=list)
    problems: list[DecodeProblem] = field(default_factory=list)
    with_text: int = 0  # sessions whose spans carried text
    embed_failure: str | None = None
    judge_failure: str | None = None
    embedded: int = 0  # texts sent to the embedding model
    embed_requests: int = 0
    embed_hits: int = 0  # texts the cache answered
    usage: Usage | None = None  # the judge's, when there is one


class _Probe:
    """The session judge the pipeline is given: counts sessions with text, and passes those to
    the real session judge (if any) until it fails outright."""

    def __init__(self, judge: RubricSessionJudge | None) -> None:
        self.judge = judge
        self.with_text = 0
        self.failure: str | None = None

    def judge_session(self, inputs: SessionText) -> dict[str, object]:
        from agentsignals._judge.engine import JudgeInterrupted

        texts = [inputs.task or "", *inputs.user_turns, *inputs.agent_turns, *inputs.tool_calls]
        if not any(t.strip() for t in texts):
            return {}
        self.with_text += 1
        if self.judge is None or self.failure is not None:
            return {}
        usage = self.judge.judge.usage
        calls, hits, errors = usage.model_calls, usage.cache_hits, usage.model_errors
        try:
            values = self.judge.judge_session(inputs)
        except JudgeInterrupted:
            raise KeyboardInterrupt from None  # past the pipeline's per-session guard
        if usage.model_errors > errors and usage.model_calls == calls and usage.cache_hits == hits:
            # Every question of this session failed at the model: it is down or refusing.
            reasons = [
                f.reason
                for r in self.judge.results
                for f in r.fields.values()
                if f.reason and "model error" in f.reason
            ]
            self.failure = reasons[0] if reasons else "every request failed"
        return values


def judge_sessions(
    paths: Iterable[Path],
    *,
    embedder: Embedder | None = None,
    session_judge: RubricSessionJudge | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SessionRun:
    """Session records of the traces under `paths` with the model-based signals filled by
    the models given (either may be None: its signals stay null). `embedder` is wrapped in
    a :class:`CachedEmbedder` unless it is one already."""
    from agentsignals._features.embedding import CachedEmbedder
    from agentsignals._features.run import extract

    cached: CachedEmbedder | None = None
    guard: _GuardedEmbedder | None = None
    if embedder is not None:
        if isinstance(embedder, CachedEmbedder):
            guard = _GuardedEmbedder(embedder.inner)
            embedder.inner = guard
            cached = embedder
        else:
            guard = _GuardedEmbedder(embedder)
            cached = CachedEmbedder(guard)
    probe = _Probe(session_judge)
    features = extract(list(paths), progress=progress, embedder=cached, session_judge=probe)
    return SessionRun(
        sessions=list(features.sessions),
        problems=list(features.problems),
        with_text=probe.with_text,
        embed_failure=guard.failure if guard is not None else None,
        judge_failure=probe.failure,
        embedded=cached.embedded if cached is not None else 0,
        embed_requests=cached.requests if cached is not None else 0,
        embed_hits=cached.hits if cached is not None else 0,
        usage=session_judge.judge.usage if session_judge is not None else None,
    )
