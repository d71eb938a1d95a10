"""Parquet output has an explicit Arrow schema generated from the record types: live and
imported records together, attempts that edited nothing beside ones that did, and a batch
whose columns are all null write and read back with the same types."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentsignals
from agentsignals import features
from agentsignals._features.record import AttemptRecord, TrialRecord
from agentsignals._features.store import arrow_schema
from agentsignals._import.run import import_file
from agentsignals.testing import capture_spans

pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")


def _live_records() -> list[AttemptRecord]:
    with capture_spans() as captured:
        with (
            agentsignals.trial("live-1"),
            agentsignals.attempt(),
            agentsignals.turn(),
            agentsignals.tool("read_file", arguments={"path": "a.py"}),
        ):
            pass
        with agentsignals.trial("live-2"), agentsignals.attempt():
            pass  # no calls, no edits: empty lists and nulls
    return features.from_spans(captured.spans).attempts


def test_live_and_imported_records_write_one_file(shared_data: Path, tmp_path: Path) -> None:
    imported = features.from_spans(
        import_file(
            shared_data
            / "swe-agent/20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432"
            / "pytest-dev__pytest-7432.traj"
        ).trajectories[0]
    ).attempts
    records = [*_live_records(), *imported]
    assert any(r.behavior.touched_files for r in records)  # one edited
    assert any(r.behavior.touched_files is None for r in records)  # one never tracked
    out = tmp_path / "attempts.parquet"
    features.write_parquet(records, out)
    table = pq.read_table(out)
    assert table.schema == arrow_schema(AttemptRecord)
    assert table.num_rows == len(records)
    assert table.schema.field("behavior.touched_files").type == pa.list_(pa.string())
    assert table.schema.field("behavior.touched_file_lines").type.value_type.num_fields == 3
    rows = table.to_pylist()
    by_task = {r["task_id"]: r for r in rows}
    assert by_task["pytest-dev__pytest-7432"]["behavior.touched_files"] == [
        "reproduce.py", "src/_pytest/skipping.py", "reproduce_skipif.py",
    ]  # fmt: skip
    assert by_task["live-2"]["behavior.tool_call_count"] == 0


def test_all_null_batch_keeps_its_types(tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    features.write_parquet([AttemptRecord(attempt_id="x")], out)
    schema = pq.read_schema(out)
    assert schema.field("tokens.cost_usd").type == pa.float64()
    assert schema.field("behavior.step_files").type == pa.list_(pa.list_(pa.string()))


def test_trial_records_nest_attempts_as_json(tmp_path: Path) -> None:
    trials = [TrialRecord(trial_id="t", first_attempt=AttemptRecord(attempt_id="a"))]
    out = tmp_path / "trials.parquet"
    features.write_parquet(trials, out)
    (row,) = pq.read_table(out).to_pylist()
    assert '"attempt_id":"a"' in row["first_attempt"]
    with pytest.raises(ValueError):
        features.write_parquet([*trials, AttemptRecord(attempt_id="a")], out)
