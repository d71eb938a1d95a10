"""Judge calibration files: how often a judge flag agrees with human labels.

Two formats are read. The judge's own, written by `agentsignals judge eval --labels ...
--records ...` (`<output dir>/judge/calibration.json`, docs/judge.md)::

    {
      "format": "agentsignals.judge.calibration/1",
      "judge": {"records": "judged.jsonl"},
      "labelled_attempts": 120,
      "flags": {
        "judge.memory_drift.match": {"rubric": "memory_drift", "field": "match",
                                     "models": ["qwen3-coder"], "rubric_versions": ["1"],
                                     "n": 110, "tp": 30, "fp": 8, "tn": 64, "fn": 8, ...}
      }
    }

and a hand-written one (documented in docs/report.md)::

    {
      "format": "agentsignals.judge_calibration/v1",
      "judge": {"model": "qwen2.5-0.5b-instruct", "rubric_version": "1"},   # optional, shown
      "fields": {
        "judge.memory_drift.match": {"tp": 41, "fn": 9, "tn": 88, "fp": 12},
        "judge.validation.match": {"sensitivity": 0.9, "specificity": 0.8,
                                   "positives": 50, "negatives": 100}
      }
    }

A field is named as the report names the column (`judge.<rubric>.<field>`); a name that is a
prefix of a column also matches it (`judge.memory_drift` matches `judge.memory_drift.match`).
Counts are best: the report then carries the calibration set's own uncertainty into the
corrected interval. Rates with `positives`/`negatives` are turned into counts; rates without
them are used as exact and the report says so. A flag whose labels have no positive or no
negative cannot correct anything: it is listed in `unusable` with the reason.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "agentsignals.judge_calibration/v1"
JUDGE_FORMAT = "agentsignals.judge.calibration/1"


@dataclass(frozen=True)
class FlagCalibration:
    sensitivity: float
    specificity: float
    positives: int | None  # labelled positives (tp + fn); None when only rates were given
    negatives: int | None

    @property
    def tp(self) -> int | None:
        return None if self.positives is None else round(self.sensitivity * self.positives)

    @property
    def tn(self) -> int | None:
        return None if self.negatives is None else round(self.specificity * self.negatives)


@dataclass(frozen=True)
class Calibration:
    fields: dict[str, FlagCalibration]
    judge: dict[str, Any]
    source: str
    format: str = FORMAT
    # Flags named in the file that cannot correct anything, with the reason.
    unusable: dict[str, str] = field(default_factory=dict)
    # Per flag, the judge models and rubric versions the labels were compared with (the
    # judge's format says so; empty otherwise).
    models: dict[str, list[str]] = field(default_factory=dict)

    def for_column(self, column: str) -> FlagCalibration | None:
        if column in self.fields:
            return self.fields[column]
        for name, cal in self.fields.items():
            if column.startswith(name + "."):
                return cal
        return None


class CalibrationError(ValueError):
    pass


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalibrationError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{p}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CalibrationError(f"{p}: expected a JSON object ({JUDGE_FORMAT} or {FORMAT})")
    fmt = data.get("format", JUDGE_FORMAT if "flags" in data else FORMAT)
    key = {JUDGE_FORMAT: "flags", FORMAT: "fields"}.get(fmt)
    if key is None:
        raise CalibrationError(f"{p}: format {fmt!r} is not {JUDGE_FORMAT!r} or {FORMAT!r}")
    if not isinstance(data.get(key), dict):
        raise CalibrationError(f"{p}: expected an object with a {key!r} object ({fmt})")
    fields: dict[str, FlagCalibration] = {}
    unusable: dict[str, str] = {}
    models: dict[str, list[str]] = {}
    for name, spec in data[key].items():
        try:
            fields[name] = _flag(p, name, spec)
        except _Unusable as exc:
            unusable[name] = str(exc)
        if isinstance(spec, dict) and isinstance(spec.get("models"), list):
            models[name] = [str(m) for m in spec["models"]]
    judge = data.get("judge") if isinstance(data.get("judge"), dict) else {}
    return Calibration(fields, judge or {}, str(p), fmt, unusable, models)


class _Unusable(Exception):
    """A well-formed flag that cannot correct a prevalence."""


def _flag(path: Path, name: str, spec: Any) -> FlagCalibration:
    if not isinstance(spec, dict):
        raise CalibrationError(f"{path}: field {name!r}: expected an object")
    if all(k in spec for k in ("tp", "fn", "tn", "fp")):
        try:
            tp, fn, tn, fp = (int(spec[k]) for k in ("tp", "fn", "tn", "fp"))
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: field {name!r}: counts must be integers") from exc
        if min(tp, fn, tn, fp) < 0:
            raise CalibrationError(f"{path}: field {name!r}: counts must not be negative")
        if tp + fn == 0 or tn + fp == 0:
            raise _Unusable(
                f"its labels have {tp + fn} positives and {tn + fp} negatives "
                "(sensitivity and specificity need both)"
            )
        return FlagCalibration(tp / (tp + fn), tn / (tn + fp), tp + fn, tn + fp)
    try:
        se = float(spec["sensitivity"])
        sp = float(spec["specificity"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(
            f"{path}: field {name!r}: give tp/fn/tn/fp, or sensitivity and specificity"
        ) from exc
    if not (0 <= se <= 1 and 0 <= sp <= 1) or math.isnan(se) or math.isnan(sp):
        raise CalibrationError(f"{path}: field {name!r}: rates must be in [0, 1]")
    pos = spec.get("positives")
    neg = spec.get("negatives")
    return FlagCalibration(
        se, sp, int(pos) if pos is not None else None, int(neg) if neg is not None else None
    )
