"""pi sessions become trial/attempt/turn/tool spans: the real sessions in ../shared/data (a v1
session with two compactions, a v3 one) checked against what each file says, then branches,
truncated and corrupted copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._import.formats import ImportProblem, TrajectoryError, pi
from agentsignals._import.formats import claude_code as cc
from agentsignals._spans.model import STATUS_ERROR, Span

LONG = "pi/before-compaction.jsonl"
SHORT = "pi/redacted-session-01.jsonl"


def _import(path: Path) -> tuple[list[list[Span]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    return list(pi.read(path, problems.append)), problems


def _type(span: Span) -> Any:
    return span.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE)


def _first(spans: list[Span]) -> features.AttemptRecord:
    result = features.from_spans(spans)
    assert len(result.trials) == 1 and result.trials[0].retries == []
    first = result.trials[0].first_attempt
    assert first is not None
    return first


def _facts(lines: list[str]) -> dict[str, Any]:
    """What a linear session says, read straight from its lines: assistant messages (one API
    response each), the tool calls that ran (all but those of aborted or failed responses
    without a result), usage sums (GenAI input = input + cacheRead + cacheWrite), failed results,
    compactions."""
    records = []
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    messages = [r["message"] for r in records if r["type"] == "message"]
    answered = {m["toolCallId"] for m in messages if m["role"] == "toolResult"}
    responses = [m for m in messages if m["role"] == "assistant"]
    tools = [
        b["name"]
        for m in responses
        for b in m["content"]
        if b["type"] == "toolCall"
        and (b["id"] in answered or m["stopReason"] not in ("aborted", "error"))
    ]
    usage = [m["usage"] for m in responses]
    return {
        "responses": len(responses),
        "tools": tools,
        "input": sum(u["input"] + u["cacheRead"] + u["cacheWrite"] for u in usage),
        "output": sum(u["output"] for u in usage),
        "cache_read": sum(u["cacheRead"] for u in usage),
        "cache_write": sum(u["cacheWrite"] for u in usage),
        "cost": sum(u["cost"]["total"] for u in usage),
        "failed": sum(1 for m in messages if m["role"] == "toolResult" and m["isError"]),
        "compactions": [r["tokensBefore"] for r in records if r["type"] == "compaction"],
        "reasoning": any(b["type"] == "thinking" for m in responses for b in m["content"]),
    }


@pytest.mark.parametrize("name", [LONG, SHORT])
def test_real_session_matches_the_file(shared_data: Path, name: str) -> None:
    path = shared_data / name
    assert pi.detect(path, path.read_bytes()[:65536])
    trajectories, problems = _import(path)
    assert problems == []
    assert len(trajectories) == 1
    spans = trajectories[0]
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    facts = _facts(lines)

    trial = next(s for s in spans if _type(s) == "trial")
    assert trial.attributes[sc.AGENT_SIGNALS_TASK_ID] == header["id"]
    assert trial.attributes[sc.AGENT_SIGNALS_IMPORT_FORMAT] == "pi"
    assert not any(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME in s.attributes for s in spans)
    first = _first(spans)
    assert first.behavior.turn_count == facts["responses"]
    assert first.behavior.tool_call_count == len(facts["tools"])
    assert (first.behavior.tool_sequence or []) == facts["tools"]
    assert first.behavior.tool_error_count == facts["failed"]
    assert first.tokens.input_tokens_total == facts["input"]
    assert first.tokens.output_tokens_total == facts["output"]
    assert first.tokens.cache_read_tokens == facts["cache_read"]
    assert first.tokens.cache_write_tokens == facts["cache_write"]
    assert first.tokens.cost_usd == pytest.approx(facts["cost"])
    assert first.reasoning.has_reasoning_blocks is facts["reasoning"]
    assert first.treatment.agent_type == "pi"
    session = pi.parse(path, lambda _p: None)
    assert [c.tokens_before for c in session.compactions] == facts["compactions"]
    attempt = next(s for s in spans if _type(s) == "attempt")
    assert attempt.attributes[sc.GEN_AI_CONVERSATION_ID] == header["id"]


def test_v1_session_with_compactions(shared_data: Path) -> None:
    path = shared_data / LONG
    session = pi.parse(path, lambda _p: None)
    assert session.version == 1 and len(session.entries) == 1002  # linear: every entry
    assert [(c.line, c.tokens_before) for c in session.compactions] == [
        (360, 175004),
        (629, 185014),
    ]
    spans = _import(path)[0][0]
    first = _first(spans)
    # 484 responses; 454 tool calls of which 5 belong to aborted responses and never ran.
    assert first.behavior.turn_count == 484
    assert first.behavior.tool_call_count == 449
    assert first.treatment.model_id == "claude-opus-4-5"
    tools = [s for s in spans if _type(s) == "tool"]
    exit_codes = [s.attributes.get(sc.PROCESS_EXIT_CODE) for s in tools]
    assert sorted(c for c in exit_codes if c is not None) == [1, 1, 1, 1, 2, 2]
    failed = [s for s in tools if s.status_code == STATUS_ERROR]
    assert len(failed) == 12
    edits = [s for s in failed if s.attributes[sc.GEN_AI_TOOL_NAME] == "edit"]
    assert len(edits) == 4
    assert all(s.attributes[sc.AGENT_SIGNALS_TOOL_CHANGED_FILES] == [] for s in edits)
    ok_edit = next(
        s for s in tools if s.attributes[sc.GEN_AI_TOOL_NAME] == "edit" and s.status_code == 0
    )
    assert (
        ok_edit.attributes[sc.AGENT_SIGNALS_TOOL_CHANGED_FILES]
        == (ok_edit.attributes[sc.AGENT_SIGNALS_TOOL_FILES])
    )
    turns = [s for s in spans if _type(s) == "turn"]
    aborted = [
        t for t in turns if t.attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS) == ["aborted"]
    ]
    assert len(aborted) == 18
    assert all(t.start_ns <= t.end_ns for t in turns)
    # Line 22, an aborted response: input 10, cacheRead 49204, cacheWrite 1739, output 8.
    line_22 = next(
        t.attributes for t in aborted if t.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    )
    assert line_22[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10 + 49204 + 1739
    assert line_22[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 49204
    assert line_22[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 1739


def test_v3_session_model_provider_and_cost(shared_data: Path) -> None:
    spans = _import(shared_data / SHORT)[0][0]
    turn = next(s for s in spans if _type(s) == "turn")
    assert turn.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-5.5"
    assert turn.attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"  # pi's openai-codex
    assert turn.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 433
    assert turn.attributes[sc.AGENT_SIGNALS_USAGE_COST_USD] == pytest.approx(0.002435)
    assert turn.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    # The request started at the message's own timestamp; it was written 3.2 s later.
    assert (turn.end_ns - turn.start_ns) / 1e9 == pytest.approx(3.173, abs=0.01)


# ---------------------------------------------------------------------------- v3 trees


def _entry(kind: str, entry_id: str, parent: str | None, second: int, **fields: Any) -> str:
    stamp = f"2026-01-01T00:00:{second:02d}.000Z"
    return json.dumps(
        {"type": kind, "id": entry_id, "parentId": parent, "timestamp": stamp, **fields}
    )


def _message(entry_id: str, parent: str | None, second: int, message: dict[str, Any]) -> str:
    message = {"timestamp": 1767225600000 + second * 1000 - 500, **message}
    return _entry("message", entry_id, parent, second, message=message)


def _assistant(entry_id: str, parent: str, second: int, *blocks: dict[str, Any]) -> str:
    usage = {"input": 10, "output": 5, "cacheRead": 100, "cacheWrite": 20, "totalTokens": 135}
    usage["cost"] = {"total": 0.01}
    message = {"role": "assistant", "content": list(blocks), "provider": "anthropic"}
    message.update(model="claude-sonnet-4-5", usage=usage, stopReason="toolUse")
    return _message(entry_id, parent, second, message)


def _user(entry_id: str, parent: str | None, second: int, text: str) -> str:
    return _message(
        entry_id, parent, second, {"role": "user", "content": [{"type": "text", "text": text}]}
    )


def _tool_result(entry_id: str, parent: str, second: int, call: str, name: str) -> str:
    message = {"role": "toolResult", "toolCallId": call, "toolName": name, "isError": False}
    message["content"] = [{"type": "text", "text": "ok"}]
    return _message(entry_id, parent, second, message)


def _call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "toolCall", "id": call_id, "name": name, "arguments": arguments}


HEADER = json.dumps(
    {"type": "session", "version": 3, "id": "s-3", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/r"}
)


def _tree() -> list[str]:
    """u1 -> a1 (read) -> r1 -> u2 -> a2 (bash) -> r2 is abandoned; the user went back to r1
    and continued: u3 -> a3 (edit) -> r3, the last entry."""
    return [
        HEADER,
        _entry("model_change", "m0", None, 1, provider="anthropic", modelId="claude-sonnet-4-5"),
        _user("u1", "m0", 2, "fix it"),
        _assistant("a1", "u1", 3, _call("c1", "read", path="a.py")),
        _tool_result("r1", "a1", 4, "c1", "read"),
        _user("u2", "r1", 5, "try bash"),
        _assistant("a2", "u2", 6, _call("c2", "bash", command="ls")),
        _tool_result("r2", "a2", 7, "c2", "bash"),
        _user("u3", "r1", 8, "no, edit it"),
        _assistant("a3", "u3", 9, _call("c3", "edit", path="a.py", oldText="x", newText="y")),
        _tool_result("r3", "a3", 10, "c3", "edit"),
    ]


def test_only_the_active_branch_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "tree.jsonl"
    path.write_text("\n".join(_tree()) + "\n")
    trajectories, problems = _import(path)
    assert len(problems) == 1
    assert problems[0].line == 0 and problems[0].path == str(path)
    assert "3 entries on abandoned branches" in problems[0].message
    assert "1 model responses" in problems[0].message
    first = _first(trajectories[0])
    assert first.behavior.tool_sequence == ["read", "edit"]
    assert first.behavior.turn_count == 2
    assert first.tokens.input_tokens_total == 2 * 130
    assert first.behavior.step_changed_files == [[], ["a.py"]]
    session = pi.parse(path, lambda _p: None)
    assert session.abandoned_entries == 3 and session.abandoned_responses == 1


def test_missing_parent_follows_file_order(tmp_path: Path) -> None:
    lines = _tree()
    lines[4] = lines[4][:40]  # r1 cut: u3's parent and u2's parent are gone
    path = tmp_path / "corrupt.jsonl"
    path.write_text("\n".join(lines) + "\n")
    trajectories, problems = _import(path)
    assert problems[0].line == 5 and "not valid JSON" in problems[0].message
    assert problems[1].line == 9 and "parent entry 'r1' is missing" in problems[1].message
    # u3 falls back to the entry before it in the file (r2): the walk now runs through a2.
    first = _first(trajectories[0])
    assert first.behavior.tool_sequence == ["read", "bash", "edit"]


# ------------------------------------------------------------------------- broken input


def test_truncated_copy_reports_the_cut_line_and_imports_the_rest(
    shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / LONG).read_text().splitlines()
    cut = 500
    path = tmp_path / "truncated.jsonl"
    path.write_text("\n".join(lines[: cut - 1]) + "\n" + lines[cut - 1][:100])
    trajectories, problems = _import(path)
    assert [(p.path, p.line) for p in problems] == [(str(path), cut)]
    assert "truncated" in problems[0].message
    facts = _facts(lines[: cut - 1])
    first = _first(trajectories[0])
    assert first.behavior.turn_count == facts["responses"]
    assert first.behavior.tool_sequence == facts["tools"]
    assert first.tokens.input_tokens_total == facts["input"]
    assert len(pi.parse(path, lambda _p: None).compactions) == 1


def test_corrupted_lines_are_reported_and_the_rest_imports(
    shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / LONG).read_text().splitlines()
    broken = [*lines]
    broken[99] = "{garbage"
    broken[199] = "[1, 2, 3]"
    path = tmp_path / "corrupt.jsonl"
    path.write_text("\n".join(broken) + "\n")
    trajectories, problems = _import(path)
    assert [p.line for p in problems] == [100, 200]
    assert str(problems[0]).startswith(f"{path}:100: not valid JSON")
    facts = _facts(broken)
    first = _first(trajectories[0])
    assert first.behavior.turn_count == facts["responses"]
    assert first.behavior.tool_sequence == facts["tools"]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"", 0, "empty file"),
        (b"{not json\n", 1, "no pi session header"),
        (b'{"type": "message"}\n', 1, "no pi session header"),
    ],
)
def test_unreadable_files_raise_a_trajectory_error(
    tmp_path: Path, content: bytes, line: int, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(TrajectoryError) as caught:
        list(pi.read(path, lambda _p: None))
    assert caught.value.problem.path == str(path)
    assert caught.value.problem.line == line
    assert message in caught.value.problem.message


def test_odd_shapes_never_raise_bare_exceptions(tmp_path: Path) -> None:
    lines = [
        HEADER,
        _entry("message", "x1", None, 1, message="not an object"),
        _message("x2", "x1", 2, {"role": "assistant", "content": "text", "usage": [1]}),
        _message("x3", "x2", 3, {"role": "assistant", "content": [_call("c", "bash")]}),
        _message("x4", "x3", 4, {"role": "toolResult", "toolCallId": 5, "content": None}),
        json.dumps({"no": "type"}),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n")
    trajectories, problems = _import(path)
    assert [p.line for p in problems] == [6]
    first = _first(trajectories[0])
    assert first.behavior.turn_count == 2 and first.behavior.tool_sequence == ["bash"]


def test_detect(shared_data: Path, tmp_path: Path) -> None:
    for name in (LONG, SHORT):
        path = shared_data / name
        assert pi.detect(path, path.read_bytes()[:65536])
        assert not cc.detect(path, path.read_bytes()[:65536])
    claude = shared_data / "claude-code" / "short.jsonl"
    assert not pi.detect(claude, claude.read_bytes()[:65536])
    codex = b'{"timestamp": "t", "type": "session_meta", "payload": {"id": "x", "cwd": "/"}}\n'
    assert not pi.detect(tmp_path / "c.jsonl", codex)
    assert not pi.detect(tmp_path / "x.jsonl", b"{not json")


def test_compactions_mark_the_next_turn_and_are_counted(shared_data: Path) -> None:
    from agentsignals import features
    from agentsignals import semconv as sc
    from agentsignals._import.run import import_file

    result = import_file(shared_data / "pi" / "before-compaction.jsonl")
    [spans] = result.trajectories
    compacted = [s for s in spans if s.attributes.get(sc.GEN_AI_CONVERSATION_COMPACTED) is True]
    assert len(compacted) == 2  # the file has two compaction entries
    assert all(s.attributes[sc.AGENT_SIGNALS_SPAN_TYPE] == "turn" for s in compacted)
    [record] = features.from_spans(spans).attempts
    assert record.tokens.compactions == 2
