"""The trial › attempt › turn › tool context managers: hierarchy, identity, what each records."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import agentsignals
from agentsignals import semconv as sc
from agentsignals.testing import CapturedSpans, attributes


def _by_name(captured: CapturedSpans) -> dict[str, dict[str, object]]:
    return {s.name: attributes(s) for s in captured.spans}


def test_hierarchy_names_kinds_and_identity_on_every_span(captured: CapturedSpans) -> None:
    with agentsignals.trial("django__django-16527", dataset="swebench-lite@1.0") as trial:
        with agentsignals.attempt(agent_name="demo-agent", model_id="anthropic/claude-x") as a0:
            with agentsignals.turn() as t0:  # noqa: SIM117
                with agentsignals.tool("grep", arguments={"pattern": "foo"}):
                    pass
            with agentsignals.turn() as t1:
                pass
        with agentsignals.attempt() as a1, agentsignals.turn() as t2:
            pass

    assert captured.tree() == "\n".join(
        [
            "trial django__django-16527",
            "  invoke_agent demo-agent",
            "    turn 0",
            "      execute_tool grep",
            "    turn 1",
            "  invoke_agent",
            "    turn 0",
        ]
    )
    assert (a0.index, a1.index) == (0, 1)
    assert (t0.index, t1.index, t2.index) == (0, 1, 0)
    assert all(s.kind is SpanKind.INTERNAL for s in captured.spans)
    for span in captured.spans:
        attrs = attributes(span)
        assert attrs[sc.AGENT_SIGNALS_TRIAL_ID] == trial.id
    tool = _by_name(captured)["execute_tool grep"]
    assert tool[sc.AGENT_SIGNALS_ATTEMPT_ID] == a0.id
    assert tool[sc.AGENT_SIGNALS_ATTEMPT_INDEX] == 0
    assert tool[sc.AGENT_SIGNALS_TURN_INDEX] == 0
    assert tool[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert tool[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "search"
    retry_turn = [
        s
        for s in captured.spans_of_type("turn")
        if s.attributes[sc.AGENT_SIGNALS_ATTEMPT_INDEX] == 1
    ]
    assert attributes(retry_turn[0])[sc.AGENT_SIGNALS_ATTEMPT_ID] == a1.id
    trial_attrs = attributes(captured.spans_of_type("trial")[0])
    assert trial_attrs[sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT] == 2
    assert trial_attrs[sc.AGENT_SIGNALS_TASK_ID] == "django__django-16527"
    assert trial_attrs[sc.AGENT_SIGNALS_TREATMENT_DATASET] == "swebench-lite@1.0"


def test_tools_run_after_the_turn_block_carry_its_index(captured: CapturedSpans) -> None:
    with agentsignals.attempt():
        with agentsignals.tool("read_file"):  # before any turn: no turn index
            pass
        with agentsignals.turn():
            pass
        with agentsignals.tool("bash", arguments={"command": "ls"}):
            pass
        with agentsignals.turn(), agentsignals.tool("edit_file"):
            pass
        with agentsignals.tool("pytest"):
            pass
    tools = captured.spans_of_type("tool")
    assert [attributes(t).get(sc.AGENT_SIGNALS_TURN_INDEX) for t in tools] == [None, 0, 1, 1]
    attempt = captured.spans_of_type("attempt")[0]
    turn1 = captured.spans_of_type("turn")[1]
    # Run after the block, the tool is the attempt's child; inside, the turn's.
    assert [captured.parent_of(t).name for t in tools] == [
        attempt.name,
        attempt.name,
        turn1.name,
        attempt.name,
    ]


def test_attempt_records_treatment_variables(captured: CapturedSpans) -> None:
    with (
        agentsignals.trial("t"),
        agentsignals.attempt(
            agent_type="mini-swe-agent",
            model_id="anthropic/claude-sonnet-4-20250514",
            dataset="swebench-verified@1.0",
            attempt1_tool_cap=50,
            retry_tool_cap=80,
            concurrency=8,
            timeout_s=1800,
            provider="anthropic",
        ) as a,
    ):
        a.set_modes(localization_mode="search_then_read", recovery_mode="fresh")
        a.set_exit_reason("submitted")
    attrs = attributes(captured.spans_of_type("attempt")[0])
    assert attrs == attrs | {
        sc.GEN_AI_OPERATION_NAME: "invoke_agent",
        sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE: "mini-swe-agent",
        sc.AGENT_SIGNALS_TREATMENT_MODEL_ID: "anthropic/claude-sonnet-4-20250514",
        sc.GEN_AI_REQUEST_MODEL: "anthropic/claude-sonnet-4-20250514",
        sc.GEN_AI_PROVIDER_NAME: "anthropic",
        sc.AGENT_SIGNALS_TREATMENT_DATASET: "swebench-verified@1.0",
        sc.AGENT_SIGNALS_TREATMENT_ATTEMPT1_TOOL_CAP: 50,
        sc.AGENT_SIGNALS_TREATMENT_RETRY_TOOL_CAP: 80,
        sc.AGENT_SIGNALS_TREATMENT_CONCURRENCY: 8,
        sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S: 1800.0,
        sc.AGENT_SIGNALS_ATTEMPT_LOCALIZATION_MODE: "search_then_read",
        sc.AGENT_SIGNALS_ATTEMPT_RECOVERY_MODE: "fresh",
        sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON: "submitted",
        sc.AGENT_SIGNALS_TASK_ID: "t",
    }


def test_turn_records_usage_cost_reasoning_and_phase(captured: CapturedSpans) -> None:
    with agentsignals.attempt(), agentsignals.turn(model="claude-x", phase="explore") as turn:
        turn.record_usage(
            input_tokens=1200,
            output_tokens=180,
            cache_read_tokens=1000,
            cache_write_tokens=150,
            reasoning_tokens=64,
        )
        turn.record_cost(0.0123)
        turn.record_reasoning("1. read the parser\n2. fix it")
        turn.record_model(response="claude-x-2025", finish_reasons=["tool_call"])
        turn.set_phase("localize")
    attrs = attributes(captured.spans_of_type("turn")[0])
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 1200
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 180
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attrs[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 150
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 64
    assert attrs[sc.AGENT_SIGNALS_USAGE_COST_USD] == pytest.approx(0.0123)
    assert attrs[sc.AGENT_SIGNALS_TURN_REASONING_PRESENT] is True
    assert attrs[sc.AGENT_SIGNALS_TURN_REASONING_CHARS] == len("1. read the parser\n2. fix it")
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "claude-x"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "claude-x-2025"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["tool_call"]
    assert attrs[sc.AGENT_SIGNALS_TURN_PHASE] == "localize"
    # Metadata only by default: the reasoning text itself is not on the span.
    assert sc.GEN_AI_OUTPUT_MESSAGES not in attrs
    assert sc.GEN_AI_OPERATION_NAME not in attrs  # a grouping span, never counted as a model call


def test_tool_exit_code_error_and_files(captured: CapturedSpans) -> None:
    with agentsignals.attempt():
        with agentsignals.tool("bash", call_id="call_1", arguments={"command": "make"}) as ok:
            ok.record_result("built\n", exit_code=0)
        with agentsignals.tool("bash", arguments={"command": "make"}) as bad:
            bad.record_result("error: boom", exit_code=2)
        with agentsignals.tool("grep", arguments={"pattern": "x"}) as nomatch:
            nomatch.set_exit_code(1, failed=False)
        with agentsignals.tool("edit_file") as returned:
            returned.set_files(["src/a.py"])
            returned.set_error("EditConflict", "old_str not found")
        with agentsignals.tool("bash") as slow:
            slow.mark_timed_out()
    ok_span, bad_span, nomatch_span, returned_span, slow_span = captured.spans_of_type("tool")
    assert ok_span.status.status_code is StatusCode.UNSET
    assert attributes(ok_span)[sc.PROCESS_EXIT_CODE] == 0
    assert attributes(ok_span)[sc.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert attributes(ok_span)[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] == 6
    assert bad_span.status.status_code is StatusCode.ERROR
    assert attributes(bad_span)[sc.ERROR_TYPE] == "exit_code_2"
    assert nomatch_span.status.status_code is StatusCode.UNSET
    assert sc.ERROR_TYPE not in attributes(nomatch_span)
    assert returned_span.status.status_code is StatusCode.ERROR
    assert attributes(returned_span)[sc.ERROR_TYPE] == "EditConflict"
    assert attributes(returned_span)[sc.AGENT_SIGNALS_TOOL_FILES] == ["src/a.py"]
    assert attributes(slow_span)[sc.AGENT_SIGNALS_TOOL_TIMED_OUT] is True


def test_identical_calls_share_a_fingerprint(captured: CapturedSpans) -> None:
    for command in ("grep -rn foo .", "grep -rn foo .", "grep -rn bar ."):
        with agentsignals.tool("bash", arguments={"command": command}):
            pass
    prints = [attributes(s)[sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT] for s in captured.spans]
    assert prints[0] == prints[1] != prints[2]


def test_user_exceptions_propagate_unchanged_and_are_recorded(captured: CapturedSpans) -> None:
    class AgentBug(Exception):
        pass

    bug = AgentBug("model returned garbage")
    with pytest.raises(AgentBug) as info, agentsignals.attempt(), agentsignals.tool("bash"):
        raise bug
    assert info.value is bug
    tool, attempt = captured.spans
    for span in (tool, attempt):
        assert span.status.status_code is StatusCode.ERROR
        assert attributes(span)[sc.ERROR_TYPE].endswith("AgentBug")
        assert [e.name for e in span.events] == ["exception"]
    assert attributes(attempt)[sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON] == "error"


@pytest.mark.parametrize(
    ("exc", "reason", "timed_out"),
    [(TimeoutError(), "timeout", True), (KeyboardInterrupt(), "interrupted", None)],
)
def test_exit_reason_inferred_from_what_ended_the_attempt(
    captured: CapturedSpans, exc: BaseException, reason: str, timed_out: bool | None
) -> None:
    with pytest.raises(type(exc)), agentsignals.attempt():
        raise exc
    attrs = attributes(captured.spans[0])
    assert attrs[sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON] == reason
    assert attrs.get(sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT) == timed_out


def test_other_instrumentors_spans_nest_under_turns_and_get_identity(
    captured: CapturedSpans,
) -> None:
    openai = captured.tracer("opentelemetry.instrumentation.openai")
    with agentsignals.trial("t"), agentsignals.attempt() as attempt:
        with agentsignals.turn(), openai.start_as_current_span("chat gpt-5") as chat:
            chat.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, 900)
        with agentsignals.tool("bash"), openai.start_as_current_span("chat gpt-5-mini"):
            pass  # a model call made by a tool after the turn block
    chat_span = captured.named("chat gpt-5")[0]
    assert captured.parent_of(chat_span).name == "turn 0"
    attrs = attributes(chat_span)
    assert attrs[sc.AGENT_SIGNALS_ATTEMPT_ID] == attempt.id
    assert attrs[sc.AGENT_SIGNALS_TURN_INDEX] == 0
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 900
    assert captured.parent_of(captured.named("chat gpt-5-mini")[0]).name == "execute_tool bash"
    assert attributes(captured.named("chat gpt-5-mini")[0])[sc.AGENT_SIGNALS_TURN_INDEX] == 0


def test_current_handles(captured: CapturedSpans) -> None:
    assert agentsignals.current_turn().span.is_recording() is False  # idle no-op handle
    agentsignals.current_tool().set_exit_code(3)  # harmless with nothing active
    with agentsignals.attempt() as attempt, agentsignals.turn() as turn:
        assert agentsignals.current_attempt() is attempt
        assert agentsignals.current_turn() is turn
        with agentsignals.tool("bash") as tool:
            assert agentsignals.current_tool() is tool
            agentsignals.current_turn().record_usage(output_tokens=7)
    assert attributes(captured.spans_of_type("turn")[0])[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


def test_deterministic_ids_and_times(captured: CapturedSpans) -> None:
    with agentsignals.attempt(), agentsignals.tool("bash"):
        pass
    tool, attempt = captured.spans
    assert attempt.context.trace_id == 1
    assert (attempt.context.span_id, tool.context.span_id) == (1, 2)
    assert attempt.start_time < tool.start_time < tool.end_time < attempt.end_time
    assert tool.end_time - tool.start_time == 1_000_000
