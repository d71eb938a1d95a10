"""Claude Code sessions become trial/attempt/turn/tool spans: every real session in
../shared/data checked against what the file itself says (responses, tool calls, token sums,
tool order, the subagent), then the subagent layouts, and truncated or corrupted copies."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._import.formats import ImportProblem, TrajectoryError, pi
from agentsignals._import.formats import claude_code as cc
from agentsignals._spans.model import STATUS_ERROR, Span

CC = "claude-code"
REAL = ["short.jsonl", "tool_heavy.jsonl", "subagent.jsonl", "redacted-session-01.jsonl"]
USAGE = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _import(path: Path) -> tuple[list[list[Span]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    return list(cc.read(path, problems.append)), problems


def _type(span: Span) -> Any:
    return span.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE)


def _facts(lines: list[str]) -> dict[str, Any]:
    """What the main conversation of a session says, read straight from its lines: API
    responses (distinct message ids), their usage counted once (the largest value any line of
    a response repeats), and the tool_use blocks in order."""
    usage: dict[str, Counter[str]] = {}
    tools: list[str] = []
    session = None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        session = session or record.get("sessionId")
        if record.get("type") != "assistant" or record.get("isSidechain"):
            continue
        message = record["message"]
        if message.get("model") == "<synthetic>":
            continue
        counts = usage.setdefault(message["id"], Counter())
        for key in USAGE:
            counts[key] = max(counts[key], message["usage"].get(key, 0))
        tools += [b["name"] for b in message["content"] if b["type"] == "tool_use"]
    total = Counter[str]()
    for counts in usage.values():
        total.update(counts)
    return {"responses": len(usage), "tools": tools, "usage": total, "session": session}


def _genai_input(usage: Counter[str]) -> int:
    """GenAI input tokens include the cache: Anthropic's input + cache read + cache write."""
    return (
        usage["input_tokens"]
        + usage["cache_read_input_tokens"]
        + usage["cache_creation_input_tokens"]
    )


def _trial(spans: list[Span]) -> features.TrialRecord:
    result = features.from_spans(spans)
    assert len(result.trials) == 1
    return result.trials[0]


# ---------------------------------------------------------------------------- real sessions


@pytest.mark.parametrize("name", REAL)
def test_real_session_matches_the_file(shared_data: Path, name: str) -> None:
    path = shared_data / "claude-code" / name
    assert cc.detect(path, path.read_bytes()[:65536])
    trajectories, problems = _import(path)
    assert problems == []
    assert len(trajectories) == 1
    spans = trajectories[0]
    facts = _facts(path.read_text().splitlines())

    trial_spans = [s for s in spans if _type(s) == "trial"]
    assert len(trial_spans) == 1 and trial_spans[0].parent_span_id is None
    trial_attrs = trial_spans[0].attributes
    assert trial_attrs[sc.AGENT_SIGNALS_TASK_ID] == facts["session"]
    assert trial_attrs[sc.AGENT_SIGNALS_IMPORT_FORMAT] == CC
    assert trial_attrs[sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT] == 1
    assert not any(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME in s.attributes for s in spans)
    assert len({s.trace_id for s in spans}) == 1

    trial = _trial(spans)
    assert trial.retries == []
    first = trial.first_attempt
    assert first is not None
    assert first.behavior.turn_count == facts["responses"]
    assert first.behavior.tool_call_count == len(facts["tools"])
    assert (first.behavior.tool_sequence or []) == facts["tools"]
    usage = facts["usage"]
    assert first.tokens.input_tokens_total == _genai_input(usage)
    assert first.tokens.output_tokens_total == usage["output_tokens"]
    assert first.tokens.cache_read_tokens == usage["cache_read_input_tokens"]
    assert first.tokens.cache_write_tokens == usage["cache_creation_input_tokens"]
    assert first.tokens.model_calls == facts["responses"]
    assert first.treatment.agent_type == CC
    assert first.started_at_ns is not None and first.ended_at_ns is not None
    assert first.ended_at_ns >= first.started_at_ns
    attempt_span = next(s for s in spans if s.span_id == first.span_id)
    assert attempt_span.attributes[sc.GEN_AI_CONVERSATION_ID] == facts["session"]
    assert attempt_span.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"


def test_split_response_lines_are_one_turn_with_usage_counted_once(shared_data: Path) -> None:
    # short.jsonl: five assistant lines (text, thinking, text, Bash, Glob) of one response.
    spans = _import(shared_data / "claude-code" / "short.jsonl")[0][0]
    turns = [s for s in spans if _type(s) == "turn"]
    assert len(turns) == 1
    turn = turns[0].attributes
    assert turn[sc.GEN_AI_USAGE_INPUT_TOKENS] == 3 + 13835 + 11515  # input + cache write + read
    assert turn[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 11515
    assert turn[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 13835
    assert turn[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 13
    assert turn[sc.GEN_AI_REQUEST_MODEL] == "claude-opus-4-6"
    assert turn[sc.AGENT_SIGNALS_TURN_REASONING_PRESENT] is True
    assert turn[sc.AGENT_SIGNALS_TURN_REASONING_CHARS] > 0
    # The turn starts at the prompt that triggered the request, and ends at its last line.
    assert turns[0].start_ns < turns[0].end_ns


def test_rejected_tools_and_user_interrupt(shared_data: Path) -> None:
    spans = _import(shared_data / "claude-code" / "short.jsonl")[0][0]
    tools = [s for s in spans if _type(s) == "tool"]
    assert [t.attributes[sc.GEN_AI_TOOL_NAME] for t in tools] == ["Bash", "Glob"]
    assert all(t.attributes[sc.ERROR_TYPE] == "user_rejected" for t in tools)
    assert all(t.status_code == STATUS_ERROR for t in tools)
    assert tools[0].attributes[sc.GEN_AI_TOOL_CALL_ID] == "toolu_0116Hyi5v8ut7Ffb7d8qV1Sc"
    first = _trial(spans).first_attempt
    assert first is not None
    assert first.behavior.tool_error_count == 2
    assert first.infra.exit_reason == "user_stopped"


def test_tool_arguments_files_and_categories(shared_data: Path) -> None:
    spans = _import(shared_data / "claude-code" / "tool_heavy.jsonl")[0][0]
    tools = {s.attributes[sc.GEN_AI_TOOL_NAME]: s.attributes for s in spans if _type(s) == "tool"}
    read = tools["Read"]
    assert read[sc.AGENT_SIGNALS_TOOL_FILES] == ["/home/marco/projects/spotter/assets/js/app.js"]
    assert read[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "read"
    assert read[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] > 0
    assert tools["Bash"][sc.AGENT_SIGNALS_TOOL_CATEGORY] in ("shell", "read")
    assert tools["Glob"][sc.AGENT_SIGNALS_TOOL_CATEGORY] == "search"
    assert all(sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT in a for a in tools.values())
    first = _trial(spans).first_attempt
    assert first is not None
    assert first.infra.exit_reason == "user_stopped"  # ends on "[Request interrupted by user]"


def test_streamed_subagent_is_a_nested_attempt_apart_from_retries(shared_data: Path) -> None:
    path = shared_data / "claude-code" / "subagent.jsonl"
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert not any(r.get("isSidechain") for r in records)  # no sidechains: streamed progress
    task = next(
        b
        for r in records
        if r.get("type") == "assistant"
        for b in r["message"]["content"]
        if b["type"] == "tool_use" and b["name"] == "Task"
    )
    outcome = next(
        r["toolUseResult"]
        for r in records
        if r.get("type") == "user"
        and isinstance(r["message"]["content"], list)
        and any(b.get("tool_use_id") == task["id"] for b in r["message"]["content"])
    )
    streamed = [
        r["data"]["message"]
        for r in records
        if r.get("type") == "progress"
        and r["data"].get("type") == "agent_progress"
        and r.get("parentToolUseID") == task["id"]
    ]
    usage: dict[str, Counter[str]] = {}
    sub_tools: list[str] = []
    for record in streamed:
        if record["type"] != "assistant":
            continue
        message = record["message"]
        counts = usage.setdefault(message["id"], Counter())
        for key in USAGE:
            counts[key] = max(counts[key], message["usage"].get(key, 0))
        sub_tools += [b["name"] for b in message["content"] if b["type"] == "tool_use"]
    total = Counter[str]()
    for counts in usage.values():
        total.update(counts)
    total.update({k: outcome["usage"][k] for k in USAGE})  # the final answer, not streamed

    spans = _import(path)[0][0]
    trial = _trial(spans)
    first = trial.first_attempt
    assert first is not None
    assert trial.retries == [] and trial.attempt_count == 1
    assert len(trial.subagents) == 1
    sub = trial.subagents[0]
    assert sub.parent_attempt_id == first.attempt_id
    assert sub.attempt_index == 0 == first.attempt_index
    assert sub.behavior.tool_call_count == len(sub_tools) == outcome["totalToolUseCount"] == 9
    assert sub.behavior.tool_sequence == sub_tools
    assert sub.behavior.turn_count == len(usage) + 1 == 6
    assert sub.tokens.input_tokens_total == _genai_input(total)
    assert sub.tokens.output_tokens_total == total["output_tokens"]
    assert sub.treatment.model_id == "claude-haiku-4-5-20251001"
    assert sub.infra.exit_reason == "submitted"
    assert sub.infra.wall_time_s == pytest.approx(outcome["totalDurationMs"] / 1000, abs=1.0)
    # Its attempt span is a child of the Task tool span of the main attempt.
    task_span = next(s for s in spans if s.attributes.get(sc.GEN_AI_TOOL_CALL_ID) == task["id"])
    assert task_span.attributes[sc.AGENT_SIGNALS_ATTEMPT_ID] == first.attempt_id
    sub_span = next(s for s in spans if s.span_id == sub.span_id)
    assert sub_span.parent_span_id == task_span.span_id
    assert sub_span.attributes[sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID] == first.attempt_id
    assert sub_span.attributes[sc.GEN_AI_AGENT_NAME] == task["input"]["subagent_type"]
    # The main attempt keeps only its own calls: the Task call is one of its 16 tools.
    assert first.behavior.tool_call_count == 16
    assert "Task" in (first.behavior.tool_sequence or [])


def test_import_is_deterministic(shared_data: Path) -> None:
    path = shared_data / "claude-code" / "subagent.jsonl"
    once, twice = _import(path)[0][0], _import(path)[0][0]
    assert [(s.span_id, s.parent_span_id, s.start_ns) for s in once] == [
        (s.span_id, s.parent_span_id, s.start_ns) for s in twice
    ]


# ------------------------------------------------------------------------- subagent layouts


def _line(kind: str, uuid: str, ts: str, message: dict[str, Any], **extra: Any) -> str:
    record = {
        "type": kind,
        "uuid": uuid,
        "parentUuid": extra.pop("parent", None),
        "sessionId": "sess-1",
        "isSidechain": False,
        "timestamp": f"2026-01-01T00:00:{ts}Z",
        "message": message,
        **extra,
    }
    return json.dumps(record)


def _assistant(
    uuid: str,
    ts: str,
    msg_id: str,
    blocks: list[dict[str, Any]],
    usage: tuple[int, int],
    **extra: Any,
) -> str:
    message = {
        "id": msg_id,
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": blocks,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }
    return _line("assistant", uuid, ts, message, **extra)


def _user(uuid: str, ts: str, content: Any, **extra: Any) -> str:
    return _line("user", uuid, ts, {"role": "user", "content": content}, **extra)


def _result(uuid: str, ts: str, tool_id: str, text: str, *, is_error: bool = False) -> str:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": text, "is_error": is_error}
    return _user(uuid, ts, [block])


def _session_with_task(result: dict[str, Any], prompt: str = "look around") -> list[str]:
    task = {"type": "tool_use", "id": "toolu_T", "name": "Task"}
    task["input"] = {"prompt": prompt, "subagent_type": "Explore", "description": "explore"}
    return [
        _user("u1", "01", "find the bug"),
        _assistant("a1", "02", "msg_1", [task], (10, 5)),
        _user(
            "u2",
            "09",
            [{"type": "tool_result", "tool_use_id": "toolu_T", "content": "found it"}],
            toolUseResult=result,
        ),
        _assistant("a2", "10", "msg_2", [{"type": "text", "text": "done"}], (20, 3)),
    ]


def _agent_file(agent_id: str, read_ts: str = "04") -> list[str]:
    read = {"type": "tool_use", "id": f"toolu_R{agent_id}", "name": "Read"}
    read["input"] = {"file_path": "/repo/app.py"}
    side = {"isSidechain": True, "agentId": agent_id}
    u1, a1, u2, a2 = (f"{agent_id}-{n}" for n in ("u1", "a1", "u2", "a2"))
    result = [{"type": "tool_result", "tool_use_id": f"toolu_R{agent_id}", "content": "x = 1"}]
    done = [{"type": "text", "text": "ok"}]
    return [
        _user(u1, "03", "look around", **side),
        _assistant(a1, read_ts, f"msg_{agent_id}_1", [read], (7, 2), parent=u1, **side),
        _user(u2, "05", result, parent=a1, **side),
        _assistant(a2, "06", f"msg_{agent_id}_2", done, (9, 4), parent=u2, **side),
    ]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _by_span(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def test_subagents_folder_is_matched_by_agent_id(tmp_path: Path) -> None:
    session = _write(
        tmp_path / "sess-1.jsonl",
        _session_with_task({"status": "completed", "agentId": "abc123", "totalToolUseCount": 1}),
    )
    folder = tmp_path / "sess-1" / "subagents"
    claimed = _write(folder / "agent-abc123.jsonl", _agent_file("abc123"))
    _write(folder / "agent-zzz999.jsonl", _agent_file("zzz999", read_ts="08"))  # no Task claims it
    assert cc.detect(session, session.read_bytes())
    assert not cc.detect(claimed, claimed.read_bytes())  # its session imports it

    trajectories, problems = _import(session)
    assert problems == [] and len(trajectories) == 1
    spans = trajectories[0]
    trial = _trial(spans)
    first = trial.first_attempt
    assert first is not None and trial.retries == []
    assert first.behavior.turn_count == 2 and first.behavior.tool_sequence == ["Task"]
    assert len(trial.subagents) == 2
    by_span = _by_span(spans)
    task_span = next(s for s in spans if s.attributes.get(sc.GEN_AI_TOOL_CALL_ID) == "toolu_T")
    parents = {}
    for sub in trial.subagents:
        assert sub.parent_attempt_id == first.attempt_id
        assert sub.behavior.turn_count == 2 and sub.behavior.tool_sequence == ["Read"]
        assert sub.tokens.input_tokens_total == 16 and sub.tokens.output_tokens_total == 6
        span = by_span[sub.span_id or ""]
        parents[span.attributes[sc.GEN_AI_CONVERSATION_ID]] = span.parent_span_id
    assert parents == {"abc123": task_span.span_id, "zzz999": first.span_id}
    claimed_record = next(
        s for s in trial.subagents if by_span[s.span_id or ""].parent_span_id == task_span.span_id
    )
    assert claimed_record.infra.exit_reason == "submitted"


def test_a_task_without_its_result_finds_its_file_by_prompt(tmp_path: Path) -> None:
    # The session was cut before the Task result (which names the agent id) was written.
    session = _write(tmp_path / "sess-1.jsonl", _session_with_task({})[:2])
    _write(tmp_path / "sess-1" / "subagents" / "agent-abc123.jsonl", _agent_file("abc123"))
    spans = _import(session)[0][0]
    trial = _trial(spans)
    assert len(trial.subagents) == 1
    task_span = next(s for s in spans if s.attributes.get(sc.GEN_AI_TOOL_CALL_ID) == "toolu_T")
    sub = trial.subagents[0]
    assert _by_span(spans)[sub.span_id or ""].parent_span_id == task_span.span_id
    assert sub.infra.exit_reason is None and sub.behavior.tool_sequence == ["Read"]


def test_sidechains_in_the_session_file_become_nested_attempts(tmp_path: Path) -> None:
    lines = _session_with_task({"status": "completed"}, prompt="look around")
    # Old layout: sidechain records inline, chained by parentUuid, no agent id: matched by
    # the Task prompt.
    side = [json.dumps({**json.loads(line), "agentId": None}) for line in _agent_file("s1")]
    path = _write(tmp_path / "old.jsonl", lines[:2] + side + lines[2:])
    spans = _import(path)[0][0]
    trial = _trial(spans)
    first = trial.first_attempt
    assert first is not None and first.behavior.turn_count == 2
    assert len(trial.subagents) == 1 and trial.retries == []
    sub = trial.subagents[0]
    assert sub.behavior.tool_sequence == ["Read"] and sub.behavior.turn_count == 2
    task_span = next(s for s in spans if s.attributes.get(sc.GEN_AI_TOOL_CALL_ID) == "toolu_T")
    assert _by_span(spans)[sub.span_id or ""].parent_span_id == task_span.span_id


def test_a_failed_edit_changes_no_file_and_bash_exit_codes_are_read(tmp_path: Path) -> None:
    edit = {"type": "tool_use", "id": "t1", "name": "Edit"}
    edit["input"] = {"file_path": "/repo/a.py", "old_string": "x", "new_string": "y"}
    write = {"type": "tool_use", "id": "t2", "name": "Write"}
    write["input"] = {"file_path": "/repo/b.py", "content": "z"}
    bash = {"type": "tool_use", "id": "t3", "name": "Bash", "input": {"command": "pytest -q"}}
    path = _write(
        tmp_path / "s.jsonl",
        [
            _user("u1", "01", "fix it"),
            _assistant("a1", "02", "m1", [edit, write, bash], (5, 5)),
            _result("u2", "03", "t1", "String not found", is_error=True),
            _result("u3", "04", "t2", "File created"),
            _result("u4", "05", "t3", "Exit code 1\n1 failed, 2 passed in 0.1s", is_error=True),
        ],
    )
    spans = _import(path)[0][0]
    tools = {s.attributes[sc.GEN_AI_TOOL_NAME]: s for s in spans if _type(s) == "tool"}
    assert tools["Edit"].attributes[sc.AGENT_SIGNALS_TOOL_CHANGED_FILES] == []
    assert tools["Edit"].attributes[sc.ERROR_TYPE] == "tool_error"
    assert tools["Write"].attributes[sc.AGENT_SIGNALS_TOOL_CHANGED_FILES] == ["/repo/b.py"]
    assert tools["Bash"].attributes[sc.PROCESS_EXIT_CODE] == 1
    assert tools["Bash"].attributes[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "test"
    assert tools["Bash"].start_ns < tools["Bash"].end_ns


# ---------------------------------------------------------------------- broken input


def test_truncated_copy_reports_the_cut_line_and_imports_the_rest(
    shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / "claude-code" / "subagent.jsonl").read_text().splitlines()
    cut = 60
    path = tmp_path / "truncated.jsonl"
    path.write_text("\n".join(lines[: cut - 1]) + "\n" + lines[cut - 1][: len(lines[cut - 1]) // 2])
    trajectories, problems = _import(path)
    assert [(p.line, p.path) for p in problems] == [(cut, str(path))]
    assert "truncated" in problems[0].message
    facts = _facts(lines[: cut - 1])
    first = _trial(trajectories[0]).first_attempt
    assert first is not None
    assert first.behavior.turn_count == facts["responses"]
    assert first.behavior.tool_sequence == facts["tools"]


def test_corrupted_line_is_reported_and_the_rest_imports(shared_data: Path, tmp_path: Path) -> None:
    lines = (shared_data / "claude-code" / "tool_heavy.jsonl").read_text().splitlines()
    bad = 34  # the Read call's response
    broken = [*lines]
    broken[bad - 1] = '{"type": "assistant", "message": {"id": '
    path = tmp_path / "corrupt.jsonl"
    path.write_text("\n".join(broken) + "\n")
    trajectories, problems = _import(path)
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(bad, "not valid JSON")]
    assert str(problems[0]).startswith(f"{path}:{bad}: ")
    facts = _facts(broken)
    first = _trial(trajectories[0]).first_attempt
    assert first is not None
    assert facts["tools"] == ["Bash", "Bash", "WebSearch", "Glob", "WebFetch"]
    assert first.behavior.tool_sequence == facts["tools"]
    assert first.behavior.turn_count == facts["responses"] == 4  # the response's other line


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"", 0, "no Claude Code records"),
        (b"garbage\n{also bad\n", 1, "no Claude Code records"),
        (b'{"type": "summary", "summary": "x", "leafUuid": "u"}\n', 0, "no user or assistant"),
    ],
)
def test_unreadable_files_raise_a_trajectory_error(
    tmp_path: Path, content: bytes, line: int, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(TrajectoryError) as caught:
        list(cc.read(path, lambda _p: None))
    assert caught.value.problem.path == str(path)
    assert caught.value.problem.line == line
    assert message in caught.value.problem.message


def test_odd_shapes_never_raise_bare_exceptions(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "odd.jsonl",
        [
            _user("u1", "01", "go"),
            json.dumps({"type": "assistant", "uuid": "a0", "sessionId": "s", "message": "text"}),
            json.dumps([1, 2]),
            _assistant("a1", "02", "m1", ["not a block", {"type": "tool_use", "input": 3}], (1, 1)),
            _user("u2", "03", [{"type": "tool_result", "tool_use_id": None}]),
        ],
    )
    trajectories, problems = _import(path)
    assert {p.line for p in problems} == {2, 3}
    first = _trial(trajectories[0]).first_attempt
    assert first is not None
    assert first.behavior.tool_sequence == ["unknown"]


def test_detect(shared_data: Path, tmp_path: Path) -> None:
    for other in ("pi/before-compaction.jsonl", "codex/redacted-session-01.jsonl"):
        path = shared_data / other
        assert not cc.detect(path, path.read_bytes()[:65536]), other
    assert not pi.detect(shared_data / "claude-code" / "short.jsonl", b"")
    assert not cc.detect(tmp_path / "x.jsonl", b'{"type": "message", "role": "user"}\n')
    assert not cc.detect(tmp_path / "x.jsonl", b"not json at all")
    nested = tmp_path / "s" / "subagents" / "agent-1.jsonl"
    assert not cc.detect(nested, (shared_data / "claude-code" / "short.jsonl").read_bytes())
    sibling = tmp_path / "agent-1.jsonl"
    assert not cc.detect(sibling, "\n".join(_agent_file("a1")).encode())
    # A first record longer than the head is still recognised by its keys.
    huge = b'{"parentUuid": null, "isSidechain": false, "sessionId": "s", "message": "'
    huge += b"x" * 70000
    assert cc.detect(tmp_path / "big.jsonl", huge[:65536])
