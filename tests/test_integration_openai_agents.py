"""The OpenAI Agents SDK's real Runner loop (chat-completions model) against a scripted model
server on loopback, on a real git repository, traced by
`agentsignals.instrument("openai_agents")`; and with OpenInference's instrumentor on beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import openai_agents as integration
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import FIX, make_repo, run_bash, run_pytest, tree
from scripted_llm import ScriptedLLM, Step

agents = pytest.importorskip("agents")
from openai import AsyncOpenAI  # noqa: E402

_IN, _CACHED, _OUT = 0.15e-6, 0.075e-6, 0.6e-6
USAGE = [(1000, 50, 0), (1200, 60, 800), (1400, 70, 1000), (1600, 40, 1200)]
SCRIPT = [
    Step(tools=[("read_file", {"path": "stats.py"})], usage=USAGE[0]),
    Step(tools=[("bash", {"command": FIX})], usage=USAGE[1]),
    Step(tools=[("run_tests", {})], usage=USAGE[2]),
    Step(text="Fixed add().", usage=USAGE[3]),
]


def _cost(usage: list[tuple[int, int, int]]) -> float:
    return sum((p - c) * _IN + c * _CACHED + o * _OUT for p, o, c in usage)


@pytest.fixture
def sdk_tracing() -> Iterator[None]:
    """No export to the OpenAI dashboard from tests: only our processor (and OpenInference's
    where a test adds it)."""
    provider = agents.tracing.get_trace_provider()
    saved = list(provider._multi_processor._processors)
    provider.set_processors([])
    yield
    integration.uninstrument()
    provider.set_processors(saved)


def _agent(llm: ScriptedLLM, repo: Path) -> Any:
    @agents.function_tool
    def read_file(path: str) -> str:
        """Read a file of the repository."""
        return (repo / path).read_text()

    @agents.function_tool
    def bash(command: str) -> str:
        """Run a shell command in the repository."""
        return run_bash(repo, command)[0]

    @agents.function_tool
    def run_tests() -> str:
        """Run the tests."""
        return run_pytest(repo)[0]

    model = agents.OpenAIChatCompletionsModel(
        model="gpt-4o-mini", openai_client=AsyncOpenAI(base_url=llm.openai_url, api_key="x")
    )
    return agents.Agent(
        name="fixer", instructions="Fix the bug.", model=model, tools=[read_file, bash, run_tests]
    )


def _run(llm: ScriptedLLM, repo: Path, **kwargs: Any) -> Any:
    return asyncio.run(agents.Runner.run(_agent(llm, repo), "add() subtracts", **kwargs))


def test_runner_on_a_real_repo(tmp_path: Path, captured: CapturedSpans, sdk_tracing: None) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("openai_agents", task_id="tiny__stats-1", workspace=str(repo))
    with ScriptedLLM(list(SCRIPT)) as llm:
        result = _run(llm, repo)
    assert result.final_output == "Fixed add()."
    spans = captured.spans
    assert tree(spans) == [
        "trial tiny__stats-1",
        "  invoke_agent fixer",
        "    turn 0",
        "    execute_tool read_file",
        "    turn 1",
        "    execute_tool bash",
        "    turn 2",
        "    execute_tool run_tests",
        "    turn 3",
    ]
    turns = [attributes(t) for t in captured.spans_of_type("turn")]
    assert [t["agent_signals.turn.module"] for t in turns] == ["fixer"] * 4
    assert turns[0]["agent_signals.usage.cost_source"] == "estimated"
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "submitted"
    assert attempt["agent_signals.attempt.touched_files"] == ["stats.py"]
    [record] = features.from_spans(spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.turn_count == 4
    assert b.tool_sequence == ["read_file", "bash", "run_tests"]
    assert b.tool_category_sequence == ["read", "shell", "test"]
    assert b.touched_files == ["stats.py"]
    assert b.shell_edit_calls == 1
    assert b.validated_after_last_edit is True
    assert tok.input_tokens_total == 5200
    assert tok.output_tokens_total == 220
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 4
    assert tok.cost_usd == pytest.approx(_cost(USAGE), rel=1e-9)


def test_max_turns(tmp_path: Path, captured: CapturedSpans, sdk_tracing: None) -> None:
    repo = make_repo(tmp_path)
    agentsignals.instrument("openai_agents", task_id="tiny__stats-2", workspace=None)
    with ScriptedLLM(list(SCRIPT)) as llm, pytest.raises(agents.MaxTurnsExceeded):
        _run(llm, repo, max_turns=2)
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "max_turns"
    assert len(captured.spans_of_type("turn")) == 2


def test_with_openinference_on(tmp_path: Path, captured: CapturedSpans, sdk_tracing: None) -> None:
    oi = pytest.importorskip("openinference.instrumentation.openai_agents")
    instrumentor = oi.OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=captured.provider)
    repo = make_repo(tmp_path)
    agentsignals.instrument("openai_agents", task_id="tiny__stats-1", workspace=str(repo))
    try:
        with ScriptedLLM(list(SCRIPT)) as llm:
            _run(llm, repo)
    finally:
        instrumentor.uninstrument()
    spans = captured.spans
    # OpenInference's spans (the SDK's workflow, agent, turn, generation and function spans)
    # inside our attempt; our turns and tools inside its turns, each model call a sibling of
    # our turn, never its parent.
    steps = [
        ("read_file", "0"), ("bash", "1"), ("run_tests", "2")
    ]  # fmt: skip
    expected = ["trial tiny__stats-1", "  invoke_agent fixer", "    Agent workflow",
                "      Agent workflow", "        fixer"]  # fmt: skip
    for name, i in steps:
        expected += ["          turn", f"            turn {i}", f"            execute_tool {name}",
                     "            generation", f"            {name}"]  # fmt: skip
    expected += ["          turn", "            turn 3", "            generation"]
    assert tree(spans, keep=("openinference",)) == expected
    turns = captured.spans_of_type("turn")
    llm_spans = [s for s in spans if attributes(s).get("openinference.span.kind") == "LLM"]
    assert len(llm_spans) == 4 and len(turns) == 4
    # Each model-call span carries the index of the turn that made it, so its usage is counted
    # for that turn and only once.
    assert [attributes(s)["agent_signals.turn.index"] for s in llm_spans] == [0, 1, 2, 3]
    by_id = {s.context.span_id: s for s in spans}
    for t in turns:
        p = t.parent
        while p is not None and p.span_id in by_id:
            assert attributes(by_id[p.span_id]).get("openinference.span.kind") != "LLM"
            p = by_id[p.span_id].parent
    [record] = features.from_spans(spans).attempts
    assert record.behavior.turn_count == 4
    assert record.tokens.input_tokens_total == 5200
    assert record.tokens.model_calls == 4


def test_streamed_run(tmp_path: Path, captured: CapturedSpans, sdk_tracing: None) -> None:
    repo = make_repo(tmp_path)
    agentsignals.instrument("openai_agents", task_id="tiny__stats-1", workspace=str(repo))

    async def run(llm: ScriptedLLM) -> None:
        agent = _agent(llm, repo)
        # Streamed chat completions report usage only when asked for it.
        agent.model_settings = agents.ModelSettings(include_usage=True)
        result = agents.Runner.run_streamed(agent, "add() subtracts")
        async for _ in result.stream_events():
            pass

    with ScriptedLLM(list(SCRIPT)) as llm:
        asyncio.run(run(llm))
    assert tree(captured.spans)[:4] == [
        "trial tiny__stats-1",
        "  invoke_agent fixer",
        "    turn 0",
        "    execute_tool read_file",
    ]
    [record] = features.from_spans(captured.spans).attempts
    assert record.behavior.turn_count == 4
    assert record.behavior.tool_category_sequence == ["read", "shell", "test"]
    assert record.behavior.touched_files == ["stats.py"]
    assert record.tokens.input_tokens_total == 5200
