"""Recovery evals: faults injected into live attempts on real git repositories with real test
runs (the scripted demo agent's tools), the events they leave, the tracker not taking them for
the agent's edits, exact undo, and the recovery signals derived from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import faults, features
from agentsignals._demo import REPO_FILES, TASK_ID, Workspace, create_repository, run_agent
from agentsignals._features.record import AttemptRecord
from agentsignals.testing import CapturedSpans, attributes

STATS = "textkit/stats.py"
FMT = "textkit/fmt.py"
FIX_MEAN = {
    "command": "str_replace",
    "path": STATS,
    "old_str": "sum(values) / (len(values) + 1)",
    "new_str": "sum(values) / len(values)",
}
FIX_PERCENT = {"command": "sed -i 's/ratio \\* 10:/ratio * 100:/' textkit/fmt.py"}
Script = list[list[tuple[str, dict[str, Any]]]]
REPRODUCE = "from textkit.stats import mean\\nprint(mean([2, 4]))\\n"


def run_script(
    repo: Path, script: Script, plan: Any = None, task_id: str = TASK_ID
) -> tuple[faults.Injector | None, list[Any]]:
    """A scripted agent: one turn per entry (100 x (i + 1) input tokens, 10 output), its tool
    calls after the turn block; a tool that raises is an observation, as in any agent loop."""
    tools = Workspace(repo)
    results: list[Any] = []
    injector = None
    with agentsignals.trial(task_id), agentsignals.attempt(workspace=str(repo)):
        if plan is not None:
            injector = faults.inject(plan)
        for i, calls in enumerate(script):
            with agentsignals.turn() as turn:
                turn.record_usage(input_tokens=100 * (i + 1), output_tokens=10)
            for name, args in calls:
                try:
                    results.append(getattr(tools, name)(**args))
                except Exception as exc:
                    results.append(exc)
    return injector, results


def record_of(captured: CapturedSpans) -> AttemptRecord:
    [record] = features.from_spans(captured.spans).attempts
    return record


def fault_events(
    captured: CapturedSpans, name: str = "agent_signals.fault.injected"
) -> list[dict[str, Any]]:
    [attempt] = captured.spans_of_type("attempt")
    return [dict(e.attributes or {}) for e in attempt.events if e.name == name]


def unittest_passes(repo: Path) -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"], cwd=repo, capture_output=True, check=False
    )
    return proc.returncode == 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return create_repository(tmp_path / "textkit")


# ------------------------------------------------------------------------- workspace faults


def test_truncate_after_first_edit(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("bash", {"command": "grep -rn 'def mean' textkit"})],
        [("read_file", {"path": STATS})],
        [("str_replace_editor", FIX_MEAN)],
        [("run_tests", {})],  # fails: stats.py lost its second half
        [("read_file", {"path": STATS})],
        [("bash", {"command": f"git checkout -q -- {STATS}"})],
        [("str_replace_editor", FIX_MEAN)],
    ]
    fixed = REPO_FILES[STATS].replace(FIX_MEAN["old_str"], FIX_MEAN["new_str"]).encode()
    injector, results = run_script(
        repo, script, faults.Fault("truncate_file", trigger="after_first_edit")
    )
    assert injector is not None
    [inj] = injector.injections
    lines = fixed.splitlines(keepends=True)
    assert inj.step == 3 and inj.files == [STATS] and inj.turn_index == 2
    assert inj.before == {STATS: fixed}
    assert inj.after == {STATS: b"".join(lines[: len(lines) // 2])}
    assert (
        inj.description == f"truncated {STATS} from {len(lines)} lines to {len(lines) // 2} lines"
    )
    assert results[3].returncode != 0  # the real test run saw the damage
    [event] = fault_events(captured)
    assert event == {
        "agent_signals.fault.id": "f0",
        "agent_signals.fault.kind": "truncate_file",
        "agent_signals.fault.trigger": "after_first_edit",
        "agent_signals.fault.step": 3,
        "agent_signals.turn.index": 2,
        "agent_signals.fault.description": inj.description,
        "agent_signals.fault.reversible": True,
        "agent_signals.fault.files": (STATS,),
        "agent_signals.fault.mentions": ("stats.py",),
    }
    # The tracker absorbed the fault's change: the test run did not edit stats.py.
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert [t["agent_signals.tool.changed_files"] for t in tools] == [
        [], [], [STATS], [], [], [STATS], [STATS]
    ]  # fmt: skip
    [checked] = fault_events(captured, "agent_signals.fault.checked")
    assert checked == {
        "agent_signals.fault.id": "f0",
        "agent_signals.fault.undone": True,
        "agent_signals.fault.restored_exactly": True,
    }
    r = record_of(captured).recovery
    assert (r.fault_injected, r.fault_kind, r.fault_step, r.fault_turn) == (
        True,
        "truncate_file",
        3,
        2,
    )
    assert r.fault_files == [STATS]
    assert (r.noticed, r.noticed_how, r.noticed_step, r.steps_to_notice) == (
        True,
        "reran_tests",
        3,
        0,
    )
    # Turns that started after the fault, up to the test run: turn 3 (400 in + 10 out).
    assert r.tokens_to_notice == 410
    assert r.steps_after_fault == 4
    assert r.tokens_after_fault == 410 + 510 + 610 + 710
    assert r.mentioned is None  # no text was recorded (content capture off)
    assert (r.fault_undone, r.fault_restored_exactly) == (True, True)
    assert (
        unittest_passes(repo) is False
    )  # percent() is still broken: the fault is gone, not the bug


def test_revert_last_edit_and_exact_undo(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("read_file", {"path": STATS})],
        [("str_replace_editor", FIX_MEAN)],
        [("read_file", {"path": STATS})],
    ]
    injector, _ = run_script(repo, script, faults.Fault("revert_last_edit"))
    assert injector is not None
    [inj] = injector.injections
    assert (repo / STATS).read_text() == REPO_FILES[STATS]  # the edit is gone
    assert inj.step == 2 and inj.after == {STATS: REPO_FILES[STATS].encode()}
    r = record_of(captured).recovery
    assert (r.noticed_how, r.noticed_step, r.steps_to_notice) == ("read_file", 2, 0)
    assert (r.fault_undone, r.fault_restored_exactly) == (False, False)
    # Undo puts the agent's edit back, byte for byte.
    undo = injector.undo()
    assert undo.restored == [STATS] and undo.exact
    assert (repo / STATS).read_bytes() == inj.before[STATS]
    # The attempt's diff was the reverted state: nothing touched.
    assert record_of(captured).behavior.touched_files == []


@pytest.mark.parametrize("mode", ["git", "folder"])
def test_revert_reverts_the_latest_edit_only(
    tmp_path: Path, captured: CapturedSpans, mode: str
) -> None:
    # The content before an edit is read only when the revert fires, from the snapshot taken
    # before that edit (git: a tree id; folder: the snapshot dict), in both tracker modes.
    if mode == "git":
        root = create_repository(tmp_path / "textkit")
    else:
        root = tmp_path / "plain"
        for rel, text in REPO_FILES.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    script: Script = [
        [("str_replace_editor", FIX_MEAN)],
        [("bash", FIX_PERCENT)],
        [("read_file", {"path": FMT})],
    ]
    injector, _ = run_script(
        root, script, faults.Fault("revert_last_edit", trigger="after_step", step=2)
    )
    assert injector is not None and injector.workspace is None  # closed at the attempt's end
    [inj] = injector.injections
    assert inj.files == [FMT] and inj.after == {FMT: REPO_FILES[FMT].encode()}
    assert (root / FMT).read_text() == REPO_FILES[FMT]  # the second edit is gone
    assert "sum(values) / len(values)" in (root / STATS).read_text()  # the first stays


def test_undo_leaves_what_the_agent_changed_since(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("read_file", {"path": FMT})],
        [("bash", {"command": f"echo '# note' >> {FMT}"})],
    ]
    injector, _ = run_script(
        repo, script, faults.Fault("corrupt_file", trigger="after_step", step=1)
    )
    assert injector is not None
    assert len(injector.injections) == 1
    text = (repo / FMT).read_text()
    assert "<<<<<<< HEAD\n" in text and text.endswith("# note\n")
    undo = injector.undo()
    assert undo.restored == [] and undo.conflicts == [FMT] and not undo.exact
    assert (repo / FMT).read_text() == text
    r = record_of(captured).recovery
    assert (r.noticed_how, r.steps_to_notice, r.fault_undone) == ("edited_file", 0, True)
    assert r.fault_restored_exactly is False


def test_corrupt_file_breaks_the_test_run(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("read_file", {"path": FMT})],
        [("run_tests", {})],
    ]
    injector, results = run_script(
        repo, script, faults.Fault("corrupt_file", trigger="after_step", step=1)
    )
    assert injector is not None
    lines = REPO_FILES[FMT].splitlines(keepends=True)
    lines.insert(len(lines) // 2, "<<<<<<< HEAD\n")
    assert (repo / FMT).read_text() == "".join(lines)
    assert "SyntaxError" in results[1].stdout or "invalid syntax" in results[1].stdout
    [event] = fault_events(captured)
    assert event["agent_signals.fault.mentions"] == ("fmt.py", "<<<<<<< HEAD")


def test_add_failing_test_after_first_passing_run(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("str_replace_editor", FIX_MEAN)],
        [("bash", FIX_PERCENT)],
        [("run_tests", {})],  # passes: the fault fires after it
        [("run_tests", {})],  # the new test fails
        [("read_file", {"path": "tests/test_regression_guard.py"})],
        [("bash", {"command": "rm tests/test_regression_guard.py"})],
        [("run_tests", {})],
    ]
    injector, results = run_script(
        repo, script, faults.Fault("add_failing_test", trigger="after_first_passing_test")
    )
    assert injector is not None
    [inj] = injector.injections
    assert inj.step == 3 and inj.files == ["tests/test_regression_guard.py"]
    assert [r.returncode for r in (results[2], results[3], results[6])] == [0, 1, 0]
    assert "test_release_version_matches_changelog" in results[3].stdout
    record = record_of(captured)
    r = record.recovery
    assert (r.noticed_how, r.noticed_step, r.steps_to_notice) == ("reran_tests", 3, 0)
    assert (r.fault_undone, r.fault_restored_exactly) == (True, True)
    # The agent's diff is its two fixes: the test it removed is not in it.
    assert record.behavior.touched_files == [STATS, FMT]
    assert unittest_passes(repo)


def test_delete_created_file(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [
            (
                "bash",
                {"command": f"printf '{REPRODUCE}' > reproduce.py"},
            )
        ],
        [("bash", {"command": "python reproduce.py"})],
    ]
    injector, results = run_script(
        repo, script, faults.Fault("delete_created_file", trigger="after_first_edit")
    )
    assert injector is not None
    [inj] = injector.injections
    assert inj.files == ["reproduce.py"] and inj.after == {"reproduce.py": None}
    assert not (repo / "reproduce.py").exists()
    assert "No such file" in results[1] or "can't open file" in results[1]
    assert injector.undo().restored == ["reproduce.py"]
    assert (repo / "reproduce.py").read_bytes() == inj.before["reproduce.py"]


def test_break_dependency_shadows_a_third_party_import(
    tmp_path: Path, captured: CapturedSpans
) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "app.py").write_text("import wrapt\n\n\ndef version():\n    return 1\n")
    (repo / "test_app.py").write_text(
        "from app import version\n\n\ndef test_version():\n    assert version() == 2\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    pytest_cmd = {"command": "python -m pytest -q -p no:cacheprovider"}
    script: Script = [
        [("read_file", {"path": "app.py"})],
        [("bash", {"command": "sed -i 's/return 1/return 2/' app.py"})],
        [("bash", pytest_cmd)],
    ]
    injector, results = run_script(repo, script, faults.Fault("break_dependency"), "app-1")
    assert injector is not None
    [inj] = injector.injections
    assert inj.files == ["wrapt.py"] and inj.mentions == ["wrapt", "ImportError"]
    assert "ImportError" in results[2] and "wrapt" in results[2]
    r = record_of(captured).recovery
    assert r.noticed_how == "reran_tests"
    assert injector.undo().restored == ["wrapt.py"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout


def test_a_fault_that_cannot_apply_waits(repo: Path, captured: CapturedSpans) -> None:
    """Nothing read yet at step 1: the truncation fires after the first read instead."""
    script: Script = [
        [("bash", {"command": "ls"})],
        [("bash", {"command": "git status --short"})],
        [("read_file", {"path": FMT})],
        [("bash", {"command": "ls"})],
    ]
    injector, _ = run_script(
        repo, script, faults.Fault("truncate_file", trigger="after_step", step=1)
    )
    assert injector is not None
    assert [i.step for i in injector.injections] == [3]
    assert record_of(captured).recovery.fault_step == 3


def test_no_fault_no_signals(repo: Path, captured: CapturedSpans) -> None:
    run_script(repo, [[("read_file", {"path": FMT})]])
    r = record_of(captured).recovery
    assert r.fault_injected is False
    assert (r.noticed, r.fault_kind, r.steps_after_fault) == (None, None, None)


# ------------------------------------------------------------------------------ tool faults


def test_tool_error_then_retry(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("read_file", {"path": FMT})],
        [("run_tests", {})],  # hit: does not run
        [("run_tests", {})],
    ]
    injector, results = run_script(
        repo, script, faults.Fault("tool_error", trigger="after_step", step=1)
    )
    assert isinstance(results[1], faults.InjectedToolError)
    assert str(results[1]) == "bash: fork: retry: Resource temporarily unavailable"
    assert isinstance(results[2], subprocess.CompletedProcess)
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert tools[1]["agent_signals.fault.kind"] == "tool_error"
    # What a failing tool shows: a blind judge reading error.type learns nothing of the fault.
    assert tools[1]["error.type"] == "RuntimeError"
    assert "agent_signals.fault.kind" not in tools[2]
    [event] = fault_events(captured)
    assert event["agent_signals.fault.step"] == 1 and "agent_signals.fault.files" not in event
    r = record_of(captured).recovery
    assert (r.fault_step, r.noticed_how, r.noticed_step, r.steps_to_notice) == (
        1,
        "reran_tests",
        2,
        0,
    )
    assert r.steps_after_fault == 1
    assert injector is not None and injector.injections[0].reversible is False


def test_tool_timeout(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [[("bash", {"command": "ls"})], [("bash", {"command": "ls"})]]
    _, results = run_script(
        repo, script, faults.Fault("tool_timeout", trigger="after_step", step=1)
    )
    assert isinstance(results[1], TimeoutError)
    assert str(results[1]) == "Command 'ls' timed out after 30 seconds"
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert tools[1]["agent_signals.tool.timed_out"] is True
    assert tools[1]["error.type"] == "TimeoutError"
    r = record_of(captured).recovery
    assert r.fault_kind == "tool_timeout" and r.noticed is False  # never retried


def test_a_tool_fault_on_a_call_not_run_through_us_stays_pending(
    repo: Path, captured: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    # An integration that only observes tool calls (or a tool() block without .run()) cannot
    # fail the call: nothing is injected, no event claims it was, and it says so once.
    with agentsignals.trial(TASK_ID), agentsignals.attempt(workspace=str(repo)):
        injector = faults.inject(faults.Fault("tool_error", trigger="after_step", step=1))
        for _ in range(3):
            with agentsignals.tool("bash", arguments={"command": "ls"}):
                pass
        with (
            agentsignals.tool("bash", arguments={"command": "ls"}) as t,
            pytest.raises(faults.InjectedToolError),
        ):
            t.run(lambda: "ran")
    assert injector is not None and len(injector.injections) == 1
    assert injector.injections[0].step == 3  # the first call run through agentsignals
    warnings = [r.getMessage() for r in caplog.records if "could not be applied" in r.getMessage()]
    assert len(warnings) == 1 and "'bash'" in warnings[0]
    assert len(fault_events(captured)) == 1


def test_stale_output_hides_the_fix(repo: Path, captured: CapturedSpans) -> None:
    script: Script = [
        [("run_tests", {})],  # fails (both bugs)
        [("str_replace_editor", FIX_MEAN)],
        [("bash", FIX_PERCENT)],
        [("run_tests", {})],  # passes for real, but the agent sees the first run's failure
        [("run_tests", {})],
    ]
    _, results = run_script(repo, script, faults.Fault("stale_output", trigger="after_first_edit"))
    # The call after the first edit is a bash call with no earlier bash call: the fault waits
    # for a call whose kind ran before (the second test run).
    assert results[3] is results[0] and results[3].returncode != 0
    assert results[4].returncode == 0
    r = record_of(captured).recovery
    assert (r.fault_kind, r.fault_step, r.noticed_how, r.steps_to_notice) == (
        "stale_output",
        3,
        "reran_tests",
        0,
    )
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    # The span records what the agent received (the stale failure).
    assert (
        tools[3]["process.exit.code"] == 1
        and tools[3]["agent_signals.fault.kind"] == "stale_output"
    )


# --------------------------------------------------------------------------------- triggers


def test_random_trigger_is_seeded_per_task(repo: Path, captured: CapturedSpans) -> None:
    fault = faults.Fault("tool_error", trigger="random", seed=7, max_step=4, id="rnd")
    step = fault.random_step(TASK_ID)
    assert 1 <= step <= 4 and step == fault.random_step(TASK_ID)
    assert {fault.random_step(f"task-{i}") for i in range(40)} == {1, 2, 3, 4}
    script: Script = [[("bash", {"command": "ls"})] for _ in range(6)]
    run_script(repo, script, fault)
    [event] = fault_events(captured)
    assert event["agent_signals.fault.step"] == step
    assert event["agent_signals.fault.trigger"] == "random"


def test_plan_filters_tasks_and_attempts(repo: Path, captured: CapturedSpans) -> None:
    plan = faults.FaultPlan(
        (faults.Fault("tool_error", trigger="after_step", step=1),), tasks=("other-*",)
    )
    injector, _ = run_script(repo, [[("bash", {"command": "ls"})]], plan)
    assert injector is None
    assert record_of(captured).recovery.fault_injected is False


# ------------------------------------------------------------------------------------ plans


def test_plan_files_and_one_line_errors(tmp_path: Path) -> None:
    plan_yaml = tmp_path / "plan.yaml"
    plan_yaml.write_text(
        "version: 1\ntasks: ['textkit__*']\nattempts: [0]\nfaults:\n"
        "  - {kind: truncate_file, trigger: after_step, step: 2, id: cut}\n"
        "  - {kind: stale_output, trigger: after_first_passing_test}\n"
    )
    plan = faults.load_plan(plan_yaml)
    assert [f.id for f in plan.faults] == ["cut", "f1"]
    assert plan.applies_to("textkit__textkit-1", 0) and not plan.applies_to("textkit__textkit-1", 1)
    assert not plan.applies_to("django__1", 0)
    as_json = tmp_path / "plan.json"
    as_json.write_text(json.dumps([{"kind": "tool_error", "trigger": "after_step", "step": 1}]))
    assert faults.load_plan(as_json).faults[0].kind == "tool_error"
    bad = {
        '{"kind": "nope"}': "unknown kind 'nope'",
        '{"kind": "tool_error", "trigger": "after_step"}': "after_step needs step: N",
        '{"kind": "tool_error", "when": 3}': "unknown keys ['when']",
        '{"faults": []}': "`faults` must be a non-empty list",
        '{"kind": "tool_error", "path": "x.py"}': "path is not for tool faults",
        '[{"kind": "tool_error", "id": "a"}, {"kind": "tool_timeout", "id": "a"}]': "used twice",
        "{not json": "not JSON",
    }
    for text, message in bad.items():
        with pytest.raises(faults.PlanError) as err:
            faults.load_plan(text)
        assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(faults.PlanError, match="cannot read"):
        faults.load_plan(tmp_path / "missing.yaml")


# --------------------------------------------------------------------- the demo, the harness


def test_the_demo_agent_under_an_installed_plan(repo: Path, captured: CapturedSpans) -> None:
    faults.install(faults.FaultPlan((faults.Fault("truncate_file"),), attempts=(1,)))
    try:
        summaries = run_agent(repo)
    finally:
        faults.uninstall()
    assert faults.installed() is None
    # Attempt 1 would have passed; its sed fix is followed by a truncation of fmt.py.
    assert [s.tests_passed for s in summaries] == [False, False]
    records = sorted(
        features.from_spans(captured.spans).attempts, key=lambda r: r.attempt_index or 0
    )
    assert [r.recovery.fault_injected for r in records] == [False, True]
    r = records[1].recovery
    assert (r.fault_kind, r.fault_files, r.fault_step, r.noticed_how) == (
        "truncate_file",
        [FMT],
        3,
        "reran_tests",
    )


def test_an_unmodified_agent_gets_faults_from_the_environment(tmp_path: Path) -> None:
    """`agentsignals faults run --plan P -- agentsignals demo`: the demo knows nothing of
    faults; the plan reaches it through AGENTSIGNALS_FAULTS."""
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "attempts": [1],
                "faults": [{"kind": "add_failing_test", "trigger": "after_first_passing_test"}],
            }
        )
    )
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "agentsignals", "faults", "run", "--plan", str(plan), "--",
         sys.executable, "-m", "agentsignals", "demo",
         "--output", str(out), "--workdir", str(tmp_path / "w")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]  # the fault fired after the passing run
    stored = features.read_store(out / "features")
    by_index = {r.attempt_index: r for r in stored.attempts}
    assert by_index[0].recovery.fault_injected is False
    r = by_index[1].recovery
    assert (r.fault_kind, r.fault_files) == ("add_failing_test", ["tests/test_regression_guard.py"])
    # The demo submitted right after its passing run: the only call after the fault.
    assert (r.fault_step, r.steps_after_fault, r.noticed) == (4, 1, False)
    assert (tmp_path / "w" / "textkit" / "tests" / "test_regression_guard.py").exists()


def test_a_bad_plan_in_the_environment_is_one_warning(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTSIGNALS_FAULTS": '{"kind": "melt"}'}
    env.pop("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", None)
    proc = subprocess.run(
        [sys.executable, "-c", "import agentsignals.faults as f; print(f.installed())"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "None\n"
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "AGENTSIGNALS_FAULTS" in line and "unknown kind 'melt'" in line


def test_faults_cli_check(tmp_path: Path) -> None:
    from agentsignals.cli import main

    assert (
        main(["faults", "check", '{"kind": "tool_error", "trigger": "after_step", "step": 2}']) == 0
    )
    assert main(["faults", "check", '{"kind": "tool_error", "trigger": "sometime"}']) == 2
    assert main(["faults", "run", "--plan", '{"kind": "tool_error"}', "--"]) == 2
