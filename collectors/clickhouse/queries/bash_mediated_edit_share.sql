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
