"""Dense rewards from real runs: a scripted agent on real git repositories running real pytest,
rewards under the built-in spec checked by hand, credit assignment from a first wrong step,
the export keyed by span id, and each trainer adapter called the way its trainer calls it."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features, rewards
from agentsignals._features.record import AttemptRecord, JudgeField
from agentsignals.testing import CapturedSpans
from integration_helpers import FIX, make_repo

PYTEST = "python -m pytest -q -p no:cacheprovider"


@agentsignals.trace_tool("bash")
def bash(repo: Path, command: str) -> str:
    proc = subprocess.run(
        command, shell=True, cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )
    agentsignals.current_tool().set_exit_code(proc.returncode)
    return proc.stdout + proc.stderr


def run(repo: Path, commands: list[str], resolved: bool, task: str = "tiny__stats-1") -> None:
    """One turn per command (usage 100 in / 10 out), the command after the turn block."""
    with (
        agentsignals.trial(task),
        agentsignals.attempt(workspace=str(repo), agent_type="scripted", model_id="m") as attempt,
    ):
        for command in commands:
            with agentsignals.turn() as turn:
                turn.record_usage(input_tokens=100, output_tokens=10)
            bash(repo, command)
        attempt.set_exit_reason("submitted")
        attempt.record_outcome(resolved=resolved)


def records_and_spans(captured: CapturedSpans) -> tuple[list[AttemptRecord], list[Any]]:
    from agentsignals._spans.decode import from_readable_spans

    spans = list(from_readable_spans(captured.spans))
    return features.from_spans(spans).attempts, spans


def test_a_resolved_run_under_the_builtin_spec(tmp_path: Path, captured: CapturedSpans) -> None:
    repo = make_repo(tmp_path)
    run(repo, [PYTEST, FIX, PYTEST, "git diff"], resolved=True)
    [record], spans = records_and_spans(captured)
    result = rewards.from_spans(spans, [record])
    [traj] = result.trajectories
    turns = result.turns
    # Before the first edit test_add failed; after the sed (turn 1) it passes: the fix is
    # credited to the edit's turn. The run after the last edit is the validation (turn 2).
    assert [t.components for t in turns] == [
        {}, {"fixed_failing_test": 0.05}, {"validation": 0.03}, {"outcome": 1.0}
    ]  # fmt: skip
    assert [t.value for t in turns] == pytest.approx([0.0, 0.05, 0.03, 1.0])
    assert [t.return_ for t in turns] == pytest.approx([1.08, 1.08, 1.03, 1.0])
    assert all(t.credited for t in turns)
    assert traj.value == pytest.approx(1.08) and traj.outcome == 1.0 and traj.resolved is True
    assert traj.components == {
        "unvalidated_submit": 0.0,
        "regression": 0.0,
        "validation": 0.03,
        "fixed_failing_test": 0.05,
    }
    # No judge ran: its components are unavailable, not zero.
    assert traj.unavailable == ["memory_drift", "strange_behavior"]
    spec = rewards.builtin_spec()
    assert traj.spec == {"name": "agentsignals-builtin", "version": "1", "sha256": spec.sha256}
    turn_spans = sorted(
        (s for s in spans if s.attributes.get("agent_signals.span.type") == "turn"),
        key=lambda s: s.start_ns,
    )
    assert [t.span_id for t in turns] == [s.span_id for s in turn_spans]
    assert traj.span_id == record.span_id


def test_failed_run_regression_judge_flag_and_first_wrong_step(
    tmp_path: Path, captured: CapturedSpans
) -> None:
    repo = make_repo(tmp_path)
    (repo / "test_more.py").write_text(
        "from stats import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n"
    )
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    break_zero = "sed -i 's/a - b/a - b + 1/' stats.py"
    verbose = "python -m pytest -v -p no:cacheprovider"  # names the passed tests too
    run(repo, ["cat stats.py", verbose, break_zero, verbose, "git diff"], resolved=False)
    [record], spans = records_and_spans(captured)
    turn_spans = sorted(
        (s for s in spans if s.attributes.get("agent_signals.span.type") == "turn"),
        key=lambda s: s.start_ns,
    )
    tools = sorted(
        (s for s in spans if s.attributes.get("agent_signals.span.type") == "tool"),
        key=lambda s: s.start_ns,
    )
    # What the judge would have written: memory drift citing the edit, and the edit as the
    # first wrong step.
    record.judge = {
        "memory_drift": {"match": JudgeField(value=True, citations=[tools[2].span_id])},
        "strange_behaviors": {"match": JudgeField(value=False)},
        "first_wrong_step": {"span_id": JudgeField(value=tools[2].span_id, method="candidates")},
    }
    result = rewards.from_spans(spans, [record])
    [traj] = result.trajectories
    # test_zero passed in run 1 and fails in run 2: a regression, blamed on the edit (turn 2).
    # Validation: run 2 executed tests after the last edit. Memory drift cites the edit too.
    assert [t.components for t in result.turns] == [
        {},
        {},
        {"memory_drift": -0.05, "regression": -0.05},
        {"validation": 0.03},
        {"outcome": 0.0},
    ]
    assert traj.value == pytest.approx(-0.07) and traj.resolved is False
    assert traj.first_wrong_turn == 2
    assert [t.credited for t in result.turns] == [False, False, True, True, True]
    # Turns before the first wrong step keep only their own (zero) shaping.
    assert [t.return_ for t in result.turns] == pytest.approx([0.0, 0.0, -0.07, 0.03, 0.0])
    assert traj.unavailable == []
    assert turn_spans[2].span_id == result.turns[2].span_id


def test_shaping_is_clipped_and_turns_still_add_up(tmp_path: Path, captured: CapturedSpans) -> None:
    repo = make_repo(tmp_path)
    run(repo, [PYTEST, FIX, PYTEST], resolved=True)
    [record], spans = records_and_spans(captured)
    spec = rewards.load_spec(None)
    big = rewards.RewardSpec(
        name="big",
        version="2",
        max_total=0.1,
        components=(
            rewards.Component(name="validation", rule="validation", value=0.3),
            rewards.Component(name="fixed_failing_test", rule="fixed_failing_test", value=0.2),
        ),
        sha256="x",
    )
    result = rewards.from_spans(spans, [record], big)
    [traj] = result.trajectories
    assert traj.shaping_raw == pytest.approx(0.5) and traj.shaping == pytest.approx(0.1)
    assert sum(t.value for t in result.turns) == pytest.approx(traj.value) == pytest.approx(1.1)
    assert traj.components == pytest.approx({"validation": 0.06, "fixed_failing_test": 0.04})
    assert spec.name == "agentsignals-builtin"


def test_unverified_attempts_are_skipped_not_zeroed(
    tmp_path: Path, captured: CapturedSpans
) -> None:
    repo = make_repo(tmp_path)
    with agentsignals.trial("t"), agentsignals.attempt(workspace=str(repo)):
        with agentsignals.turn():
            pass
        bash(repo, "ls")
    [record], spans = records_and_spans(captured)
    result = rewards.from_spans(spans, [record])
    assert result.trajectories == [] and result.skipped == {
        record.attempt_id: "no verifier outcome"
    }


def test_spec_errors_are_one_line(tmp_path: Path) -> None:
    head = "name: x\nversion: 1\n"
    cases = {
        head + "components: [{name: a, rule: nope, value: 1}]": "unknown rule 'nope'",
        head + "components: [{name: a, rule: judge_flag, value: 1}]": "needs `rubric`",
        head + "components: [{name: outcome, rule: validation, value: 1}]": "is taken",
        "version: 1": "`name` is required",
        "name: x\nversion: 1\ncredit: {discount: 0}": "credit.discount",
        "name: x\nversion: 1\nextra: 1": "unknown keys ['extra']",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"spec{i}.yaml"
        path.write_text(text)
        with pytest.raises(rewards.SpecError) as err:
            rewards.load_spec(path)
        assert message in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------- export, adapters


@pytest.fixture
def reward_file(tmp_path: Path, captured: CapturedSpans) -> tuple[Path, rewards.RewardRun]:
    repo = make_repo(tmp_path)
    run(repo, [PYTEST, FIX, PYTEST, "git diff"], resolved=True)
    _, spans = records_and_spans(captured)
    result = rewards.from_spans(spans)
    path = tmp_path / "rewards.jsonl"
    rewards.write(result, path)
    return path, result


def test_export_jsonl_and_parquet_keyed_by_span_id(
    reward_file: tuple[Path, rewards.RewardRun], tmp_path: Path
) -> None:
    path, result = reward_file
    rows = rewards.read_rewards(path)
    assert [r["kind"] for r in rows] == ["turn"] * 4 + ["trajectory"]
    assert [r["span_id"] for r in rows[:4]] == [t.span_id for t in result.turns]
    assert rows[-1]["value"] == pytest.approx(1.08)
    parquet = rewards.write(result, tmp_path / "rewards.parquet")
    table = rewards.read_rewards(parquet)
    assert [r["span_id"] for r in table] == [r["span_id"] for r in rows]
    traj = table[-1]
    assert traj["component.validation"] == pytest.approx(0.03)
    assert traj["component.memory_drift"] is None  # unavailable: no judge
    assert table[0]["component.validation"] == 0.0 and table[0]["spec_version"] == "1"


def test_verl_compute_score_as_the_naive_reward_manager_calls_it(
    reward_file: tuple[Path, rewards.RewardRun],
) -> None:
    path, result = reward_file
    attempt_id = result.trajectories[0].attempt_id
    score = rewards.verl_compute_score(
        data_source="swe-bench",
        solution_str="diff --git ...",
        ground_truth=None,
        extra_info={"attempt_id": attempt_id, "num_turns": 4},
        rewards=str(path),
    )
    assert score["score"] == pytest.approx(1.08) and score["outcome"] == 1.0
    assert score["validation"] == pytest.approx(0.03) and math.isnan(score["memory_drift"])
    by_task = rewards.verl_compute_score(
        "swe", "", None, {"instance_id": "tiny__stats-1"}, rewards=str(path)
    )
    assert by_task["score"] == score["score"]
    with pytest.raises(LookupError, match="attempt_id"):
        rewards.verl_compute_score("swe", "", None, {"index": 3}, rewards=str(path))
    zero = rewards.verl_compute_score("swe", "", None, {}, rewards=str(path), missing="zero")
    assert zero["score"] == 0.0 and zero["agentsignals_found"] == 0.0
    # Per-turn values on the last token of each assistant segment.
    mask = [1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1]
    values = [t.value for t in result.turns]
    tokens = rewards.verl_token_rewards(mask, values)
    assert [i for i, v in enumerate(tokens) if v] == [4, 8, 11]  # turn 0's value is 0.0
    assert tokens[11] == pytest.approx(1.0) and sum(tokens) == pytest.approx(1.08)
    with pytest.raises(ValueError, match="3 turn rewards"):
        rewards.verl_token_rewards([1, 0, 1], values[:3])


def test_rllm_evaluator_and_step_rewards(reward_file: tuple[Path, rewards.RewardRun]) -> None:
    path, result = reward_file
    attempt_id = result.trajectories[0].attempt_id
    evaluator = rewards.RLLMEvaluator(str(path))
    out = evaluator.evaluate({"attempt_id": attempt_id}, None)
    assert out.reward == pytest.approx(1.08) and out.is_correct is True
    assert [(s.name, round(s.value, 4)) for s in out.signals] == [
        ("outcome", 1.0),
        ("fixed_failing_test", 0.05),
        ("regression", 0.0),
        ("unvalidated_submit", 0.0),
        ("validation", 0.03),
    ]
    missing = evaluator.evaluate({"attempt_id": "nope"}, None)
    assert missing.reward == 0.0 and missing.metadata == {"reason": "no_reward_record"}

    class Step:
        reward = 0.0

    class Trajectory:
        def __init__(self) -> None:
            self.steps = [Step(), Step(), Step(), Step()]
            self.reward: float | None = None

    traj = Trajectory()
    rewards.rllm_assign_step_rewards(traj, attempt_id, str(path))
    assert [s.reward for s in traj.steps] == pytest.approx([0.0, 0.05, 0.03, 1.0])
    assert traj.reward == pytest.approx(1.08)


def test_skyrl_env_steps_get_the_turn_rewards(reward_file: tuple[Path, rewards.RewardRun]) -> None:
    pytest.importorskip("skyrl_gym")
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

    class Echo(BaseTextEnv):  # a real SkyRL text environment
        def step(self, action: str) -> BaseTextEnvStepOutput:
            self.turns += 1
            return BaseTextEnvStepOutput(
                observations=[{"role": "user", "content": action}],
                reward=0.0,
                done=False,
                metadata={"k": 1},
            )

    path, result = reward_file
    env = rewards.SkyRLTurnRewards(Echo(), result.trajectories[0].attempt_id, str(path))
    env.init([{"role": "user", "content": "fix add"}])
    outs = [env.step(f"action {i}") for i in range(4)]
    assert [o["reward"] for o in outs] == pytest.approx([0.0, 0.05, 0.03, 1.0])
    assert outs[1]["metadata"]["k"] == 1
    assert outs[1]["metadata"]["agentsignals"]["components"] == {"fixed_failing_test": 0.05}
    assert env.turns == 4  # the wrapped environment's own state
    with pytest.raises(IndexError):
        env.step("one too many")


def test_trl_reward_funcs_as_grpo_calls_them(reward_file: tuple[Path, rewards.RewardRun]) -> None:
    path, result = reward_file
    attempt_id = result.trajectories[0].attempt_id
    funcs = rewards.trl_reward_funcs(str(path))
    assert [f.__name__ for f in funcs] == [
        "agentsignals_outcome",
        "agentsignals_fixed_failing_test",
        "agentsignals_memory_drift",
        "agentsignals_regression",
        "agentsignals_strange_behavior",
        "agentsignals_unvalidated_submit",
        "agentsignals_validation",
    ]
    # GRPOTrainer: prompts, completions, completion_ids, the dataset's other columns as lists,
    # and trainer_state.
    kwargs = {
        "prompts": ["p1", "p2"],
        "completions": ["c1", "c2"],
        "completion_ids": [[1], [2]],
        "attempt_id": [attempt_id, "unknown"],
        "trainer_state": object(),
    }
    by_name = {f.__name__: f(**kwargs) for f in funcs}
    assert by_name["agentsignals_outcome"] == [1.0, None]
    assert by_name["agentsignals_validation"] == [pytest.approx(0.03), None]
    assert by_name["agentsignals_memory_drift"] == [None, None]  # unavailable: no judge


def test_rewards_cli(tmp_path: Path, captured: CapturedSpans) -> None:
    from agentsignals._spans.encode import encode_otlp_json  # noqa: F401  (the writer exists)
    from agentsignals.cli import main

    assert main(["rewards", "--show-spec"]) == 0
    assert main(["rewards", "--spec", str(tmp_path / "missing.yaml"), str(tmp_path)]) == 2
