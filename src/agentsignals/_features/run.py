"""Running the feature pipeline over files, spans in memory or a feature store.

`agentsignals.features` re-exports these; `_store` (ClickHouse) reuses `sorted_feature_set`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agentsignals._features.assemble import Assembler, AssemblerStats
from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord
from agentsignals._features.store import ListSink, read_records, read_sessions
from agentsignals._spans.decode import DecodeProblem, decode_otlp_json_lines, find_otlp_json_files
from agentsignals._spans.model import Span

PathArg = str | os.PathLike[str]

# Offline, the grace period is counted in export requests (lines) read after the attempt
# span: late children written in the next batches still join their attempt.
OFFLINE_GRACE_LINES = 64


@dataclass
class FeatureSet:
    """What extraction produced: the latest revision of each record, and what went wrong."""

    attempts: list[AttemptRecord] = field(default_factory=list)
    trials: list[TrialRecord] = field(default_factory=list)
    # Product sessions only (eval runs have none), with the joins across sessions filled.
    sessions: list[SessionRecord] = field(default_factory=list)
    problems: list[DecodeProblem] = field(default_factory=list)
    stats: AssemblerStats = field(default_factory=AssemblerStats)


def sorted_feature_set(
    sink: ListSink, problems: list[DecodeProblem], stats: AssemblerStats
) -> FeatureSet:
    def attempt_key(r: AttemptRecord) -> tuple[int, str, int, str]:
        return (r.started_at_ns or 0, r.trial_id or "", r.attempt_index or 0, r.attempt_id)

    from agentsignals._features.session import link_sessions

    return FeatureSet(
        attempts=sorted(sink.attempts.values(), key=attempt_key),
        trials=sorted(sink.trials.values(), key=lambda t: (t.trial_id,)),
        sessions=link_sessions(list(sink.sessions.values())),
        problems=problems,
        stats=stats,
    )


def extract(
    paths: PathArg | Iterable[PathArg],
    *,
    progress: Callable[[int, int], None] | None = None,
    embedder: Any = None,
    session_judge: Any = None,
) -> FeatureSet:
    """Feature records from OTLP/JSON files or folders (our file exporter's output or the
    OpenTelemetry Collector's file exporter). Malformed or truncated lines are reported in
    `problems` (file, line, what was wrong) and every other line is still used.

    `progress(done_bytes, total_bytes)` is called as files are read. `embedder` and
    `session_judge` (optional: an `Embedder`, a `SessionJudge`, e.g. `_judge.session`'s) run
    the product sessions' semantic pass (the model-based session signals).
    """
    files = find_otlp_json_files(paths)
    total = sum(f.stat().st_size for f in files)
    sink = ListSink()
    lines = 0
    assembler = Assembler(
        sink,
        clock=lambda: float(lines),
        grace=OFFLINE_GRACE_LINES,
        embedder=embedder,
        session_judge=session_judge,
    )
    problems: list[DecodeProblem] = []
    done = 0
    # A batch job over many small objects: the cyclic GC costs 12-30% here and finds nothing
    # (spans hold no cycles; the assembler's memory is bounded), so pause it as decode does.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path in files:
            try:
                for batch in decode_otlp_json_lines(path, on_problem=problems.append):
                    lines += 1
                    assembler.add(batch)
            except OSError as exc:  # listed but gone or unreadable now
                problems.append(DecodeProblem(str(path), 0, f"cannot open: {exc}"))
            done += path.stat().st_size if path.exists() else 0
            if progress is not None:
                progress(done, total)
        assembler.flush()
    finally:
        if gc_was_enabled:
            gc.enable()
    return sorted_feature_set(sink, problems, assembler.stats)


def from_spans(
    spans: Iterable[Span | Any], *, embedder: Any = None, session_judge: Any = None
) -> FeatureSet:
    """Feature records from spans already in memory: our typed spans, or the OpenTelemetry
    SDK's finished spans (ReadableSpan, e.g. from `agentsignals.testing`). `embedder`,
    `session_judge`: as in `extract`."""
    from agentsignals._spans.decode import from_readable_spans

    typed: list[Span] = []
    foreign: list[Any] = []
    for span in spans:
        (typed if isinstance(span, Span) else foreign).append(span)
    if foreign:
        typed.extend(from_readable_spans(foreign))
    sink = ListSink()
    assembler = Assembler(
        sink, clock=lambda: 0.0, grace=1.0, embedder=embedder, session_judge=session_judge
    )
    assembler.add(typed)
    assembler.flush()
    return sorted_feature_set(sink, [], assembler.stats)


def read_store(directory: PathArg) -> FeatureSet:
    """The records the in-process processor wrote to a feature folder (latest revisions)."""
    attempts, trials = read_records(directory)
    sink = ListSink()
    for a in attempts:
        sink(a)
    for t in trials:
        sink(t)
    for session in read_sessions(directory):
        sink(session)
    return sorted_feature_set(sink, [], AssemblerStats())
