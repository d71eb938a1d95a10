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
            countIf(is_model_call AND mapContains(attrs, 'gen_ai.usage.input_tokens')) AS mc_input_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.input_tokens']), is_model_call) AS mc_input,
            countIf(span_type = 'turn' AND mapContains(attrs, 'gen_ai.usage.input_tokens')) AS turn_input_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.input_tokens']), span_type = 'turn') AS turn_input,
            countIf(is_model_call AND mapContains(attrs, 'gen_ai.usage.output_tokens')) AS mc_output_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.output_tokens']), is_model_call) AS mc_output,
            countIf(span_type = 'turn' AND mapContains(attrs, 'gen_ai.usage.output_tokens')) AS turn_output_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.output_tokens']), span_type = 'turn') AS turn_output,
            countIf(is_model_call AND mapContains(attrs, 'gen_ai.usage.cache_read.input_tokens')) AS mc_cache_read_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.cache_read.input_tokens']), is_model_call) AS mc_cache_read,
            countIf(span_type = 'turn' AND mapContains(attrs, 'gen_ai.usage.cache_read.input_tokens')) AS turn_cache_read_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.cache_read.input_tokens']), span_type = 'turn') AS turn_cache_read,
            countIf(is_model_call AND mapContains(attrs, 'gen_ai.usage.cache_write.input_tokens')) AS mc_cache_write_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.cache_write.input_tokens']), is_model_call) AS mc_cache_write,
            countIf(span_type = 'turn' AND mapContains(attrs, 'gen_ai.usage.cache_write.input_tokens')) AS turn_cache_write_n,
            sumIf(toInt64OrZero(attrs['gen_ai.usage.cache_write.input_tokens']), span_type = 'turn') AS turn_cache_write,
            countIf(is_model_call AND mapContains(attrs, 'agent_signals.usage.cost_usd')) AS mc_cost_n,
            sumIf(toFloat64OrZero(attrs['agent_signals.usage.cost_usd']), is_model_call) AS mc_cost,
            countIf(span_type = 'turn' AND mapContains(attrs, 'agent_signals.usage.cost_usd')) AS turn_cost_n,
            sumIf(toFloat64OrZero(attrs['agent_signals.usage.cost_usd']), span_type = 'turn') AS turn_cost
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
            multiIf(mc_input_n > 0, mc_input, turn_input_n > 0, turn_input, toInt64OrNull(attempt_attrs['gen_ai.usage.input_tokens'])) AS input_tokens_total,
            multiIf(mc_output_n > 0, mc_output, turn_output_n > 0, turn_output, toInt64OrNull(attempt_attrs['gen_ai.usage.output_tokens'])) AS output_tokens_total,
            multiIf(mc_cache_read_n > 0, mc_cache_read, turn_cache_read_n > 0, turn_cache_read, toInt64OrNull(attempt_attrs['gen_ai.usage.cache_read.input_tokens'])) AS cache_read_tokens,
            multiIf(mc_cache_write_n > 0, mc_cache_write, turn_cache_write_n > 0, turn_cache_write, toInt64OrNull(attempt_attrs['gen_ai.usage.cache_write.input_tokens'])) AS cache_write_tokens,
            multiIf(mc_cost_n > 0, mc_cost, turn_cost_n > 0, turn_cost, toFloat64OrNull(attempt_attrs['agent_signals.usage.cost_usd'])) AS cost_usd
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
