"""Hand-checked facts: real trajectories from ../shared/data read by a person, value by value,
and every signal value established that way asserted, with the evidence in a comment.

The evidence was read from the raw files (JSON by eye and with `json`/`gzip` in a shell): step
lists, commands, observations' return codes, usage blocks, timestamps. Values the file cannot
tell are asserted null.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from agentsignals import features, verify
from agentsignals._features.record import AttemptRecord
from agentsignals._import.run import import_file

MINI = (
    "mini-swe-agent/20251118_gemini-3-pro/trajs/django__django-16527/django__django-16527.traj.json"
)
MINI_GZ = (
    "corpus/gruckion__mini-swe-agent/swebench_results/20251118_gemini-3-pro-74pct/trajs/"
    "django__django-16527/django__django-16527.traj.json.gz"
)
LM32B_GZ = (
    "corpus/lgetter__swe-agent-trajectory-analysis/20250511_sweagent_lm_32b/trajs/"
    "django__django-16527/django__django-16527.traj.gz"
)
CODER = "swe-agent/20240604_CodeR/sympy__sympy-14817.traj.gz"
GOLD = "django/contrib/admin/templatetags/admin_modify.py"


def _records(path: Path, **kwargs: str) -> list[AttemptRecord]:
    result = import_file(path, **kwargs)  # type: ignore[arg-type]
    assert not result.problems, result.problems
    (spans,) = result.trajectories
    return features.from_spans(spans).attempts


def _one(path: Path) -> AttemptRecord:
    (record,) = _records(path)
    return record


@pytest.mark.parametrize("relative", [MINI, MINI_GZ])
def test_mini_swe_agent_django_16527(shared_data: Path, relative: str) -> None:
    """mini-swe-agent 1.15 + Gemini 3 Pro, resolved. The corpus keeps the same file gzipped."""
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"{path} is absent")
    r = _one(path)
    b = r.behavior
    # info.model_stats.api_calls = 22; 22 assistant messages (2, 4, ..., 44), one bash block
    # each, the last `echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git add -A && git diff`.
    assert b.turn_count == 22 == b.tool_call_count
    assert r.infra.exit_reason == "submitted"
    # Commands in order: ls -R (search), nl|sed admin_modify (read), find, find (search),
    # nl tests/admin_views/test_templatetags.py | head (read), nl|sed admin_modify (read),
    # cat <<'EOF' > reproduce_issue.py (shell, writes), python3 reproduce_issue.py (rc 1),
    # sed -i ... reproduce_issue.py, python3 reproduce_issue.py, sed -i '105s...' admin_modify
    # (the fix), nl|sed, python3 reproduce, cat <<'EOF' > verify_positive_case.py, python3
    # verify_positive_case.py, python3 tests/runtests.py admin_views.test_templatetags (test),
    # ls tests/admin_views/, grep -r save_as_new tests (search), python3 tests/runtests.py
    # admin_views.tests (test), rm reproduce_issue.py verify_positive_case.py, nl|sed, submit.
    assert b.tool_category_sequence == [
        "search", "read", "search", "search", "read", "read", "shell", "shell", "shell", "shell",
        "shell", "read", "shell", "shell", "shell", "test", "search", "search", "test", "shell",
        "read", "submit",
    ]  # fmt: skip
    # Only bash: no edit tool; the submitted diff changes admin_modify.py (+2 -1).
    assert b.edit_calls == 0 and b.bash_mediated_edits is True
    assert b.touched_files == [GOLD]
    assert b.diff_lines == 3
    # Writes read from the commands' syntax (heredocs, sed -i, rm), whatever their exit code.
    assert b.inferred_edit_steps == [6, 8, 10, 13, 19]
    assert b.step_changed_files is not None
    assert b.step_changed_files[10] == [GOLD]
    assert b.step_changed_files[19] == ["reproduce_issue.py", "verify_positive_case.py"]
    # Before the first edit (step 6): reads of admin_modify.py and test_templatetags.py; the
    # ls/find searches name no file and print no path:line hits.
    assert b.first_edit_step == 6
    assert b.files_read_before_edit == 2 and b.files_searched_before_edit == 2
    # The last solution edit is step 10; runtests.py ran at 15 and 18; the final `rm` of the
    # two scratch files is not an edit of the solution.
    assert b.validated_after_last_edit is True and b.test_runs == 2
    assert b.tool_error_count == 1  # step 7, <returncode>1</returncode>
    # The last runtests.py output: "Ran 358 tests ... OK (skipped=23)".
    assert r.verification.agent_last_run_passed == 358 - 23
    assert r.verification.agent_last_run_failed == 0
    # First call naming a file: nl -ba .../admin_modify.py, a touched file.
    assert r.anticipation.first_tool_precision is True
    # Usage of the 22 stored responses: prompt 117864, completion 3087, cached 87201,
    # reasoning 264 tokens; cost from model_stats.
    t = r.tokens
    assert (t.input_tokens_total, t.output_tokens_total, t.cache_read_tokens) == (
        117864, 3087, 87201,
    )  # fmt: skip
    assert t.cache_read_ratio == pytest.approx(87201 / 117864)  # no cache writes recorded
    assert t.cost_usd == pytest.approx(0.1158102)
    assert t.model_calls == 22
    # Gemini's `reasoning` text on the responses (1531 chars) is a reasoning block; the
    # THOUGHT text before each command is visible text.
    assert r.reasoning.has_reasoning_blocks is True
    assert r.reasoning.reasoning_tokens_total == 264
    assert r.reasoning.reasoning_chars_total == 1531
    # First response created 1763510200, last 1763510329; the last observation ends it.
    assert r.infra.wall_time_s == pytest.approx(129.002)


def test_mini_swe_agent_django_16527_verified(shared_data: Path) -> None:
    """The run's own report.json says resolved (FAIL_TO_PASS 1 success, PASS_TO_PASS 6)."""
    r = _one(shared_data / MINI)
    (v,) = verify.merge(
        [r],
        verify.load_outcomes(
            [shared_data / "mini-swe-agent/20251118_gemini-3-pro/logs/django__django-16527"]
        ),
        verify.load_dataset(shared_data / "swebench/swe-bench-lite.json"),
    ).attempts
    assert v.verification.patch_outcome_label == "correct_patch" and v.verification.reward == 1.0
    # touched_files[0] (admin_modify.py, the only file of the diff) is the gold file.
    assert v.behavior.localized_correct_file is True


def test_swe_agent_lm_32b_django_16527_gzipped(shared_data: Path) -> None:
    """SWE-agent 1.x + SWE-agent-LM-32B from the gzip corpus: 6 steps, resolved."""
    path = shared_data / LM32B_GZ
    if not path.exists():
        pytest.skip(f"{path} is absent")
    r = _one(path)
    b = r.behavior
    # model_stats: api_calls 6, tokens_sent 18695, tokens_received 1013, cost 0.0601075.
    assert b.turn_count == 6 == b.tool_call_count
    assert (r.tokens.input_tokens_total, r.tokens.output_tokens_total) == (18695, 1013)
    assert r.tokens.cost_usd == pytest.approx(0.0601075) and r.tokens.model_calls == 6
    # Steps: view admin_modify.py, create /testbed/reproduce_save_as_new.py, python it,
    # str_replace in admin_modify.py, python it again, submit.
    assert b.tool_category_sequence == ["read", "edit", "shell", "edit", "shell", "submit"]
    assert b.edit_calls == 2 and b.bash_mediated_edits is False
    assert b.first_edit_step == 1 and b.files_read_before_edit == 1
    # The submitted diff keeps the scratch script: in the order first edited, it comes first,
    # so the inventory's touched_files[0] in gold is False here although the run resolved.
    assert b.touched_files == ["reproduce_save_as_new.py", GOLD]
    assert b.diff_lines == 1 + 26
    # The diff creates the script (`--- /dev/null`): the variant that skips created files
    # finds the first edit of existing code in the gold file.
    assert b.created_files == ["reproduce_save_as_new.py"]
    (v,) = verify.merge(
        [r], [], verify.load_dataset(shared_data / "swebench/swe-bench-lite.json")
    ).attempts
    assert v.behavior.localized_correct_file is False
    assert v.behavior.localized_correct_existing_file is True
    assert b.validated_after_last_edit is False  # only `python reproduce...`, no test runner
    # The steps carry no timestamps (only execution_time per action): no wall time.
    assert r.infra.wall_time_s is None
    # `thought` is visible text; the file records no reasoning of the model.
    assert r.reasoning.has_reasoning_blocks is None and r.reasoning.thought_chars_total
    assert r.infra.exit_reason == "submitted"


def test_coder_multi_agent_counts_each_step_once(shared_data: Path) -> None:
    """CodeR (SWE-agent based): the trajectory lists all 21 steps of five agents; history
    assistant messages: Manager 2 (plan, submit), Reproducer 4, Debugger 8, Programmer 5,
    Tester 2 = 21 = info.model_stats.api_calls."""
    records = _records(shared_data / CODER)
    manager = next(r for r in records if r.parent_attempt_id is None)
    subs = [r for r in records if r.parent_attempt_id == manager.attempt_id]
    assert manager.behavior.turn_count == 2
    assert [s.behavior.turn_count for s in subs] == [4, 8, 5, 2]
    assert manager.behavior.turn_count + sum(s.behavior.turn_count or 0 for s in subs) == 21
    # model_stats counts every agent's calls together: on the manager (the run's totals).
    assert manager.tokens.model_calls == 21
    assert (manager.tokens.input_tokens_total, manager.tokens.output_tokens_total) == (
        144271, 3599,
    )  # fmt: skip
    assert manager.tokens.cost_usd == pytest.approx(1.55068)
    # The fix was made by the Programmer's `edit 821:835` (an editor command): the manager's
    # submitted diff is not a bash-mediated edit.
    assert manager.behavior.touched_files == ["sympy/printing/pretty/pretty.py"]
    assert manager.behavior.bash_mediated_edits is False
    reproducer, _debugger, programmer, _tester = subs
    assert reproducer.behavior.edit_calls == 2  # create reproduce.py, edit 1:1
    assert programmer.behavior.edit_calls == 1
    # The outcome of the trial goes to the manager (it submitted), never to a subagent; the
    # instance is not in the submission's resolved list.
    outcome = verify.Outcome(instance_id="sympy__sympy-14817", source="r.json", reward=0.0)
    merged = verify.merge(records, [outcome])
    rewarded = [r for r in merged.attempts if r.verification.reward is not None]
    assert [r.attempt_id for r in rewarded] == [manager.attempt_id]


def test_openhands_basic(shared_data: Path) -> None:
    """OpenHands basic.json: one `edit` of /workspace/game_2048.py, then `finish`."""
    r = _one(shared_data / "openhands/basic.json")
    b = r.behavior
    assert b.turn_count == 2 and b.tool_category_sequence == ["edit", "submit"]
    assert b.touched_files == ["/workspace/game_2048.py"] and b.bash_mediated_edits is False
    # Two responses: prompt 3486 (cache_creation 3482, cache_read 0) and 4646 (creation
    # 1158, read 3482); completions 1135 and 177.
    t = r.tokens
    assert (t.input_tokens_total, t.output_tokens_total) == (3486 + 4646, 1135 + 177)
    assert (t.cache_read_tokens, t.cache_write_tokens) == (3482, 3482 + 1158)
    # The inventory's cacheRead / (input + cacheRead), input without the cache: 4 + 6 = 10.
    assert t.cache_read_ratio == pytest.approx(3482 / (10 + 3482))
    # Responses recorded without reasoning: no reasoning blocks; the actions' `thought`
    # (102 + 536 chars) is visible text.
    assert r.reasoning.has_reasoning_blocks is False
    assert r.reasoning.thought_chars_total == 102 + 536
    # 22:44:56.900854 (the task) to 22:45:18.405685 (finish).
    assert r.infra.wall_time_s == pytest.approx(21.504831)
    assert r.infra.exit_reason == "submitted"


def test_claude_code_tool_heavy(shared_data: Path) -> None:
    """A Claude Code session: 4 API responses (msg_0167..., msg_01NU..., msg_01Lb...,
    msg_019B...), six tool uses, no edit."""
    r = _one(shared_data / "claude-code/tool_heavy.jsonl")
    b = r.behavior
    assert b.turn_count == 4 and b.tool_call_count == 6
    # Bash `mix phx.server`, Bash `tail -5 /tmp/.../bae407b.output` (a read), WebSearch,
    # Glob, Read app.js, WebFetch.
    assert b.tool_sequence == ["Bash", "Bash", "WebSearch", "Glob", "Read", "WebFetch"]
    assert b.tool_category_sequence == ["shell", "read", "search", "search", "read", "other"]
    assert b.files_read_before_edit == 2 and b.first_edit_step is None
    assert b.edit_calls == 0 and b.touched_files == []
    # usage per response (input, cache read, cache creation, output): (3, 17915, 7883, 27),
    # (1, 25798, 208, 1), (3, 18014, 8490, 11), (47, 26504, 1115, 173).
    t = r.tokens
    assert t.input_tokens_total == 25801 + 26007 + 26507 + 27666
    assert t.cache_read_tokens == 17915 + 25798 + 18014 + 26504
    assert t.cache_write_tokens == 7883 + 208 + 8490 + 1115
    assert t.output_tokens_total == 27 + 1 + 11 + 173
    assert t.cache_read_ratio == pytest.approx(88231 / (88231 + 3 + 1 + 3 + 47))
    # One thinking block of 155 characters.
    assert r.reasoning.has_reasoning_blocks is True and r.reasoning.reasoning_chars_total == 155
    assert r.infra.exit_reason == "user_stopped"


def test_codex_session(shared_data: Path) -> None:
    """The Codex rollout: one user message, one answer from gpt-5.5, no tool call."""
    r = _one(shared_data / "codex/redacted-session-01.jsonl")
    assert r.behavior.turn_count == 1 and r.behavior.tool_call_count == 0
    assert r.treatment.model_id == "gpt-5.5"


def test_claude_code_subagent_in_its_file_and_in_progress_is_one(
    shared_data: Path, tmp_path: Path
) -> None:
    """subagent.jsonl streams subagent afb92ff as agent_progress records; give the same
    transcript its own file too (`<session>/subagents/agent-afb92ff.jsonl`, as newer Claude
    Code writes it): one subagent attempt, not two."""
    source = shared_data / "claude-code/subagent.jsonl"
    alone = _records(source)
    assert len([r for r in alone if r.parent_attempt_id]) == 1
    session = tmp_path / source.name
    shutil.copy(source, session)
    inner = []
    session_id = None
    for line in source.read_text().splitlines():
        record = json.loads(line)
        session_id = session_id or record.get("sessionId")
        data = record.get("data") or {}
        if record.get("type") == "progress" and data.get("type") == "agent_progress":
            inner.append({**data["message"], "agentId": "afb92ff", "isSidechain": True})
    folder = tmp_path / session.stem / "subagents"
    folder.mkdir(parents=True)
    (folder / "agent-afb92ff.jsonl").write_text("\n".join(map(json.dumps, inner)) + "\n")
    both = _records(session)
    subs = [r for r in both if r.parent_attempt_id]
    assert len(subs) == 1
    assert len(both) == len(alone)


def test_claude_code_compact_boundary_is_a_compaction(shared_data: Path, tmp_path: Path) -> None:
    """A `compact_boundary` system record before the session's second API response: that
    call works from the compacted context."""
    source = shared_data / "claude-code/tool_heavy.jsonl"
    lines = source.read_text().splitlines()
    records = [json.loads(x) for x in lines]
    second = [i for i, r in enumerate(records) if r.get("type") == "assistant"][1]
    boundary = {
        "type": "system",
        "subtype": "compact_boundary",
        "sessionId": records[second]["sessionId"],
        "uuid": "compact-1",
        "timestamp": records[second]["timestamp"],
        "content": "Conversation compacted",
    }
    out = tmp_path / "compacted.jsonl"
    out.write_text("\n".join([*lines[:second], json.dumps(boundary), *lines[second:]]) + "\n")
    assert _one(source).tokens.compactions == 0
    assert _one(out).tokens.compactions == 1


def test_pi_model_is_the_sessions_not_an_aborted_response(
    shared_data: Path, tmp_path: Path
) -> None:
    """pi session 01 (model_change to gpt-5.5, one answer from gpt-5.5): an aborted, empty
    response from another model before the answer does not make the session's model."""
    source = shared_data / "pi/redacted-session-01.jsonl"
    lines = source.read_text().splitlines()
    records = [json.loads(x) for x in lines]
    answer = next(
        i for i, r in enumerate(records) if (r.get("message") or {}).get("role") == "assistant"
    )
    aborted = json.loads(lines[answer])
    aborted["id"] = "aborted-1"
    aborted["message"] = {
        **aborted["message"],
        "model": "some-default-model",
        "content": [],
        "stopReason": "aborted",
    }
    real = json.loads(lines[answer])
    real["parentId"] = "aborted-1"
    out = tmp_path / "session.jsonl"
    out.write_text(
        "\n".join([*lines[:answer], json.dumps(aborted), json.dumps(real), *lines[answer + 1 :]])
        + "\n"
    )
    assert _one(source).treatment.model_id == "gpt-5.5"
    assert _one(out).treatment.model_id == "gpt-5.5"


def test_gzip_corpus_matches_its_labels(shared_data: Path) -> None:
    """labels.csv (from the runs' own files): api_calls is the turn count, has_patch says
    whether the submitted diff touched files, exit_status the reason."""
    import csv

    corpus = shared_data / "corpus"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is absent")
    with (corpus / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # all 832
        path = corpus / row["trajectory"]
        with gzip.open(path, "rb") as fh:
            assert fh.read(1) == b"{"
        r = _one(path)
        assert r.behavior.turn_count == int(row["api_calls"]), row["trajectory"]
        if row["has_patch"] == "1":
            assert r.behavior.touched_files, row["trajectory"]
        if row["exit_status"].lower() == "submitted":
            assert r.infra.exit_reason == "submitted", row["trajectory"]
