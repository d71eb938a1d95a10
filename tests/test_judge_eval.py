"""Measuring the judge: Wilson intervals, the flag calibration file the report reads, and the
Who&When loader and baselines on the real files."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import msgspec
import pytest

from agentsignals._features.record import AttemptRecord, JudgeField
from agentsignals._judge.evaluate import (
    CALIBRATION_FORMAT,
    Prediction,
    calibrate_flags,
    load_labels,
    load_who_and_when,
    position_baseline,
    random_baseline,
    score_predictions,
    wilson,
)
from judge_support import run_cli


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
     (1, 29, 0.0061, 0.1718)],
)  # fmt: skip
def test_wilson_matches_the_published_values(
    successes: int, n: int, low: float, high: float
) -> None:
    got = wilson(successes, n)
    assert got[0] == pytest.approx(low, abs=5e-5) and got[1] == pytest.approx(high, abs=5e-5)


def test_wilson_matches_scipy_everywhere() -> None:
    from scipy.stats import binomtest

    for n in (1, 2, 7, 30, 101):
        for k in range(n + 1):
            ci = binomtest(k, n).proportion_ci(method="wilson")
            assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert wilson(0, 0) == (None, None)


def _judged(attempt_id: str, value: bool | None, status: str = "ok") -> AttemptRecord:
    field = JudgeField(value=value, status=status, model="m", rubric_version="1")
    return AttemptRecord(attempt_id=attempt_id, judge={"memory_drift": {"match": field}})


def test_calibration_counts_and_rates(tmp_path: Path) -> None:
    # judge / human: 3 TP, 1 FP, 4 TN, 2 FN, plus one the judge could not judge and one it
    # never saw: those are counted apart, never as negatives.
    pairs = [(True, True)] * 3 + [(True, False)] + [(False, False)] * 4 + [(False, True)] * 2
    records = [_judged(f"a{i}", judge) for i, (judge, _) in enumerate(pairs)]
    records.append(_judged("unjudged", None, "could_not_judge"))
    labels_path = tmp_path / "labels.jsonl"
    rows = [{"attempt_id": f"a{i}", "labels": {"judge.memory_drift.match": human}}
            for i, (_, human) in enumerate(pairs)]  # fmt: skip
    rows += [
        {"attempt_id": "unjudged", "labels": {"memory_drift.match": True}},
        {"attempt_id": "absent", "labels": {"memory_drift.match": False}},
    ]
    labels_path.write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + "not json\n"
        + json.dumps({"attempt_id": "x", "labels": {"memory_drift.match": "perhaps"}}) + "\n"
    )  # fmt: skip
    labels, problems = load_labels(labels_path)
    assert problems == [
        f"{labels_path}:13: not JSON (Expecting value: line 1 column 1 (char 0))",
        f"{labels_path}:14: memory_drift.match='perhaps' is not a flag label",
    ]
    document = calibrate_flags(records, labels)
    flag = document["flags"]["judge.memory_drift.match"]
    assert (flag["tp"], flag["fp"], flag["tn"], flag["fn"]) == (3, 1, 4, 2)
    assert flag["n"] == 10 and flag["could_not_judge"] == 1 and flag["not_judged"] == 1
    assert flag["sensitivity"]["estimate"] == pytest.approx(3 / 5)
    assert flag["specificity"]["estimate"] == pytest.approx(4 / 5)
    assert flag["precision"]["estimate"] == pytest.approx(3 / 4)
    assert flag["recall"] == flag["sensitivity"]
    assert (flag["sensitivity"]["low"], flag["sensitivity"]["high"]) == pytest.approx(wilson(3, 5))
    assert flag["rubric_versions"] == ["1"] and flag["models"] == ["m"]

    # The command writes it where the report looks by default.
    records_path = tmp_path / "judged.jsonl"
    records_path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    done = run_cli(
        "judge", "eval", "--labels", str(labels_path), "--records", str(records_path),
        env={"AGENTSIGNALS_OUTPUT_DIR": str(tmp_path / "store")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "store" / "judge" / "calibration.json").read_text())
    assert written["format"] == CALIBRATION_FORMAT
    assert written["flags"] == document["flags"]
    assert "sensitivity 0.60 specificity 0.80" in done.stderr


WHO = Path("judge") / "who-and-when" / "Algorithm-Generated"


def test_who_and_when_logs_load_as_transcripts_with_their_labels(shared_data: Path) -> None:
    folder = shared_data / WHO
    logs = load_who_and_when([folder])
    assert len(logs) == 126
    for log in logs:
        raw = json.loads((folder / log.name).read_text())
        assert len(log.transcript.steps) == len(raw["history"])
        assert log.mistake_step == int(raw["mistake_step"])
        assert log.mistake_agent == raw["mistake_agent"]
        assert log.transcript.task == raw["question"]
        assert [s.actor for s in log.transcript.steps] == [m["name"] for m in raw["history"]]
    assert [g.name for g in logs[:3]] == ["1.json", "2.json", "3.json"]


def test_baselines_on_the_real_labels(shared_data: Path) -> None:
    logs = load_who_and_when([shared_data / WHO])
    raws = [json.loads((shared_data / WHO / g.name).read_text()) for g in logs]
    steps = [len(r["history"]) for r in raws]
    gold = [int(r["mistake_step"]) for r in raws]
    # Random: the expected exact-step accuracy is the mean of 1/n.
    expected = sum(1 / n for n in steps) / len(steps)
    assert random_baseline(logs)["step_accuracy"]["estimate"] == pytest.approx(expected)
    # Position only, recomputed here: each log gets the median relative position of the others.
    rel = [g / (n - 1) for g, n in zip(gold, steps, strict=True)]
    hits = 0
    for i, (n, g) in enumerate(zip(steps, gold, strict=True)):
        pos = statistics.median(rel[:i] + rel[i + 1 :])
        hits += round(pos * (n - 1)) == g
    scores = position_baseline(logs)
    assert scores.exact.successes == hits and scores.logs == 126
    # Who&When's decisive steps sit early (the research note: median relative position 0.33).
    assert 0.2 <= scores.extra["median_relative_position"] <= 0.4


def test_scores_count_an_unjudged_log_as_wrong() -> None:
    predictions = [
        Prediction("a", 10, 3, "x", 3, "x"),
        Prediction("b", 10, 3, "x", 5, "y"),
        Prediction("c", 10, 3, "x", None, None),
        Prediction("d", 10, None, None, 1, "x"),  # no label: not scored
    ]
    scores = score_predictions("m", predictions)
    assert scores.logs == 3 and scores.judged == 2
    assert (scores.exact.successes, scores.within1.successes, scores.within3.successes) == (1, 1, 2)
    assert scores.agent.successes == 1
    assert scores.mean_distance == 1.0
