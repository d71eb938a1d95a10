"""Measuring the judge against labels.

Binary flags against human labels: precision, recall (= sensitivity), sensitivity and
specificity, each with a Wilson 95% interval, written as a small JSON file (the calibration file,
format ``agentsignals.judge.calibration/1``, documented in docs/judge.md) that the report reads
to correct prevalence for the judge's errors (Rogan-Gladen).

First wrong step against the Who&When format (Zhang et al., ICML 2025): agent accuracy, exact
step accuracy, accuracy within +-1 and +-3 steps and mean step distance, beside the random and
position-only baselines computed on the same logs.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agentsignals._features.record import AttemptRecord
from agentsignals._judge.attribution import attribute
from agentsignals._judge.engine import JobResult, Judge, Usage
from agentsignals._judge.transcript import DEFAULT_MAX_PART_CHARS, Step, Transcript, clip

__all__ = [
    "CALIBRATION_FORMAT",
    "Rate",
    "WhoAndWhenLog",
    "calibrate_flags",
    "load_who_and_when",
    "score_who_and_when",
    "wilson",
]

CALIBRATION_FORMAT: Final = "agentsignals.judge.calibration/1"
Z95: Final = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for successes/n (None, None when n is 0)."""
    if n <= 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson 95% interval."""

    successes: int
    n: int

    @property
    def estimate(self) -> float | None:
        return self.successes / self.n if self.n else None

    def as_dict(self) -> dict[str, Any]:
        low, high = wilson(self.successes, self.n)
        return {
            "estimate": self.estimate,
            "low": low,
            "high": high,
            "successes": self.successes,
            "n": self.n,
            "method": "wilson",
            "confidence": 0.95,
        }


# ------------------------------------------------------------------------------ flags


def _label_value(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "match", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "no match", "0"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def load_labels(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, bool]], list[str]]:
    """Human labels: JSON lines ``{"attempt_id": ..., "labels": {"memory_drift.match": true}}``
    (``judge.`` prefixes allowed). Returns attempt id -> flag -> label, and problems."""
    labels: dict[str, dict[str, bool]] = {}
    problems: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                problems.append(f"{path}:{line_no}: not JSON ({exc})")
                continue
            if not isinstance(row, dict) or not isinstance(row.get("attempt_id"), str):
                problems.append(f"{path}:{line_no}: needs an attempt_id and labels")
                continue
            raw = row.get("labels")
            if not isinstance(raw, dict):
                problems.append(f"{path}:{line_no}: labels must be an object")
                continue
            for name, value in raw.items():
                flag = str(name).removeprefix("judge.")
                label = _label_value(value)
                if label is None or flag.count(".") != 1:
                    problems.append(f"{path}:{line_no}: {name}={value!r} is not a flag label")
                    continue
                labels.setdefault(row["attempt_id"], {})[flag] = label
    return labels, problems


def calibrate_flags(
    records: Iterable[AttemptRecord],
    labels: dict[str, dict[str, bool]],
    *,
    judge_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The calibration document: per flag the confusion counts and the rates with intervals."""
    by_id = {r.attempt_id: r for r in records}
    flags: dict[str, dict[str, Any]] = {}
    names = sorted({flag for row in labels.values() for flag in row})
    for flag in names:
        rubric, field_name = flag.split(".", 1)
        tp = fp = tn = fn = 0
        unjudged = 0
        missing = 0
        versions: set[str] = set()
        models: set[str] = set()
        for attempt_id, row in labels.items():
            if flag not in row:
                continue
            record = by_id.get(attempt_id)
            judged = ((record.judge or {}).get(rubric) or {}).get(field_name) if record else None
            if judged is None:
                missing += 1
                continue
            if judged.status != "ok" or not isinstance(judged.value, bool):
                unjudged += 1
                continue
            if judged.rubric_version:
                versions.add(judged.rubric_version)
            if judged.model:
                models.add(judged.model)
            truth = row[flag]
            if judged.value and truth:
                tp += 1
            elif judged.value and not truth:
                fp += 1
            elif not judged.value and truth:
                fn += 1
            else:
                tn += 1
        flags[f"judge.{flag}"] = {
            "rubric": rubric,
            "field": field_name,
            "rubric_versions": sorted(versions),
            "models": sorted(models),
            "n": tp + fp + tn + fn,
            "tp": tp,
            "fp": fp,
            "tn": tn,
            "fn": fn,
            "could_not_judge": unjudged,
            "not_judged": missing,
            "sensitivity": Rate(tp, tp + fn).as_dict(),
            "specificity": Rate(tn, tn + fp).as_dict(),
            "precision": Rate(tp, tp + fp).as_dict(),
            "recall": Rate(tp, tp + fn).as_dict(),
            "prevalence_labels": Rate(tp + fn, tp + fp + tn + fn).as_dict(),
            "prevalence_judge": Rate(tp + fp, tp + fp + tn + fn).as_dict(),
        }
    return {
        "format": CALIBRATION_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "judge": judge_info or {},
        "labelled_attempts": len(labels),
        "flags": flags,
    }


# ------------------------------------------------------------------------- Who&When


@dataclass
class WhoAndWhenLog:
    """One Who&When log as a transcript with its labels."""

    name: str
    transcript: Transcript
    mistake_agent: str | None
    mistake_step: int | None
    ground_truth: str | None


def load_who_and_when(
    paths: Sequence[str | os.PathLike[str]],
    *,
    max_part_chars: int = DEFAULT_MAX_PART_CHARS,
    problems: list[str] | None = None,
) -> list[WhoAndWhenLog]:
    """Who&When logs (files or folders of `*.json`): each message of `history` is one step,
    its `name` the acting agent; the question is the task. Sorted by file name (numeric)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")

    def order(p: Path) -> tuple[int, str]:
        return (int(p.stem), p.name) if p.stem.isdigit() else (1 << 30, p.name)

    out: list[WhoAndWhenLog] = []
    for path in sorted(files, key=order):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            history = data["history"]
            if not isinstance(history, list):
                raise TypeError("history is not a list")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if problems is not None:
                problems.append(f"{path}: not a Who&When log ({exc})")
            continue
        steps: list[Step] = []
        for message in history:
            # One step per history entry, so step numbers are the labels' indexes.
            if not isinstance(message, dict):
                message = {"content": str(message)}
            actor = str(message.get("name") or message.get("role") or "agent")
            content = str(message.get("content") or "")
            steps.append(
                Step(
                    index=len(steps),
                    span_id=None,
                    kind="message",
                    title=f"{actor} ({message.get('role', '?')})",
                    body=clip(content.strip(), max_part_chars),
                    digest=f"S{len(steps)} {actor}: {' '.join(content.split())[:100]}",
                    actor=actor,
                )
            )
        step_label = data.get("mistake_step")
        try:
            mistake_step = int(step_label) if step_label is not None else None
        except (TypeError, ValueError):
            mistake_step = None
        out.append(
            WhoAndWhenLog(
                name=path.name,
                transcript=Transcript(
                    attempt_id=f"who-and-when/{path.stem}",
                    steps=steps,
                    task=str(data.get("question") or ""),
                    task_id=str(data.get("question_ID") or path.stem),
                    source="who_and_when",
                ),
                mistake_agent=data.get("mistake_agent"),
                mistake_step=mistake_step,
                ground_truth=None
                if data.get("ground_truth") is None
                else str(data["ground_truth"]),
            )
        )
    return out


@dataclass
class Prediction:
    log: str
    steps: int
    gold_step: int | None
    gold_agent: str | None
    step: int | None
    agent: str | None
    category: str | None = None
    reason: str | None = None


@dataclass
class StepScores:
    """Accuracy of step predictions against labels, with intervals."""

    method: str
    logs: int
    judged: int
    agent: Rate
    exact: Rate
    within1: Rate
    within3: Rate
    mean_distance: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "logs": self.logs,
            "judged": self.judged,
            "agent_accuracy": self.agent.as_dict(),
            "step_accuracy": self.exact.as_dict(),
            "within_1": self.within1.as_dict(),
            "within_3": self.within3.as_dict(),
            "mean_step_distance": self.mean_distance,
            **self.extra,
        }


def score_predictions(method: str, predictions: Sequence[Prediction]) -> StepScores:
    """Scores over the logs that have labels; an unjudged log counts as wrong."""
    labelled = [p for p in predictions if p.gold_step is not None]
    n = len(labelled)
    judged = [p for p in labelled if p.step is not None]
    distances = [abs((p.step or 0) - (p.gold_step or 0)) for p in judged]
    exact = sum(1 for d in distances if d == 0)
    w1 = sum(1 for d in distances if d <= 1)
    w3 = sum(1 for d in distances if d <= 3)
    agent_ok = sum(1 for p in labelled if p.agent is not None and p.agent == p.gold_agent)
    return StepScores(
        method=method,
        logs=n,
        judged=len(judged),
        agent=Rate(agent_ok, n),
        exact=Rate(exact, n),
        within1=Rate(w1, n),
        within3=Rate(w3, n),
        mean_distance=round(statistics.fmean(distances), 3) if distances else None,
    )


def random_baseline(logs: Sequence[WhoAndWhenLog]) -> dict[str, Any]:
    """Expected scores of a uniformly random step (and agent among the log's agents): exact
    expectations, no sampling noise."""
    labelled = [g for g in logs if g.mistake_step is not None and g.transcript.steps]
    if not labelled:
        return {"method": "random (expected)", "logs": 0}
    exact = w1 = w3 = agent = dist = 0.0
    for g in labelled:
        n = len(g.transcript.steps)
        gold = g.mistake_step or 0
        exact += 1 / n
        w1 += sum(1 for i in range(n) if abs(i - gold) <= 1) / n
        w3 += sum(1 for i in range(n) if abs(i - gold) <= 3) / n
        dist += sum(abs(i - gold) for i in range(n)) / n
        actors = g.transcript.actors
        agent += (1 / len(actors)) if g.mistake_agent in actors else 0.0
    k = len(labelled)
    return {
        "method": "random (expected)",
        "logs": k,
        "agent_accuracy": {"estimate": agent / k},
        "step_accuracy": {"estimate": exact / k},
        "within_1": {"estimate": w1 / k},
        "within_3": {"estimate": w3 / k},
        "mean_step_distance": round(dist / k, 3),
    }


def position_baseline(logs: Sequence[WhoAndWhenLog]) -> StepScores:
    """Always the same relative position: the median relative position of the *other* logs'
    labels (leave one out, so no log sees its own label), and the agent at that step."""
    labelled = [g for g in logs if g.mistake_step is not None and len(g.transcript.steps) > 0]
    rel = [(g.mistake_step or 0) / max(1, len(g.transcript.steps) - 1) for g in labelled]
    predictions: list[Prediction] = []
    for i, g in enumerate(labelled):
        others = rel[:i] + rel[i + 1 :]
        position = statistics.median(others) if others else 0.0
        n = len(g.transcript.steps)
        step = min(n - 1, max(0, round(position * (n - 1))))
        predictions.append(
            Prediction(
                log=g.name,
                steps=n,
                gold_step=g.mistake_step,
                gold_agent=g.mistake_agent,
                step=step,
                agent=g.transcript.steps[step].actor,
            )
        )
    scores = score_predictions("position only (leave-one-out median)", predictions)
    scores.extra["median_relative_position"] = round(statistics.median(rel), 4) if rel else None
    return scores


def judge_who_and_when(
    judge: Judge,
    logs: Sequence[WhoAndWhenLog],
    *,
    mode: str,
    with_ground_truth: bool = False,
    progress: Callable[[int, int, Usage], None] | None = None,
) -> tuple[list[Prediction], list[JobResult]]:
    """Run the first-wrong-step judge on Who&When logs (the model never sees the labels)."""
    from functools import partial

    from agentsignals._judge.attribution import RUBRIC_ID, VERSION
    from agentsignals._judge.run import FWS_FIELDS, safe_job

    jobs = [
        safe_job(
            partial(
                attribute,
                judge,
                g.transcript,
                mode=mode,
                ground_truth=g.ground_truth if with_ground_truth else None,
            ),
            g.transcript.attempt_id,
            RUBRIC_ID,
            VERSION,
            [*FWS_FIELDS, "agent"],
        )
        for g in logs
    ]
    results = judge.run(jobs, progress=progress)
    by_attempt = {r.attempt_id: r for r in results}
    predictions = []
    for g in logs:
        result = by_attempt.get(g.transcript.attempt_id)
        fields = result.fields if result is not None else {}
        index = fields.get("index")
        agent = fields.get("agent")
        step = index.value if index is not None and index.status == "ok" else None
        named = agent.value if agent is not None and isinstance(agent.value, str) else None
        if named is None and isinstance(step, int) and agent is None:
            named = g.transcript.steps[step].actor  # one agent only: the step's
        predictions.append(
            Prediction(
                log=g.name,
                steps=len(g.transcript.steps),
                gold_step=g.mistake_step,
                gold_agent=g.mistake_agent,
                step=step if isinstance(step, int) else None,
                agent=named,
                category=_value(fields.get("category")),
                reason=_value(fields.get("reason")),
            )
        )
    return predictions, results


def _value(field: Any) -> str | None:
    return field.value if field is not None and isinstance(field.value, str) else None


def score_who_and_when(
    logs: Sequence[WhoAndWhenLog], runs: Mapping[str, Sequence[Prediction]]
) -> dict[str, Any]:
    """The evaluation document: each judged method beside the baselines on the same logs."""
    methods = [score_predictions(name, preds).as_dict() for name, preds in runs.items()]
    return {
        "dataset": "who-and-when",
        "logs": len(logs),
        "methods": methods,
        "baselines": [random_baseline(logs), position_baseline(logs).as_dict()],
    }


def markdown_table(document: dict[str, Any]) -> str:
    """The evaluation as a Markdown table (percentages, Wilson 95% intervals in brackets)."""

    def pct(cell: Any) -> str:
        if not isinstance(cell, dict) or cell.get("estimate") is None:
            return "-"
        text = f"{100 * cell['estimate']:.1f}"
        if cell.get("low") is not None:
            text += f" [{100 * cell['low']:.0f}-{100 * cell['high']:.0f}]"
        return text

    rows = [
        "| method | logs judged | agent acc. | step acc. | within ±1 | within ±3 | mean distance |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in [*document.get("methods", []), *document.get("baselines", [])]:
        judged = f"{item.get('judged', item.get('logs', '-'))}/{item.get('logs', '-')}"
        distance = item.get("mean_step_distance")
        rows.append(
            f"| {item['method']} | {judged} | {pct(item.get('agent_accuracy'))} | "
            f"{pct(item.get('step_accuracy'))} | {pct(item.get('within_1'))} | "
            f"{pct(item.get('within_3'))} | {'-' if distance is None else distance} |"
        )
    return "\n".join(rows)
