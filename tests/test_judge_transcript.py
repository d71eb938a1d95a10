"""Transcripts rendered from real spans: a scripted agent run live with content capture on a
real git repository, through the file exporter, decoded as any other trace."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import msgspec
import pytest

from agentsignals import semconv as sc
from agentsignals._demo import ISSUE
from agentsignals._judge.engine import citations_for, cited_steps
from agentsignals._judge.run import read_spans
from agentsignals._judge.transcript import (
    Transcript,
    chunk_transcript,
    from_spans,
    group_by_attempt,
    steps_window,
)
from agentsignals._spans.model import Span
from judge_support import agent_in_subprocess


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> list[Span]:
    root = tmp_path_factory.mktemp("live")
    traces = agent_in_subprocess(root / "out", root / "work")
    spans, problems = read_spans(traces)
    assert problems == []
    return spans


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> list[Span]:
    root = tmp_path_factory.mktemp("long")
    traces = agent_in_subprocess(root / "out", root / "work", long_rounds=40)
    spans, _ = read_spans(traces)
    return spans


def _only(spans: list[Span]) -> Transcript:
    groups = group_by_attempt(spans)
    assert len(groups) == 1
    return from_spans(next(iter(groups.values())))


def test_steps_are_the_turns_and_tool_calls_in_order_with_their_span_ids(
    live: list[Span],
) -> None:
    t = _only(live)
    turns = sorted(
        (s for s in live if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn"),
        key=lambda s: s.start_ns,
    )
    tool_ids = {s.span_id for s in live if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "tool"}
    # Top-level calls only: submit's own `git diff` (a nested tool span) belongs to submit.
    tools = sorted(
        (s for s in live if s.span_id in tool_ids and s.parent_span_id not in tool_ids),
        key=lambda s: s.start_ns,
    )
    assert len(tool_ids) == 6 and len(tools) == 5
    # The script: five turns, each followed by its one tool call.
    assert [s.kind for s in t.steps] == ["turn", "tool"] * 5
    assert [s.span_id for s in t.steps if s.kind == "turn"] == [s.span_id for s in turns]
    assert [s.span_id for s in t.steps if s.kind == "tool"] == [s.span_id for s in tools]
    assert [s.index for s in t.steps] == list(range(10))
    assert [s.tool_index for s in t.steps if s.kind == "tool"] == [0, 1, 2, 3, 4]
    assert t.task == ISSUE
    assert t.attempt_span_id == next(
        s.span_id for s in live if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt"
    )
    text = t.render()
    # Every step is numbered once, in order, and shows what the agent thought, did and saw.
    assert re.findall(r"^\[S(\d+)\]", text, flags=re.M) == [str(i) for i in range(10)]
    assert "thinking: The divisor is len(values) + 1, off by one." in text
    assert "says: All issues are fixed. Submitting." in text
    assert "$ grep -rn 'def mean' textkit" not in text  # bash args are JSON, no command line
    assert '"command":"grep -rn \'def mean\' textkit"' in text
    assert "textkit/stats.py:8:def mean(values):" in text  # the real grep output
    assert "AssertionError: '2.5%' != '25.0%'" in text  # the real failing test run
    assert "(edit; changed textkit/stats.py)" in text  # the workspace tracker's finding
    # The task statement is not repeated as a message, and tool results are shown once.
    assert text.count(ISSUE) == 1
    assert text.count("FAILED (failures=1)") == 1


def test_the_transcript_never_shows_the_outcome(tmp_path: Path, live: list[Span]) -> None:
    t = _only(live)
    # Add what a verifier says: an outcome event on the attempt span and a verification span.
    attempt = next(s for s in live if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt")
    from agentsignals._spans.model import Event

    with_outcome = [
        Span(
            **{
                **{f: getattr(attempt, f) for f in attempt.__struct_fields__},
                "attributes": {
                    **attempt.attributes,
                    sc.AGENT_SIGNALS_VERIFY_REWARD: 0.0,
                    sc.AGENT_SIGNALS_VERIFY_PATCH_OUTCOME_LABEL: "partial_patch",
                },
                "events": [
                    Event(
                        sc.EVENT_GEN_AI_EVALUATION_RESULT,
                        attempt.end_ns,
                        {sc.GEN_AI_EVALUATION_NAME: "agent_signals.resolved",
                         sc.GEN_AI_EVALUATION_SCORE_LABEL: "partial_patch"},
                    )
                ],
            }
        )
        if s is attempt
        else s
        for s in live
    ]  # fmt: skip
    verification = Span(
        trace_id=attempt.trace_id,
        span_id="00000000000000aa",
        parent_span_id=attempt.span_id,
        name="verify x",
        kind=1,
        start_ns=attempt.end_ns,
        end_ns=attempt.end_ns,
        attributes={
            sc.AGENT_SIGNALS_SPAN_TYPE: "verification",
            sc.AGENT_SIGNALS_ATTEMPT_ID: attempt.attributes[sc.AGENT_SIGNALS_ATTEMPT_ID],
            sc.AGENT_SIGNALS_VERIFY_PATCH_OUTCOME_LABEL: "partial_patch",
        },
    )
    seen = _only([*with_outcome, verification])
    assert seen.render() == t.render()
    assert "partial_patch" not in seen.render() and "reward" not in seen.render().lower()


def test_rendering_is_deterministic_whatever_the_span_order(live: list[Span]) -> None:
    expected = _only(live).render()
    for seed in range(3):
        shuffled = list(live)
        random.Random(seed).shuffle(shuffled)
        assert _only(shuffled).render() == expected


def test_content_captured_as_events_renders_the_same(tmp_path: Path, live: list[Span]) -> None:
    traces = agent_in_subprocess(
        tmp_path / "out",
        tmp_path / "work",
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENT_ONLY"},
    )
    spans, _ = read_spans(traces)
    turn = next(s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn")
    assert sc.GEN_AI_OUTPUT_MESSAGES not in turn.attributes
    assert any(e.name == sc.EVENT_AGENT_SIGNALS_CONTENT for e in turn.events)

    # Same steps, same words; only scratch paths and test timings differ between two runs.
    def normal(text: str) -> str:
        text = re.sub(r"/[^\s\"]*/work/", "/W/", text)
        return re.sub(r"in \d+\.\d+s", "in Ts", text)

    assert normal(_only(spans).render()) == normal(_only(live).render())


def test_without_content_the_transcript_says_it_cannot_be_judged(tmp_path: Path) -> None:
    traces = agent_in_subprocess(tmp_path / "out", tmp_path / "work", capture_content=False)
    spans, _ = read_spans(traces)
    t = _only(spans)
    assert len(t.steps) == 10
    assert t.has_content is False
    assert t.task is None
    assert "no content recorded" in t.steps[0].title


def test_a_value_cut_by_the_capture_budget_is_shown_with_its_marker() -> None:
    # A small per-value budget cuts the turn's JSON messages: head and tail are kept, so the
    # cut lands inside the long string and the rest still parses; the marker stays visible.
    import agentsignals
    from agentsignals.testing import capture_spans

    long_answer = "x" * 3000
    with (
        capture_spans(capture_content=True, max_value_bytes=400) as captured,
        agentsignals.trial("t"),
        agentsignals.attempt(),
        agentsignals.turn() as turn,
    ):
        turn.record_messages(
            input=[{"role": "user", "parts": [{"type": "text", "content": "do it"}]}],
            output=[{"role": "assistant", "parts": [{"type": "text", "content": long_answer}]}],
        )
    from agentsignals._spans.decode import from_readable_spans

    t = _only(from_readable_spans(captured.spans))
    assert t.task == "do it"
    body = t.steps[0].body
    assert body.startswith("says: xxx")
    assert "…[truncated: " in body  # the capture's own marker, kept visible
    assert len(body) < 600


def test_a_value_that_is_no_longer_json_is_shown_as_raw_text() -> None:
    import agentsignals
    from agentsignals.testing import capture_spans

    with (
        capture_spans(capture_content=True) as captured,
        agentsignals.trial("t"),
        agentsignals.attempt(),
        agentsignals.turn() as turn,
    ):
        # Another producer's plain text where GenAI JSON messages belong.
        turn.set_attribute(sc.GEN_AI_INPUT_MESSAGES, "please fix the parser")
        turn.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, '[{"role": "assistant", "par')
    from agentsignals._spans.decode import from_readable_spans

    t = _only(from_readable_spans(captured.spans))
    assert t.task == "please fix the parser"
    assert t.steps[0].body == 'output: [{"role": "assistant", "par'


def test_citations_map_steps_to_span_ids(live: list[Span]) -> None:
    t = _only(live)
    text = "It edits at [S5], runs tests at S7 and reads [S2-S3]; [S99] does not exist."
    assert cited_steps(text, t) == [5, 7, 2, 3]
    assert citations_for(text, t) == [t.steps[i].span_id for i in (5, 7, 2, 3)]


def test_a_long_run_is_chunked_at_turn_boundaries_under_the_budget(long_run: list[Span]) -> None:
    t = _only(long_run)
    assert len(t.steps) > 120
    budget = 900  # tokens, at 3 characters per token
    chunks = chunk_transcript(t, budget)
    assert len(chunks) > 3
    covered = [i for c in chunks for i in range(c.first_step, c.last_step + 1)]
    assert covered == list(range(len(t.steps)))  # every step exactly once, in order
    for chunk in chunks:
        assert len(chunk.text) <= budget * 3
        assert chunk.text.startswith("## Task\n" + ISSUE)  # the task in every chunk
        # A chunk starts at a turn (a turn and its tool calls stay together).
        assert t.steps[chunk.first_step].kind == "turn"
        shown = re.findall(r"^\[S(\d+)\]", chunk.text, flags=re.M)
        assert shown == [str(i) for i in range(chunk.first_step, chunk.last_step + 1)]
        if chunk.index:
            assert f"## Earlier steps (S0-S{chunk.first_step - 1}" in chunk.text
            assert f"part {chunk.index + 1} of {len(chunks)}" in chunk.text
    # Deterministic.
    assert [c.text for c in chunk_transcript(t, budget)] == [c.text for c in chunks]


def test_a_step_larger_than_the_budget_is_cut_and_marked(live: list[Span]) -> None:
    t = _only(live)
    chunks = chunk_transcript(t, 200)
    clipped = [i for c in chunks for i in c.clipped_steps]
    assert clipped, "the test run's output is longer than a 600-character chunk"
    for chunk in chunks:
        if chunk.clipped_steps:
            assert "characters omitted]" in chunk.text


def test_a_prefix_window_shows_the_latest_steps_in_full(long_run: list[Span]) -> None:
    t = _only(long_run)
    window = steps_window(t, 60, 700)
    assert window.last_step == 60
    assert window.first_step > 0
    assert "[S60]" in window.text and f"[S{window.first_step}]" in window.text
    assert f"[S{window.first_step - 1}]" not in window.text
    assert f"S{window.first_step - 1} " in window.text  # as a summary line
    assert "[S61]" not in window.text


def test_transcripts_are_json_safe_and_the_steps_keep_the_tool_facts(live: list[Span]) -> None:
    t = _only(live)
    run = next(s for s in t.steps if s.tool_name == "run_tests")
    assert run.category == "test" and run.failed and run.exit_code == 1
    assert run.tests_failed and "test_percent" in run.tests_failed[0]
    edit = next(s for s in t.steps if s.tool_name == "str_replace_editor")
    assert edit.changed_files == ["textkit/stats.py"]
    assert edit.phase == "implement"
    json.dumps([s.render() for s in t.steps])


def test_the_system_instructions_are_the_task_only_when_no_user_says_it() -> None:
    import agentsignals
    from agentsignals._spans.decode import from_readable_spans
    from agentsignals.testing import capture_spans

    system = json.dumps([{"type": "text", "content": "Fix issue 7 in parser.py."}])
    with capture_spans(capture_content=True) as captured:
        with agentsignals.trial("t"), agentsignals.attempt(), agentsignals.turn() as turn:
            turn.set_attribute(sc.GEN_AI_SYSTEM_INSTRUCTIONS, system)
            turn.record_messages(
                output=[{"role": "assistant", "parts": [{"type": "text", "content": "ok"}]}]
            )
        with agentsignals.attempt(), agentsignals.turn() as turn:
            turn.set_attribute(sc.GEN_AI_SYSTEM_INSTRUCTIONS, system)
            turn.record_messages(
                input=[{"role": "user", "parts": [{"type": "text", "content": "Fix issue 8."}]}]
            )
    groups = group_by_attempt(from_readable_spans(captured.spans))
    tasks = sorted(from_spans(g).task or "" for g in groups.values())
    assert tasks == ["Fix issue 7 in parser.py.", "Fix issue 8."]


def test_first_wrong_step_candidates_come_from_the_deterministic_signals(
    live: list[Span],
) -> None:
    from agentsignals import features
    from agentsignals._judge.attribution import find_candidates

    t = _only(live)
    (record,) = features.from_spans(live).attempts
    assert record.behavior.touched_files == ["textkit/stats.py"]
    found = {c.step: c.why for c in find_candidates(t, record)}
    # S5 edits stats.py (in the final patch); S7's failing test_percent still fails at the end
    # and S8 is the decision that left it; S0 is the opening plan.
    assert found == {
        0: "the opening plan",
        5: "first edit",
        8: "first test failure still failing at the end",
    }
    gold = msgspec.structs.replace(
        record, behavior=msgspec.structs.replace(record.behavior, gold_files=["textkit/fmt.py"])
    )
    assert find_candidates(t, gold)[1].why == "first edit outside the files of the gold patch"
    # Without tool spans (a message log) there are no signals, hence no candidates.
    messages = Transcript(attempt_id="x", steps=[s for s in t.steps if s.kind == "turn"])
    assert find_candidates(messages) == []


def test_judge_spans_keep_the_judged_runs_project_and_tags() -> None:
    from agentsignals._judge.results import judge_resource

    judged = {
        "service.name": "my-agent",
        "service.version": "1.2",
        "host.name": "box",
        "process.pid": 42,
        "telemetry.sdk.name": "opentelemetry",
        "openinference.project.name": "swe-runs",
        "deployment.environment": "eval",
        "experiment": "A",
    }
    assert judge_resource(judged) == {
        "openinference.project.name": "swe-runs",
        "deployment.environment": "eval",
        "experiment": "A",
        "service.name": "agentsignals-judge",
    }
    assert judge_resource({}) == {"service.name": "agentsignals-judge"}
