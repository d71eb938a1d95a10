-- First attempts (attempt_index 0) against retries (index > 0): does a gain come from
-- first-pass quality or from recovery? Latest revisions; subagents left out.
SELECT
    if(attempt_index = 0, 'attempt_1', 'retry') AS stage,
    count() AS attempts,
    countIf(verification.reward IS NOT NULL) AS verified,
    avg(verification.reward) AS mean_reward,
    countIf(verification.reward >= 1) / nullIf(verified, 0) AS resolve_rate
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL AND attempt_index IS NOT NULL
GROUP BY stage
ORDER BY stage
