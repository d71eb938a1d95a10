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
