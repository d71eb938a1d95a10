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

from agentsignals import features, report
from agentsignals._features.record import JudgeField
from agentsignals._judge.engine import JobResult
from agentsignals._judge.results import merge_results
from agentsignals._judge.transcript import CATEGORY_PHASE
from agentsignals._report import stats
from agentsignals._report.frame import FWS_ROW, TIMELINE

CATEGORIES = ["search", "read", "read", "edit", "shell", "test", "edit", "test", "submit"]
# The judge's transcript of these attempts: a turn before each tool call (S0 turn, S1 tool,
# ...). Turns declare no phase; a tool step's phase is its category's.
STEP_PHASES = [p for c in CATEGORIES for p in ("", CATEGORY_PHASE.get(c, ""))]
FWS_STEP = 7  # the first edit (tool 3)
FWS_SPAN = "00000000000000f7"


def _fws_result(attempt_id: str) -> JobResult:
    """A first-wrong-step result as the judge's attribution writes it (docs/judge.md)."""
    n = len(STEP_PHASES)
    common = {"explanation": f"[S{FWS_STEP}] edits the wrong line", "citations": [FWS_SPAN]}
    values = {
        "index": FWS_STEP,
        "span_id": FWS_SPAN,
        "category": "wrong_edit",
        "reason": "bad",
        "relative_position": round(FWS_STEP / (n - 1), 4),
        "phase": STEP_PHASES[FWS_STEP] or None,
        "step_phases": STEP_PHASES,
    }
    fields = {
        k: JudgeField(value=v, model="tiny", method="candidates", **common)  # type: ignore[arg-type]
        for k, v in values.items()
    }
    return JobResult(attempt_id, "first_wrong_step", "1", fields)


def _value(value: object) -> JudgeField:
    return JudgeField(value=value, model="tiny", citations=["abc"])  # type: ignore[arg-type]


def judged_records(tasks: int = 60, per_task: int = 4, seed: int = 0) -> list[dict]:
    """Attempt records with the judge's results merged in by the judge's own code
    (`merge_results`): a flag (`judge.memory_drift.match`), a label, a score, a first wrong
    step on failed attempts (at S7, the first edit), and a failure cluster; plus the resource
    attributes the producer set (`team`)."""
    rng = np.random.default_rng(seed)
    records: list[features.AttemptRecord] = []
    results: list[JobResult] = []
    clusters: dict[str, str] = {}
    for t in range(tasks):
        hard = rng.random() < 0.5
        for a in range(per_task):
            failed = rng.random() < (0.7 if hard else 0.2)
            drift = rng.random() < (0.6 if failed else 0.15)
            attempt_id = f"att-{t:03d}-{a}"
            records.append(
                features.AttemptRecord(
                    attempt_id=attempt_id,
                    trial_id=f"trial-{t:03d}-{a}",
                    task_id=f"task-{t:03d}",
                    attempt_index=0,
                    resource_attributes={"team": "search" if t % 3 else "infra"},
                    treatment=features.Treatment(
                        agent_type="agent-a" if a % 2 else "agent-b", model_id="m1"
                    ),
                    behavior=features.Behavior(
                        turn_count=int(rng.integers(5, 40)),
                        tool_category_sequence=CATEGORIES,
                        tool_sequence=["bash"] * len(CATEGORIES),
                        touched_files=["src/x.py"],
                        step_files=[[], ["src/x.py"], ["README"], ["src/x.py"], [], [], [], [], []],
                        step_changed_files=[[], [], [], ["src/x.py"], [], [], ["src/x.py"], [], []],
                    ),
                    verification=features.Verification(
                        reward=0.0 if failed else 1.0,
                        patch_outcome_label="no_effect_patch" if failed else "correct_patch",
                    ),
                )
            )
            label = ["none", "short", "long"][int(rng.integers(0, 3))]
            results += [
                JobResult(attempt_id, "memory_drift", "1", {"match": JudgeField(
                    value=bool(drift), explanation=f"step {a} says so", model="tiny",
                    citations=["abc"])}),
                JobResult(attempt_id, "planning", "1", {"label": _value(label)}),
                JobResult(attempt_id, "confidence", "1", {"score": _value(float(rng.random()))}),
            ]  # fmt: skip
            if failed:
                results.append(_fws_result(attempt_id))
                clusters[attempt_id] = "c1" if drift else "c2"
    merged = merge_results(records, results)
    out = []
    for record in merged:
        cid = clusters.get(record.attempt_id)
        if cid is not None:
            record = msgspec.structs.replace(
                record, cluster_id=cid, cluster_name="drift" if cid == "c1" else "other"
            )
        out.append(msgspec.to_builtins(record))
    return out


def test_judge_fields_become_rows_without_new_code() -> None:
    result = report.build(report.from_records(judged_records()), report.Options(replicates=300))
    beh = result.result("behaviour")
    assert beh is not None
    signals = {r["signal"] for r in beh["rows"] + beh["numeric"]}
    assert "judge.memory_drift.match" in signals
    assert {"judge.planning.label = none", "judge.planning.label = long"} <= signals
    assert "judge.confidence.score" in signals
    # Only values are rows: not the judge's bookkeeping (agreement, chunks, seed, temperature,
    # model, ...), not the first wrong step or clusters, not the resource attributes.
    judge_rows = {s.split(" = ")[0] for s in signals if s.startswith("judge.")}
    assert judge_rows == {
        "judge.memory_drift.match", "judge.planning.label", "judge.confidence.score",
    }  # fmt: skip
    assert not any("cluster" in s or "resource" in s for s in signals)
    drift = next(r for r in beh["rows"] if r["signal"] == "judge.memory_drift.match")
    assert drift["prevalence_failed"] > drift["prevalence_resolved"]
    assert drift["ratio"]["value"] == pytest.approx(
        drift["prevalence_failed"] / drift["prevalence_resolved"]
    )


def test_the_report_does_not_depend_on_the_order_rows_arrive_in() -> None:
    """Sources return the same attempts in different orders (a JSON lines file in write order,
    ClickHouse by attempt id): every section, to the last bit of every float (sums, standard
    deviations, the conditional logit's fit), is the same whatever the order."""
    records = judged_records(40, 3)
    options = report.Options(replicates=200)

    def sections(rows: list[dict]) -> dict:
        built = report.build(report.from_records(rows, options=options), options)
        return dict(built.to_json()["sections"])

    expected = sections(records)
    assert expected["behaviour"]["numeric"], "no numeric row: the test would show nothing"
    rng = np.random.default_rng(3)
    for order in (records[::-1], *([records[i] for i in rng.permutation(len(records))]
                                   for _ in range(3))):  # fmt: skip
        got = sections(order)
        for name in expected:
            assert got[name] == expected[name], name


def test_first_wrong_step_heatmap_and_clusters() -> None:
    records = judged_records()
    result = report.build(report.from_records(records), report.Options(replicates=200))
    origins = result.result("origins")
    failed = sum(r["verification"]["reward"] == 0 for r in records)
    assert origins is not None and origins["placed"] == failed == origins["labelled_failed"]
    assert origins["baseline_attempts"] == failed
    # What the judge wrote: S7 of 18 steps, relative position 7/17 (bin 4), phase implement.
    phases = origins["phases"]
    heat = np.array(origins["heatmap"])
    assert heat[phases.index("implement"), 4] == failed and heat.sum() == failed
    assert origins["categories"] == {"wrong_edit": failed}
    # The baseline: each attempt's label on a uniformly random one of its 18 steps.
    baseline = np.array(origins["baseline"])
    assert baseline.sum() == pytest.approx(failed)
    counts = {"unrecorded": 10, "explore": 1, "localize": 2, "implement": 2, "verify": 3}
    assert origins["baseline_by_phase"] == pytest.approx(
        {p: failed * k / 18 for p, k in counts.items()}
    )
    # Steps 0 and 1 (relative positions 0 and 1/17) fall in the first tenth.
    assert baseline[phases.index("unrecorded"), 0] == pytest.approx(failed / 18)
    assert baseline[phases.index("explore"), 0] == pytest.approx(failed / 18)
    assert origins["by_position"][4] == failed
    clusters = result.result("clusters")
    assert clusters is not None
    sizes = {c["id"]: c["size"] for c in clusters["clusters"]}
    assert sizes == {
        "c1": sum(r.get("cluster_id") == "c1" for r in records),
        "c2": sum(r.get("cluster_id") == "c2" for r in records),
    }
    assert {c["id"]: c["name"] for c in clusters["clusters"]} == {"c1": "drift", "c2": "other"}
    assert all(c["resolved"]["k"] == 0 for c in clusters["clusters"])
    # The same tasks' other attempts, counted independently.
    for c in clusters["clusters"]:
        members = {r["attempt_id"] for r in records if r.get("cluster_id") == c["id"]}
        tasks = {r["task_id"] for r in records if r["attempt_id"] in members}
        others = [r for r in records if r["task_id"] in tasks and r["attempt_id"] not in members]
        assert c["tasks"] == len(tasks)
        assert c["tasks_resolved_elsewhere"]["n"] == len(others)
        assert c["tasks_resolved_elsewhere"]["k"] == sum(
            r["verification"]["reward"] == 1 for r in others
        )
        assert sum(c["arms"].values()) == c["size"]


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
    row = next(r for r in beh["rows"] if r["signal"] == "judge.memory_drift.match")
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
    assert (
        f"first wrong step: S7, at 41% of the steps, implement (wrong_edit): bad [span {FWS_SPAN}]"
        in out
    )
    assert "memory_drift.match=" in out and "cluster: c" in out
    # From the record alone the step cannot be placed among the tool calls (it counts turns
    # too): the timeline says so instead of marking a tool call.
    assert "FIRST WRONG STEP" not in out and "give the trace files" in out
    step3 = next(line for line in out.splitlines() if line.strip().startswith("3 "))
    assert "edit" in step3 and "implement" in step3
    by_task = _cli("show", "task-001", str(path))
    assert by_task.stdout.count("attempt att-001-") == 2
    assert _cli("show", "nothing-like-it", str(path)).returncode == 1


def test_filters_parquet_and_revisions(tmp_path: Path) -> None:
    from agentsignals import features

    records = [
        msgspec.convert(
            {k: v for k, v in r.items() if k not in ("judge", "cluster_id", "cluster_name")},
            features.AttemptRecord,
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
    with pytest.raises(report.build.__globals__["FilterError"], match="carry: team"):
        report.build(b, report.Options(filters={"tag": ["x=1"]}))
    for frame in (a, b):
        infra = report.build(frame, report.Options(filters={"tag": ["team=inf*"]}))
        assert infra.context.n == sum(r.resource_attributes == {"team": "infra"} for r in records)
    assert FWS_ROW not in a.columns
    assert not math.isnan(float(b.columns["verification.reward"][0]))
