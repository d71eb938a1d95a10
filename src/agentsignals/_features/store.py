"""The embedded feature store: JSON lines on local disk, Parquet and pandas through extras.

Each record is one line written with a single append, so a killed process never corrupts
earlier lines. Readers keep the latest revision of each attempt and trial (a partial attempt
revision never replaces a whole one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from agentsignals._features.record import AttemptRecord, TrialRecord, supersedes

Record = AttemptRecord | TrialRecord
ATTEMPTS_FILE = "attempts.jsonl"
TRIALS_FILE = "trials.jsonl"

_encoder = msgspec.json.Encoder()


class JsonLinesSink:
    """Appends attempt records to `attempts.jsonl` and trial records to `trials.jsonl`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}

    def __call__(self, record: Record) -> None:
        name = TRIALS_FILE if isinstance(record, TrialRecord) else ATTEMPTS_FILE
        line = _encoder.encode(record) + b"\n"
        with self._lock:
            fd = self._fds.get(name)
            if fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._fds[name] = fd
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


class ListSink:
    """Collects records in memory, keeping the latest revision of each."""

    def __init__(self) -> None:
        self.attempts: dict[str, AttemptRecord] = {}
        self.trials: dict[str, TrialRecord] = {}

    def __call__(self, record: Record) -> None:
        if isinstance(record, TrialRecord):
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
    sink = ListSink()
    folder = Path(directory)
    decoders: tuple[tuple[str, msgspec.json.Decoder[Record]], ...] = (
        (ATTEMPTS_FILE, msgspec.json.Decoder(AttemptRecord)),
        (TRIALS_FILE, msgspec.json.Decoder(TrialRecord)),
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
    return list(sink.attempts.values()), list(sink.trials.values())


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


def write_parquet(records: Sequence[Record], path: str | os.PathLike[str]) -> None:
    """Write flattened records to Parquet (requires the `parquet` extra)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Parquet output needs pyarrow: pip install 'agentsignals[parquet]'"
        ) from exc
    rows = [flatten(r) for r in records]
    # Nested lists of objects (touched_file_lines, retries) go in as JSON text: Parquet needs
    # one type per column, and these are for reading back, not for filtering.
    for row in rows:
        for key, value in row.items():
            if (isinstance(value, list) and value and isinstance(value[0], dict)) or isinstance(
                value, dict
            ):
                row[key] = msgspec.json.encode(value).decode()
    pq.write_table(pa.Table.from_pylist(rows), str(path))


def write_json_lines(records: Iterable[Record], path: str | os.PathLike[str] | None) -> int:
    """Write records as JSON lines to `path` (stdout when None); returns how many."""
    import sys

    count = 0
    out = sys.stdout.buffer if path is None else open(path, "wb")  # noqa: SIM115
    try:
        for record in records:
            out.write(_encoder.encode(record) + b"\n")
            count += 1
    finally:
        if path is not None:
            out.close()
        else:
            out.flush()
    return count


def iter_lines(records: Iterable[Record]) -> Iterator[bytes]:
    for record in records:
        yield _encoder.encode(record) + b"\n"
