"""Where the report's columns come from: attempt JSON lines (optionally .gz), the embedded store's
feature folder, Parquet from `agentsignals features -o x.parquet`, trace files or folders
(features are derived on the fly), and ClickHouse/chDB (the feature table, else features of
`otel_traces`).

Every reader reads columns, not records, where the source allows it: JSON lines are decoded a
block at a time straight into columns (`decode`); Parquet reads only the scalar columns and the
lists the report draws, batch by batch; ClickHouse selects only those columns.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from agentsignals._features.record import AttemptRecord
from agentsignals._report.context import Options, needed_columns
from agentsignals._report.decode import (
    BLOCK_BYTES,
    ColumnBuilder,
    Typed,
    Wanted,
    blocks,
    from_lines,
    known_kinds,
)
from agentsignals._report.frame import (
    BOOL,
    CATEGORIES,
    CATEGORY_LETTERS,
    KEEP_LISTS,
    NUM,
    STR,
    TIMELINE,
    Frame,
    Problem,
    canonical,
    concat,
    flatten_value,
)

PathArg = str | os.PathLike[str]
PARQUET_COLUMNS = 8


# --- files -----------------------------------------------------------------------------------


def _open(path: Path) -> Any:
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    return opener(path, "rb")


def read_chunks(path: Path, size: int | None = None) -> Iterator[bytes]:
    """The file's bytes in chunks of about `size`. A compressed file is read in small pieces
    gathered into chunks, so a stream torn partway loses only its last piece: what came
    before is yielded, then the error is raised."""
    size = size or BLOCK_BYTES
    with _open(path) as fh:
        if not isinstance(fh, gzip.GzipFile):
            while chunk := fh.read(size):
                yield chunk
            return
        pieces: list[bytes] = []
        held = 0
        error: BaseException | None = None
        while True:
            try:
                piece = fh.read1(1 << 16)
            except (OSError, EOFError, zlib.error) as exc:
                error = exc
                break
            if not piece:
                break
            pieces.append(piece)
            held += len(piece)
            if held >= size:
                yield b"".join(pieces)
                pieces, held = [], 0
        if pieces:
            yield b"".join(pieces)
        if error is not None:
            raise error


def record_lines(path: Path) -> Iterator[bytes]:
    """The lines of a record file (for `show`, which looks for a few records by id)."""
    with _open(path) as fh:
        yield from fh


def is_record_file(path: Path) -> bool:
    if path.name in ("attempts.jsonl", "attempts.jsonl.gz"):
        return True
    if path.name in ("trials.jsonl", "trials.jsonl.gz", SESSIONS_NAME, SESSIONS_NAME + ".gz"):
        return False
    try:
        with _open(path) as fh:
            head = fh.readline(1 << 20)
    except (OSError, EOFError, zlib.error):
        return False
    return b'"attempt_id"' in head and b'"resourceSpans"' not in head


def record_files(path: Path) -> list[Path]:
    """The attempt-record files of an input (a folder with attempts.jsonl: those alone)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    found = [p for p in files if p.suffix != ".parquet" and is_record_file(p)]
    if path.is_dir() and any(p.name.startswith("attempts.jsonl") for p in found):
        found = [p for p in found if p.name.startswith("attempts.jsonl")]
    return found


def _add_file(builder: ColumnBuilder, path: Path) -> None:
    try:
        for line, block in blocks(read_chunks(path)):
            builder.add_block(block, str(path), line)
    except (OSError, EOFError, zlib.error) as exc:
        # A torn .gz or an unreadable file: what was read so far stays.
        builder.problems.append(Problem(str(path), 0, f"cannot read further: {exc}"))


SESSIONS_NAME = "sessions.jsonl"


def load(
    inputs: Iterable[PathArg] = (),
    *,
    source: str | None = None,
    options: Options | None = None,
    sessions: list[Any] | None = None,
) -> Frame:
    """Columns from feature files (attempt JSON lines, optionally .gz, or Parquet), feature
    folders (the embedded store's attempts.jsonl), trace files or folders (features are
    derived on the fly), and/or a ClickHouse/chDB URL (`source`). With `options`, only the
    columns a report with those options reads (every field otherwise). With a `sessions`
    list, the product-session records of the same inputs are appended to it (sessions.jsonl
    files, sessions derived from traces, the ClickHouse session table)."""
    wanted = needed_columns(options) if options is not None else None
    builder = ColumnBuilder(wanted)
    traces: list[Path] = []
    parquet: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found = record_files(path)
        for p in found:
            _add_file(builder, p)
        if sessions is not None:
            sessions.extend(_session_records(files, builder))
        parquet.extend(p for p in files if p.suffix == ".parquet")
        if not found and not any(p.suffix == ".parquet" for p in files):
            traces.append(path)
    if traces:
        from agentsignals._features.run import extract

        result = extract(traces)
        for problem in result.problems:
            builder.problems.append(Problem(str(problem), 0, "skipped"))
        add_records(builder, result.attempts, "traces")
        if sessions is not None:
            sessions.extend(result.sessions)
    if source is not None:
        read_clickhouse(builder, source)
        if sessions is not None:
            sessions.extend(_clickhouse_sessions(source, builder))
    frame = builder.finish()
    for p in parquet:
        frame = concat(frame, load_parquet(p, wanted))
    if sessions:
        # One record per session (the latest revision), with the joins across all of them.
        from agentsignals._features.session import link_sessions

        latest: dict[str, Any] = {}
        for record in sessions:
            old = latest.get(record.attempt_id)
            if old is None or record.revision >= old.revision:
                latest[record.attempt_id] = record
        sessions[:] = link_sessions(list(latest.values()))
    return frame


def _session_records(files: list[Path], builder: ColumnBuilder) -> list[Any]:
    """The latest revision of each session record in the sessions.jsonl files among `files`;
    a line that is not one is a problem, the rest are kept."""
    from agentsignals._features.record import SessionRecord

    decoder = msgspec.json.Decoder(SessionRecord)
    latest: dict[str, SessionRecord] = {}
    for path in files:
        if path.name not in (SESSIONS_NAME, SESSIONS_NAME + ".gz"):
            continue
        try:
            for number, line in enumerate(record_lines(path), 1):
                if not line.strip():
                    continue
                try:
                    record = decoder.decode(line)
                except msgspec.DecodeError as exc:
                    builder.problems.append(Problem(str(path), number, f"not a session: {exc}"))
                    continue
                old = latest.get(record.attempt_id)
                if old is None or record.revision >= old.revision:
                    latest[record.attempt_id] = record
        except (OSError, EOFError, zlib.error) as exc:
            builder.problems.append(Problem(str(path), 0, f"cannot read further: {exc}"))
    return list(latest.values())


def _clickhouse_sessions(url: str, builder: ColumnBuilder) -> list[Any]:
    from agentsignals._store.clickhouse import ClickHouseError, connect

    try:
        with connect(url) as store:
            return list(store.read_sessions())
    except (ClickHouseError, ImportError, ValueError) as exc:
        builder.problems.append(Problem(url, 0, f"no session records: {exc}"))
        return []


def add_records(
    builder: ColumnBuilder, records: Iterable[AttemptRecord | dict[str, Any]], source: str
) -> None:
    encode = msgspec.json.Encoder().encode
    from_lines((encode(r) for r in records), source, builder)


def from_records(
    records: Iterable[AttemptRecord | dict[str, Any]], *, options: Options | None = None
) -> Frame:
    """Columns from records in memory (AttemptRecord or plain dicts of the same shape)."""
    builder = ColumnBuilder(needed_columns(options) if options is not None else None)
    add_records(builder, records, "records")
    return builder.finish()


# --- Parquet ---------------------------------------------------------------------------------


def _record_fields(kind: type) -> set[str]:
    """Dotted names of the record's fields of one kind (ListType: stored as list columns, or
    as JSON text when their items are objects; DictType: JSON text with open-ended keys).
    Never a column of the report themselves: lists are skipped except the kept ones, dicts
    are read for their members."""
    out: set[str] = set()
    info = msgspec.inspect.type_info(AttemptRecord)
    assert isinstance(info, msgspec.inspect.StructType)

    def walk(t: msgspec.inspect.StructType, prefix: str) -> None:
        for f in t.fields:
            ft = f.type
            if isinstance(ft, msgspec.inspect.UnionType):
                inner = [x for x in ft.types if not isinstance(x, msgspec.inspect.NoneType)]
                ft = inner[0] if len(inner) == 1 else ft
            if isinstance(ft, kind):
                out.add(f"{prefix}{f.name}")
            elif isinstance(ft, msgspec.inspect.StructType):
                walk(ft, f"{prefix}{f.name}.")

    walk(info, "")
    return out


def load_parquet(path: Path, wanted: Wanted | None = None) -> Frame:
    """A Parquet file written by `agentsignals features -o x.parquet` (or `features.
    write_parquet`), read a row group at a time and only in the columns the report uses: every
    wanted scalar column (the judge's `judge.<rubric>.<field>` among them), the timeline's
    categories and the judge's step phases. JSON-object text columns (`resource_attributes`,
    groups a newer writer added) are flattened; every other list is skipped."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError(
            f"{path}: Parquet input needs pyarrow: pip install 'agentsignals[parquet]'"
        ) from exc

    # The categories as a dictionary (a few distinct strings, an index per step).
    leaves = pq.ParquetFile(path).schema
    paths = [leaves.column(i).path for i in range(len(leaves))]
    pf = pq.ParquetFile(
        path, read_dictionary=[p for p in paths if p.startswith(f"{CATEGORIES}.")] or None
    )
    schema = pf.schema_arrow
    lists = _record_fields(msgspec.inspect.ListType)
    dicts = _record_fields(msgspec.inspect.DictType)
    builder = ColumnBuilder(wanted)
    keep = builder.wanted
    declared = known_kinds()
    columns: list[str] = []
    for f in schema:
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            if canonical(f.name) in KEEP_LISTS:
                columns.append(f.name)
        elif f.name in lists:
            continue
        elif f.name in dicts or (f.name not in declared and pa.types.is_string(f.type)):
            columns.append(f.name)  # may be a group held as JSON text: its members may count
        elif f.name == "attempt_id" or keep(f.name):
            columns.append(f.name)
    # A row group is decoded whole, so it is read a few columns at a time: Arrow holds one
    # group of columns of one row group, never the whole file. The lists are read first.
    special = [c for c in columns if canonical(c) in KEEP_LISTS]
    groups = [special]
    rest = [c for c in columns if c not in special]
    groups += [rest[i : i + PARQUET_COLUMNS] for i in range(0, len(rest), PARQUET_COLUMNS)]
    try:
        for rg in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            start = builder.rows
            for group in groups:
                if not group and group is not groups[0]:
                    continue
                values: dict[str, Any] = {}
                kept: dict[str, Any] = {}
                if group:
                    table = pf.read_row_group(rg, columns=group)
                    for name in table.column_names:
                        col = table.column(name).combine_chunks()
                        _arrow_column(name, col, values, kept, builder.declared, dicts, pa)
                    del table
                builder.add_columns(values, start)
                if kept:
                    builder.derive(values, kept, start, n)
            builder.rows += n
    except (OSError, pa.ArrowInvalid) as exc:
        builder.discard_from(builder.rows)  # the row group that failed, partly read
        builder.problems.append(Problem(str(path), 0, f"cannot read further: {exc}"))
    return builder.finish()


def _arrow_column(
    name: str,
    col: Any,
    values: dict[str, Any],
    kept: dict[str, Any],
    declared: dict[str, str],
    dicts: set[str],
    pa: Any,
) -> None:
    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        kept[canonical(name) or name] = _ArrowList(col)  # read by row where needed
        if name == CATEGORIES:
            kept[TIMELINE] = _arrow_timelines(col, pa)
    elif pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        # Unsafe: integers past 2^53 (nanosecond times) round as JSON lines' float64 does.
        arr = col.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        number = BOOL if pa.types.is_boolean(t) else declared.get(name, NUM)
        values[name] = Typed(arr, number if number != STR else NUM)
    elif pa.types.is_null(t):
        if (kind := declared.get(name)) is not None:
            n = len(col)
            values[name] = Typed(
                np.full(n, None, object) if kind == STR else np.full(n, math.nan), kind
            )
    else:
        texts = col.cast(pa.string()).to_pylist() if not pa.types.is_string(t) else col.to_pylist()
        if name in dicts or (
            name not in declared and any(isinstance(v, str) and v.startswith("{") for v in texts)
        ):
            _flatten_json_column(name, texts, values, kept)
        else:
            values[name] = texts


class _ArrowList:
    """An Arrow list column read one row at a time."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int) -> Any:
        return self.array[i].as_py()


def _arrow_timelines(col: Any, pa: Any) -> list[str | None]:
    """Each row's timeline letters, computed in Arrow: the categories are dictionary-encoded,
    each distinct one mapped to its letter once, and the rows cut from one string."""
    import pyarrow.compute as pc

    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    lengths = np.nan_to_num(lengths.astype(np.float64), nan=-1.0).astype(np.int64)
    flat = pc.list_flatten(col)
    if not pa.types.is_dictionary(flat.type):
        if not pa.types.is_string(flat.type):
            flat = flat.cast(pa.string())
        flat = pc.dictionary_encode(flat)
    names = flat.dictionary.to_pylist()
    # One letter per distinct category, and "o" for a missing one (the last slot).
    lut = np.array(
        [ord(CATEGORY_LETTERS.get(v, "o") if isinstance(v, str) else "o") for v in names]
        + [ord("o")],
        dtype=np.uint8,
    )
    indices = pc.fill_null(flat.indices, len(names)).to_numpy(zero_copy_only=False)
    letters = lut[indices.astype(np.intp)].tobytes().decode("ascii")
    ends = np.cumsum(np.maximum(lengths, 0))
    starts = ends - np.maximum(lengths, 0)
    return [
        letters[a:b] if size > 0 else None
        for a, b, size in zip(starts.tolist(), ends.tolist(), lengths.tolist(), strict=True)
    ]


def _flatten_json_column(
    name: str, texts: list[Any], values: dict[str, Any], kept: dict[str, Any]
) -> None:
    """A column of JSON objects as text (a dict field of the record, such as
    `resource_attributes` or `judge` as ClickHouse holds it, or a group the writer did not
    know): its scalars under their report names, and the kept lists."""
    decode = msgspec.json.Decoder().decode
    n = len(texts)
    for i, v in enumerate(texts):
        if not (isinstance(v, str) and v.startswith("{")):
            continue
        flat: dict[str, Any] = {}
        lists: dict[str, Any] = {}
        try:
            flatten_value(decode(v), name, flat, lists)
        except msgspec.DecodeError:
            continue
        for out, got in ((values, flat), (kept, lists)):
            for key, value in got.items():
                col = out.get(key)
                if col is None:
                    col = out[key] = [None] * n
                col[i] = value


# --- ClickHouse ------------------------------------------------------------------------------


def read_clickhouse(builder: ColumnBuilder, url: str) -> None:
    """The feature table's attempts, selecting only the report's columns; when the table has
    none, the features of the traces in `otel_traces` (what `agentsignals features --source`
    derives)."""
    from agentsignals._store.clickhouse import ClickHouseError

    try:
        _read_clickhouse(builder, url)
    except (ClickHouseError, ImportError) as exc:  # unreachable, chDB missing: one line
        raise ValueError(f"{url}: {exc}") from exc


def _read_clickhouse(builder: ColumnBuilder, url: str) -> None:
    from agentsignals._store import records as _records
    from agentsignals._store.clickhouse import connect, features_from_clickhouse

    table = _records.ATTEMPTS
    with connect(url) as store:
        problems = store.feature_schema_problems()
        if problems:
            raise ValueError(
                f"{url}: the feature tables were made by another version of agentsignals: "
                + "; ".join(problems)
            )
        names, sql = _attempts_query(table, store.database, builder.wanted)
        rows = 0
        decoder = msgspec.json.Decoder(list[Any])
        for chunk in store.query_lines(sql, "JSONCompactEachRow"):
            part = decoder.decode_lines(chunk)
            if not part:
                continue
            columns = list(zip(*part, strict=True))
            values: dict[str, Any] = {}
            kept: dict[str, Any] = {}
            for name, col in zip(names, columns, strict=True):
                if name == TIMELINE:
                    kept[name] = [v or None for v in col]
                elif name == _JUDGE_VALUES:
                    _judge_values(col, values, kept, builder.wanted)
                elif name in table.json_fields:
                    _flatten_json_column(name, list(col), values, kept)
                else:
                    values[name] = col
            builder.ingest(values, kept, len(part))
            rows += len(part)
    if rows == 0:
        add_records(builder, features_from_clickhouse(url).attempts, url)


# The judge's results as the server reads them out of the `judge` JSON text: per rubric, per
# field, the raw JSON of its `value` (explanations, citations and the rest stay on the server).
_JUDGE_VALUES = "_judge_values"
_JUDGE_SQL = (
    "arrayMap(r -> (r.1, arrayMap(f -> (f.1, JSONExtractRaw(f.2, 'value')), "
    "JSONExtractKeysAndValuesRaw(r.2))), JSONExtractKeysAndValuesRaw(ifNull(judge, '{}')))"
)


def _attempts_query(table: Any, database: str, wanted: Wanted) -> tuple[list[str], str]:
    """The SELECT of the report's columns: every wanted scalar of the record (group members by
    their dotted names), the timeline letters, the values of the judge's results, and the
    other JSON-text fields (`resource_attributes`) whole."""
    declared = known_kinds()
    times = dict(table.time_fields)
    names: list[str] = []
    exprs: list[str] = []
    for name in declared:
        if name != "attempt_id" and not wanted(name):
            continue
        names.append(name)
        if name in times:
            exprs.append(f"toUnixTimestamp64Nano({times[name]})")
        else:
            exprs.append(name)
    # The timeline letters are made by the server: one short string per attempt crosses the
    # wire instead of its list of categories.
    letter = ", ".join(f"c = '{cat}', '{ch}'" for cat, ch in CATEGORY_LETTERS.items())
    names.append(TIMELINE)
    exprs.append(f"arrayStringConcat(arrayMap(c -> multiIf({letter}, 'o'), {CATEGORIES}))")
    for name in table.json_fields:
        names.append(_JUDGE_VALUES if name == "judge" else name)
        exprs.append(_JUDGE_SQL if name == "judge" else name)
    sql = f"SELECT {', '.join(exprs)} FROM {database}.{table.name} FINAL ORDER BY {table.order_by}"
    return names, sql


def _judge_values(
    col: Iterable[Any], values: dict[str, Any], kept: dict[str, Any], wanted: Wanted
) -> None:
    """Columns `judge.<rubric>.<field>` from the server's [[rubric, [[field, raw value]]]]."""
    decode = msgspec.json.Decoder().decode
    rows = list(col)
    n = len(rows)
    for i, rubrics in enumerate(rows):
        for rubric, fields in rubrics or ():
            for field, raw in fields:
                name = f"judge.{rubric}.{field}"
                keep = name in KEEP_LISTS
                if not raw or not (keep or wanted(name)):
                    continue
                try:
                    value = decode(raw)
                except msgspec.DecodeError:
                    continue
                if isinstance(value, dict):
                    continue
                if isinstance(value, list) != keep:
                    continue
                out = kept if keep else values
                target = out.get(name)
                if target is None:
                    target = out[name] = [None] * n
                target[i] = value


__all__ = [
    "from_records",
    "is_record_file",
    "load",
    "load_parquet",
    "record_files",
    "record_lines",
]
