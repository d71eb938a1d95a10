"""Feature records to rows of the feature tables and back (see :mod:`.schema`)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord
from agentsignals._store.schema import (
    NULL_LISTS_COLUMN,
    FeatureTable,
    attempts_table,
    sessions_table,
    trials_table,
)

__all__ = ["ATTEMPTS", "SESSIONS", "TRIALS", "record_row", "row_record", "select_list"]

ATTEMPTS: Final = attempts_table()
TRIALS: Final = trials_table()
SESSIONS: Final = sessions_table()

Stored = AttemptRecord | TrialRecord | SessionRecord

_json = msgspec.json.Encoder()


def _ts(ns: int | None) -> str | None:
    if ns is None:
        return None
    seconds, frac = divmod(ns, 1_000_000_000)
    return f"{seconds}.{frac:09d}"


def table_of(record: Stored) -> FeatureTable:
    """The feature table a record is stored in."""
    if isinstance(record, TrialRecord):
        return TRIALS
    return SESSIONS if isinstance(record, SessionRecord) else ATTEMPTS


def record_row(record: Stored) -> dict[str, Any]:
    """One JSONEachRow object for the record's table."""
    table = table_of(record)
    refs = table.record_refs
    # Embedded attempt records are stored by id: don't convert them.
    row: dict[str, Any] = msgspec.to_builtins(
        {name: getattr(record, name) for name in record.__struct_fields__ if name not in refs}
    )
    for name, column in table.time_fields.items():
        row[column] = _ts(row.pop(name))
    for name, (column, kind) in refs.items():
        value = getattr(record, name)
        if kind == "many":
            row[column] = [r.attempt_id for r in value]
        else:
            row[column] = None if value is None else value.attempt_id
    if table.nullable_lists:
        nulls: list[str] = []
        for path in table.nullable_lists:
            *groups, leaf = path.split(".")
            container = row
            for g in groups:
                container = container[g]
            if container[leaf] is None:
                container[leaf] = []
                nulls.append(path)
        row[NULL_LISTS_COLUMN] = nulls
    for name in table.json_fields:
        if row.get(name) is not None:
            row[name] = _json.encode(row[name]).decode()
    if table.json_column is not None:
        row[table.json_column] = _json.encode(record).decode()
    return row


def select_list(table: FeatureTable) -> str:
    """The SELECT expressions that read a row back in :func:`row_record`'s shape."""
    parts: list[str] = []
    times = {column: name for name, column in table.time_fields.items()}
    for column, _ in table.columns:
        if column in times:
            parts.append(f"toUnixTimestamp64Nano({column}) AS {times[column]}")
        else:
            parts.append(column)
    return ", ".join(parts)


_decode_attempt = msgspec.json.Decoder(dict[str, Any]).decode
_decode_trial = msgspec.json.Decoder(TrialRecord).decode


def row_record(table: FeatureTable, line: bytes) -> Stored:
    """The record stored in one JSONEachRow line read with :func:`select_list`."""
    if table.json_column is not None:
        # Trials: the JSON column holds the exact record, embedded attempts included.
        raw = _decode_attempt(line)
        return _decode_trial(raw[table.json_column])
    row = _decode_attempt(line)
    for path in row.pop(NULL_LISTS_COLUMN, ()):
        *groups, leaf = path.split(".")
        container = row
        for g in groups:
            container = container[g]
        container[leaf] = None
    for name in table.json_fields:
        if isinstance(row.get(name), str):
            row[name] = msgspec.json.decode(row[name])
    if table.name == SESSIONS.name:
        return msgspec.convert(row, SessionRecord)
    return msgspec.convert(row, AttemptRecord)
