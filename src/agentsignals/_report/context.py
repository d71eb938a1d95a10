"""What every section reads: the filtered columns, the outcome of each attempt, its arm
(agent x model x dataset), its task, and the options."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentsignals._report.calibration import Calibration
from agentsignals._report.frame import BOOL, NUM, STR, TIMELINE, Frame

RESOLVED = "resolved"
FAILED = "failed"
INFRA = "infra_failure"
UNVERIFIED = "unverified"

# unverifiable_reason values that are the harness's failure, not the agent's: such attempts are
# counted apart and left out of every outcome statistic.
INFRA_REASONS = frozenset(
    {
        "infra_failure",
        "harness_error",
        "install_failed",
        "reset_failed",
        "timeout",
        "no_logs",
        "incomplete",
    }
)

ARM_FIELDS = ("treatment.agent_type", "treatment.model_id", "treatment.dataset")
ARM_ALIASES = {"agent": ARM_FIELDS[0], "model": ARM_FIELDS[1], "dataset": ARM_FIELDS[2]}

# Fields that are never a behaviour row: identity and bookkeeping, the outcome itself (a row
# must not be the label it is compared with), the treatment (the arms), and what only failed
# attempts carry (first wrong step, clusters: their own sections).
EXCLUDE_PATTERNS = (
    "schema_version",
    "trial_id",
    "task_id",
    "attempt_id",
    "attempt_index",
    "parent_attempt_id",
    "run_id",
    "trace_id",
    "span_id",
    "service_name",
    "complete",
    "revision",
    "partial",
    "span_count",
    "started_at_ns",
    "ended_at_ns",
    "treatment.*",
    "infra.attempt_index",
    "verification.*",
    "judge.first_wrong_step.*",
    "cluster_id",
    "*cluster*",
    "_*",
    "*.explanation",
    "*.reason",
    "*.model",
    "*.rubric_version",
    "*.samples",
    "*.status",
    "*.span_id",
    "*.citations",
    "tags",
    "*.tags",
)
# ...except the agent's own test runs, which are behaviour.
INCLUDE_ANYWAY = ("verification.agent_*",)


@dataclass
class Options:
    attempts: str = "first"  # behaviour population: first | retries | all
    strata: str = "task"  # within-task strata: task | task+arm
    replicates: int = 2000
    seed: int = 0
    min_per_outcome: int = 5
    max_levels: int = 12
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_embedded: int = 10_000
    title: str = "agentsignals report"
    # The fields whose values make an arm ("agent", "model", "dataset" or any column).
    by: tuple[str, ...] = ARM_FIELDS
    calibration: Calibration | None = None
    filters: dict[str, Any] = field(default_factory=dict)


class Context:
    def __init__(self, frame: Frame, options: Options) -> None:
        self.frame = frame
        self.options = options
        n = frame.n
        self.n = n
        reward = self.num("verification.reward")
        label = self.text("verification.patch_outcome_label")
        reason = self.text("verification.unverifiable_reason")
        infra = np.array([r in INFRA_REASONS for r in reason], dtype=bool)
        y = np.full(n, np.nan)
        has_reward = ~np.isnan(reward)
        y[has_reward] = (reward[has_reward] >= 1.0 - 1e-9).astype(float)
        by_label = ~has_reward & np.array([lab is not None for lab in label], dtype=bool)
        y[by_label] = np.array([lab == "correct_patch" for lab in label[by_label]], dtype=float)
        y[infra] = np.nan
        self.y = y
        status = np.full(n, UNVERIFIED, dtype=object)
        status[y == 1] = RESOLVED
        status[y == 0] = FAILED
        status[infra] = INFRA
        self.status = status
        index = self.num("attempt_index")
        index = np.where(np.isnan(index), self.num("infra.attempt_index"), index)
        self.attempt_index = np.where(np.isnan(index), 0, index).astype(int)
        self.first = self.attempt_index == 0
        parts = [self.text(f) for f in ARM_FIELDS]
        self.agent, self.model, self.dataset = (
            np.array(["-" if v is None else str(v) for v in p], dtype=object) for p in parts
        )
        by = [ARM_ALIASES.get(b, b) for b in options.by]
        if tuple(by) == ARM_FIELDS:
            self.arm = np.array(
                [
                    f"{a} · {m}" + ("" if d == "-" else f" · {d}")
                    for a, m, d in zip(self.agent, self.model, self.dataset, strict=True)
                ],
                dtype=object,
            )
        else:
            cols = [self.text(b) for b in by]
            self.arm = np.array(
                [
                    " · ".join("-" if v is None else str(v) for v in vals)
                    for vals in zip(*cols, strict=True)
                ],
                dtype=object,
            )
        task = self.text("task_id")
        trial = self.text("trial_id")
        attempt_id = self.text("attempt_id")
        self.task_id = np.array(
            [
                t if t is not None else (tr or a)
                for t, tr, a in zip(task, trial, attempt_id, strict=True)
            ],
            dtype=object,
        )
        self.trial_id = np.array(
            [tr if tr is not None else a for tr, a in zip(trial, attempt_id, strict=True)],
            dtype=object,
        )
        self.attempt_id = attempt_id
        if options.attempts == "first":
            self.population = self.first.copy()
        elif options.attempts == "retries":
            self.population = ~self.first
        else:
            self.population = np.ones(n, dtype=bool)
        self.notes: list[str] = []

    # Column access with a typed default for absent columns.
    def num(self, name: str) -> np.ndarray:
        col = self.frame.get(name)
        if col is None or self.frame.kinds.get(name) == STR:
            return np.full(self.n, np.nan)
        return col

    def text(self, name: str) -> np.ndarray:
        col = self.frame.get(name)
        if col is None:
            return np.full(self.n, None, dtype=object)
        if self.frame.kinds.get(name) != STR:
            out = np.empty(self.n, dtype=object)
            out[:] = [None if math.isnan(v) else v for v in col]
            return out
        return col

    @property
    def arms(self) -> list[str]:
        return sorted(set(self.arm.tolist()))

    def signal_columns(self) -> list[tuple[str, str]]:
        """(column, kind) of every column that is a candidate behaviour row."""
        out = []
        for name, kind in self.frame.kinds.items():
            if not _is_signal(name, self.options):
                continue
            out.append((name, kind))
        return sorted(out)

    def has_timeline(self) -> bool:
        return TIMELINE in self.frame.columns


def _is_signal(name: str, options: Options) -> bool:
    if options.include and any(fnmatch.fnmatchcase(name, p) for p in options.include):
        return True
    if any(fnmatch.fnmatchcase(name, p) for p in options.exclude):
        return False
    if any(fnmatch.fnmatchcase(name, p) for p in INCLUDE_ANYWAY):
        return True
    if options.include:
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in EXCLUDE_PATTERNS)


__all__ = ["BOOL", "NUM", "STR", "Context", "Options"]
