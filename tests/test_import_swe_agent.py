"""SWE-agent trajectories become the spans and features of live runs: real files (1.x with XML
function calls, 1.x function-calling replay, 0.x text actions), multi-agent and retry-agent
variants built from them, and broken copies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features, verify
from agentsignals import semconv as sc
from agentsignals._features.record import AttemptRecord
from agentsignals._import.formats import ImportProblem, TrajectoryError, mini_swe_agent, swe_agent
from agentsignals._import.run import detect_format, import_file
from agentsignals._spans.model import Span

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SWE = DATA / "swe-agent"
PYTEST = SWE / "20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432/pytest-dev__pytest-7432.traj"
FIXTURES = SWE / "swe-agent-repo-fixtures"
PYDICOM_DIR = (
    FIXTURES / "gpt4__swe-bench-dev-easy_first_only__default__t-0.00__p-0.95__c-3.00__install-1"
)
PYDICOM = PYDICOM_DIR / "pydicom__pydicom-1458.traj"
TEST_REPO = (
    FIXTURES
    / "gpt4__swe-agent__test-repo__default_from_url__t-0.00__p-0.95__c-3.00__install-1"
    / "swe-agent__test-repo-i1.traj"
)
MARSHMALLOW = (
    FIXTURES
    / "replay__marshmallow-code__marshmallow-1867__function_calling_replace__install-1"
    / "marshmallow-code__marshmallow-1867.traj"
)

needs_data = pytest.mark.skipif(
    not PYTEST.exists(), reason=f"real agent data not found at {DATA} (see SOURCES.md there)"
)


def load(path: Path) -> list[Span]:
    problems: list[ImportProblem] = []
    runs = list(swe_agent.read(path, problems.append))
    assert problems == []
    assert len(runs) == 1
    return runs[0]


def records(spans: list[Span]) -> tuple[AttemptRecord, features.FeatureSet]:
    result = features.from_spans(spans)
    main = [r for r in result.attempts if r.parent_attempt_id is None]
    assert len(main) == 1
    return main[0], result


def raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "x__x-1.traj") -> Path:
    out = tmp_path / name
    out.write_text(json.dumps(data))
    return out


# ------------------------------------------------------------------------------ real files


@needs_data
def test_pytest_7432_swe_agent_1x_steps_tools_usage_and_exit() -> None:
    data = raw(PYTEST)
    stats = data["info"]["model_stats"]
    spans = load(PYTEST)
    r, result = records(spans)
    b = r.behavior
    # Ground truth: 8 steps, 8 API calls, exit `submitted`.
    assert len(data["trajectory"]) == 8 and stats["api_calls"] == 8
    assert b.turn_count == 8 == stats["api_calls"]
    assert b.tool_call_count == 8
    assert b.tool_sequence == [
        "str_replace_editor",
        "str_replace_editor",
        "bash",
        "str_replace_editor",
        "bash",
        "str_replace_editor",
        "bash",
        "submit",
    ]
    assert b.tool_category_sequence == [
        "read", "edit", "shell", "edit", "shell", "edit", "shell", "submit",
    ]  # fmt: skip
    assert b.step_files == [
        ["/testbed/src/_pytest/skipping.py"],
        ["/testbed/reproduce.py"],
        [],
        ["/testbed/src/_pytest/skipping.py"],
        [],
        ["/testbed/reproduce_skipif.py"],
        [],
        [],
    ]
    assert b.edit_calls == 3 and b.first_edit_step == 1
    assert b.files_read_before_edit == 1
    # The two identical `cd /testbed && python reproduce.py` runs are one repeat.
    assert b.repetition_rate == pytest.approx(1 / 8)
    # Touched files and line counts come from the submitted patch; touched files in the order
    # the agent first edited them (step 1 created reproduce.py, step 3 edited skipping.py,
    # step 5 created reproduce_skipif.py).
    assert b.touched_files == ["reproduce.py", "src/_pytest/skipping.py", "reproduce_skipif.py"]
    assert [(f.path, f.lines_added, f.lines_removed) for f in b.touched_file_lines or []] == [
        ("reproduce.py", 14, 0),
        ("reproduce_skipif.py", 15, 0),
        ("src/_pytest/skipping.py", 0, 2),
    ]
    # Totals only: on the attempt, not spread over turns (no growth curve); the call count is
    # the file's api_calls.
    t = r.tokens
    assert t.input_tokens_total == stats["tokens_sent"] == 36982
    assert t.output_tokens_total == stats["tokens_received"] == 1159
    assert t.cost_usd == pytest.approx(stats["instance_cost"])
    assert t.context_growth_curve is None and t.model_calls == stats["api_calls"]
    turns = [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn"]
    assert all(sc.GEN_AI_USAGE_INPUT_TOKENS not in s.attributes for s in turns)
    assert r.infra.exit_reason == "submitted" and r.infra.final_failure_mode is None
    assert r.task_id == "pytest-dev__pytest-7432"
    assert r.treatment.agent_type == "swe-agent"
    assert r.treatment.model_id == "gpt-4o"  # what the run's config calls the served model
    assert r.treatment.attempt1_tool_cap == 75 and r.treatment.timeout_s == 1800.0
    # Thoughts are visible text, not reasoning blocks (step 6 has none); the file records no
    # reasoning of the model, so whether it had reasoning blocks is unknown.
    assert r.reasoning.has_reasoning_blocks is None and r.reasoning.reasoning_chars_total is None
    assert r.reasoning.thought_chars_total == sum(
        len(s["thought"].strip()) for s in data["trajectory"]
    )
    assert [s.attributes[sc.AGENT_SIGNALS_TURN_THOUGHT_CHARS] > 0 for s in turns] == [
        True, True, True, True, True, True, False, True,
    ]  # fmt: skip
    assert not any(sc.AGENT_SIGNALS_TURN_REASONING_PRESENT in s.attributes for s in turns)
    # No timestamps in the file: synthesized in order, and marked.
    assert all(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) is True for s in spans)
    (trial,) = result.trials
    assert trial.attempt_count == 1 and trial.first_attempt is not None
    assert trial.subagents == [] and trial.retries == []


@needs_data
def test_pytest_7432_is_not_resolved_by_the_leaderboard_results() -> None:
    """SOURCES.md: absent from the leaderboard's resolved list, so not resolved. The
    leaderboard lists resolved instances only, so absence says so only for its own run."""
    from agentsignals._import.run import import_file

    outcomes = verify.load_outcomes([SWE / "20250511_sweagent_lm_32b/results.json"])
    # Imported without a run id: nothing says this trace is of that run; left unverified.
    (r,) = verify.merge(features.from_spans(load(PYTEST)).attempts, outcomes).attempts
    assert r.verification.reward is None and r.verification.outcome_source is None
    # Imported as that run, and verified as that run: unresolved, no label, and why.
    (spans,) = import_file(PYTEST, run_id="sweagent_lm_32b").trajectories
    attempts = features.from_spans(spans).attempts
    (r,) = verify.merge(attempts, outcomes, run_id="sweagent_lm_32b").attempts
    assert r.run_id == "sweagent_lm_32b"
    assert (r.verification.reward, r.verification.patch_outcome_label) == (0.0, None)
    assert r.verification.patch_outcome_label_reason == "resolved_only"
    # Another run's reports do not touch it.
    (r,) = verify.merge(attempts, outcomes, run_id="another_run").attempts
    assert r.verification.reward is None


@needs_data
def test_swe_agent_0x_text_actions_test_repo() -> None:
    data = raw(TEST_REPO)
    r, _ = records(load(TEST_REPO))
    b = r.behavior
    assert b.turn_count == 5 == data["info"]["model_stats"]["api_calls"]
    assert b.tool_sequence == ["find_file", "open", "edit", "bash", "submit"]
    assert b.tool_category_sequence == ["search", "read", "edit", "shell", "submit"]
    # `edit 4:4` edits the file the editor has open (the path as the environment states it).
    opened = "/klieret__swe-agent-test-repo/tests/missing_colon.py"
    assert b.step_files == [[], ["tests/missing_colon.py"], [opened], [], []]
    assert b.touched_files == ["tests/missing_colon.py"]
    assert r.tokens.input_tokens_total == 52861 and r.tokens.output_tokens_total == 326
    assert r.tokens.cost_usd == pytest.approx(0.53839)
    assert r.treatment.model_id == "gpt4"  # from the 0.x run folder's name
    assert r.infra.exit_reason == "submitted"


@needs_data
def test_swe_agent_0x_pydicom_rejected_edits_are_failed_calls() -> None:
    data = raw(PYDICOM)
    r, _ = records(load(PYDICOM))
    b = r.behavior
    assert b.turn_count == 12 == len(data["trajectory"]) == data["info"]["model_stats"]["api_calls"]
    assert b.tool_sequence == [
        "create", "edit", "bash", "find_file", "open", "edit", "edit", "edit", "edit", "bash",
        "bash", "submit",
    ]  # fmt: skip
    # Three edits the linter rejected: failed, and they changed nothing.
    failed = [
        i
        for i, s in enumerate(data["trajectory"])
        if "introduced new syntax error" in s["observation"]
    ]
    assert failed == [5, 6, 7]
    assert b.tool_error_count == 3
    handler = "/pydicom__pydicom/pydicom/pixel_data_handlers/numpy_handler.py"
    assert b.step_files is not None and b.step_files[5:9] == [[handler]] * 4
    # `rm reproduce_bug.py` edits through the shell.
    assert b.shell_edit_calls == 1
    # The submitted patch is the one the run's predictions file holds.
    pred = json.loads((PYDICOM_DIR / "all_preds.jsonl").read_text().splitlines()[0])
    assert pred["model_patch"] == data["info"]["submission"]
    assert [(f.path, f.lines_added, f.lines_removed) for f in b.touched_file_lines or []] == [
        ("pydicom/pixel_data_handlers/numpy_handler.py", 3, 2)
    ]
    assert r.tokens.input_tokens_total == 122612 and r.tokens.cost_usd == pytest.approx(1.26719)


@needs_data
def test_swe_agent_function_calling_replay_marshmallow() -> None:
    data = raw(MARSHMALLOW)
    r, _ = records(load(MARSHMALLOW))
    b = r.behavior
    assert b.turn_count == 11 == data["info"]["model_stats"]["api_calls"]
    # Tool names and arguments are the model's function calls.
    assert b.tool_sequence == [
        "create", "insert", "bash", "bash", "find_file", "open", "edit", "edit", "bash", "bash",
        "submit",
    ]  # fmt: skip
    assert b.tool_category_sequence == [
        "edit", "edit", "shell", "search", "search", "read", "edit", "edit", "shell", "shell",
        "submit",
    ]  # fmt: skip
    # find_file names a folder to look in, not a file: no stated file.
    assert b.step_files is not None and b.step_files[4:6] == [
        [],
        ["src/marshmallow/fields.py"],
    ]
    assert b.tool_error_count == 1  # the first edit was rejected
    assert b.touched_files == ["src/marshmallow/fields.py"]  # CRLF patch
    # A replay model measures no usage: all-zero totals are unknown, not zero.
    assert data["info"]["model_stats"]["tokens_sent"] == 0
    assert r.tokens.input_tokens_total is None and r.tokens.cost_usd is None
    assert r.task_id == "marshmallow-code__marshmallow-1867"
    assert r.treatment.model_id == "gpt-4o"  # replay_config is an object in this file


@needs_data
@pytest.mark.parametrize("path", [PYTEST, PYDICOM, TEST_REPO, MARSHMALLOW], ids=lambda p: p.name)
def test_detection(path: Path) -> None:
    head = path.read_bytes()[:65536]
    assert swe_agent.detect(path, head)
    assert not mini_swe_agent.detect(path, head)
    assert detect_format(path) == "swe-agent"


@needs_data
def test_other_formats_are_not_taken_for_swe_agent() -> None:
    others = [
        p
        for d in ("openhands", "mini-swe-agent", "claude-code", "inspect-ai")
        for p in (DATA / d).rglob("*")
    ]
    assert others
    for p in others:
        if p.is_file():
            assert not swe_agent.detect(p, p.read_bytes()[:65536]), p


# ------------------------------------------------------------------------ built variants


@needs_data
def test_other_agents_in_the_history_become_a_nested_subagent(tmp_path: Path) -> None:
    data = raw(TEST_REPO)
    history = data["history"]
    # After the main agent's `open` (its 2nd model message), a reviewer takes two steps.
    at = [i for i, e in enumerate(history) if e["role"] == "assistant"][1] + 1

    def says(role: str, content: str, **more: str) -> dict[str, str]:
        return {"role": role, "content": content, "agent": "reviewer", **more}

    sub = [
        says("user", "Review the open file."),
        says("assistant", "look", thought="1. read it\n2. judge", action="search_file division\n"),
        says("user", "Found 1 matches"),
        says("assistant", "done", thought="Looks fine.", action="python -m pytest -q tests\n"),
        says("user", "1 passed in 0.01s"),
    ]
    data["history"] = history[:at] + sub + history[at:]
    spans = load(write(tmp_path, data))
    main, result = records(spans)
    (child,) = [r for r in result.attempts if r.parent_attempt_id is not None]
    assert child.parent_attempt_id == main.attempt_id
    assert child.attempt_index == main.attempt_index == 0
    # The main agent is unchanged: its steps are the trajectory's.
    assert main.behavior.tool_sequence == ["find_file", "open", "edit", "bash", "submit"]
    assert main.behavior.turn_count == 5
    assert child.behavior.turn_count == 2
    assert child.behavior.tool_sequence == ["search_file", "bash"]
    assert child.behavior.tool_category_sequence == ["search", "test"]
    # search_file without a file searches the open file (the environment is shared).
    assert child.behavior.step_files == [["tests/missing_colon.py"], []]
    assert child.verification.agent_test_runs == 1 and child.verification.agent_last_run_passed == 1
    assert child.tokens.input_tokens_total is None  # its usage is inside the run's totals
    # The subagent's span hangs under the tool call that started it (the main agent's open).
    by_id = {s.span_id: s for s in spans}
    child_span = by_id[child.span_id or ""]
    parent_tool = by_id[child_span.parent_span_id or ""]
    assert parent_tool.attributes[sc.GEN_AI_TOOL_NAME] == "open"
    assert child_span.name == "invoke_agent reviewer"
    (trial,) = result.trials
    assert trial.attempt_count == 1 and len(trial.subagents) == 1 and trial.retries == []


@needs_data
def test_retry_agent_attempts_are_attempts(tmp_path: Path) -> None:
    first = raw(PYTEST)
    second = copy.deepcopy(first)
    second["trajectory"] = second["trajectory"][:3]
    second["history"] = second["history"][:8]
    second["info"]["exit_status"] = "exit_cost"
    second["info"]["submission"] = None
    second["info"]["model_stats"] = {
        "instance_cost": 3.5,
        "tokens_sent": 9,
        "tokens_received": 1,
        "api_calls": 3,
    }
    data = {**copy.deepcopy(first), "attempts": [first, second]}
    data["info"]["best_attempt_idx"] = 0
    spans = load(write(tmp_path, data, "pytest-dev__pytest-7432.traj"))
    result = features.from_spans(spans)
    assert [r.attempt_index for r in result.attempts] == [0, 1]
    a0, a1 = result.attempts
    assert a0.behavior.turn_count == 8 and a1.behavior.turn_count == 3
    assert a1.infra.exit_reason == "cost_limit" and a1.infra.final_failure_mode == "exit_cost"
    # Stopped without a patch: no attempt-level diff, so the files its calls changed.
    spans_a1 = [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_ID) == a1.attempt_id]
    attempt_span = next(s for s in spans_a1 if s.span_id == a1.span_id)
    assert sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES not in attempt_span.attributes
    assert a1.behavior.touched_files == ["/testbed/reproduce.py"]
    assert a1.tokens.cost_usd == 3.5 and a1.treatment.attempt1_tool_cap is None
    assert (a0.tokens.model_calls, a1.tokens.model_calls) == (8, 3)
    (trial,) = result.trials
    assert trial.attempt_count == 2 and len(trial.retries) == 1


@needs_data
def test_requeried_steps_are_turns_without_tools_and_the_exit_step_is_no_turn(
    tmp_path: Path,
) -> None:
    data = raw(PYTEST)
    steps = data["trajectory"]
    bad_format = {
        **steps[2],
        "action": "",
        "thought": "Let me run it",
        "observation": "",
        "execution_time": 0.0,
    }
    blocked = {**steps[2], "action": "vim reproduce.py", "observation": "", "execution_time": 0.0}
    exit_step = {
        **steps[-1],
        "action": "",
        "thought": "Exit due to cost limit",
        "response": "Exit due to cost limit",
        "observation": "Exited (autosubmitted)",
    }
    data["trajectory"] = [*steps[:2], bad_format, blocked, *steps[2:7], exit_step]
    data["history"] = data["history"][:-2]  # the model's `submit` never happened
    data["history"].append(
        {
            "role": "assistant",
            "content": "Exit due to cost limit",
            "thought": "Exit due to cost limit",
            "action": "",
            "agent": "main",
            "message_type": "action",
        }
    )
    data["info"]["exit_status"] = "submitted (exit_cost)"
    r, _ = records(load(write(tmp_path, data)))
    b = r.behavior
    assert b.turn_count == 7 + 2  # 7 model steps + 2 requeried replies; the exit step is no call
    assert b.tool_sequence == [
        "str_replace_editor",
        "str_replace_editor",
        "bash",
        "str_replace_editor",
        "bash",
        "str_replace_editor",
        "bash",
    ]
    assert r.infra.exit_reason == "cost_limit"
    assert r.infra.final_failure_mode == "submitted (exit_cost)"
    assert b.touched_files == ["reproduce.py", "src/_pytest/skipping.py", "reproduce_skipif.py"]


def test_editor_and_command_parsing(tmp_path: Path) -> None:
    steps = [
        ("str_replace_editor view /r/a.py  --view_range 1 20", "1\tx", {}),
        ("str_replace_editor insert /r/a.py --insert_line 3 --new_str 'y = 2'", "edited", {}),
        (
            "str_replace_editor str_replace /r/a.py --old_str 'nope' --new_str 'z'",
            "No replacement was performed, old_str `nope` did not appear verbatim in /r/a.py.",
            {},
        ),
        ("str_replace_editor undo_edit /r/a.py", "Last edit to /r/a.py undone successfully.", {}),
        ("goto 40", "[File: /r/a.py]", {"open_file": "/r/a.py", "working_dir": "/r"}),
        ("scroll_down", "[File: /r/a.py]", {"open_file": "/r/a.py"}),
        ("search_dir needle src", "Found 2 matches", {}),
        ("grep -rn needle src | head", "src/a.py:1:needle", {}),
        ("sed -i 's/a/b/' src/b.py", "", {}),
        ("python -m pytest -q tests/test_a.py", "1 failed, 3 passed in 0.2s", {}),
        (
            "sleep 999",
            "The command 'sleep 999' was cancelled because it took more than 300 seconds.",
            {},
        ),
        ("exit_forfeit", "###", {}),
    ]
    data = {
        "trajectory": [
            {"action": a, "observation": o, "thought": f"step {i}", "response": "", "state": s}
            for i, (a, o, s) in enumerate(steps)
        ],
        "history": [],
        "info": {
            "exit_status": "exit_forfeit",
            "submission": None,
            "model_stats": {"api_calls": len(steps)},
        },
    }
    r, result = records(load(write(tmp_path, data)))
    b = r.behavior
    assert b.tool_sequence == [
        "str_replace_editor", "str_replace_editor", "str_replace_editor", "str_replace_editor",
        "goto", "scroll_down", "search_dir", "bash", "bash", "bash", "bash", "exit_forfeit",
    ]  # fmt: skip
    assert b.tool_category_sequence == [
        "read", "edit", "edit", "edit", "read", "read", "search", "search", "shell", "test",
        "shell", "other",
    ]  # fmt: skip
    assert b.step_files == [
        # search_dir's folder is no file; its hits are in its output.
        ["/r/a.py"], ["/r/a.py"], ["/r/a.py"], ["/r/a.py"], ["/r/a.py"], ["/r/a.py"], [],
        [], [], [], [], [],
    ]  # fmt: skip
    assert b.step_changed_files == [
        [],
        ["/r/a.py"],
        [],
        ["/r/a.py"],
        [],
        [],
        [],
        [],
        ["src/b.py"],
        [],
        [],
        [],
    ]
    assert b.tool_error_count == 2  # the failed str_replace, the cancelled command
    assert r.verification.agent_test_runs == 1 and r.verification.agent_last_run_failed == 1
    # A forfeit: the agent gave up (the raw label kept), and no patch is known.
    assert r.infra.exit_reason == "gave_up" and r.infra.final_failure_mode == "exit_forfeit"
    assert b.touched_files == ["/r/a.py", "src/b.py"]  # from the calls: no submission
    spans = load(write(tmp_path, data))
    errors = [s.attributes.get(sc.ERROR_TYPE) for s in spans if s.attributes.get(sc.ERROR_TYPE)]
    assert errors == ["edit_failed", "timeout"]
    # The step limit is not exceeded and api_calls matches: one turn per step.
    assert b.turn_count == len(steps) and result.trials[0].attempt_count == 1


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("submitted", "submitted"),
        ("submitted (exit_cost)", "cost_limit"),
        ("submitted (exit_context)", "context_overflow"),
        ("submitted (exit_format)", "error"),
        ("exit_cost", "cost_limit"),
        ("exit_context", "context_overflow"),
        ("exit_format", "error"),
        ("exit_error", "error"),
        ("exit_api", "error"),
        ("exit_environment_error", "error"),
        ("exit_command_timeout", "error"),
        ("exit_total_execution_time", "timeout"),
        ("exit_forfeit", "gave_up"),
        ("exit_command", None),
        ("early_exit", None),
        ("", None),
        (None, None),
    ],
)
def test_exit_status_mapping(status: str | None, reason: str | None) -> None:
    assert swe_agent.exit_reason(status) == reason


def test_an_error_exit_marks_the_attempt(tmp_path: Path) -> None:
    data = {
        "trajectory": [
            {"action": "ls", "observation": "a", "thought": "", "response": "", "state": {}}
        ],
        "info": {"exit_status": "exit_error", "submission": None, "model_stats": {}},
    }
    spans = load(write(tmp_path, data))
    attempt = next(s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt")
    assert attempt.attributes[sc.ERROR_TYPE] == "exit_error"
    assert attempt.attributes[sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON] == "error"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attempt.attributes  # no model_stats: unknown


def test_bad_steps_are_reported_and_the_rest_imported(tmp_path: Path) -> None:
    data = {
        "trajectory": [{"action": "ls", "observation": "a", "thought": ""}, "garbage", 7],
        "history": ["junk"],
        "info": {"exit_status": "submitted", "submission": ""},
    }
    problems: list[ImportProblem] = []
    (spans,) = swe_agent.read(write(tmp_path, data), problems.append)
    assert [p.message for p in problems] == [
        "attempt 0: trajectory step 1 is not an object; skipped",
        "attempt 0: trajectory step 2 is not an object; skipped",
        "attempt 0: history entries that are not objects were skipped",
    ]
    assert all(p.path.endswith("x__x-1.traj") for p in problems)
    r, _ = records(spans)
    assert r.behavior.tool_sequence == ["bash"]
    assert r.behavior.touched_files == []  # submitted an empty patch


# ------------------------------------------------------------------------- broken files


@needs_data
def test_truncated_file_names_the_file_and_line(tmp_path: Path) -> None:
    text = PYTEST.read_text()
    cut = tmp_path / PYTEST.name
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(TrajectoryError) as err:
        list(swe_agent.read(cut, lambda p: None))
    problem = err.value.problem
    assert problem.path == str(cut)
    assert problem.line == text[: len(text) // 2].count("\n") + 1
    assert "truncated JSON" in str(err.value) and str(cut) in str(err.value)
    # Through the importer: reported against the file, never raised.
    result = import_file(cut)
    assert result.format == "swe-agent" and result.trajectories == []
    assert [p.path for p in result.problems] == [str(cut)]


@needs_data
def test_corrupted_file_names_the_file_and_line(tmp_path: Path) -> None:
    lines = PYTEST.read_text().splitlines(keepends=True)
    lines[100] = lines[100].replace('"', "", 1)
    bad = tmp_path / PYTEST.name
    bad.write_text("".join(lines))
    with pytest.raises(TrajectoryError) as err:
        list(swe_agent.read(bad, lambda p: None))
    assert err.value.problem.line == 101
    assert str(err.value).startswith(f"{bad}:101: malformed JSON")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b"[1, 2]", "not a SWE-agent trajectory: the file is not an object"),
        (b'{"info": {}}', "not a SWE-agent trajectory: no 'trajectory' list and no 'attempts'"),
        (b'{"trajectory": [1]\xff}', "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.traj"
    path.write_bytes(content)
    with pytest.raises(TrajectoryError) as err:
        list(swe_agent.read(path, lambda p: None))
    assert err.value.problem.path == str(path)
    assert message in err.value.problem.message


def test_missing_file_is_a_trajectory_error(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="cannot read"):
        list(swe_agent.read(tmp_path / "gone.traj", lambda p: None))


def test_detect_is_about_head_and_suffix() -> None:
    head = b'{"trajectory": [{"action": "ls", "observation": ""'
    assert swe_agent.detect(Path("a.traj"), head)
    assert swe_agent.detect(Path("a.json"), head)
    assert swe_agent.detect(Path("a.traj"), b'{\n  "attempts": [')
    assert not swe_agent.detect(Path("a.json"), b'{"trajectory": []}')
    assert not swe_agent.detect(Path("a.traj"), b'[{"action": "run"}]')
    assert not swe_agent.detect(
        Path("a.traj.json"), b'{"info": {"mini_version": "1.0"}, "trajectory": []}'
    )
