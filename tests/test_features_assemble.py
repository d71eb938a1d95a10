"""Grouping spans into attempts and trials: order independence, duplicates, late spans
(revisions, never silent drops), bounded memory, idle release, and the CLI on bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._features.assemble import Assembler
from agentsignals._features.record import AttemptRecord, TrialRecord
from agentsignals._features.store import ListSink
from agentsignals._spans.model import Span


def span(
    span_id: str,
    span_type: str | None,
    attempt: str | None,
    *,
    trial: str = "T1",
    start: int = 0,
    **attrs: object,
) -> Span:
    attributes: dict[str, object] = {sc.AGENT_SIGNALS_TRIAL_ID: trial}
    if span_type:
        attributes[sc.AGENT_SIGNALS_SPAN_TYPE] = span_type
    if attempt:
        attributes[sc.AGENT_SIGNALS_ATTEMPT_ID] = attempt
    attributes.update(attrs)
    return Span(
        trace_id="1" * 32, span_id=hashlib.sha1(span_id.encode()).hexdigest()[:16], parent_span_id=None,  # noqa: E501
        name=span_type or "x",
        kind=1, start_ns=start, end_ns=start + 10, attributes=attributes,  # type: ignore[arg-type]
    )  # fmt: skip


def attempt_spans(attempt: str, index: int, *, trial: str = "T1", tools: int = 2) -> list[Span]:
    spans = [
        span(f"{attempt}t{i}", "tool", attempt, trial=trial, start=10 + i,
             **{sc.GEN_AI_TOOL_NAME: "bash", sc.AGENT_SIGNALS_TOOL_CATEGORY: "shell"})
        for i in range(tools)
    ]  # fmt: skip
    spans.append(
        span(
            f"{attempt}a",
            "attempt",
            attempt,
            trial=trial,
            **{sc.AGENT_SIGNALS_ATTEMPT_INDEX: index},
        )
    )
    return spans


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_attempt_released_after_grace_and_trial_when_its_attempts_are_in() -> None:
    sink, clock = ListSink(), Clock()
    asm = Assembler(sink, clock=clock, grace=5)
    asm.add(attempt_spans("A", 0))
    assert not sink.attempts  # waiting for late children
    clock.now = 6
    asm.add(attempt_spans("B", 1)[:1])
    assert list(sink.attempts) == ["A"]
    asm.add([span("trial", "trial", None, **{sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT: 2})])
    clock.now = 20
    asm.tick()
    assert not sink.trials  # attempt B has not ended: the trial waits for it
    asm.add(attempt_spans("B", 1)[1:])
    clock.now = 30
    asm.tick()
    trial = sink.trials["T1"]
    assert trial.attempt_count == 2
    assert trial.first_attempt is not None and trial.first_attempt.attempt_id == "A"
    assert [r.attempt_id for r in trial.retries] == ["B"]


def test_order_independent_and_duplicates_dropped() -> None:
    spans = attempt_spans("A", 0, tools=3)
    sink1, sink2 = ListSink(), ListSink()
    a1 = Assembler(sink1, clock=lambda: 0.0, grace=0)
    a1.add(spans)
    a2 = Assembler(sink2, clock=lambda: 0.0, grace=0)
    a2.add(list(reversed(spans)) + spans[:2])  # reversed, and two spans delivered twice
    a2.flush()
    a1.flush()
    r1, r2 = sink1.attempts["A"], sink2.attempts["A"]
    assert r1.behavior.tool_call_count == r2.behavior.tool_call_count == 3
    assert a2.stats.duplicates == 2


def test_late_span_yields_a_revision_never_a_silent_drop() -> None:
    records: list[AttemptRecord | TrialRecord] = []
    asm = Assembler(records.append, clock=lambda: 0.0, grace=0)
    asm.add(attempt_spans("A", 0, tools=1))
    late = span(
        "Alate",
        "tool",
        "A",
        start=50,
        **{sc.GEN_AI_TOOL_NAME: "pytest", sc.AGENT_SIGNALS_TOOL_CATEGORY: "test"},
    )
    asm.add([late])
    asm.add([late])  # the same late span twice: one revision only
    attempts = [r for r in records if isinstance(r, AttemptRecord)]
    assert [(r.revision, r.behavior.tool_call_count) for r in attempts] == [(0, 1), (1, 2)]
    assert asm.stats.late_spans == 1 and asm.stats.duplicates == 1
    # Several late spans in one batch (one export request): one more revision, not one each.
    more = [
        span(f"Alate{i}", "tool", "A", start=60 + i, **{sc.GEN_AI_TOOL_NAME: "ls"})
        for i in range(3)
    ]
    asm.add(more)
    attempts = [r for r in records if isinstance(r, AttemptRecord)]
    assert [(r.revision, r.behavior.tool_call_count) for r in attempts][-1] == (2, 5)
    assert len(attempts) == 3 and asm.stats.late_spans == 4


def test_late_span_after_the_attempt_left_memory_still_gets_a_new_revision() -> None:
    records: list[AttemptRecord | TrialRecord] = []
    asm = Assembler(records.append, clock=lambda: 0.0, grace=0, finished_cache=1)
    asm.add(attempt_spans("A", 0))
    asm.add(attempt_spans("B", 1))  # pushes A out of the finished cache
    asm.add([span("Alate", "tool", "A", start=99)])
    asm.add([span("Alate2", "tool", "A", start=100)])  # joins the partial revision
    asm.flush()
    revs = [
        (r.attempt_id, r.revision, r.complete, r.partial, r.span_count)
        for r in records
        if isinstance(r, AttemptRecord)
    ]
    # The late spans alone: written, marked partial, and kept out of the trial's record.
    assert ("A", 0, True, False, 3) in revs and ("A", 1, False, True, 2) in revs
    assert asm.stats.partial_records == 1
    trials = [r for r in records if isinstance(r, TrialRecord)]
    assert all(not a.partial for t in trials for a in [t.first_attempt, *t.retries] if a)
    # A reader keeping one record per id keeps the whole revision.
    sink = ListSink()
    for record in records:
        sink(record)
    assert (sink.attempts["A"].revision, sink.attempts["A"].span_count) == (0, 3)


def test_a_rebuild_from_a_spool_is_whole_not_partial() -> None:
    records: list[AttemptRecord | TrialRecord] = []
    asm = Assembler(records.append, clock=lambda: 0.0, grace=0)
    asm.seed_revision("A", 3, rebuild=True)  # written before a restart; all spans follow
    asm.seed_revision("B", 0)  # written before; only late spans follow
    asm.add(attempt_spans("A", 0))
    asm.add([span("Blate", "tool", "B", trial="T2", start=5)])
    asm.flush()
    got = {r.attempt_id: (r.revision, r.partial) for r in records if isinstance(r, AttemptRecord)}
    assert got == {"A": (4, False), "B": (1, True)}


def test_in_flight_cap_evicts_oldest_as_incomplete_and_idle_release() -> None:
    sink, clock = ListSink(), Clock()
    asm = Assembler(sink, clock=clock, grace=1, max_in_flight=2, idle_timeout=100)
    for name in ("A", "B", "C"):  # three attempts, none ended
        asm.add([span(f"{name}1", "tool", name, **{sc.GEN_AI_TOOL_NAME: "bash"})])
    assert asm.stats.evicted == 1
    assert sink.attempts["A"].complete is False
    clock.now = 1000
    asm.tick()
    assert {k: v.complete for k, v in sink.attempts.items()} == {"A": False, "B": False, "C": False}
    assert asm.stats.idle_released == 2 and asm.stats.in_flight == 0


def test_memory_stays_flat_as_finished_attempts_grow() -> None:
    sink_count = 0

    def sink(record: AttemptRecord | TrialRecord) -> None:
        nonlocal sink_count
        sink_count += 1

    asm = Assembler(sink, clock=lambda: 0.0, grace=0, finished_cache=64, remembered_ids=1000)

    def run(n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            asm.add(attempt_spans(f"A{i}", 0, trial=f"T{i}", tools=5))
            asm.add(
                [
                    span(
                        f"tr{i}",
                        "trial",
                        None,
                        trial=f"T{i}",
                        **{sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT: 1},
                    )
                ]
            )

    run(2000, 0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    run(2000, 2000)
    mid = tracemalloc.get_traced_memory()[0]
    run(6000, 4000)
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert sink_count >= 20000
    # Three times more attempts must not mean noticeably more memory.
    assert end - base < max(2 * (mid - base), 2_000_000), (base, mid, end)


def _line(spans: list[Span]) -> str:
    def value(v: object) -> dict[str, object]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": str(v)}

    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": []},
                    "scopeSpans": [
                        {
                            "scope": {"name": "agentsignals"},
                            "spans": [
                                {
                                    "traceId": s.trace_id,
                                    "spanId": s.span_id,
                                    "name": s.name,
                                    "kind": 1,
                                    "startTimeUnixNano": str(s.start_ns),
                                    "endTimeUnixNano": str(s.end_ns),
                                    "attributes": [
                                        {"key": k, "value": value(v)}
                                        for k, v in s.attributes.items()
                                    ],
                                }
                                for s in spans
                            ],
                        }
                    ],
                }
            ]
        }
    )


def test_offline_extract_survives_truncated_and_garbage_lines(tmp_path: Path) -> None:
    good_a, good_b = attempt_spans("A", 0), attempt_spans("B", 1)
    text = _line(good_a) + "\n" + "this is not json\n" + _line(good_b) + "\n" + _line(good_a)[:40]
    (tmp_path / "run.jsonl").write_text(text)
    with gzip.open(tmp_path / "more.jsonl.gz", "wt") as fh:
        fh.write(_line(attempt_spans("C", 0, trial="T2")) + "\n")
    result = features.extract(tmp_path)
    assert sorted(r.attempt_id for r in result.attempts) == ["A", "B", "C"]
    assert len(result.problems) == 2
    assert {p.line_no for p in result.problems} == {2, 4}
    assert all("run.jsonl" in p.path for p in result.problems)


def test_cli_features_jsonl_parquet_trials_and_errors(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(_line(attempt_spans("A", 0)) + "\nnot json\n")
    cli = [sys.executable, "-m", "agentsignals.cli", "features", "--no-progress"]
    out = subprocess.run([*cli, str(tmp_path)], capture_output=True, text=True, check=True)
    [row] = [json.loads(line) for line in out.stdout.splitlines()]
    assert row["attempt_id"] == "A" and row["behavior"]["tool_call_count"] == 2
    assert "t.jsonl:2: malformed JSON" in out.stderr  # the bad line is named, not hidden
    parquet = tmp_path / "f.parquet"
    subprocess.run([*cli, str(tmp_path), "-o", str(parquet)], capture_output=True, check=True)
    import pandas as pd

    frame = pd.read_parquet(parquet)
    assert list(frame["behavior.tool_call_count"]) == [2]
    trials = subprocess.run(
        [*cli, "--trials", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert json.loads(trials.stdout.splitlines()[0])["trial_id"] == "T1"
    missing = subprocess.run([*cli, str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stderr


@pytest.mark.usefixtures("fresh_otel")
def test_in_process_processor_writes_records_as_attempts_end(tmp_path: Path) -> None:
    import agentsignals

    agentsignals.configure(output_dir=tmp_path, features=True, exporters=["none"], batch=False)
    with agentsignals.trial("t"):
        with agentsignals.attempt(), agentsignals.tool("bash"):
            pass
        # The first attempt's record is on disk while the trial is still running.
        written = (tmp_path / "features" / "attempts.jsonl").read_text().splitlines()
        assert len(written) == 1
        with agentsignals.attempt():
            pass
    agentsignals.shutdown()
    stored = features.read_store(tmp_path / "features")
    assert [r.attempt_index for r in stored.attempts] == [0, 1]
    assert stored.trials[0].attempt_count == 2
