"""The feature records: one per attempt, one per trial.

Field names are the seed inventory's (`behavior.turn_count`, `verification.patch_outcome_label`,
...), grouped as there, so a user finds each signal by the name they already know. A signal
whose inputs were not recorded is None (null in JSON), never a made-up zero.
"""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1


class Treatment(msgspec.Struct, kw_only=True, omit_defaults=False):
    """The knobs applied to the attempt (independent variables)."""

    attempt1_tool_cap: int | None = None
    retry_tool_cap: int | None = None
    agent_type: str | None = None
    model_id: str | None = None
    dataset: str | None = None
    concurrency: int | None = None
    timeout_s: float | None = None


class FileLines(msgspec.Struct, kw_only=True):
    path: str
    lines_added: int
    lines_removed: int


class Behavior(msgspec.Struct, kw_only=True):
    """What the agent did."""

    turn_count: int | None = None
    tool_call_count: int | None = None
    edit_calls: int | None = None
    # Calls that changed files without being edit-tool calls (sed -i, heredocs, python -c).
    shell_edit_calls: int | None = None
    # Seed definition: edit_calls == 0 but touched_files is not empty.
    bash_mediated_edits: bool | None = None
    touched_files: list[str] | None = None
    touched_file_lines: list[FileLines] | None = None
    # Touched files the attempt created (not in the repository before): scratch scripts left
    # in a patch. None when not known (a workspace tracker does not report it yet).
    created_files: list[str] | None = None
    diff_lines: int | None = None
    tool_sequence: list[str] | None = None
    tool_category_sequence: list[str] | None = None
    localization_mode: str | None = None
    files_searched_before_edit: int | None = None
    files_read_before_edit: int | None = None
    edit_to_read_ratio: float | None = None
    repetition_rate: float | None = None
    max_repeat: int | None = None
    stuck_loop: bool | None = None
    # Index in tool_sequence of the first call that edited files (by tool or by shell).
    first_edit_step: int | None = None
    validated_after_last_edit: bool | None = None
    test_runs: int | None = None
    tool_error_count: int | None = None
    # Per tool call (parallel to tool_sequence): files the call stated, and files it changed
    # on the workspace (None when the workspace was not tracked).
    step_files: list[list[str]] | None = None
    step_changed_files: list[list[str]] | None = None
    # Steps (indices in tool_sequence) whose changed files were read from the call's text
    # (imported shell commands), not measured on a workspace; [] when none were.
    inferred_edit_steps: list[int] | None = None
    # Filled by the verification layer from the gold patch (agentsignals verify --dataset).
    gold_files: list[str] | None = None
    localized_correct_file: bool | None = None
    # The variant that skips files the attempt created: the first file of touched_files that
    # existed before (the first edit of existing code) is a gold file.
    localized_correct_existing_file: bool | None = None
    first_gold_read_step: int | None = None
    first_gold_edit_step: int | None = None


class Reasoning(msgspec.Struct, kw_only=True):
    """How the agent thought."""

    has_reasoning_blocks: bool | None = None
    reasoning_tokens_total: int | None = None
    reasoning_chars_total: int | None = None
    # Visible text written with actions (SWE-agent/OpenHands `thought`): not reasoning blocks.
    thought_chars_total: int | None = None
    plan_steps_detected: int | None = None
    self_correction_count: int | None = None
    phase_transitions: list[str] | None = None
    plannotator_phases: list[str] | None = None


class Tokens(msgspec.Struct, kw_only=True):
    """What it cost."""

    input_tokens_total: int | None = None
    output_tokens_total: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    # The inventory's cacheRead / (input + cacheRead), input without the cache.
    cache_read_ratio: float | None = None
    # cacheRead / all input tokens (cache writes included): the share of input read from cache.
    cache_read_input_share: float | None = None
    context_growth_curve: list[int] | None = None
    cost_usd: float | None = None
    model_calls: int | None = None
    # Turns that worked from a compacted context (gen_ai.conversation.compacted).
    compactions: int | None = None


class Verification(msgspec.Struct, kw_only=True):
    """What the verifier said (issue #4)."""

    reward: float | None = None
    patch_outcome_label: str | None = None
    fail_to_pass_count: int | None = None
    pass_to_fail_count: int | None = None
    pass_to_pass_count: int | None = None
    fail_to_fail_count: int | None = None
    patch_applies: bool | None = None
    unverifiable_reason: str | None = None
    # Why patch_outcome_label is null although an outcome was applied (the report says only
    # resolved or not: no test counts to tell partial, regressive and no-effect apart).
    patch_outcome_label_reason: str | None = None
    # Where the outcome came from: a report file, `in_process`, or None.
    outcome_source: str | None = None
    # The agent's own test runs (parsed from its test tool's output): no harness needed.
    agent_test_runs: int | None = None
    agent_first_run_failed: int | None = None
    agent_last_run_failed: int | None = None
    agent_last_run_passed: int | None = None
    # Tests failing in the agent's first run and passing in its last, and the reverse.
    agent_tests_fixed: list[str] | None = None
    agent_tests_broken: list[str] | None = None


class Anticipation(msgspec.Struct, kw_only=True):
    """Did the agent understand what was needed. `first_tool_precision` comes from the spans
    (features); `scope_drift` needs the gold patch (verify)."""

    first_tool_precision: bool | None = None
    scope_drift: float | None = None


class Infra(msgspec.Struct, kw_only=True):
    """Wall time and how the attempt ended."""

    wall_time_s: float | None = None
    timed_out: bool | None = None
    attempt_index: int | None = None
    recovery_mode: str | None = None
    final_failure_mode: str | None = None
    exit_reason: str | None = None


class Recovery(msgspec.Struct, kw_only=True):
    """Recovery evals (agentsignals.faults): the fault injected into the attempt, whether the
    agent noticed, how soon, and what the rest cost. All None when no fault was injected
    (``fault_injected`` False, or None without the attempt span)."""

    fault_injected: bool | None = None
    fault_count: int | None = None
    fault_id: str | None = None
    fault_kind: str | None = None
    fault_trigger: str | None = None
    # Index in behavior.tool_sequence of the first call that met the fault.
    fault_step: int | None = None
    fault_turn: int | None = None
    fault_files: list[str] | None = None
    # Evidence in the trace, else the judge's yes (noticed_how "judge"); the two sources apart:
    noticed: bool | None = None
    noticed_how: str | None = None
    noticed_in_trace: bool | None = None
    noticed_judge: bool | None = None
    noticed_step: int | None = None
    steps_to_notice: int | None = None
    tokens_to_notice: int | None = None
    mentioned: bool | None = None
    steps_after_fault: int | None = None
    tokens_after_fault: int | None = None
    cost_after_fault_usd: float | None = None
    # When the attempt ended: no affected file held the fault's content / all were as before.
    fault_undone: bool | None = None
    fault_restored_exactly: bool | None = None


JudgeValue = bool | int | float | str | list[str] | None


class JudgeField(msgspec.Struct, kw_only=True):
    """One judge output field of one attempt: `judge.<rubric>.<field>` in the record.

    `value` is what a report reads. `status` is ``ok`` or ``could_not_judge``; a field that
    could not be judged has value None and the reason in `reason`, never a silent false or 0.
    Written by the judge (`agentsignals judge run`); see docs/judge.md.
    """

    value: JudgeValue = None
    status: str = "ok"
    reason: str | None = None
    explanation: str | None = None
    # Span ids of the steps the explanation cites ([S12] -> the 13th step's span id).
    citations: list[str] = msgspec.field(default_factory=list)
    model: str | None = None
    rubric_version: str | None = None
    # Samples that gave a usable answer, and the share of them that agree with `value`.
    samples: int = 0
    agreement: float | None = None
    temperature: float | None = None
    seed: int | None = None
    # Parts the transcript was split into to fit the judge's context, and how many answered.
    chunks: int = 1
    chunks_judged: int = 0
    # How the value was found: "rubric", or the first-wrong-step mode ("candidates", ...).
    method: str | None = None


class AttemptRecord(msgspec.Struct, kw_only=True):
    """Everything derived from one attempt's spans."""

    schema_version: int = SCHEMA_VERSION
    trial_id: str | None = None
    task_id: str | None = None
    attempt_id: str
    attempt_index: int | None = None
    # Set for a subagent: the attempt whose tool call started it.
    parent_attempt_id: str | None = None
    run_id: str | None = None
    trace_id: str | None = None
    # The attempt span's id: outcomes added later become its children.
    span_id: str | None = None
    service_name: str | None = None
    # The resource attributes the producer set (OTEL_RESOURCE_ATTRIBUTES, a host's Resource,
    # `agentsignals import --tag`), as text; those the SDK and resource detectors add on their
    # own are left out (`user_resource_attributes`), and service.name is `service_name`.
    resource_attributes: dict[str, str] | None = None
    # False when the attempt span never arrived (evicted, idle, shut down mid-attempt).
    complete: bool = True
    # 0 for the first record; each late span that changes it yields revision + 1.
    revision: int = 0
    # True when the spans of earlier revisions had already been let go (memory is bounded)
    # when late spans arrived: this revision describes those late spans alone. Readers keep
    # the latest revision that is not partial (`supersedes`); partial ones stay for audit.
    partial: bool = False
    span_count: int = 0
    started_at_ns: int | None = None
    ended_at_ns: int | None = None
    treatment: Treatment = msgspec.field(default_factory=Treatment)
    behavior: Behavior = msgspec.field(default_factory=Behavior)
    reasoning: Reasoning = msgspec.field(default_factory=Reasoning)
    tokens: Tokens = msgspec.field(default_factory=Tokens)
    verification: Verification = msgspec.field(default_factory=Verification)
    anticipation: Anticipation = msgspec.field(default_factory=Anticipation)
    infra: Infra = msgspec.field(default_factory=Infra)
    recovery: Recovery = msgspec.field(default_factory=Recovery)
    # Filled by the judge (issue #13): `judge.<rubric>.<field>` (a JudgeField each), and the
    # failure cluster a failed attempt was assigned to (ids are stable across runs).
    judge: dict[str, dict[str, JudgeField]] | None = None
    cluster_id: str | None = None
    cluster_name: str | None = None


class TrialRecord(msgspec.Struct, kw_only=True):
    """A trial and its attempts, attempt 1 (index 0) kept apart from the retries: aggregates
    across attempts hide whether a gain came from first-pass quality or from recovery."""

    schema_version: int = SCHEMA_VERSION
    trial_id: str
    task_id: str | None = None
    # As the attempt record's: the trial span's resource, else its first attempt's.
    resource_attributes: dict[str, str] | None = None
    complete: bool = True
    revision: int = 0
    attempt_count: int = 0
    first_attempt: AttemptRecord | None = None
    retries: list[AttemptRecord] = msgspec.field(default_factory=list)
    # Attempts started by another attempt's tool call (subagents), kept apart from retries.
    subagents: list[AttemptRecord] = msgspec.field(default_factory=list)
    wall_time_s: float | None = None
    # Totals over the retries only; the first attempt's are in first_attempt.
    retries_cost_usd: float | None = None
    retries_tool_call_count: int | None = None
    # Outcome of the last attempt with a verification result (issue #4).
    final_reward: float | None = None
    resolved_on_attempt: int | None = None


def supersedes(new: AttemptRecord | TrialRecord, old: AttemptRecord | TrialRecord) -> bool:
    """Whether a reader keeping one record per id should keep `new` over `old`: the later
    revision, except that a partial attempt revision never replaces a whole one."""
    new_partial = isinstance(new, AttemptRecord) and new.partial
    old_partial = isinstance(old, AttemptRecord) and old.partial
    if new_partial != old_partial:
        return old_partial
    return new.revision >= old.revision


# ------------------------------------------------------------------------ product sessions


class CompactionEvent(msgspec.Struct, kw_only=True):
    """One context compaction (`user.compaction_events[]`)."""

    turn_index: int | None = None  # the first agent turn that worked from the summary
    tokens_before: int | None = None
    tokens_after: int | None = None
    timestamp: str | None = None  # ISO 8601, UTC
    trigger: str | None = None


class ModelChange(msgspec.Struct, kw_only=True):
    """A model switch between two agent turns (`user.model_changes[]`)."""

    from_model: str
    to_model: str
    turn_index: int  # the first agent turn on the new model


class ToolErrors(msgspec.Struct, kw_only=True):
    """Calls and failed calls of one tool (`user.tool_errors_by_type[]`)."""

    tool: str
    calls: int
    errors: int


class RegionEdit(msgspec.Struct, kw_only=True):
    """One changed line range (`user.region_edit_history[]`): lines start_line..end_line of
    `file` after the edit (a pure removal: the line where the removed lines were)."""

    file: str
    start_line: int
    end_line: int
    lines_added: int
    lines_removed: int
    turn_index: int | None = None  # the agent turn whose tool call made the edit
    timestamp: str | None = None
    # Which region of `user.region_edit_convergence` (by first appearance) it belongs to.
    region: int = 0


class UserSignals(msgspec.Struct, kw_only=True):
    """The inventory's `user.*`: raw signals from the human side of a session."""

    session_outcome: str | None = None
    output_applied: bool | None = None
    changes_reverted: bool | None = None
    user_turn_count: int | None = None
    agent_turn_count: int | None = None
    turn_ratio: float | None = None
    # Words (whitespace-separated) of each user message, in order.
    user_msg_lengths: list[int] | None = None
    user_msg_chars: list[int] | None = None
    # Indices (among the user's messages) of those matching the correction lexicon.
    correction_turns: list[int] | None = None
    turn_timestamps: list[str] | None = None
    per_turn_latency_s: list[float] | None = None
    time_to_first_edit_s: float | None = None
    interrupts: int | None = None
    commands: int | None = None
    abandoned_turns: int | None = None
    compaction_events: list[CompactionEvent] | None = None
    model_changes: list[ModelChange] | None = None
    tool_error_rate: float | None = None
    tool_errors_by_type: list[ToolErrors] | None = None
    # Bytes of each top-level tool call's result, in order (None: not recorded).
    tool_result_sizes: list[int | None] | None = None
    confirmation_requests: int | None = None
    agent_hedging_rate: float | None = None
    # Hedges per 100 words of each agent turn's visible text (None: the turn wrote no text).
    agent_hedging_curve: list[float | None] | None = None
    region_edit_history: list[RegionEdit] | None = None
    region_re_edit_count: int | None = None
    region_edit_convergence: list[str] | None = None
    prior_sessions_same_repo: int | None = None
    prior_sessions_same_region: int | None = None
    session_reopened_within_s: float | None = None


class SessionDynamics(msgspec.Struct, kw_only=True):
    """The inventory's `dynamics.*`. The model-based ones (cp_curve, intent coherence,
    embedding repetition, judge-read turns) stay None until a semantic pass fills them."""

    correction_ratio: float | None = None
    user_msg_length_slope: float | None = None
    repetition_rate: float | None = None
    max_repeat: int | None = None
    embedding_repetition_rate: float | None = None
    # Per user turn (None: a blank turn) and per agent turn (None: it wrote no text).
    cp_curve: list[float | None] | None = None
    max_cp: float | None = None
    drift_onset_turn: int | None = None
    # Where the context was compacted, as indices into cp_curve / intent_coherence_curve.
    cp_curve_compactions: list[int] | None = None
    intent_coherence_curve: list[float | None] | None = None
    intent_coherence_compactions: list[int] | None = None
    assumption_lock_turn: int | None = None
    gd_inaction: float | None = None
    gd_actions: float | None = None
    plan_ged: float | None = None
    session_failure_mode: str | None = None
    # The inputs the decision tree needed and did not have (the label is None then), or the
    # rule that decided it.
    session_failure_mode_missing: list[str] | None = None
    session_failure_mode_rule: str | None = None


class SessionAnticipation(msgspec.Struct, kw_only=True):
    """The inventory's `anticipation.*` for sessions (judge-based ones filled by a semantic
    pass)."""

    assumption_count: int | None = None
    first_tool_precision: bool | None = None
    clarification_sought: bool | None = None
    prompt_underspecification: float | None = None
    task_paraphrase_accuracy: float | None = None
    plan_optimality: str | None = None
    instruction_adherence: str | None = None
    goal_alignment_at_close: float | None = None
    conflation_turn: int | None = None
    scope_drift: float | None = None
    session_attribution: str | None = None
    session_attribution_missing: list[str] | None = None
    session_attribution_rule: str | None = None


class SessionRecord(msgspec.Struct, kw_only=True):
    """One product session (an interactive session a person steered), beside its attempt
    record (same `attempt_id`). Eval runs have none; it holds no verifier signals."""

    schema_version: int = SCHEMA_VERSION
    attempt_id: str
    conversation_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    service_name: str | None = None
    resource_attributes: dict[str, str] | None = None
    agent: str | None = None  # the import format or gen_ai.agent.name
    repository: str | None = None  # process.working_directory
    complete: bool = True
    revision: int = 0
    started_at_ns: int | None = None
    ended_at_ns: int | None = None
    user: UserSignals = msgspec.field(default_factory=UserSignals)
    dynamics: SessionDynamics = msgspec.field(default_factory=SessionDynamics)
    anticipation: SessionAnticipation = msgspec.field(default_factory=SessionAnticipation)
    # Which semantic pass filled the model-based fields (None: none ran).
    semantic_source: str | None = None
