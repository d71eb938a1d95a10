"""The report's loaders against an independent reading of the same records: JSON lines decoded
into columns (fields learned mid-stream, type conflicts, bad lines, torn gzip), the columns a
report's options need and no others, the timeline rewritten in bulk, Parquet read column by
column, and the SELECT sent to ClickHouse."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

from agentsignals import report
from agentsignals._features.record import JudgeField
from agentsignals._report import decode, sources
from agentsignals._report.context import needed_columns
from agentsignals._report.frame import (
    FWS_ROW,
    FWS_STEP,
    PHASES,
    STR,
    TIMELINE,
    flatten_value,
    timeline,
)


def _records(n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """Varied records: groups present or not, learned judge fields from row 100 on, nulls,
    unknown categories, a newer writer's field inside a known group."""
    rng = np.random.default_rng(seed)
    cats = ["search", "read", "edit", "shell", "test", "submit", "other", "think"]
    out: list[dict[str, Any]] = []
    for i in range(n):
        rec: dict[str, Any] = {
            "attempt_id": f"a{i:04d}",
            "trial_id": f"t{i:04d}",
            "task_id": f"task-{i % 40}",
            "attempt_index": int(i % 3 == 0),
            "treatment": {"agent_type": ["x", "y"][i % 2], "model_id": None},
            "verification": {"reward": float(rng.random() < 0.5)},
        }
        if i % 7:
            rec["behavior"] = {
                "turn_count": int(rng.integers(1, 50)),
                "stuck_loop": bool(rng.random() < 0.3) if i % 5 else None,
                "edit_to_read_ratio": float(rng.random()),
                "localization_mode": ["grep", "read", None][i % 3],
                "tool_category_sequence": [cats[j % len(cats)] for j in range(i % 11)],
                "tool_sequence": ["bash"] * (i % 11),
                "newer_signal": i % 4,  # a field this version's record type lacks
            }
        if i >= 100:
            rec["judge"] = {
                "memory_drift": {"value": bool(i % 3), "explanation": f"because {i}"},
                "planning": {"label": ["none", "short"][i % 2]},
            }
        if i >= 200:
            # As the judge writes a field: a JudgeField object (docs/judge.md).
            rec["judge"]["validation"] = {
                "match": msgspec.to_builtins(
                    JudgeField(
                        value=None if i % 4 == 0 else bool(i % 5),
                        status="could_not_judge" if i % 4 == 0 else "ok",
                        explanation=f"[S{i % 7}] ran the tests",
                        citations=["ab"],
                        model="m",
                        samples=3,
                        agreement=0.67,
                        temperature=0.0,
                        seed=i,
                        chunks=2,
                        chunks_judged=2,
                        method="rubric",
                    )
                )
            }
        out.append(rec)
    return out


def _reference(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every scalar under its dotted name, by plain JSON and recursion (independent of the
    loader's generated types)."""
    flats = []
    for r in records:
        flat: dict[str, Any] = {}
        flatten_value(json.loads(json.dumps(r)), "", flat, {})
        flats.append(flat)
    names = {k for f in flats for k in f}
    return {k: [f.get(k) for f in flats] for k in names}


def _same(column: np.ndarray, expected: list[Any]) -> bool:
    got = [None if isinstance(v, float) and math.isnan(v) else v for v in column.tolist()]
    want = [
        float(v) if isinstance(v, bool | int) and not isinstance(v, str) else v for v in expected
    ]
    return got == want


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    return path


@pytest.mark.parametrize("block", [1 << 20, 700])
def test_columns_equal_an_independent_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    # A small block size puts learned fields, and the first line that has them, mid-block.
    monkeypatch.setattr(decode, "BLOCK_BYTES", block)
    monkeypatch.setattr(sources, "BLOCK_BYTES", block)
    records = _records()
    frame = report.load([_write(tmp_path / "attempts.jsonl", records)])
    assert frame.n == len(records) and not frame.problems
    ref = _reference(records)
    for name, values in ref.items():
        assert name in frame.columns, name
        assert _same(frame.columns[name], values), name
    assert frame.kinds["judge.memory_drift.value"] == "bool"
    # A JudgeField object is read as its value under the field's name; its bookkeeping is not
    # a column.
    validation = [
        r["judge"]["validation"]["match"]["value"] if i >= 200 else None
        for i, r in enumerate(records)
    ]
    assert _same(frame.columns["judge.validation.match"], validation)
    assert frame.kinds["judge.validation.match"] == "bool"
    assert not [c for c in frame.columns if c.startswith("judge.validation.match.")]
    assert frame.kinds["judge.planning.label"] == STR
    assert frame.kinds["behavior.newer_signal"] == "num"
    # A field the record type declares is a column even where no record has its group.
    assert "reasoning.has_reasoning_blocks" in frame.columns
    assert np.isnan(frame.columns["reasoning.has_reasoning_blocks"]).all()
    # The timeline: one letter per category, unknown ones as "o"; none without a sequence.
    for rec, strip in zip(records, frame.columns[TIMELINE], strict=True):
        cats = (rec.get("behavior") or {}).get("tool_category_sequence")
        assert strip == (timeline(cats) if cats else None)
    assert frame.columns[TIMELINE][1] == "s" and frame.columns[TIMELINE][9] == "srextuoos"


def test_a_field_that_changes_shape_and_bad_lines_lose_nothing_else(tmp_path: Path) -> None:
    records = _records(40)
    lines = [msgspec.json.encode(r) for r in records]
    # Row 120-style judge field as a number here, an object there.
    lines[10] = msgspec.json.encode({**records[10], "judge": {"memory_drift": 0.5}})
    lines[11] = msgspec.json.encode({**records[11], "judge": {"memory_drift": {"value": True}}})
    lines.insert(20, b'{"attempt_id": "torn", "behavior": {')
    lines.insert(21, b"[1, 2, 3]")
    lines.insert(22, b'{"behavior": {"turn_count": 3}}')
    path = tmp_path / "attempts.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    frame = report.load([path])
    assert frame.n == len(records)
    assert [str(p) for p in frame.problems] == [
        f"{path}:21: not JSON: Input data was truncated",
        f"{path}:22: not an attempt record",
        f"{path}:23: not an attempt record",
    ]
    ids = list(frame.columns["attempt_id"])
    assert ids == [r["attempt_id"] for r in records]
    assert frame.columns["judge.memory_drift"][10] == 0.5
    assert frame.columns["judge.memory_drift.value"][11] == 1.0
    assert math.isnan(frame.columns["judge.memory_drift"][11])


def test_a_torn_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    records = _records(2000)
    data = gzip.compress(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    path = tmp_path / "attempts.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    frame = report.load([path])
    assert 0 < frame.n < len(records)
    assert list(frame.columns["attempt_id"]) == [r["attempt_id"] for r in records[: frame.n]]
    assert len(frame.problems) == 1 and "cannot read further" in str(frame.problems[0])


def test_only_the_columns_the_options_need(tmp_path: Path) -> None:
    records = _records()
    for r in records:
        r["trace_id"] = "ab" * 16
        r["service_name"] = "svc"
    path = _write(tmp_path / "attempts.jsonl", records)
    options = report.Options()
    frame = report.load([path], options=options)
    wanted = needed_columns(options)
    assert all(wanted(c) or c.startswith("_") or c == "attempt_id" for c in frame.columns)
    for dropped in ("trace_id", "service_name", "schema_version", "judge.memory_drift.explanation"):
        assert dropped not in frame.columns
    for kept in ("judge.memory_drift.value", "verification.reward", "task_id", TIMELINE):
        assert kept in frame.columns
    # Asking for a column (a row, an arm, a where-filter) brings it back.
    wider = report.Options(
        include=("judge.memory_drift.explanation",),
        by=("service_name",),
        filters={"where": ["trace_id=ab*"]},
    )
    frame = report.load([path], options=wider)
    assert {"judge.memory_drift.explanation", "service_name", "trace_id"} <= set(frame.columns)
    # The report is the same as from every column.
    full = report.build(report.load([path]), options)
    lean = report.build(report.load([path], options=options), options)
    assert full.result("behaviour") == lean.result("behaviour")
    assert full.result("overview") == lean.result("overview")


def test_timelines_in_bulk_equal_one_by_one() -> None:
    lists = [
        ["read", "edit"],
        [],
        None,
        ["reader", 'a"b', "test", "submit", "x\\y"],
        [1, "read"],
        ["search"] * 50,
    ]
    raws = [msgspec.Raw(msgspec.json.encode(v)) for v in lists]
    assert decode.timelines(raws) == [timeline(v) for v in lists]
    assert decode.timelines(raws)[3] == "ootuo"


def test_parquet_reads_only_the_columns_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from agentsignals import features

    records = [
        msgspec.convert({k: v for k, v in r.items() if k != "judge"}, features.AttemptRecord)
        for r in _records()
        if "behavior" in r
    ]
    path = tmp_path / "a.parquet"
    features.write_parquet(records, path)
    asked: list[list[str]] = []
    original = pq.ParquetFile.read_row_group

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(list(kwargs["columns"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    options = report.Options()
    frame = report.load([path], options=options)
    columns = [c for group in asked for c in group]
    assert len(columns) == len(set(columns)) and max(map(len, asked)) <= sources.PARQUET_COLUMNS
    schema = pq.read_schema(path)
    lists = {f.name for f in schema if pa.types.is_list(f.type)}
    assert lists & set(columns) == {"behavior.tool_category_sequence"}
    assert "behavior.touched_file_lines" not in columns  # a list of objects held as JSON text
    assert "trace_id" not in columns and "schema_version" not in columns
    assert frame.n == len(records)
    from_json = report.load(
        [_write(tmp_path / "x.jsonl", [msgspec.to_builtins(r) for r in records])], options=options
    )
    for name in from_json.columns:
        if name in frame.columns and from_json.kinds[name] != STR:
            np.testing.assert_array_equal(frame.columns[name], from_json.columns[name], name)
    assert list(frame.columns[TIMELINE]) == list(from_json.columns[TIMELINE])


def test_parquet_with_first_wrong_step_labels_reads_the_judges_step_phases(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fws = "judge.first_wrong_step"
    rows = {
        "attempt_id": ["a", "b", "c"],
        "task_id": ["t1", "t1", "t2"],
        "verification.reward": [0.0, 1.0, 0.0],
        "behavior.tool_category_sequence": [["search", "read"], ["read", "edit"], ["edit"]],
        # As features.write_parquet writes the judge: one column per field, holding the value.
        f"{fws}.index": [1, None, 4],
        f"{fws}.span_id": ["0a", None, "0c"],
        f"{fws}.relative_position": [0.3333, None, 1.0],
        f"{fws}.phase": ["explore", None, None],
        f"{fws}.step_phases": [
            ["", "explore", "", "localize"],
            None,
            ["", "", "implement", "", "x"],
        ],
    }
    path = tmp_path / "labelled.parquet"
    pq.write_table(pa.table(rows), path)
    frame = report.load([path])
    assert list(frame.columns[FWS_ROW]) == ["explore", None, "unrecorded"]
    assert list(frame.columns[FWS_STEP]) == ["S1 · span 0a", None, "S4 · span 0c"]
    steps = frame.baseline_steps["steps"]
    # Each labelled attempt's steps weigh 1 in all; positions 0, 1/3, 2/3, 1.
    assert steps[0].sum() == pytest.approx(1) and steps[1].sum() == 0
    unrecorded, explore, localize, other = (
        PHASES.index(p) for p in ("unrecorded", "explore", "localize", "other")
    )
    assert steps[0][unrecorded, 0] == steps[0][explore, 3] == steps[0][localize, 9] == 0.25
    assert steps[2][other, 9] == pytest.approx(0.2)  # a declared phase outside the four


def test_the_clickhouse_select_names_only_the_report_columns() -> None:
    from agentsignals._store import records as _records

    options = report.Options()
    names, sql = sources._attempts_query(_records.ATTEMPTS, "otel", needed_columns(options))
    assert sql.startswith("SELECT trial_id, task_id, attempt_id, ") and " FINAL " in sql
    assert "behavior.turn_count" in names and "verification.reward" in names
    assert "toUnixTimestamp64Nano(started_at)" in sql
    for absent in ("trace_id", "span_id", "service_name", "behavior.tool_sequence", "record_json"):
        assert absent not in names and f" {absent}," not in sql
    assert TIMELINE in names and "arrayStringConcat(arrayMap(" in sql
    assert "behavior.tool_category_sequence" not in names  # the letters suffice
    # The judge's values are read out of its JSON text by the server; the resource attributes
    # (the tags) come whole.
    assert set(names[-2:]) == {"_judge_values", "resource_attributes"}
    assert "JSONExtractRaw(f.2, 'value')" in sql and " judge," not in sql


def test_report_from_clickhouse_equals_the_report_from_files(tmp_path: Path) -> None:
    pytest.importorskip("chdb", reason="chDB (the clickhouse extra) is not installed")
    import subprocess
    import sys

    from agentsignals import features

    records = [
        msgspec.convert(
            {
                **{k: v for k, v in r.items() if k != "judge"},
                "behavior": {
                    k: v for k, v in (r.get("behavior") or {}).items() if k != "newer_signal"
                },
                "revision": 1,
            },
            features.AttemptRecord,
        )
        for r in _records()
    ]
    jsonl = tmp_path / "attempts.jsonl"
    # An older revision of the first record first: both readers keep the latest.
    old = msgspec.structs.replace(records[0], revision=0, verification=features.Verification())
    jsonl.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in [old, *records]))
    db = f"chdb://{tmp_path / 'db'}"
    # chDB allows one data directory per process: the store is written and read in children.
    loader = (
        "import sys, msgspec; from agentsignals import features; "
        "from agentsignals._store.clickhouse import connect; "
        "recs = [msgspec.json.decode(l, type=features.AttemptRecord) "
        "for l in open(sys.argv[2], 'rb')]; "
        "s = connect(sys.argv[1]); s.insert_records(recs); s.close()"
    )
    subprocess.run([sys.executable, "-c", loader, db, str(jsonl)], check=True, timeout=300)
    cli = [sys.executable, "-m", "agentsignals.cli", "report", "-q", "--replicates", "200"]
    out_db = tmp_path / "db.html"
    out_files = tmp_path / "files.html"
    for args in (["--source", db, "-o", str(out_db)], [str(jsonl), "-o", str(out_files)]):
        proc = subprocess.run(
            [*cli, *args], capture_output=True, text=True, check=False, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
    from_db = json.loads(out_db.with_suffix(".json").read_text())
    from_files = json.loads(out_files.with_suffix(".json").read_text())
    assert from_db["sections"]["overview"]["totals"]["attempts"] == len(records)
    assert from_db["sections"] == from_files["sections"]
    # The timeline letters the server made equal the ones read from the files.
    reader = (
        "import sys, json; from agentsignals import report; "
        "f = report.load(source=sys.argv[1], options=report.Options()); "
        "print(json.dumps(dict(zip(f.columns['attempt_id'].tolist(), "
        "f.columns['_timeline'].tolist()))))"
    )
    child = subprocess.run(
        [sys.executable, "-c", reader, db], capture_output=True, text=True, check=True
    )
    frame = report.load([jsonl])
    expected = dict(
        zip(frame.columns["attempt_id"].tolist(), frame.columns[TIMELINE].tolist(), strict=True)
    )
    assert json.loads(child.stdout) == expected
    assert sum(v is not None for v in expected.values()) > len(records) // 2


def test_tag_filter_on_a_tag_no_record_carries_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _write(tmp_path / "attempts.jsonl", _records(20))
    proc = subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", "report", str(path), "--tag", "team=a"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "--tag team=...: no attempt record carries the resource attribute 'team'" in proc.stderr
    assert "OTEL_RESOURCE_ATTRIBUTES=team=VALUE" in proc.stderr


def test_filters_match_each_distinct_value_like_fnmatch() -> None:
    import fnmatch

    records = _records(200)
    for i, r in enumerate(records):
        r["run_id"] = ["r1-a", "r1-b", "r2", None][i % 4]
    frame = report.from_records(records)
    cases = [
        ({"run_id": ["r1*"]}, lambda r: fnmatch.fnmatchcase(r.get("run_id") or "\0", "r1*")),
        (
            {"where": ["behavior.localization_mode=gr*"]},
            lambda r: (r.get("behavior") or {}).get("localization_mode") == "grep",
        ),
        ({"agent": ["y"], "attempt_index": "1-"}, lambda r: r["treatment"]["agent_type"] == "y"
         and r["attempt_index"] >= 1),
    ]  # fmt: skip
    for filters, keep in cases:
        kept = report.apply_filters(frame, filters)
        assert list(kept.columns["attempt_id"]) == [r["attempt_id"] for r in records if keep(r)], (
            filters
        )


def test_an_unreachable_source_is_one_line(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"clickhouse://127.0.0.1:{port}/otel"
    for command in (["report", "--source", url], ["show", "x", "--source", url]):
        proc = subprocess.run(
            [sys.executable, "-m", "agentsignals.cli", *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert "cannot reach ClickHouse" in proc.stderr
