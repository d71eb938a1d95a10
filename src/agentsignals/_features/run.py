"""Running the feature pipeline over files, spans in memory or a feature store.

`agentsignals.features` re-exports these; `_store` (ClickHouse) reuses `sorted_feature_set`.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from agentsignals._features.assemble import Assembler, AssemblerStats, Record, Sink
from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord
from agentsignals._features.store import (
    ListSink,
    read_records,
    read_sessions,
    write_csv_rows,
    write_parquet_rows,
)
from agentsignals._spans.decode import DecodeProblem, decode_otlp_json_lines, find_otlp_json_files
from agentsignals._spans.model import Span

PathArg = str | os.PathLike[str]

# Offline, the grace period is counted in export requests (lines) read after the attempt
# span: late children written in the next batches still join their attempt.
OFFLINE_GRACE_LINES = 64
# Finished attempts (and written trials) kept past the grace for later spans: smaller than the
# collector's. Sized by benchmarks/bench_sustained.py over 1M spans (docs/performance.md):
# 16 runs as fast as 64 on a quiet machine and 16% faster under load, with 5 MB less peak RSS;
# 512 is 13-16% slower and +50 MB. The grace (64 lines) is what lets late spans join; the cache
# only adds the next ~2 lines' worth of attempts to that.
OFFLINE_FINISHED_CACHE = 16
OFFLINE_FINISHED_SPANS = 4_000


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
    from agentsignals._features.session import link_sessions

    return FeatureSet(
        attempts=sorted(sink.attempts.values(), key=_attempt_key),
        trials=sorted(sink.trials.values(), key=lambda t: (t.trial_id,)),
        sessions=link_sessions(list(sink.sessions.values())),
        problems=problems,
        stats=stats,
    )


def extract(
    paths: PathArg | Iterable[PathArg],
    *,
    progress: Callable[[int, int], None] | None = None,
    sink: Sink | None = None,
    embedder: Any = None,
    session_judge: Any = None,
) -> FeatureSet:
    """Feature records from OTLP/JSON files or folders (our file exporter's output or the
    OpenTelemetry Collector's file exporter). Malformed or truncated lines are reported in
    `problems` (file, line, what was wrong) and every other line is still used.

    `progress(done_bytes, total_bytes)` is called as files are read. `embedder` and
    `session_judge` (optional: an `Embedder`, a `SessionJudge`, e.g. `_judge.session`'s) run
    the product sessions' semantic pass (the model-based session signals).

    With `sink`, every record is passed to it as it is produced (each revision, in the order
    written; a reader keeps the latest, see `supersedes`) and none is kept: memory stays flat
    however large the input, and the returned set holds only problems and counters. Without
    it, the latest revision of every record is returned (about 18 kB of memory per attempt);
    `extract_to` writes them to a file without holding them.
    """
    files = find_otlp_json_files(paths)
    total = sum(f.stat().st_size for f in files)
    keep = ListSink() if sink is None else None
    if sink is None:
        assert keep is not None
        sink = keep
    lines = 0
    assembler = Assembler(
        sink,
        clock=lambda: float(lines),
        grace=OFFLINE_GRACE_LINES,
        finished_cache=OFFLINE_FINISHED_CACHE,
        finished_spans=OFFLINE_FINISHED_SPANS,
        finished_trials=OFFLINE_FINISHED_CACHE,
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
    if keep is None:
        return FeatureSet(problems=problems, stats=assembler.stats)
    return sorted_feature_set(keep, problems, assembler.stats)


@dataclass
class ExtractSummary:
    """What `extract_to` wrote."""

    attempts: int = 0
    trials: int = 0
    written: int = 0  # records in the output (attempts, or trials with trials=True)
    problems: list[DecodeProblem] = field(default_factory=list)
    stats: AssemblerStats = field(default_factory=AssemblerStats)


def extract_to(
    paths: PathArg | Iterable[PathArg],
    output: PathArg | None,
    *,
    trials: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ExtractSummary:
    """`extract`, written straight to `output` (by suffix: ``.jsonl``, ``.csv``, ``.parquet``;
    None: JSON lines on stdout) with memory flat in the input size: records are spooled to a
    temporary file as they are produced and only a small index (~0.2 kB per record: id,
    revision, sort key, offset) stays in memory. The output is what `extract` returns, in the
    same order: the latest revision of each attempt (or trial, with `trials=True`).
    """
    with RecordSpool() as spool:
        result = extract(paths, progress=progress, sink=spool)
        summary = ExtractSummary(
            attempts=spool.count(AttemptRecord),
            trials=spool.count(TrialRecord),
            problems=result.problems,
            stats=result.stats,
        )
        summary.written = spool.write(TrialRecord if trials else AttemptRecord, output)
    return summary


class _Entry(msgspec.Struct, array_like=True, gc=False):
    sort_key: tuple[Any, ...]
    revision: int
    partial: bool
    offset: int
    length: int


class RecordSpool:
    """Records on disk as they are produced, and an index of the latest revision of each
    (what `ListSink` keeps, without the records): reading the index back in `extract`'s order
    writes the same output with memory that does not grow with the records' size."""

    def __init__(self, directory: PathArg | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self._size = 0
        self._index: dict[type, dict[str, _Entry]] = {
            AttemptRecord: {},
            TrialRecord: {},
            SessionRecord: {},
        }
        self._encode = msgspec.json.Encoder().encode

    def __enter__(self) -> RecordSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __call__(self, record: Record) -> None:
        line = self._encode(record) + b"\n"
        if isinstance(record, TrialRecord):
            key: str = record.trial_id
            partial = False
            sort_key: tuple[Any, ...] = (record.trial_id,)
        elif isinstance(record, SessionRecord):
            key = record.attempt_id
            partial = False
            sort_key = (record.started_at_ns or 0, record.attempt_id)
        else:
            key = record.attempt_id
            partial = record.partial
            sort_key = _attempt_key(record)
        index = self._index[type(record)]
        old = index.get(key)
        entry = _Entry(sort_key, record.revision, partial, self._size, len(line))
        self._file.write(line)
        self._size += len(line)
        # The same rule as `supersedes`: the later revision, a partial never over a whole one.
        if old is None or (
            old.partial if partial != old.partial else record.revision >= old.revision
        ):
            index[key] = entry

    def count(self, kind: type) -> int:
        return len(self._index[kind])

    def lines(self, kind: type) -> Iterator[bytes]:
        """The latest revision of each record of `kind`, as JSON lines, in `extract`'s order."""
        self._file.flush()
        fd = self._file.fileno()
        entries = sorted(self._index[kind].values(), key=lambda e: e.sort_key)
        for e in entries:
            yield os.pread(fd, e.length, e.offset)

    def records(self, kind: type[Record]) -> Iterator[Record]:
        decode = msgspec.json.Decoder(kind).decode
        for line in self.lines(kind):
            yield decode(line)

    def write(self, kind: type[Record], output: PathArg | None) -> int:
        """Write the latest records of `kind` to `output` by its suffix (None: stdout)."""
        import sys

        suffix = Path(output).suffix.lower() if output is not None else ".jsonl"
        if output is not None and Path(output).exists() and not Path(output).is_file():
            suffix = ".jsonl"  # /dev/null, /dev/stdout, a pipe
        if suffix == ".parquet":
            assert output is not None
            return write_parquet_rows(lambda: self.records(kind), kind, output)
        if suffix == ".csv":
            return write_csv_rows(lambda: self.records(kind), output)
        from agentsignals._features.store import _create

        count = 0
        if output is None:
            out = sys.stdout.buffer
            for line in self.lines(kind):
                out.write(line)
                count += 1
            out.flush()
            return count
        with _create(output) as fh:
            for line in self.lines(kind):
                fh.write(line)
                count += 1
        return count


def _attempt_key(r: AttemptRecord) -> tuple[int, str, int, str]:
    return (r.started_at_ns or 0, r.trial_id or "", r.attempt_index or 0, r.attempt_id)


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
