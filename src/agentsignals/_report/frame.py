"""Attempt records as columns: every scalar field under its dotted name, and a few per-attempt
summaries of the lists the report draws (the tool-category timeline; the phase and position of a
first wrong step). This module holds the column container and what every reader shares; the
readers are `decode` (JSON lines, records in memory) and `sources` (files, folders, Parquet,
ClickHouse, traces).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentsignals._features.record import JudgeField

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
POSITION_BINS = 10

# The first wrong step as the judge writes it (docs/judge.md): `index` is the step number in the
# judge's transcript (turns and top-level tool calls, in time order), `span_id` the step's span,
# `relative_position` index / (steps - 1), `phase` the step's phase, and `step_phases` the phase
# of every step of that transcript ("" where a step has none). The report reads these as they
# are; it never maps the index onto the tool calls (`behavior.tool_sequence` counts only tools).
FWS = "judge.first_wrong_step"
FWS_INDEX = f"{FWS}.index"
FWS_SPAN = f"{FWS}.span_id"
FWS_POSITION = f"{FWS}.relative_position"
FWS_PHASE = f"{FWS}.phase"
FWS_CATEGORY = f"{FWS}.category"
FWS_STEP_PHASES = f"{FWS}.step_phases"

# Rows of the where-failures-originate heatmap: the judge's phases (tool category, else the
# turn's declared phase), any other declared phase, and steps with none recorded.
PHASES = ("explore", "localize", "implement", "verify", "other", "unrecorded")

# Columns the loaders derive (not record fields): the timeline letters, and for attempts with a
# first-wrong-step label its heatmap row and a pointer to the step ("S7 · span 00f3…").
TIMELINE = "_timeline"
FWS_ROW = "_fws.phase"
FWS_STEP = "_fws.step"

# The lists a loader reads (every other list is skipped): the timeline's categories, and the
# phases of the judge's steps (the heatmap's baseline; present only on labelled attempts).
CATEGORIES = "behavior.tool_category_sequence"
KEEP_LISTS = frozenset({CATEGORIES, FWS_STEP_PHASES})

# A judge result in an attempt record is `judge.<rubric>.<field>`, a JudgeField object whose
# `value` is what a report reads; the rest (status, explanation, citations, model, ...) is
# bookkeeping. Flat tables (features.flatten, Parquet) already hold the value under
# `judge.<rubric>.<field>`; the other readers name it the same way (`canonical`).
_JUDGE_META = frozenset(JudgeField.__struct_fields__) - {"value"}


@functools.lru_cache(maxsize=65536)
def canonical(name: str) -> str | None:
    """The report's name for a dotted record path: `judge.<rubric>.<field>.value` is
    `judge.<rubric>.<field>`; the JudgeField's other members are None (not read); every other
    name is itself."""
    if not name.startswith("judge."):
        return name
    parts = name.split(".")
    if len(parts) == 4:
        if parts[3] == "value":
            return ".".join(parts[:3])
        if parts[3] in _JUDGE_META:
            return None
    return name


def phase_row(phase: Any) -> str:
    """The heatmap row of a phase as the judge wrote it (null or "": none recorded; a column
    of nothing but nulls may have been read as numbers)."""
    if not isinstance(phase, str) or not phase:
        return "unrecorded"
    return phase if phase in PHASES else "other"


def position_bin(relative: float) -> int:
    """The heatmap column of a relative position in [0, 1] (0 the first step, 1 the last)."""
    return min(POSITION_BINS - 1, max(0, int(POSITION_BINS * relative)))


def step_histogram(phases: list[Any]) -> np.ndarray:
    """Where the steps of one attempt fall (phases x position bins), weighing 1 in all: the
    expectation for a label placed on a uniformly random step of the attempt."""
    hist = np.zeros((len(PHASES), POSITION_BINS), dtype=np.float32)
    n = len(phases)
    for i, phase in enumerate(phases):
        hist[PHASES.index(phase_row(phase)), position_bin(i / (n - 1) if n > 1 else 0.0)] += 1
    return hist / max(n, 1)


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
    of str/None for text. `baseline_steps["steps"]` (n x phases x position bins) holds, for
    each attempt whose first wrong step came with the phases of its steps, where those steps
    fall by phase and relative position, weighing 1 in all (`step_histogram`: the
    where-failures-originate baseline); zeros elsewhere."""

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
    """Scalars of a decoded JSON value under their report names (dotted, `canonical`); lists
    are dropped except those the loaders summarise (`keep`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten_value(v, f"{prefix}.{k}" if prefix else str(k), out, keep)
        return
    name = canonical(prefix)
    if name is None:
        return
    if isinstance(value, list):
        if name in KEEP_LISTS:
            keep[name] = value
    else:
        out[name] = value


def derive_first_wrong_step(columns: dict[str, np.ndarray], kinds: dict[str, str]) -> None:
    """For attempts with a first-wrong-step label: its heatmap row (`_fws.phase`: the judge's
    phase, `other`, or `unrecorded`) where it has a relative position, and a pointer to the
    step (`_fws.step`: "S7 · span 00f3…") for the drill-down."""
    index = columns.get(FWS_INDEX)
    span = columns.get(FWS_SPAN)
    position = columns.get(FWS_POSITION)
    if index is None and span is None and position is None:
        return
    n = len(columns["attempt_id"])
    phase = columns.get(FWS_PHASE)
    rows = np.full(n, None, dtype=object)
    steps = np.full(n, None, dtype=object)
    labelled = np.zeros(n, dtype=bool)
    for col in (index, span, position):
        if col is not None:
            labelled |= ~isnull(col) if col.dtype == object else ~np.isnan(col)
    for i in np.flatnonzero(labelled).tolist():
        if position is not None and _number(position[i]) is not None:
            rows[i] = phase_row(phase[i] if phase is not None else None)
        k = _number(index[i]) if index is not None else None
        sid = span[i] if span is not None else None
        parts = [f"S{int(k)}"] if k is not None else []
        if isinstance(sid, str) and sid:
            parts.append(f"span {sid}")
        if parts:
            steps[i] = " · ".join(parts)
    columns[FWS_ROW], kinds[FWS_ROW] = rows, STR
    columns[FWS_STEP], kinds[FWS_STEP] = steps, STR


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    v = float(value)
    return None if math.isnan(v) else v


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


def in_attempt_order(frame: Frame) -> Frame:
    """The rows sorted by attempt id (stable). Sources deliver the same attempts in different
    orders (a JSON lines file in write order, ClickHouse by attempt id); sums, standard
    deviations and iterative fits depend on the order of their terms in the last bits, so the
    report computes on one canonical order and reads alike from every source."""
    ids = frame.columns.get("attempt_id")
    if ids is None or len(ids) < 2:
        return frame
    keys = np.array(["" if v is None else str(v) for v in ids])
    if np.all(keys[1:] >= keys[:-1]):
        return frame
    return frame.take(np.argsort(keys, kind="stable"))


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
