"""Attempt records as columns: every scalar field, under its dotted name, and nothing else.

The report reads columns, not records. From JSON lines each record is decoded with msgspec into
types generated from :class:`AttemptRecord` in which every scalar is kept and every list is left
as undecoded bytes (`msgspec.Raw`), and columns are built one chunk of lines at a time, so memory
holds the columns and one chunk, never every record. A record with fields the types do not know
(a newer writer; `judge.*`, `cluster_id` and whatever comes later) is decoded as plain JSON and
flattened the same way, so any boolean, categorical or numeric field becomes a column without
new code. Parquet is read column by column; traces and ClickHouse go through the record types.

Only a few lists are read, as per-attempt summaries: the tool-category timeline (drill-down and
`show`), and the phase of each step for attempts with a first-wrong-step label.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from agentsignals._features.record import AttemptRecord

NUM = "num"
BOOL = "bool"
STR = "str"

CHUNK_LINES = 8192

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

# Columns the loader derives (not record fields).
TIMELINE = "_timeline"
FWS_PHASE = "_fws.phase"
FWS_POSITION = "_fws.position"
FWS_INDEX_FIELDS = ("judge.first_wrong_step.index", "judge.first_wrong_step.step")


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.source}:{self.line}: {self.message}"
            if self.line
            else (f"{self.source}: {self.message}")
        )


@dataclass
class Frame:
    """Columns of equal length: float64 (nan = null) for numbers and booleans, object arrays
    of str/None for text. `baseline` sums the phase x position histogram of every step of the
    attempts that carry a first-wrong-step label (the where-failures-originate baseline)."""

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


# --- generated decoding types -------------------------------------------------------------

_SCALARS = (
    msgspec.inspect.BoolType,
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.StrType,
)
_KIND = {
    msgspec.inspect.BoolType: BOOL,
    msgspec.inspect.IntType: NUM,
    msgspec.inspect.FloatType: NUM,
    msgspec.inspect.StrType: STR,
}


def _strip(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        if len(inner) == 1:
            return inner[0]
    return t


@dataclass
class _Plan:
    """How to read one struct type: positions of scalars, nested structs, dicts, kept lists."""

    cls: type
    scalars: list[tuple[int, str, str]]  # (position, dotted name, kind)
    nested: list[tuple[int, _Plan]]
    dicts: list[tuple[int, str]]  # Raw values to flatten generically
    keep: list[tuple[int, str]]  # Raw lists the loader summarises
    width: int


KEEP_LISTS = {
    "behavior.tool_category_sequence",
    "behavior.step_files",
    "behavior.step_changed_files",
    "behavior.touched_files",
}


def _plan(info: msgspec.inspect.StructType, prefix: str) -> _Plan:
    fields: list[tuple[str, Any, Any]] = []
    scalars: list[tuple[int, str, str]] = []
    nested: list[tuple[int, _Plan]] = []
    dicts: list[tuple[int, str]] = []
    keep: list[tuple[int, str]] = []
    for i, f in enumerate(info.fields):
        name = f"{prefix}{f.name}"
        t = _strip(f.type)
        if isinstance(t, _SCALARS):
            fields.append((f.name, Any, None))
            scalars.append((i, name, _KIND[type(t)]))
        elif isinstance(t, msgspec.inspect.StructType) and t.cls is not AttemptRecord:
            sub = _plan(t, f"{name}.")
            fields.append((f.name, sub.cls | None, None))
            nested.append((i, sub))
        else:
            fields.append((f.name, msgspec.Raw | None, None))
            if isinstance(t, msgspec.inspect.DictType | msgspec.inspect.AnyType):
                dicts.append((i, name))
            elif name in KEEP_LISTS:
                keep.append((i, name))
    cls = msgspec.defstruct(
        "Columns_" + (prefix.replace(".", "_") or "record"),
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
    )
    return _Plan(cls, scalars, nested, dicts, keep, len(fields))


_ROOT: _Plan | None = None


def _root() -> _Plan:
    global _ROOT
    if _ROOT is None:
        info = msgspec.inspect.type_info(AttemptRecord)
        assert isinstance(info, msgspec.inspect.StructType)
        _ROOT = _plan(info, "")
    return _ROOT


def known_kinds() -> dict[str, str]:
    """Every scalar column the record type declares, with its kind."""
    out: dict[str, str] = {}

    def walk(plan: _Plan) -> None:
        for _, name, kind in plan.scalars:
            out[name] = kind
        for _, sub in plan.nested:
            walk(sub)

    walk(_root())
    return out


# --- generic flattening -------------------------------------------------------------------


def flatten_value(value: Any, prefix: str, out: dict[str, Any], keep: dict[str, Any]) -> None:
    """Scalars of a decoded JSON value under dotted names; lists are dropped except those the
    loader summarises (`keep`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten_value(v, f"{prefix}.{k}" if prefix else str(k), out, keep)
    elif isinstance(value, list):
        if prefix in KEEP_LISTS:
            keep[prefix] = value
    else:
        out[prefix] = value


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUM
    return STR


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


# --- the loader ---------------------------------------------------------------------------

_raw_list = msgspec.json.Decoder(list[Any])
_any = msgspec.json.Decoder()


class _Builder:
    """Accumulates columns a chunk at a time."""

    def __init__(self) -> None:
        root = _root()
        self.root = root
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(root.cls)
        self.kinds: dict[str, str] = dict(known_kinds())
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.sparse: dict[str, tuple[list[int], list[Any]]] = {}
        self.baseline: dict[int, np.ndarray] = {}
        self.rows = 0
        self.problems: list[Problem] = []
        self._pending: list[Any] = []
        self._pending_extra: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        self._intern: dict[str, dict[str, str]] = {}

    def add_line(self, line: bytes, source: str, lineno: int) -> None:
        if not line.strip():
            return
        try:
            rec = self.decoder.decode(line)
        except msgspec.ValidationError:
            # Fields the record type does not know: plain JSON, flattened.
            try:
                obj = _any.decode(line)
            except msgspec.DecodeError as exc:
                self.problems.append(Problem(source, lineno, f"not JSON: {exc}"))
                return
            if not isinstance(obj, dict) or "attempt_id" not in obj:
                self.problems.append(Problem(source, lineno, "not an attempt record"))
                return
            flat: dict[str, Any] = {}
            keep: dict[str, Any] = {}
            flatten_value(obj, "", flat, keep)
            self._pending.append(None)
            self._pending_extra.append((self.rows + len(self._pending) - 1, flat, keep))
        except msgspec.DecodeError as exc:
            self.problems.append(Problem(source, lineno, f"not JSON: {exc}"))
            return
        else:
            if getattr(rec, "attempt_id", None) is None:
                self.problems.append(Problem(source, lineno, "not an attempt record"))
                return
            self._pending.append(rec)
        if len(self._pending) >= CHUNK_LINES:
            self._flush()

    def add_lines(self, lines: Iterable[bytes], source: str) -> None:
        for i, line in enumerate(lines, 1):
            self.add_line(line, source, i)

    # One chunk of decoded records becomes column chunks.
    def _flush(self) -> None:
        records = self._pending
        if not records:
            return
        n = len(records)
        start = self.rows
        values: dict[str, list[Any]] = {}
        extras: list[tuple[int, dict[str, Any], dict[str, Any]]] = list(self._pending_extra)
        extra_rows = {row for row, _, _ in extras}
        self._collect(self.root, records, values, extras, start)
        for name, vals in values.items():
            for row, flat, _ in self._pending_extra:
                vals[row - start] = flat.pop(name, None)
        for name, kind in self.kinds.items():
            if name in values:
                self._append(name, kind, values[name])
        # Dynamic fields: sparse until the end.
        for row, flat, keep in extras:
            for name, value in flat.items():
                if value is None or name in values:
                    continue
                rows, vals = self.sparse.setdefault(name, ([], []))
                rows.append(row)
                vals.append(value)
            self._derive(row, flat, keep, row in extra_rows)
        self.rows += n
        self._pending = []
        self._pending_extra = []

    def _collect(
        self,
        plan: _Plan,
        records: list[Any],
        values: dict[str, list[Any]],
        extras: list[tuple[int, dict[str, Any], dict[str, Any]]],
        start: int,
    ) -> None:
        # Transpose with zip (C speed): None records (plain-JSON rows) give all-None tuples.
        none = (None,) * plan.width
        tuples = [msgspec.structs.astuple(r) if r is not None else none for r in records]
        if not tuples:
            return
        columns = list(zip(*tuples, strict=True))
        for pos, name, _ in plan.scalars:
            values[name] = list(columns[pos])
        for pos, sub in plan.nested:
            self._collect(sub, list(columns[pos]), values, extras, start)
        by_row = {row: (flat, keep) for row, flat, keep in extras}
        for pos, name in plan.dicts:
            for i, raw in enumerate(columns[pos]):
                if raw is None:
                    continue
                row = start + i
                if row not in by_row:
                    by_row[row] = ({}, {})
                    extras.append((row, *by_row[row]))
                flatten_value(_any.decode(raw), name, by_row[row][0], by_row[row][1])
        for pos, name in plan.keep:
            for i, raw in enumerate(columns[pos]):
                if raw is None:
                    continue
                row = start + i
                if row not in by_row:
                    by_row[row] = ({}, {})
                    extras.append((row, *by_row[row]))
                by_row[row][1][name] = raw

    def _derive(self, row: int, flat: dict[str, Any], keep: dict[str, Any], plain: bool) -> None:
        """Per-attempt summaries of the kept lists."""

        def as_list(name: str) -> Any:
            value = keep.get(name)
            if isinstance(value, msgspec.Raw):
                return _raw_list.decode(value)
            return value

        categories = as_list("behavior.tool_category_sequence")
        if categories:
            timeline = "".join(CATEGORY_LETTERS.get(str(c), "o") for c in categories)
            rows, vals = self.sparse.setdefault(TIMELINE, ([], []))
            rows.append(row)
            vals.append(timeline)
        fws = next((flat[k] for k in FWS_INDEX_FIELDS if isinstance(flat.get(k), int)), None)
        if categories and fws is not None and not isinstance(fws, bool):
            phases = step_phases(
                categories,
                as_list("behavior.step_files"),
                as_list("behavior.step_changed_files"),
                as_list("behavior.touched_files"),
            )
            length = len(phases)
            hist = np.zeros((len(PHASES), POSITION_BINS), dtype=np.float64)
            for i, phase in enumerate(phases):
                hist[PHASES.index(phase), position_bin(i, length)] += 1
            self.baseline[row] = hist
            if 0 <= fws < length:
                for name, value in (
                    (FWS_PHASE, phases[fws]),
                    (FWS_POSITION, (fws + 0.5) / length),
                ):
                    rows, vals = self.sparse.setdefault(name, ([], []))
                    rows.append(row)
                    vals.append(value)

    def _append(self, name: str, kind: str, vals: list[Any]) -> None:
        if kind == STR:
            intern = self._intern.setdefault(name, {})
            arr = np.empty(len(vals), dtype=object)
            arr[:] = [None if v is None else intern.setdefault(str(v), str(v)) for v in vals]
        else:
            try:
                arr = np.fromiter(
                    (math.nan if v is None else float(v) for v in vals), float, len(vals)
                )
            except (TypeError, ValueError):
                # A value that is not a number: the column becomes text.
                self._to_text(name)
                self._append(name, STR, vals)
                return
        self.chunks.setdefault(name, []).append(arr)

    def _to_text(self, name: str) -> None:
        self.kinds[name] = STR
        old = self.chunks.pop(name, [])
        for arr in old:
            text = np.empty(len(arr), dtype=object)
            text[:] = [None if math.isnan(v) else _num_text(v) for v in arr]
            self.chunks.setdefault(name, []).append(text)

    def finish(self) -> Frame:
        self._flush()
        n = self.rows
        columns: dict[str, np.ndarray] = {}
        kinds: dict[str, str] = {}
        for name, parts in self.chunks.items():
            columns[name] = np.concatenate(parts) if parts else np.empty(0)
            kinds[name] = self.kinds[name]
        for name, (rows, vals) in self.sparse.items():
            present = {_kind_of(v) for v in vals}
            kind = present.pop() if len(present) == 1 else STR
            if kind == STR:
                arr = np.full(n, None, dtype=object)
                arr[rows] = [v if isinstance(v, str) else _num_text(v) for v in vals]
            else:
                arr = np.full(n, math.nan)
                arr[rows] = [float(v) for v in vals]
            if name in columns:  # a known column also seen in plain-JSON rows
                continue
            columns[name] = arr
            kinds[name] = kind
        baseline = np.zeros((n, len(PHASES), POSITION_BINS)) if self.baseline else None
        if baseline is not None:
            for row, hist in self.baseline.items():
                baseline[row] = hist
        frame = Frame(
            columns,
            kinds,
            {"steps": baseline} if baseline is not None else {},
            self.problems,
        )
        return latest_revisions(frame)


def _num_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


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
    order = np.lexsort((np.arange(n), rev, -part, ids.astype(str)))
    sorted_ids = ids[order].astype(str)
    last = np.ones(n, dtype=bool)
    last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
    keep = np.sort(order[last])
    if len(keep) == n:
        return frame
    return frame.take(keep)


# --- sources ------------------------------------------------------------------------------

PathArg = str | os.PathLike[str]


def _lines(path: Path) -> Iterator[bytes]:
    import gzip

    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


def _is_record_file(path: Path) -> bool:
    if path.name in ("attempts.jsonl", "attempts.jsonl.gz"):
        return True
    if path.name in ("trials.jsonl", "trials.jsonl.gz"):
        return False
    try:
        head = next(iter(_lines(path)), b"")
    except (OSError, EOFError):
        return False
    return b'"attempt_id"' in head and b'"resourceSpans"' not in head


def load(
    inputs: Iterable[PathArg] = (),
    *,
    source: str | None = None,
) -> Frame:
    """Columns from feature files (attempt JSON lines, optionally .gz, or Parquet), feature
    folders (the embedded store's attempts.jsonl), trace files or folders (features are
    derived on the fly), and/or a ClickHouse/chDB URL (`source`)."""
    builder = _Builder()
    traces: list[Path] = []
    parquet: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        record_files = [p for p in files if p.suffix != ".parquet" and _is_record_file(p)]
        if path.is_dir() and any(p.name.startswith("attempts.jsonl") for p in record_files):
            record_files = [p for p in record_files if p.name.startswith("attempts.jsonl")]
        for p in record_files:
            builder.add_lines(_lines(p), str(p))
        parquet.extend(p for p in files if p.suffix == ".parquet")
        if not record_files and not any(p.suffix == ".parquet" for p in files):
            traces.append(path)
    if traces:
        from agentsignals._features.run import extract

        result = extract(traces)
        for problem in result.problems:
            builder.problems.append(Problem(str(problem), 0, "skipped"))
        _add_records(builder, result.attempts, "traces")
    if source is not None:
        _add_records(builder, _clickhouse_attempts(source), source)
    frame = builder.finish()
    for p in parquet:
        frame = concat(frame, load_parquet(p))
    return frame


def _add_records(builder: _Builder, records: Iterable[AttemptRecord], source: str) -> None:
    encoder = msgspec.json.Encoder()
    builder.add_lines((encoder.encode(r) for r in records), source)


def _clickhouse_attempts(url: str) -> list[AttemptRecord]:
    """The feature table's attempts when it has any, else features derived from the traces
    in `otel_traces` (what `agentsignals features --source` does)."""
    from agentsignals._store.clickhouse import connect, features_from_clickhouse

    with connect(url) as store:
        attempts = store.read_attempts()
    if attempts:
        return attempts
    return features_from_clickhouse(url).attempts


def from_records(records: Iterable[AttemptRecord | dict[str, Any]]) -> Frame:
    """Columns from records in memory (AttemptRecord or plain dicts of the same shape)."""
    builder = _Builder()
    encoder = msgspec.json.Encoder()
    builder.add_lines((encoder.encode(r) for r in records), "records")
    return builder.finish()


def load_parquet(path: Path) -> Frame:
    """A Parquet file written by `agentsignals features -o x.parquet`: scalar columns only;
    JSON-object text columns (nested groups) are flattened."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    wanted = [
        f.name
        for f in schema
        if not pa.types.is_list(f.type) or f.name == "behavior.tool_category_sequence"
    ]
    table = pq.read_table(path, columns=wanted)
    builder_kinds = known_kinds()
    columns: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    n = table.num_rows
    for name in table.column_names:
        col = table.column(name)
        t = col.type
        if pa.types.is_list(t):
            seqs = col.to_pylist()
            arr = np.full(n, None, dtype=object)
            arr[:] = [
                None if s is None else "".join(CATEGORY_LETTERS.get(c, "o") for c in s)
                for s in seqs
            ]
            columns[TIMELINE] = arr
            kinds[TIMELINE] = STR
        elif pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
            columns[name] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
            kinds[name] = BOOL if pa.types.is_boolean(t) else NUM
        elif pa.types.is_null(t):
            kind = builder_kinds.get(name, STR)
            columns[name] = np.full(n, math.nan) if kind != STR else np.full(n, None, object)
            kinds[name] = kind
        else:
            values = col.to_pylist()
            if any(isinstance(v, str) and v.startswith("{") for v in values[:1000]):
                flats: list[dict[str, Any]] = []
                for v in values:
                    flat: dict[str, Any] = {}
                    if isinstance(v, str) and v.startswith("{"):
                        flatten_value(_any.decode(v), name, flat, {})
                    flats.append(flat)
                keys = {k for f in flats for k in f}
                for key in keys:
                    vals = [f.get(key) for f in flats]
                    present = {_kind_of(v) for v in vals if v is not None}
                    kind = present.pop() if len(present) == 1 else STR
                    if kind == STR:
                        arr = np.empty(n, dtype=object)
                        arr[:] = [None if v is None else str(v) for v in vals]
                    else:
                        arr = np.array([math.nan if v is None else float(v) for v in vals])
                    columns[key] = arr
                    kinds[key] = kind
                continue
            arr = np.empty(n, dtype=object)
            arr[:] = values
            columns[name] = arr
            kinds[name] = STR
    return latest_revisions(Frame(columns, kinds))


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
                text = np.empty(len(col), dtype=object)
                text[:] = [None if math.isnan(v) else _num_text(v) for v in col]
                col = text
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
