"""DSPy ReAct and a custom multi-module program, run for real against a scripted model server
on loopback, on a real git repository, traced by `agentsignals.instrument("dspy")`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import dspy as dspy_integration
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import FIX, make_repo, run_bash, run_pytest, tree
from scripted_llm import ScriptedLLM, Step

dspy = pytest.importorskip("dspy")

# gpt-4o-mini list prices (USD per token): input, cached input, output.
_IN, _CACHED, _OUT = 0.15e-6, 0.075e-6, 0.6e-6


def _react_step(tool: str, args: dict[str, Any], thought: str = "next") -> str:
    return (
        f"[[ ## next_thought ## ]]\n{thought}\n\n[[ ## next_tool_name ## ]]\n{tool}\n\n"
        f"[[ ## next_tool_args ## ]]\n{json.dumps(args)}\n\n[[ ## completed ## ]]"
    )


USAGE = [(1000, 50, 0), (1200, 60, 800), (1400, 70, 1000), (1600, 40, 1200), (1800, 30, 0)]
SCRIPT = [
    Step(text=_react_step("bash", {"command": "cat stats.py"}), usage=USAGE[0]),
    Step(text=_react_step("bash", {"command": FIX}), usage=USAGE[1]),
    Step(text=_react_step("run_tests", {}), usage=USAGE[2]),
    Step(text=_react_step("finish", {}), usage=USAGE[3]),
    Step(
        text="[[ ## reasoning ## ]]\nfixed\n\n[[ ## answer ## ]]\nadd fixed\n\n"
        "[[ ## completed ## ]]",
        usage=USAGE[4],
    ),
]


def _cost(usage: list[tuple[int, int, int]]) -> float:
    return sum((p - c) * _IN + c * _CACHED + o * _OUT for p, o, c in usage)


@pytest.fixture
def instrumented() -> Iterator[None]:
    yield
    dspy_integration.uninstrument()


def _agent(repo: Path) -> Any:
    def bash(command: str) -> str:
        """Run a shell command in the repository."""
        out, code = run_bash(repo, command)
        return f"exit {code}\n{out}"

    def run_tests() -> str:
        """Run the test suite."""
        return run_pytest(repo)[0]

    return dspy.ReAct("issue -> answer", tools=[bash, run_tests], max_iters=6)


def test_react_on_a_real_repo(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    repo = make_repo(tmp_path)
    with ScriptedLLM(list(SCRIPT)) as llm:
        lm = dspy.LM("openai/gpt-4o-mini", api_base=llm.openai_url, api_key="x", cache=False)
        assert agentsignals.instrument("dspy", task_id="tiny__stats-1", workspace=str(repo))
        with dspy.context(lm=lm):
            result = _agent(repo)(issue="add() subtracts")
        assert result.answer == "add fixed"
        assert llm.used == 5

    spans = captured.spans
    assert tree(spans) == [
        "trial tiny__stats-1",
        "  invoke_agent ReAct",
        "    turn 0",
        "    execute_tool bash",
        "    turn 1",
        "    execute_tool bash",
        "    turn 2",
        "    execute_tool run_tests",
        "    turn 3",
        "    execute_tool finish",
        "    turn 4",
    ]
    turns = captured.spans_of_type("turn")
    assert [attributes(t)["agent_signals.turn.module"] for t in turns] == [
        "react", "react", "react", "react", "extract.predict"
    ]  # fmt: skip
    # ReAct's next_thought and ChainOfThought's reasoning are the turns' reasoning.
    assert [attributes(t)["agent_signals.turn.reasoning.chars"] for t in turns] == [4, 4, 4, 4, 5]
    t1 = attributes(turns[1])
    assert t1["gen_ai.usage.input_tokens"] == 1200
    assert t1["gen_ai.usage.cache_read.input_tokens"] == 800
    assert t1["gen_ai.provider.name"] == "openai"
    assert t1["agent_signals.usage.cost_source"] == "framework"
    assert t1["agent_signals.usage.price_source"].startswith("litellm ")
    assert t1["agent_signals.usage.cost_usd"] == pytest.approx(_cost(USAGE[1:2]), rel=1e-9)
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.integration.name"] == "dspy"
    assert attempt["agent_signals.attempt.exit_reason"] == "submitted"
    assert attempt["agent_signals.attempt.touched_files"] == ["stats.py"]

    [record] = features.from_spans(spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.turn_count == 5
    assert b.tool_call_count == 4
    assert b.tool_sequence == ["bash", "bash", "run_tests", "finish"]
    assert b.tool_category_sequence == ["read", "shell", "test", "submit"]
    assert b.touched_files == ["stats.py"]
    assert b.shell_edit_calls == 1
    assert b.bash_mediated_edits is True
    assert b.validated_after_last_edit is True
    # The live `cat stats.py` is read by the same shell classifier as an imported one.
    assert b.files_read_before_edit == 1
    assert tok.input_tokens_total == 7000
    assert tok.output_tokens_total == 250
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 5
    assert tok.context_growth_curve == [1000, 1200, 1400, 1600, 1800]
    assert tok.cost_usd == pytest.approx(_cost(USAGE), rel=1e-9)


def test_with_openinference_dspy_on(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """OpenInference's DSPy instrumentor on at the same time: its LM (LLM) spans nest under
    our turns, never the other way round, and the tokens are counted once."""
    oi = pytest.importorskip("openinference.instrumentation.dspy")
    # OpenInference's uninstrument() (0.1.48) puts back Module.__call__ without DSPy's
    # with_callbacks wrapper, which silently turns every DSPy callback off afterwards: the
    # test restores DSPy's classes itself so later tests run on DSPy as installed.
    classes = (dspy.Module, dspy.Predict, dspy.LM, dspy.BaseLM, dspy.Adapter, dspy.Tool,
               dspy.Retrieve, dspy.ChatAdapter, dspy.JSONAdapter)  # fmt: skip
    saved = {cls: dict(vars(cls)) for cls in classes}
    instrumentor = oi.DSPyInstrumentor()
    instrumentor.instrument(tracer_provider=captured.provider)
    try:
        repo = make_repo(tmp_path)
        with ScriptedLLM(list(SCRIPT)) as llm:
            lm = dspy.LM("openai/gpt-4o-mini", api_base=llm.openai_url, api_key="x", cache=False)
            agentsignals.instrument("dspy", task_id="tiny__stats-1", workspace=str(repo))
            with dspy.context(lm=lm):
                _agent(repo)(issue="add() subtracts")
    finally:
        instrumentor.uninstrument()
        for cls, before in saved.items():
            for name in set(vars(cls)) - set(before):
                delattr(cls, name)  # e.g. LM.__call__, put on LM in place of BaseLM's
            for name, value in before.items():
                if vars(cls).get(name) is not value and callable(value):
                    setattr(cls, name, value)
    spans = captured.spans
    by_id = {s.context.span_id: s for s in spans}

    def ancestors(s: Any) -> list[Any]:
        out = []
        while s.parent is not None and s.parent.span_id in by_id:
            s = by_id[s.parent.span_id]
            out.append(s)
        return out

    llm_spans = [s for s in spans if attributes(s).get("openinference.span.kind") == "LLM"]
    assert len(llm_spans) == 5
    turns = captured.spans_of_type("turn")
    assert len(turns) == 5
    for s in llm_spans:
        # Each model call is inside exactly one of our turns, and carries its index.
        [turn] = [a for a in ancestors(s) if a in turns]
        assert (
            attributes(s)["agent_signals.turn.index"]
            == attributes(turn)["agent_signals.turn.index"]
        )
    for t in turns:
        assert not any(attributes(a).get("openinference.span.kind") == "LLM" for a in ancestors(t))
    [record] = features.from_spans(spans).attempts
    assert record.behavior.turn_count == 5
    assert record.behavior.tool_call_count == 4
    assert record.tokens.input_tokens_total == 7000
    assert record.tokens.output_tokens_total == 250
    assert record.tokens.model_calls == 5


def _fields(**values: str) -> str:
    return "".join(f"[[ ## {k} ## ]]\n{v}\n\n" for k, v in values.items()) + "[[ ## completed ## ]]"


def test_custom_modules_are_named_per_step(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """The seed's agent shape: a planner module that picks the next tool, and a patch-synthesis
    module; every turn says which module ran."""
    repo = make_repo(tmp_path)

    class Agent(dspy.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.planner = dspy.Predict("issue, history -> plan, command")
            self.patcher = dspy.ChainOfThought("issue, history -> command")

        def forward(self, issue: str) -> Any:
            history = ""
            for _ in range(2):
                step = self.planner(issue=issue, history=history)
                history += run_bash(repo, step.command)[0]
            patch = self.patcher(issue=issue, history=history)
            run_bash(repo, patch.command)
            return patch

    script = [
        Step(text=_fields(plan="look", command="cat stats.py"), usage=(500, 20, 0)),
        Step(text=_fields(plan="test", command="ls"), usage=(600, 20, 0)),
        Step(text=_fields(reasoning="flip the sign", command=FIX), usage=(700, 30, 0)),
    ]
    with ScriptedLLM(script) as llm:
        lm = dspy.LM("openai/gpt-4o-mini", api_base=llm.openai_url, api_key="x", cache=False)
        agentsignals.instrument("dspy", task_id="tiny__stats-3", workspace=str(repo))
        with dspy.context(lm=lm):
            Agent()(issue="add() subtracts")
    turns = [attributes(t) for t in captured.spans_of_type("turn")]
    assert [t["agent_signals.turn.module"] for t in turns] == [
        "planner", "planner", "patcher.predict"
    ]  # fmt: skip
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["gen_ai.agent.name"] == "Agent"
    # The shell commands ran outside any tool: the workspace still saw the edit.
    assert attempt["agent_signals.attempt.touched_files"] == ["stats.py"]
    [record] = features.from_spans(captured.spans).attempts
    assert record.behavior.turn_count == 3
    assert record.tokens.input_tokens_total == 1800
