"""JSON-lines attempt records decoded straight into columns.

msgspec decodes each block of lines (`Decoder.decode_lines`, in C) into struct types generated
from :class:`AttemptRecord` in which every scalar is kept, the timeline's list of categories is
decoded, and every other list is skipped as undecoded bytes (`msgspec.Raw`). The structs of a
block are transposed with `zip` and each column becomes a numpy array in one call, so no Python
code runs per value of a numeric column and memory holds the columns plus one block.

Fields the record type declares without naming them (`judge.<rubric>.<field>`,
`resource_attributes.<key>`) or does not know (whatever a newer writer adds) are learned: the
first line that has one is read as plain JSON, its new fields are added to the generated types
(objects as nested structs, lists skipped, anything else a scalar column), and decoding goes on
typed. A line that still does not fit (a field that is a number here and an object there) is
flattened on its own; one that is not JSON, or not an attempt record, is a problem on its line
and the rest of the batch completes. A judge field's object is read as its `value`, named
`judge.<rubric>.<field>` as in flat tables (`frame.canonical`).
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from agentsignals._features.record import AttemptRecord
from agentsignals._report.frame import (
    BOOL,
    CATEGORIES,
    CATEGORY_LETTERS,
    FWS_STEP_PHASES,
    KEEP_LISTS,
    NUM,
    PHASES,
    POSITION_BINS,
    STR,
    TIMELINE,
    Frame,
    Problem,
    canonical,
    derive_first_wrong_step,
    flatten_value,
    latest_revisions,
    num_text,
    step_histogram,
    timeline,
)

BLOCK_BYTES = 4 << 20
# Learned fields in all (a record whose object keys are ids would otherwise grow the types
# without end): beyond it, lines with yet more new fields are flattened on their own.
MAX_LEARNED = 2000
# Text columns keep one copy of each distinct value until this many distinct values are seen.
MAX_INTERNED = 10_000

_SCALAR: Any = bool | int | float | str | None
Wanted = Callable[[str], bool]
_NULL = msgspec.Raw(b"null")
_any = msgspec.json.Decoder()
_list = msgspec.json.Decoder(list[Any])

_KIND = {
    msgspec.inspect.BoolType: BOOL,
    msgspec.inspect.IntType: NUM,
    msgspec.inspect.FloatType: NUM,
    msgspec.inspect.StrType: STR,
}


# --- the schema: what the generated types hold ------------------------------------------------


@dataclass
class _Node:
    """One JSON object level: its fields in order, each a scalar (with the kind the record type
    declares, or None when learned), a nested object, a skipped list, or the kept timeline."""

    prefix: str
    fields: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (what, info)

    def struct(self) -> type:
        specs: list[tuple[str, Any, Any]] = []
        rename: dict[str, str] = {}
        for i, (name, (what, info)) in enumerate(self.fields.items()):
            attr = f"f{i}"
            rename[attr] = name
            if what == "scalar":
                specs.append((attr, _SCALAR, None))
            elif what == "node":
                specs.append((attr, info.struct() | None, None))
            else:  # "raw": a list (or anything) not decoded here
                specs.append((attr, msgspec.Raw, _NULL))  # "seq" too: read in bulk
        return msgspec.defstruct(
            "Columns_" + (self.prefix.replace(".", "_").strip("_") or "record"),
            specs,
            kw_only=True,
            forbid_unknown_fields=True,
            rename=rename,
        )

    def learn(self, value: dict[str, Any], budget: list[int], wanted: Wanted) -> bool:
        """Add the fields of a decoded object this level does not know; True if any."""
        changed = False
        for key, v in value.items():
            if not isinstance(key, str):
                continue
            known = self.fields.get(key)
            if known is None:
                if budget[0] <= 0:
                    continue
                budget[0] -= 1
                changed = True
                if isinstance(v, dict):
                    node = _Node(f"{self.prefix}{key}.")
                    node.learn(v, budget, wanted)
                    self.fields[key] = ("node", node)
                elif isinstance(v, list) or not wanted(f"{self.prefix}{key}"):
                    self.fields[key] = ("raw", None)
                else:
                    self.fields[key] = ("scalar", None)
            elif known[0] == "node" and isinstance(v, dict):
                changed |= known[1].learn(v, budget, wanted)
        return changed


def _strip(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        if len(inner) == 1:
            return inner[0]
    return t


def _from_type(info: msgspec.inspect.StructType, prefix: str, wanted: Wanted) -> _Node:
    node = _Node(prefix)
    for f in info.fields:
        name = f"{prefix}{f.name}"
        t = _strip(f.type)
        kind = _KIND.get(type(t))
        if kind is not None:
            wanted_here = wanted(name) or name == "attempt_id"
            node.fields[f.name] = ("scalar", kind) if wanted_here else ("raw", None)
        elif isinstance(t, msgspec.inspect.StructType) and t.cls is not AttemptRecord:
            node.fields[f.name] = ("node", _from_type(t, f"{name}.", wanted))
        elif isinstance(t, msgspec.inspect.DictType | msgspec.inspect.AnyType):
            node.fields[f.name] = ("node", _Node(f"{name}."))  # learned from the data
        elif name == CATEGORIES:
            node.fields[f.name] = ("seq", None)
        else:
            node.fields[f.name] = ("raw", None)
    return node


def _every(name: str) -> bool:
    return True


def record_schema(wanted: Wanted = _every) -> _Node:
    info = msgspec.inspect.type_info(AttemptRecord)
    assert isinstance(info, msgspec.inspect.StructType)
    return _from_type(info, "", wanted)


@functools.cache
def known_kinds() -> dict[str, str]:
    """Every scalar column the record type declares, with its kind."""
    out: dict[str, str] = {}

    def walk(node: _Node) -> None:
        for name, (what, info) in node.fields.items():
            if what == "scalar" and info is not None:
                out[f"{node.prefix}{name}"] = info
            elif what == "node":
                walk(info)

    walk(record_schema())
    return out


# --- columns, a block at a time ---------------------------------------------------------------


@dataclass
class Typed:
    """A column already converted (float64 with nan, or object), with its kind."""

    values: np.ndarray
    kind: str


@dataclass
class _Part:
    start: int
    values: np.ndarray
    kind: str


class ColumnBuilder:
    """Accumulates columns from blocks of JSON lines (`add_block`) or single lines."""

    def __init__(self, wanted: Wanted | None = None) -> None:
        # Asked of record paths as they are in the data; answered for their report names
        # (a judge field's bookkeeping is never wanted, its value is wanted as the field).
        self.wanted: Wanted = _cached(_by_report_name(wanted or _every))
        self.schema = record_schema(self.wanted)
        self.declared = known_kinds()
        self._budget = [MAX_LEARNED]
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.schema.struct())
        self.parts: dict[str, list[_Part]] = {}
        self.baseline: dict[int, np.ndarray] = {}
        self.rows = 0
        self.problems: list[Problem] = []
        self._intern: dict[str, dict[Any, Any] | None] = {}
        # Learned fields go after the declared ones, so this attribute name never changes.
        self._id_attr = f"f{list(self.schema.fields).index('attempt_id')}"

    # Input.
    def add_block(self, block: bytes, source: str, first_line: int = 1) -> None:
        """Complete lines (each a JSON object); `first_line` numbers the first one."""
        try:
            records = self._decoder.decode_lines(block)
        except msgspec.DecodeError:
            self._add_lines(block, source, first_line)
            return
        attempt_id = self._id_attr
        if any(getattr(r, attempt_id) is None for r in records):
            self._add_lines(block, source, first_line)
            return
        self._columns(records, [])

    def _add_lines(self, block: bytes, source: str, first_line: int) -> None:
        """The slow path for a block with a problem: line by line, learning new fields."""
        records: list[Any] = []
        loose: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        for offset, line in enumerate(block.split(b"\n")):
            if not line.strip():
                continue
            lineno = first_line + offset
            rec = self._decode_line(line, source, lineno, loose, len(records))
            while isinstance(rec, _Learned):  # ends: each round spends learning budget
                # New fields: what came before was decoded with the old types and is
                # transposed with them; this line is decoded again with the new ones.
                self._columns(records, loose)
                records, loose = [], []
                self.schema = rec.schema
                self._decoder = msgspec.json.Decoder(self.schema.struct())
                rec = self._decode_line(line, source, lineno, loose, 0)
            if rec is not _SKIP:
                records.append(rec)
        self._columns(records, loose)

    def _decode_line(
        self,
        line: bytes,
        source: str,
        lineno: int,
        loose: list[tuple[int, dict[str, Any], dict[str, Any]]],
        at: int,
    ) -> Any:
        try:
            rec = self._decoder.decode(line)
        except msgspec.ValidationError:
            obj = _any.decode(line)  # valid JSON: ValidationError is raised after parsing
            if not isinstance(obj, dict) or obj.get("attempt_id") is None:
                self.problems.append(Problem(source, lineno, "not an attempt record"))
                return _SKIP
            schema = copy.deepcopy(self.schema)
            if schema.learn(obj, self._budget, self.wanted):
                return _Learned(schema)
            flat: dict[str, Any] = {}
            keep: dict[str, Any] = {}
            flatten_value(obj, "", flat, keep)
            flat = {k: v for k, v in flat.items() if k == "attempt_id" or self.wanted(k)}
            loose.append((at, flat, keep))
            return None
        except msgspec.DecodeError as exc:
            self.problems.append(Problem(source, lineno, f"not JSON: {exc}"))
            return _SKIP
        if getattr(rec, self._id_attr) is None:
            self.problems.append(Problem(source, lineno, "not an attempt record"))
            return _SKIP
        return rec

    # Transposition.
    def _columns(
        self, records: list[Any], loose: list[tuple[int, dict[str, Any], dict[str, Any]]]
    ) -> None:
        n = len(records)
        if n == 0:
            return
        values: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        _transpose(self.schema, records, values, kept)
        if loose:
            for name in list(values):
                values[name] = list(values[name])
            for name in list(kept):
                kept[name] = list(kept[name])
            for i, flat, keep in loose:
                for name, value in flat.items():
                    col = values.get(name)
                    if col is None:
                        col = values[name] = [None] * n
                    col[i] = value
                for name, value in keep.items():
                    col = kept.get(name)
                    if col is None:
                        col = kept[name] = [None] * n
                    col[i] = value
        self.ingest(values, kept, n)

    def ingest(self, values: dict[str, Any], kept: dict[str, Any], n: int) -> None:
        """Append n rows given as columns: `values` holds scalar columns (sequences, or
        `Typed` arrays), `kept` the kept lists (timeline categories, per-step files)."""
        start = self.rows
        self.add_columns(values, start)
        self.derive(values, kept, start, n)
        self.rows += n

    def add_columns(self, values: dict[str, Any], start: int) -> None:
        """Columns for the rows from `start` on (a reader going through a block of rows a few
        columns at a time calls this per group of columns, then `derive`, then advances
        `rows`)."""
        for name, col in values.items():
            if name == "attempt_id" or self.wanted(name):
                self._add(canonical(name) or name, col, start)

    def _add(self, name: str, col: Any, start: int) -> None:
        declared = self.declared.get(name)
        if isinstance(col, Typed):
            arr, kind = col.values, col.kind
            if declared == STR and kind != STR:
                arr, kind = _texts(arr, kind), STR
        elif declared == STR:
            arr, kind = self._text(name, col), STR
        elif declared is not None:
            try:
                arr, kind = np.array(col, dtype=np.float64), declared
            except (TypeError, ValueError):
                arr, kind = self._text(name, col), STR
        else:
            arr, kind = self._learned(name, col)
        self.parts.setdefault(name, []).append(_Part(start, arr, kind))

    def _learned(self, name: str, col: Any) -> tuple[np.ndarray, str]:
        types = set(map(type, col))
        types.discard(type(None))
        if not types:
            return np.full(len(col), math.nan), BOOL
        if types == {bool}:
            return np.array(col, dtype=np.float64), BOOL
        if types <= {int, float}:
            return np.array(col, dtype=np.float64), NUM
        return self._text(name, col), STR

    def _text(self, name: str, col: Any) -> np.ndarray:
        """An object column of str/None. Repeated values share one string (a column of a few
        distinct labels costs pointers, not a copy per row) until the column shows itself to
        be mostly distinct (ids)."""
        arr = np.empty(len(col), dtype=object)
        types = set(map(type, col))
        if not types <= {str, type(None)}:
            col = [v if v is None or isinstance(v, str) else _text_of(v) for v in col]
        memo = self._intern.setdefault(name, {})
        if memo is None:
            arr[:] = col
        else:
            arr[:] = list(map(memo.setdefault, col, col))
            if len(memo) > MAX_INTERNED:
                self._intern[name] = None  # ids: nothing to share
        return arr

    def derive(self, values: dict[str, Any], kept: dict[str, Any], start: int, n: int) -> None:
        """The timeline of each attempt, and where the steps of an attempt whose first wrong
        step the judge labelled fall (the heatmap's baseline, from the judge's step phases)."""
        raw_cats = kept.get(CATEGORIES)
        strips = kept.get(TIMELINE)  # a reader that made the timelines itself (Parquet, SQL)
        if strips is None and raw_cats is not None:
            strips = timelines(raw_cats)
        if strips is not None:
            part = _Part(start, self._text(TIMELINE, strips), STR)
            self.parts.setdefault(TIMELINE, []).append(part)
        phases = kept.get(FWS_STEP_PHASES)
        if phases is None:
            return
        for i in range(n):
            steps = _decoded(phases, i)
            if isinstance(steps, list) and steps:
                self.baseline[start + i] = step_histogram(steps)

    def discard_from(self, row: int) -> None:
        """Forget what was added for rows from `row` on (a block that failed partway)."""
        for name in list(self.parts):
            kept = [p for p in self.parts[name] if p.start < row]
            if kept:
                self.parts[name] = kept
            else:
                del self.parts[name]
        for r in [r for r in self.baseline if r >= row]:
            del self.baseline[r]

    # Output.
    def finish(self) -> Frame:
        n = self.rows
        columns: dict[str, np.ndarray] = {}
        kinds: dict[str, str] = {}
        for name in list(self.parts):
            parts = self.parts.pop(name)  # each column freed as it is joined: no 2x peak
            present = {p.kind for p in parts if _informative(p)}
            if not present:
                present = {parts[0].kind}
            kind = present.pop() if len(present) == 1 else STR
            if kind == STR:
                arr = np.full(n, None, dtype=object)
                for p in parts:
                    vals = p.values if p.values.dtype == object else _texts(p.values, p.kind)
                    arr[p.start : p.start + len(vals)] = vals
            else:
                arr = np.full(n, math.nan)
                for p in parts:
                    arr[p.start : p.start + len(p.values)] = p.values
            columns[name] = arr
            kinds[name] = kind
        # Every field the record type declares is a column, whether or not its group was
        # present in any record (the set of columns does not depend on the data).
        for name, kind in self.declared.items():
            if name not in columns and (name == "attempt_id" or self.wanted(name)):
                columns[name] = np.full(n, None, object) if kind == STR else np.full(n, math.nan)
                kinds[name] = kind
        derive_first_wrong_step(columns, kinds)
        baseline: dict[str, np.ndarray] = {}
        if self.baseline:
            steps = np.zeros((n, len(PHASES), POSITION_BINS), dtype=np.float32)
            for row, hist in self.baseline.items():
                steps[row] = hist
            baseline["steps"] = steps
        return latest_revisions(Frame(columns, kinds, baseline, self.problems))


class _Marker:
    pass


_SKIP: Any = _Marker()


@dataclass
class _Learned:
    schema: _Node


def _transpose(
    node: _Node, records: list[Any], values: dict[str, Any], kept: dict[str, Any]
) -> None:
    """Columns of a list of structs (None for rows that were flattened on their own)."""
    width = len(node.fields)
    none = (None,) * width
    astuple = msgspec.structs.astuple
    columns = list(zip(*[none if r is None else astuple(r) for r in records], strict=True))
    for (name, (what, info)), col in zip(node.fields.items(), columns, strict=True):
        if what == "node":
            if any(c is not None for c in col):
                _transpose(info, list(col), values, kept)
            continue
        dotted = canonical(f"{node.prefix}{name}")
        if dotted is None:
            continue
        if what == "scalar":
            values[dotted] = col
        elif what == "seq" or dotted in KEEP_LISTS:
            kept[dotted] = col


_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')
_LETTERS = [(f'"{name}"'.encode(), letter.encode()) for name, letter in CATEGORY_LETTERS.items()]
_LETTER_SET = "".join(CATEGORY_LETTERS.values()).encode()


def timelines(col: Any) -> list[str | None]:
    """The timeline letters of each attempt from its categories: JSON text (`msgspec.Raw`)
    is rewritten in bulk (each known category to its letter, any other to `o`), lists one by
    one."""
    if not all(isinstance(c, msgspec.Raw) for c in col):
        return [timeline(_decoded(col, i)) for i in range(len(col))]
    data = b"\n".join(col)
    for quoted, letter in _LETTERS:
        data = data.replace(quoted, letter)
    data = _QUOTED.sub(b"o", data).translate(None, b"[], \t\r")
    out: list[str | None] = []
    for i, line in enumerate(data.split(b"\n")):
        if not line or line == b"null":
            out.append(None)
        elif line.strip(_LETTER_SET):  # not a list of strings: read it properly
            out.append(timeline(_decoded(col, i)))
        else:
            out.append(line.decode("ascii"))
    return out


def _by_report_name(wanted: Wanted) -> Wanted:
    def check(name: str) -> bool:
        report_name = canonical(name)
        return report_name is not None and wanted(report_name)

    return check


def _cached(wanted: Wanted) -> Wanted:
    memo: dict[str, bool] = {}

    def check(name: str) -> bool:
        hit = memo.get(name)
        if hit is None:
            hit = memo[name] = bool(wanted(name))
        return hit

    return check


def _decoded(col: Any, i: int) -> Any:
    if col is None:
        return None
    value = col[i]
    if isinstance(value, msgspec.Raw):
        try:
            return _list.decode(value) if bytes(value) != b"null" else None
        except msgspec.DecodeError:
            return None
    return value


def _informative(part: _Part) -> bool:
    """A part whose kind was seen in its values (not all null)."""
    if part.values.dtype == object:
        return any(v is not None for v in part.values)
    return bool(np.any(~np.isnan(part.values)))


def _obj(values: list[Any]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _texts(values: np.ndarray, kind: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    if kind == BOOL:
        out[:] = [None if math.isnan(v) else ("true" if v else "false") for v in values]
    else:
        out[:] = [None if math.isnan(v) else num_text(v) for v in values]
    return out


def _text_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return num_text(v)
    return msgspec.json.encode(v).decode()


# --- inputs ------------------------------------------------------------------------------------


def blocks(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Blocks of complete lines from byte chunks, each with the number of its first line."""
    rest = b""
    line = 1
    for chunk in chunks:
        if not chunk:
            continue
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            continue
        yield line, data[:cut]
        line += data.count(b"\n", 0, cut)
        rest = data[cut:]
    if rest.strip():
        yield line, rest


def from_lines(lines: Iterable[bytes], source: str, builder: ColumnBuilder) -> None:
    """Encoded records, one per item (no newlines inside), in blocks."""
    batch: list[bytes] = []
    size = 0
    line = 1
    for item in lines:
        batch.append(item)
        size += len(item)
        if size >= BLOCK_BYTES:
            builder.add_block(b"\n".join(batch) + b"\n", source, line)
            line += len(batch)
            batch, size = [], 0
    if batch:
        builder.add_block(b"\n".join(batch) + b"\n", source, line)
