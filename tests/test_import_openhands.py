"""OpenHands trajectories: the real event-stream exports and resolver output checked against
what the files themselves say, the SWE-bench evaluation output shape, and broken input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._import.builder import patch_stats
from agentsignals._import.formats import ImportProblem, TrajectoryError, codex, openhands
from agentsignals._spans.model import STATUS_ERROR, Span

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OH = DATA / "openhands"
EVENT_FILES = ["basic.json", "basic_gui_mode.json", "basic_interactions.json"]
NOT_TURNS = {"system", "recall", "condensation", "change_agent_state"}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real trajectory data not found at {path} (see /work/shared/data/SOURCES.md)")
    return path


def read(path: Path) -> tuple[list[list[Span]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    return list(openhands.read(path, problems.append)), problems


def only_attempt(spans: list[Span]) -> features.AttemptRecord:
    [record] = features.from_spans(spans).attempts
    return record


def of_type(spans: list[Span], kind: sc.SpanType) -> list[Span]:
    return [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == kind.value]


def ns(timestamp: str) -> int:
    ts = openhands._timestamp(timestamp)
    assert ts is not None
    return ts


# ------------------------------------------------------------------- what an event file says


def file_facts(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Turns, tools and usage as the event list states them, counted independently."""
    agent = [
        e
        for e in events
        if "action" in e and e.get("source") == "agent" and e["action"] not in NOT_TURNS
    ]
    responses: dict[Any, dict[str, Any]] = {}
    for e in agent:
        response = (e.get("tool_call_metadata") or {}).get("model_response") or {}
        responses.setdefault(response.get("id") or ("event", e["id"]), response)
    tools = [e for e in agent if e["action"] != "message"]
    usages = [r["usage"] for r in responses.values() if r.get("usage")]
    answered = {e["cause"] for e in events if "observation" in e and "cause" in e}
    return {
        "turns": len(responses),
        "tools": [
            (e.get("tool_call_metadata") or {}).get("function_name") or e["action"] for e in tools
        ],
        "answered": [e["id"] in answered for e in tools],
        "input": sum(u["prompt_tokens"] for u in usages) if usages else None,
        "output": sum(u["completion_tokens"] for u in usages) if usages else None,
        "cache_read": sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
        if usages
        else None,
        "finished": any(e["action"] == "finish" for e in agent),
        "first": ns(events[0]["timestamp"]),
        "last": ns(events[-1]["timestamp"]),
    }


@pytest.mark.parametrize("name", EVENT_FILES)
def test_event_stream_export_matches_what_the_file_says(name: str) -> None:
    path = need(OH / name)
    events = json.loads(path.read_text())
    facts = file_facts(events)
    [spans], problems = read(path)
    assert problems == []
    record = only_attempt(spans)
    b = record.behavior
    assert record.task_id == path.stem
    assert b.turn_count == facts["turns"]
    assert b.tool_sequence == facts["tools"]
    assert b.tool_call_count == len(facts["tools"])
    # Every action that got an observation (by `cause`) ends when the observation arrived.
    tools = of_type(spans, sc.SpanType.TOOL)
    answered = [t.end_ns > t.start_ns for t in tools]
    assert answered == facts["answered"]
    t = record.tokens
    assert (t.input_tokens_total, t.output_tokens_total) == (facts["input"], facts["output"])
    assert t.cache_read_tokens == facts["cache_read"]
    assert t.model_calls == sum(
        1
        for s in of_type(spans, sc.SpanType.TURN)
        if s.attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS) is not None
    )
    assert record.infra.exit_reason == ("submitted" if facts["finished"] else None)
    # Real times: nothing synthesized, the attempt spans the file's first to last event.
    assert not any(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) for s in spans)
    assert record.started_at_ns == facts["first"]
    assert record.ended_at_ns == facts["last"]


def test_basic_json_in_detail() -> None:
    [spans], _ = read(need(OH / "basic.json"))
    record = only_attempt(spans)
    b = record.behavior
    assert (b.turn_count, b.tool_sequence) == (2, ["str_replace_editor", "finish"])
    assert b.tool_category_sequence == ["edit", "submit"]
    assert b.step_changed_files == [["/workspace/game_2048.py"], []]
    assert (record.tokens.input_tokens_total, record.tokens.output_tokens_total) == (
        3486 + 4646,
        1135 + 177,
    )
    assert record.tokens.cache_write_tokens == 3482 + 1158
    assert record.tokens.context_growth_curve == [3486, 4646]
    assert record.treatment.model_id == "claude-3-5-sonnet-20241022"
    assert record.infra.exit_reason == "submitted"
    turns = of_type(spans, sc.SpanType.TURN)
    assert [t.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] for t in turns] == [
        ["tool_calls"],
        ["tool_calls"],
    ]
    # The turn is the model call: from the user's message to the action it produced.
    assert turns[0].start_ns == ns("2025-01-27T22:44:56.900854")
    assert turns[0].end_ns == ns("2025-01-27T22:45:13.764487")
    edit = of_type(spans, sc.SpanType.TOOL)[0]
    assert edit.attributes[sc.GEN_AI_TOOL_CALL_ID] == "toolu_017nBp7UfiGqyrA7j77HgtFP"
    assert edit.end_ns == ns("2025-01-27T22:45:13.801384")


def test_gui_mode_run_exit_codes_and_the_still_running_server() -> None:
    [spans], _ = read(need(OH / "basic_gui_mode.json"))
    record = only_attempt(spans)
    assert record.behavior.tool_category_sequence == ["shell", "edit", "edit", "shell"]
    assert record.behavior.turn_count == 5  # four tool calls and the closing message
    assert record.behavior.tool_error_count == 1
    mkdir, _, _, server = of_type(spans, sc.SpanType.TOOL)
    assert mkdir.attributes[sc.PROCESS_EXIT_CODE] == 0 and mkdir.status_code != STATUS_ERROR
    # exit code -1: still running when OpenHands stopped waiting, not a process exit code.
    assert sc.PROCESS_EXIT_CODE not in server.attributes
    assert server.attributes[sc.ERROR_TYPE] == "timeout"
    assert server.status_code == STATUS_ERROR
    # It ends waiting for the user: no exit reason is made up.
    assert record.infra.exit_reason is None


def test_interactive_session_agent_messages_are_turns_without_tools() -> None:
    [spans], _ = read(need(OH / "basic_interactions.json"))
    record = only_attempt(spans)
    assert record.behavior.turn_count == 3
    assert record.behavior.tool_sequence == ["finish"]
    # Only the finish response recorded usage; the plain answers did not.
    assert record.tokens.model_calls == 1
    assert record.tokens.input_tokens_total == 2473
    assert record.tokens.cache_read_tokens == 2304
    assert record.reasoning.reasoning_tokens_total == 0
    assert record.infra.exit_reason == "submitted"


# ----------------------------------------------------------------------------- resolver output


def test_resolver_output_each_line_is_a_trajectory() -> None:
    path = need(OH / "resolver-output.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    trajectories, problems = read(path)
    assert problems == []
    assert len(trajectories) == len(lines) == 2
    for line, spans in zip(lines, trajectories, strict=True):
        record = only_attempt(spans)
        issue = line["issue"]
        assert record.task_id == f"{issue['owner']}/{issue['repo']}#{issue['number']}"
        history = line["history"]
        actions = [e for e in history if "action" in e][1:]  # the first is the task message
        observations = [e for e in history if "observation" in e]
        b = record.behavior
        # The oldest shape: one model call per agent action, one cost per call.
        assert b.turn_count == len(actions) == len(line["metrics"]["costs"])
        assert b.tool_call_count == len(actions)
        assert len(observations) == len(actions) - 1  # finish has none
        names = {"run": "execute_bash", "run_ipython": "execute_ipython_cell"}
        assert b.tool_sequence == [names.get(a["action"], a["action"]) for a in actions]
        assert record.tokens.cost_usd == pytest.approx(line["metrics"]["accumulated_cost"])
        turn_costs = [
            t.attributes[sc.AGENT_SIGNALS_USAGE_COST_USD] for t in of_type(spans, sc.SpanType.TURN)
        ]
        assert turn_costs == pytest.approx(line["metrics"]["costs"])
        assert record.tokens.input_tokens_total is None  # the file records no token counts
        assert b.touched_files == [p for p, _, _ in patch_stats(line["git_patch"])]
        assert record.infra.exit_reason == "submitted"
        assert record.verification.reward is None  # `success` is an LLM judge, not a verifier
        # No timestamps in this shape: times are synthesized, and marked.
        assert all(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) for s in spans)
    first, second = (only_attempt(s) for s in trajectories)
    assert first.behavior.touched_files == ["LICENSE"]
    # `touch LICENSE` and the IPython cell's open('LICENSE', 'w') changed it through the shell.
    assert first.behavior.step_changed_files == [["LICENSE"], ["LICENSE"], [], []]
    assert first.behavior.bash_mediated_edits is True
    assert second.behavior.touched_files == ["src/App.css", "src/PullRequestViewer.tsx"]
    # IPython agentskills calls are classified by what they do.
    cats = second.behavior.tool_category_sequence or []
    assert cats[:3] == ["search", "read", "edit"] and cats[-1] == "submit"
    assert second.behavior.edit_calls == cats.count("edit") == 15
    assert (second.behavior.step_files or [])[2] == ["/workspace/src/App.css"]
    # 11 of the 15 edits were rejected by the editor (syntax check, no exact match): they
    # changed nothing, so the files the edits changed are exactly the patch's files.
    history = lines[1]["history"]
    rejected = [
        e["content"].startswith(("[Your proposed edit", "[No exact match"))
        for e in history
        if e.get("observation") == "run_ipython" and "edit_file_by_replace" in e["code"]
    ]
    assert rejected.count(True) == second.behavior.tool_error_count == 11
    changed = {f for step in second.behavior.step_changed_files or [] for f in step}
    assert changed == {f"/workspace/{f}" for f in second.behavior.touched_files or []}


def test_resolver_output_with_a_corrupted_and_a_truncated_line(tmp_path: Path) -> None:
    lines = need(OH / "resolver-output.jsonl").read_text().splitlines()
    path = tmp_path / "output.jsonl"
    path.write_text(
        "\n".join([lines[0], '{"issue": {"owner": "x", "repo"', "[1, 2]", lines[1][:5000]]) + "\n"
    )
    trajectories, problems = read(path)
    assert len(trajectories) == 1
    assert only_attempt(trajectories[0]).task_id == "neubig/pr-viewer#5"
    assert [(p.path, p.line) for p in problems] == [(str(path), 2), (str(path), 3), (str(path), 4)]
    assert "truncated or corrupted" in problems[0].message
    assert str(path) in str(problems[0]) and ":2:" in str(problems[0])


# ------------------------------------------------------------------ SWE-bench evaluation output

PATCH = """diff --git a/pkg/core.py b/pkg/core.py
--- a/pkg/core.py
+++ b/pkg/core.py
@@ -1,2 +1,2 @@
-x = 1
+x = 2
 y = 3
"""


def _response(
    rid: str, calls: list[tuple[str, str, dict[str, Any]]], prompt: int
) -> dict[str, Any]:
    return {
        "id": rid,
        "created": 1_736_000_000,
        "model": "claude-sonnet-4-20250514",
        "object": "chat.completion",
        "choices": [
            {
                "finish_reason": "tool_calls",
                "index": 0,
                "message": {
                    "content": "Let me look.",
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": i,
                            "function": {"arguments": json.dumps(args), "name": name},
                            "id": cid,
                            "type": "function",
                        }
                        for i, (cid, name, args) in enumerate(calls)
                    ],
                },
            }
        ],
        "usage": {
            "completion_tokens": 50,
            "prompt_tokens": prompt,
            "total_tokens": prompt + 50,
            "prompt_tokens_details": {"cached_tokens": prompt - 100},
            "cache_creation_input_tokens": 90,
            "cache_read_input_tokens": prompt - 100,
        },
    }


def _history() -> list[dict[str, Any]]:
    """A CodeAct function-calling run in the event-stream shape of basic_gui_mode.json."""
    t = iter(f"2025-03-01T10:00:{s:02d}.000000" for s in range(60))
    r1 = _response(
        "resp-1",
        [
            ("c1", "str_replace_editor", {"command": "view", "path": "/testbed/pkg/core.py"}),
            ("c2", "execute_bash", {"command": "grep -rn 'x = 1' /testbed/pkg"}),
        ],
        1000,
    )
    r2 = _response(
        "resp-2",
        [
            (
                "c3",
                "str_replace_editor",
                {
                    "command": "str_replace",
                    "path": "/testbed/pkg/core.py",
                    "old_str": "x = 1",
                    "new_str": "x = 2",
                },
            )
        ],
        1500,
    )
    r3 = _response("resp-3", [("c4", "execute_bash", {"command": "python -m pytest -q"})], 2000)
    r4 = _response("resp-4", [("c5", "finish", {"message": "done"})], 2500)

    def meta(fn: str, cid: str, response: dict[str, Any]) -> dict[str, Any]:
        calls = len(response["choices"][0]["message"]["tool_calls"])
        return {
            "function_name": fn,
            "tool_call_id": cid,
            "model_response": response,
            "total_calls_in_response": calls,
        }

    return [
        {"id": 0, "timestamp": next(t), "source": "agent", "message": "", "action": "system",
         "args": {"content": "You are OpenHands", "agent_class": "CodeActAgent"}},
        {"id": 1, "timestamp": next(t), "source": "user", "message": "Fix it", "action": "message",
         "args": {"content": "Fix it", "image_urls": None, "wait_for_response": False}},
        {"id": 2, "timestamp": next(t), "source": "user", "action": "recall",
         "args": {"recall_type": "workspace_context", "query": "Fix it"}},
        {"id": 3, "timestamp": next(t), "source": "agent", "message": "Reading file",
         "action": "read", "tool_call_metadata": meta("str_replace_editor", "c1", r1),
         "args": {"path": "/testbed/pkg/core.py", "thought": "Let me look.",
                  "impl_source": "oh_aci"}},
        {"id": 4, "timestamp": next(t), "source": "agent", "message": "", "cause": 3,
         "observation": "read", "tool_call_metadata": meta("str_replace_editor", "c1", r1),
         "content": "x = 1\ny = 3\n", "extras": {"path": "/testbed/pkg/core.py"}},
        {"id": 5, "timestamp": next(t), "source": "agent", "message": "Running command",
         "action": "run", "tool_call_metadata": meta("execute_bash", "c2", r1),
         "args": {"command": "grep -rn 'x = 1' /testbed/pkg", "is_input": False, "thought": ""}},
        {"id": 6, "timestamp": next(t), "source": "agent", "message": "", "cause": 5,
         "observation": "run", "tool_call_metadata": meta("execute_bash", "c2", r1),
         "content": "/testbed/pkg/core.py:1:x = 1",
         "extras": {"command": "grep", "metadata": {"exit_code": 0}}, "success": True},
        {"id": 7, "timestamp": next(t), "source": "agent", "message": "", "action": "edit",
         "tool_call_metadata": meta("str_replace_editor", "c3", r2),
         "args": {"path": "/testbed/pkg/core.py", "command": "str_replace", "old_str": "x = 1",
                  "new_str": "x = 2", "thought": "", "impl_source": "oh_aci"}},
        {"id": 8, "timestamp": next(t), "source": "agent", "message": "", "cause": 7,
         "observation": "edit", "tool_call_metadata": meta("str_replace_editor", "c3", r2),
         "content": "The file has been edited.", "extras": {"path": "/testbed/pkg/core.py"}},
        {"id": 9, "timestamp": next(t), "source": "agent", "message": "Running command",
         "action": "run", "tool_call_metadata": meta("execute_bash", "c4", r3),
         "args": {"command": "python -m pytest -q", "thought": ""}},
        {"id": 10, "timestamp": next(t), "source": "agent", "message": "", "cause": 9,
         "observation": "run", "tool_call_metadata": meta("execute_bash", "c4", r3),
         "content": "F.\nFAILED tests/test_core.py::test_x - assert 2 == 3\n"
                    "1 failed, 1 passed in 0.05s",
         "extras": {"command": "python -m pytest -q", "metadata": {"exit_code": 1}},
         "success": False},
        {"id": 11, "timestamp": next(t), "source": "agent", "message": "done", "action": "finish",
         "tool_call_metadata": meta("finish", "c5", r4),
         "args": {"final_thought": "done", "task_completed": "true", "outputs": {}, "thought": ""}},
        {"id": 12, "timestamp": next(t), "source": "environment", "message": "",
         "observation": "agent_state_changed", "content": "",
         "extras": {"agent_state": "finished"}},
    ]  # fmt: skip


def _output_line(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "instance_id": "pkg__pkg-1",
        "test_result": {"git_patch": PATCH},
        "instruction": "Fix it",
        "metadata": {
            "agent_class": "CodeActAgent",
            "llm_config": {"model": "anthropic/claude-sonnet-4-20250514"},
            "max_iterations": 100,
            "dataset": "princeton-nlp/SWE-bench_Verified",
            "data_split": "test",
        },
        "history": _history(),
        "metrics": {
            "accumulated_cost": 0.1,
            "costs": [
                {"model": "m", "cost": c, "timestamp": 0.0} for c in (0.01, 0.02, 0.03, 0.04)
            ],
        },
        "error": None,
        "instance": {"instance_id": "pkg__pkg-1", "repo": "pkg/pkg"},
    }
    line.update(overrides)
    return line


def _write_jsonl(tmp_path: Path, *lines: dict[str, Any]) -> Path:
    path = tmp_path / "output.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_swebench_output_line(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path, _output_line())
    assert openhands.detect(path, path.read_bytes()[:65536])
    [spans], problems = read(path)
    assert problems == []
    record = only_attempt(spans)
    b = record.behavior
    assert record.task_id == "pkg__pkg-1"
    # Two tool calls of one response share its turn; system and recall actions are no turns.
    assert b.turn_count == 4
    assert b.tool_sequence == [
        "str_replace_editor",
        "execute_bash",
        "str_replace_editor",
        "execute_bash",
        "finish",
    ]
    assert b.tool_category_sequence == ["read", "search", "edit", "test", "submit"]
    tools = of_type(spans, sc.SpanType.TOOL)
    assert [t.attributes[sc.AGENT_SIGNALS_TURN_INDEX] for t in tools] == [0, 0, 1, 2, 3]
    assert b.step_changed_files == [[], [], ["/testbed/pkg/core.py"], [], []]
    assert b.touched_files == ["pkg/core.py"]
    assert record.verification.agent_last_run_failed == 1
    t = record.tokens
    assert t.input_tokens_total == 1000 + 1500 + 2000 + 2500
    assert t.output_tokens_total == 4 * 50
    assert t.cache_read_tokens == 7000 - 400 and t.cache_write_tokens == 4 * 90
    assert t.cost_usd == pytest.approx(0.1)
    assert record.treatment.model_id == "anthropic/claude-sonnet-4-20250514"
    assert record.treatment.dataset == "princeton-nlp/SWE-bench_Verified@test"
    assert record.treatment.attempt1_tool_cap == 100
    assert record.infra.exit_reason == "submitted"
    attempt = of_type(spans, sc.SpanType.ATTEMPT)[0]
    assert attempt.attributes[sc.GEN_AI_AGENT_NAME] == "CodeActAgent"
    # Claude without extended thinking: reasoning known to be absent, not unknown.
    assert record.reasoning.has_reasoning_blocks is False


@pytest.mark.parametrize(
    ("error", "reason", "mode", "error_type"),
    [
        (
            "RuntimeError: Agent reached maximum iteration in headless mode. "
            "Current iteration: 100, max iteration: 100",
            "max_turns",
            "max_iterations",
            None,
        ),
        ("AgentStuckInLoopError: Agent got stuck in a loop", "error", "stuck_in_loop",
         "AgentStuckInLoopError"),
        ("RuntimeError: Agent reached maximum budget for conversation.Current budget: 4.01, "
         "max budget: 4.00", "cost_limit", "max_budget", None),
        ("litellm.ContextWindowExceededError: prompt is too long", "context_overflow",
         "context_window", None),
        ("RuntimeError: runtime died", "error", "error", "RuntimeError"),
    ],
)  # fmt: skip
def test_swebench_output_errors_become_exit_reasons(
    tmp_path: Path, error: str, reason: str, mode: str, error_type: str | None
) -> None:
    history = [e for e in _history() if e.get("action") != "finish"]
    path = _write_jsonl(tmp_path, _output_line(error=error, history=history))
    [spans], _ = read(path)
    record = only_attempt(spans)
    assert record.infra.exit_reason == reason
    assert record.infra.final_failure_mode == mode
    attempt = of_type(spans, sc.SpanType.ATTEMPT)[0]
    assert attempt.attributes.get(sc.ERROR_TYPE) == error_type
    assert (attempt.status_code == STATUS_ERROR) == (error_type is not None)


def test_event_stream_error_state_is_the_exit_reason(tmp_path: Path) -> None:
    history = [e for e in _history() if e.get("action") != "finish"][:-1]
    history.append(
        {"id": 20, "timestamp": "2025-03-01T10:00:40.000000", "source": "environment",
         "observation": "agent_state_changed", "content": "",
         "extras": {"agent_state": "error",
                    "reason": "AgentStuckInLoopError: Agent got stuck in a loop"}}
    )  # fmt: skip
    path = tmp_path / "events.json"
    path.write_text(json.dumps(history))
    [spans], _ = read(path)
    record = only_attempt(spans)
    assert (record.infra.exit_reason, record.infra.final_failure_mode) == ("error", "stuck_in_loop")


def test_usage_from_metrics_token_usages_and_llm_metrics(tmp_path: Path) -> None:
    # Responses without usage: per-call usage from metrics.token_usages by response_id.
    history = _history()
    for e in history:
        response = (e.get("tool_call_metadata") or {}).get("model_response")
        if response:
            response.pop("usage", None)
    usages = [
        {"model": "m", "prompt_tokens": p, "completion_tokens": 7, "cache_read_tokens": 3,
         "cache_write_tokens": 1, "response_id": f"resp-{i}"}
        for i, p in ((1, 10), (2, 20), (3, 30), (4, 40))
    ]  # fmt: skip
    metrics = {"accumulated_cost": 0.5, "token_usages": usages, "costs": []}
    path = _write_jsonl(tmp_path, _output_line(history=history, metrics=metrics))
    [spans], _ = read(path)
    record = only_attempt(spans)
    assert record.tokens.context_growth_curve == [10, 20, 30, 40]
    assert record.tokens.output_tokens_total == 28
    assert record.tokens.cost_usd == pytest.approx(0.5)

    # Newer event streams: cumulative llm_metrics on each action; a turn is the growth.
    history = _history()
    acc, seen = 0, set()
    for e in history:
        response = (e.get("tool_call_metadata") or {}).get("model_response")
        if response:
            response.pop("usage", None)
        if e.get("action") and response:
            if response["id"] not in seen:  # one snapshot growth per model call
                seen.add(response["id"])
                acc += 100
            e["llm_metrics"] = {
                "accumulated_cost": acc / 1000,
                "accumulated_token_usage": {"prompt_tokens": acc, "completion_tokens": acc // 10},
            }
    path = tmp_path / "events.json"
    path.write_text(json.dumps(history))
    [spans], _ = read(path)
    record = only_attempt(spans)
    assert record.tokens.context_growth_curve == [100, 100, 100, 100]
    assert record.tokens.input_tokens_total == 400
    assert record.tokens.cost_usd == pytest.approx(0.4)


def test_pair_shaped_history(tmp_path: Path) -> None:
    """Older evaluation output: history as [action, observation] pairs, observations without
    `cause`."""
    events = [e for e in _history() if e.get("action") not in ("system", "recall")]
    for e in events:
        e.pop("cause", None)
    pairs: list[list[dict[str, Any]]] = [[events[0], {"observation": "null", "content": ""}]]
    rest = events[1:-1]
    for i in range(0, len(rest) - 1, 2):
        pairs.append([rest[i], rest[i + 1]])
    pairs.append([rest[-1], {"observation": "null", "content": "", "extras": {}}])
    path = _write_jsonl(tmp_path, _output_line(history=pairs))
    [spans], _ = read(path)
    record = only_attempt(spans)
    assert record.behavior.tool_call_count == 5
    assert record.verification.agent_last_run_failed == 1
    assert record.infra.exit_reason == "submitted"


def test_duplicate_instance_lines_stay_separate_trials(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path, _output_line(), _output_line())
    trajectories, _ = read(path)
    trial_ids = {only_attempt(s).trial_id for s in trajectories}
    assert len(trial_ids) == 2


# ---------------------------------------------------------------------------- broken input


def test_truncated_event_export_names_the_file_and_line(tmp_path: Path) -> None:
    text = need(OH / "basic_gui_mode.json").read_text()
    path = tmp_path / "basic_gui_mode.json"
    path.write_text(text[: len(text) // 2])
    assert openhands.detect(path, path.read_bytes()[:65536])
    with pytest.raises(TrajectoryError) as info:
        read(path)
    assert info.value.problem.path == str(path)
    assert info.value.problem.line > 0
    assert "truncated or corrupted" in str(info.value)


def test_bad_events_inside_an_export_are_reported_and_skipped(tmp_path: Path) -> None:
    events = json.loads(need(OH / "basic.json").read_text())
    path = tmp_path / "basic.json"
    path.write_text(json.dumps([*events[:2], 42, {"foo": 1}, *events[2:]]))
    [spans], problems = read(path)
    assert [p.message for p in problems] == [
        "history[2]: not an event object; skipped",
        "history[3]: not an event object; skipped",
    ]
    assert only_attempt(spans).behavior.tool_sequence == ["str_replace_editor", "finish"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.json", "", "empty file"),
        ("empty.jsonl", "\n\n", "empty file"),
        ("other.json", '{"hello": "world"}', "not an OpenHands trajectory"),
        ("binary.json", b"\xff\xfe[{\x00", "not UTF-8"),
    ],
)
def test_unreadable_files_raise_trajectory_error(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(TrajectoryError, match=message) as info:
        read(path)
    assert info.value.problem.path == str(path)


def test_a_line_without_history_is_reported(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path, {"instance_id": "a", "history": "nope"}, _output_line())
    trajectories, problems = read(path)
    assert len(trajectories) == 1
    assert [(p.line, p.message) for p in problems] == [(1, "no `history` list; line skipped")]


def test_detect_is_specific() -> None:
    for name in [*EVENT_FILES, "resolver-output.jsonl"]:
        path = need(OH / name)
        assert openhands.detect(path, path.read_bytes()[:65536]), name
    others = [p for p in DATA.rglob("*") if p.is_file() and p.parent.name != "openhands"]
    for path in others:
        assert not openhands.detect(path, path.read_bytes()[:65536]), path
    codex_file = DATA / "codex" / "redacted-session-01.jsonl"
    assert not codex.detect(
        OH / "resolver-output.jsonl", (OH / "resolver-output.jsonl").read_bytes()
    )
    assert not openhands.detect(codex_file, codex_file.read_bytes())
