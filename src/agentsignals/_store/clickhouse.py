"""ClickHouse as the trace and feature store: chDB in process, or a server over HTTP.

One interface, two backends, chosen by the URL:

* ``chdb:///path/to/dir`` (or ``clickhouse+chdb:///path``): the ClickHouse engine in this
  process (the ``chdb`` package), data kept in that directory. ``chdb://:memory:`` keeps
  nothing. chDB allows one data directory per process at a time.
* ``clickhouse://user:password@host:8123/database`` (``clickhouses://`` or ``?secure=true``
  for HTTPS; ``http://`` and ``https://`` are accepted too): a ClickHouse server's HTTP
  interface, through the standard library (no client package needed; inserts are sent
  gzip-compressed).

The database defaults to ``otel``, the Collector exporter's default. Either way the tables
are the ones the OpenTelemetry Collector's ClickHouse exporter creates (``otel_traces`` and its
trace-id lookup) plus ``agentsignals_attempts`` / ``agentsignals_trials``::

    from agentsignals._store.clickhouse import connect, features_from_clickhouse

    with connect("chdb:///tmp/agentsignals-db") as store:
        store.insert_spans(spans)            # typed Spans -> otel_traces, in big batches
        for batch in store.read_spans():     # whole traces, in trace-id order
            ...
    result = features_from_clickhouse("chdb:///tmp/agentsignals-db")

Backends only move bytes (SQL in, JSON lines out); rows are encoded and decoded here.
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord
from agentsignals._spans.model import Span
from agentsignals._store import records as _records
from agentsignals._store import schema as _schema
from agentsignals._store.traces import (
    INSERT_COLUMNS,
    SELECT_COLUMNS,
    SpanRowDecoder,
    SpanRowEncoder,
)

if TYPE_CHECKING:
    from agentsignals._features.run import FeatureSet
    from agentsignals._spans.decode import DecodeProblem

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "ClickHouseError",
    "ClickHouseStore",
    "StoreURL",
    "StoreURLError",
    "connect",
    "features_from_clickhouse",
    "insert_otlp_files",
    "parse_url",
    "read_spans",
]

DEFAULT_BATCH_ROWS: Final = 20_000
"""Spans per insert. ClickHouse wants >= ~5,000 rows per insert (or <= 1 insert/s)."""
MIN_BATCH_ROWS: Final = 5_000

# Output settings every query runs with, so both backends (and any server version) return
# the same JSON: 64-bit ints as numbers, named tuples as objects.
SETTINGS: Final[dict[str, str]] = {
    "output_format_json_quote_64bit_integers": "0",
    "output_format_json_named_tuples_as_objects": "1",
    "input_format_json_named_tuples_as_objects": "1",
    "input_format_json_defaults_for_missing_elements_in_named_tuple": "1",
}

_URL_FORMS: Final = (
    "chdb:///path/to/dir, chdb://:memory:, clickhouse+chdb:///path/to/dir, "
    "clickhouse://user:password@host:8123/database, clickhouses://host:8443/database"
)


class StoreURLError(ValueError):
    """A store URL that names no usable ClickHouse backend."""


class ClickHouseError(RuntimeError):
    """ClickHouse refused a statement (the server's or chDB's message is in the text)."""


# --------------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL."""

    backend: str  # "chdb" or "http"
    database: str = _schema.DEFAULT_DATABASE
    path: str | None = None  # chdb: data directory, or ":memory:"
    host: str | None = None
    port: int | None = None
    secure: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def http_base(self) -> str:
        """``http(s)://host:port/`` (HTTP backend only)."""
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{'https' if self.secure else 'http'}://{host}:{self.port}/"

    def __str__(self) -> str:
        if self.backend == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        user = f"{self.user}@" if self.user else ""
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{user}{self.host}:{self.port}/{self.database}"


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_HTTP_SCHEMES: Final = frozenset(
    {"clickhouse", "clickhouses", "clickhouse+http", "clickhouse+https", "http", "https"}
)


def parse_url(url: str) -> StoreURL:
    """Parse a store URL (see the module docstring); StoreURLError says what is wrong."""
    if not isinstance(url, str) or "://" not in url:
        raise StoreURLError(f"not a ClickHouse store URL: {url!r}; use one of: {_URL_FORMS}")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    body, _, query_string = rest.partition("?")
    try:
        query = dict(urllib.parse.parse_qsl(query_string, strict_parsing=bool(query_string)))
    except ValueError as exc:
        raise StoreURLError(f"malformed query string in {url!r}: {exc}") from None
    database = query.pop("database", None)
    if scheme in ("chdb", "clickhouse+chdb"):
        path = urllib.parse.unquote(body)
        if not path:
            raise StoreURLError(
                f"{url!r} names no data directory: use chdb:///absolute/path, "
                "chdb://relative/path or chdb://:memory:"
            )
        if query:
            raise StoreURLError(f"unknown option(s) {sorted(query)} in {url!r}")
        if path != ":memory:":
            path = os.path.expanduser(path)
        return StoreURL("chdb", _database(database, url), path=path)
    if scheme not in _HTTP_SCHEMES:
        raise StoreURLError(f"unsupported scheme {scheme!r} in {url!r}; use one of: {_URL_FORMS}")
    parts = urllib.parse.urlsplit(f"http://{body}")
    try:
        port = parts.port
    except ValueError:
        raise StoreURLError(f"invalid port in {url!r}") from None
    if not parts.hostname:
        raise StoreURLError(f"{url!r} names no host: use clickhouse://host:8123/database")
    secure = scheme in ("clickhouses", "clickhouse+https", "https")
    secure = secure or query.pop("secure", "").lower() in _TRUE
    if query:
        raise StoreURLError(f"unknown option(s) {sorted(query)} in {url!r}")
    if port is None:
        port = 8443 if secure else 8123
    if port in (9000, 9440):
        raise StoreURLError(
            f"port {port} in {url!r} is ClickHouse's native protocol; "
            "use its HTTP interface (8123, or 8443 with TLS)"
        )
    path_db = parts.path.strip("/")
    if path_db and database and path_db != database:
        raise StoreURLError(f"{url!r} names two databases ({path_db!r} and {database!r})")
    return StoreURL(
        "http",
        _database(path_db or database, url),
        host=parts.hostname,
        port=port,
        secure=secure,
        user=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password is not None else None,
    )


def _database(name: str | None, url: str) -> str:
    if not name:
        return _schema.DEFAULT_DATABASE
    try:
        return _schema.check_identifier(name, "database")
    except ValueError as exc:
        raise StoreURLError(f"{exc} (in {url!r})") from None


# ----------------------------------------------------------------------------- backends


class Backend(Protocol):
    """Moves SQL and bytes; knows nothing about tables."""

    def execute(self, sql: str) -> None:
        """Run one statement that returns nothing."""

    def stream(self, sql: str) -> Iterator[bytes]:
        """Run a query (its FORMAT in the SQL) and yield the result in chunks."""

    def insert(self, statement: str, data: bytes) -> None:
        """``statement`` is ``INSERT INTO t (cols) FORMAT F``; ``data`` its rows."""

    def use(self, database: str) -> None:
        """Make ``database`` the default for unqualified table names."""

    def close(self) -> None: ...


_chdb_lock = threading.Lock()
_chdb_open: dict[str, int] = {}  # data directory -> open sessions (chDB allows one path)


class ChdbBackend:
    """The ClickHouse engine in process (``pip install chdb``)."""

    def __init__(self, path: str) -> None:
        try:
            session_module: Any = importlib.import_module("chdb.session")
        except ImportError as exc:
            raise ImportError(
                "chdb:// URLs need chDB, the in-process ClickHouse engine: pip install chdb"
            ) from exc
        key = path if path == ":memory:" else str(Path(path).resolve())
        with _chdb_lock:
            others = [p for p, n in _chdb_open.items() if n > 0 and p != key]
            if others:
                raise ClickHouseError(
                    f"chDB already has {others[0]!r} open in this process and allows one data "
                    f"directory at a time; close that store before opening {key!r}"
                )
            if key != ":memory:":
                Path(key).mkdir(parents=True, exist_ok=True)
            try:
                self._session: Any = session_module.Session(key)
            except Exception as exc:
                raise ClickHouseError(f"cannot open chDB at {key!r}: {exc}") from None
            _chdb_open[key] = _chdb_open.get(key, 0) + 1
        self._key = key
        self._closed = False
        for name, value in SETTINGS.items():
            self.execute(f"SET {name} = {value}")

    def _query(self, sql: str | bytes, fmt: str = "TabSeparated") -> Any:
        if self._closed:
            raise ClickHouseError("the chDB store is closed")
        try:
            return self._session.query(sql, fmt)
        except Exception as exc:  # chdb raises ChdbError/RuntimeError with the server text
            raise ClickHouseError(str(exc).strip()) from None

    def execute(self, sql: str) -> None:
        self._query(sql)

    def stream(self, sql: str) -> Iterator[bytes]:
        if self._closed:
            raise ClickHouseError("the chDB store is closed")
        try:
            result = self._session.send_query(sql, "TabSeparated")
        except Exception as exc:
            if "Streaming query is not supported" not in str(exc):
                raise ClickHouseError(str(exc).strip()) from None
            # DESCRIBE, SHOW, ...: small results that chDB only returns whole.
            yield self._query(sql).bytes()
            return
        try:
            while True:
                try:
                    chunk = result.fetch()
                except Exception as exc:
                    raise ClickHouseError(str(exc).strip()) from None
                if chunk is None:
                    return
                data = chunk.bytes()
                if data:
                    yield data
        finally:
            result.close()

    def insert(self, statement: str, data: bytes) -> None:
        # Not send_insert(): in chDB 4.4 a streamed insert that ClickHouse rejects can report
        # success; a plain query with the rows inline raises.
        self._query(statement.encode() + b"\n" + data)

    def use(self, database: str) -> None:
        self.execute(f"USE {database}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _chdb_lock:
            try:
                self._session.close()
            finally:
                left = _chdb_open.get(self._key, 1) - 1
                if left > 0:
                    _chdb_open[self._key] = left
                else:
                    _chdb_open.pop(self._key, None)


class HttpBackend:
    """A ClickHouse server's HTTP interface through the standard library."""

    def __init__(self, url: StoreURL, *, timeout: float = 300.0) -> None:
        self._url = url
        self._timeout = timeout
        self._database: str | None = None
        headers = {"User-Agent": "agentsignals"}
        if url.user is not None:
            headers["X-ClickHouse-User"] = url.user
        if url.password is not None:
            headers["X-ClickHouse-Key"] = url.password
        self._headers = headers

    def use(self, database: str) -> None:
        self._database = database

    def _request(
        self, body: bytes, params: Mapping[str, str] | None = None, *, gzipped: bool = False
    ) -> Any:
        query = dict(SETTINGS)
        if self._database is not None:
            query["database"] = self._database
        if params:
            query.update(params)
        headers = dict(self._headers)
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        request = urllib.request.Request(
            self._url.http_base + "?" + urllib.parse.urlencode(query),
            data=body,
            headers=headers,
            method="POST",
        )
        try:
            return urllib.request.urlopen(request, timeout=self._timeout)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            raise ClickHouseError(text or f"HTTP {exc.code} from {self._url}") from None
        except urllib.error.URLError as exc:
            raise ClickHouseError(f"cannot reach ClickHouse at {self._url}: {exc.reason}") from None

    def execute(self, sql: str) -> None:
        with self._request(sql.encode()) as response:
            response.read()

    def stream(self, sql: str) -> Iterator[bytes]:
        with self._request(sql.encode()) as response:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    return
                yield chunk

    def insert(self, statement: str, data: bytes) -> None:
        body = gzip.compress(data, compresslevel=1)
        with self._request(body, {"query": statement}, gzipped=True) as response:
            response.read()

    def close(self) -> None:
        pass


def _backend(url: StoreURL, timeout: float) -> Backend:
    if url.backend == "chdb":
        assert url.path is not None
        return ChdbBackend(url.path)
    return HttpBackend(url, timeout=timeout)


# -------------------------------------------------------------------------------- store


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Complete lines (each ending in a newline) from arbitrary chunks, joined per chunk."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        rest = data[cut:]
    if rest.strip():
        yield rest + b"\n"


def _since_ns(since: dt.datetime | int | float) -> int:
    if isinstance(since, dt.datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        delta = since - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(since, float):
        raise TypeError("since: give a datetime or Unix nanoseconds (int)")
    return int(since)


class ClickHouseStore:
    """One database of a ClickHouse server or of a chDB directory.

    Open with :func:`connect`. ``ensure_schema()`` (run by ``connect`` unless ``create=False``)
    creates the database and the tables if they are missing and never changes existing ones.
    """

    def __init__(self, url: str | StoreURL, *, timeout: float = 300.0) -> None:
        self.url = url if isinstance(url, StoreURL) else parse_url(url)
        self.database = self.url.database
        self.traces_table = _schema.TRACES_TABLE
        self._backend = _backend(self.url, timeout)
        self._feature_schema_ok = False

    # -------------------------------------------------------------------- basics
    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._backend.close()

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows."""
        self._backend.execute(sql)

    def _table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def ensure_schema(self, *, traces: bool = True, features: bool = True) -> None:
        """Create the database, ``otel_traces`` (+ its trace-id lookup table and view) and the
        feature tables, each only if missing."""
        self._backend.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._backend.use(self.database)
        statements: list[str] = []
        if traces:
            statements += _schema.trace_ddl(self.database, self.traces_table)
        if features:
            statements += _schema.feature_ddl(self.database)
        for sql in statements:
            self._backend.execute(sql)

    def use_database(self) -> None:
        """Make the store's database the default for unqualified table names."""
        self._backend.use(self.database)

    def query_lines(self, sql: str, fmt: str = "JSONEachRow") -> Iterator[bytes]:
        """The result of a SELECT (no FORMAT clause) as chunks of complete lines."""
        return _lines(self._backend.stream(f"{sql.rstrip().rstrip(';')}\nFORMAT {fmt}"))

    def query_rows(self, sql: str) -> list[dict[str, Any]]:
        """The rows of a SELECT (no FORMAT clause) as dicts, column name -> value."""
        decoder = msgspec.json.Decoder(dict[str, Any])
        rows: list[dict[str, Any]] = []
        for chunk in self.query_lines(sql):
            rows.extend(_decode_lines(decoder, chunk))
        return rows

    # -------------------------------------------------------------------- spans
    def insert_spans(self, spans: Iterable[Span], *, batch_rows: int = DEFAULT_BATCH_ROWS) -> int:
        """Insert typed spans into ``otel_traces`` in batches of ``batch_rows``; returns how
        many. Spans are not deduplicated (nor are they by the Collector's exporter)."""
        if batch_rows < MIN_BATCH_ROWS:
            raise ValueError(f"batch_rows must be >= {MIN_BATCH_ROWS} (ClickHouse insert size)")
        encoder = SpanRowEncoder()
        statement = (
            f"INSERT INTO {self._table(self.traces_table)} "
            f"({', '.join(f'`{c}`' for c in INSERT_COLUMNS)}) FORMAT JSONCompactEachRow"
        )
        total = 0
        batch: list[Span] = []
        for span in spans:
            batch.append(span)
            if len(batch) >= batch_rows:
                self._backend.insert(statement, encoder.encode(batch))
                total += len(batch)
                batch = []
        if batch:
            self._backend.insert(statement, encoder.encode(batch))
            total += len(batch)
        return total

    def _span_query(self, where: str | None, since: dt.datetime | int | None) -> str:
        table = self._table(self.traces_table)
        conditions: list[str] = []
        if where:
            conditions.append(f"TraceId IN (SELECT TraceId FROM {table} WHERE {where})")
        if since is not None:
            ns = _since_ns(since)
            conditions.append(
                f"TraceId IN (SELECT TraceId FROM {table} "
                f"WHERE Timestamp >= fromUnixTimestamp64Nano(toInt64({ns})))"
            )
        sql = f"SELECT {', '.join(SELECT_COLUMNS)}\nFROM {table}"
        if conditions:
            sql += "\nWHERE " + "\n  AND ".join(conditions)
        return sql + "\nORDER BY TraceId, Timestamp, SpanId"

    def read_spans(
        self,
        *,
        where: str | None = None,
        since: dt.datetime | int | None = None,
        batch_spans: int = 10_000,
    ) -> Iterator[list[Span]]:
        """Spans of ``otel_traces`` as typed :class:`Span` (attribute types restored), whole
        traces at a time in trace-id order: each list holds complete traces, about
        ``batch_spans`` spans (one bigger trace makes a bigger list).

        ``where`` is a SQL condition on ``otel_traces`` columns that selects *traces*: a
        trace is read whole when any of its spans matches (e.g.
        ``"SpanAttributes['agent_signals.task.id'] = 'django__django-16527'"``). It is
        inserted into the query as given: pass trusted text only. ``since`` (a datetime,
        naive = UTC, or Unix ns) keeps the traces with a span started at or after it.
        """
        decoder = SpanRowDecoder()
        batch: list[Span] = []
        current: str | None = None
        for chunk in self.query_lines(self._span_query(where, since), "JSONCompactEachRow"):
            for span in _decode_spans(decoder, chunk):
                if span.trace_id != current:
                    if len(batch) >= batch_spans:
                        yield batch
                        batch = []
                    current = span.trace_id
                batch.append(span)
        if batch:
            yield batch

    def read_trace(self, trace_id: str) -> list[Span]:
        """One trace's spans, looked up the exporter's way: its time window from the trace-id
        table, then the spans in that window."""
        lookup = self._table(f"{self.traces_table}_trace_id_ts")
        table = self._table(self.traces_table)
        tid = _quote(trace_id)
        sql = (
            f"WITH (SELECT (min(Start), max(End) + 1) FROM {lookup} WHERE TraceId = {tid})"
            f" AS window\nSELECT {', '.join(SELECT_COLUMNS)}\nFROM {table}\n"
            f"WHERE TraceId = {tid} AND toDateTime(Timestamp) >= window.1 "
            f"AND toDateTime(Timestamp) <= window.2\nORDER BY Timestamp, SpanId"
        )
        decoder = SpanRowDecoder()
        out: list[Span] = []
        for chunk in self.query_lines(sql, "JSONCompactEachRow"):
            out.extend(_decode_spans(decoder, chunk))
        return out

    # ----------------------------------------------------------------- features
    def feature_schema_problems(self) -> list[str]:
        """How the feature tables in the database differ from the record types of this
        version of agentsignals (empty when they match). Tables are never altered here."""
        problems: list[str] = []
        for table in (_records.ATTEMPTS, _records.TRIALS, _records.SESSIONS):
            rows = self.query_rows(
                "SELECT name, type FROM system.columns WHERE database = "
                f"{_quote(self.database)} AND table = {_quote(table.name)} ORDER BY position"
            )
            if not rows:
                problems.append(f"{self._table(table.name)} does not exist")
                continue
            have = {r["name"]: _normal_type(r["type"]) for r in rows}
            wanted = [*table.columns, *([table.version] if table.version is not None else [])]
            for name, ch in wanted:
                want = _normal_type(ch.split(" CODEC(")[0].split(" MATERIALIZED ")[0])
                if name not in have:
                    problems.append(f"{self._table(table.name)} lacks column {name} {want}")
                elif have[name] != want:
                    problems.append(
                        f"{self._table(table.name)}.{name} is {have[name]}, expected {want}"
                    )
        return problems

    def _check_feature_schema(self) -> None:
        if self._feature_schema_ok:
            return
        problems = self.feature_schema_problems()
        if problems:
            raise ClickHouseError(
                "the feature tables were made by another version of agentsignals: "
                + "; ".join(problems)
                + " (migrate them, or use another database)"
            )
        self._feature_schema_ok = True

    def insert_records(self, records: Iterable[_records.Stored]) -> int:
        """Insert feature records (each revision is a row; the latest wins on read). Raises
        ClickHouseError when the tables do not match the record types."""
        self._check_feature_schema()
        encoder = msgspec.json.Encoder()
        by_table: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            table = _records.table_of(record)
            by_table.setdefault(table.name, []).append(_records.record_row(record))
        total = 0
        for name, rows in by_table.items():
            for start in range(0, len(rows), DEFAULT_BATCH_ROWS):
                part = rows[start : start + DEFAULT_BATCH_ROWS]
                self._backend.insert(
                    f"INSERT INTO {self._table(name)} FORMAT JSONEachRow",
                    encoder.encode_lines(part),
                )
                total += len(part)
        return total

    def read_attempts(self, where: str | None = None) -> list[AttemptRecord]:
        """The latest revision of every attempt record (``where``: SQL on its columns)."""
        out: list[AttemptRecord] = []
        for record in self._read_records(_records.ATTEMPTS, where):
            assert isinstance(record, AttemptRecord)
            out.append(record)
        return out

    def read_trials(self, where: str | None = None) -> list[TrialRecord]:
        """The latest revision of every trial record (``where``: SQL on its columns)."""
        out: list[TrialRecord] = []
        for record in self._read_records(_records.TRIALS, where):
            assert isinstance(record, TrialRecord)
            out.append(record)
        return out

    def read_sessions(self, where: str | None = None) -> list[SessionRecord]:
        """The latest revision of every product-session record (``where``: SQL on its
        columns)."""
        out: list[SessionRecord] = []
        for record in self._read_records(_records.SESSIONS, where):
            assert isinstance(record, SessionRecord)
            out.append(record)
        return out

    def _read_records(
        self, table: _schema.FeatureTable, where: str | None
    ) -> Iterator[_records.Stored]:
        self._check_feature_schema()
        columns = table.json_column or _records.select_list(table)
        sql = f"SELECT {columns} FROM {self._table(table.name)} FINAL"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {table.order_by}"
        for chunk in self.query_lines(sql):
            for line in chunk.splitlines():
                if line.strip():
                    yield _records.row_record(table, line)


def _normal_type(ch: str) -> str:
    """A ClickHouse type in one spelling (system.columns spreads tuples over lines)."""
    text = re.sub(r"\s+", " ", ch)
    text = re.sub(r"\(\s+", "(", text)
    text = re.sub(r"\s+\)", ")", text)
    return re.sub(r"\s*,\s*", ", ", text).strip()


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _decode_lines(decoder: msgspec.json.Decoder[Any], chunk: bytes) -> list[Any]:
    try:
        return decoder.decode_lines(chunk)
    except msgspec.DecodeError:
        raise _stream_error(chunk) from None


def _decode_spans(decoder: SpanRowDecoder, chunk: bytes) -> list[Span]:
    try:
        return decoder.decode_lines(chunk)
    except msgspec.DecodeError:
        raise _stream_error(chunk) from None


def _stream_error(chunk: bytes) -> ClickHouseError:
    # A server that fails mid-query appends its exception text to the stream.
    text = chunk.decode("utf-8", "replace")
    at = text.find("Code: ")
    if at >= 0:
        return ClickHouseError(text[at:].strip())
    return ClickHouseError(f"unreadable result from ClickHouse: {text[:200]!r}")


# ------------------------------------------------------------------------ module API


def connect(url: str | StoreURL, *, create: bool = True, timeout: float = 300.0) -> ClickHouseStore:
    """Open a store; with ``create`` (the default) make the database and tables if missing."""
    store = ClickHouseStore(url, timeout=timeout)
    try:
        if create:
            store.ensure_schema()
        else:
            store.use_database()
    except BaseException:
        store.close()
        raise
    return store


def read_spans(
    url: str | StoreURL,
    *,
    where: str | None = None,
    since: dt.datetime | int | None = None,
    batch_spans: int = 10_000,
) -> Iterator[list[Span]]:
    """Typed spans from a store's ``otel_traces``, whole traces per list, in trace-id order
    (see :meth:`ClickHouseStore.read_spans`)."""
    with connect(url, create=False) as store:
        yield from store.read_spans(where=where, since=since, batch_spans=batch_spans)


def features_from_clickhouse(
    url: str | StoreURL,
    *,
    where: str | None = None,
    since: dt.datetime | int | None = None,
) -> FeatureSet:
    """Feature records from the spans in a store's ``otel_traces``: what
    ``agentsignals features --source clickhouse://...`` runs. Returns a
    :class:`agentsignals.features.FeatureSet`, equal to ``features.from_spans`` on the same
    spans."""
    from agentsignals._features.assemble import Assembler
    from agentsignals._features.run import sorted_feature_set
    from agentsignals._features.store import ListSink

    sink = ListSink()
    batches = 0
    # Each batch holds whole traces, so an attempt is complete once its batch is in; the
    # clock counts batches and a grace of 2 releases it right after the next one.
    assembler = Assembler(sink, clock=lambda: float(batches), grace=2.0)
    for batch in read_spans(url, where=where, since=since):
        batches += 1
        assembler.add(batch)
    assembler.flush()
    return sorted_feature_set(sink, [], assembler.stats)


def insert_otlp_files(
    url: str | StoreURL,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> tuple[int, list[DecodeProblem]]:
    """Load OTLP/JSON lines files (ours or the Collector's file exporter) into
    ``otel_traces``; returns (spans inserted, decode problems)."""
    from agentsignals._spans.decode import (
        DecodeProblem,
        decode_otlp_json_lines,
        find_otlp_json_files,
    )

    problems: list[DecodeProblem] = []

    def spans() -> Iterator[Span]:
        for path in find_otlp_json_files(paths):
            try:
                for batch in decode_otlp_json_lines(path, on_problem=problems.append):
                    yield from batch
            except OSError as exc:
                problems.append(DecodeProblem(str(path), 0, f"cannot open: {exc}"))

    with connect(url) as store:
        count = store.insert_spans(spans(), batch_rows=batch_rows)
    return count, problems
