"""The ClickHouse store: the Collector exporter's otel_traces schema, span and feature-record
round trips, analysis SQL, and SQL-derived features against the Python extractor.

Everything runs on chDB (ClickHouse in process) in one temporary data directory (chDB allows
one per process); each test works in its own database. The HTTP backend is exercised against
a small loopback HTTP server that executes what it receives on the same chDB.
"""

from __future__ import annotations

import copy
import gzip
import http.server
import importlib
import importlib.util
import itertools
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
from opentelemetry.trace import SpanKind

import agentsignals
from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._features.record import (
    AttemptRecord,
    Behavior,
    FileLines,
    JudgeField,
    Tokens,
    Treatment,
    TrialRecord,
    Verification,
)
from agentsignals._spans.decode import decode_otlp_json, from_readable_spans
from agentsignals._spans.model import Event, Span
from agentsignals._store import queries, schema
from agentsignals._store.clickhouse import (
    ClickHouseError,
    ClickHouseStore,
    StoreURLError,
    connect,
    features_from_clickhouse,
    insert_otlp_files,
    parse_url,
    read_spans,
)
from agentsignals._store.traces import attr_to_str, restore_attributes
from agentsignals.testing import capture_spans

REPO = Path(__file__).resolve().parents[1]
COLLECTORS = REPO / "collectors" / "clickhouse"
HAVE_CHDB = importlib.util.find_spec("chdb") is not None
needs_chdb = pytest.mark.skipif(
    not HAVE_CHDB, reason="chDB (pip install chdb: ClickHouse in process) is not installed"
)
_db_numbers = itertools.count()


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def url(chdb_dir: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database in the module's chDB directory."""
    name = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return f"chdb://{chdb_dir}?database=t{next(_db_numbers)}_{name}"


@pytest.fixture
def store(url: str) -> Iterator[ClickHouseStore]:
    with connect(url) as s:
        yield s


def _gen_traces() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_traces", REPO / "benchmarks/gen_traces.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Span]]:
    """~20k spans shaped like real agentsignals traces, as a file and as decoded spans."""
    path = tmp_path_factory.mktemp("gen") / "traces.jsonl"
    lines = list(_gen_traces().generate_lines(20_000, 500, 4, 7))
    path.write_text("".join(line + "\n" for line in lines))
    return path, [s for line in lines for s in decode_otlp_json(line)]


def _agent_loop() -> list[Span]:
    """A small agent on the real instrumentation: a trial, a failed attempt and a resolved
    retry, turns with a foreign chat span each, tools with files, exit codes, an error, an
    exception event, a stuck loop, verifier outcomes; every attribute type."""
    with capture_spans() as captured:
        llm = captured.tracer("opentelemetry.instrumentation.openai_v2")
        with agentsignals.trial("django__django-16527", dataset="swebench-lite@1.0"):
            for index in range(2):
                with agentsignals.attempt(
                    agent_type="mini-swe-agent",
                    model_id="claude-x",
                    attempt1_tool_cap=50,
                    retry_tool_cap=80,
                    timeout_s=1800,
                    provider="anthropic",
                ) as attempt:
                    for t in range(3):
                        with agentsignals.turn(model="claude-x", phase="explore") as turn:
                            with llm.start_as_current_span(
                                "chat claude-x",
                                kind=SpanKind.CLIENT,
                                attributes={
                                    sc.GEN_AI_OPERATION_NAME: "chat",
                                    sc.GEN_AI_REQUEST_MODEL: "claude-x",
                                    sc.GEN_AI_USAGE_INPUT_TOKENS: 1000 * (t + 1),
                                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 70 + t,
                                    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 500 * t,
                                    sc.GEN_AI_RESPONSE_FINISH_REASONS: ["tool_calls"],
                                },
                            ):
                                pass
                            turn.record_cost(0.125 * (t + 1) + 1e-7)
                            turn.record_reasoning("1. read the parser\n2. fix it")
                            with agentsignals.tool("grep", arguments={"pattern": "x"}) as tool:
                                tool.set_files(["django/a.py", "django/b.py"])
                                tool.record_result("django/a.py:1: x", exit_code=0)
                            with agentsignals.tool("bash", arguments={"command": "make"}) as b:
                                b.record_result("error: boom", exit_code=2)
                            if index == 0 and t == 1:
                                for _ in range(3):  # the same call three times: stuck
                                    with agentsignals.tool("read_file", arguments={"p": "a"}):
                                        pass
                            if t == 2:
                                with agentsignals.tool("str_replace_editor") as edit:
                                    edit.set_files(["django/a.py"])
                    try:
                        with agentsignals.tool("submit"):
                            raise ValueError("not ready")
                    except ValueError:
                        pass
                    attempt.set_exit_reason("submitted")
                    attempt.record_outcome(
                        resolved=index == 1,
                        fail_to_pass=1 if index else 0,
                        fail_to_fail=0 if index else 1,
                        pass_to_pass=3,
                        pass_to_fail=0,
                    )
        finished = captured.spans
    return from_readable_spans(finished)


def _stored_form(span: Span) -> Span:
    """What the table keeps of a span: values as strings, types restored for declared keys."""
    out = copy.deepcopy(span)

    def norm(attrs: dict[str, Any]) -> dict[str, Any]:
        return restore_attributes({k: attr_to_str(v) for k, v in attrs.items()})

    out.attributes = norm(span.attributes)
    out.resource = norm(span.resource)
    out.events = [Event(e.name, e.time_ns, norm(e.attributes)) for e in span.events]
    out.end_ns = max(span.end_ns, span.start_ns)
    return out


def _by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


# ------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chdb:///var/lib/as", dict(backend="chdb", path="/var/lib/as", database="otel")),
        ("clickhouse+chdb:///d?database=x", dict(backend="chdb", path="/d", database="x")),
        ("chdb://:memory:", dict(backend="chdb", path=":memory:")),
        ("chdb://rel/dir", dict(backend="chdb", path="rel/dir")),
        (
            "clickhouse://u:p%40ss@ch.local:8123/traces",
            dict(backend="http", host="ch.local", port=8123, user="u", password="p@ss"),
        ),
        ("clickhouse://ch.local", dict(port=8123, secure=False, database="otel")),
        ("clickhouses://ch.local/db", dict(port=8443, secure=True, database="db")),
        ("clickhouse://ch.local?secure=true", dict(port=8443, secure=True)),
        ("http://127.0.0.1:18123/otel", dict(backend="http", host="127.0.0.1", port=18123)),
    ],
)
def test_parse_url_forms(text: str, expected: dict[str, Any]) -> None:
    parsed = parse_url(text)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key
    assert "p@ss" not in repr(parsed)  # the password stays out of logs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a ClickHouse store URL"),
        ("/var/lib/as", "not a ClickHouse store URL"),
        ("postgres://h/db", "unsupported scheme 'postgres'"),
        ("chdb://", "names no data directory"),
        ("clickhouse://", "names no host"),
        ("clickhouse://h:80a/db", "invalid port"),
        ("clickhouse://h:9000/db", "native protocol"),
        ("clickhouse://h/bad-name", "invalid ClickHouse database 'bad-name'"),
        ("clickhouse://h/db?compress=1", "unknown option"),
        ("chdb:///d?database=x;DROP", "invalid ClickHouse database"),
        ("clickhouse://h/a?database=b", "two databases"),
    ],
)
def test_malformed_url_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message):
        parse_url(text)
    with pytest.raises(ValueError):  # StoreURLError is a ValueError
        connect(text)


# ------------------------------------------------------------------------------- schema


@needs_chdb
def test_trace_ddl_runs_unchanged_and_has_the_exporter_columns(store: ClickHouseStore) -> None:
    # The shipped files are the generated DDL, and run as they are.
    files = schema.schema_files(store.database)
    shipped = {p.name: p.read_text() for p in sorted((COLLECTORS / "schema").glob("*.sql"))}
    assert shipped == schema.schema_files()
    for sql in files.values():
        store.execute(sql)  # IF NOT EXISTS: a second run changes nothing
    for sql in shipped.values():  # the files verbatim, in database otel
        store.execute(sql)
    rows = store.query_rows(
        f"SELECT name, type, compression_codec FROM system.columns "
        f"WHERE database = '{store.database}' AND table = 'otel_traces' ORDER BY position"
    )
    columns = {r["name"]: r["type"] for r in rows}
    attr_map = "Map(LowCardinality(String), String)"
    assert columns == {
        "Timestamp": "DateTime64(9)",
        "TraceId": "String",
        "SpanId": "String",
        "ParentSpanId": "String",
        "TraceState": "String",
        "SpanName": "LowCardinality(String)",
        "SpanKind": "LowCardinality(String)",
        "ServiceName": "LowCardinality(String)",
        "ResourceAttributes": attr_map,
        "ScopeName": "String",
        "ScopeVersion": "String",
        "SpanAttributes": attr_map,
        "Duration": "UInt64",
        "StatusCode": "LowCardinality(String)",
        "StatusMessage": "String",
        "Events.Timestamp": "Array(DateTime64(9))",
        "Events.Name": "Array(LowCardinality(String))",
        "Events.Attributes": f"Array({attr_map})",
        "Links.TraceId": "Array(String)",
        "Links.SpanId": "Array(String)",
        "Links.TraceState": "Array(String)",
        "Links.Attributes": f"Array({attr_map})",
    }
    codecs = {r["name"]: r["compression_codec"] for r in rows}
    assert codecs["Timestamp"] == "CODEC(Delta(8), ZSTD(1))"
    assert codecs["SpanAttributes"] == "CODEC(ZSTD(1))"
    (table,) = store.query_rows(
        f"SELECT engine, partition_key, sorting_key FROM system.tables "
        f"WHERE database = '{store.database}' AND name = 'otel_traces'"
    )
    assert table == {
        "engine": "MergeTree",
        "partition_key": "toDate(Timestamp)",
        "sorting_key": "ServiceName, SpanName, toDateTime(Timestamp)",
    }
    indexes = store.query_rows(
        f"SELECT name, type_full FROM system.data_skipping_indices "
        f"WHERE database = '{store.database}' AND table = 'otel_traces' ORDER BY name"
    )
    assert {i["name"]: i["type_full"] for i in indexes} == {
        "idx_duration": "minmax",
        "idx_res_attr_key": "bloom_filter(0.01)",
        "idx_res_attr_value": "bloom_filter(0.01)",
        "idx_span_attr_key": "bloom_filter(0.01)",
        "idx_span_attr_value": "bloom_filter(0.01)",
        "idx_trace_id": "bloom_filter(0.001)",
    }
    views = store.query_rows(
        f"SELECT name, engine FROM system.tables WHERE database = '{store.database}' "
        "AND name LIKE 'otel_traces_%' ORDER BY name"
    )
    assert views == [
        {"name": "otel_traces_trace_id_ts", "engine": "MergeTree"},
        {"name": "otel_traces_trace_id_ts_mv", "engine": "MaterializedView"},
    ]


def _stored_fields(info: msgspec.inspect.Type, prefix: str = "") -> set[str]:
    assert isinstance(info, msgspec.inspect.StructType)
    out: set[str] = set()
    for f in info.fields:
        t = f.type
        if isinstance(t, msgspec.inspect.StructType):
            out |= _stored_fields(t, f"{prefix}{f.name}.")
        else:
            out.add(prefix + f.name)
    return out


@needs_chdb
def test_feature_tables_are_generated_from_the_record_types(store: ClickHouseStore) -> None:
    described: set[str] = set()
    for table in (schema.ATTEMPTS_TABLE, schema.TRIALS_TABLE):
        rows = store.query_rows(f"DESCRIBE TABLE {store.database}.{table}")
        for row in rows:
            if row["type"].startswith("Tuple("):
                # Named tuple: element names are the group's fields.
                inner = store.query_rows(
                    f"SELECT arrayJoin(tupleNames(CAST(defaultValueOfTypeName('{row['type']}')"
                    f" AS {row['type']}))) AS n"
                )
                described |= {f"{table}:{row['name']}.{r['n']}" for r in inner}
            else:
                described.add(f"{table}:{row['name']}")
    attempt_fields = _stored_fields(msgspec.inspect.type_info(AttemptRecord))
    attempt_fields -= {"started_at_ns", "ended_at_ns"}
    attempt_fields |= {"started_at", "ended_at", "null_lists", schema.VERSION_COLUMN}
    trial_fields = _stored_fields(msgspec.inspect.type_info(TrialRecord))
    trial_fields -= {"first_attempt", "retries", "subagents"}
    trial_fields |= {"first_attempt_id", "retry_attempt_ids", "subagent_attempt_ids"}
    trial_fields |= {"record_json"}
    assert described == {f"{schema.ATTEMPTS_TABLE}:{f}" for f in attempt_fields} | {
        f"{schema.TRIALS_TABLE}:{f}" for f in trial_fields
    }
    attempts = {r["name"]: r["type"] for r in store.query_rows(
        f"DESCRIBE TABLE {store.database}.{schema.ATTEMPTS_TABLE}"
    )}  # fmt: skip
    assert attempts["started_at"] == "Nullable(DateTime64(9, 'UTC'))"
    assert attempts["revision"] == "UInt32"
    assert "touched_files Array(String)" in attempts["behavior"]
    assert "stuck_loop Nullable(Bool)" in attempts["behavior"]
    assert "reward Nullable(Float64)" in attempts["verification"]
    (engine,) = store.query_rows(
        f"SELECT engine_full FROM system.tables WHERE database = '{store.database}' "
        f"AND name = '{schema.ATTEMPTS_TABLE}'"
    )
    assert engine["engine_full"].startswith(
        "ReplacingMergeTree(record_version) ORDER BY attempt_id"
    )


@needs_chdb
def test_feature_tables_of_another_version_are_refused_clearly(store: ClickHouseStore) -> None:
    assert store.feature_schema_problems() == []
    table = f"{store.database}.{schema.ATTEMPTS_TABLE}"
    store.execute(f"ALTER TABLE {table} MODIFY COLUMN anticipation Tuple(scope_drift Float64)")
    store.execute(f"ALTER TABLE {table} DROP COLUMN null_lists")
    assert store.feature_schema_problems() == [
        f"{table}.anticipation is Tuple(scope_drift Float64), expected "
        "Tuple(first_tool_precision Nullable(Bool), scope_drift Nullable(Float64))",
        f"{table} lacks column null_lists Array(LowCardinality(String))",
    ]
    with connect(store.url) as fresh, pytest.raises(ClickHouseError, match="another version"):
        fresh.insert_records([AttemptRecord(attempt_id="a")])


def test_an_unknown_record_field_type_is_refused() -> None:
    class Odd(msgspec.Struct):
        revision: int = 0
        when: set[int] = msgspec.field(default_factory=set)

    with pytest.raises(TypeError, match="'when'"):
        schema._table("odd", Odd, "revision")


# ------------------------------------------------------------------------- span round trip


@needs_chdb
def test_spans_from_the_instrumentation_round_trip_exactly(store: ClickHouseStore) -> None:
    spans = _agent_loop()
    assert len(spans) > 30
    assert store.insert_spans(spans) == len(spans)
    back = [s for batch in store.read_spans() for s in batch]
    assert len(back) == len(spans)
    assert _by_id(back) == _by_id(spans)  # every type restored, events and resources too
    kinds = {type(v) for s in back for v in s.attributes.values()}
    assert kinds == {str, int, float, bool, list}
    # Spans of one resource share one resource dict again.
    assert len({id(s.resource) for s in back}) == 1
    # What the table holds is what the Collector's exporter writes for these spans.
    attempt = next(s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt")
    (row,) = store.query_rows(
        f"SELECT SpanKind, StatusCode, ServiceName, ScopeName, ParentSpanId != '' AS has_parent, "
        f"Duration, SpanAttributes FROM {store.database}.otel_traces "
        f"WHERE SpanId = '{attempt.span_id}'"
    )
    attrs = row.pop("SpanAttributes")
    assert row == {
        "SpanKind": "Internal",
        "StatusCode": "Unset",
        "ServiceName": "agentsignals-test",
        "ScopeName": "agentsignals",
        "has_parent": 1,
        "Duration": attempt.end_ns - attempt.start_ns,
    }
    assert attrs[sc.AGENT_SIGNALS_ATTEMPT_INDEX] == "0"
    assert attrs[sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S] == "1800"  # a double, JS-style
    chat = store.query_rows(
        f"SELECT SpanKind, SpanAttributes['gen_ai.response.finish_reasons'] AS fr, "
        f"SpanAttributes['agent_signals.usage.cost_usd'] AS cost "
        f"FROM {store.database}.otel_traces WHERE SpanName LIKE 'chat%' LIMIT 1"
    )
    assert chat[0]["SpanKind"] == "Client"
    assert json.loads(chat[0]["fr"]) == ["tool_calls"]
    errors = store.query_rows(
        f"SELECT StatusCode, Events.Name AS names FROM {store.database}.otel_traces "
        "WHERE SpanName = 'execute_tool submit' LIMIT 1"
    )
    assert errors[0] == {"StatusCode": "Error", "names": ["exception"]}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (1800.0, "1800"),
        (0.5, "0.5"),
        (1e-7, "1e-7"),
        (1.5e21, "1.5e+21"),
        (2.5e-5, "0.000025"),
        (123456789.125, "123456789.125"),
        (["a", "b"], '["a","b"]'),
        ([1, 2], "[1,2]"),
        ([], "[]"),
        ("plain", "plain"),
    ],
)
def test_attribute_values_are_stringified_like_the_exporter(value: Any, text: str) -> None:
    assert attr_to_str(value) == text


def test_declared_types_are_restored_and_unknown_keys_stay_strings() -> None:
    restored = restore_attributes(
        {
            sc.AGENT_SIGNALS_ATTEMPT_INDEX: "3",
            sc.AGENT_SIGNALS_VERIFY_REWARD: "1",
            sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT: "true",
            sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES: '["a.py"]',
            sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED: "[1,2]",
            sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S: "1e-7",
            "server.port": "443",
            sc.AGENT_SIGNALS_TURN_INDEX: "not a number",  # written by someone else: kept
            sc.GEN_AI_RESPONSE_FINISH_REASONS: "stop",  # not JSON: kept
        }
    )
    assert restored == {
        sc.AGENT_SIGNALS_ATTEMPT_INDEX: 3,
        sc.AGENT_SIGNALS_VERIFY_REWARD: 1.0,
        sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT: True,
        sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES: ["a.py"],
        sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED: [1, 2],
        sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S: 1e-7,
        "server.port": "443",
        sc.AGENT_SIGNALS_TURN_INDEX: "not a number",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: "stop",
    }
    assert type(restored[sc.AGENT_SIGNALS_VERIFY_REWARD]) is float


@needs_chdb
def test_real_trajectories_round_trip_and_give_the_same_features(
    url: str, shared_data: Path
) -> None:
    from agentsignals._import.run import candidate_files, import_file

    spans: list[Span] = []
    formats: set[str] = set()
    for path in candidate_files([shared_data]):
        result = import_file(path)
        for trajectory in result.trajectories:
            spans.extend(trajectory)
            formats.add(str(result.format))
    assert len(formats) >= 6 and len(spans) > 1000
    with connect(url) as store:
        store.insert_spans(spans)
    back = [s for batch in read_spans(url) for s in batch]
    assert _by_id(back) == _by_id(spans)
    from_ch = features_from_clickhouse(url)
    direct = features.from_spans(spans)
    assert from_ch.attempts == direct.attempts
    assert from_ch.trials == direct.trials
    assert len(from_ch.attempts) >= len(formats)


@needs_chdb
def test_generated_traces_round_trip_and_give_the_same_features(
    url: str, generated: tuple[Path, list[Span]]
) -> None:
    path, spans = generated
    count, problems = insert_otlp_files(url, path)
    assert (count, problems) == (len(spans), [])
    back = [s for batch in read_spans(url) for s in batch]
    assert len(back) == len(spans) >= 20_000
    original = _by_id(spans)
    # Keys the registry does not declare (server.port) come back as the strings the table
    # holds, and exception.escaped is declared a string; everything else is exact.
    assert _by_id(back) == {i: _stored_form(s) for i, s in original.items()}
    exact = sum(1 for s in back if s == original[s.span_id])
    assert exact > 0.8 * len(back)
    from_ch = features_from_clickhouse(url)
    from_file = features.extract(path)
    assert len(from_ch.attempts) > 300
    assert from_ch.attempts == from_file.attempts
    assert from_ch.trials == from_file.trials


@needs_chdb
def test_inserts_are_batched(store: ClickHouseStore, generated: tuple[Path, list[Span]]) -> None:
    _, spans = generated
    sizes: list[int] = []
    real_insert = store._backend.insert

    def spy(statement: str, data: bytes) -> None:
        sizes.append(data.count(b"\n"))
        real_insert(statement, data)

    store._backend.insert = spy  # type: ignore[method-assign]
    store.insert_spans(spans[:12_000], batch_rows=5_000)
    assert sizes == [5_000, 5_000, 2_000]
    with pytest.raises(ValueError, match="5000"):
        store.insert_spans(spans[:10], batch_rows=100)


@needs_chdb
def test_read_spans_yields_whole_traces_in_trace_id_order(
    store: ClickHouseStore, generated: tuple[Path, list[Span]]
) -> None:
    _, spans = generated
    store.insert_spans(spans[:6_000])
    batches = list(store.read_spans(batch_spans=500))
    assert len(batches) > 5
    seen: list[str] = []
    for batch in batches:
        ids = [s.trace_id for s in batch]
        assert ids == sorted(ids)
        seen.extend(dict.fromkeys(ids))
        for trace_id, group in itertools.groupby(batch, key=lambda s: s.trace_id):
            starts = [s.start_ns for s in group]
            assert starts == sorted(starts), trace_id
    assert seen == sorted(set(seen))  # each trace in exactly one batch
    assert sum(map(len, batches)) == 6_000


@needs_chdb
def test_where_selects_whole_traces_and_since_recent_ones(
    store: ClickHouseStore, generated: tuple[Path, list[Span]]
) -> None:
    _, spans = generated
    store.insert_spans(spans[:6_000])
    traces: dict[str, list[Span]] = {}
    for s in spans[:6_000]:
        traces.setdefault(s.trace_id, []).append(s)
    attempt = next(s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt")
    task = attempt.attributes[sc.AGENT_SIGNALS_TASK_ID]
    (picked,) = list(store.read_spans(where=f"SpanAttributes['agent_signals.task.id'] = '{task}'"))
    assert {s.trace_id for s in picked} == {attempt.trace_id}
    assert len(picked) == len(traces[attempt.trace_id])  # the whole trace, not just matches
    # since: the traces with a span started at or after it.
    starts = sorted(min(s.start_ns for s in t) for t in traces.values())
    cut = starts[len(starts) // 2]
    recent = {s.trace_id for b in store.read_spans(since=cut) for s in b}
    expected = {tid for tid, t in traces.items() if max(s.start_ns for s in t) >= cut}
    assert recent == expected and 0 < len(recent) < len(traces)
    # read_trace goes through the exporter's trace-id lookup table.
    one = store.read_trace(attempt.trace_id)
    assert _by_id(one) == _by_id([_stored_form(s) for s in traces[attempt.trace_id]])
    assert store.read_trace("0" * 32) == []


# ------------------------------------------------------------------------ feature tables


@needs_chdb
def test_feature_records_round_trip(
    store: ClickHouseStore, generated: tuple[Path, list[Span]]
) -> None:
    result = features.from_spans(_agent_loop() + generated[1][:3_000])
    assert store.insert_records([*result.attempts, *result.trials]) == len(result.attempts) + len(
        result.trials
    )
    by_id = {a.attempt_id: a for a in result.attempts}
    back = store.read_attempts()
    assert {a.attempt_id: a for a in back} == by_id
    assert {t.trial_id: t for t in store.read_trials()} == {t.trial_id: t for t in result.trials}
    # None and [] stay apart (ClickHouse has no Nullable(Array)).
    assert any(a.behavior.touched_files is None for a in back)
    assert any(a.behavior.step_files == [] or a.behavior.step_files for a in back)


@needs_chdb
def test_latest_revision_wins_even_when_the_task_id_arrives_late(store: ClickHouseStore) -> None:
    early = AttemptRecord(attempt_id="a1", complete=False, revision=0, span_count=3)
    late = AttemptRecord(
        attempt_id="a1",
        task_id="django__django-1",
        revision=1,
        span_count=9,
        started_at_ns=1_700_000_000_123_456_789,
        behavior=Behavior(touched_files=[], tool_sequence=["grep"], stuck_loop=False),
        tokens=Tokens(cost_usd=0.1 + 0.2, context_growth_curve=[1, 2]),
    )
    store.insert_records([late])
    store.insert_records([early])  # an older revision, inserted afterwards
    assert store.read_attempts() == [late]
    (raw,) = store.query_rows(f"SELECT count() AS n FROM {store.database}.agentsignals_attempts")
    assert raw["n"] == 2
    assert store.read_attempts(where="task_id = 'nope'") == []


def test_a_partial_revision_never_replaces_a_whole_one(store: ClickHouseStore) -> None:
    whole = AttemptRecord(attempt_id="a2", task_id="t", revision=0, span_count=40)
    partial = AttemptRecord(attempt_id="a2", revision=1, partial=True, span_count=1)
    later_whole = AttemptRecord(attempt_id="a2", task_id="t", revision=2, span_count=41)
    store.insert_records([partial, whole])
    assert store.read_attempts() == [whole]  # FINAL, whatever the merge state
    (kept,) = store.query_rows(
        f"SELECT argMax(span_count, record_version) AS n FROM {store.database}.agentsignals_attempts"  # noqa: E501
    )
    assert kept["n"] == 40
    store.insert_records([later_whole])
    assert store.read_attempts() == [later_whole]
    # Only partial revisions (the whole one never reached this table): the latest of them.
    store.insert_records([AttemptRecord(attempt_id="a3", revision=4, partial=True)])
    assert [r.revision for r in store.read_attempts(where="attempt_id = 'a3'")] == [4]


# ------------------------------------------------------------------------- analysis SQL


def _attempt(
    n: int,
    *,
    model: str,
    agent: str,
    index: int = 0,
    reward: float | None = None,
    stuck: bool | None = None,
    edit_calls: int | None = None,
    shell_edits: int | None = None,
    bash_mediated: bool | None = None,
    localized: bool | None = None,
    parent: str | None = None,
    revision: int = 0,
) -> AttemptRecord:
    return AttemptRecord(
        attempt_id=f"a{n}",
        trial_id=f"t{n // 2}",
        attempt_index=index,
        parent_attempt_id=parent,
        revision=revision,
        treatment=Treatment(model_id=model, agent_type=agent),
        behavior=Behavior(
            stuck_loop=stuck,
            edit_calls=edit_calls,
            shell_edit_calls=shell_edits,
            bash_mediated_edits=bash_mediated,
            localized_correct_file=localized,
            touched_file_lines=[FileLines(path="x.py", lines_added=1, lines_removed=0)],
        ),
        verification=Verification(reward=reward),
    )


@needs_chdb
def test_analysis_queries_give_the_known_answers(store: ClickHouseStore) -> None:
    records = [
        _attempt(0, model="m1", agent="swe", reward=1.0, stuck=False, edit_calls=2,
                 shell_edits=0, bash_mediated=False, localized=True),
        _attempt(1, model="m1", agent="swe", index=1, reward=0.0, stuck=True, edit_calls=0,
                 shell_edits=3, bash_mediated=True, localized=False),
        _attempt(2, model="m1", agent="swe", reward=None, stuck=None),
        _attempt(3, model="m2", agent="swe", reward=1.0, stuck=True, edit_calls=1,
                 shell_edits=1, bash_mediated=False, localized=True),
        _attempt(4, model="m2", agent="mini", index=1, reward=1.0, stuck=False, edit_calls=0,
                 shell_edits=2, bash_mediated=True, localized=True),
        _attempt(5, model="m2", agent="mini", index=2, reward=0.5, stuck=False, edit_calls=4,
                 shell_edits=0, bash_mediated=False, localized=None),
        # A subagent: left out of every query.
        _attempt(6, model="m1", agent="swe", reward=0.0, stuck=True, parent="a0"),
        # An old revision of a3 that said unresolved: replaced by the revision above.
        _attempt(3, model="m2", agent="swe", reward=0.0, stuck=False, revision=0),
    ]  # fmt: skip
    records[3].revision = 1
    store.insert_records(records)

    def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows]

    assert rounded(queries.resolve_rate_by_model_agent(store)) == [
        dict(model_id="m1", agent_type="swe", attempts=3, verified=2, mean_reward=0.5,
             resolve_rate=0.5),
        dict(model_id="m2", agent_type="mini", attempts=2, verified=2, mean_reward=0.75,
             resolve_rate=0.5),
        dict(model_id="m2", agent_type="swe", attempts=1, verified=1, mean_reward=1.0,
             resolve_rate=1.0),
    ]  # fmt: skip
    assert rounded(queries.attempt1_vs_retry(store)) == [
        dict(stage="attempt_1", attempts=3, verified=2, mean_reward=1.0, resolve_rate=1.0),
        dict(stage="retry", attempts=3, verified=3, mean_reward=0.5, resolve_rate=0.333333),
    ]
    assert rounded(queries.stuck_loop_rate_by_agent(store)) == [
        dict(agent_type="mini", attempts=2, measured=2, stuck=0, stuck_loop_rate=0.0),
        dict(agent_type="swe", attempts=4, measured=3, stuck=2, stuck_loop_rate=0.666667),
    ]
    assert rounded(queries.bash_mediated_edit_share(store)) == [
        dict(agent_type="mini", attempts=2, measured=2, bash_mediated=1, bash_mediated_share=0.5,
             edit_tool_calls=4, shell_edit_calls=2, shell_edit_call_share=0.333333),
        dict(agent_type="swe", attempts=4, measured=3, bash_mediated=1,
             bash_mediated_share=0.333333, edit_tool_calls=3, shell_edit_calls=4,
             shell_edit_call_share=0.571429),
    ]  # fmt: skip
    assert rounded(queries.localization_vs_reward(store)) == [
        dict(localized_correct_file=False, attempts=1, verified=1, mean_reward=0.0,
             resolve_rate=0.0),
        dict(localized_correct_file=True, attempts=3, verified=3, mean_reward=1.0,
             resolve_rate=1.0),
        dict(localized_correct_file=None, attempts=2, verified=1, mean_reward=0.5,
             resolve_rate=0.0),
    ]  # fmt: skip


def test_query_files_are_the_module_queries() -> None:
    shipped = {p.stem: p.read_text() for p in (COLLECTORS / "queries").glob("*.sql")}
    assert shipped == queries.QUERIES


@needs_chdb
def test_query_files_run_unchanged(store: ClickHouseStore) -> None:
    store.use_database()
    for path in sorted((COLLECTORS / "queries").glob("*.sql")):
        assert store.query_rows(path.read_text()) == [], path.name  # empty tables: no rows


_SQL_FIELDS: dict[str, Callable[[AttemptRecord], Any]] = {
    "trace_id": lambda r: r.trace_id,
    "trial_id": lambda r: r.trial_id,
    "task_id": lambda r: r.task_id,
    "attempt_index": lambda r: r.attempt_index,
    "model_id": lambda r: r.treatment.model_id,
    "agent_type": lambda r: r.treatment.agent_type,
    "exit_reason": lambda r: r.infra.exit_reason,
    "wall_time_s": lambda r: r.infra.wall_time_s,
    "turn_count": lambda r: r.behavior.turn_count,
    "tool_call_count": lambda r: r.behavior.tool_call_count,
    "tool_sequence": lambda r: r.behavior.tool_sequence or [],
    "tool_category_sequence": lambda r: r.behavior.tool_category_sequence or [],
    "edit_calls": lambda r: r.behavior.edit_calls,
    "shell_edit_calls": lambda r: r.behavior.shell_edit_calls,
    "test_runs": lambda r: r.behavior.test_runs,
    "tool_error_count": lambda r: r.behavior.tool_error_count,
    "max_repeat": lambda r: r.behavior.max_repeat,
    "repetition_rate": lambda r: r.behavior.repetition_rate,
    "stuck_loop": lambda r: r.behavior.stuck_loop,
    "touched_files": lambda r: r.behavior.touched_files or [],
    "touched_files_known": lambda r: r.behavior.touched_files is not None,
    "input_tokens_total": lambda r: r.tokens.input_tokens_total,
    "output_tokens_total": lambda r: r.tokens.output_tokens_total,
    "cache_read_tokens": lambda r: r.tokens.cache_read_tokens,
    "cache_write_tokens": lambda r: r.tokens.cache_write_tokens,
    "cost_usd": lambda r: r.tokens.cost_usd,
}


@needs_chdb
@pytest.mark.parametrize("source", ["generated", "instrumented"])
def test_sql_derived_features_equal_the_python_features(
    store: ClickHouseStore, generated: tuple[Path, list[Span]], source: str
) -> None:
    spans = generated[1] if source == "generated" else _agent_loop()
    store.insert_spans(spans)
    store.insert_spans(spans[:100])  # delivered twice: counted once, as in Python
    python = {r.attempt_id: r for r in features.from_spans(spans).attempts}
    rows = queries.attempt_features_from_traces(store)
    assert [r["attempt_id"] for r in rows] == sorted(python)
    for row in rows:
        record = python[row["attempt_id"]]
        for name, get in _SQL_FIELDS.items():
            expected, got = get(record), row[name]
            if isinstance(expected, float) and got is not None:
                assert got == pytest.approx(expected, rel=1e-12), (name, row["attempt_id"])
            else:
                assert got == expected, (name, row["attempt_id"])
    assert any(r["stuck_loop"] for r in rows) and any(r["tool_error_count"] for r in rows)


# -------------------------------------------------------------------------------- errors


@needs_chdb
def test_clickhouse_errors_carry_the_servers_message(store: ClickHouseStore) -> None:
    with pytest.raises(ClickHouseError, match="Syntax error"):
        store.execute("SELEC 1")
    with pytest.raises(ClickHouseError, match=r"UNKNOWN_TABLE|does not exist"):
        store.query_rows("SELECT * FROM no_such_table")
    with pytest.raises(ClickHouseError, match=r"Cannot parse|CANNOT_PARSE|Cannot read"):
        store._backend.insert(
            f"INSERT INTO {store.database}.otel_traces (Duration) FORMAT JSONCompactEachRow",
            b'["not a number"]\n',
        )


@needs_chdb
def test_chdb_allows_one_directory_per_process(store: ClickHouseStore, tmp_path: Path) -> None:
    with pytest.raises(ClickHouseError, match="one data directory at a time"):
        connect(f"chdb://{tmp_path / 'other'}")
    assert not (tmp_path / "other").exists()


# ---------------------------------------------------------------------------- HTTP backend


class _ChdbHttpHandler(http.server.BaseHTTPRequestHandler):
    """Enough of ClickHouse's HTTP interface: POST a query (or ?query= plus rows), with
    ?database= and X-ClickHouse-User/Key."""

    session: Any = None
    lock = threading.Lock()
    seen: list[dict[str, Any]] = []  # noqa: RUF012
    gzipped = 0

    def do_POST(self) -> None:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
            _ChdbHttpHandler.gzipped += 1
        self.seen.append({"params": params, "user": self.headers.get("X-ClickHouse-User")})
        if self.headers.get("X-ClickHouse-Key") != "s3cret":
            self._reply(516, b"Code: 516. DB::Exception: default: Authentication failed")
            return
        sql = params["query"].encode() + b"\n" + body if "query" in params else body
        try:
            with self.lock:
                self.session.query(f"USE {params.get('database', 'default')}")
                result = self.session.query(sql, "TabSeparated").bytes()
        except Exception as exc:
            self._reply(500, str(exc).encode())
            return
        self._reply(200, result)

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@needs_chdb
def test_http_backend_against_a_server(chdb_dir: Path, generated: tuple[Path, list[Span]]) -> None:
    session: Any = importlib.import_module("chdb.session").Session(str(chdb_dir))
    _ChdbHttpHandler.session = session
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ChdbHttpHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        url = f"clickhouse://agent:s3cret@127.0.0.1:{port}/http_db"
        spans = _agent_loop() + generated[1][:5_000]
        with connect(url) as store:
            assert type(store._backend).__name__ == "HttpBackend"
            store.insert_spans(spans)
            result = features.from_spans(spans)
            store.insert_records([*result.attempts, *result.trials])
            assert store.read_attempts() == sorted(result.attempts, key=lambda a: a.attempt_id)
        assert _by_id([s for b in read_spans(url) for s in b]) == {
            s.span_id: _stored_form(s) for s in spans
        }
        assert features_from_clickhouse(url).attempts == result.attempts
        seen = _ChdbHttpHandler.seen
        assert {s["user"] for s in seen} == {"agent"}
        assert _ChdbHttpHandler.gzipped >= 2  # inserts are sent compressed
        assert all(s["params"].get("output_format_json_quote_64bit_integers") == "0" for s in seen)
        with pytest.raises(ClickHouseError, match="Authentication failed"):
            connect(f"clickhouse://agent:wrong@127.0.0.1:{port}/http_db")
        with connect(url, create=False) as store, pytest.raises(ClickHouseError, match="Syntax"):
            store.execute("SELEC 1")
    finally:
        server.shutdown()
        server.server_close()
        session.close()


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(
        ClickHouseError, match=r"cannot reach ClickHouse at clickhouse://127\.0\.0\.1"
    ):
        connect("clickhouse://127.0.0.1:1/otel", timeout=2)


def test_the_collector_config_writes_the_table_agentsignals_reads() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((COLLECTORS / "otelcol-clickhouse.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind
    exporter = config["exporters"]["clickhouse"]
    assert (exporter["database"], exporter["traces_table_name"]) == (
        schema.DEFAULT_DATABASE,
        schema.TRACES_TABLE,
    )
    assert config["processors"]["batch"]["send_batch_size"] >= 5_000
    endpoint = urllib.parse.urlsplit(exporter["endpoint"])
    assert parse_url(f"clickhouse://{endpoint.netloc}/{exporter['database']}").port == 8123


@needs_chdb
def test_judge_fields_round_trip_as_json_text(store: ClickHouseStore) -> None:
    judged = AttemptRecord(
        attempt_id="j1",
        judge={
            "memory_drift": {
                "match": JudgeField(value=True, explanation="drifts at [S3]", citations=["ab"]),
            },
            "first_wrong_step": {"index": JudgeField(value=3), "category": JudgeField(value="x")},
        },
        cluster_id="F01",
    )
    unjudged = AttemptRecord(attempt_id="j2")
    store.insert_records([judged, unjudged])
    assert {r.attempt_id: r for r in store.read_attempts()} == {"j1": judged, "j2": unjudged}
    # Queryable in SQL as JSON text.
    rows = store.query_rows(
        "SELECT attempt_id, JSONExtractBool(judge, 'memory_drift', 'match', 'value') AS drift "
        f"FROM {store.database}.agentsignals_attempts FINAL ORDER BY attempt_id"
    )
    assert rows == [{"attempt_id": "j1", "drift": True}, {"attempt_id": "j2", "drift": None}]


@needs_chdb
def test_session_records_round_trip_through_the_session_table(
    store: ClickHouseStore, shared_data: Path
) -> None:
    from agentsignals._features.record import SessionRecord
    from agentsignals._features.run import from_spans
    from agentsignals._import.run import import_file

    result = import_file(shared_data / "pi" / "before-compaction.jsonl")
    out = from_spans([s for t in result.trajectories for s in t])
    (session,) = out.sessions
    assert store.insert_records([*out.attempts, session]) == 2
    (back,) = store.read_sessions()
    assert isinstance(back, SessionRecord)
    assert back == session  # nullable series items and nested groups included
    assert back.user.agent_hedging_curve is not None and back.user.agent_hedging_curve[0] is None
    (row,) = store.query_rows(
        f"SELECT user.session_outcome AS o, length(user.region_edit_history) AS edits "
        f"FROM {store.database}.{schema.SESSIONS_TABLE} FINAL"
    )
    assert row == {"o": "abandoned_mid_session", "edits": 280}
