"""What every section reads: the filtered columns, the outcome of each attempt, its arm
(agent x model x dataset), its task, and the options."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentsignals._report.calibration import Calibration
from agentsignals._report.frame import BOOL, NUM, STR, TIMELINE, Frame, isnull

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

# Fields that are never a behaviour row: identity and bookkeeping (resource attributes are
# tags: `--tag` filters on them, `--by` makes arms of them), the outcome itself (a row must not
# be the label it is compared with), the treatment (the arms), and what only failed attempts
# carry (first wrong step, clusters: their own sections).
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
    "resource_attributes",
    "resource_attributes.*",
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
    "recovery.*",
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
    # Reward records (agentsignals rewards) for the proxy-versus-outcome section.
    rewards: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)
    # Product-session records (SessionRecord) for the sessions section: `load(...,
    # sessions=list)` collects them from the same inputs.
    sessions: tuple[Any, ...] = ()


def factorize(values: np.ndarray, missing: str = "-") -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (as text, sorted; None as `missing`) and each row's code into them."""
    if len(values) == 0:
        return np.array([], dtype=object), np.zeros(0, dtype=np.intp)
    text = values
    if values.dtype == object:
        text = np.where(isnull(values), missing, values)
    names, codes = np.unique(text.astype(str), return_inverse=True)
    return names.astype(object), codes.reshape(-1)


class Context:
    def __init__(self, frame: Frame, options: Options) -> None:
        self.frame = frame
        self.options = options
        n = frame.n
        self.n = n
        reward = self.num("verification.reward")
        label = self.text("verification.patch_outcome_label")
        reason = self.text("verification.unverifiable_reason")
        infra = np.isin(reason, sorted(INFRA_REASONS)) if n else np.zeros(0, dtype=bool)
        y = np.full(n, np.nan)
        has_reward = ~np.isnan(reward)
        y[has_reward] = (reward[has_reward] >= 1.0 - 1e-9).astype(float)
        by_label = ~has_reward & ~isnull(label)
        y[by_label] = np.equal(label[by_label], "correct_patch").astype(float)
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
        parts = [factorize(self.text(f)) for f in ARM_FIELDS]
        self.agent, self.model, self.dataset = (names[codes] for names, codes in parts)
        by = [ARM_ALIASES.get(b, b) for b in options.by]
        if tuple(by) == ARM_FIELDS:
            arm_parts = parts
            joiner: Callable[[list[str]], str] = _default_arm_name
        else:
            arm_parts = [factorize(self.text(b)) for b in by]
            joiner = " · ".join
        # One code per combination of the arm fields; names built once per combination.
        combined = np.zeros(n, dtype=np.int64)
        for names, codes in arm_parts:
            combined = combined * max(len(names), 1) + codes
        _, first_row, arm_code = np.unique(combined, return_index=True, return_inverse=True)
        combo_names = np.array(
            [joiner([str(names[codes[r]]) for names, codes in arm_parts]) for r in first_row],
            dtype=object,
        )
        order = np.argsort(combo_names.astype(str), kind="stable")
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        self.arm_names = combo_names[order]
        self.arm_code = rank[arm_code.reshape(-1)] if n else np.zeros(0, dtype=np.intp)
        self.arm = self.arm_names[self.arm_code] if n else np.array([], dtype=object)
        task = self.text("task_id")
        trial = self.text("trial_id")
        attempt_id = self.text("attempt_id")
        self.trial_id = np.where(isnull(trial), attempt_id, trial)
        self.task_id = np.where(isnull(task), self.trial_id, task)
        self.attempt_id = attempt_id
        self.task_names, self.task_code = factorize(self.task_id)
        self.trial_names, self.trial_code = factorize(self.trial_id)
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
        return [str(a) for a in self.arm_names]

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


# Columns some section, filter or the drill-down reads besides the behaviour rows.
READ_ALWAYS = (
    "attempt_id",
    "trial_id",
    "task_id",
    "attempt_index",
    "infra.attempt_index",
    "run_id",
    "revision",
    "partial",
    "started_at_ns",
    "treatment.*",
    "verification.*",
    "judge.first_wrong_step.*",
    "recovery.*",
    "tokens.input_tokens_total",
    "tokens.output_tokens_total",
    "*cluster*",
    "judge.summary*",
    "judge.failure_summary*",
    "resource_attributes.*",
)


def needed_columns(options: Options) -> Callable[[str], bool]:
    """Which record fields a report with these options reads: the behaviour rows, what the
    sections, filters and arms use; every other field is skipped by the loaders."""
    always = (
        *READ_ALWAYS,
        *(ARM_ALIASES.get(b, b) for b in options.by),
        *(c.partition("=")[0].strip() for c in options.filters.get("where") or ()),
    )

    def wanted(name: str) -> bool:
        return _is_signal(name, options) or any(fnmatch.fnmatchcase(name, p) for p in always)

    return wanted


def _default_arm_name(parts: list[str]) -> str:
    agent, model, dataset = parts
    return f"{agent} · {model}" + ("" if dataset == "-" else f" · {dataset}")


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
