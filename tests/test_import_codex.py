"""Codex CLI rollouts: the real session checked against what the file says, a session with
shell, exec_command and apply_patch calls in the same line shapes, and broken input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._import.formats import ImportProblem, TrajectoryError, codex
from agentsignals._spans.model import STATUS_ERROR, Span

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = DATA / "codex" / "redacted-session-01.jsonl"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real trajectory data not found at {path} (see /work/shared/data/SOURCES.md)")
    return path


def read(path: Path) -> tuple[list[list[Span]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    return list(codex.read(path, problems.append)), problems


def only_attempt(spans: list[Span]) -> features.AttemptRecord:
    [record] = features.from_spans(spans).attempts
    return record


def of_type(spans: list[Span], kind: sc.SpanType) -> list[Span]:
    return [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == kind.value]


def ns(timestamp: str) -> int:
    ts = codex._timestamp(timestamp)
    assert ts is not None
    return ts


# ------------------------------------------------------------------------------- real session


def test_real_session_matches_what_the_file_says() -> None:
    path = need(REAL)
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    meta = next(line["payload"] for line in lines if line["type"] == "session_meta")
    counts = [
        line["payload"]["info"]
        for line in lines
        if line["type"] == "event_msg"
        and line["payload"]["type"] == "token_count"
        and line["payload"].get("info")
    ]
    calls = [
        line
        for line in lines
        if line["type"] == "response_item"
        and line["payload"]["type"] in ("function_call", "custom_tool_call", "local_shell_call")
    ]
    final = counts[-1]["total_token_usage"]
    assert codex.detect(path, path.read_bytes()[:65536])
    [spans], problems = read(path)
    assert problems == []
    record = only_attempt(spans)
    assert record.task_id == meta["id"]
    attempt = of_type(spans, sc.SpanType.ATTEMPT)[0]
    assert attempt.attributes[sc.GEN_AI_CONVERSATION_ID] == meta["id"]
    assert attempt.attributes[sc.GEN_AI_PROVIDER_NAME] == meta["model_provider"] == "openai"
    # One turn per model response (per token_count that reports a new total).
    assert record.behavior.turn_count == len({json.dumps(c["total_token_usage"]) for c in counts})
    assert record.behavior.tool_call_count == len(calls) == 0
    t = record.tokens
    assert t.input_tokens_total == final["input_tokens"] == 22539
    assert t.output_tokens_total == final["output_tokens"] == 10
    assert t.cache_read_tokens == final["cached_input_tokens"] == 20864
    assert record.reasoning.reasoning_tokens_total == final["reasoning_output_tokens"]
    assert record.treatment.model_id == "gpt-5.5"  # from turn_context
    assert record.infra.exit_reason == "submitted"  # task_complete
    # Real times: the turn runs from the prompt to the response's token_count.
    assert not any(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) for s in spans)
    [turn] = of_type(spans, sc.SpanType.TURN)
    assert turn.start_ns == ns("2026-06-05T04:58:23.506Z")
    assert turn.end_ns == ns("2026-06-05T04:58:26.707Z")
    trial = of_type(spans, sc.SpanType.TRIAL)[0]
    assert trial.start_ns <= attempt.start_ns <= turn.start_ns <= attempt.end_ns <= trial.end_ns
    assert attempt.end_ns == ns(lines[-1]["timestamp"])


def test_truncated_real_session_reports_the_cut_line(tmp_path: Path) -> None:
    text = need(REAL).read_text()
    path = tmp_path / "rollout.jsonl"
    path.write_text(text[: len(text) - 120])  # cuts the last line (task_complete)
    [spans], problems = read(path)
    assert [(p.path, p.line) for p in problems] == [(str(path), 11)]
    assert "truncated or corrupted" in problems[0].message
    record = only_attempt(spans)
    assert record.behavior.turn_count == 1
    assert record.tokens.input_tokens_total == 22539
    assert record.infra.exit_reason is None  # the task's end is not in the file


def test_corrupted_line_in_the_middle(tmp_path: Path) -> None:
    lines = need(REAL).read_text().splitlines()
    lines[2] = lines[2][:40] + "\x00garbage"
    lines[4] = '["not", "a", "rollout", "line"]'
    path = tmp_path / "rollout.jsonl"
    path.write_text("\n".join(lines) + "\n")
    [spans], problems = read(path)
    assert [p.line for p in problems] == [3, 5]
    assert "not a rollout line" in problems[1].message
    record = only_attempt(spans)
    assert record.infra.exit_reason == "submitted"
    assert record.treatment.model_id is None  # the turn_context line was the broken one


# --------------------------------------------------------------------- a session with tools


def _line(ts: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": f"2025-09-10T10:{ts}Z", "type": kind, "payload": payload}


def _usage(inp: int, cached: int, out: int, reasoning: int) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": inp + out,
    }


def _token_counts(*calls: dict[str, int]) -> list[dict[str, Any]]:
    """token_count payloads as Codex writes them: last call and running total."""
    out = []
    total = dict.fromkeys(calls[0], 0)
    for last in calls:
        total = {k: total[k] + last[k] for k in total}
        out.append(
            {
                "type": "token_count",
                "info": {
                    "total_token_usage": dict(total),
                    "last_token_usage": last,
                    "model_context_window": 272000,
                },
                "rate_limits": {"primary": {"used_percent": 1.0}},
            }
        )
    return out


PATCH_OK = "*** Begin Patch\n*** Update File: src/a.py\n@@\n-x = 1\n+x = 2\n*** End Patch\n"
PATCH_BAD = (
    "*** Begin Patch\n*** Add File: src/new.py\n+print(1)\n"
    "*** Update File: src/b.py\n*** Move to: src/c.py\n@@\n-y\n+z\n*** End Patch\n"
)
DIFF = (
    "diff --git a/src/a.py b/src/a.py\n--- a/src/a.py\n+++ b/src/a.py\n"
    "@@ -1 +1 @@\n-x = 1\n+x = 2\n"
)
USAGES = [
    _usage(5000, 0, 300, 200),
    _usage(6000, 4800, 150, 64),
    _usage(6500, 5900, 80, 0),
    _usage(7000, 6400, 90, 10),
    _usage(7200, 6900, 40, 0),
]


def _session(*, end: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    tc = _token_counts(*USAGES)

    def call(cid: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "function_call",
            "name": name,
            "arguments": json.dumps(args),
            "call_id": cid,
        }

    def output(cid: str, text: str) -> dict[str, Any]:
        return {"type": "function_call_output", "call_id": cid, "output": text}

    shell_out = json.dumps({"output": "src/a.py:1:x = 1\n", "metadata": {"exit_code": 0}})
    lines = [
        _line("00:00.000", "session_meta", {
            "id": "sess-42", "timestamp": "2025-09-10T10:00:00.000Z", "cwd": "/home/me/proj",
            "originator": "codex_cli_rs", "cli_version": "0.36.0", "model_provider": "openai"}),
        _line("00:00.010", "turn_context", {"cwd": "/home/me/proj", "approval_policy": "never",
                                           "model": "gpt-5-codex", "summary": "auto"}),
        _line("00:00.020", "event_msg", {"type": "task_started", "model_context_window": 272000}),
        _line("00:00.030", "response_item", {"type": "message", "role": "user",
                                             "content": [{"type": "input_text", "text": "fix x"}]}),
        _line("00:00.031", "event_msg", {"type": "user_message", "message": "fix x"}),
        # Response 1: reasoning, then two shell calls in parallel.
        _line("00:02.000", "event_msg", {"type": "agent_reasoning", "text": "**Looking**"}),
        _line("00:02.001", "response_item", {
            "type": "reasoning", "summary": [{"type": "summary_text", "text": "**Looking**"}],
            "content": None, "encrypted_content": "gAAAA"}),
        _line("00:02.100", "response_item", call("c1", "shell", {
            "command": ["bash", "-lc", "rg -n 'x = 1' src"], "workdir": "/home/me/proj"})),
        _line("00:02.200", "response_item", call("c2", "shell", {"command": ["cat", "src/a.py"]})),
        _line("00:02.300", "event_msg", tc[0]),
        _line("00:02.400", "event_msg", {"type": "exec_command_end", "call_id": "c1",
                                         "aggregated_output": "src/a.py:1:x = 1\n",
                                         "exit_code": 0}),
        _line("00:02.500", "response_item", output("c1", shell_out)),
        _line("00:02.600", "response_item", output("c2", "Exit code: 0\nWall time: 0 seconds\n"
                                                   "Output:\nx = 1\n")),
        # The same report again: no new model call.
        _line("00:02.700", "event_msg", tc[0]),
        # Response 2: apply_patch as a freeform tool.
        _line("00:04.000", "response_item", {
            "type": "custom_tool_call", "status": "completed", "call_id": "c3",
            "name": "apply_patch", "input": PATCH_OK}),
        _line("00:04.100", "event_msg", tc[1]),
        _line("00:04.200", "event_msg", {"type": "patch_apply_end", "call_id": "c3",
                                         "stdout": "M src/a.py\n", "stderr": "",
                                         "success": True}),
        _line("00:04.300", "response_item", {
            "type": "custom_tool_call_output", "call_id": "c3",
            "output": json.dumps({"output": "Success. Updated the following files:\nM src/a.py\n",
                                  "metadata": {"exit_code": 0}})}),
        _line("00:04.400", "event_msg", {"type": "turn_diff", "unified_diff": DIFF}),
        # Response 3: tests through exec_command; they fail.
        _line("00:06.000", "response_item", call("c4", "exec_command", {
            "cmd": "python -m pytest -q", "workdir": "/home/me/proj"})),
        _line("00:06.100", "event_msg", tc[2]),
        _line("00:09.000", "response_item", output("c4", (
            "Chunk ID: 1a2b\nWall time: 2.9 seconds\nProcess exited with code 1\n"
            "Original token count: 30\nOutput:\nFAILED tests/test_a.py::test_x - assert 2 == 3\n"
            "1 failed, 4 passed in 0.20s\n"))),
        # Response 4: apply_patch through the shell (older Codex), rejected.
        _line("00:10.000", "response_item", call("c5", "shell", {
            "command": ["apply_patch", PATCH_BAD]})),
        _line("00:10.100", "event_msg", tc[3]),
        _line("00:10.200", "event_msg", {"type": "patch_apply_end", "call_id": "c5",
                                         "stdout": "", "stderr": "no such file: src/b.py",
                                         "success": False}),
        _line("00:10.300", "response_item", output("c5", json.dumps({
            "output": "error: no such file: src/b.py", "metadata": {"exit_code": 1}}))),
        # Response 5: the answer.
        _line("00:12.000", "response_item", {"type": "message", "role": "assistant",
                                             "content": [{"type": "output_text", "text": "Done"}]}),
        _line("00:12.100", "event_msg", tc[4]),
    ]  # fmt: skip
    if end is None:
        end = [
            _line("00:12.200", "event_msg", {"type": "task_complete", "last_agent_message": "Done"})
        ]
    return lines + end


def _write(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / "rollout-2025-09-10T10-00-00-sess-42.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_session_with_tools(tmp_path: Path) -> None:
    path = _write(tmp_path, _session())
    assert codex.detect(path, path.read_bytes()[:65536])
    [spans], problems = read(path)
    assert problems == []
    record = only_attempt(spans)
    b = record.behavior
    assert record.task_id == "sess-42"
    assert b.turn_count == 5
    assert b.tool_sequence == ["shell", "shell", "apply_patch", "exec_command", "shell"]
    # bash -lc is unwrapped, so the search is seen; the shell's apply_patch is an edit.
    assert b.tool_category_sequence == ["search", "read", "edit", "test", "edit"]
    tools = of_type(spans, sc.SpanType.TOOL)
    assert [t.attributes[sc.AGENT_SIGNALS_TURN_INDEX] for t in tools] == [0, 0, 1, 2, 3]
    # The shell read (`cat src/a.py`) names its file like a Read tool would.
    assert b.step_files == [
        [],
        ["src/a.py"],
        ["src/a.py"],
        [],
        ["src/new.py", "src/b.py", "src/c.py"],
    ]
    # The rejected patch changed nothing.
    assert b.step_changed_files == [[], [], ["src/a.py"], [], []]
    assert [t.attributes.get(sc.PROCESS_EXIT_CODE) for t in tools] == [0, 0, 0, 1, 1]
    assert [t.status_code == STATUS_ERROR for t in tools] == [False, False, False, True, True]
    assert record.verification.agent_last_run_failed == 1
    assert b.touched_files == ["src/a.py"]  # from the turn diff
    # Times: a call runs from its item to its output.
    assert tools[0].start_ns == ns("2025-09-10T10:00:02.100Z")
    assert tools[0].end_ns == ns("2025-09-10T10:00:02.500Z")
    assert tools[3].end_ns == ns("2025-09-10T10:00:09.000Z")
    turns = of_type(spans, sc.SpanType.TURN)
    assert [t.start_ns for t in turns][:2] == [
        ns("2025-09-10T10:00:00.031Z"),
        ns("2025-09-10T10:00:02.600Z"),  # the last tool output; the repeated count is no call
    ]
    # Usage per call, equal in sum to the file's own running total.
    t = record.tokens
    total = _token_counts(*USAGES)[-1]["info"]["total_token_usage"]
    assert t.input_tokens_total == total["input_tokens"] == sum(u["input_tokens"] for u in USAGES)
    assert t.output_tokens_total == total["output_tokens"]
    assert t.cache_read_tokens == total["cached_input_tokens"]
    assert record.reasoning.reasoning_tokens_total == total["reasoning_output_tokens"]
    assert t.context_growth_curve == [u["input_tokens"] for u in USAGES]
    assert t.model_calls == 5
    # The reasoning summary is the reasoning text (its encrypted body is not readable).
    assert turns[0].attributes[sc.AGENT_SIGNALS_TURN_REASONING_CHARS] == len("**Looking**")
    assert sc.AGENT_SIGNALS_TURN_REASONING_PRESENT not in turns[3].attributes  # encrypted only
    assert record.infra.exit_reason == "submitted"
    assert not any(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) for s in spans)


@pytest.mark.parametrize(
    ("end", "reason", "mode"),
    [
        ([{"type": "turn_aborted", "reason": "interrupted"}], "interrupted", "interrupted"),
        (
            [{"type": "error", "message": "Codex ran out of room in the model's context window."}],
            "context_overflow",
            "context_window",
        ),
        ([{"type": "error", "message": "stream disconnected"}], "error", "error"),
        ([], None, None),
    ],
)
def test_how_the_last_task_ended(
    tmp_path: Path, end: list[dict[str, Any]], reason: str | None, mode: str | None
) -> None:
    path = _write(tmp_path, _session(end=[_line("00:13.000", "event_msg", e) for e in end]))
    [spans], _ = read(path)
    record = only_attempt(spans)
    assert record.infra.exit_reason == reason
    assert record.infra.final_failure_mode == mode


def test_without_token_counts_a_tool_output_ends_the_turn(tmp_path: Path) -> None:
    lines = [ln for ln in _session() if ln["payload"].get("type") != "token_count"]
    [spans], _ = read(_write(tmp_path, lines))
    record = only_attempt(spans)
    assert record.behavior.turn_count == 5
    tools = of_type(spans, sc.SpanType.TOOL)
    assert [t.attributes[sc.AGENT_SIGNALS_TURN_INDEX] for t in tools] == [0, 0, 1, 2, 3]
    assert record.tokens.input_tokens_total is None
    assert record.tokens.model_calls is None


def test_older_order_token_count_before_the_items(tmp_path: Path) -> None:
    """Versions that wrote a response's token_count first, then its items and their outputs."""
    lines = _session()
    counts = [ln for ln in lines if ln["payload"].get("type") == "token_count"]
    body = [ln for ln in lines if ln["payload"].get("type") != "token_count"]
    queue = [counts[0], *counts[2:]]  # counts[1] repeats counts[0]

    def opens_response(p: dict[str, Any]) -> bool:
        """Response 1 starts with its reasoning, 2-4 with a call, 5 with the answer."""
        return (
            p.get("type") == "reasoning"
            or (p.get("call_id") in ("c3", "c4", "c5") and not p["type"].endswith("_output"))
            or p.get("role") == "assistant"
        )

    reordered: list[dict[str, Any]] = []
    for ln in body:
        if ln["type"] == "response_item" and opens_response(ln["payload"]):
            reordered.append({**queue.pop(0), "timestamp": ln["timestamp"]})
        reordered.append(ln)
    assert not queue
    [spans], _ = read(_write(tmp_path, reordered))
    record = only_attempt(spans)
    assert record.behavior.turn_count == 5
    tools = of_type(spans, sc.SpanType.TOOL)
    assert [t.attributes[sc.AGENT_SIGNALS_TURN_INDEX] for t in tools] == [0, 0, 1, 2, 3]
    assert record.tokens.context_growth_curve == [u["input_tokens"] for u in USAGES]


def test_session_without_meta_uses_the_cwd(tmp_path: Path) -> None:
    lines = [ln for ln in _session() if ln["type"] != "session_meta"]
    path = _write(tmp_path, lines)
    [spans], _ = read(path)
    assert only_attempt(spans).task_id == "proj"


def test_command_text() -> None:
    assert codex._command_text(["bash", "-lc", "rg -n foo src"]) == "rg -n foo src"
    assert codex._command_text(["/bin/zsh", "-c", "ls"]) == "ls"
    assert codex._command_text(["git", "commit", "-m", "a b"]) == "git commit -m 'a b'"
    assert codex._command_text("echo hi") == "echo hi"
    assert codex._command_text([1, 2]) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("not json at all\n{also not\n", "no Codex rollout line could be read"),
    ],
)
def test_unreadable_files_raise_trajectory_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "rollout.jsonl"
    path.write_text(content)
    problems: list[ImportProblem] = []
    with pytest.raises(TrajectoryError, match=message) as info:
        list(codex.read(path, problems.append))
    assert info.value.problem.path == str(path)


def test_detect_is_specific() -> None:
    path = need(REAL)
    assert codex.detect(path, path.read_bytes()[:65536])
    for other in DATA.rglob("*"):
        if other.is_file() and other.parent.name != "codex":
            assert not codex.detect(other, other.read_bytes()[:65536]), other
    assert not codex.detect(path.with_suffix(".json"), path.read_bytes())


def test_apply_patch_that_says_it_failed_changed_nothing(tmp_path: Path) -> None:
    lines = [
        ln
        for ln in _session()
        if not (ln["payload"].get("type") == "patch_apply_end" and ln["payload"]["call_id"] == "c3")
    ]
    for ln in lines:
        if ln["payload"].get("type") == "custom_tool_call_output":
            ln["payload"]["output"] = "apply_patch verification failed: context not found"
    [spans], _ = read(_write(tmp_path, lines))
    patch = of_type(spans, sc.SpanType.TOOL)[2]
    assert patch.attributes[sc.AGENT_SIGNALS_TOOL_CHANGED_FILES] == []
    assert patch.attributes[sc.ERROR_TYPE] == "apply_patch_failed"
    assert patch.status_code == STATUS_ERROR
