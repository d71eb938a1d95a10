"""Attempt records as columns: every scalar field under its dotted name, and a few per-attempt
summaries of the lists the report draws (the tool-category timeline; the phase and position of a
first wrong step). This module holds the column container and what every reader shares; the
readers are `decode` (JSON lines, records in memory) and `sources` (files, folders, Parquet,
ClickHouse, traces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUM = "num"
BOOL = "bool"
STR = "str"

# Tool categories as one letter each: the compact timeline the drill-down and `show` draw.
CATEGORY_LETTERS = {
    "read": "r",
    "search": "s",
    "edit": "e",
    "shell": "x",
    "test": "t",
    "submit": "u",
    "other": "o",
}
PHASES = ("explore", "localize", "implement", "verify", "submit")
POSITION_BINS = 10

# Columns the loaders derive (not record fields).
TIMELINE = "_timeline"
FWS_PHASE = "_fws.phase"
FWS_POSITION = "_fws.position"

# The lists a loader reads (every other list is skipped): the timeline, and the per-step files
# that place a first wrong step in its phase (read only for attempts that carry such a label).
CATEGORIES = "behavior.tool_category_sequence"
STEP_LISTS = ("behavior.step_files", "behavior.step_changed_files", "behavior.touched_files")
KEEP_LISTS = frozenset({CATEGORIES, *STEP_LISTS})


@dataclass(frozen=True)
class StepLabel:
    """How a first-wrong-step label points at a step: the one place that says so.

    The judge (#13) writes `judge.first_wrong_step`; the report reads its `index` (or `step`)
    as a `base`-based position in the attempt's tool calls, `behavior.tool_sequence` (whose
    categories, `behavior.tool_category_sequence`, are parallel to it), like
    `behavior.first_edit_step`. Should the judge count otherwise, change it here."""

    fields: tuple[str, ...] = ("judge.first_wrong_step.index", "judge.first_wrong_step.step")
    sequence: str = "behavior.tool_sequence"
    base: int = 0

    def step(self, value: Any) -> int | None:
        """The 0-based tool-call index a label value names, or None."""
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            return None
        return value - self.base

    def of_record(self, record: dict[str, Any]) -> int | None:
        """The step named by a record held as nested dicts (what `show` reads)."""
        for name in self.fields:
            value: Any = record
            for part in name.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            step = self.step(value)
            if step is not None:
                return step
        return None


FIRST_WRONG_STEP = StepLabel()
FWS_INDEX_FIELDS = FIRST_WRONG_STEP.fields


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.source}:{self.line}: {self.message}"
        return f"{self.source}: {self.message}"


@dataclass
class Frame:
    """Columns of equal length: float64 (nan = null) for numbers and booleans, object arrays
    of str/None for text. `baseline_steps["steps"]` (n x phases x position bins) counts every
    step of the attempts that carry a first-wrong-step label by phase and relative position
    (the where-failures-originate baseline); zeros elsewhere."""

    columns: dict[str, np.ndarray]
    kinds: dict[str, str]
    baseline_steps: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.columns["attempt_id"]) if "attempt_id" in self.columns else 0

    def get(self, name: str) -> np.ndarray | None:
        return self.columns.get(name)

    def take(self, index: np.ndarray) -> Frame:
        return Frame(
            {k: v[index] for k, v in self.columns.items()},
            dict(self.kinds),
            {k: v[index] for k, v in self.baseline_steps.items()},
            self.problems,
        )

    def nbytes(self) -> int:
        """Memory the columns hold (object columns: their pointers and distinct strings)."""
        total = 0
        for col in self.columns.values():
            total += col.nbytes
            if col.dtype == object:
                seen: set[int] = set()
                for v in col:
                    if v is not None and id(v) not in seen:
                        seen.add(id(v))
                        total += len(v) + 49
        return total + sum(v.nbytes for v in self.baseline_steps.values())


_NONE: Any = None


def isnull(col: np.ndarray) -> np.ndarray:
    """Where an object column holds None (elementwise, in C)."""
    return np.asarray(np.equal(col, _NONE), dtype=bool)


# --- generic flattening -------------------------------------------------------------------


def flatten_value(value: Any, prefix: str, out: dict[str, Any], keep: dict[str, Any]) -> None:
    """Scalars of a decoded JSON value under dotted names; lists are dropped except those the
    loaders summarise (`keep`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten_value(v, f"{prefix}.{k}" if prefix else str(k), out, keep)
    elif isinstance(value, list):
        if prefix in KEEP_LISTS:
            keep[prefix] = value
    else:
        out[prefix] = value


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUM
    return STR


def num_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def timeline(categories: list[Any] | None) -> str | None:
    if not categories:
        return None
    get = CATEGORY_LETTERS.get
    return "".join(get(c, "o") if isinstance(c, str) else "o" for c in categories)


# --- phases of steps ----------------------------------------------------------------------


def step_phases(
    categories: list[str],
    step_files: list[list[str]] | None,
    step_changed: list[list[str]] | None,
    touched: list[str] | None,
) -> list[str]:
    """The phase of each tool call, from its category and where it falls (docs/report.md):
    implement = an edit or a call that changed files; verify = a test run, or a shell command
    after the first edit; localize = a read or search, before the first edit, of a file the
    attempt went on to change; submit; everything else before the first edit is explore, and
    reads after it belong to implementing."""
    n = len(categories)
    changed = [
        bool(step_changed[i]) if step_changed and i < len(step_changed) else False for i in range(n)
    ]
    first_edit = next((i for i, c in enumerate(categories) if c == "edit" or changed[i]), n)
    touched_names = {_tail(p) for p in (touched or [])}
    phases: list[str] = []
    for i, cat in enumerate(categories):
        if cat == "edit" or changed[i]:
            phases.append("implement")
        elif cat == "test":
            phases.append("verify")
        elif cat == "submit":
            phases.append("submit")
        elif i > first_edit:
            phases.append("verify" if cat == "shell" else "implement")
        elif (
            cat in ("read", "search")
            and step_files
            and i < len(step_files)
            and any(_tail(p) in touched_names for p in step_files[i])
        ):
            phases.append("localize")
        else:
            phases.append("explore")
    return phases


def _tail(path: str) -> str:
    """A path compared across absolute (/testbed/x.py) and relative (x.py) spellings."""
    return path.replace("\\", "/").lstrip("./").split("/testbed/")[-1].lstrip("/")


def position_bin(index: int, length: int) -> int:
    return min(POSITION_BINS - 1, int(POSITION_BINS * index / max(length, 1)))


@dataclass
class Placement:
    """Where a labelled first wrong step falls, and where every step of its attempt falls."""

    phase: str | None
    position: float | None
    histogram: np.ndarray  # phases x position bins


def place_first_wrong_step(
    step: int,
    categories: list[str],
    step_files: Any,
    step_changed: Any,
    touched: Any,
) -> Placement:
    phases = step_phases(
        [str(c) for c in categories],
        step_files if isinstance(step_files, list) else None,
        step_changed if isinstance(step_changed, list) else None,
        touched if isinstance(touched, list) else None,
    )
    length = len(phases)
    hist = np.zeros((len(PHASES), POSITION_BINS), dtype=np.float64)
    for i, phase in enumerate(phases):
        hist[PHASES.index(phase), position_bin(i, length)] += 1
    if 0 <= step < length:
        return Placement(phases[step], (step + 0.5) / length, hist)
    return Placement(None, None, hist)


# --- revisions and concatenation -------------------------------------------------------------


def latest_revisions(frame: Frame) -> Frame:
    """One row per attempt id: the latest whole revision (a partial revision never replaces a
    whole one), as every other reader of the store keeps."""
    ids = frame.columns.get("attempt_id")
    if ids is None or len(ids) == 0:
        return frame
    revision = frame.columns.get("revision")
    partial = frame.columns.get("partial")
    n = len(ids)
    rev = np.nan_to_num(revision, nan=0.0) if revision is not None else np.zeros(n)
    part = np.nan_to_num(partial, nan=0.0) if partial is not None else np.zeros(n)
    codes = np.unique(ids.astype(str), return_inverse=True)[1]
    if codes.max(initial=-1) + 1 == n:
        return frame  # every id once
    order = np.lexsort((np.arange(n), rev, -part, codes))
    sorted_codes = codes[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = sorted_codes[1:] != sorted_codes[:-1]
    keep = np.sort(order[last])
    return frame.take(keep)


def _as_text(col: np.ndarray) -> np.ndarray:
    text = np.empty(len(col), dtype=object)
    text[:] = [None if math.isnan(v) else num_text(v) for v in col]
    return text


def concat(a: Frame, b: Frame) -> Frame:
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    names = list(dict.fromkeys([*a.columns, *b.columns]))
    columns: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for name in names:
        kind = a.kinds.get(name) or b.kinds.get(name) or STR
        if a.kinds.get(name, kind) != b.kinds.get(name, kind):
            kind = STR
        parts = []
        for f in (a, b):
            col = f.columns.get(name)
            if col is None:
                col = np.full(f.n, None, object) if kind == STR else np.full(f.n, math.nan)
            elif kind == STR and col.dtype != object:
                col = _as_text(col)
            parts.append(col)
        columns[name] = np.concatenate(parts)
        kinds[name] = kind
    steps = None
    if a.baseline_steps or b.baseline_steps:
        shape = (len(PHASES), POSITION_BINS)
        steps = np.concatenate(
            [f.baseline_steps.get("steps", np.zeros((f.n, *shape))) for f in (a, b)]
        )
    return latest_revisions(
        Frame(
            columns,
            kinds,
            {"steps": steps} if steps is not None else {},
            [*a.problems, *b.problems],
        )
    )
