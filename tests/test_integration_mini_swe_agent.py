"""mini-swe-agent's real DefaultAgent loop (LiteLLM model, local environment) against a scripted
model server on loopback, on a real git repository, traced by
`agentsignals.instrument("mini_swe_agent")`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import mini_swe_agent as integration
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import FIX, make_repo, tree
from scripted_llm import ScriptedLLM, Step

pytest.importorskip("minisweagent")
from minisweagent.agents.default import DefaultAgent
from minisweagent.environments.local import LocalEnvironment
from minisweagent.models.litellm_model import LitellmModel

_IN, _CACHED, _OUT = 0.15e-6, 0.075e-6, 0.6e-6
USAGE = [(1000, 50, 0), (1200, 60, 800), (1400, 70, 1000), (1600, 40, 1200)]
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff"
PYTEST = "python -m pytest -q -p no:cacheprovider test_stats.py"
SCRIPT = [
    Step(
        text="THOUGHT: read the function first",
        tools=[("bash", {"command": "cat stats.py"})],
        usage=USAGE[0],
        reasoning="1. read stats.py\n2. fix the sign",
    ),
    Step(tools=[("bash", {"command": FIX})], usage=USAGE[1]),
    Step(tools=[("bash", {"command": PYTEST})], usage=USAGE[2]),
    Step(tools=[("bash", {"command": SUBMIT})], usage=USAGE[3]),
]


def _cost(usage: list[tuple[int, int, int]]) -> float:
    return sum((p - c) * _IN + c * _CACHED + o * _OUT for p, o, c in usage)


@pytest.fixture
def instrumented() -> Iterator[None]:
    yield
    integration.uninstrument()


def _agent(llm: ScriptedLLM, repo: Path, **config: Any) -> DefaultAgent:
    model = LitellmModel(
        model_name="openai/gpt-4o-mini",
        model_kwargs={"api_base": llm.openai_url, "api_key": "x"},
    )
    env = LocalEnvironment(cwd=str(repo))
    return DefaultAgent(
        model,
        env,
        system_template="You fix bugs.",
        instance_template="{{task}}",
        **config,
    )


def test_a_submitted_run(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("mini_swe_agent", task_id="tiny__stats-1")
    with ScriptedLLM(list(SCRIPT)) as llm:
        agent = _agent(llm, repo)
        info = agent.run("add() subtracts")
    assert info["exit_status"] == "Submitted"
    assert "a + b" in info["submission"]
    # The agent's own objects are back after the run.
    assert type(agent.model) is LitellmModel and type(agent.env) is LocalEnvironment

    spans = captured.spans
    assert tree(spans) == [
        "trial tiny__stats-1",
        "  invoke_agent DefaultAgent",
        "    turn 0",
        "    execute_tool bash",
        "    turn 1",
        "    execute_tool bash",
        "    turn 2",
        "    execute_tool bash",
        "    turn 3",
        "    execute_tool bash",
    ]
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "submitted"
    assert attempt["agent_signals.integration.name"] == "mini_swe_agent"
    assert attempt["gen_ai.request.model"] == "openai/gpt-4o-mini"
    assert attempt["agent_signals.attempt.touched_files"] == ["stats.py"]
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert [t["process.exit.code"] for t in tools] == [0, 0, 0, 0]
    assert [t.get("agent_signals.tool.edit_mode") for t in tools] == [
        None, "shell_mediated", None, None
    ]  # fmt: skip
    assert [t["gen_ai.tool.call.id"] for t in tools] == [f"call_{i}_0" for i in range(4)]
    # As the importer reads it: the provider's reasoning text is the reasoning block; the
    # visible THOUGHT is a thought, not reasoning; plan steps are counted over both.
    first = attributes(captured.spans_of_type("turn")[0])
    assert first["agent_signals.turn.reasoning.chars"] == len("1. read stats.py\n2. fix the sign")
    assert first["agent_signals.turn.thought.chars"] == len("read the function first")
    assert first["agent_signals.turn.reasoning.plan_steps"] == 2
    turn = attributes(captured.spans_of_type("turn")[2])
    assert turn["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert turn["agent_signals.usage.cost_source"] == "framework"
    # mini-swe-agent's own cost total is what the turns add up to.
    costs = [attributes(t)["agent_signals.usage.cost_usd"] for t in captured.spans_of_type("turn")]
    assert sum(costs) == pytest.approx(agent.cost, rel=1e-12)

    [record] = features.from_spans(spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.turn_count == 4
    assert b.tool_call_count == 4
    assert b.tool_category_sequence == ["read", "shell", "test", "submit"]
    assert b.touched_files == ["stats.py"]
    assert b.shell_edit_calls == 1
    assert b.bash_mediated_edits is True
    assert b.validated_after_last_edit is True
    # The live `cat stats.py` is read by the same shell classifier as an imported one.
    assert b.files_read_before_edit == 1
    assert tok.input_tokens_total == 5200
    assert tok.output_tokens_total == 220
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 4
    assert tok.cost_usd == pytest.approx(_cost(USAGE), rel=1e-9)
    assert record.infra.exit_reason == "submitted"


def test_step_limit_and_a_failing_command(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    repo = make_repo(tmp_path)
    agentsignals.instrument("mini_swe_agent", task_id="tiny__stats-2")
    script = [
        Step(tools=[("bash", {"command": "cat missing.py"})]),
        Step(tools=[("bash", {"command": "ls"})]),
    ]
    with ScriptedLLM(script) as llm:
        info = _agent(llm, repo, step_limit=2).run("add() subtracts")
    assert info["exit_status"] == "LimitsExceeded"
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "max_turns"
    first = attributes(captured.spans_of_type("tool")[0])
    assert first["process.exit.code"] == 1
    assert first["error.type"] == "exit_code_1"
    assert len(captured.spans_of_type("turn")) == 2  # the limit stopped it before a third call


def test_live_run_and_its_imported_trajectory_agree(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """The same run, traced live and imported from the `.traj.json` mini-swe-agent saved: the
    records agree on every signal both can see (the live run adds what only the workspace
    shows)."""
    from agentsignals._import.run import import_file

    repo = make_repo(tmp_path)
    traj = tmp_path / "run" / "tiny__stats-1.traj.json"
    agentsignals.instrument("mini_swe_agent", task_id="tiny__stats-1")
    with ScriptedLLM(list(SCRIPT)) as llm:
        _agent(llm, repo, output_path=traj).run("add() subtracts")
    [live] = features.from_spans(captured.spans).attempts
    result = import_file(traj)
    assert not result.problems
    [spans] = result.trajectories
    [imported] = features.from_spans(spans).attempts

    lb, ib = live.behavior, imported.behavior
    for name in ("turn_count", "tool_call_count", "tool_sequence", "tool_category_sequence",
                 "shell_edit_calls", "validated_after_last_edit"):  # fmt: skip
        assert getattr(lb, name) == getattr(ib, name), name
    for name in ("input_tokens_total", "output_tokens_total", "cache_read_tokens",
                 "model_calls", "context_growth_curve"):  # fmt: skip
        assert getattr(live.tokens, name) == getattr(imported.tokens, name), name
    assert live.tokens.cost_usd == pytest.approx(imported.tokens.cost_usd, rel=1e-12)
    assert live.reasoning == imported.reasoning
    assert live.infra.exit_reason == imported.infra.exit_reason == "submitted"
    # Edits: the import reads `sed -i` from the command text, the live run measures the repo.
    assert ib.touched_files == lb.touched_files == ["stats.py"]


# ----------------------------------------------------------------- recovery evals (faults)

PYTEST_ALL = "python -m pytest -q -p no:cacheprovider"


def test_faults_in_the_real_loop(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    """A failing test appears after the first passing run (workspace fault), and the command
    after that times out (tool fault); the agent sees both as mini-swe-agent would show them."""
    from agentsignals import faults

    repo = make_repo(tmp_path)
    assert agentsignals.instrument("mini_swe_agent", task_id="tiny__stats-1")
    script = [
        Step(tools=[("bash", {"command": "cat stats.py"})]),
        Step(tools=[("bash", {"command": FIX})]),
        Step(tools=[("bash", {"command": PYTEST})]),  # passes: a failing test is added
        Step(tools=[("bash", {"command": PYTEST_ALL})]),  # times out (tool fault)
        Step(tools=[("bash", {"command": PYTEST_ALL})]),  # the new test fails
        Step(tools=[("bash", {"command": "rm test_regression_guard.py"})]),
        Step(tools=[("bash", {"command": SUBMIT})]),
    ]
    plan = faults.FaultPlan(
        (
            faults.Fault("add_failing_test", trigger="after_first_passing_test", id="test"),
            faults.Fault("tool_timeout", trigger="after_first_passing_test", id="slow"),
        )
    )
    faults.install(plan)
    try:
        with ScriptedLLM(list(script)) as llm:
            info = _agent(llm, repo).run("add() subtracts")
            requests = list(llm.requests)
    finally:
        faults.uninstall()
    assert info["exit_status"] == "Submitted"
    assert not (repo / "test_regression_guard.py").exists()
    # What the model was shown after each command (the observation of call i is the last
    # message of request i + 1).
    seen = [json.dumps(r["messages"][-1]) for r in requests[1:]]
    assert "Command 'python -m pytest -q -p no:cacheprovider' timed out after 30 seconds" in seen[3]
    assert "test_release_version_matches_changelog" in seen[4] and "1 failed" in seen[4]
    [attempt] = captured.spans_of_type("attempt")
    events = [
        dict(e.attributes or {}) for e in attempt.events if e.name == "agent_signals.fault.injected"
    ]
    assert [(e["agent_signals.fault.id"], e["agent_signals.fault.step"]) for e in events] == [
        ("test", 3),
        ("slow", 3),
    ]
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert tools[3]["agent_signals.tool.timed_out"] is True
    assert tools[3]["agent_signals.fault.kind"] == "tool_timeout"
    assert tools[3]["error.type"] == "TimeoutExpired"
    # The added file is the fault's, not a change of the timed-out call.
    assert [t["agent_signals.tool.changed_files"] for t in tools] == [
        [], ["stats.py"], [], [], [], ["test_regression_guard.py"], []
    ]  # fmt: skip
    [record] = features.from_spans(captured.spans).attempts
    r = record.recovery
    assert (r.fault_count, r.fault_kind, r.fault_step) == (2, "add_failing_test", 3)
    # The timed-out run saw the timeout, not the new test: the next run is the evidence.
    assert (r.noticed_how, r.noticed_step, r.steps_to_notice) == ("reran_tests", 4, 1)
    assert (r.fault_undone, r.fault_restored_exactly) == (True, True)
    assert r.steps_after_fault == 4
    assert record.behavior.touched_files == ["stats.py"]
