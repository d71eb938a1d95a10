"""Late spans and memory bounds of the assembler, and the in-process processor off the agent's
thread (issue #16): late spans are gathered per window (a bounded number of revisions, flat
cost per span), the finished-attempt cache is bounded in spans, and `configure(features=True)`
batches spans on a worker thread while writing the same records."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._features.assemble import Assembler
from agentsignals._features.record import AttemptRecord, TrialRecord
from agentsignals._spans.model import Span


def _span(n: int, span_type: str, attempt: str, *, start: int, trial: str = "T") -> Span:
    attrs: dict[str, object] = {
        sc.AGENT_SIGNALS_TRIAL_ID: trial,
        sc.AGENT_SIGNALS_ATTEMPT_ID: attempt,
        sc.AGENT_SIGNALS_SPAN_TYPE: span_type,
    }
    if span_type == "tool":
        attrs[sc.GEN_AI_TOOL_NAME] = "bash"
        attrs[sc.AGENT_SIGNALS_TOOL_CATEGORY] = "shell"
    if span_type == "attempt":
        attrs[sc.AGENT_SIGNALS_ATTEMPT_INDEX] = 0
    return Span(
        trace_id="a" * 32,
        span_id=f"{abs(hash((attempt, n))) % (1 << 63):016x}",
        parent_span_id=None,
        name=span_type,
        kind=1,
        start_ns=start,
        end_ns=start + 5,
        attributes=attrs,  # type: ignore[arg-type]
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _attempt_records(records: list[AttemptRecord | TrialRecord]) -> list[AttemptRecord]:
    return [r for r in records if isinstance(r, AttemptRecord)]


def test_late_spans_are_gathered_per_window_with_a_bounded_number_of_revisions() -> None:
    records: list[AttemptRecord | TrialRecord] = []
    clock = Clock()
    asm = Assembler(records.append, clock=clock, grace=0, late_window=1.0)
    asm.add([_span(0, "tool", "A", start=1), _span(1, "attempt", "A", start=0)])
    assert [r.revision for r in _attempt_records(records)] == [0]
    # 1,000 late spans, one add() each (the in-process worst case), 10 ms apart: 10 s.
    for i in range(1000):
        clock.now = i * 0.01
        asm.add([_span(10 + i, "tool", "A", start=100 + i)])
    asm.flush()
    written = _attempt_records(records)
    # Windows of 1, 2, 4 and 8 s (doubling): a handful of revisions, not 1,000.
    assert 2 <= len(written) <= 6
    assert [r.revision for r in written] == list(range(len(written)))
    assert asm.stats.late_spans == 1000
    last = written[-1]
    assert last.behavior.tool_call_count == 1001 and last.complete and not last.partial
    # The last revision is exactly the record of all the attempt's spans at once.
    whole = features.from_spans(
        [_span(0, "tool", "A", start=1), _span(1, "attempt", "A", start=0)]
        + [_span(10 + i, "tool", "A", start=100 + i) for i in range(1000)]
    ).attempts[0]
    assert features.to_rows([last])[0] | {"revision": 0} == features.to_rows([whole])[0]


def test_a_waiting_revision_is_written_when_due_and_keeps_the_collector_pin() -> None:
    records: list[AttemptRecord | TrialRecord] = []
    clock = Clock()
    asm = Assembler(records.append, clock=clock, grace=0, late_window=2.0)
    asm.add([_span(0, "tool", "A", start=1), _span(1, "attempt", "A", start=0)])
    assert not asm.holds("A")
    clock.now = 1.0
    asm.add([_span(2, "tool", "A", start=9)])
    assert asm.holds("A") and len(_attempt_records(records)) == 1
    clock.now = 2.9
    asm.tick()
    assert len(_attempt_records(records)) == 1  # due at 3.0
    clock.now = 3.0
    asm.tick()
    assert [(r.revision, r.behavior.tool_call_count) for r in _attempt_records(records)] == [
        (0, 1),
        (1, 2),
    ]
    assert not asm.holds("A")


def test_a_waiting_revision_is_written_whole_before_its_spans_leave_the_cache() -> None:
    records: list[AttemptRecord | TrialRecord] = []
    clock = Clock()
    asm = Assembler(records.append, clock=clock, grace=0, late_window=100.0, finished_cache=1)
    asm.add([_span(0, "tool", "A", start=1), _span(1, "attempt", "A", start=0)])
    asm.add([_span(2, "tool", "A", start=9)])  # waits for its window
    asm.add([_span(0, "tool", "B", start=1), _span(1, "attempt", "B", start=0, trial="U")])
    got = [(r.attempt_id, r.revision, r.partial, r.span_count) for r in _attempt_records(records)]
    assert sorted(got) == [("A", 0, False, 2), ("A", 1, False, 3), ("B", 0, False, 2)]


def test_finished_cache_is_bounded_in_spans() -> None:
    asm = Assembler(
        lambda r: None, clock=lambda: 0.0, grace=0, finished_cache=1000, finished_spans=250
    )
    for a in range(40):
        spans = [_span(i, "tool", f"A{a}", start=i, trial=f"T{a}") for i in range(1, 100)]
        asm.add([*spans, _span(0, "attempt", f"A{a}", start=0, trial=f"T{a}")])
        open_spans, cached = asm.held_spans()
        assert open_spans == 0 and cached <= 250
    # A late span for an attempt that left the cache is still written (partial), not dropped.
    asm.add([_span(500, "tool", "A0", start=500, trial="T0")])
    asm.flush()
    assert asm.stats.partial_records == 1


# ------------------------------------------------------------------------ in process


def _tool_calls(out: Path, batch: bool, *, late_threads: int = 0) -> None:
    import agentsignals
    from agentsignals import propagate

    agentsignals.configure(output_dir=out, features=True, batch=batch)
    release = threading.Event()
    threads: list[threading.Thread] = []
    with agentsignals.trial("task-1"):
        for attempt in range(2):
            with agentsignals.attempt(model_id="m"):
                for _turn in range(3):
                    with agentsignals.turn():
                        for i in range(4):
                            with agentsignals.tool("bash", arguments={"command": f"ls d{i}"}):
                                pass
                if attempt == 1:
                    # Tools in threads that outlive the attempt: their spans end late.
                    for i in range(late_threads):

                        def late(n: int = i) -> None:
                            with agentsignals.tool("read_file", arguments={"path": f"f{n}"}):
                                release.wait(10)

                        thread = threading.Thread(target=propagate.wrap(late))
                        thread.start()
                        threads.append(thread)
    release.set()
    for thread in threads:
        thread.join()
    agentsignals.shutdown()


def _rows(records: list[AttemptRecord]) -> list[dict[str, object]]:
    return [json.loads(json.dumps(row)) for row in features.to_rows(records)]


@pytest.mark.usefixtures("fresh_otel")
def test_batched_in_process_records_equal_offline_and_synchronous(tmp_path: Path) -> None:
    _tool_calls(tmp_path / "batched", batch=True)
    _tool_calls(tmp_path / "sync", batch=False)
    batched = features.read_store(tmp_path / "batched" / "features")
    sync = features.read_store(tmp_path / "sync" / "features")
    offline = features.extract(tmp_path / "batched" / "traces")
    assert [r.behavior.tool_call_count for r in batched.attempts] == [12, 12]

    def strip(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        # ids, times and the trace differ between two runs; every signal must not.
        drop = ("attempt_id", "trial_id", "trace_id", "span_id", "started_at_ns", "ended_at_ns")
        return [
            {k: v for k, v in row.items() if k not in drop and not k.startswith("infra.wall")}
            for row in rows
        ]

    assert _rows(batched.attempts) == _rows(offline.attempts)
    assert strip(_rows(batched.attempts)) == strip(_rows(sync.attempts))
    assert batched.trials[0].attempt_count == 2


@pytest.mark.usefixtures("fresh_otel")
def test_spans_ending_after_their_attempt_yield_few_revisions(tmp_path: Path) -> None:
    _tool_calls(tmp_path, batch=True, late_threads=20)
    lines = (tmp_path / "features" / "attempts.jsonl").read_text().splitlines()
    second = [json.loads(line) for line in lines if json.loads(line)["attempt_index"] == 1]
    # 20 late spans: gathered into a few revisions, never one per span, and nothing lost. (One
    # revision when the worker ran after the late spans had all ended: a loaded machine.)
    assert 1 <= len(second) <= 4, [r["revision"] for r in second]
    assert second[-1]["behavior"]["tool_call_count"] == 12 + 20
    offline = features.extract(tmp_path / "traces")
    rows = _rows([r for r in offline.attempts if r.attempt_index == 1])
    assert rows[0]["behavior.tool_call_count"] == 32


@pytest.mark.usefixtures("fresh_otel")
def test_batched_records_are_written_by_the_worker_not_the_agent(tmp_path: Path) -> None:
    import agentsignals
    from agentsignals import _config

    agentsignals.configure(output_dir=tmp_path, features=True, exporters=["none"])
    assert _config._active is not None
    processor = next(
        p for p in _config._active.pipeline.processors if type(p).__name__ == "FeatureSpanProcessor"
    )
    writers: list[str] = []
    sink = processor.assembler._sink

    def recording_sink(record: AttemptRecord | TrialRecord) -> None:
        writers.append(threading.current_thread().name)
        sink(record)

    processor.assembler._sink = recording_sink
    with agentsignals.trial("t"), agentsignals.attempt(), agentsignals.tool("bash"):
        pass
    # The attempt's end wakes the worker: its record appears without any flush.
    deadline = time.monotonic() + 20
    while len(writers) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writers == ["agentsignals-features", "agentsignals-features"]
    agentsignals.shutdown()
    assert len((tmp_path / "features" / "attempts.jsonl").read_text().splitlines()) == 1


@pytest.mark.usefixtures("fresh_otel")
def test_in_process_memory_does_not_grow_with_finished_attempts(tmp_path: Path) -> None:
    import agentsignals
    from agentsignals import _config

    agentsignals.configure(output_dir=tmp_path, features=True, exporters=["none"])
    assert _config._active is not None
    processor = next(
        p for p in _config._active.pipeline.processors if type(p).__name__ == "FeatureSpanProcessor"
    )
    with agentsignals.trial("t"):
        for _ in range(60):
            with agentsignals.attempt():
                for _ in range(100):
                    with agentsignals.tool("bash"):
                        pass
            agentsignals.force_flush()
            open_spans, cached = processor.assembler.held_spans()
            assert open_spans == 0 and cached <= 2_000
    agentsignals.shutdown()
    assert len((tmp_path / "features" / "attempts.jsonl").read_text().splitlines()) == 60


def test_one_attempt_with_more_late_spans_than_the_cache_holds_is_counted_whole() -> None:
    """The span bound evicts other attempts first: the attempt receiving late spans keeps them
    all, so the last whole revision counts every tool call (none partial)."""
    records: list[AttemptRecord | TrialRecord] = []
    clock = Clock()
    asm = Assembler(
        records.append, clock=clock, grace=0, late_window=1.0, finished_cache=8, finished_spans=50
    )
    asm.add([_span(0, "attempt", "B", start=0), _span(1, "tool", "B", start=1)])
    asm.add([_span(0, "attempt", "A", start=0), _span(1, "tool", "A", start=1)])
    for batch in range(30):  # 300 late tool spans, 10 per batch, over time
        asm.add([_span(2 + batch * 10 + i, "tool", "A", start=2) for i in range(10)])
        clock.now += 0.7
    asm.flush()
    revisions = [r for r in _attempt_records(records) if r.attempt_id == "A"]
    assert not any(r.partial for r in revisions)
    assert revisions[-1].behavior.tool_call_count == 301
    assert 2 <= len(revisions) <= 8  # coalesced by window, not one per batch
    _, cached = asm.held_spans()
    assert cached <= 303  # B was let go for A
