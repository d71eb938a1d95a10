"""Per-attempt features: one test per signal group on hand-built spans, edge cases included,
and exact values on the real spans of the scripted demo."""

from __future__ import annotations

import itertools
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from agentsignals import semconv as sc
from agentsignals._features.extract import (
    attempt_record,
    behavior,
    count_usage,
    infra,
    reasoning,
    split_spans,
    tokens,
    treatment,
)
from agentsignals._features.record import Behavior, FileLines, Tokens, Treatment
from agentsignals._spans.model import STATUS_ERROR, AttrValue, Span

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0 = 1_700_000_000_000_000_000
MS = 1_000_000

# ---------------------------------------------------------------------------------------------
# A small span builder: times in ms after T0, ids counting up, identity stamped like ours.
# ---------------------------------------------------------------------------------------------


class Trace:
    def __init__(self, attempt_id: str = "att-1", trial_id: str | None = "trial-1") -> None:
        self.spans: list[Span] = []
        self.attempt_id = attempt_id
        self.trial_id = trial_id
        self._ids = itertools.count(1)

    def span(
        self,
        span_type: str | None,
        start_ms: float,
        end_ms: float | None,
        attrs: dict[str, AttrValue] | None = None,
        *,
        parent: Span | None = None,
        status: int = 0,
        name: str | None = None,
    ) -> Span:
        a: dict[str, AttrValue] = {sc.AGENT_SIGNALS_ATTEMPT_ID: self.attempt_id}
        if self.trial_id is not None:
            a[sc.AGENT_SIGNALS_TRIAL_ID] = self.trial_id
        if span_type is not None:
            a[sc.AGENT_SIGNALS_SPAN_TYPE] = span_type
        a.update(attrs or {})
        s = Span(
            trace_id=TRACE,
            span_id=format(next(self._ids), "016x"),
            parent_span_id=parent.span_id if parent is not None else "00000000000000ff",
            name=name or (span_type or "span"),
            kind=1,
            start_ns=T0 + int(start_ms * MS),
            end_ns=T0 + int(end_ms * MS) if end_ms is not None else 0,
            attributes=a,
            status_code=status,
            resource={"service.name": "agent-runner"},
        )
        self.spans.append(s)
        return s

    def attempt(self, start: float, end: float, **attrs: Any) -> Span:
        base: dict[str, AttrValue] = {
            sc.AGENT_SIGNALS_ATTEMPT_INDEX: 0,
            sc.AGENT_SIGNALS_TASK_ID: "django__django-1",
        }
        return self.span("attempt", start, end, base | _keys(attrs))

    def turn(
        self, index: int, start: float, end: float | None, parent: Span | None = None, **attrs: Any
    ) -> Span:
        base: dict[str, AttrValue] = {sc.AGENT_SIGNALS_TURN_INDEX: index}
        return self.span("turn", start, end, base | _keys(attrs), parent=parent)

    def tool(
        self,
        name: str,
        category: str,
        start: float,
        end: float,
        *,
        parent: Span | None = None,
        status: int = 0,
        **attrs: Any,
    ) -> Span:
        base: dict[str, AttrValue] = {
            sc.GEN_AI_OPERATION_NAME: "execute_tool",
            sc.GEN_AI_TOOL_NAME: name,
            sc.AGENT_SIGNALS_TOOL_CATEGORY: category,
        }
        return self.span("tool", start, end, base | _keys(attrs), parent=parent, status=status)

    def chat(self, start: float, end: float, parent: Span | None = None, **attrs: Any) -> Span:
        base: dict[str, AttrValue] = {sc.GEN_AI_OPERATION_NAME: "chat"}
        return self.span(None, start, end, base | _keys(attrs), parent=parent, name="chat m")


_SHORT = {
    "files": sc.AGENT_SIGNALS_TOOL_FILES,
    "changed": sc.AGENT_SIGNALS_TOOL_CHANGED_FILES,
    "added": sc.AGENT_SIGNALS_TOOL_LINES_ADDED,
    "removed": sc.AGENT_SIGNALS_TOOL_LINES_REMOVED,
    "fp": sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT,
    "turn": sc.AGENT_SIGNALS_TURN_INDEX,
    "input": sc.GEN_AI_USAGE_INPUT_TOKENS,
    "output": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cache_read": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cache_write": sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "reasoning_tokens": sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "cost": sc.AGENT_SIGNALS_USAGE_COST_USD,
    "phase": sc.AGENT_SIGNALS_TURN_PHASE,
    "present": sc.AGENT_SIGNALS_TURN_REASONING_PRESENT,
    "chars": sc.AGENT_SIGNALS_TURN_REASONING_CHARS,
    "plan_steps": sc.AGENT_SIGNALS_TURN_REASONING_PLAN_STEPS,
    "corrections": sc.AGENT_SIGNALS_TURN_REASONING_SELF_CORRECTIONS,
    "touched": sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES,
    "touched_added": sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED,
    "touched_removed": sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_REMOVED,
    "exit_reason": sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON,
    "edit_mode": sc.AGENT_SIGNALS_TOOL_EDIT_MODE,
    "error_type": sc.ERROR_TYPE,
    "exit_code": sc.PROCESS_EXIT_CODE,
}


def _keys(attrs: dict[str, Any]) -> dict[str, AttrValue]:
    return {_SHORT.get(k, k): v for k, v in attrs.items()}


def _behavior(spans: list[Span]) -> Behavior:
    return behavior(split_spans(spans))


# ---------------------------------------------------------------------------------------------
# treatment
# ---------------------------------------------------------------------------------------------


def test_treatment_from_the_attempt_span_and_none_without_it() -> None:
    t = Trace()
    a = t.attempt(
        0,
        10,
        **{
            sc.AGENT_SIGNALS_TREATMENT_ATTEMPT1_TOOL_CAP: 50,
            sc.AGENT_SIGNALS_TREATMENT_RETRY_TOOL_CAP: "80",  # numeric text is accepted
            sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE: "mini-swe-agent",
            sc.AGENT_SIGNALS_TREATMENT_MODEL_ID: "anthropic/claude-sonnet-4-20250514",
            sc.AGENT_SIGNALS_TREATMENT_DATASET: "swebench-verified@1.0",
            sc.AGENT_SIGNALS_TREATMENT_CONCURRENCY: 8,
            sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S: 1800,
        },
    )
    assert treatment(a) == Treatment(
        attempt1_tool_cap=50,
        retry_tool_cap=80,
        agent_type="mini-swe-agent",
        model_id="anthropic/claude-sonnet-4-20250514",
        dataset="swebench-verified@1.0",
        concurrency=8,
        timeout_s=1800.0,
    )
    assert treatment(None) == Treatment()
    assert treatment(Trace().attempt(0, 1)) == Treatment()  # recorded nothing: all None


# ---------------------------------------------------------------------------------------------
# behavior
# ---------------------------------------------------------------------------------------------


def test_behavior_of_a_resolved_attempt() -> None:
    t = Trace()
    a = t.attempt(
        0,
        100,
        touched=["src/a.py", "tests/test_a.py"],
        touched_added=[3, 10],
        touched_removed=[1, 0],
        **{sc.AGENT_SIGNALS_ATTEMPT_LOCALIZATION_MODE: "search_then_read"},
    )
    turns = [t.turn(i, 10 * i + 1, 10 * i + 2, parent=a) for i in range(6)]
    # Spans arrive in end order, not start order: build them shuffled.
    t.tool("pytest", "test", 61, 70, parent=a, turn=5, changed=[])
    t.tool("grep", "search", 3, 4, parent=a, turn=0, changed=[], files=["src"])
    t.tool("read_file", "read", 12, 13, parent=a, turn=1, changed=[], files=["src/a.py"])
    t.tool("read_file", "read", 22, 23, parent=turns[2], turn=2, changed=[], files=["src/b.py"])
    t.tool("read_file", "read", 24, 25, parent=turns[2], turn=2, changed=[], files=["src/a.py"])
    t.tool(
        "str_replace",
        "edit",
        32,
        33,
        parent=a,
        turn=3,
        files=["src/a.py"],
        changed=["src/a.py"],
        added=3,
        removed=1,
    )
    t.tool(
        "create_file",
        "edit",
        42,
        43,
        parent=a,
        turn=4,
        files=["tests/test_a.py"],
        changed=["tests/test_a.py"],
        added=10,
    )

    b = _behavior(t.spans)
    assert b.turn_count == 6
    assert b.tool_call_count == 7
    assert b.tool_sequence == [
        "grep",
        "read_file",
        "read_file",
        "read_file",
        "str_replace",
        "create_file",
        "pytest",
    ]
    assert b.tool_category_sequence == ["search", "read", "read", "read", "edit", "edit", "test"]
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (2, 0, False)
    assert b.touched_files == ["src/a.py", "tests/test_a.py"]
    assert b.touched_file_lines == [
        FileLines(path="src/a.py", lines_added=3, lines_removed=1),
        FileLines(path="tests/test_a.py", lines_added=10, lines_removed=0),
    ]
    assert b.diff_lines == 14
    assert b.localization_mode == "search_then_read"
    assert b.first_edit_step == 4
    assert b.files_read_before_edit == 2  # src/a.py twice, src/b.py
    assert b.files_searched_before_edit == 3  # plus the grep's "src"
    assert b.edit_to_read_ratio == pytest.approx(2 / 3)
    assert b.validated_after_last_edit is True
    assert b.test_runs == 1
    assert b.tool_error_count == 0
    # No fingerprints recorded: repetition is unknown, not zero.
    assert (b.repetition_rate, b.max_repeat, b.stuck_loop) == (None, None, None)
    # Issue #4 fills these from the gold patch.
    assert (b.localized_correct_file, b.first_gold_read_step, b.first_gold_edit_step) == (
        None,
        None,
        None,
    )


def test_behavior_without_edits() -> None:
    t = Trace()
    a = t.attempt(0, 100, touched=[], touched_added=[], touched_removed=[])
    t.turn(0, 1, 2, parent=a)
    t.tool("view", "read", 3, 4, parent=a, changed=[], files=["a.py"])
    t.tool("grep", "search", 5, 6, parent=a, changed=[])
    t.tool("view", "read", 7, 8, parent=a, changed=[], files=["b.py"])
    b = _behavior(t.spans)
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (0, 0, False)
    assert b.touched_files == [] and b.diff_lines == 0 and b.touched_file_lines == []
    assert b.first_edit_step is None
    assert b.validated_after_last_edit is None  # nothing to validate
    assert b.edit_to_read_ratio == 0.0
    # Never edited: everything it read counts as "before the edit".
    assert (b.files_read_before_edit, b.files_searched_before_edit) == (2, 2)
    assert b.test_runs == 0


def test_behavior_only_shell_edits_is_bash_mediated() -> None:
    t = Trace()
    a = t.attempt(0, 100, touched=["pkg/fmt.py"], touched_added=[1], touched_removed=[1])
    t.tool("bash", "search", 1, 2, parent=a, changed=[])
    t.tool("bash", "read", 3, 4, parent=a, changed=[])  # `cat` states no files
    t.tool(
        "bash",
        "shell",
        5,
        6,
        parent=a,
        changed=["pkg/fmt.py"],
        added=1,
        removed=1,
        edit_mode="shell_mediated",
    )
    t.tool("bash", "test", 7, 8, parent=a, changed=[])
    b = _behavior(t.spans)
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (0, 1, True)
    assert b.first_edit_step == 2
    assert b.edit_to_read_ratio == 1.0
    assert b.validated_after_last_edit is True
    # Read calls happened but none said which files: unknown, not zero.
    assert b.files_read_before_edit is None and b.files_searched_before_edit is None


def test_behavior_counts_failed_tools() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    t.tool(
        "str_replace_editor", "edit", 1, 2, parent=a, status=STATUS_ERROR, error_type="EditNoMatch"
    )
    t.tool("bash", "shell", 3, 4, parent=a, status=STATUS_ERROR, exit_code=2)
    t.tool("bash", "shell", 5, 6, parent=a, status=1)  # OK
    b = _behavior(t.spans)
    assert b.tool_error_count == 2
    assert b.edit_calls == 1  # a failed edit is still an edit call
    assert b.first_edit_step == 0
    assert b.validated_after_last_edit is False


def test_behavior_workspace_not_tracked() -> None:
    t = Trace()
    a = t.attempt(0, 100)  # no touched_files
    t.tool("sed", "shell", 1, 2, parent=a)  # no changed_files: not measured
    t.tool("str_replace", "edit", 3, 4, parent=a)
    b = _behavior(t.spans)
    assert b.touched_files is None
    assert b.touched_file_lines is None and b.diff_lines is None
    assert b.bash_mediated_edits is None
    # Edit-tool calls are still counted; shell edits cannot be seen without measurement.
    assert (b.edit_calls, b.shell_edit_calls) == (1, 0)


def test_behavior_repeated_identical_calls_is_a_stuck_loop() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    for i, fp in enumerate(["A", "A", "A", "B", "A"]):
        t.tool("grep", "search", 2 * i, 2 * i + 1, parent=a, fp=fp)
    b = _behavior(t.spans)
    assert b.repetition_rate == pytest.approx(3 / 5)  # calls 2, 3 and 5 repeat an earlier one
    assert b.max_repeat == 3
    assert b.stuck_loop is True

    t = Trace()
    a = t.attempt(0, 100)
    for i, maybe_fp in enumerate(["A", "B", "A", None, "A", "A"]):
        fingerprint: dict[str, Any] = {} if maybe_fp is None else {"fp": maybe_fp}
        t.tool("grep", "search", 2 * i, 2 * i + 1, parent=a, **fingerprint)
    b = _behavior(t.spans)
    assert b.repetition_rate == pytest.approx(3 / 5)  # only calls with a fingerprint count
    assert b.max_repeat == 2  # the call without a fingerprint breaks the run
    assert b.stuck_loop is False


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([("edit", 1, 2), ("test", 3, 4)], True),
        ([("test", 1, 2), ("edit", 3, 4)], False),
        ([("edit", 1, 2), ("test", 3, 4), ("edit", 5, 6)], False),
        ([("edit", 1, 5), ("test", 3, 8)], False),  # the test started before the edit ended
        ([("read", 1, 2), ("test", 3, 4)], None),  # no edit: nothing to validate
    ],
)
def test_validated_after_last_edit(
    calls: list[tuple[str, int, int]], expected: bool | None
) -> None:
    t = Trace()
    a = t.attempt(0, 100)
    for category, start, end in calls:
        t.tool(category, category, start, end, parent=a)
    assert _behavior(t.spans).validated_after_last_edit is expected


def test_behavior_attempt_without_tool_calls_counts_zero() -> None:
    t = Trace()
    a = t.attempt(0, 10, touched=[], touched_added=[], touched_removed=[])
    t.turn(0, 1, 2, parent=a)
    b = _behavior(t.spans)
    assert (b.turn_count, b.tool_call_count, b.edit_calls, b.test_runs) == (1, 0, 0, 0)
    assert b.tool_sequence == [] and b.tool_category_sequence == []
    assert b.files_read_before_edit == 0
    assert b.edit_to_read_ratio is None  # no reads: undefined
    assert b.first_edit_step is None and b.validated_after_last_edit is None
    assert b.bash_mediated_edits is False


def test_behavior_nested_tool_spans_belong_to_their_outer_call() -> None:
    t = Trace()
    a = t.attempt(0, 100, touched=["x.py"], touched_added=[2], touched_removed=[0])
    t.tool("read_file", "read", 1, 2, parent=a, files=["x.py"], changed=[])
    submit = t.tool("submit", "submit", 3, 9, parent=a, changed=[])
    # The submit tool runs a shell command that writes x.py: one call, measured inside.
    t.tool("bash", "shell", 4, 5, parent=submit, changed=["x.py"], added=2, status=STATUS_ERROR)
    b = _behavior(t.spans)
    assert b.tool_sequence == ["read_file", "submit"]
    assert b.tool_call_count == 2
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (0, 1, True)
    assert b.first_edit_step == 1
    assert b.tool_error_count == 0  # the outer call did not fail


# ---------------------------------------------------------------------------------------------
# reasoning
# ---------------------------------------------------------------------------------------------


def test_reasoning_from_turns() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    t.turn(
        2, 21, 22, parent=a, phase="implement", present=True, chars=50, plan_steps=1, corrections=2
    )
    t.turn(0, 1, 2, parent=a, phase="explore", present=False, chars=0, plan_steps=0, corrections=0)
    t.turn(
        1, 11, 12, parent=a, phase="explore", present=True, chars=120, plan_steps=4, corrections=1
    )
    t.turn(3, 31, 32, parent=a, phase="verify")  # reasoning not recorded on this turn
    parts = split_spans(t.spans)
    r = reasoning(parts.turns, None)
    assert r.has_reasoning_blocks is True
    assert r.reasoning_chars_total == 170
    assert r.plan_steps_detected == 4  # the first turn WITH reasoning (turn 1)
    assert r.self_correction_count == 3
    assert r.plannotator_phases == ["explore", "explore", "implement", "verify"]
    assert r.phase_transitions == ["explore", "implement", "verify"]
    assert r.reasoning_tokens_total is None


def test_reasoning_nulls_and_zeros() -> None:
    # No turn spans, no reasoning tokens: nothing was recorded.
    r = reasoning([], None)
    assert r.has_reasoning_blocks is None
    assert r.plan_steps_detected is None and r.reasoning_chars_total is None
    assert r.plannotator_phases is None and r.phase_transitions is None
    # Reasoning tokens alone (a provider that hides the thinking text) show reasoning happened.
    assert reasoning([], 512).has_reasoning_blocks is True
    assert reasoning([], 0).has_reasoning_blocks is False
    # Turns that recorded "no reasoning": a real False and zero plan steps.
    t = Trace()
    turns = [t.turn(i, i, i + 0.5, present=False, chars=0, plan_steps=0) for i in range(2)]
    r = reasoning(turns, None)
    assert (r.has_reasoning_blocks, r.plan_steps_detected, r.reasoning_chars_total) == (False, 0, 0)
    # Turns that recorded nothing about reasoning.
    r = reasoning([t.turn(5, 9, 10)], None)
    assert r.has_reasoning_blocks is None and r.plan_steps_detected is None


# ---------------------------------------------------------------------------------------------
# tokens
# ---------------------------------------------------------------------------------------------


def _tokens(spans: list[Span]) -> Tokens:
    return tokens(count_usage(split_spans(spans)))


def test_tokens_from_turn_spans() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    t.turn(0, 1, 2, parent=a, input=1000, output=100, cache_read=600, cache_write=200, cost=0.01)
    t.turn(1, 3, 4, parent=a, input=1500, output=50, cache_read=1000, cost=0.02)
    tok = _tokens(t.spans)
    assert (tok.input_tokens_total, tok.output_tokens_total) == (2500, 150)
    assert (tok.cache_read_tokens, tok.cache_write_tokens) == (1600, 200)
    # input_tokens already includes cached tokens (GenAI), so the ratio is cache_read / input.
    # The inventory's cacheRead / (input + cacheRead): GenAI input (2500) includes the cache
    # reads (1600) and writes (200), so input + cacheRead is 2500 - 200.
    assert tok.cache_read_ratio == pytest.approx(1600 / (2500 - 200))
    assert tok.cache_read_input_share == pytest.approx(1600 / 2500)
    assert tok.context_growth_curve == [1000, 1500]
    assert tok.cost_usd == pytest.approx(0.03)
    assert tok.model_calls == 2


def test_tokens_chat_span_under_a_turn_that_also_has_usage_counts_once() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    turn0 = t.turn(0, 1, 10, parent=a, input=1000, output=100, cost=0.01)
    t.chat(2, 8, parent=turn0, turn=0, input=1000, output=100, cache_read=400)
    t.turn(1, 11, 20, parent=a, input=2000, output=80)
    tok = _tokens(t.spans)
    assert tok.input_tokens_total == 3000
    assert tok.output_tokens_total == 180
    assert tok.cache_read_tokens == 400  # only the chat span recorded it
    assert tok.cost_usd == pytest.approx(0.01)  # the chat span has no cost: the turn's counts
    assert tok.model_calls == 2
    assert tok.context_growth_curve == [1000, 2000]


def test_tokens_chat_cost_replaces_the_turn_cost() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    turn0 = t.turn(0, 1, 10, parent=a, input=900, cost=0.5)
    t.chat(2, 5, parent=turn0, input=500, cost=0.2)  # the turn made two model calls
    t.chat(5, 8, parent=turn0, input=400, cost=0.3)
    tok = _tokens(t.spans)
    assert tok.input_tokens_total == 900
    assert tok.cost_usd == pytest.approx(0.5)
    assert tok.model_calls == 2
    assert tok.context_growth_curve == [900]  # per turn, not per call


def test_tokens_model_call_after_the_turn_block_is_attributed_by_turn_index() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    t.turn(0, 1, 2, parent=a, input=700, output=10, cost=0.1)
    # The harness called the model after the turn block: the chat span is the attempt's child
    # and carries turn 0's index (stamped by our processor). It is turn 0's call, not another.
    t.chat(3, 6, parent=a, turn=0, input=700, output=10)
    # A call attributable to no turn span still counts.
    t.chat(7, 8, parent=a, turn=9, input=50, output=5)
    tok = _tokens(t.spans)
    assert tok.input_tokens_total == 750
    assert tok.output_tokens_total == 15
    assert tok.cost_usd == pytest.approx(0.1)
    assert tok.model_calls == 2
    assert tok.context_growth_curve == [700]


def test_tokens_model_calls_inside_tools_and_double_instrumentation() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    turn0 = t.turn(0, 1, 20, parent=a, input=1000, output=100)
    # An LLM-backed tool: its model call is extra usage, not turn 0's own call.
    tool = t.tool("summarize", "other", 5, 15, parent=turn0, turn=0)
    t.chat(6, 14, parent=tool, turn=0, input=300, output=30)
    # A framework span and the SDK span below it describe one call: count it once.
    turn1 = t.turn(1, 21, 30, parent=a)
    outer = t.chat(22, 29, parent=turn1, turn=1, input=2000, output=200)
    t.chat(23, 28, parent=outer, turn=1, input=2000, output=200)
    # A model-call span without usage is not a usage source.
    t.chat(31, 32, parent=a, turn=1)
    tok = _tokens(t.spans)
    assert tok.input_tokens_total == 3300
    assert tok.output_tokens_total == 330
    assert tok.model_calls == 3
    assert tok.context_growth_curve == [1000, 2000]


def test_tokens_not_recorded_are_none() -> None:
    t = Trace()
    a = t.attempt(0, 100)
    t.turn(0, 1, 2, parent=a)
    t.tool("bash", "shell", 3, 4, parent=a)
    tok = _tokens(t.spans)
    assert tok.input_tokens_total is None and tok.output_tokens_total is None
    assert tok.cache_read_tokens is None and tok.cache_read_ratio is None
    assert tok.cost_usd is None and tok.model_calls is None
    assert tok.context_growth_curve is None
    # Without any turn spans: the model-call spans make the curve.
    t = Trace()
    a = t.attempt(0, 100)
    t.chat(3, 4, parent=a, input=20)
    t.chat(1, 2, parent=a, input=10, reasoning_tokens=7)
    tok = _tokens(t.spans)
    assert tok.context_growth_curve == [10, 20]
    assert tok.cache_read_tokens is None and tok.cache_read_ratio is None
    assert count_usage(split_spans(t.spans)).total().reasoning_tokens == 7


# ---------------------------------------------------------------------------------------------
# infra, identity, composition
# ---------------------------------------------------------------------------------------------


def test_infra_from_the_attempt_span() -> None:
    t = Trace()
    a = t.attempt(
        0,
        1500,
        exit_reason="timeout",
        **{
            sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT: True,
            sc.AGENT_SIGNALS_ATTEMPT_RECOVERY_MODE: "fresh",
            sc.AGENT_SIGNALS_ATTEMPT_FINAL_FAILURE_MODE: "wrong_file",
            sc.AGENT_SIGNALS_ATTEMPT_INDEX: 2,
        },
    )
    t.turn(0, 1, 2, parent=a)
    i = infra(split_spans(t.spans))
    assert i.wall_time_s == pytest.approx(1.5)
    assert (i.timed_out, i.exit_reason, i.attempt_index) == (True, "timeout", 2)
    assert (i.recovery_mode, i.final_failure_mode) == ("fresh", "wrong_file")
    # The producer writes timed_out only when true: absent on an attempt span means False.
    t = Trace()
    t.attempt(0, 10, exit_reason="submitted")
    i = infra(split_spans(t.spans))
    assert (i.timed_out, i.recovery_mode) == (False, None)


def test_attempt_killed_mid_turn() -> None:
    """No attempt span, the last turn never ended: complete=False, what can be computed is."""
    t = Trace()
    turn0 = t.turn(
        0, 1000, 2000, input=1000, output=40, present=True, plan_steps=2, phase="explore"
    )
    t.tool("read_file", "read", 2100, 2200, parent=None, turn=0, files=["a.py"], changed=[])
    t.tool("bash", "shell", 2300, 2500, turn=0, changed=["a.py"], added=4, removed=1)
    t.turn(1, 2600, None)  # killed here: never ended
    del turn0
    record = attempt_record(t.spans)  # the caller says complete; no attempt span says not
    assert record.complete is False
    assert record.attempt_id == "att-1" and record.trial_id == "trial-1"
    assert record.task_id is None  # only the attempt span carries it
    assert record.treatment == Treatment()
    b = record.behavior
    assert b.turn_count == 2
    assert b.tool_sequence == ["read_file", "bash"]
    assert b.touched_files == ["a.py"]  # from the measured tool changes
    assert b.touched_file_lines is None  # per-file lines live only on the attempt span
    assert b.diff_lines == 5
    assert b.bash_mediated_edits is True
    assert b.localization_mode is None
    assert record.tokens.input_tokens_total == 1000
    assert record.tokens.context_growth_curve == [1000]
    assert record.reasoning.plan_steps_detected == 2
    i = record.infra
    assert i.exit_reason is None and i.timed_out is None
    assert i.wall_time_s == pytest.approx(1.6)  # first start to the latest end (or start)
    assert record.started_at_ns == T0 + 1000 * MS and record.ended_at_ns == T0 + 2600 * MS


def test_killed_before_any_tool_ended_leaves_tool_counts_unknown() -> None:
    t = Trace()
    t.turn(0, 1, 2)
    record = attempt_record(t.spans, complete=False, revision=3)
    assert record.revision == 3 and record.complete is False
    b = record.behavior
    assert b.turn_count == 1
    assert b.tool_call_count is None and b.edit_calls is None and b.tool_sequence is None
    assert b.touched_files is None and b.bash_mediated_edits is None


def test_attempt_record_identity_and_groups() -> None:
    t = Trace(attempt_id="att-9", trial_id="trial-9")
    extra = {sc.AGENT_SIGNALS_TREATMENT_MODEL_ID: "m", sc.AGENT_SIGNALS_ATTEMPT_INDEX: 1}
    a = t.attempt(0, 50, exit_reason="submitted", **extra)
    t.turn(0, 1, 2, parent=a, input=10)
    t.tool("submit", "submit", 3, 4, parent=a)
    spans = [*t.spans, t.spans[1]]  # a span delivered twice counts once
    record = attempt_record(list(reversed(spans)))
    assert (record.attempt_id, record.trial_id, record.task_id) == (
        "att-9",
        "trial-9",
        "django__django-1",
    )
    assert record.attempt_index == 1 and record.infra.attempt_index == 1
    assert record.trace_id == TRACE and record.service_name == "agent-runner"
    assert record.span_count == 3
    assert (record.started_at_ns, record.ended_at_ns) == (T0, T0 + 50 * MS)
    assert record.complete is True and record.revision == 0
    assert record.treatment.model_id == "m"
    assert record.behavior.tool_sequence == ["submit"]
    assert record.tokens.input_tokens_total == 10
    assert record.infra.exit_reason == "submitted"
    # Issue #4 fills verification and anticipation.
    assert record.verification.reward is None and record.anticipation.scope_drift is None
    with pytest.raises(ValueError, match=r"attempt\.id"):
        attempt_record([])


# ---------------------------------------------------------------------------------------------
# Real spans: the scripted demo, run in-process
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="the demo needs git")
def test_demo_attempts(tmp_path: Path) -> None:
    from agentsignals import _demo
    from agentsignals._classify import reasoning_text
    from agentsignals._spans.decode import from_readable_spans
    from agentsignals.testing import capture_spans

    repo = _demo.create_repository(tmp_path / "textkit")
    with capture_spans() as captured:
        _demo.run_agent(repo)
        spans = from_readable_spans(captured.spans)
    groups: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        attempt_id = s.attr_str(sc.AGENT_SIGNALS_ATTEMPT_ID)
        if attempt_id is not None:
            groups[attempt_id].append(s)
    records = sorted(
        (attempt_record(g) for g in groups.values()), key=lambda r: r.attempt_index or 0
    )
    assert [r.attempt_index for r in records] == [0, 1]
    first, retry = records

    assert first.complete and first.task_id == _demo.TASK_ID
    assert first.trial_id is not None and first.trial_id == retry.trial_id
    assert first.treatment.attempt1_tool_cap == 4 and first.treatment.retry_tool_cap == 8
    assert first.treatment.agent_type == "scripted-demo"
    b = first.behavior
    assert b.turn_count == 4
    assert b.tool_sequence == ["bash", "read_file", "str_replace_editor", "run_tests"]
    assert b.tool_category_sequence == ["search", "read", "edit", "test"]
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (1, 0, False)
    assert b.touched_files == ["textkit/stats.py"]
    assert b.diff_lines == 2
    assert b.first_edit_step == 2
    assert b.files_read_before_edit == 1
    assert b.validated_after_last_edit is True
    assert b.test_runs == 1 and b.tool_error_count == 1  # the tests still failed
    assert first.infra.exit_reason == "max_turns"
    assert first.infra.timed_out is False

    b = retry.behavior
    assert b.touched_files == ["textkit/fmt.py"]
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (0, 1, True)
    # submit runs bash("git diff") inside itself: one call the agent made, not two.
    assert b.tool_sequence == ["bash", "read_file", "bash", "run_tests", "submit"]
    assert b.first_edit_step == 2 and b.validated_after_last_edit is True
    assert retry.infra.exit_reason == "submitted"
    assert retry.infra.recovery_mode == "continue_from_workspace"

    # Tokens, reasoning and phases: derived from the script the demo runs, turn by turn.
    for record, script in ((first, _demo.ATTEMPT_1), (retry, _demo.ATTEMPT_2)):
        inputs = [900 + 350 * (k + 1) for k in range(len(script))]
        tok = record.tokens
        assert tok.context_growth_curve == inputs
        assert tok.input_tokens_total == sum(inputs)
        assert tok.output_tokens_total == sum(60 + len(step.reasoning) for step in script)
        assert tok.cache_read_tokens == sum(i - 400 for i in inputs)
        assert tok.cache_write_tokens is None  # the demo records none
        assert tok.cache_read_ratio == pytest.approx(sum(i - 400 for i in inputs) / sum(inputs))
        assert tok.cost_usd == pytest.approx(sum(round(i * 3e-6 + 0.0002, 6) for i in inputs))
        assert tok.model_calls == len(script)
        r = record.reasoning
        assert r.has_reasoning_blocks is True
        assert r.reasoning_chars_total == sum(len(step.reasoning) for step in script)
        assert r.plan_steps_detected == reasoning_text.plan_steps(script[0].reasoning)
        assert r.self_correction_count == sum(
            reasoning_text.self_corrections(step.reasoning) for step in script
        )
        assert r.plannotator_phases == [step.phase for step in script]
        assert r.reasoning_tokens_total is None  # the demo records none
        assert record.infra.wall_time_s is not None and record.infra.wall_time_s > 0
