"""The embedded feature store: JSON lines on local disk, Parquet and pandas through extras.

Each record is one line written with a single append, so a killed process never corrupts
earlier lines. Readers keep the latest revision of each attempt and trial (a partial attempt
revision never replaces a whole one).
"""

from __future__ import annotations

import io
import os
import threading
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord, supersedes

Record = AttemptRecord | TrialRecord | SessionRecord
ATTEMPTS_FILE = "attempts.jsonl"
TRIALS_FILE = "trials.jsonl"
# Product sessions only (interactive sessions a person steered), keyed by attempt id.
SESSIONS_FILE = "sessions.jsonl"
# Records may hold task text, file paths and error messages: readable by their owner only,
# like the trace files the SDK writes.
FILE_MODE = 0o600

_encoder = msgspec.json.Encoder()


class JsonLinesSink:
    """Appends attempt records to `attempts.jsonl`, trial records to `trials.jsonl` and
    product-session records to `sessions.jsonl`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}

    def __call__(self, record: Record) -> None:
        name = _file_of(record)
        line = _encoder.encode(record) + b"\n"
        with self._lock:
            fd = self._fds.get(name)
            if fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(
                    self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE
                )
                self._fds[name] = fd
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]

    def sizes(self) -> dict[str, int]:
        """Each feature file's size now (files not written yet are left out)."""
        out: dict[str, int] = {}
        with self._lock:
            for name in (ATTEMPTS_FILE, TRIALS_FILE, SESSIONS_FILE):
                fd = self._fds.get(name)
                try:
                    out[name] = (
                        os.fstat(fd).st_size
                        if fd is not None
                        else ((self.directory / name).stat().st_size)
                    )
                except OSError:
                    continue
        return out

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _file_of(record: Record) -> str:
    if isinstance(record, TrialRecord):
        return TRIALS_FILE
    return SESSIONS_FILE if isinstance(record, SessionRecord) else ATTEMPTS_FILE


class _RecordKey(msgspec.Struct):
    attempt_id: str | None = None
    trial_id: str = ""
    revision: int = 0


_key_decoder = msgspec.json.Decoder(_RecordKey)


def written_keys(
    directory: str | os.PathLike[str], offsets: dict[str, int], *, default_tail: int
) -> set[tuple[str, str, int]]:
    """(kind "a"/"t", attempt or trial id, revision) of the records in the feature files from
    ``offsets[name]`` on (the last ``default_tail`` bytes for a file with no offset); a torn
    or unreadable line is skipped."""
    keys: set[tuple[str, str, int]] = set()
    for name, kind in ((ATTEMPTS_FILE, "a"), (TRIALS_FILE, "t")):
        path = Path(directory) / name
        try:
            with path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                start = offsets.get(name, max(0, size - default_tail))
                if start > size:  # the file was replaced since: read its tail
                    start = max(0, size - default_tail)
                fh.seek(start)
                if start and name not in offsets:
                    fh.readline()  # mid-line: skip to the next whole line
                for line in fh:
                    try:
                        key = _key_decoder.decode(line)
                    except msgspec.DecodeError:
                        continue
                    ident = key.attempt_id if kind == "a" else key.trial_id
                    if ident:
                        keys.add((kind, ident, key.revision))
        except OSError:
            continue
    return keys


class ListSink:
    """Collects records in memory, keeping the latest revision of each."""

    def __init__(self) -> None:
        self.attempts: dict[str, AttemptRecord] = {}
        self.trials: dict[str, TrialRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}

    def __call__(self, record: Record) -> None:
        if isinstance(record, SessionRecord):
            old_session = self.sessions.get(record.attempt_id)
            if old_session is None or record.revision >= old_session.revision:
                self.sessions[record.attempt_id] = record
        elif isinstance(record, TrialRecord):
            old_trial = self.trials.get(record.trial_id)
            if old_trial is None or supersedes(record, old_trial):
                self.trials[record.trial_id] = record
        else:
            old = self.attempts.get(record.attempt_id)
            if old is None or supersedes(record, old):
                self.attempts[record.attempt_id] = record


def read_records(
    directory: str | os.PathLike[str],
) -> tuple[list[AttemptRecord], list[TrialRecord]]:
    """The latest revision of every attempt and trial record in a feature folder."""
    sink = _read(directory)
    return list(sink.attempts.values()), list(sink.trials.values())


def read_sessions(directory: str | os.PathLike[str]) -> list[SessionRecord]:
    """The latest revision of every product-session record in a feature folder."""
    return list(_read(directory, sessions_only=True).sessions.values())


def _read(directory: str | os.PathLike[str], *, sessions_only: bool = False) -> ListSink:
    sink = ListSink()
    folder = Path(directory)
    decoders: tuple[tuple[str, msgspec.json.Decoder[Any]], ...] = (
        ((SESSIONS_FILE, msgspec.json.Decoder(SessionRecord)),)
        if sessions_only
        else (
            (ATTEMPTS_FILE, msgspec.json.Decoder(AttemptRecord)),
            (TRIALS_FILE, msgspec.json.Decoder(TrialRecord)),
        )
    )
    for name, decoder in decoders:
        path = folder / name
        if not path.exists():
            continue
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    try:
                        sink(decoder.decode(line))
                    except msgspec.DecodeError:
                        continue  # a torn last line from a killed writer
    return sink


def flatten(record: Record) -> dict[str, Any]:
    """One flat row with dotted names (`behavior.turn_count`), for tables and DataFrames."""
    row: dict[str, Any] = {}
    for name in record.__struct_fields__:
        value = getattr(record, name)
        if name == "judge" and isinstance(record, AttemptRecord):
            # The judge's fields have open-ended names: one column per `judge.<rubric>.<field>`
            # holding its value (the details stay in the JSON lines record).
            for rubric, fields in sorted((value or {}).items()):
                for field, result in sorted(fields.items()):
                    row[f"judge.{rubric}.{field}"] = msgspec.to_builtins(result.value)
            continue
        if isinstance(value, msgspec.Struct) and not isinstance(value, AttemptRecord):
            for field in value.__struct_fields__:
                row[f"{name}.{field}"] = msgspec.to_builtins(getattr(value, field))
        else:
            row[name] = msgspec.to_builtins(value)
    return row


def to_dataframe(records: Sequence[Record]) -> Any:
    """A pandas DataFrame with one row per record (requires the `pandas` extra)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_dataframe needs pandas: pip install 'agentsignals[pandas]'") from exc
    return pd.DataFrame([flatten(r) for r in records])


def arrow_schema(
    record_type: type[AttemptRecord] | type[TrialRecord] | type[SessionRecord],
) -> Any:
    """The Arrow schema of flattened records (`flatten`), generated from the record types:
    every column typed even when all its values are null or empty lists, so files written
    from different batches (an attempt that edited nothing beside one that did) agree.
    Lists of records (a trial's attempts) are JSON text."""
    import pyarrow as pa

    fields = []
    hints = typing.get_type_hints(record_type)
    for name in record_type.__struct_fields__:
        hint = hints[name]
        group = _struct_type(hint)
        if group is not None and group not in (AttemptRecord, TrialRecord):
            group_hints = typing.get_type_hints(group)
            for field in group.__struct_fields__:
                fields.append(pa.field(f"{name}.{field}", _arrow_type(group_hints[field])))
        else:
            fields.append(pa.field(name, _arrow_type(hint)))
    return pa.schema(fields)


def _struct_type(hint: Any) -> type[msgspec.Struct] | None:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    candidate = args[0] if len(args) == 1 and typing.get_origin(hint) is not list else hint
    if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
        return candidate
    return None


def _arrow_type(hint: Any) -> Any:
    import pyarrow as pa

    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _arrow_type(inner[0]) if len(inner) == 1 else pa.string()
    if origin is list:
        (item,) = typing.get_args(hint)
        struct = _struct_type(item)
        if struct is not None and struct in (AttemptRecord, TrialRecord):
            return pa.string()  # nested records: JSON text
        return pa.list_(_arrow_type(item))
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        if hint in (AttemptRecord, TrialRecord):
            return pa.string()
        struct_hints = typing.get_type_hints(hint)
        return pa.struct(
            [pa.field(f, _arrow_type(struct_hints[f])) for f in hint.__struct_fields__]
        )
    scalar = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
    return scalar.get(hint, pa.string())


def write_parquet(records: Sequence[Record], path: str | os.PathLike[str]) -> None:
    """Write flattened records to Parquet (requires the `parquet` extra), with the explicit
    schema of their record type (`arrow_schema`)."""
    kinds = {type(r) for r in records}
    if len(kinds) > 1:
        raise ValueError("write attempt, trial and session records to separate Parquet files")
    record_type = kinds.pop() if kinds else AttemptRecord
    write_parquet_rows(lambda: iter(records), record_type, path)


# Rows per Parquet row group when writing a stream of records.
_PARQUET_CHUNK = 4096


def write_parquet_rows(
    records: Callable[[], Iterable[Record]],
    record_type: type[AttemptRecord] | type[TrialRecord] | type[SessionRecord],
    path: str | os.PathLike[str],
) -> int:
    """Write records of one type to Parquet in row groups, never holding more than one group
    of rows; returns how many."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Parquet output needs pyarrow: pip install 'agentsignals[parquet]'"
        ) from exc
    schema = arrow_schema(record_type)
    # The judge's columns (`judge.<rubric>.<field>`, open-ended names) after the declared ones,
    # typed by their values: a first pass reads only the judge's values.
    judged: dict[str, _ColumnKinds] = {}
    if record_type is AttemptRecord:
        for record in records():
            for rubric, fields in (getattr(record, "judge", None) or {}).items():
                for field, result in fields.items():
                    kinds = judged.setdefault(f"judge.{rubric}.{field}", _ColumnKinds())
                    kinds.add(msgspec.to_builtins(result.value))
    for name in sorted(judged):
        schema = schema.append(pa.field(name, judged[name].arrow_type(pa)))
    json_columns = [f.name for f in schema if f.type == pa.string()]
    count = 0
    with _create(path) as fh, pq.ParquetWriter(fh, schema) as writer:
        rows: list[dict[str, Any]] = []

        def write_rows() -> None:
            for row in rows:
                for key in json_columns:
                    value = row.get(key)
                    if value is not None and not isinstance(value, str):
                        row[key] = msgspec.json.encode(value).decode()  # a nested record
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            rows.clear()

        for record in records():
            if type(record) is not record_type:
                raise ValueError(
                    "write attempt records and trial records to separate Parquet files"
                )
            rows.append(flatten(record))
            count += 1
            if len(rows) >= _PARQUET_CHUNK:
                write_rows()
        if rows or not count:
            write_rows()
    return count


class _ColumnKinds:
    """The kinds of value seen in one open-ended column, for its Arrow type."""

    __slots__ = ("kinds", "str_lists")

    def __init__(self) -> None:
        self.kinds: set[type] = set()
        self.str_lists = True

    def add(self, value: Any) -> None:
        if value is None:
            return
        self.kinds.add(type(value))
        if isinstance(value, list) and not all(isinstance(x, str) for x in value):
            self.str_lists = False

    def arrow_type(self, pa: Any) -> Any:
        """bool, int64, float64, list of strings, or string (text as it is, anything else as
        JSON text)."""
        kinds = self.kinds
        if kinds == {bool}:
            return pa.bool_()
        if kinds == {int}:
            return pa.int64()
        if kinds and kinds <= {int, float}:
            return pa.float64()
        if kinds == {list} and self.str_lists:
            return pa.list_(pa.string())
        return pa.string()


def write_json_lines(records: Iterable[Record], path: str | os.PathLike[str] | None) -> int:
    """Write records as JSON lines to `path` (stdout when None); returns how many."""
    import sys

    count = 0
    if path is None:
        out = sys.stdout.buffer
        for record in records:
            out.write(_encoder.encode(record) + b"\n")
            count += 1
        out.flush()
        return count
    with _create(path) as fh:
        for record in records:
            fh.write(_encoder.encode(record) + b"\n")
            count += 1
    return count


def write_csv(records: Sequence[Record], path: str | os.PathLike[str] | None) -> int:
    """Write flattened records as CSV (stdout when None): one row per record, dotted column
    names (`behavior.turn_count`) in record order, lists and objects as JSON text, None as an
    empty cell. Returns how many rows."""
    return write_csv_rows(lambda: iter(records), path)


def write_csv_rows(
    records: Callable[[], Iterable[Record]], path: str | os.PathLike[str] | None
) -> int:
    """`write_csv` over a stream read twice (the columns first, then the rows), so no more
    than one record is held at a time."""
    import csv
    import sys

    columns: dict[str, None] = {}
    for record in records():
        columns.update(dict.fromkeys(flatten(record)))
    fh = sys.stdout.buffer if path is None else _create(path)
    count = 0
    try:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        writer = csv.writer(text)
        writer.writerow(columns)
        for record in records():
            row = flatten(record)
            writer.writerow([_cell(row.get(name)) for name in columns])
            count += 1
        text.flush()
        text.detach()
    finally:
        if path is None:
            sys.stdout.buffer.flush()
        else:
            fh.close()
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return value


def _create(path: str | os.PathLike[str]) -> Any:
    """Open `path` for writing, truncated, created owner-only (an existing file keeps its
    mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    return os.fdopen(fd, "wb")


def iter_lines(records: Iterable[Record]) -> Iterator[bytes]:
    for record in records:
        yield _encoder.encode(record) + b"\n"
