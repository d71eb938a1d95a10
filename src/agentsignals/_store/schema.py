"""ClickHouse DDL: the Collector exporter's trace tables, and our feature tables.

``otel_traces`` is the table the OpenTelemetry Collector's ClickHouse exporter creates (columns,
codecs, skip indexes, engine, partitioning and sort key as the exporter has them), so a real
Collector and agentsignals can write to and read from one table. Every attribute value is a
string there. ``otel_traces_trace_id_ts`` and its materialized view are the exporter's trace
lookup (first and last span start per trace id).

The feature tables are generated from the msgspec record types
(:class:`~agentsignals._features.record.AttemptRecord`, ``TrialRecord``), so they cannot drift
from them:

* scalar fields become typed columns (``Nullable(Int64)``, ``Nullable(Float64)``,
  ``Nullable(Bool)``, ``Nullable(String)``); ``started_at_ns``/``ended_at_ns`` become
  ``started_at``/``ended_at DateTime64(9, 'UTC')``;
* each signal group (``treatment``, ``behavior``, ...) becomes one named ``Tuple`` column, so
  SQL reads ``behavior.turn_count`` or ``verification.reward`` exactly like the flattened names
  of :func:`agentsignals.features.to_rows`. (Plain columns named ``behavior.x`` would not do:
  ClickHouse treats dotted ``Array`` columns with one prefix as a ``Nested`` structure and
  requires equal array lengths in every row.)
* lists become ``Array``; ClickHouse has no ``Nullable(Array)``, so a list that was None (not
  recorded, as opposed to recorded empty) is stored as ``[]`` and its dotted name is listed in
  ``null_lists``;
* ``ReplacingMergeTree(revision)`` ordered by the record id keeps the latest revision (read
  with ``FINAL`` or ``argMax``). The key is the id alone: ``task_id`` is only known once the
  attempt span arrives, so an early incomplete revision and the complete one would otherwise
  get different keys and both survive. Attempts use a materialized ``record_version`` instead,
  which ranks every whole revision above any partial one (late spans alone, see
  ``AttemptRecord.partial``), as the file readers do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord

__all__ = [
    "ATTEMPTS_TABLE",
    "DEFAULT_DATABASE",
    "SCHEMA_FILES",
    "SESSIONS_TABLE",
    "TRACES_TABLE",
    "TRIALS_TABLE",
    "FeatureTable",
    "attempts_table",
    "check_identifier",
    "feature_ddl",
    "trace_ddl",
    "trials_table",
    "write_schema_files",
]

DEFAULT_DATABASE: Final = "otel"
"""The Collector exporter's default database."""
TRACES_TABLE: Final = "otel_traces"
ATTEMPTS_TABLE: Final = "agentsignals_attempts"
TRIALS_TABLE: Final = "agentsignals_trials"
SESSIONS_TABLE: Final = "agentsignals_sessions"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_identifier(name: str, what: str = "name") -> str:
    """``name`` if it is a plain SQL identifier (letters, digits, ``_``); ValueError otherwise."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid ClickHouse {what} {name!r}: use letters, digits and '_'")
    return name


# ------------------------------------------------------------------------------- traces

_TRACES = """\
CREATE TABLE IF NOT EXISTS {db}.{table}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested
    (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested
    (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
)
ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
{ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

_TRACE_ID_TS = """\
CREATE TABLE IF NOT EXISTS {db}.{table}_trace_id_ts
(
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = {engine}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
{ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

_TRACE_ID_TS_MV = """\
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_trace_id_ts_mv
TO {db}.{table}_trace_id_ts
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM {db}.{table}
WHERE TraceId != ''
GROUP BY TraceId
"""


def trace_ddl(
    database: str = DEFAULT_DATABASE,
    table: str = TRACES_TABLE,
    *,
    engine: str = "MergeTree()",
    ttl_days: int = 0,
) -> list[str]:
    """The statements that create the trace table, its trace-id lookup table and the view
    that fills it (each ``IF NOT EXISTS``), in order. ``engine`` and ``ttl_days`` are the
    exporter's ``table_engine`` and ``ttl`` options."""
    db = check_identifier(database, "database")
    check_identifier(table, "table")
    ttl = f"TTL toDateTime(Timestamp) + toIntervalDay({int(ttl_days)})\n" if ttl_days > 0 else ""
    ttl_ts = f"TTL Start + toIntervalDay({int(ttl_days)})\n" if ttl_days > 0 else ""
    return [
        _TRACES.format(db=db, table=table, engine=engine, ttl=ttl),
        _TRACE_ID_TS.format(db=db, table=table, engine=engine, ttl=ttl_ts),
        _TRACE_ID_TS_MV.format(db=db, table=table),
    ]


# ----------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureTable:
    """A feature table derived from a record type: its DDL and how rows map to records."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (column name, ClickHouse type)
    order_by: str
    # Dotted paths of list fields that may be None (stored as [] and named in null_lists).
    nullable_lists: tuple[str, ...] = ()
    # record field -> column, for the fields stored as DateTime64 (ints of Unix ns in records).
    time_fields: dict[str, str] = field(default_factory=dict)
    # record field -> (column, kind) for embedded records stored by id ("one" or "many").
    record_refs: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Column holding the whole record as JSON (exact round trip of embedded records).
    json_column: str | None = None
    # Fields with open-ended keys (the judge's `judge.<rubric>.<field>`), stored as JSON text
    # in a Nullable(String) column of the same name (ClickHouse reads them with JSONExtract).
    json_fields: tuple[str, ...] = ()
    # ReplacingMergeTree's version: (column, type and MATERIALIZED expression), or None for
    # the plain revision. Attempts rank whole revisions above partial ones.
    version: tuple[str, str] | None = None

    @property
    def version_column(self) -> str:
        return self.version[0] if self.version is not None else "revision"

    def ddl(self, database: str = DEFAULT_DATABASE) -> str:
        db = check_identifier(database, "database")
        columns = [*self.columns, *([self.version] if self.version is not None else [])]
        width = max(len(name) for name, _ in columns)
        body = ",\n".join(f"    {name.ljust(width)} {_pretty(ch)}" for name, ch in columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {db}.{self.name}\n(\n{body}\n)\n"
            f"ENGINE = ReplacingMergeTree({self.version_column})\nORDER BY {self.order_by}\n"
        )


def _pretty(ch: str) -> str:
    """A group's ``Tuple(a T, b T)`` with one element per line; other types unchanged."""
    if not ch.startswith("Tuple("):
        return ch
    parts: list[str] = []
    depth = 0
    start = len("Tuple(")
    for i, c in enumerate(ch[start:-1], start):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(ch[start:i].strip())
            start = i + 1
    parts.append(ch[start:-1].strip())
    inner = ",\n".join(f"        {p}" for p in parts)
    return f"Tuple(\n{inner}\n    )"


_TIME_FIELDS: Final = {"started_at_ns": "started_at", "ended_at_ns": "ended_at"}
_TIME_TYPE: Final = "DateTime64(9, 'UTC')"
# ReplacingMergeTree's version column must be unsigned.
_TYPE_OVERRIDES: Final = {"revision": "UInt32"}
NULL_LISTS_COLUMN: Final = "null_lists"
VERSION_COLUMN: Final = "record_version"


def _scalar(t: msgspec.inspect.Type) -> str | None:
    if isinstance(t, msgspec.inspect.BoolType):
        return "Bool"
    if isinstance(t, msgspec.inspect.IntType):
        return "Int64"
    if isinstance(t, msgspec.inspect.FloatType):
        return "Float64"
    if isinstance(t, msgspec.inspect.StrType):
        return "String"
    return None


def _column_type(t: msgspec.inspect.Type, path: str, nullable_lists: list[str]) -> str:
    """The ClickHouse type of one record field (``path`` is its dotted name)."""
    scalar = _scalar(t)
    if scalar is not None:
        return scalar
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        if len(inner) == 1 and len(t.types) == 2:
            (only,) = inner
            if isinstance(only, msgspec.inspect.ListType):
                nullable_lists.append(path)
                return _column_type(only, path, [])
            scalar = _scalar(only)
            if scalar is not None:
                return f"Nullable({scalar})"
    if isinstance(t, msgspec.inspect.ListType):
        return f"Array({_item_type(t.item_type, path)})"
    if isinstance(t, msgspec.inspect.StructType):
        parts = [
            f"{f.name} {_column_type(f.type, f'{path}.{f.name}', nullable_lists)}" for f in t.fields
        ]
        return f"Tuple({', '.join(parts)})"
    raise TypeError(f"no ClickHouse column type for record field {path!r} ({t!r})")


def _item_type(t: msgspec.inspect.Type, path: str) -> str:
    """The type of a list's items (lists of records become lists of tuples; an optional
    scalar item, a null inside a series, is Nullable)."""
    scalar = _scalar(t)
    if scalar is not None:
        return scalar
    if isinstance(t, msgspec.inspect.UnionType):
        options = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        scalar = _scalar(options[0]) if len(options) == 1 else None
        if scalar is not None:
            return f"Nullable({scalar})"
    if isinstance(t, msgspec.inspect.ListType):
        return f"Array({_item_type(t.item_type, path)})"
    if isinstance(t, msgspec.inspect.StructType):
        inner: list[str] = []
        parts = [f"{f.name} {_column_type(f.type, f'{path}.{f.name}', inner)}" for f in t.fields]
        if inner:
            raise TypeError(f"optional list inside the list {path!r} cannot be stored")
        return f"Tuple({', '.join(parts)})"
    raise TypeError(f"no ClickHouse type for the items of {path!r} ({t!r})")


def _is_dict(t: msgspec.inspect.Type) -> bool:
    """A dict field, or an optional one."""
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        return len(inner) == 1 and _is_dict(inner[0])
    return isinstance(t, msgspec.inspect.DictType)


def _record_type(t: msgspec.inspect.Type) -> type[AttemptRecord] | None:
    """AttemptRecord when ``t`` is AttemptRecord, ``AttemptRecord | None`` or a list of it."""
    if isinstance(t, msgspec.inspect.UnionType):
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        return _record_type(inner[0]) if len(inner) == 1 else None
    if isinstance(t, msgspec.inspect.ListType):
        return _record_type(t.item_type)
    if isinstance(t, msgspec.inspect.StructType) and t.cls is AttemptRecord:
        return AttemptRecord
    return None


def _table(name: str, record: type[msgspec.Struct], order_by: str) -> FeatureTable:
    info = msgspec.inspect.type_info(record)
    assert isinstance(info, msgspec.inspect.StructType)
    columns: list[tuple[str, str]] = []
    nullable_lists: list[str] = []
    time_fields: dict[str, str] = {}
    refs: dict[str, tuple[str, str]] = {}
    json_fields: list[str] = []
    for f in info.fields:
        if _is_dict(f.type):
            columns.append((f.name, "Nullable(String)"))
            json_fields.append(f.name)
            continue
        if _record_type(f.type) is not None:
            many = isinstance(f.type, msgspec.inspect.ListType)
            stem = f.name[:-3] + "y" if f.name.endswith("ies") else f.name.rstrip("s")
            column = f"{stem}_attempt_ids" if many else f"{f.name}_id"
            columns.append((column, "Array(String)" if many else "Nullable(String)"))
            refs[f.name] = (column, "many" if many else "one")
            continue
        if f.name in _TIME_FIELDS:
            column = _TIME_FIELDS[f.name]
            columns.append((column, f"Nullable({_TIME_TYPE})"))
            time_fields[f.name] = column
            continue
        ch = _TYPE_OVERRIDES.get(f.name) or _column_type(f.type, f.name, nullable_lists)
        columns.append((f.name, ch))
    if nullable_lists:
        columns.append((NULL_LISTS_COLUMN, "Array(LowCardinality(String))"))
    json_column = None
    if refs:
        json_column = "record_json"
        columns.append((json_column, "String CODEC(ZSTD(3))"))
    names = [c for c, _ in columns]
    if len(set(names)) != len(names):
        raise TypeError(f"duplicate column names in {name}: {names}")
    version = None
    if "partial" in names:
        # A partial revision (late spans alone) must never replace a whole one, whatever its
        # revision number: whole revisions rank 2^32 above partial ones.
        version = (VERSION_COLUMN, "UInt64 MATERIALIZED revision + if(partial, 0, 4294967296)")
    return FeatureTable(
        name=name,
        columns=tuple(columns),
        order_by=order_by,
        nullable_lists=tuple(nullable_lists),
        time_fields=time_fields,
        record_refs=refs,
        json_column=json_column,
        json_fields=tuple(json_fields),
        version=version,
    )


def attempts_table() -> FeatureTable:
    """The attempt feature table, generated from :class:`AttemptRecord`."""
    return _table(ATTEMPTS_TABLE, AttemptRecord, "attempt_id")


def trials_table() -> FeatureTable:
    """The trial feature table, generated from :class:`TrialRecord` (embedded attempts are
    stored by id, and the whole record as JSON)."""
    return _table(TRIALS_TABLE, TrialRecord, "trial_id")


def sessions_table() -> FeatureTable:
    """The product-session table, generated from :class:`SessionRecord` (one row per
    interactive session, keyed by its attempt id; eval runs have no row)."""
    return _table(SESSIONS_TABLE, SessionRecord, "attempt_id")


def feature_ddl(database: str = DEFAULT_DATABASE) -> list[str]:
    """The statements that create the feature tables (each ``IF NOT EXISTS``): attempts,
    trials, product sessions."""
    return [
        attempts_table().ddl(database),
        trials_table().ddl(database),
        sessions_table().ddl(database),
    ]


def schema_files(database: str = DEFAULT_DATABASE) -> dict[str, str]:
    """File name -> one statement, in the order to run them (``collectors/clickhouse/schema``)."""
    traces, lookup, view = trace_ddl(database)
    attempts, trials, sessions = feature_ddl(database)
    return {
        "00_database.sql": f"CREATE DATABASE IF NOT EXISTS {check_identifier(database)}\n",
        f"10_{TRACES_TABLE}.sql": traces,
        f"11_{TRACES_TABLE}_trace_id_ts.sql": lookup,
        f"12_{TRACES_TABLE}_trace_id_ts_mv.sql": view,
        f"20_{ATTEMPTS_TABLE}.sql": attempts,
        f"21_{TRIALS_TABLE}.sql": trials,
        f"22_{SESSIONS_TABLE}.sql": sessions,
    }


SCHEMA_FILES: Final = tuple(schema_files())
"""Names of the shipped schema files, in order."""


def write_schema_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Write :func:`schema_files` (database ``otel``) to ``directory``; returns the paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, sql in schema_files().items():
        path = folder / name
        path.write_text(sql)
        paths.append(path)
    return paths
