"""Semantic-convention constants for agentsignals.

GENERATED from semconv/*.yaml by semconv/generate.py: do not edit by hand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

SCHEMA_URL: Final = "https://agentsignals.dev/schemas/0.1.0"
"""Schema URL of this version of the agentsignals convention."""

# ---- attributes
AGENT_SIGNALS_ATTEMPT_CONTEXT: Final = "agent_signals.attempt.context"
"""
Whether the attempt is an eval run or a product session, when the producer knows. Without it an
attempt is a product session when it has user-turn spans of kind `message` and no run id or verifier
outcome (docs/sessions.md).
"""

AGENT_SIGNALS_ATTEMPT_CREATED_FILES: Final = "agent_signals.attempt.created_files"
"""
The touched files that did not exist before the attempt (a diff's new files: a reproduction script
the agent left in its patch). Set by importers from the submitted patch.
"""

AGENT_SIGNALS_ATTEMPT_EXIT_REASON: Final = "agent_signals.attempt.exit_reason"
"""Why the attempt ended. Set explicitly, or inferred from the exception that ended it."""

AGENT_SIGNALS_ATTEMPT_FINAL_FAILURE_MODE: Final = "agent_signals.attempt.final_failure_mode"
"""The harness's label for why the attempt failed, if it did."""

AGENT_SIGNALS_ATTEMPT_ID: Final = "agent_signals.attempt.id"
"""Identifier of the attempt; on every span inside it."""

AGENT_SIGNALS_ATTEMPT_INDEX: Final = "agent_signals.attempt.index"
"""Zero-based index of the attempt within its trial (0 is the first attempt; >0 are retries)."""

AGENT_SIGNALS_ATTEMPT_LOCALIZATION_MODE: Final = "agent_signals.attempt.localization_mode"
"""The harness controller's classification of how the attempt localized the problem."""

AGENT_SIGNALS_ATTEMPT_PARENT_ID: Final = "agent_signals.attempt.parent_id"
"""
For a subagent's attempt (an agent started by another agent's tool call), the attempt id of the
agent that started it. Subagents are kept apart from retries in trial records.
"""

AGENT_SIGNALS_ATTEMPT_RECOVERY_MODE: Final = "agent_signals.attempt.recovery_mode"
"""How the harness recovered into this attempt (for retries), as the controller labels it."""

AGENT_SIGNALS_ATTEMPT_SUBAGENT_EDIT_CALLS: Final = "agent_signals.attempt.subagent_edit_calls"
"""
Edit-tool calls made by the subagents this attempt started (a manager agent whose programmer
subagent edited the files): its edits were not shell-mediated though it made no edit call itself.
Set by importers of multi-agent trajectories when non-zero.
"""

AGENT_SIGNALS_ATTEMPT_TIMED_OUT: Final = "agent_signals.attempt.timed_out"
"""Whether the attempt hit its time limit."""

AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES: Final = "agent_signals.attempt.touched_files"
"""
Files that differ from the workspace snapshot taken when the attempt started, measured on the
workspace when it ends (edits through the shell included).
"""

AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED: Final = (
    "agent_signals.attempt.touched_files.lines_added"
)
"""Lines added per touched file against the start snapshot, parallel to touched_files."""

AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_REMOVED: Final = (
    "agent_signals.attempt.touched_files.lines_removed"
)
"""Lines removed per touched file against the start snapshot, parallel to touched_files."""

AGENT_SIGNALS_COMPACTION_TOKENS_AFTER: Final = "agent_signals.compaction.tokens_after"
"""Tokens in the compacted context, when the agent reported them."""

AGENT_SIGNALS_COMPACTION_TOKENS_BEFORE: Final = "agent_signals.compaction.tokens_before"
"""Tokens in the context when it was compacted, as the agent reported them."""

AGENT_SIGNALS_COMPACTION_TRIGGER: Final = "agent_signals.compaction.trigger"
"""What started the compaction, as the agent names it (`auto`, `manual`)."""

AGENT_SIGNALS_CONTENT_KEY: Final = "agent_signals.content.key"
"""On an agent_signals.content event, the attribute key the value would have had on the span."""

AGENT_SIGNALS_CONTENT_REDACTIONS: Final = "agent_signals.content.redactions"
"""Number of secrets redacted from captured values on this span."""

AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS: Final = "agent_signals.content.truncated.keys"
"""Keys of captured values that were truncated or omitted to fit the byte budget."""

AGENT_SIGNALS_CONTENT_TRUNCATED_ORIGINAL_BYTES: Final = (
    "agent_signals.content.truncated.original_bytes"
)
"""Original sizes in bytes of the truncated values, parallel to the keys."""

AGENT_SIGNALS_CONTENT_TRUNCATED_SHA256: Final = "agent_signals.content.truncated.sha256"
"""SHA-256 (hex) of the original truncated values, parallel to the keys."""

AGENT_SIGNALS_CONTENT_VALUE: Final = "agent_signals.content.value"
"""On an agent_signals.content event, the captured (budgeted, redacted) value."""

AGENT_SIGNALS_FAULT_DESCRIPTION: Final = "agent_signals.fault.description"
"""What was done, in words (for people and for a judge told about the fault)."""

AGENT_SIGNALS_FAULT_FILES: Final = "agent_signals.fault.files"
"""Workspace files the fault changed, created or deleted (relative to the workspace)."""

AGENT_SIGNALS_FAULT_ID: Final = "agent_signals.fault.id"
"""Identifier of the injected fault, from the fault plan (or `f<N>` in plan order)."""

AGENT_SIGNALS_FAULT_KIND: Final = "agent_signals.fault.kind"
"""What the fault did."""

AGENT_SIGNALS_FAULT_MENTIONS: Final = "agent_signals.fault.mentions"
"""
Words a later message of the agent may contain that show it noticed this fault (the affected file's
name, the added test's name, the broken module, the error text).
"""

AGENT_SIGNALS_FAULT_RESTORED_EXACTLY: Final = "agent_signals.fault.restored_exactly"
"""When the attempt ended, whether every affected file was byte for byte as before the fault."""

AGENT_SIGNALS_FAULT_REVERSIBLE: Final = "agent_signals.fault.reversible"
"""Whether the fault can be undone exactly (the workspace put back byte for byte)."""

AGENT_SIGNALS_FAULT_STEP: Final = "agent_signals.fault.step"
"""
The number of top-level tool calls the agent had made when the fault took effect: the 0-based index,
in the attempt's tool calls (`behavior.tool_sequence`), of the first call that meets the fault (for
a tool fault, the call whose result it replaced).
"""

AGENT_SIGNALS_FAULT_TRIGGER: Final = "agent_signals.fault.trigger"
"""When the fault was set to fire."""

AGENT_SIGNALS_FAULT_UNDONE: Final = "agent_signals.fault.undone"
"""
When the attempt ended: true if no affected file still held what the fault wrote (the agent changed,
restored or recreated it), false if some did.
"""

AGENT_SIGNALS_IMPORT_FORMAT: Final = "agent_signals.import.format"
"""
The trajectory format the spans were imported from (swe-agent, mini-swe-agent, openhands, claude-
code, pi, codex, inspect-ai).
"""

AGENT_SIGNALS_IMPORT_SOURCE: Final = "agent_signals.import.source"
"""The file the spans were imported from."""

AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME: Final = "agent_signals.import.synthetic_time"
"""True when the file had no timestamps and the span's times were synthesized in step order."""

AGENT_SIGNALS_INTEGRATION_NAME: Final = "agent_signals.integration.name"
"""
The agentsignals framework integration that recorded the attempt (`agentsignals.instrument(name)`);
absent for hand-written instrumentation.
"""

AGENT_SIGNALS_JUDGE_ATTEMPT_SPAN_ID: Final = "agent_signals.judge.attempt_span_id"
"""
Span id of the judged attempt. Judge spans carry no agent_signals.attempt.id, so feature extraction
never counts them as spans of the attempt; this links them back.
"""

AGENT_SIGNALS_JUDGE_RUBRIC: Final = "agent_signals.judge.rubric"
"""
The rubric a judge span reports (a built-in such as memory_drift, a user's YAML rubric, or
first_wrong_step); its fields are `gen_ai.evaluation.result` events named `judge.<rubric>.<field>`.
"""

AGENT_SIGNALS_JUDGE_RUBRIC_VERSION: Final = "agent_signals.judge.rubric_version"
"""Version of the rubric (part of the judge's cache key; a new version is a new judgment)."""

AGENT_SIGNALS_JUDGE_STEP: Final = "agent_signals.judge.step"
"""Index of the transcript step ([S12] is 12) a first-wrong-step judge span is parented to."""

AGENT_SIGNALS_RUN_ID: Final = "agent_signals.run.id"
"""
The evaluation run (a batch of trials, e.g. a SWE-bench harness run id) the trial belongs to; on
trial and attempt spans, used to match verifier reports when an instance ran more than once.
"""

AGENT_SIGNALS_SESSION_ABANDONED_TURNS: Final = "agent_signals.session.abandoned_turns"
"""
Model responses on branches of the session the user abandoned (went back to an earlier point and
continued from there); they are not imported as turns. Set when non-zero.
"""

AGENT_SIGNALS_SESSION_CHANGES_REVERTED: Final = "agent_signals.session.changes_reverted"
"""
At the session's close, every file the agent changed is back as it was (no difference from the
commit the session started at, nothing committed over it): the changes were reverted.
"""

AGENT_SIGNALS_SESSION_OUTPUT_APPLIED: Final = "agent_signals.session.output_applied"
"""
At the session's close, the git repository it worked in has a commit made since the session started
that touches a file the agent changed (the user applied its output).
"""

AGENT_SIGNALS_SPAN_TYPE: Final = "agent_signals.span.type"
"""
Which agentsignals span type this span is (the four of the agent loop, a user's turn in an
interactive session, or a verification or judge result added later).
"""

AGENT_SIGNALS_TASK_ID: Final = "agent_signals.task.id"
"""The task the trial works on (for SWE-bench, the instance id)."""

AGENT_SIGNALS_TEST_COMPLETE: Final = "agent_signals.test.complete"
"""Whether the run's final summary was seen (false for a run cut off by a timeout)."""

AGENT_SIGNALS_TEST_ERROR_COUNT: Final = "agent_signals.test.error_count"
"""Tests that errored in this run (collection or setup errors included)."""

AGENT_SIGNALS_TEST_FAILED: Final = "agent_signals.test.failed"
"""Ids of the tests that failed or errored (capped)."""

AGENT_SIGNALS_TEST_FAILED_COUNT: Final = "agent_signals.test.failed_count"
"""Tests that failed in this run."""

AGENT_SIGNALS_TEST_FRAMEWORK: Final = "agent_signals.test.framework"
"""Which output format the test run was parsed from (pytest, unittest, django, junit)."""

AGENT_SIGNALS_TEST_PASSED: Final = "agent_signals.test.passed"
"""Ids of the tests that passed, when the output names them (capped)."""

AGENT_SIGNALS_TEST_PASSED_COUNT: Final = "agent_signals.test.passed_count"
"""Tests that passed in this run (from the summary when present)."""

AGENT_SIGNALS_TEST_RUNNER: Final = "agent_signals.test.runner"
"""
The test runner the call's command runs (its name in the registry's test-runner table,
semconv/model/test_runners.yaml, or a user's entry from AGENTSIGNALS_TEST_RUNNERS).
"""

AGENT_SIGNALS_TEST_SKIPPED_COUNT: Final = "agent_signals.test.skipped_count"
"""Tests skipped in this run."""

AGENT_SIGNALS_TOOL_CALL_FINGERPRINT: Final = "agent_signals.tool.call.fingerprint"
"""
Short hash of the tool name and its canonical arguments; equal fingerprints mean identical calls
(the stuck-loop signal) without recording the arguments themselves.
"""

AGENT_SIGNALS_TOOL_CATEGORY: Final = "agent_signals.tool.category"
"""What kind of work the tool call does; inferred from the tool name unless given."""

AGENT_SIGNALS_TOOL_CHANGED_FILES: Final = "agent_signals.tool.changed_files"
"""
Files whose content changed during the call: measured on the workspace in live runs; in imported
trajectories (no workspace) the files the call's syntax says it writes (then
`agent_signals.tool.changes_inferred` is true).
"""

AGENT_SIGNALS_TOOL_CHANGES_INFERRED: Final = "agent_signals.tool.changes_inferred"
"""
True when `agent_signals.tool.changed_files` was read from the call's text (an imported shell
command's redirections, sed -i, heredocs) rather than measured on the workspace. Written whatever
the exit code: a command that failed late may still have written files.
"""

AGENT_SIGNALS_TOOL_COMMAND_COMPLETE: Final = "agent_signals.tool.command_complete"
"""
False when a shell command was larger than the classifier's bound and only part of it was read (its
category and files come from that part). Absent when it was read whole.
"""

AGENT_SIGNALS_TOOL_EDIT_MODE: Final = "agent_signals.tool.edit_mode"
"""How the call changed files, when it changed any."""

AGENT_SIGNALS_TOOL_FILES: Final = "agent_signals.tool.files"
"""Files the call targets as the agent stated them (paths from the arguments)."""

AGENT_SIGNALS_TOOL_LINES_ADDED: Final = "agent_signals.tool.lines_added"
"""Lines added by the call, measured on the workspace."""

AGENT_SIGNALS_TOOL_LINES_REMOVED: Final = "agent_signals.tool.lines_removed"
"""Lines removed by the call, measured on the workspace."""

AGENT_SIGNALS_TOOL_OUTPUT_BYTES: Final = "agent_signals.tool.output.bytes"
"""Size in bytes of the tool's result as the agent received it; recorded without content."""

AGENT_SIGNALS_TOOL_REGIONS_ADDED_LINES: Final = "agent_signals.tool.regions.added_lines"
"""Lines the call wrote in each region (from start_lines on)."""

AGENT_SIGNALS_TOOL_REGIONS_FILES: Final = "agent_signals.tool.regions.files"
"""
The file of each region (diff hunk) the call changed, in order; parallel to the other
`agent_signals.tool.regions.*` arrays. From the edit tool's own diff (Claude Code's structured
patch, pi's edit diff) or measured on the workspace.
"""

AGENT_SIGNALS_TOOL_REGIONS_REMOVED_LINES: Final = "agent_signals.tool.regions.removed_lines"
"""Lines the call removed in each region."""

AGENT_SIGNALS_TOOL_REGIONS_START_LINES: Final = "agent_signals.tool.regions.start_lines"
"""
First line (1-based, in the file after the call) of each changed region; for a region that only
removed lines, the line where they were.
"""

AGENT_SIGNALS_TOOL_RESULT_FILES: Final = "agent_signals.tool.result_files"
"""
Files the call's result names as hits (a search's matches: `path:line:` lines, `grep -l` lists),
read from its output. Searched files for `files_searched_before_edit`.
"""

AGENT_SIGNALS_TOOL_TIMED_OUT: Final = "agent_signals.tool.timed_out"
"""Whether the tool call hit a time limit."""

AGENT_SIGNALS_TREATMENT_AGENT_TYPE: Final = "agent_signals.treatment.agent_type"
"""Agent scaffold used for the attempt."""

AGENT_SIGNALS_TREATMENT_ATTEMPT1_TOOL_CAP: Final = "agent_signals.treatment.attempt1_tool_cap"
"""Maximum tool calls allowed for the first attempt."""

AGENT_SIGNALS_TREATMENT_CONCURRENCY: Final = "agent_signals.treatment.concurrency"
"""Number of attempts the harness ran in parallel."""

AGENT_SIGNALS_TREATMENT_DATASET: Final = "agent_signals.treatment.dataset"
"""Dataset and version the task comes from."""

AGENT_SIGNALS_TREATMENT_MODEL_ID: Final = "agent_signals.treatment.model_id"
"""Exact model identifier used for the attempt (full string, not just the provider)."""

AGENT_SIGNALS_TREATMENT_RETRY_TOOL_CAP: Final = "agent_signals.treatment.retry_tool_cap"
"""Maximum tool calls allowed for retry attempts."""

AGENT_SIGNALS_TREATMENT_TIMEOUT_S: Final = "agent_signals.treatment.timeout_s"
"""Time limit for the attempt, in seconds."""

AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT: Final = "agent_signals.trial.attempt_count"
"""Number of attempts the trial started, set when the trial ends."""

AGENT_SIGNALS_TRIAL_ID: Final = "agent_signals.trial.id"
"""Identifier of the trial; on every span inside it so processors group without the span tree."""

AGENT_SIGNALS_TURN_INDEX: Final = "agent_signals.turn.index"
"""
Zero-based index of the turn within its attempt. On tool spans it is the turn that requested the
call, whether the tool ran inside the turn block or after it.
"""

AGENT_SIGNALS_TURN_MODULE: Final = "agent_signals.turn.module"
"""
The part of the agent program that made this turn's model call, as the framework names it: a DSPy
predictor's path in the program (`react`, `extract.predict`, `planner.predict`), a LangGraph node,
an OpenAI Agents SDK agent, a smolagents agent.
"""

AGENT_SIGNALS_TURN_PHASE: Final = "agent_signals.turn.phase"
"""The phase the agent declared (or a planner labelled) for this turn."""

AGENT_SIGNALS_TURN_REASONING_ASSUMPTIONS: Final = "agent_signals.turn.reasoning.assumptions"
"""
Assumption-signalling phrases in the turn's reasoning ("I'll assume", "assuming", "I think you
mean", "probably wants", "likely refers to"); recorded without content.
"""

AGENT_SIGNALS_TURN_REASONING_CHARS: Final = "agent_signals.turn.reasoning.chars"
"""Length in characters of the turn's reasoning text; recorded without content."""

AGENT_SIGNALS_TURN_REASONING_PLAN_STEPS: Final = "agent_signals.turn.reasoning.plan_steps"
"""Numbered or bulleted plan steps found in the turn's reasoning text; recorded without content."""

AGENT_SIGNALS_TURN_REASONING_PRESENT: Final = "agent_signals.turn.reasoning.present"
"""
Whether the model produced reasoning (thinking) content in this turn; recorded without content.
"""

AGENT_SIGNALS_TURN_REASONING_SELF_CORRECTIONS: Final = (
    "agent_signals.turn.reasoning.self_corrections"
)
"""
Phrases in the turn's reasoning where the agent revisits or abandons an approach ("actually",
"wait", "that won't work"); recorded without content.
"""

AGENT_SIGNALS_TURN_TEXT_CONFIRMATION_REQUESTS: Final = (
    "agent_signals.turn.text.confirmation_requests"
)
"""
Requests for the user's go-ahead in the turn's visible text ("Should I ...?", "Do you want me to
...?"); recorded without content.
"""

AGENT_SIGNALS_TURN_TEXT_HEDGES: Final = "agent_signals.turn.text.hedges"
"""
Hedging phrases in the turn's visible text ("I think", "might be", "probably", "I'm not sure");
recorded without content.
"""

AGENT_SIGNALS_TURN_TEXT_WORDS: Final = "agent_signals.turn.text.words"
"""
Whitespace-separated words of the visible text the model wrote to the user in this turn (not its
reasoning); recorded without content.
"""

AGENT_SIGNALS_TURN_THOUGHT_CHARS: Final = "agent_signals.turn.thought.chars"
"""
Length in characters of the visible text the model wrote with its action (SWE-agent's and OpenHands'
`thought`, mini-swe-agent's THOUGHT); not a reasoning block. Recorded without content.
"""

AGENT_SIGNALS_USAGE_COST_SOURCE: Final = "agent_signals.usage.cost_source"
"""
Where agent_signals.usage.cost_usd on this span came from. Absent when the agent recorded the cost
itself through the API.
"""

AGENT_SIGNALS_USAGE_COST_USD: Final = "agent_signals.usage.cost_usd"
"""
Cost in US dollars of the span's model usage (a turn's own call; roll-ups on attempts and trials).
Kept apart from per-call gen_ai.usage.* so roll-ups are never mistaken for calls.
"""

AGENT_SIGNALS_USAGE_MODEL_CALLS: Final = "agent_signals.usage.model_calls"
"""
Number of model calls behind an attempt's usage totals, for sources that record totals only
(imported trajectories). Processors count calls themselves when calls carry usage.
"""

AGENT_SIGNALS_USAGE_PRICE_SOURCE: Final = "agent_signals.usage.price_source"
"""
The price table and entry behind an estimated or framework-computed cost: the package and its
version, the provider and the model it matched.
"""

AGENT_SIGNALS_USER_TURN_CHARS: Final = "agent_signals.user_turn.chars"
"""Length in characters of the user's text; recorded without content."""

AGENT_SIGNALS_USER_TURN_INDEX: Final = "agent_signals.user_turn.index"
"""Zero-based index of the user's turn within the attempt (every kind counted, in order)."""

AGENT_SIGNALS_USER_TURN_KIND: Final = "agent_signals.user_turn.kind"
"""What the user did in this turn."""

AGENT_SIGNALS_USER_TURN_MARKERS: Final = "agent_signals.user_turn.markers"
"""
The signal inventory's lexicons the text matches, read where the text is so features work with
content capture off: `correction` ("no", "that's not", "wrong", "undo", "revert", "actually",
"wait", "stop"), `positive` ("thanks", "looks good", "perfect", ...), `rejection` ("undo
everything", "revert all", "discard the changes", ...).
"""

AGENT_SIGNALS_USER_TURN_REWOUND: Final = "agent_signals.user_turn.rewound"
"""
True when the user went back to an earlier point of the session before this message (the message's
parent has other, abandoned branches). Only ever set to true.
"""

AGENT_SIGNALS_USER_TURN_WORDS: Final = "agent_signals.user_turn.words"
"""
Length of the user's text in whitespace-separated words (a count that needs no model tokenizer);
recorded without content.
"""

AGENT_SIGNALS_VERIFY_FAIL_TO_FAIL_COUNT: Final = "agent_signals.verify.fail_to_fail_count"
"""FAIL_TO_PASS tests that still fail after the patch."""

AGENT_SIGNALS_VERIFY_FAIL_TO_PASS_COUNT: Final = "agent_signals.verify.fail_to_pass_count"
"""FAIL_TO_PASS tests that pass after the patch."""

AGENT_SIGNALS_VERIFY_PASS_TO_FAIL_COUNT: Final = "agent_signals.verify.pass_to_fail_count"
"""PASS_TO_PASS tests that fail after the patch (regressions)."""

AGENT_SIGNALS_VERIFY_PASS_TO_PASS_COUNT: Final = "agent_signals.verify.pass_to_pass_count"
"""PASS_TO_PASS tests that still pass after the patch."""

AGENT_SIGNALS_VERIFY_PATCH_APPLIES: Final = "agent_signals.verify.patch_applies"
"""Whether the attempt's patch applied cleanly."""

AGENT_SIGNALS_VERIFY_PATCH_OUTCOME_LABEL: Final = "agent_signals.verify.patch_outcome_label"
"""The verifier's outcome as one of the five labels of the signal inventory."""

AGENT_SIGNALS_VERIFY_REWARD: Final = "agent_signals.verify.reward"
"""Reward from the verifier (1.0 all FAIL_TO_PASS tests pass with no regressions, else 0.0)."""

AGENT_SIGNALS_VERIFY_SOURCE: Final = "agent_signals.verify.source"
"""Where the outcome came from (the report file, or `in_process`)."""

AGENT_SIGNALS_VERIFY_UNVERIFIABLE_REASON: Final = "agent_signals.verify.unverifiable_reason"
"""
Why the outcome is unverifiable (patch_apply_failed, empty_patch, harness_error, timeout, ...).
"""

ERROR_TYPE: Final = "error.type"
"""Describes a class of error the operation ended with (exception type name or code)."""

EXCEPTION_ESCAPED: Final = "exception.escaped"
"""
Deprecated by OpenTelemetry (boolean there); the Python SDK's record_exception still writes it, as
the string "True" or "False".
"""

EXCEPTION_MESSAGE: Final = "exception.message"
"""The exception message."""

EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
"""The stack trace as a string in the natural representation for the language."""

EXCEPTION_TYPE: Final = "exception.type"
"""The type of the exception (its fully-qualified class name)."""

GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
"""Human-readable name of the agent."""

GEN_AI_CONVERSATION_COMPACTED: Final = "gen_ai.conversation.compacted"
"""True when the call works from a compacted (summarised) conversation; only ever set to true."""

GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""A real conversation or session id from the agent; never synthesized."""

GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
"""Free-form explanation of the evaluation."""

GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
"""The name of the evaluation metric."""

GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
"""Low-cardinality label of the evaluation score."""

GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
"""The numeric evaluation score."""

GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""The chat history provided to the model, JSON-encoded on spans. Opt-in (content)."""

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
"""The name of the GenAI operation being performed."""

GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""Messages returned by the model, JSON-encoded on spans. Opt-in (content)."""

GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
"""The GenAI provider as identified by the instrumentation (open enum)."""

GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
"""The name of the model a request is being made to."""

GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""Reasons the model stopped generating, one per choice."""

GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
"""The name of the model that generated the response."""

GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""
The system message or instructions provided to the model, JSON-encoded on spans. Opt-in (content).
The judge reads it as the task statement only when no user message has one.
"""

GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
"""Arguments passed to the tool call, JSON-encoded on spans. Opt-in (content)."""

GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
"""The tool call identifier assigned by the model."""

GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
"""The result returned by the tool call. Opt-in (content)."""

GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
"""The tool description."""

GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
"""Name of the tool utilized by the agent."""

GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
"""Type of the tool (function, extension, datastore)."""

GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""Input tokens served from the provider's cache (a subset of input tokens)."""

GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
"""Input tokens written to the provider's cache (a subset of input tokens)."""

GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""Input tokens, including cached tokens."""

GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""Output tokens, including reasoning tokens."""

GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""Output tokens spent on reasoning (a subset of output tokens)."""

PROCESS_COMMAND_LINE: Final = "process.command_line"
"""The full command line run by a shell tool. Opt-in (content)."""

PROCESS_EXIT_CODE: Final = "process.exit.code"
"""The exit code of the process."""

PROCESS_WORKING_DIRECTORY: Final = "process.working_directory"
"""The working directory of the process (on an attempt, the agent's; a session's repository)."""

# ---- enums


class AttemptContext(StrEnum):
    """Values of `agent_signals.attempt.context`."""

    EVAL = "eval"
    """A benchmark or harness run: verifier signals apply, product-session signals do not."""
    PRODUCT = "product"
    """
    An interactive session a person steered: product-session signals apply, verifier signals do not.
    """


class AttemptExitReason(StrEnum):
    """Values of `agent_signals.attempt.exit_reason`."""

    SUBMITTED = "submitted"
    """The agent submitted a result."""
    MAX_TURNS = "max_turns"
    """The turn or tool-call cap was reached."""
    COST_LIMIT = "cost_limit"
    """The cost limit was reached."""
    CONTEXT_OVERFLOW = "context_overflow"
    """The model context window overflowed."""
    TIMEOUT = "timeout"
    """The attempt hit its time limit."""
    ERROR = "error"
    """The attempt ended with an error."""
    INTERRUPTED = "interrupted"
    """The attempt was interrupted or cancelled."""
    USER_STOPPED = "user_stopped"
    """A user stopped the attempt."""
    GAVE_UP = "gave_up"
    """The agent stopped on its own without submitting (a forfeit)."""


class FaultKind(StrEnum):
    """Values of `agent_signals.fault.kind`."""

    REVERT_LAST_EDIT = "revert_last_edit"
    """
    The files the agent's last editing call changed are put back as they were before that call.
    """
    CORRUPT_FILE = "corrupt_file"
    """A file the agent read gets a line that does not parse inserted in its middle."""
    TRUNCATE_FILE = "truncate_file"
    """A file the agent read is cut to its first half (whole lines)."""
    ADD_FAILING_TEST = "add_failing_test"
    """
    A test file with one failing test is added next to the tests the agent ran or read (or under
    tests/).
    """
    DELETE_CREATED_FILE = "delete_created_file"
    """The last file the agent created in the workspace is deleted."""
    BREAK_DEPENDENCY = "break_dependency"
    """A module of the package the agent edited is shadowed so that importing it fails."""
    TOOL_ERROR = "tool_error"
    """The next tool call does not run and returns an error."""
    TOOL_TIMEOUT = "tool_timeout"
    """The next tool call does not run and returns a timeout."""
    STALE_OUTPUT = "stale_output"
    """
    The next tool call runs, but returns the output of an earlier call of the same kind (stale,
    misleading output).
    """


class FaultTrigger(StrEnum):
    """Values of `agent_signals.fault.trigger`."""

    AFTER_STEP = "after_step"
    """After the agent's N-th tool call (N = agent_signals.fault.step)."""
    AFTER_FIRST_EDIT = "after_first_edit"
    """After the first tool call that changed files (or was an edit)."""
    AFTER_FIRST_PASSING_TEST = "after_first_passing_test"
    """After the first test run that passed."""
    RANDOM = "random"
    """After a tool call drawn at random (seeded) among the first calls of the attempt."""


class SpanType(StrEnum):
    """Values of `agent_signals.span.type`."""

    TRIAL = "trial"
    """One task given to the agent; holds one or more attempts."""
    ATTEMPT = "attempt"
    """One uninterrupted agent run within a trial."""
    TURN = "turn"
    """One model call and the tool calls it requests."""
    TOOL = "tool"
    """One tool call."""
    VERIFICATION = "verification"
    """A verifier's outcome for an attempt, added after the fact (agentsignals verify)."""
    JUDGE = "judge"
    """
    An LLM judge's results for an attempt or one of its steps, added after the fact (agentsignals
    judge).
    """
    USER_TURN = "user_turn"
    """One message the user sent into an interactive session (a prompt, an interrupt, a command)."""


class ToolCategory(StrEnum):
    """Values of `agent_signals.tool.category`."""

    READ = "read"
    """Reads a file or a part of one."""
    SEARCH = "search"
    """Searches the codebase (grep"""
    EDIT = "edit"
    """Edits"""
    SHELL = "shell"
    """Runs a shell command not otherwise classified."""
    TEST = "test"
    """Runs tests."""
    SUBMIT = "submit"
    """Submits the result and ends the attempt."""
    OTHER = "other"
    """Anything else."""


class ToolEditMode(StrEnum):
    """Values of `agent_signals.tool.edit_mode`."""

    DIRECT = "direct"
    """Files changed through an edit tool."""
    SHELL_MEDIATED = "shell_mediated"
    """Files changed through a shell or other non-edit tool (sed -i, heredoc, python -c)."""


class TurnPhase(StrEnum):
    """Values of `agent_signals.turn.phase`."""

    EXPLORE = "explore"
    """Reading and searching to understand the task."""
    LOCALIZE = "localize"
    """Narrowing down where the change belongs."""
    IMPLEMENT = "implement"
    """Making the change."""
    VERIFY = "verify"
    """Checking the change (tests"""


class UsageCostSource(StrEnum):
    """Values of `agent_signals.usage.cost_source`."""

    PROVIDER = "provider"
    """
    The model API returned the cost with the response (OpenRouter's usage.cost, Claude Code's
    total_cost_usd).
    """
    FRAMEWORK = "framework"
    """
    The agent framework computed the cost from its own price table (LiteLLM's, in DSPy and mini-swe-
    agent).
    """
    ESTIMATED = "estimated"
    """
    agentsignals priced the recorded usage from a maintained price table (see
    agent_signals.usage.price_source); an estimate.
    """


class UserTurnKind(StrEnum):
    """Values of `agent_signals.user_turn.kind`."""

    MESSAGE = "message"
    """Text the user wrote to the agent (the first prompt, a follow-up, a correction)."""
    INTERRUPT = "interrupt"
    """
    The user stopped the agent mid-answer (Esc in Claude Code, an aborted response in pi, an aborted
    turn in Codex).
    """
    COMMAND = "command"
    """
    A command the user ran in the session instead of writing to the agent (a slash command, pi's `!`
    shell command).
    """


class VerifyPatchOutcomeLabel(StrEnum):
    """Values of `agent_signals.verify.patch_outcome_label`."""

    CORRECT_PATCH = "correct_patch"
    """reward = 1.0: all FAIL_TO_PASS tests pass, no PASS_TO_FAIL regressions."""
    PARTIAL_PATCH = "partial_patch"
    """Some FAIL_TO_PASS tests pass but not all, or FAIL_TO_PASS > 0 with PASS_TO_FAIL > 0."""
    REGRESSIVE_PATCH = "regressive_patch"
    """reward = 0 and PASS_TO_FAIL > 0: broke passing tests without fixing the target."""
    NO_EFFECT_PATCH = "no_effect_patch"
    """Files were touched but no test result changed."""
    UNVERIFIABLE = "unverifiable"
    """The patch did not apply, or the verifier crashed or timed out."""


class GenAiOperationName(StrEnum):
    """Values of `gen_ai.operation.name`."""

    CHAT = "chat"
    """Chat completion inference call."""
    INVOKE_AGENT = "invoke_agent"
    """Invocation of an agent."""
    EXECUTE_TOOL = "execute_tool"
    """Execution of a tool."""
    INVOKE_WORKFLOW = "invoke_workflow"
    """Invocation of a workflow of agents."""
    TEXT_COMPLETION = "text_completion"
    """Text completion inference call."""
    GENERATE_CONTENT = "generate_content"
    """Multimodal content generation call."""


# ---- span types and events

SPAN_TRIAL: Final = "agent_signals.trial"
SPAN_ATTEMPT: Final = "agent_signals.attempt"
SPAN_TURN: Final = "agent_signals.turn"
SPAN_TOOL: Final = "agent_signals.tool"
SPAN_USER_TURN: Final = "agent_signals.user_turn"
SPAN_VERIFICATION: Final = "agent_signals.verification"
SPAN_JUDGE: Final = "agent_signals.judge"
EVENT_AGENT_SIGNALS_CONTENT: Final = "agent_signals.content"
EVENT_AGENT_SIGNALS_COMPACTION: Final = "agent_signals.compaction"
EVENT_AGENT_SIGNALS_FAULT_INJECTED: Final = "agent_signals.fault.injected"
EVENT_AGENT_SIGNALS_FAULT_CHECKED: Final = "agent_signals.fault.checked"
EVENT_GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
EVENT_EXCEPTION: Final = "exception"

ATTRIBUTE_TYPES: Final[dict[str, str]] = {
    "agent_signals.attempt.context": "string",
    "agent_signals.attempt.created_files": "string[]",
    "agent_signals.attempt.exit_reason": "string",
    "agent_signals.attempt.final_failure_mode": "string",
    "agent_signals.attempt.id": "string",
    "agent_signals.attempt.index": "int",
    "agent_signals.attempt.localization_mode": "string",
    "agent_signals.attempt.parent_id": "string",
    "agent_signals.attempt.recovery_mode": "string",
    "agent_signals.attempt.subagent_edit_calls": "int",
    "agent_signals.attempt.timed_out": "boolean",
    "agent_signals.attempt.touched_files": "string[]",
    "agent_signals.attempt.touched_files.lines_added": "int[]",
    "agent_signals.attempt.touched_files.lines_removed": "int[]",
    "agent_signals.compaction.tokens_after": "int",
    "agent_signals.compaction.tokens_before": "int",
    "agent_signals.compaction.trigger": "string",
    "agent_signals.content.key": "string",
    "agent_signals.content.redactions": "int",
    "agent_signals.content.truncated.keys": "string[]",
    "agent_signals.content.truncated.original_bytes": "int[]",
    "agent_signals.content.truncated.sha256": "string[]",
    "agent_signals.content.value": "string",
    "agent_signals.fault.description": "string",
    "agent_signals.fault.files": "string[]",
    "agent_signals.fault.id": "string",
    "agent_signals.fault.kind": "string",
    "agent_signals.fault.mentions": "string[]",
    "agent_signals.fault.restored_exactly": "boolean",
    "agent_signals.fault.reversible": "boolean",
    "agent_signals.fault.step": "int",
    "agent_signals.fault.trigger": "string",
    "agent_signals.fault.undone": "boolean",
    "agent_signals.import.format": "string",
    "agent_signals.import.source": "string",
    "agent_signals.import.synthetic_time": "boolean",
    "agent_signals.integration.name": "string",
    "agent_signals.judge.attempt_span_id": "string",
    "agent_signals.judge.rubric": "string",
    "agent_signals.judge.rubric_version": "string",
    "agent_signals.judge.step": "int",
    "agent_signals.run.id": "string",
    "agent_signals.session.abandoned_turns": "int",
    "agent_signals.session.changes_reverted": "boolean",
    "agent_signals.session.output_applied": "boolean",
    "agent_signals.span.type": "string",
    "agent_signals.task.id": "string",
    "agent_signals.test.complete": "boolean",
    "agent_signals.test.error_count": "int",
    "agent_signals.test.failed": "string[]",
    "agent_signals.test.failed_count": "int",
    "agent_signals.test.framework": "string",
    "agent_signals.test.passed": "string[]",
    "agent_signals.test.passed_count": "int",
    "agent_signals.test.runner": "string",
    "agent_signals.test.skipped_count": "int",
    "agent_signals.tool.call.fingerprint": "string",
    "agent_signals.tool.category": "string",
    "agent_signals.tool.changed_files": "string[]",
    "agent_signals.tool.changes_inferred": "boolean",
    "agent_signals.tool.command_complete": "boolean",
    "agent_signals.tool.edit_mode": "string",
    "agent_signals.tool.files": "string[]",
    "agent_signals.tool.lines_added": "int",
    "agent_signals.tool.lines_removed": "int",
    "agent_signals.tool.output.bytes": "int",
    "agent_signals.tool.regions.added_lines": "int[]",
    "agent_signals.tool.regions.files": "string[]",
    "agent_signals.tool.regions.removed_lines": "int[]",
    "agent_signals.tool.regions.start_lines": "int[]",
    "agent_signals.tool.result_files": "string[]",
    "agent_signals.tool.timed_out": "boolean",
    "agent_signals.treatment.agent_type": "string",
    "agent_signals.treatment.attempt1_tool_cap": "int",
    "agent_signals.treatment.concurrency": "int",
    "agent_signals.treatment.dataset": "string",
    "agent_signals.treatment.model_id": "string",
    "agent_signals.treatment.retry_tool_cap": "int",
    "agent_signals.treatment.timeout_s": "double",
    "agent_signals.trial.attempt_count": "int",
    "agent_signals.trial.id": "string",
    "agent_signals.turn.index": "int",
    "agent_signals.turn.module": "string",
    "agent_signals.turn.phase": "string",
    "agent_signals.turn.reasoning.assumptions": "int",
    "agent_signals.turn.reasoning.chars": "int",
    "agent_signals.turn.reasoning.plan_steps": "int",
    "agent_signals.turn.reasoning.present": "boolean",
    "agent_signals.turn.reasoning.self_corrections": "int",
    "agent_signals.turn.text.confirmation_requests": "int",
    "agent_signals.turn.text.hedges": "int",
    "agent_signals.turn.text.words": "int",
    "agent_signals.turn.thought.chars": "int",
    "agent_signals.usage.cost_source": "string",
    "agent_signals.usage.cost_usd": "double",
    "agent_signals.usage.model_calls": "int",
    "agent_signals.usage.price_source": "string",
    "agent_signals.user_turn.chars": "int",
    "agent_signals.user_turn.index": "int",
    "agent_signals.user_turn.kind": "string",
    "agent_signals.user_turn.markers": "string[]",
    "agent_signals.user_turn.rewound": "boolean",
    "agent_signals.user_turn.words": "int",
    "agent_signals.verify.fail_to_fail_count": "int",
    "agent_signals.verify.fail_to_pass_count": "int",
    "agent_signals.verify.pass_to_fail_count": "int",
    "agent_signals.verify.pass_to_pass_count": "int",
    "agent_signals.verify.patch_applies": "boolean",
    "agent_signals.verify.patch_outcome_label": "string",
    "agent_signals.verify.reward": "double",
    "agent_signals.verify.source": "string",
    "agent_signals.verify.unverifiable_reason": "string",
    "error.type": "string",
    "exception.escaped": "string",
    "exception.message": "string",
    "exception.stacktrace": "string",
    "exception.type": "string",
    "gen_ai.agent.name": "string",
    "gen_ai.conversation.compacted": "boolean",
    "gen_ai.conversation.id": "string",
    "gen_ai.evaluation.explanation": "string",
    "gen_ai.evaluation.name": "string",
    "gen_ai.evaluation.score.label": "string",
    "gen_ai.evaluation.score.value": "double",
    "gen_ai.input.messages": "string",
    "gen_ai.operation.name": "string",
    "gen_ai.output.messages": "string",
    "gen_ai.provider.name": "string",
    "gen_ai.request.model": "string",
    "gen_ai.response.finish_reasons": "string[]",
    "gen_ai.response.model": "string",
    "gen_ai.system_instructions": "string",
    "gen_ai.tool.call.arguments": "string",
    "gen_ai.tool.call.id": "string",
    "gen_ai.tool.call.result": "string",
    "gen_ai.tool.description": "string",
    "gen_ai.tool.name": "string",
    "gen_ai.tool.type": "string",
    "gen_ai.usage.cache_read.input_tokens": "int",
    "gen_ai.usage.cache_write.input_tokens": "int",
    "gen_ai.usage.input_tokens": "int",
    "gen_ai.usage.output_tokens": "int",
    "gen_ai.usage.reasoning.output_tokens": "int",
    "process.command_line": "string",
    "process.exit.code": "int",
    "process.working_directory": "string",
}
"""Declared type of every attribute in the registry (ours and the referenced ones)."""

ENUM_VALUES: Final[dict[str, frozenset[str]]] = {
    "agent_signals.attempt.context": frozenset(
        [
            "eval",
            "product",
        ]
    ),
    "agent_signals.attempt.exit_reason": frozenset(
        [
            "context_overflow",
            "cost_limit",
            "error",
            "gave_up",
            "interrupted",
            "max_turns",
            "submitted",
            "timeout",
            "user_stopped",
        ]
    ),
    "agent_signals.fault.kind": frozenset(
        [
            "add_failing_test",
            "break_dependency",
            "corrupt_file",
            "delete_created_file",
            "revert_last_edit",
            "stale_output",
            "tool_error",
            "tool_timeout",
            "truncate_file",
        ]
    ),
    "agent_signals.fault.trigger": frozenset(
        [
            "after_first_edit",
            "after_first_passing_test",
            "after_step",
            "random",
        ]
    ),
    "agent_signals.span.type": frozenset(
        [
            "attempt",
            "judge",
            "tool",
            "trial",
            "turn",
            "user_turn",
            "verification",
        ]
    ),
    "agent_signals.tool.category": frozenset(
        [
            "edit",
            "other",
            "read",
            "search",
            "shell",
            "submit",
            "test",
        ]
    ),
    "agent_signals.tool.edit_mode": frozenset(
        [
            "direct",
            "shell_mediated",
        ]
    ),
    "agent_signals.turn.phase": frozenset(
        [
            "explore",
            "implement",
            "localize",
            "verify",
        ]
    ),
    "agent_signals.usage.cost_source": frozenset(
        [
            "estimated",
            "framework",
            "provider",
        ]
    ),
    "agent_signals.user_turn.kind": frozenset(
        [
            "command",
            "interrupt",
            "message",
        ]
    ),
    "agent_signals.verify.patch_outcome_label": frozenset(
        [
            "correct_patch",
            "no_effect_patch",
            "partial_patch",
            "regressive_patch",
            "unverifiable",
        ]
    ),
    "gen_ai.operation.name": frozenset(
        [
            "chat",
            "execute_tool",
            "generate_content",
            "invoke_agent",
            "invoke_workflow",
            "text_completion",
        ]
    ),
}
"""Allowed values of every enum attribute (open enums of GenAI included as declared)."""

TEST_RUNNER_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("pytest", "pytest"),
    ("pytest", "py.test"),
    ("pytest", "python -m pytest"),
    ("pytest", "python -m py.test"),
    ("pytest", "coverage run ... -m pytest"),
    ("unittest", "python -m unittest"),
    ("unittest", "python -m twisted.trial"),
    ("unittest", "trial"),
    ("nose", "nosetests"),
    ("nose", "python -m nose"),
    ("django", "python manage.py test"),
    ("django", "python *runtests.py"),
    ("django", "*runtests.py"),
    ("django", "django-admin test"),
    ("setuptools", "python setup.py test"),
    ("tox", "tox"),
    ("tox", "python -m tox"),
    ("nox", "nox"),
    ("nox", "python -m nox"),
    ("sympy", "python bin/test"),
    ("sympy", "bin/test"),
    ("sympy", "python -c *sympy.test*"),
    ("mix", "mix test"),
    ("gradle", "gradlew ... test"),
    ("gradle", "gradle ... test"),
    ("gradle", "gradlew ... check"),
    ("gradle", "gradle ... check"),
    ("maven", "mvn ... test"),
    ("maven", "mvnw ... test"),
    ("maven", "mvn ... verify"),
    ("maven", "mvnw ... verify"),
    ("cargo", "cargo test"),
    ("cargo", "cargo nextest"),
    ("go", "go test"),
    ("go", "gotestsum"),
    ("npm", "npm test"),
    ("npm", "npm t"),
    ("npm", "npm run test*"),
    ("npm", "yarn test"),
    ("npm", "yarn run test*"),
    ("npm", "pnpm test"),
    ("npm", "pnpm run test*"),
    ("npm", "bun test"),
    ("jest", "jest"),
    ("jest", "npx jest"),
    ("jest", "yarn jest"),
    ("jest", "pnpm jest"),
    ("vitest", "vitest"),
    ("vitest", "npx vitest"),
    ("vitest", "yarn vitest"),
    ("vitest", "pnpm vitest"),
    ("mocha", "mocha"),
    ("mocha", "npx mocha"),
    ("make", "make ... test"),
    ("make", "make ... check"),
    ("make", "make ... tests"),
    ("ctest", "ctest"),
    ("bazel", "bazel test"),
    ("bazel", "bazelisk test"),
    ("rspec", "rspec"),
    ("rspec", "rake spec"),
    ("rspec", "rake test"),
    ("phpunit", "phpunit"),
    ("prove", "prove"),
    ("dotnet", "dotnet test"),
    ("swift", "swift test"),
    ("stack", "stack test"),
    ("stack", "cabal test"),
)
"""(runner name, command pattern) of the test-runner table, in order."""
