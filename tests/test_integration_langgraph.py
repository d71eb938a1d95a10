"""LangGraph's prebuilt ReAct graph (ChatOpenAI, ToolNode) run for real against a scripted model
server on loopback, on a real git repository, traced by `agentsignals.instrument("langgraph")`;
and with OpenInference's LangChain instrumentor on beside it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import uninstrument
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import FIX, make_repo, run_bash, run_pytest, tree
from scripted_llm import ScriptedLLM, Step

pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent

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
def instrumented() -> Iterator[None]:
    yield
    uninstrument("langgraph")


def _graph(llm: ScriptedLLM, repo: Path) -> Any:
    @tool
    def read_file(path: str) -> str:
        """Read a file of the repository."""
        return (repo / path).read_text()

    @tool
    def bash(command: str) -> str:
        """Run a shell command in the repository."""
        return run_bash(repo, command)[0]

    @tool
    def run_tests() -> str:
        """Run the tests."""
        return run_pytest(repo)[0]

    model = ChatOpenAI(model="gpt-4o-mini", base_url=llm.openai_url, api_key="x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(model, [read_file, bash, run_tests], name="fixer")


def test_react_graph(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("langgraph", task_id="tiny__stats-1", workspace=str(repo))
    with ScriptedLLM(list(SCRIPT)) as llm:
        out = _graph(llm, repo).invoke({"messages": [("user", "add() subtracts")]})
    assert out["messages"][-1].content == "Fixed add()."
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
    assert [t["agent_signals.turn.module"] for t in turns] == ["agent"] * 4
    assert turns[0]["gen_ai.provider.name"] == "openai"
    assert turns[0]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "submitted"
    [record] = features.from_spans(spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.turn_count == 4
    assert b.tool_category_sequence == ["read", "shell", "test"]
    assert b.touched_files == ["stats.py"]
    assert b.shell_edit_calls == 1
    assert b.validated_after_last_edit is True
    assert tok.input_tokens_total == 5200
    assert tok.output_tokens_total == 220
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 4
    assert tok.cost_usd == pytest.approx(_cost(USAGE), rel=1e-9)


def test_async_graph(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    import asyncio

    repo = make_repo(tmp_path)
    agentsignals.instrument("langgraph", task_id="tiny__stats-1", workspace=str(repo))
    with ScriptedLLM(list(SCRIPT)) as llm:
        graph = _graph(llm, repo)
        asyncio.run(graph.ainvoke({"messages": [("user", "add() subtracts")]}))
    [record] = features.from_spans(captured.spans).attempts
    assert record.behavior.turn_count == 4
    assert record.behavior.tool_category_sequence == ["read", "shell", "test"]
    assert record.behavior.touched_files == ["stats.py"]
    assert record.tokens.input_tokens_total == 5200


def test_recursion_limit_is_max_turns(captured: CapturedSpans, instrumented: None) -> None:
    """A hand-built graph that keeps calling the model until LangGraph's step limit stops it."""
    from typing import TypedDict

    from langgraph.errors import GraphRecursionError
    from langgraph.graph import StateGraph

    class State(TypedDict):
        n: int

    agentsignals.instrument("langgraph", task_id="loop-1", workspace=None)
    with ScriptedLLM([Step(text="again")] * 10) as llm:
        model = ChatOpenAI(model="gpt-4o-mini", base_url=llm.openai_url, api_key="x")

        def think(state: State) -> State:
            model.invoke("go on")
            return {"n": state["n"] + 1}

        builder = StateGraph(State)
        builder.add_node("think", think)
        builder.set_entry_point("think")
        builder.add_edge("think", "think")
        with pytest.raises(GraphRecursionError):
            builder.compile().invoke({"n": 0}, config={"recursion_limit": 3})
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "max_turns"
    turns = [attributes(t) for t in captured.spans_of_type("turn")]
    assert [t["agent_signals.turn.module"] for t in turns] == ["think"] * 3


def test_with_openinference_langchain_on(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    oi = pytest.importorskip("openinference.instrumentation.langchain")
    instrumentor = oi.LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=captured.provider)
    repo = make_repo(tmp_path)
    agentsignals.instrument("langgraph", task_id="tiny__stats-1", workspace=str(repo))
    try:
        with ScriptedLLM(list(SCRIPT)) as llm:
            _graph(llm, repo).invoke({"messages": [("user", "add() subtracts")]})
    finally:
        instrumentor.uninstrument()
    spans = captured.spans
    # OpenInference's tracer parents its spans by LangChain run, so its graph span sits in our
    # attempt and its model calls beside our turns, each stamped with the turn's index.
    [attempt] = captured.spans_of_type("attempt")
    [graph] = [s for s in spans if s.name == "fixer"]
    assert graph.parent is not None and graph.parent.span_id == attempt.context.span_id
    llm_spans = [s for s in spans if attributes(s).get("openinference.span.kind") == "LLM"]
    turns = captured.spans_of_type("turn")
    assert len(llm_spans) == 4 and len(turns) == 4
    assert [attributes(s).get("agent_signals.turn.index") for s in llm_spans] == [0, 1, 2, 3]
    [record] = features.from_spans(spans).attempts
    assert record.behavior.turn_count == 4
    assert record.tokens.input_tokens_total == 5200
    assert record.tokens.model_calls == 4


# ----------------------------------------------------------------- recovery evals (faults)


def test_tool_faults_in_the_react_graph(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """A tool call from the model that a fault fails gets the error ToolMessage LangChain gives
    for a failed tool call (status "error"), with LangGraph's default error handling; a
    direct call gets the exception."""
    import json

    from langchain_core.messages import ToolMessage

    from agentsignals import faults

    repo = make_repo(tmp_path)
    assert agentsignals.instrument("langgraph", task_id="tiny__stats-9", workspace=str(repo))
    script = [
        Step(tools=[("read_file", {"path": "stats.py"})]),
        Step(tools=[("run_tests", {})]),  # times out: tool_timeout
        Step(tools=[("run_tests", {})]),  # the retry runs
        Step(tools=[("bash", {"command": FIX})]),
        Step(text="Fixed add()."),
    ]
    faults.install(faults.Fault("tool_timeout", trigger="after_step", step=1))
    try:
        with ScriptedLLM(script) as llm:
            out = _graph(llm, repo).invoke({"messages": [("user", "add() subtracts")]})
            requests = list(llm.requests)
    finally:
        faults.uninstall()
    assert out["messages"][-1].content == "Fixed add()."
    [hit] = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.status == "error"]
    assert hit.name == "run_tests"
    message = f"Command '{hit.name}' timed out after 30 seconds"
    assert hit.content == message
    assert message in json.dumps(requests[2]["messages"][-1])
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert [t["gen_ai.tool.name"] for t in tools] == ["read_file", "run_tests", "run_tests", "bash"]
    assert tools[1]["agent_signals.fault.kind"] == "tool_timeout"
    assert tools[1]["agent_signals.tool.timed_out"] is True
    assert tools[1]["error.type"] == "TimeoutError"
    assert tools[1]["gen_ai.tool.call.id"] == hit.tool_call_id
    [record] = features.from_spans(captured.spans).attempts
    r = record.recovery
    assert (r.fault_kind, r.fault_step, r.noticed_how, r.steps_to_notice) == (
        "tool_timeout", 1, "reran_tests", 0,
    )  # fmt: skip
    assert record.behavior.touched_files == ["stats.py"]


def test_a_direct_tool_call_gets_the_fault_as_an_exception(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    from langchain_core.tools import tool

    from agentsignals import faults

    @tool
    def echo(text: str) -> str:
        """Echo the text."""
        return text

    assert agentsignals.instrument("langgraph")
    with agentsignals.trial("direct"), agentsignals.attempt():
        faults.inject(faults.Fault("tool_error", trigger="after_step", step=1))
        assert echo.run("one") == "one"
        with pytest.raises(faults.InjectedToolError):
            echo.run("two")
        assert echo.run("three") == "three"
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert [t.get("agent_signals.fault.kind") for t in tools] == [None, "tool_error", None]


def test_async_tool_calls_get_the_fault_too(captured: CapturedSpans, instrumented: None) -> None:
    import asyncio

    from langchain_core.messages import ToolMessage
    from langchain_core.tools import tool

    from agentsignals import faults

    @tool
    async def echo(text: str) -> str:
        """Echo the text."""
        return text

    assert agentsignals.instrument("langgraph")

    async def main() -> list[object]:
        out: list[object] = []
        with agentsignals.trial("async"), agentsignals.attempt():
            faults.inject(faults.Fault("tool_error", trigger="after_step", step=1, message="boom"))
            out.append(await echo.arun("one"))
            call = {"type": "tool_call", "name": "echo", "args": {"text": "two"}, "id": "c2"}
            out.append(await echo.ainvoke(call))
            out.append(await echo.ainvoke({**call, "id": "c3"}))
        return out

    one, two, three = asyncio.run(main())
    assert one == "one"
    assert isinstance(two, ToolMessage) and two.status == "error" and two.content == "boom"
    assert two.tool_call_id == "c2"
    assert isinstance(three, ToolMessage) and three.status == "success" and three.content == "two"
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert [t.get("agent_signals.fault.kind") for t in tools] == [None, "tool_error", None]
    assert tools[1]["error.type"] == "RuntimeError"
