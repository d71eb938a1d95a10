"""Judge calibration files: how often a judge flag agrees with human labels.

Format (JSON, documented in docs/report.md)::

    {
      "format": "agentsignals.judge_calibration/v1",
      "judge": {"model": "qwen2.5-0.5b-instruct", "rubric_version": "1"},   # optional, shown
      "fields": {
        "judge.memory_drift.value": {"tp": 41, "fn": 9, "tn": 88, "fp": 12},
        "judge.validation.value": {"sensitivity": 0.9, "specificity": 0.8,
                                   "positives": 50, "negatives": 100}
      }
    }

A field is named as the report names the column; a name that is a prefix of a column also
matches it (`judge.memory_drift` matches `judge.memory_drift.value`). Counts are best: the
report then carries the calibration set's own uncertainty into the corrected interval. Rates
with `positives`/`negatives` are turned into counts; rates without them are used as exact and the
report says so.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "agentsignals.judge_calibration/v1"


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
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise CalibrationError(f"{p}: expected an object with a 'fields' object ({FORMAT})")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise CalibrationError(f"{p}: format {fmt!r} is not {FORMAT!r}")
    fields: dict[str, FlagCalibration] = {}
    for name, spec in data["fields"].items():
        fields[name] = _flag(p, name, spec)
    judge = data.get("judge") if isinstance(data.get("judge"), dict) else {}
    return Calibration(fields, judge or {}, str(p))


def _flag(path: Path, name: str, spec: Any) -> FlagCalibration:
    if not isinstance(spec, dict):
        raise CalibrationError(f"{path}: field {name!r}: expected an object")
    if all(k in spec for k in ("tp", "fn", "tn", "fp")):
        try:
            tp, fn, tn, fp = (int(spec[k]) for k in ("tp", "fn", "tn", "fp"))
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: field {name!r}: counts must be integers") from exc
        if min(tp, fn, tn, fp) < 0 or tp + fn == 0 or tn + fp == 0:
            raise CalibrationError(
                f"{path}: field {name!r}: needs labelled positives and negatives"
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
