"""The session feature group's pure parts: region grouping and convergence, the label trees
and their named thresholds, the joins across sessions, the semantic-pass hook, the stores."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from agentsignals import features
from agentsignals._features.record import RegionEdit, SessionRecord
from agentsignals._features.session import (
    SessionThresholds,
    assign_regions,
    convergence,
    link_sessions,
    merge_semantic,
    session_attribution,
    session_failure_mode,
    slope,
)
from agentsignals._features.store import JsonLinesSink, read_sessions, write_parquet
from agentsignals._import.run import import_file


def _edit(file: str, start: int, end: int, added: int, removed: int) -> RegionEdit:
    return RegionEdit(
        file=file, start_line=start, end_line=end, lines_added=added, lines_removed=removed
    )


def test_regions_group_by_overlap_and_join_when_an_edit_spans_two() -> None:
    history = [
        _edit("a.py", 10, 12, 3, 3),
        _edit("a.py", 20, 20, 1, 0),
        _edit("b.py", 10, 12, 3, 0),  # another file: another region
        _edit("a.py", 12, 20, 9, 2),  # spans both regions of a.py: one region now
    ]
    sizes = assign_regions(history)
    assert sizes == [[6, 1, 11], [3]]
    assert [e.region for e in history] == [0, 0, 1, 0]


@pytest.mark.parametrize(
    ("sizes", "trend"),
    [
        ([8, 2], "converging"),
        ([8, 8, 2], "converging"),
        ([2, 8], "expanding"),
        ([2, 6, 2], "oscillating"),
        ([4, 4], "oscillating"),  # the same lines rewritten to the same size
    ],
)
def test_convergence(sizes: list[int], trend: str) -> None:
    assert convergence(sizes) == trend


def test_slope_is_least_squares() -> None:
    assert slope([1.0]) is None
    assert slope([6, 9, 3]) == pytest.approx(-1.5)
    assert slope([1, 2, 3, 4]) == pytest.approx(1.0)


def _record(**groups: dict[str, object]) -> SessionRecord:
    return msgspec.convert({"attempt_id": "a", **groups}, SessionRecord)


def test_failure_mode_tree_never_guesses_clean_without_the_embedding_signals() -> None:
    quiet = {"repetition_rate": 0.0, "max_repeat": 1, "correction_ratio": 0.0}
    mode, rule, missing = session_failure_mode(_record(dynamics=quiet))
    assert (mode, rule) == (None, None)
    assert missing == [
        "anticipation.scope_drift or anticipation.conflation_turn",
        "dynamics.max_cp",
    ]
    # Model-free evidence decides on its own: a call repeated 3 times in a row.
    mode, _, missing = session_failure_mode(_record(dynamics={**quiet, "max_repeat": 3}))
    assert (mode, missing) == ("stuck_loop", [])


@pytest.mark.parametrize(
    ("dynamics", "anticipation", "mode"),
    [
        ({"max_cp": 0.1}, {"scope_drift": 1.0}, "clean"),
        ({"max_cp": 0.5}, {"scope_drift": 1.0}, "shifted_intent"),
        ({"max_cp": 0.5, "correction_ratio": 0.5}, {"scope_drift": 1.0}, "assumption_locked"),
        ({"max_cp": 0.1, "assumption_lock_turn": 4}, {"scope_drift": 1.0}, "assumption_locked"),
        ({"max_cp": 0.1}, {"scope_drift": 2.5}, "scope_bleed"),
        ({"max_cp": 0.1}, {"conflation_turn": 7}, "scope_bleed"),
        ({"max_cp": 0.1}, {"conflation_turn": 1}, "multi_intent_confusion"),
        ({"max_cp": 0.1, "repetition_rate": 0.4}, {"scope_drift": 1.0}, "stuck_loop"),
    ],
)
def test_failure_mode_rules(
    dynamics: dict[str, object], anticipation: dict[str, object], mode: str
) -> None:
    base = {"repetition_rate": 0.0, "max_repeat": 1, "correction_ratio": 0.0}
    record = _record(dynamics={**base, **dynamics}, anticipation=anticipation)
    assert session_failure_mode(record)[0] == mode


def test_thresholds_are_named_settings() -> None:
    record = _record(
        dynamics={"repetition_rate": 0.0, "correction_ratio": 0.0, "max_cp": 0.3},
        anticipation={"scope_drift": 1.0},
    )
    assert session_failure_mode(record)[0] == "clean"
    strict = SessionThresholds(cp_severe=0.25)
    assert session_failure_mode(record, strict)[0] == "shifted_intent"


@pytest.mark.parametrize(
    ("anticipation", "user", "expected"),
    [
        ({"prompt_underspecification": 0.8}, {}, "underspecified_prompt"),
        ({"prompt_underspecification": 0.1, "conflation_turn": 5}, {}, "scope_conflation"),
        ({"prompt_underspecification": 0.1, "task_paraphrase_accuracy": 0.2}, {},
         "agent_misunderstood"),
        ({"prompt_underspecification": 0.1, "task_paraphrase_accuracy": 0.9},
         {"session_outcome": "accepted", "correction_turns": []}, "correct_anticipation"),
        ({"prompt_underspecification": 0.1, "task_paraphrase_accuracy": 0.9},
         {"session_outcome": "accepted", "correction_turns": [1]}, "agent_misunderstood"),
    ],
)  # fmt: skip
def test_attribution_rules(
    anticipation: dict[str, object], user: dict[str, object], expected: str
) -> None:
    corrections = user.get("correction_turns")
    dynamics = {"correction_ratio": 0.0 if not corrections else 0.5}
    record = _record(anticipation=anticipation, user=user, dynamics=dynamics)
    assert session_attribution(record)[0] == expected


def test_attribution_is_gated_on_prompt_underspecification() -> None:
    record = _record(anticipation={"task_paraphrase_accuracy": 0.1})
    assert session_attribution(record) == (
        None,
        None,
        ["anticipation.prompt_underspecification"],
    )


def test_semantic_hook_merges_known_fields_and_relabels() -> None:
    record = _record(
        dynamics={"repetition_rate": 0.0, "max_repeat": 1, "correction_ratio": 0.0},
        anticipation={"scope_drift": 1.0},
        user={"tool_result_sizes": [10]},
    )
    assert record.dynamics.session_failure_mode is None
    skipped = merge_semantic(
        record,
        {
            "cp_curve": [0.0, 0.1, 0.6],
            "dynamics.max_cp": 0.6,
            "drift_onset_turn": 2,
            "task_paraphrase_accuracy": 0.7,
            "no_such_signal": 1,
            "max_cp_typo": 0.1,
            "plan_ged": "not a number",
            "session_failure_mode": "clean",  # labels are computed, never merged
        },
    )
    assert sorted(skipped) == [
        "max_cp_typo",
        "no_such_signal",
        "plan_ged",
        "session_failure_mode",
    ]
    assert record.dynamics.cp_curve == [0.0, 0.1, 0.6]
    assert record.dynamics.drift_onset_turn == 2
    assert record.anticipation.task_paraphrase_accuracy == 0.7
    assert record.dynamics.session_failure_mode == "shifted_intent"


def _joined(start_s: float, end_s: float, ident: str, **user: object) -> SessionRecord:
    return msgspec.convert(
        {
            "attempt_id": ident,
            "repository": "/repo",
            "started_at_ns": int(start_s * 1e9),
            "ended_at_ns": int(end_s * 1e9),
            "user": {"session_outcome": "abandoned_mid_session", **user},
        },
        SessionRecord,
    )


def test_joins_across_sessions_of_one_repository() -> None:
    region = [{"file": "a.py", "start_line": 5, "end_line": 9, "lines_added": 5,
               "lines_removed": 0}]  # fmt: skip
    elsewhere = [{"file": "a.py", "start_line": 50, "end_line": 50, "lines_added": 1,
                  "lines_removed": 1}]  # fmt: skip
    first = _joined(0, 100, "s1", region_edit_history=region)
    second = _joined(700, 800, "s2", region_edit_history=elsewhere)  # 600 s later
    third = _joined(200_000, 200_100, "s3", region_edit_history=region)  # days later
    other = msgspec.structs.replace(_joined(150, 160, "o"), repository="/other")
    ordered = link_sessions([third, other, second, first])
    assert [s.attempt_id for s in ordered] == ["s1", "o", "s2", "s3"]
    assert [s.user.prior_sessions_same_repo for s in (first, second, third)] == [0, 1, 2]
    assert [s.user.prior_sessions_same_region for s in (first, second, third)] == [0, 0, 1]
    assert first.user.session_reopened_within_s == 600.0
    assert second.user.session_reopened_within_s is None  # beyond 24 h
    assert first.user.session_outcome == "restarted_same_task"  # within 30 min
    assert second.user.session_outcome == "abandoned_mid_session"
    assert other.user.prior_sessions_same_repo == 0


def test_session_records_round_trip_through_files_and_parquet(
    shared_data: Path, tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow.parquet")
    result = import_file(shared_data / "pi" / "before-compaction.jsonl")
    sink = JsonLinesSink(tmp_path)
    out = features.from_spans([s for t in result.trajectories for s in t])
    for record in [*out.attempts, *out.sessions]:
        sink(record)
    sink.close()
    (back,) = read_sessions(tmp_path)
    assert back == out.sessions[0]
    assert json.loads((tmp_path / "sessions.jsonl").read_text())["user"]["user_turn_count"] == 55
    write_parquet(out.sessions, tmp_path / "s.parquet")
    table = pa.read_table(tmp_path / "s.parquet")
    assert table.column("user.user_turn_count").to_pylist() == [55]
    assert table.column("user.agent_hedging_curve").to_pylist()[0][0] is None  # no text


def test_clickhouse_schema_has_the_session_table() -> None:
    from agentsignals._store.records import SESSIONS, record_row, row_record
    from agentsignals._store.schema import SCHEMA_FILES

    assert "22_agentsignals_sessions.sql" in SCHEMA_FILES
    record = _joined(1, 2, "s1", tool_result_sizes=[3, None], user_msg_lengths=[1, 2])
    row = record_row(record)
    assert row["user"]["tool_result_sizes"] == [3, None]
    assert row["user"]["correction_turns"] == []  # a null list is stored empty...
    line = msgspec.json.encode({**row, "started_at_ns": 1_000_000_000, "ended_at_ns": 2 * 10**9})
    line = line.replace(b'"started_at":"1.000000000",', b"").replace(
        b'"ended_at":"2.000000000",', b""
    )
    back = row_record(SESSIONS, line)
    assert back == record  # ...and read back as null


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_import_git_state_on_a_pi_session_in_a_real_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[user]\n\tname = T\n\temail = t@x\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\ny = 2\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    old = {"GIT_AUTHOR_DATE": "2000-01-01T00:00:00", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00"}
    subprocess.run(
        ["git", "commit", "-qm", "base"], cwd=repo, check=True, env={**os.environ, **old}
    )
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 60))
    ms = int((now - 60) * 1000)
    diff = "  1 x = 1\n- 2 y = 2\n+ 2 y = 3\n"
    entries = [
        {"type": "session", "version": 3, "id": "s1", "timestamp": stamp, "cwd": str(repo)},
        {"type": "message", "id": "u1", "parentId": None, "timestamp": stamp,
         "message": {"role": "user", "content": [{"type": "text", "text": "set y to 3"}],
                     "timestamp": ms}},
        {"type": "message", "id": "a1", "parentId": "u1", "timestamp": stamp,
         "message": {"role": "assistant", "model": "m", "provider": "anthropic",
                     "stopReason": "toolUse", "timestamp": ms,
                     "content": [{"type": "toolCall", "id": "c1", "name": "edit",
                                  "arguments": {"path": str(repo / "a.py")}}]}},
        {"type": "message", "id": "r1", "parentId": "a1", "timestamp": stamp,
         "message": {"role": "toolResult", "toolCallId": "c1", "toolName": "edit",
                     "content": [{"type": "text", "text": "ok"}], "details": {"diff": diff},
                     "timestamp": ms}},
        {"type": "message", "id": "u2", "parentId": "r1", "timestamp": stamp,
         "message": {"role": "user", "content": [{"type": "text", "text": "thanks"}],
                     "timestamp": ms}},
    ]  # fmt: skip
    path = tmp_path / "session.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    (repo / "a.py").write_text("x = 1\ny = 3\n")  # what the edit did

    def session(git_state: bool) -> SessionRecord:
        result = import_file(path, git_state=git_state)
        (only,) = features.from_spans([s for t in result.trajectories for s in t]).sessions
        return only

    before = session(git_state=True)
    assert (before.user.output_applied, before.user.changes_reverted) == (False, False)
    edits = before.user.region_edit_history or []
    assert [(e.file, e.start_line, e.lines_added, e.lines_removed) for e in edits] == [
        (str(repo / "a.py"), 2, 1, 1)
    ]
    _git(repo, "commit", "-qam", "the agent's edit")
    after = session(git_state=True)
    assert (after.user.output_applied, after.user.changes_reverted) == (True, False)
    assert after.user.session_outcome == "accepted"
    plain = session(git_state=False)
    assert (plain.user.output_applied, plain.user.changes_reverted) == (None, None)


def test_claude_code_rewind_marks_the_message_rewound(tmp_path: Path) -> None:
    """The user went back (Esc Esc) and wrote again from the first answer: the second
    follow-up shares its parent with the first one; parallel tool results do not count."""

    def rec(kind: str, uuid: str, parent: str | None, second: int, content: object) -> dict:
        message: dict[str, object] = {"role": kind, "content": content}
        if kind == "assistant":
            message.update(
                id=f"msg_{uuid}", model="claude-x", stop_reason="end_turn",
                usage={"input_tokens": 10, "output_tokens": 5},
            )  # fmt: skip
        return {
            "type": kind, "uuid": uuid, "parentUuid": parent, "sessionId": "s", "cwd": "/r",
            "timestamp": f"2026-01-01T00:00:{second:02d}.000Z", "message": message,
        }  # fmt: skip

    records = [
        rec("user", "u1", None, 1, "first prompt"),
        rec("assistant", "a1", "u1", 2, [{"type": "text", "text": "answer one"}]),
        rec("user", "u2", "a1", 3, "follow-up that the user later took back"),
        rec("assistant", "a2", "u2", 4, [{"type": "text", "text": "answer two"}]),
        rec("user", "u3", "a1", 5, "actually, do this instead"),
        rec("assistant", "a3", "u3", 6, [{"type": "text", "text": "answer three"}]),
    ]
    path = tmp_path / "session.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = import_file(path, "claude-code")
    spans = [s for t in result.trajectories for s in t]
    turns = sorted(
        (s for s in spans if s.attributes.get("agent_signals.span.type") == "user_turn"),
        key=lambda s: s.attributes["agent_signals.user_turn.index"],
    )
    assert [s.attributes.get("agent_signals.user_turn.rewound") for s in turns] == [
        None,
        None,
        True,
    ]
    (session,) = features.from_spans(spans).sessions
    assert session.user.correction_turns == [2]  # "actually"


def test_semantic_inputs_are_the_captured_text(shared_data: Path) -> None:
    from agentsignals._features.session import semantic_inputs

    result = import_file(shared_data / "pi" / "before-compaction.jsonl", content=True)
    spans = [s for t in result.trajectories for s in t]
    inputs = semantic_inputs(spans)
    assert inputs["task"].startswith("alright, read @packages/coding-agent/src/main.ts")
    assert len(inputs["user_turns"]) == 55 and inputs["user_turns"][-1] == "ok"
    assert len(inputs["agent_turns"]) == 484 and len(inputs["agent_turn_user"]) == 484
    # The two compactions: before agent turns 173 and 303, after user messages 17 and 34
    # (the user turn each of those agent turns answers).
    assert inputs["compaction_agent_turns"] == [173, 303]
    assert inputs["compaction_turns"] == [
        inputs["agent_turn_user"][173],
        inputs["agent_turn_user"][303],
    ]
    assert inputs["agent_turn_user"][0] == 0 and inputs["agent_turn_user"][-1] == 54
    assert len(inputs["tool_calls"]) == 449 and len(inputs["call_turns"]) == 449
    assert inputs["tool_calls"][0].startswith('read {"')
    assert inputs["call_turns"] == sorted(inputs["call_turns"])
    assert inputs["reasoning"] and all(inputs["reasoning"])
    # Without content there is no text to embed (the turns are still counted).
    bare = semantic_inputs([s for t in import_file(result.path).trajectories for s in t])
    assert bare["task"] is None and bare["user_turns"] == [""] * 55
    assert set(bare["agent_turns"]) == {""} and bare["reasoning"] == []


def test_the_semantic_hook_merges_the_other_feature_groups_result(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The semantic pass is another module (built apart); a stand-in with its interface
    checks the hook: called with SessionText(**inputs) and the embedder, result merged."""
    import sys
    import types

    calls: list[tuple[object, object]] = []

    class SessionText:
        def __init__(self, **fields: object) -> None:
            self.fields = fields

    def semantic_signals(
        inputs: SessionText, embedder: object, judge: object = None
    ) -> dict[str, object]:
        calls.append((inputs, embedder))
        return {"dynamics.cp_curve": [0.0, None], "max_cp": 0.3, "drift_onset_turn": 1}

    name = "agentsignals._features.session_semantic"
    stand_in = types.ModuleType(name)
    stand_in.SessionText = SessionText  # type: ignore[attr-defined]
    stand_in.semantic_signals = semantic_signals  # type: ignore[attr-defined]
    spans = [
        s for t in import_file(shared_data / "codex" / "redacted-session-01.jsonl", content=True)
        .trajectories for s in t
    ]  # fmt: skip
    embedder = object()
    monkeypatch.setitem(sys.modules, name, None)  # absent: the fields stay null
    (plain,) = features.from_spans(spans, embedder=embedder).sessions
    assert plain.dynamics.max_cp is None and plain.semantic_source is None
    monkeypatch.setitem(sys.modules, name, stand_in)
    (session,) = features.from_spans(spans, embedder=embedder).sessions
    ((inputs, given),) = calls
    assert given is embedder
    assert isinstance(inputs, SessionText) and inputs.fields["task"] == "[REDACTED_PROMPT]"
    assert session.dynamics.cp_curve == [0.0, None] and session.dynamics.drift_onset_turn == 1
    assert session.semantic_source == name
    # max_cp 0.3 is moderate: with the scope inputs still null the tree names them.
    assert session.dynamics.session_failure_mode_missing == [
        "anticipation.scope_drift or anticipation.conflation_turn"
    ]
