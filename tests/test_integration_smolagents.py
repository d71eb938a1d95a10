"""smolagents' real ToolCallingAgent loop (OpenAIServerModel) against a scripted model server on
loopback, on a real git repository, traced by `agentsignals.instrument("smolagents")`; and with
OpenInference's smolagents instrumentor on beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import smolagents as integration
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import FIX, classes_restored, make_repo, run_bash, run_pytest, tree
from scripted_llm import ScriptedLLM, Step

smolagents = pytest.importorskip("smolagents")
from smolagents import tool  # noqa: E402

_IN, _CACHED, _OUT = 0.15e-6, 0.075e-6, 0.6e-6
USAGE = [(1000, 50, 0), (1200, 60, 800), (1400, 70, 1000), (1600, 40, 1200)]
SCRIPT = [
    Step(tools=[("read_file", {"path": "stats.py"})], usage=USAGE[0]),
    Step(tools=[("bash", {"command": FIX})], usage=USAGE[1]),
    Step(tools=[("run_tests", {})], usage=USAGE[2]),
    Step(tools=[("final_answer", {"answer": "fixed add()"})], usage=USAGE[3]),
]


def _cost(usage: list[tuple[int, int, int]]) -> float:
    return sum((p - c) * _IN + c * _CACHED + o * _OUT for p, o, c in usage)


@pytest.fixture
def instrumented() -> Iterator[None]:
    yield
    integration.uninstrument()


def _agent(llm: ScriptedLLM, repo: Path, **kwargs: Any) -> Any:
    @tool
    def read_file(path: str) -> str:
        """Read a file of the repository.

        Args:
            path: the file's path in the repository.
        """
        return (repo / path).read_text()

    @tool
    def bash(command: str) -> str:
        """Run a shell command in the repository.

        Args:
            command: the command line.
        """
        return run_bash(repo, command)[0]

    @tool
    def run_tests() -> str:
        """Run the tests."""
        return run_pytest(repo)[0]

    model = smolagents.OpenAIServerModel(
        model_id="gpt-4o-mini", api_base=llm.openai_url, api_key="x"
    )
    return smolagents.ToolCallingAgent(
        tools=[read_file, bash, run_tests], model=model, name="fixer", verbosity_level=0, **kwargs
    )


def test_tool_calling_agent(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("smolagents", task_id="tiny__stats-1", workspace=str(repo))
    with ScriptedLLM(list(SCRIPT)) as llm:
        agent = _agent(llm, repo)
        assert agent.run("add() subtracts") == "fixed add()"
    # The agent's own model and tools are back after the run.
    assert type(agent.model) is smolagents.OpenAIServerModel
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
        "    execute_tool final_answer",
    ]
    turns = [attributes(t) for t in captured.spans_of_type("turn")]
    assert [t["agent_signals.turn.module"] for t in turns] == ["fixer"] * 4
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "submitted"
    [record] = features.from_spans(spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.turn_count == 4
    assert b.tool_category_sequence == ["read", "shell", "test", "submit"]
    assert b.touched_files == ["stats.py"]
    assert b.shell_edit_calls == 1
    assert b.validated_after_last_edit is True
    assert tok.input_tokens_total == 5200
    assert tok.output_tokens_total == 220
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 4
    assert tok.cost_usd == pytest.approx(_cost(USAGE), rel=1e-9)


def test_max_steps(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    repo = make_repo(tmp_path)
    agentsignals.instrument("smolagents", task_id="tiny__stats-2", workspace=None)
    script = [*SCRIPT[:2], Step(text="the answer is: fixed")]
    with ScriptedLLM(script) as llm:
        _agent(llm, repo, max_steps=2).run("add() subtracts")
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "max_turns"
    # Two action steps, then smolagents asks the model for a final answer: a third turn.
    assert len(captured.spans_of_type("turn")) == 3


def test_with_openinference_on(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    oi = pytest.importorskip("openinference.instrumentation.smolagents")
    import smolagents.agents
    import smolagents.local_python_executor
    import smolagents.models
    import smolagents.tools

    repo = make_repo(tmp_path)
    modules = (smolagents, smolagents.agents, smolagents.models, smolagents.tools,
               smolagents.local_python_executor)  # fmt: skip
    with classes_restored(*modules):
        instrumentor = oi.SmolagentsInstrumentor()
        instrumentor.instrument(tracer_provider=captured.provider)
        # Turned on after OpenInference, our run wrapper is the outer one: the trial holds
        # OpenInference's run span. (In the other order it is the other way round; turns and
        # tools nest the same either way, through the run's model and tool proxies.)
        agentsignals.instrument("smolagents", task_id="tiny__stats-1", workspace=str(repo))
        try:
            with ScriptedLLM(list(SCRIPT)) as llm:
                _agent(llm, repo).run("add() subtracts")
        finally:
            instrumentor.uninstrument()

    spans = captured.spans
    expected = ["trial tiny__stats-1", "  invoke_agent fixer", "    fixer.run"]
    names = ["read_file", "bash", "run_tests", "final_answer"]
    for i, name in enumerate(names):
        tool_span = "FinalAnswerTool" if name == "final_answer" else "SimpleTool"
        expected += [f"      Step {i + 1}", f"        turn {i}", "          OpenAIModel.generate",
                     f"        execute_tool {name}", f"          {tool_span}"]  # fmt: skip
    assert tree(spans, keep=("openinference",)) == expected
    turns = captured.spans_of_type("turn")
    llm_spans = [s for s in spans if attributes(s).get("openinference.span.kind") == "LLM"]
    assert len(llm_spans) == 4 and len(turns) == 4
    turn_ids = {t.context.span_id for t in turns}
    assert all(s.parent is not None and s.parent.span_id in turn_ids for s in llm_spans)
    [record] = features.from_spans(spans).attempts
    assert record.behavior.turn_count == 4
    assert record.tokens.input_tokens_total == 5200
    assert record.tokens.model_calls == 4


def test_code_agent_tools_called_from_code(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """A CodeAgent's actions are Python code; the tools that code calls are tool spans."""
    repo = make_repo(tmp_path)
    agentsignals.instrument("smolagents", task_id="tiny__stats-4", workspace=str(repo))
    script = [
        Step(text="Thought: look.\n<code>\nprint(bash(command='cat stats.py'))\n</code>"),
        Step(text=f"Thought: fix.\n<code>\nbash(command={FIX!r})\n</code>"),
        Step(text="Thought: done.\n<code>\nfinal_answer('fixed')\n</code>"),
    ]
    with ScriptedLLM(script) as llm:
        agent = _agent(llm, repo)  # for its model and its bash tool
        code_agent = smolagents.CodeAgent(
            tools=[agent.tools["bash"]], model=agent.model, name="coder", verbosity_level=0
        )
        assert code_agent.run("add() subtracts") == "fixed"
    assert tree(captured.spans) == [
        "trial tiny__stats-4",
        "  invoke_agent coder",
        "    turn 0",
        "    execute_tool bash",
        "    turn 1",
        "    execute_tool bash",
        "    turn 2",
        "    execute_tool final_answer",
    ]
    [record] = features.from_spans(captured.spans).attempts
    assert record.behavior.tool_category_sequence == ["read", "shell", "submit"]
    assert record.behavior.touched_files == ["stats.py"]
    assert record.behavior.bash_mediated_edits is True


# ----------------------------------------------------------------- recovery evals (faults)


def test_tool_faults_reach_the_model_as_tool_errors(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """A tool error hits the fix (its body does not run); smolagents shows the model the error
    as for any tool that raises, and the model retries. Then reading the fixed file again is
    answered with the first read's output (stale output: the file still looks broken)."""
    import json

    from agentsignals import faults

    repo = make_repo(tmp_path)
    assert agentsignals.instrument("smolagents", task_id="tiny__stats-9", workspace=str(repo))
    script = [
        Step(tools=[("read_file", {"path": "stats.py"})]),
        Step(tools=[("bash", {"command": FIX})]),  # fails: tool_error
        Step(tools=[("bash", {"command": FIX})]),  # the retry runs
        Step(tools=[("read_file", {"path": "stats.py"})]),  # stale: the first read's output
        Step(tools=[("run_tests", {})]),
        Step(tools=[("final_answer", {"answer": "fixed add()"})]),
    ]
    plan = faults.FaultPlan(
        (
            faults.Fault("tool_error", trigger="after_step", step=1, id="fork"),
            faults.Fault("stale_output", trigger="after_step", step=3, id="stale"),
        )
    )
    faults.install(plan)
    try:
        with ScriptedLLM(script) as llm:
            assert _agent(llm, repo).run("add() subtracts") == "fixed add()"
            requests = list(llm.requests)
    finally:
        faults.uninstall()
    assert "a + b" in (repo / "stats.py").read_text()  # the retry fixed it
    # What the model was shown after each call (the last message of the next request).
    seen = [json.dumps(r["messages"][-1]) for r in requests[1:]]
    assert "bash: fork: retry: Resource temporarily unavailable" in seen[1]
    assert "Error" in seen[1]  # smolagents' report of a tool that raised
    assert "a - b" in seen[3] and "a + b" not in seen[3]  # stale: the file before the fix
    assert "1 passed" in seen[4]
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert [t["gen_ai.tool.name"] for t in tools] == [
        "read_file", "bash", "bash", "read_file", "run_tests", "final_answer",
    ]  # fmt: skip
    assert tools[1]["agent_signals.fault.kind"] == "tool_error"
    assert tools[1]["error.type"] == "RuntimeError"
    assert "agent_signals.fault.kind" not in tools[2]
    assert tools[3]["agent_signals.fault.kind"] == "stale_output"
    [record] = features.from_spans(captured.spans).attempts
    r = record.recovery
    assert (r.fault_count, r.fault_kind, r.fault_step) == (2, "tool_error", 1)
    assert (r.noticed_how, r.noticed_step, r.steps_to_notice) == ("retried_call", 2, 0)
    assert record.behavior.touched_files == ["stats.py"]
