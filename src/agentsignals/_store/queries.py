"""Analysis SQL over the ClickHouse store, as text (shipped as files too) and as functions.

The same text is in ``collectors/clickhouse/queries/<name>.sql`` (``write_sql_files`` writes
them; a test keeps the two equal). Table names are unqualified: run the files in the store's
database (``clickhouse-client --database otel``); the functions do that for you.

Over the feature table (latest revision of each attempt through ``FINAL``; subagents' attempts,
``parent_attempt_id IS NOT NULL``, left out; an attempt is *resolved* when its verifier reward
is >= 1, and rates are over the attempts that have the measurement, so NULL means "not
measured", never 0):

* ``resolve_rate_by_model_agent``: attempts, verified attempts, mean reward and resolve rate
  per (``treatment.model_id``, ``treatment.agent_type``);
* ``attempt1_vs_retry``: the same for first attempts (index 0) against retries;
* ``stuck_loop_rate_by_agent``: share of attempts with a stuck loop, per agent;
* ``bash_mediated_edit_share``: share of attempts that edited files only through the shell,
  and share of file-changing calls that were shell calls, per agent;
* ``localization_vs_reward``: outcomes by whether the attempt touched a gold-patch file.

Straight from ``otel_traces``, no Python involved: ``attempt_features_from_traces`` derives
per-attempt features (tool sequence in time order, edit and test counts, stuck loops, touched
files, tokens, cost, wall time) for every attempt in one query. It agrees with the Python
extractor on these fields for traces where (a) nested tool calls are at most one level deep
and change no files of their own, and (b) each token or cost field is recorded either on every
turn's model-call spans or on the turn spans (the Python extractor also merges the two per
turn).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from agentsignals._store.clickhouse import ClickHouseStore

__all__ = [
    "QUERIES",
    "attempt1_vs_retry",
    "attempt_features_from_traces",
    "bash_mediated_edit_share",
    "localization_vs_reward",
    "resolve_rate_by_model_agent",
    "run_query",
    "stuck_loop_rate_by_agent",
    "write_sql_files",
]

_OUTCOMES: Final = """\
    count() AS attempts,
    countIf(verification.reward IS NOT NULL) AS verified,
    avg(verification.reward) AS mean_reward,
    countIf(verification.reward >= 1) / nullIf(verified, 0) AS resolve_rate"""

RESOLVE_RATE_BY_MODEL_AGENT: Final = f"""\
-- Resolve rate by model and agent. Latest revision of each attempt (FINAL); subagents left out.
-- resolve_rate: share of the verified attempts (a verifier reward exists) with reward >= 1.
SELECT
    treatment.model_id AS model_id,
    treatment.agent_type AS agent_type,
{_OUTCOMES}
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL
GROUP BY model_id, agent_type
ORDER BY model_id, agent_type
"""

ATTEMPT1_VS_RETRY: Final = f"""\
-- First attempts (attempt_index 0) against retries (index > 0): does a gain come from
-- first-pass quality or from recovery? Latest revisions; subagents left out.
SELECT
    if(attempt_index = 0, 'attempt_1', 'retry') AS stage,
{_OUTCOMES}
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL AND attempt_index IS NOT NULL
GROUP BY stage
ORDER BY stage
"""

STUCK_LOOP_RATE_BY_AGENT: Final = """\
-- Stuck-loop rate by agent: attempts that repeated one call (same fingerprint) 3+ times in a
-- row, over the attempts whose calls had fingerprints. Latest revisions; subagents left out.
SELECT
    treatment.agent_type AS agent_type,
    count() AS attempts,
    countIf(behavior.stuck_loop IS NOT NULL) AS measured,
    countIf(behavior.stuck_loop) AS stuck,
    stuck / nullIf(measured, 0) AS stuck_loop_rate
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL
GROUP BY agent_type
ORDER BY agent_type
"""

BASH_MEDIATED_EDIT_SHARE: Final = """\
-- Edits made through the shell, by agent. bash_mediated_share: attempts that changed files
-- without any edit-tool call, over the attempts whose workspace was tracked.
-- shell_edit_call_share: file-changing calls that were not edit-tool calls, over all edits.
SELECT
    treatment.agent_type AS agent_type,
    count() AS attempts,
    countIf(behavior.bash_mediated_edits IS NOT NULL) AS measured,
    countIf(behavior.bash_mediated_edits) AS bash_mediated,
    bash_mediated / nullIf(measured, 0) AS bash_mediated_share,
    sum(behavior.edit_calls) AS edit_tool_calls,
    sum(behavior.shell_edit_calls) AS shell_edit_calls,
    shell_edit_calls / nullIf(edit_tool_calls + shell_edit_calls, 0) AS shell_edit_call_share
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL
GROUP BY agent_type
ORDER BY agent_type
"""

LOCALIZATION_VS_REWARD: Final = f"""\
-- Localization accuracy against outcome: did the attempt touch a file of the gold patch
-- (behavior.localized_correct_file; NULL when no gold patch was known)? Latest revisions;
-- subagents left out.
SELECT
    behavior.localized_correct_file AS localized_correct_file,
{_OUTCOMES}
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL
GROUP BY localized_correct_file
ORDER BY localized_correct_file
"""

_USAGE: Final = (
    ("input", "gen_ai.usage.input_tokens"),
    ("output", "gen_ai.usage.output_tokens"),
    ("cache_read", "gen_ai.usage.cache_read.input_tokens"),
    ("cache_write", "gen_ai.usage.cache_write.input_tokens"),
)


def _usage_aggregates() -> str:
    lines: list[str] = []
    for name, key in _USAGE:
        lines += [
            f"countIf(is_model_call AND mapContains(attrs, '{key}')) AS mc_{name}_n,",
            f"sumIf(toInt64OrZero(attrs['{key}']), is_model_call) AS mc_{name},",
            f"countIf(span_type = 'turn' AND mapContains(attrs, '{key}')) AS turn_{name}_n,",
            f"sumIf(toInt64OrZero(attrs['{key}']), span_type = 'turn') AS turn_{name},",
        ]
    key = "agent_signals.usage.cost_usd"
    lines += [
        f"countIf(is_model_call AND mapContains(attrs, '{key}')) AS mc_cost_n,",
        f"sumIf(toFloat64OrZero(attrs['{key}']), is_model_call) AS mc_cost,",
        f"countIf(span_type = 'turn' AND mapContains(attrs, '{key}')) AS turn_cost_n,",
        f"sumIf(toFloat64OrZero(attrs['{key}']), span_type = 'turn') AS turn_cost",
    ]
    return "\n".join(f"            {line}" for line in lines)


def _usage_columns() -> str:
    lines: list[str] = []
    for name, key in _USAGE:
        column = "input_tokens_total" if name == "input" else "output_tokens_total"
        column = column if name in ("input", "output") else f"{name}_tokens"
        lines.append(
            f"multiIf(mc_{name}_n > 0, mc_{name}, turn_{name}_n > 0, turn_{name}, "
            f"toInt64OrNull(attempt_attrs['{key}'])) AS {column},"
        )
    lines.append(
        "multiIf(mc_cost_n > 0, mc_cost, turn_cost_n > 0, turn_cost, "
        "toFloat64OrNull(attempt_attrs['agent_signals.usage.cost_usd'])) AS cost_usd"
    )
    return "\n".join(f"            {line}" for line in lines)


ATTEMPT_FEATURES_FROM_TRACES: Final = f"""\
-- Per-attempt features derived in SQL straight from otel_traces (the Collector exporter's
-- table), one row per agent_signals.attempt.id; a span stored twice counts once. Tool calls
-- are the tool spans not nested in another tool span, ordered by (start, span id). Tokens
-- and cost: the sum over model-call spans when they recorded the field, else over turn
-- spans, else the attempt span's total. NULL when not recorded; touched_files is [] with
-- touched_files_known = false when the workspace was not tracked; touched_files in the order
-- the calls first changed them, as the Python features.
WITH
    attempt_spans AS
    (
        SELECT
            SpanAttributes['agent_signals.attempt.id'] AS attempt_id,
            SpanAttributes['agent_signals.span.type'] AS span_type,
            SpanAttributes AS attrs,
            TraceId,
            SpanId,
            ParentSpanId,
            toUnixTimestamp64Nano(Timestamp) AS start_ns,
            Duration,
            StatusCode,
            span_type = '' AND attrs['gen_ai.operation.name']
                IN ('chat', 'text_completion', 'generate_content') AS is_model_call
        FROM otel_traces
        WHERE attempt_id != ''
        LIMIT 1 BY TraceId, SpanId  -- at-least-once delivery can store a span twice
    ),
    per_attempt AS
    (
        SELECT
            attempt_id,
            countIf(span_type = 'attempt') > 0 AS has_attempt_span,
            argMinIf(attrs, (start_ns, SpanId), span_type = 'attempt') AS attempt_attrs,
            argMinIf(Duration, (start_ns, SpanId), span_type = 'attempt') AS attempt_duration,
            argMinIf(TraceId, (start_ns, SpanId), span_type = 'attempt') AS attempt_trace_id,
            any(TraceId) AS any_trace_id,
            min(start_ns) AS first_start,
            max(start_ns + Duration) AS last_end,
            countIf(span_type = 'turn') AS turns,
            countIf(is_model_call) AS model_call_spans,
            anyIf(attrs['agent_signals.trial.id'], mapContains(attrs, 'agent_signals.trial.id'))
                AS any_trial_id,
            maxIf(
                toInt64OrNull(attrs['agent_signals.attempt.index']),
                mapContains(attrs, 'agent_signals.attempt.index')
            ) AS any_attempt_index,
            groupArrayIf(
                (
                    start_ns,
                    SpanId,
                    attrs['gen_ai.tool.name'],
                    attrs['agent_signals.tool.category'],
                    attrs['agent_signals.tool.call.fingerprint'],
                    JSONExtract(attrs['agent_signals.tool.changed_files'], 'Array(String)'),
                    StatusCode,
                    ParentSpanId
                ),
                span_type = 'tool'
            ) AS tool_spans,
            countIf(span_type = 'tool' AND mapContains(attrs, 'agent_signals.tool.changed_files'))
                > 0 AS tools_tracked,
            groupUniqArrayArrayIf(
                JSONExtract(attrs['agent_signals.tool.changed_files'], 'Array(String)'),
                span_type = 'tool'
            ) AS changed_union,
{_usage_aggregates()}
        FROM attempt_spans
        GROUP BY attempt_id
    ),
    derived AS
    (
        SELECT
            attempt_id,
            arrayMap(c -> c.2, tool_spans) AS tool_ids,
            -- The calls: tool spans whose parent is not a tool span, in (start, id) order.
            arraySort(c -> (c.1, c.2), arrayFilter(c -> NOT has(tool_ids, c.8), tool_spans))
                AS calls,
            if(has_attempt_span, attempt_trace_id, any_trace_id) AS trace_id,
            nullIf(if(has_attempt_span AND mapContains(attempt_attrs, 'agent_signals.trial.id'),
                attempt_attrs['agent_signals.trial.id'], any_trial_id), '') AS trial_id,
            nullIf(attempt_attrs['agent_signals.task.id'], '') AS task_id,
            coalesce(toInt64OrNull(attempt_attrs['agent_signals.attempt.index']), any_attempt_index)
                AS attempt_index,
            nullIf(attempt_attrs['agent_signals.treatment.model_id'], '') AS model_id,
            nullIf(attempt_attrs['agent_signals.treatment.agent_type'], '') AS agent_type,
            nullIf(attempt_attrs['agent_signals.attempt.exit_reason'], '') AS exit_reason,
            if(has_attempt_span, attempt_duration, last_end - first_start) / 1e9 AS wall_time_s,
            multiIf(turns > 0, turns, has_attempt_span AND model_call_spans = 0, 0, NULL)
                AS turn_count,
            has_attempt_span OR length(calls) > 0 AS calls_known,
            if(calls_known, length(calls), NULL) AS tool_call_count,
            arrayMap(c -> c.3, calls) AS tool_sequence,
            arrayMap(c -> c.4, calls) AS tool_category_sequence,
            if(calls_known, arrayCount(c -> c.4 = 'edit', calls), NULL) AS edit_calls,
            if(calls_known, arrayCount(c -> c.4 != 'edit' AND notEmpty(c.6), calls), NULL)
                AS shell_edit_calls,
            if(calls_known, arrayCount(c -> c.4 = 'test', calls), NULL) AS test_runs,
            if(calls_known, arrayCount(c -> c.7 IN ('Error', 'STATUS_CODE_ERROR'), calls), NULL)
                AS tool_error_count,
            arrayMap(c -> c.5, calls) AS fingerprints,
            arrayCount(f -> f != '', fingerprints) AS with_fingerprint,
            arraySplit(
                (f, starts) -> starts,
                fingerprints,
                arrayMap(
                    i -> i = 1 OR fingerprints[i] = '' OR fingerprints[i] != fingerprints[i - 1],
                    arrayEnumerate(fingerprints)
                )
            ) AS runs,
            if(with_fingerprint > 0,
                arrayMax(arrayMap(r -> if(r[1] = '', 0, length(r)), runs)), NULL) AS max_repeat,
            if(with_fingerprint > 0,
                (with_fingerprint - length(arrayDistinct(arrayFilter(f -> f != '', fingerprints))))
                    / with_fingerprint,
                NULL) AS repetition_rate,
            max_repeat >= 3 AS stuck_loop,
            mapContains(attempt_attrs, 'agent_signals.attempt.touched_files') OR tools_tracked
                AS touched_files_known,
            if(mapContains(attempt_attrs, 'agent_signals.attempt.touched_files'),
                JSONExtract(attempt_attrs['agent_signals.attempt.touched_files'], 'Array(String)'),
                arraySort(changed_union)) AS touched_set,
            -- In the order the calls first changed them (files no call changed last, by path).
            arraySort(
                f -> (if(arrayFirstIndex(c -> has(c.6, f), calls) = 0, 4294967295,
                         arrayFirstIndex(c -> has(c.6, f), calls)), f),
                touched_set) AS touched_files,
{_usage_columns()}
        FROM per_attempt
    )
SELECT
    attempt_id,
    trace_id,
    trial_id,
    task_id,
    attempt_index,
    model_id,
    agent_type,
    exit_reason,
    wall_time_s,
    turn_count,
    tool_call_count,
    tool_sequence,
    tool_category_sequence,
    edit_calls,
    shell_edit_calls,
    test_runs,
    tool_error_count,
    max_repeat,
    repetition_rate,
    CAST(stuck_loop AS Nullable(Bool)) AS stuck_loop,
    touched_files,
    CAST(touched_files_known AS Bool) AS touched_files_known,
    input_tokens_total,
    output_tokens_total,
    cache_read_tokens,
    cache_write_tokens,
    cost_usd
FROM derived
ORDER BY attempt_id
"""

QUERIES: Final[dict[str, str]] = {
    "resolve_rate_by_model_agent": RESOLVE_RATE_BY_MODEL_AGENT,
    "attempt1_vs_retry": ATTEMPT1_VS_RETRY,
    "stuck_loop_rate_by_agent": STUCK_LOOP_RATE_BY_AGENT,
    "bash_mediated_edit_share": BASH_MEDIATED_EDIT_SHARE,
    "localization_vs_reward": LOCALIZATION_VS_REWARD,
    "attempt_features_from_traces": ATTEMPT_FEATURES_FROM_TRACES,
}
"""Query name -> SQL text (the file ``collectors/clickhouse/queries/<name>.sql``)."""


def run_query(store: ClickHouseStore, name: str) -> list[dict[str, Any]]:
    """Run one of :data:`QUERIES` in the store's database; rows as dicts."""
    try:
        sql = QUERIES[name]
    except KeyError:
        raise KeyError(f"no query {name!r}; known: {', '.join(QUERIES)}") from None
    store.use_database()
    return store.query_rows(sql)


def resolve_rate_by_model_agent(store: ClickHouseStore) -> list[dict[str, Any]]:
    """Rows of (model_id, agent_type, attempts, verified, mean_reward, resolve_rate)."""
    return run_query(store, "resolve_rate_by_model_agent")


def attempt1_vs_retry(store: ClickHouseStore) -> list[dict[str, Any]]:
    """Rows of (stage: attempt_1 | retry, attempts, verified, mean_reward, resolve_rate)."""
    return run_query(store, "attempt1_vs_retry")


def stuck_loop_rate_by_agent(store: ClickHouseStore) -> list[dict[str, Any]]:
    """Rows of (agent_type, attempts, measured, stuck, stuck_loop_rate)."""
    return run_query(store, "stuck_loop_rate_by_agent")


def bash_mediated_edit_share(store: ClickHouseStore) -> list[dict[str, Any]]:
    """Rows of (agent_type, attempts, measured, bash_mediated, bash_mediated_share,
    edit_tool_calls, shell_edit_calls, shell_edit_call_share)."""
    return run_query(store, "bash_mediated_edit_share")


def localization_vs_reward(store: ClickHouseStore) -> list[dict[str, Any]]:
    """Rows of (localized_correct_file, attempts, verified, mean_reward, resolve_rate)."""
    return run_query(store, "localization_vs_reward")


def attempt_features_from_traces(store: ClickHouseStore) -> list[dict[str, Any]]:
    """Per-attempt features computed by ClickHouse from ``otel_traces``, one row per
    attempt id, ordered by it."""
    return run_query(store, "attempt_features_from_traces")


def write_sql_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Write every query to ``<directory>/<name>.sql``; returns the paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, sql in QUERIES.items():
        path = folder / f"{name}.sql"
        path.write_text(sql)
        paths.append(path)
    return paths
