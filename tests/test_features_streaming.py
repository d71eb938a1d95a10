"""Streaming extraction (issue #16): records to a sink or straight to a file, the same output
as the in-memory path, with memory that does not grow with the input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentsignals import features
from agentsignals._features.record import AttemptRecord, TrialRecord
from agentsignals._features.store import write_csv, write_json_lines, write_parquet

ROOT = Path(__file__).resolve().parents[1]
cli = [sys.executable, "-m", "agentsignals"]


def _traces(path: Path, spans: int, *, per_line: int = 500, seed: int = 7) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gen_traces

    lines = gen_traces.generate_lines(spans, spans_per_line=per_line, seed=seed)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sink_receives_every_record_and_nothing_is_kept(tmp_path: Path) -> None:
    traces = _traces(tmp_path / "t.jsonl", 4000)
    got: list[AttemptRecord | TrialRecord] = []
    streamed = features.extract(traces, sink=got.append)
    assert streamed.attempts == [] and streamed.trials == []
    whole = features.extract(traces)
    assert streamed.stats == whole.stats
    # Every record the in-memory path keeps went through the sink (here one revision each).
    assert sorted(r.attempt_id for r in got if isinstance(r, AttemptRecord)) == sorted(
        r.attempt_id for r in whole.attempts
    )
    assert len([r for r in got if isinstance(r, TrialRecord)]) == len(whole.trials)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_extract_to_writes_what_extract_returns(tmp_path: Path, suffix: str) -> None:
    traces = _traces(tmp_path / "t.jsonl", 4000)
    whole = features.extract(traces)
    for kind, records in (("attempts", whole.attempts), ("trials", whole.trials)):
        expected, streamed = tmp_path / f"e-{kind}{suffix}", tmp_path / f"s-{kind}{suffix}"
        if suffix == ".jsonl":
            write_json_lines(records, expected)
        elif suffix == ".csv":
            write_csv(records, expected)
        else:
            write_parquet(records, expected)
        summary = features.extract_to(traces, streamed, trials=kind == "trials")
        assert summary.written == len(records) > 0
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            assert pq.read_table(streamed).equals(pq.read_table(expected))
        else:
            assert streamed.read_bytes() == expected.read_bytes()


def test_the_cli_output_is_unchanged_and_keeps_the_latest_revision(tmp_path: Path) -> None:
    traces = _traces(tmp_path / "t.jsonl", 3000, per_line=20)
    # A copy of an early tool span with a new id, 100 lines (past the offline grace) later:
    # its attempt gets a second, whole revision, which is what the output keeps.
    lines = traces.read_text().splitlines()
    late = json.loads(lines[0])
    scope_spans = late["resourceSpans"][0]["scopeSpans"]
    span = next(
        s
        for ss in scope_spans
        for s in ss["spans"]
        if any(a["value"].get("stringValue") == "tool" for a in s["attributes"])
    )
    copy = dict(span, spanId="f" * 16)
    late["resourceSpans"] = [
        {"resource": late["resourceSpans"][0]["resource"],
         "scopeSpans": [{"scope": {"name": "agentsignals"}, "spans": [copy]}]}
    ]  # fmt: skip
    assert len(lines) > 100
    traces.write_text("\n".join([*lines[:100], json.dumps(late), *lines[100:]]) + "\n")
    out = tmp_path / "a.jsonl"
    run = subprocess.run([*cli, "features", str(traces), "-o", str(out), "--no-progress"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    whole = features.extract(traces)
    assert whole.stats.late_spans == 1
    assert [r.revision for r in whole.attempts if r.revision] == [1]
    expected = tmp_path / "expected.jsonl"
    write_json_lines(whole.attempts, expected)
    assert out.read_bytes() == expected.read_bytes()
    assert f"{len(whole.attempts)} attempt records from" in run.stderr


def test_memory_is_flat_in_the_input_size(tmp_path: Path) -> None:
    """Peak traced memory for 25k and for 3x as many spans: keeping the records grows by
    ~16 kB per attempt, streaming them does not (the assembler's state is bounded)."""
    small = tmp_path / "small"
    large = tmp_path / "large"
    small.mkdir()
    large.mkdir()
    _traces(small / "a.jsonl", 25_000, per_line=50, seed=7)
    for seed in (7, 8, 9):
        _traces(large / f"{seed}.jsonl", 25_000, per_line=50, seed=seed)
    script = textwrap.dedent(
        """
        import sys, tracemalloc
        from agentsignals import features
        tracemalloc.start()
        if sys.argv[2] == "sink":
            features.extract(sys.argv[1], sink=lambda record: None)
        else:
            kept = features.extract(sys.argv[1])
        print(tracemalloc.get_traced_memory()[1])
        """
    )

    def peak(path: Path, mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", script, str(path), mode],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(out.stdout.strip())

    sink_growth = peak(large, "sink") - peak(small, "sink")
    kept_growth = peak(large, "kept") - peak(small, "kept")
    # Streaming grows only by the id maps still filling (seen span ids, 512 attempts; the
    # remembered revisions, ~170 B per attempt up to 200,000): a fraction of the records.
    assert kept_growth > 10_000_000, (sink_growth, kept_growth)
    assert sink_growth < kept_growth / 5, (sink_growth, kept_growth)
