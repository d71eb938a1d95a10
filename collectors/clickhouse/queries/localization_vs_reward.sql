-- Localization accuracy against outcome: did the attempt touch a file of the gold patch
-- (behavior.localized_correct_file; NULL when no gold patch was known)? Latest revisions;
-- subagents left out.
SELECT
    behavior.localized_correct_file AS localized_correct_file,
    count() AS attempts,
    countIf(verification.reward IS NOT NULL) AS verified,
    avg(verification.reward) AS mean_reward,
    countIf(verification.reward >= 1) / nullIf(verified, 0) AS resolve_rate
FROM agentsignals_attempts FINAL
WHERE parent_attempt_id IS NULL
GROUP BY localized_correct_file
ORDER BY localized_correct_file
