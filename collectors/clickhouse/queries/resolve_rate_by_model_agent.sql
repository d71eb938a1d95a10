-- Resolve rate by model and agent. Latest revision of each attempt (FINAL); subagents left out.
-- resolve_rate: share of the verified attempts (a verifier reward exists) with reward >= 1.
SELECT
    treatment.model_id AS model_id,
    treatment.agent_type AS agent_type,
    count() AS attempts,
    countIf(verification.reward IS NOT NULL) AS verified,
    avg(verification.reward) AS mean_reward,
    countIf(verification.reward >= 1) / nullIf(verified, 0) AS resolve_rate
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL
GROUP BY model_id, agent_type
ORDER BY model_id, agent_type
