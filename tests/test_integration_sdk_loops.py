"""Hand-written agent loops on the OpenAI, Anthropic and LiteLLM SDKs, against a scripted model
server on loopback, on a real git repository: `agentsignals.instrument("openai")` (and
"anthropic", "litellm") turns every model call into a turn with usage and cost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import uninstrument
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import FIX, make_repo, run_bash, run_pytest, tree
from scripted_llm import ScriptedLLM, Step

_IN, _CACHED, _OUT = 0.15e-6, 0.075e-6, 0.6e-6
USAGE = [(1000, 50, 0), (1200, 60, 800), (1400, 70, 1000), (1600, 40, 1200)]
SCRIPT = [
    Step(tools=[("read_file", {"path": "stats.py"})], usage=USAGE[0]),
    Step(tools=[("bash", {"command": FIX})], usage=USAGE[1]),
    Step(tools=[("run_tests", {})], usage=USAGE[2]),
    Step(text="Fixed add().", usage=USAGE[3]),
]


def _cost(usage: list[tuple[int, int, int]]) -> float:
    return sum((p - c) * _IN + c * _CACHED + o * _OUT for p, o, c in usage)


@pytest.fixture
def off() -> Iterator[None]:
    yield
    for name in ("openai", "anthropic", "litellm"):
        uninstrument(name)


def _tools(repo: Path) -> dict[str, Any]:
    @agentsignals.trace_tool
    def read_file(path: str) -> str:
        return (repo / path).read_text()

    @agentsignals.trace_tool
    def bash(command: str) -> str:
        out, code = run_bash(repo, command)
        agentsignals.current_tool().set_exit_code(code)
        return out

    @agentsignals.trace_tool
    def run_tests() -> str:
        out, code = run_pytest(repo)
        agentsignals.current_tool().set_exit_code(code)
        return out

    return {"read_file": read_file, "bash": bash, "run_tests": run_tests}


def _check(captured: CapturedSpans, *, cost: bool = True) -> None:
    assert tree(captured.spans) == [
        "trial tiny__stats-1",
        "  invoke_agent",
        "    turn 0",
        "    execute_tool read_file",
        "    turn 1",
        "    execute_tool bash",
        "    turn 2",
        "    execute_tool run_tests",
        "    turn 3",
    ]
    [record] = features.from_spans(captured.spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.tool_category_sequence == ["read", "shell", "test"]
    assert b.touched_files == ["stats.py"]
    assert b.bash_mediated_edits is True
    assert b.validated_after_last_edit is True
    assert tok.input_tokens_total == 5200
    assert tok.output_tokens_total == 220
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 4
    if cost:
        assert tok.cost_usd == pytest.approx(_cost(USAGE), rel=1e-9)


def test_openai_chat_loop(tmp_path: Path, captured: CapturedSpans, off: None) -> None:
    openai = pytest.importorskip("openai")
    repo = make_repo(tmp_path)
    tools = _tools(repo)
    assert agentsignals.instrument("openai")
    with ScriptedLLM(list(SCRIPT)) as llm:
        client = openai.OpenAI(base_url=llm.openai_url, api_key="x")
        messages: list[Any] = [{"role": "user", "content": "add() subtracts"}]
        with (
            agentsignals.trial("tiny__stats-1"),
            agentsignals.attempt(workspace=str(repo)),
        ):
            while True:
                reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                message = reply.choices[0].message
                messages.append(message.model_dump())
                if not message.tool_calls:
                    break
                for call in message.tool_calls:
                    result = tools[call.function.name](**json.loads(call.function.arguments))
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    _check(captured)
    turn = attributes(captured.spans_of_type("turn")[0])
    assert turn["gen_ai.request.model"] == "gpt-4o-mini"
    assert turn["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert turn["agent_signals.usage.cost_source"] == "estimated"
    assert turn["agent_signals.usage.price_source"].endswith(": openai/gpt-4o-mini")


def test_openai_streamed_with_openinference_on(
    tmp_path: Path, captured: CapturedSpans, off: None
) -> None:
    """Streamed calls, with OpenInference's OpenAI instrumentor on at the same time: its
    ChatCompletion span nests under our turn, and tokens are counted once."""
    openai = pytest.importorskip("openai")
    oi = pytest.importorskip("openinference.instrumentation.openai")
    instrumentor = oi.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=captured.provider)
    repo = make_repo(tmp_path)
    tools = _tools(repo)
    agentsignals.instrument("openai")
    try:
        with ScriptedLLM(list(SCRIPT)) as llm:
            client = openai.OpenAI(base_url=llm.openai_url, api_key="x")
            messages: list[Any] = [{"role": "user", "content": "add() subtracts"}]
            with agentsignals.trial("tiny__stats-1"), agentsignals.attempt(workspace=str(repo)):
                for _ in range(4):
                    stream = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=messages,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    calls: dict[int, dict[str, str]] = {}
                    for chunk in stream:
                        for choice in chunk.choices:
                            for tc in choice.delta.tool_calls or []:
                                slot = calls.setdefault(tc.index, {"name": "", "args": ""})
                                slot["name"] += tc.function.name or ""
                                slot["args"] += tc.function.arguments or ""
                    for call in calls.values():
                        tools[call["name"]](**json.loads(call["args"] or "{}"))
                    messages.append({"role": "user", "content": "go on"})
    finally:
        instrumentor.uninstrument()
    spans = captured.spans
    turns = captured.spans_of_type("turn")
    chat = [s for s in spans if attributes(s).get("openinference.span.kind") == "LLM"]
    assert len(chat) == 4
    turn_ids = [t.context.span_id for t in turns]
    assert [s.parent.span_id for s in chat if s.parent] == turn_ids
    _check(captured, cost=True)


def test_anthropic_loop_streamed_and_not(
    tmp_path: Path, captured: CapturedSpans, off: None
) -> None:
    anthropic = pytest.importorskip("anthropic")
    repo = make_repo(tmp_path)
    tools = _tools(repo)
    assert agentsignals.instrument("anthropic")
    with ScriptedLLM(list(SCRIPT), model="claude-sonnet-4-5") as llm:
        client = anthropic.Anthropic(base_url=llm.base_url, api_key="x")
        messages: list[Any] = [{"role": "user", "content": "add() subtracts"}]
        with agentsignals.trial("tiny__stats-1"), agentsignals.attempt(workspace=str(repo)):
            for i in range(4):
                kwargs = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages}
                if i % 2:
                    events = list(client.messages.create(stream=True, **kwargs))
                    uses = [
                        e.content_block
                        for e in events
                        if e.type == "content_block_start" and e.content_block.type == "tool_use"
                    ]
                    args = [
                        json.loads(e.delta.partial_json)
                        for e in events
                        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
                    ]
                    pairs = [(u.name, a) for u, a in zip(uses, args, strict=True)]
                else:
                    reply = client.messages.create(**kwargs)
                    pairs = [(b.name, b.input) for b in reply.content if b.type == "tool_use"]
                for name, a in pairs:
                    tools[name](**a)
                messages.append({"role": "assistant", "content": "ok"})
                messages.append({"role": "user", "content": "go on"})
    _check(captured, cost=False)
    turns = [attributes(t) for t in captured.spans_of_type("turn")]
    assert [t["gen_ai.provider.name"] for t in turns] == ["anthropic"] * 4
    assert [t["gen_ai.response.finish_reasons"] for t in turns] == [
        ["tool_use"], ["tool_use"], ["tool_use"], ["end_turn"]
    ]  # fmt: skip
    # Anthropic's input_tokens exclude the cache; GenAI's include it.
    assert turns[1]["gen_ai.usage.input_tokens"] == 1200
    assert turns[1]["gen_ai.usage.cache_read.input_tokens"] == 800
    # claude-sonnet-4-5 list prices: $3 / $0.30 cached / $15 per million tokens.
    expected = sum((p - c) * 3e-6 + c * 0.3e-6 + o * 15e-6 for p, o, c in USAGE)
    [record] = features.from_spans(captured.spans).attempts
    assert record.tokens.cost_usd == pytest.approx(expected, rel=1e-9)


def test_litellm_loop(tmp_path: Path, captured: CapturedSpans, off: None) -> None:
    litellm = pytest.importorskip("litellm")
    repo = make_repo(tmp_path)
    tools = _tools(repo)
    assert agentsignals.instrument("litellm")
    with ScriptedLLM(list(SCRIPT)) as llm:
        messages: list[Any] = [{"role": "user", "content": "add() subtracts"}]
        with agentsignals.trial("tiny__stats-1"), agentsignals.attempt(workspace=str(repo)):
            for _ in range(4):
                reply = litellm.completion(
                    "openai/gpt-4o-mini", messages=messages, api_base=llm.openai_url, api_key="x"
                )
                message = reply.choices[0].message
                for call in message.tool_calls or []:
                    tools[call.function.name](**json.loads(call.function.arguments))
                messages.append({"role": "user", "content": "go on"})
    _check(captured)
    turn = attributes(captured.spans_of_type("turn")[0])
    assert turn["agent_signals.usage.cost_source"] == "framework"
    assert turn["gen_ai.provider.name"] == "openai"


def test_calls_outside_an_attempt_are_not_turns(captured: CapturedSpans, off: None) -> None:
    openai = pytest.importorskip("openai")
    agentsignals.instrument("openai")
    with ScriptedLLM([Step(text="hi")]) as llm:
        client = openai.OpenAI(base_url=llm.openai_url, api_key="x")
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert captured.spans == []


def test_content_only_when_capture_is_on(
    tmp_path: Path, captured_content: CapturedSpans, off: None
) -> None:
    openai = pytest.importorskip("openai")
    repo = make_repo(tmp_path)
    tools = _tools(repo)
    agentsignals.instrument("openai")
    with ScriptedLLM([SCRIPT[0], Step(text="done")]) as llm:
        client = openai.OpenAI(base_url=llm.openai_url, api_key="x")
        messages: list[Any] = [{"role": "user", "content": "add() subtracts"}]
        with agentsignals.trial("t"), agentsignals.attempt():
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            [call] = reply.choices[0].message.tool_calls
            tools[call.function.name](**json.loads(call.function.arguments))
    turn = attributes(captured_content.spans_of_type("turn")[0])
    assert json.loads(turn["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "add() subtracts"}]}
    ]
    assert json.loads(turn["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_0_0",
                                         "name": "read_file", "arguments": '{"path": "stats.py"}'}]}
    ]  # fmt: skip
    tool = attributes(captured_content.spans_of_type("tool")[0])
    assert json.loads(tool["gen_ai.tool.call.arguments"]) == {"path": "stats.py"}
    assert tool["gen_ai.tool.call.result"].startswith("def add(a, b):")


def test_no_content_by_default(tmp_path: Path, captured: CapturedSpans, off: None) -> None:
    openai = pytest.importorskip("openai")
    agentsignals.instrument("openai")
    with ScriptedLLM([Step(text="hi")]) as llm:
        client = openai.OpenAI(base_url=llm.openai_url, api_key="x")
        with agentsignals.trial("t"), agentsignals.attempt():
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "secret"}]
            )
    turn = attributes(captured.spans_of_type("turn")[0])
    assert "gen_ai.input.messages" not in turn and "gen_ai.output.messages" not in turn
