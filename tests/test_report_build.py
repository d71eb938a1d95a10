"""The report over records that carry judge fields, clusters and first wrong steps, a judge
calibration, filters, every input form, and the two commands."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

from agentsignals import report
from agentsignals._report import stats
from agentsignals._report.frame import FWS_PHASE, TIMELINE, step_phases

CATEGORIES = ["search", "read", "read", "edit", "shell", "test", "edit", "test", "submit"]


def judged_records(tasks: int = 60, per_task: int = 4, seed: int = 0) -> list[dict]:
    """Records as the judge will extend them: nested judge.<rubric>.<field> values (a flag, a
    label, a score, free text), a first wrong step on failed attempts, a cluster id."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(tasks):
        hard = rng.random() < 0.5
        for a in range(per_task):
            failed = rng.random() < (0.7 if hard else 0.2)
            drift = rng.random() < (0.6 if failed else 0.15)
            rec: dict = {
                "attempt_id": f"att-{t:03d}-{a}",
                "trial_id": f"trial-{t:03d}-{a}",
                "task_id": f"task-{t:03d}",
                "attempt_index": 0,
                "treatment": {"agent_type": "agent-a" if a % 2 else "agent-b", "model_id": "m1"},
                "behavior": {
                    "turn_count": int(rng.integers(5, 40)),
                    "tool_category_sequence": CATEGORIES,
                    "tool_sequence": ["bash"] * len(CATEGORIES),
                    "touched_files": ["src/x.py"],
                    "step_files": [[], ["src/x.py"], ["README"], ["src/x.py"], [], [], [], [], []],
                    "step_changed_files": [[], [], [], ["src/x.py"], [], [], ["src/x.py"], [], []],
                },
                "verification": {
                    "reward": 0.0 if failed else 1.0,
                    "patch_outcome_label": "no_effect_patch" if failed else "correct_patch",
                },
                "judge": {
                    "memory_drift": {
                        "value": bool(drift),
                        "explanation": f"step {a} says so",
                        "model": "tiny",
                        "citations": ["abc"],
                    },
                    "planning": {"label": ["none", "short", "long"][int(rng.integers(0, 3))]},
                    "confidence": {"score": float(rng.random())},
                },
            }
            if failed:
                rec["judge"]["first_wrong_step"] = {
                    "index": 3,
                    "span_id": "00f",
                    "category": "wrong_edit",
                    "reason": "bad",
                }
                rec["cluster_id"] = "c1" if drift else "c2"
            out.append(rec)
    return out


def test_judge_fields_become_rows_without_new_code() -> None:
    result = report.build(report.from_records(judged_records()), report.Options(replicates=300))
    beh = result.result("behaviour")
    assert beh is not None
    signals = {r["signal"] for r in beh["rows"] + beh["numeric"]}
    assert "judge.memory_drift.value" in signals
    assert {"judge.planning.label = none", "judge.planning.label = long"} <= signals
    assert "judge.confidence.score" in signals
    # Text, model names, citations, the first wrong step and clusters are not behaviour rows.
    assert not any(
        "explanation" in s or ".model" in s or "first_wrong" in s or "cluster" in s for s in signals
    )
    drift = next(r for r in beh["rows"] if r["signal"] == "judge.memory_drift.value")
    assert drift["prevalence_failed"] > drift["prevalence_resolved"]
    assert drift["ratio"]["value"] == pytest.approx(
        drift["prevalence_failed"] / drift["prevalence_resolved"]
    )


def test_first_wrong_step_heatmap_and_clusters() -> None:
    records = judged_records()
    result = report.build(report.from_records(records), report.Options(replicates=200))
    origins = result.result("origins")
    failed = sum(r["verification"]["reward"] == 0 for r in records)
    assert origins is not None and origins["placed"] == failed == origins["labelled_failed"]
    # Step 3 of 9 is an edit (implement) at relative position (3 + 0.5) / 9 -> bin 3.
    heat = np.array(origins["heatmap"])
    assert heat[2, 3] == failed and heat.sum() == failed
    assert origins["categories"] == {"wrong_edit": failed}
    baseline = np.array(origins["baseline"])
    assert baseline.sum() == pytest.approx(failed)
    phases = step_phases(
        CATEGORIES,
        [[], ["src/x.py"], ["README"], ["src/x.py"], [], [], [], [], []],
        None,
        ["src/x.py"],
    )
    assert phases == [
        "explore",
        "localize",
        "explore",
        "implement",
        "verify",
        "verify",
        "implement",
        "verify",
        "submit",
    ]
    clusters = result.result("clusters")
    assert clusters is not None
    sizes = {c["id"]: c["size"] for c in clusters["clusters"]}
    assert sizes == {
        "c1": sum(r.get("cluster_id") == "c1" for r in records),
        "c2": sum(r.get("cluster_id") == "c2" for r in records),
    }
    assert all(c["resolved"]["k"] == 0 for c in clusters["clusters"])


def test_judge_calibration_corrects_prevalence(tmp_path: Path) -> None:
    cal = tmp_path / "calibration.json"
    cal.write_text(
        json.dumps(
            {
                "format": "agentsignals.judge_calibration/v1",
                "judge": {"model": "tiny"},
                "fields": {"judge.memory_drift": {"tp": 45, "fn": 5, "tn": 80, "fp": 20}},
            }
        )
    )
    options = report.Options(replicates=500, calibration=report.load_calibration(cal))
    result = report.build(report.from_records(judged_records()), options)
    beh = result.result("behaviour")
    assert beh is not None
    row = next(r for r in beh["rows"] if r["signal"] == "judge.memory_drift.value")
    corr = row["corrected"]
    assert corr["sensitivity"] == 0.9 and corr["specificity"] == 0.8
    assert corr["calibration_uncertainty"] is True
    for key in ("resolved", "failed"):
        expected = float(stats.rogan_gladen(row[f"prevalence_{key}"], 0.9, 0.8))
        assert corr[f"prevalence_{key}"] == pytest.approx(expected)
        lo, hi = corr[f"prevalence_{key}_ci"]
        assert lo <= expected <= hi
    # Rows the calibration does not name are not corrected.
    assert all("corrected" not in r for r in beh["rows"] if "memory_drift" not in r["signal"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ('{"fields": {"judge.x": {"tp": 1}}}', "give tp/fn/tn/fp"),
        ('{"format": "other", "fields": {}}', "is not"),
    ],
)
def test_bad_calibration_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(content)
    records = tmp_path / "attempts.jsonl"
    records.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in judged_records(5, 2)))
    proc = _cli(
        "report", str(records), "--judge-calibration", str(path), "-o", str(tmp_path / "r.html")
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in (proc.stderr)
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_report_command_writes_html_json_markdown_and_skips_bad_lines(tmp_path: Path) -> None:
    records = judged_records(20, 3)
    path = tmp_path / "attempts.jsonl"
    lines = [msgspec.json.encode(r) for r in records]
    lines.insert(5, b'{"attempt_id": "torn", "behavior": {')
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out" / "report.html"
    proc = _cli("report", str(path), "-o", str(out), "--replicates", "200")
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and ":6:" in proc.stderr
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "http://" not in html.split("<svg")[0]
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["format"] == "agentsignals.report/v1"
    assert data["sections"]["overview"]["totals"]["attempts"] == len(records)
    assert "## Behaviour versus success" in out.with_suffix(".md").read_text()
    assert "## Overview" in proc.stdout


def test_report_command_missing_input_and_missing_outcomes(tmp_path: Path) -> None:
    proc = _cli("report", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "r.html"))
    assert (
        proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in (proc.stderr)
    )
    unverified = [{**r, "verification": {}} for r in judged_records(5, 2)]
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in unverified))
    result = report.build(report.load([path]))
    assert any("No attempt has a verified outcome" in n for n in result.notes)
    assert result.result("behaviour")["attempts"] == 0  # type: ignore[index]


def test_show_prints_the_timeline(tmp_path: Path) -> None:
    records = judged_records(3, 2)
    path = tmp_path / "attempts.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    failed = next(r for r in records if r["verification"]["reward"] == 0)
    proc = _cli("show", failed["attempt_id"], str(path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"task {failed['task_id']}" in out and "FAILED (no_effect_patch" in out
    assert "first wrong step: #3 (wrong_edit)" in out
    step3 = next(line for line in out.splitlines() if line.strip().startswith("3 "))
    assert "edit" in step3 and "implement" in step3 and "FIRST WRONG STEP" in step3
    by_task = _cli("show", "task-001", str(path))
    assert by_task.stdout.count("attempt att-001-") == 2
    assert _cli("show", "nothing-like-it", str(path)).returncode == 1


def test_filters_parquet_and_revisions(tmp_path: Path) -> None:
    from agentsignals import features

    records = [
        msgspec.convert(
            {k: v for k, v in r.items() if k not in ("judge", "cluster_id")}, features.AttemptRecord
        )
        for r in judged_records(10, 2)
    ]
    pq = tmp_path / "a.parquet"
    features.write_parquet(records, pq)
    jsonl = tmp_path / "attempts.jsonl"
    old = msgspec.structs.replace(records[0], revision=0, verification=features.Verification())
    new = msgspec.structs.replace(records[0], revision=1)
    jsonl.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in [old, *records[1:], new]))
    a, b = report.load([pq]), report.load([jsonl])
    assert a.n == b.n == len(records)
    ra = report.build(a).result("overview")
    rb = report.build(b).result("overview")
    assert ra is not None and rb is not None
    assert [x["first"] for x in ra["arms"]] == [x["first"] for x in rb["arms"]]
    assert TIMELINE in a.columns and a.columns[TIMELINE][0] == "srrextetu"
    only_a = report.build(b, report.Options(filters={"agent": ["agent-a"]}))
    assert only_a.context.n == sum(r.treatment.agent_type == "agent-a" for r in records)
    with pytest.raises(report.build.__globals__["FilterError"]):
        report.build(b, report.Options(filters={"tag": ["x"]}))
    assert FWS_PHASE not in a.columns
    assert not math.isnan(float(b.columns["verification.reward"][0]))
