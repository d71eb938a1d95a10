CREATE TABLE IF NOT EXISTS otel.agentsignals_trials
(
    schema_version          Int64,
    trial_id                String,
    task_id                 Nullable(String),
    resource_attributes     Nullable(String),
    complete                Bool,
    revision                UInt32,
    attempt_count           Int64,
    first_attempt_id        Nullable(String),
    retry_attempt_ids       Array(String),
    subagent_attempt_ids    Array(String),
    wall_time_s             Nullable(Float64),
    retries_cost_usd        Nullable(Float64),
    retries_tool_call_count Nullable(Int64),
    final_reward            Nullable(Float64),
    resolved_on_attempt     Nullable(Int64),
    record_json             String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY trial_id
