"""Inspect AI eval logs (`.json` and zipped `.eval`) become trial › attempt › turn › tool spans:
the two real logs checked against what they say, a synthetic agentic log for tool calls,
reasoning, cached usage, epochs, limits and errors, and the broken files that must become
clear problems."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._import.formats import ImportProblem, TrajectoryError, inspect_ai
from agentsignals._spans.model import Span

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INSPECT = DATA / "inspect-ai"
needs_data = pytest.mark.skipif(
    not INSPECT.is_dir(),
    reason=f"real Inspect AI logs not present at {INSPECT} (see shared/data/SOURCES.md)",
)
JSON_LOG = INSPECT / "log_read_sample.json"
EVAL_LOG = INSPECT / "log_formats.eval"


def _read(path: Path) -> tuple[list[list[Span]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    trials = list(inspect_ai.read(path, problems.append))
    return trials, problems


def _of_type(spans: list[Span], kind: sc.SpanType) -> list[Span]:
    return [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == kind.value]


def _ns(stamp: str) -> int:
    return inspect_ai._ns(stamp) or 0


def _detect(path: Path) -> bool:
    with path.open("rb") as fh:
        return inspect_ai.detect(path, fh.read(64 * 1024))


# ------------------------------------------------------------------------------ real logs


@needs_data
def test_json_log_sample_becomes_one_trial_matching_the_file() -> None:
    log = json.loads(JSON_LOG.read_text())
    sample = log["samples"][0]
    trials, problems = _read(JSON_LOG)
    assert problems == []
    assert len(trials) == len(log["samples"]) == 1
    spans = trials[0]
    (trial,) = _of_type(spans, sc.SpanType.TRIAL)
    (attempt,) = _of_type(spans, sc.SpanType.ATTEMPT)
    turns = _of_type(spans, sc.SpanType.TURN)
    assert _of_type(spans, sc.SpanType.TOOL) == []

    assert trial.attributes[sc.AGENT_SIGNALS_TASK_ID] == "popularity/1"
    assert trial.attributes[sc.AGENT_SIGNALS_RUN_ID] == log["eval"]["run_id"]
    assert trial.attributes[sc.AGENT_SIGNALS_IMPORT_FORMAT] == "inspect-ai"
    assert str(trial.attributes[sc.AGENT_SIGNALS_IMPORT_SOURCE]).startswith(str(JSON_LOG))
    assert attempt.attributes[sc.AGENT_SIGNALS_TREATMENT_MODEL_ID] == "ollama/gemma3"
    assert attempt.attributes[sc.GEN_AI_PROVIDER_NAME] == "ollama"
    assert attempt.attributes[sc.AGENT_SIGNALS_TREATMENT_DATASET] == "popularity"
    assert attempt.attributes[sc.GEN_AI_CONVERSATION_ID] == sample["uuid"]
    assert attempt.attributes[sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON] == "submitted"

    # One assistant message, one turn, with the model event's usage and times.
    assistant = [m for m in sample["messages"] if m["role"] == "assistant"]
    assert len(turns) == len(assistant) == 1
    usage = sample["model_usage"]["ollama/gemma3"]
    assert turns[0].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == usage["input_tokens"] == 66
    assert turns[0].attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["output_tokens"] == 3
    assert turns[0].attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    model_event = next(e for e in sample["events"] if e["event"] == "model")
    assert turns[0].start_ns == _ns(model_event["timestamp"])
    assert turns[0].end_ns == _ns(model_event["completed"])
    assert not any(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME in s.attributes for s in spans)

    result = features.from_spans(spans)
    (record,) = result.attempts
    assert record.behavior.turn_count == 1
    assert (
        record.tokens.input_tokens_total
        == log["stats"]["model_usage"]["ollama/gemma3"]["input_tokens"]
    )
    assert record.tokens.output_tokens_total == 3
    assert record.verification.reward == 1.0  # score "C"
    assert record.verification.outcome_source == "inspect-ai score match"
    (trial_record,) = result.trials
    assert trial_record.task_id == "popularity/1"
    assert trial_record.final_reward == 1.0
    assert trial_record.resolved_on_attempt == 0
    assert trial_record.wall_time_s == pytest.approx(
        (_ns(sample["events"][-1]["timestamp"]) - _ns(sample["events"][0]["timestamp"])) / 1e9
    )


@needs_data
def test_eval_zip_sample_becomes_one_trial_matching_the_file() -> None:
    with zipfile.ZipFile(EVAL_LOG) as archive:
        header = json.loads(archive.read("header.json"))
        sample = json.loads(archive.read("samples/1_epoch_1.json"))
    trials, problems = _read(EVAL_LOG)
    assert problems == []
    assert len(trials) == 1
    spans = trials[0]
    (trial,) = _of_type(spans, sc.SpanType.TRIAL)
    (attempt,) = _of_type(spans, sc.SpanType.ATTEMPT)
    turns = _of_type(spans, sc.SpanType.TURN)
    assert trial.attributes[sc.AGENT_SIGNALS_IMPORT_SOURCE] == f"{EVAL_LOG}#samples/1_epoch_1.json"
    assert trial.attributes[sc.AGENT_SIGNALS_RUN_ID] == header["eval"]["run_id"]
    assert attempt.attributes[sc.AGENT_SIGNALS_TREATMENT_MODEL_ID] == "ollama/llama3.1"
    assert len(turns) == 1
    # Older events are stamped when the call ended: the turn ends at the model event.
    model_event = next(e for e in sample["events"] if e["event"] == "model")
    assert turns[0].end_ns == _ns(model_event["timestamp"])
    assert turns[0].start_ns < turns[0].end_ns

    result = features.from_spans(spans)
    (record,) = result.attempts
    usage = header["stats"]["model_usage"]["ollama/llama3.1"]
    assert record.tokens.input_tokens_total == usage["input_tokens"] == 66
    assert record.tokens.output_tokens_total == usage["output_tokens"] == 2
    assert record.verification.reward == 0.0  # score "I"
    assert record.infra.exit_reason == "submitted"
    assert result.trials[0].resolved_on_attempt is None


@needs_data
def test_detect_claims_both_real_logs_and_no_other_shared_file() -> None:
    assert _detect(JSON_LOG)
    assert _detect(EVAL_LOG)
    others = [
        p
        for p in DATA.rglob("*")
        if p.is_file() and INSPECT not in p.parents and p.suffix in {".json", ".jsonl", ".eval"}
    ]
    assert others
    assert [p for p in others if _detect(p)] == []


@needs_data
def test_importing_twice_gives_the_same_ids() -> None:
    first, _ = _read(EVAL_LOG)
    second, _ = _read(EVAL_LOG)
    assert [s.span_id for s in first[0]] == [s.span_id for s in second[0]]
    assert first[0][0].trace_id == second[0][0].trace_id


# -------------------------------------------------------------------------- synthetic log

T0 = "2025-07-05T10:00:00.000000+00:00"


def _at(seconds: float) -> str:
    return f"2025-07-05T10:00:{seconds:09.6f}+00:00"


def _assistant(
    mid: str, text: str, calls: list[dict[str, Any]], reasoning: str | None = None
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reasoning is not None:
        content.append({"type": "reasoning", "reasoning": reasoning})
    content.append({"type": "text", "text": text})
    return {
        "id": mid,
        "role": "assistant",
        "content": content,
        "source": "generate",
        "model": "claude-sonnet-4",
        "tool_calls": calls or None,
    }


def _model_event(
    message: dict[str, Any], start: float, end: float, usage: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "event": "model",
        "timestamp": _at(start),
        "completed": _at(end),
        "model": "anthropic/claude-sonnet-4",
        "output": {
            "model": "claude-sonnet-4",
            "choices": [{"message": message, "stop_reason": "tool_calls"}],
            "usage": usage,
        },
        **extra,
    }


def _usage(inp: int, out: int, cache_read: int = 0, cache_write: int = 0) -> dict[str, Any]:
    # Anthropic through Inspect: input excludes the cache, the total includes it.
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "input_tokens_cache_read": cache_read,
        "input_tokens_cache_write": cache_write,
        "total_tokens": inp + out + cache_read + cache_write,
    }


def _agent_sample(sample_id: int = 7, epoch: int = 1) -> dict[str, Any]:
    ls = {"id": "call_ls", "function": "bash", "arguments": {"cmd": "ls src"}, "type": "function"}
    edit = {
        "id": "call_edit",
        "function": "text_editor",
        "arguments": {"command": "str_replace", "path": "src/a.py", "old_str": "x", "new_str": "y"},
    }
    test = {"id": "call_test", "function": "bash", "arguments": {"cmd": "python -m pytest -q"}}
    never_ran = {"id": "call_late", "function": "bash", "arguments": {"cmd": "ls"}}
    submit = {"id": "call_submit", "function": "submit", "arguments": {"answer": "done"}}
    plan = "1. Look at the code\n2. Fix it\nWait, check the tests first."
    a1 = _assistant("m1", "Let me look.", [ls], reasoning=plan)
    a2 = _assistant("m2", "Editing.", [edit])
    a3 = _assistant("m3", "Testing.", [test, never_ran])
    a4 = _assistant("m4", "Submitting.", [submit], reasoning="")
    pytest_out = "F..\nFAILED tests/test_a.py::test_x - assert 1 == 2\n1 failed, 2 passed in 0.12s"
    messages = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Fix the bug.", "source": "input"},
        a1,
        {"role": "tool", "tool_call_id": "call_ls", "function": "bash", "content": "a.py\nb.py"},
        a2,
        {
            "role": "tool",
            "tool_call_id": "call_edit",
            "function": "text_editor",
            "content": "",
            "error": {"type": "unknown", "message": "old_str not found"},
        },
        a3,
        {"role": "tool", "tool_call_id": "call_test", "function": "bash", "content": pytest_out},
        a4,
        {"role": "tool", "tool_call_id": "call_submit", "function": "submit", "content": "done"},
    ]
    events: list[dict[str, Any]] = [
        {"event": "span_begin", "id": "s-solvers", "type": "solvers", "timestamp": _at(0)},
        _model_event(a1, 1, 2, _usage(10, 20, cache_read=100, cache_write=5), span_id="s-solvers"),
        {"event": "tool", "id": "call_ls", "function": "bash", "timestamp": _at(2.5),
         "completed": _at(3), "span_id": "s-solvers"},
        _model_event(a2, 3, 4, _usage(12, 30, cache_read=120), span_id="s-solvers"),
        {"event": "tool", "id": "call_edit", "function": "text_editor", "timestamp": _at(4),
         "completed": _at(4.5), "span_id": "s-solvers"},
        # A call that failed and produced no message: its usage still counts.
        _model_event(
            {"role": "assistant", "content": ""}, 4.6, 4.8, _usage(3, 0), span_id="s-solvers"
        ),
        _model_event(a3, 5, 6, _usage(15, 40), span_id="s-solvers"),
        # Newer logs: the tool event inside its tool span, then what the tool did (here a model
        # call of its own, like an agent used as a tool).
        {"event": "span_begin", "id": "s-tool", "type": "tool", "name": "bash",
         "parent_id": "s-solvers", "timestamp": _at(6)},
        {"event": "tool", "id": "call_test", "function": "bash", "timestamp": _at(6),
         "completed": _at(8), "span_id": "s-solvers"},
        _model_event({"role": "assistant", "content": "inner"}, 6.5, 7, _usage(4, 1, cache_read=3),
                     span_id="s-tool"),
        {"event": "span_end", "id": "s-tool", "timestamp": _at(8)},
        _model_event(a4, 8, 9, _usage(20, 10, cache_read=200, cache_write=20),
                     span_id="s-solvers"),
        {"event": "tool", "id": "call_submit", "function": "submit", "timestamp": _at(9),
         "completed": _at(9.1), "span_id": "s-solvers"},
        {"event": "span_end", "id": "s-solvers", "timestamp": _at(9.2)},
        {"event": "span_begin", "id": "s-scorers", "type": "scorers", "timestamp": _at(9.3)},
        {"event": "span_begin", "id": "s-grade", "type": "scorer", "parent_id": "s-scorers",
         "timestamp": _at(9.3)},
        # A model-graded scorer's call: not the agent's.
        _model_event({"role": "assistant", "content": "GRADE: C"}, 9.4, 9.6, _usage(500, 5),
                     span_id="s-grade"),
        {"event": "span_end", "id": "s-scorers", "timestamp": _at(10)},
    ]  # fmt: skip
    return {
        "id": sample_id,
        "epoch": epoch,
        "uuid": f"uuid-{sample_id}-{epoch}",
        "input": "Fix the bug.",
        "target": "fixed",
        "messages": messages,
        "output": {"model": "claude-sonnet-4", "choices": [{"message": a4, "stop_reason": "stop"}]},
        "scores": {
            "notes": {"value": {"a": 1}},  # not a number: skipped
            "includes": {"value": "C", "answer": "done"},
        },
        "events": events,
        "model_usage": {"anthropic/claude-sonnet-4": _usage(60, 100, 420, 25)},
        "total_time": 10.0,
        "working_time": 9.0,
        "error_retries": [],
    }


def _log(samples: list[Any]) -> dict[str, Any]:
    return {
        "version": 2,
        "status": "success",
        "eval": {
            "run_id": "RUN1",
            "task": "bugfix",
            "task_id": "TASK1",
            "dataset": {"name": "bugs-v1"},
            "model": "anthropic/claude-sonnet-4",
            "solver": "react",
            "config": {"time_limit": 600},
            "scorers": [{"name": "includes"}, {"name": "notes"}],
        },
        "plan": {"steps": [{"solver": "react"}]},
        "stats": {},
        "samples": samples,
    }


def _write_json(tmp_path: Path, doc: dict[str, Any], name: str = "log.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def _write_eval(tmp_path: Path, doc: dict[str, Any], name: str = "log.eval") -> Path:
    path = tmp_path / name
    header = {k: v for k, v in doc.items() if k != "samples"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("_journal/start.json", json.dumps(header))
        for sample in doc["samples"]:
            member = f"samples/{sample['id']}_epoch_{sample['epoch']}.json"
            archive.writestr(member, json.dumps(sample))
        archive.writestr("header.json", json.dumps(header))
    return path


@pytest.mark.parametrize("writer", [_write_json, _write_eval], ids=["json", "eval"])
def test_agentic_sample_turns_tools_usage_reasoning_and_outcome(
    tmp_path: Path, writer: Callable[[Path, dict[str, Any]], Path]
) -> None:
    trials, problems = _read(writer(tmp_path, _log([_agent_sample()])))
    assert problems == []
    (spans,) = trials
    (attempt,) = _of_type(spans, sc.SpanType.ATTEMPT)
    turns = _of_type(spans, sc.SpanType.TURN)
    tools = _of_type(spans, sc.SpanType.TOOL)
    assert attempt.attributes[sc.AGENT_SIGNALS_TASK_ID] == "bugfix/7"
    assert attempt.attributes[sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE] == "react"
    assert attempt.attributes[sc.GEN_AI_AGENT_NAME] == "react"
    assert attempt.attributes[sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S] == 600.0
    assert attempt.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attempt.attributes[sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON] == "submitted"
    assert len(turns) == 4

    # Usage per call, input including the cache (Inspect's input excludes it here).
    assert [t.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for t in turns] == [115, 132, 15, 240]
    assert turns[0].attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert turns[0].start_ns == _ns(_at(1)) and turns[0].end_ns == _ns(_at(2))
    assert turns[0].attributes[sc.AGENT_SIGNALS_TURN_REASONING_PRESENT] is True
    assert turns[0].attributes[sc.AGENT_SIGNALS_TURN_REASONING_PLAN_STEPS] == 2
    assert turns[0].attributes[sc.AGENT_SIGNALS_TURN_REASONING_SELF_CORRECTIONS] == 1
    assert turns[1].attributes[sc.AGENT_SIGNALS_TURN_REASONING_PRESENT] is False

    # Tool calls that ran, with the turn that asked, results and errors; the one that never
    # ran (no result, no event) is left out.
    by_call = {t.attributes[sc.GEN_AI_TOOL_CALL_ID]: t for t in tools}
    assert list(by_call) == ["call_ls", "call_edit", "call_test", "call_submit"]
    assert [t.attributes[sc.AGENT_SIGNALS_TURN_INDEX] for t in tools] == [0, 1, 2, 3]
    ls, edit, test, submit = by_call.values()
    assert ls.attributes[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "search"
    assert ls.attributes[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] == len("a.py\nb.py")
    assert ls.start_ns == _ns(_at(2.5)) and ls.end_ns == _ns(_at(3))
    assert edit.attributes[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "edit"
    assert edit.attributes[sc.AGENT_SIGNALS_TOOL_FILES] == ["src/a.py"]
    assert edit.attributes[sc.ERROR_TYPE] == "ToolError"
    assert edit.status_code == 2
    assert test.attributes[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "test"
    assert test.attributes[sc.AGENT_SIGNALS_TEST_FAILED_COUNT] == 1
    assert submit.attributes[sc.AGENT_SIGNALS_TOOL_CATEGORY] == "submit"
    assert not any(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME in s.attributes for s in spans)
    # Model calls no message claims: the failed one under the attempt, the tool's own under it.
    calls = [s for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == "chat"]
    assert [c.parent_span_id for c in calls] == [attempt.span_id, test.span_id]
    assert [c.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for c in calls] == [3, 7]
    # The tool's own call keeps its cache read (a subset of its cache-inclusive input).
    assert calls[1].attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3

    result = features.from_spans(spans)
    (record,) = result.attempts
    assert record.behavior.turn_count == 4
    assert record.behavior.tool_call_count == 4
    # The four turns, the failed call and the tool's call; the scorer's call is not the agent's.
    assert record.tokens.input_tokens_total == 115 + 132 + 3 + 15 + 7 + 240
    assert record.tokens.output_tokens_total == 20 + 30 + 0 + 40 + 1 + 10
    assert record.tokens.cache_read_tokens == 100 + 120 + 3 + 200
    assert record.tokens.model_calls == 6
    assert record.reasoning.has_reasoning_blocks is True
    assert record.verification.reward == 1.0
    assert record.verification.outcome_source == "inspect-ai score includes"
    assert record.verification.agent_test_runs == 1


def test_epochs_are_separate_trials_of_one_task(tmp_path: Path) -> None:
    first = _agent_sample(epoch=1)
    second = _agent_sample(epoch=2)
    second["scores"]["includes"]["value"] = "I"
    trials, problems = _read(_write_eval(tmp_path, _log([first, second])))
    assert problems == []
    result = features.from_spans([s for spans in trials for s in spans])
    assert len(result.trials) == 2
    assert {t.task_id for t in result.trials} == {"bugfix/7"}
    assert sorted(t.final_reward or 0.0 for t in result.trials) == [0.0, 1.0]
    assert all(t.attempt_count == 1 and t.retries == [] for t in result.trials)
    assert len({spans[0].trace_id for spans in trials}) == 2


def test_attempt_totals_when_the_sample_has_no_events(tmp_path: Path) -> None:
    sample = _agent_sample()
    sample.pop("events")
    trials, problems = _read(_write_json(tmp_path, _log([sample])))
    assert problems == []
    (spans,) = trials
    (attempt,) = _of_type(spans, sc.SpanType.ATTEMPT)
    assert attempt.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 60 + 420 + 25
    assert attempt.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 100
    assert all(sc.GEN_AI_USAGE_INPUT_TOKENS not in t.attributes for t in spans[2:])
    assert all(s.attributes[sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME] is True for s in spans)
    (record,) = features.from_spans(spans).attempts
    assert record.tokens.input_tokens_total == 505
    assert record.behavior.turn_count == 4


def test_errors_limits_and_error_retries(tmp_path: Path) -> None:
    errored = _agent_sample(sample_id=1)
    errored["error"] = {
        "message": "RuntimeError('sandbox died')",
        "traceback": "Traceback (most recent call last):\n  ...\nRuntimeError: sandbox died\n",
    }
    errored["scores"] = {}
    limited = _agent_sample(sample_id=2)
    limited["limit"] = {"type": "message", "limit": 8}
    retried = _agent_sample(sample_id=3)
    retried["error_retries"] = [{"message": "TimeoutError()", "traceback": ""}]
    trials, problems = _read(_write_json(tmp_path, _log([errored, limited, retried])))
    assert problems == []
    result = features.from_spans([s for spans in trials for s in spans])
    by_task = {t.task_id: t for t in result.trials}
    first = by_task["bugfix/1"].first_attempt
    assert first is not None and first.infra.exit_reason == "error"
    (attempt,) = _of_type(trials[0], sc.SpanType.ATTEMPT)
    assert attempt.attributes[sc.ERROR_TYPE] == "RuntimeError"
    limited_first = by_task["bugfix/2"].first_attempt
    assert limited_first is not None and limited_first.infra.exit_reason == "max_turns"
    retried_trial = by_task["bugfix/3"]
    assert retried_trial.attempt_count == 2
    assert retried_trial.first_attempt is not None
    assert retried_trial.first_attempt.infra.exit_reason == "error"
    assert retried_trial.first_attempt.behavior.turn_count in (0, None)
    assert retried_trial.resolved_on_attempt == 1


def test_attachment_references_in_events_are_resolved(tmp_path: Path) -> None:
    sample = _agent_sample()
    long_reasoning = "1. first\n2. second\n" + "x" * 200
    sample["messages"][2]["content"][0]["reasoning"] = long_reasoning
    # Tool results only in the events, their text an attachment.
    sample["messages"] = [m for m in sample["messages"] if m["role"] != "tool"]
    sample["attachments"] = {"abc": "a.py\nb.py\nc.py"}
    for event in sample["events"]:
        if event.get("id") == "call_ls":
            event["result"] = "attachment://abc"
        elif event["event"] == "tool":
            event["result"] = "ok"
    trials, problems = _read(_write_json(tmp_path, _log([sample])))
    assert problems == []
    tools = _of_type(trials[0], sc.SpanType.TOOL)
    assert tools[0].attributes[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] == len("a.py\nb.py\nc.py")
    turns = _of_type(trials[0], sc.SpanType.TURN)
    assert turns[0].attributes[sc.AGENT_SIGNALS_TURN_REASONING_CHARS] == len(long_reasoning)


# ----------------------------------------------------------------------------- bad inputs


@needs_data
def test_truncated_json_log_names_file_and_line(tmp_path: Path) -> None:
    data = JSON_LOG.read_bytes()
    path = tmp_path / "truncated.json"
    path.write_bytes(data[: len(data) // 2])
    assert _detect(path)
    with pytest.raises(TrajectoryError) as info:
        _read(path)
    assert str(path) in str(info.value)
    assert "truncated" in str(info.value)
    assert info.value.problem.line == data[: len(data) // 2].count(b"\n") + 1


def test_json_that_is_not_an_eval_log(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"version": 1, "samples": []}')
    with pytest.raises(TrajectoryError, match="no `eval` header"):
        _read(path)
    empty = _write_json(tmp_path, {**_log([]), "samples": []}, "empty.json")
    trials, problems = _read(empty)
    assert trials == [] and len(problems) == 1 and "no samples" in problems[0].message


def test_bad_json_sample_is_reported_and_the_rest_import(tmp_path: Path) -> None:
    broken = _agent_sample(sample_id=2)
    broken["messages"] = "not a list"
    broken["events"] = {"not": "a list"}
    doc = _log([_agent_sample(sample_id=1), "garbage", broken])
    trials, problems = _read(_write_json(tmp_path, doc))
    assert len(trials) == 2  # the odd sample still yields a trial with what it has
    assert len(problems) == 1 and "sample 2: not a JSON object" in problems[0].message


@needs_data
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_eval_zip_names_the_file(tmp_path: Path, damage: str) -> None:
    data = EVAL_LOG.read_bytes()
    path = tmp_path / "broken.eval"
    path.write_bytes(b"not a zip at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(TrajectoryError) as info:
        _read(path)
    assert str(path) in str(info.value)


def test_eval_zip_with_broken_members_reports_them_and_imports_the_rest(tmp_path: Path) -> None:
    good = _agent_sample(sample_id=1)
    truncated = json.dumps(_agent_sample(sample_id=2))
    corrupt = json.dumps(_agent_sample(sample_id=3)).encode()
    header = {k: v for k, v in _log([]).items() if k != "samples"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("header.json", json.dumps(header))
        archive.writestr("samples/1_epoch_1.json", json.dumps(good), zipfile.ZIP_DEFLATED)
        archive.writestr("samples/2_epoch_1.json", truncated[: len(truncated) // 2])
        archive.writestr("samples/3_epoch_1.json", corrupt, zipfile.ZIP_STORED)
    data = bytearray(buffer.getvalue())
    # Flip bytes inside the stored member's data: its CRC no longer matches.
    at = bytes(data).index(corrupt[:40]) + 20
    data[at : at + 4] = b"####"
    path = tmp_path / "members.eval"
    path.write_bytes(bytes(data))

    trials, problems = _read(path)
    assert len(trials) == 1
    assert trials[0][0].attributes[sc.AGENT_SIGNALS_TASK_ID] == "bugfix/1"
    assert len(problems) == 2
    truncated_problem, crc_problem = problems
    assert truncated_problem.path == str(path)
    assert truncated_problem.message.startswith("samples/2_epoch_1.json: truncated JSON")
    assert crc_problem.message.startswith("samples/3_epoch_1.json: cannot read zip member")


def test_eval_zip_without_a_readable_header(tmp_path: Path) -> None:
    path = tmp_path / "noheader.eval"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("samples/1_epoch_1.json", json.dumps(_agent_sample()))
    with pytest.raises(TrajectoryError, match=r"no header\.json"):
        _read(path)
    bad = tmp_path / "badheader.eval"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("header.json", '{"version": 2, "eval": {')
    with pytest.raises(TrajectoryError, match=r"header\.json.*truncated JSON"):
        _read(bad)


def test_header_falls_back_to_the_journal_start(tmp_path: Path) -> None:
    doc = _log([_agent_sample()])
    path = tmp_path / "running.eval"
    with zipfile.ZipFile(path, "w") as archive:
        header = {k: v for k, v in doc.items() if k != "samples"}
        archive.writestr("_journal/start.json", json.dumps(header))
        archive.writestr("samples/7_epoch_1.json", json.dumps(copy.deepcopy(doc["samples"][0])))
    trials, problems = _read(path)
    assert problems == [] and len(trials) == 1


def test_broken_header_is_reported_when_the_journal_start_reads(tmp_path: Path) -> None:
    doc = _log([_agent_sample()])
    header = {k: v for k, v in doc.items() if k != "samples"}
    path = tmp_path / "halfheader.eval"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.json", json.dumps(header)[:50])
        archive.writestr("_journal/start.json", json.dumps(header))
        archive.writestr("samples/7_epoch_1.json", json.dumps(doc["samples"][0]))
    trials, problems = _read(path)
    assert len(trials) == 1
    (problem,) = problems
    assert "header.json" in problem.message and "truncated JSON" in problem.message


@needs_data
def test_every_truncation_of_the_real_json_log_is_a_trajectory_error(tmp_path: Path) -> None:
    data = JSON_LOG.read_bytes()
    path = tmp_path / "cut.json"
    for cut in range(1, len(data) - 2, 97):
        path.write_bytes(data[:cut])
        with pytest.raises(TrajectoryError) as info:
            _read(path)
        assert info.value.problem.path == str(path)
        assert info.value.problem.line >= 1
