"""The Claude Agent SDK driving the real Claude Code CLI (bundled with the package) against a
scripted Anthropic-compatible server on loopback, on a real git repository, traced by
`agentsignals.instrument("claude_agent_sdk")`: the CLI's own Read, Edit and Bash tools run
for real."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentsignals
from agentsignals import features
from agentsignals.integrations import claude_agent_sdk as integration
from agentsignals.testing import CapturedSpans, attributes
from integration_helpers import make_repo, tree
from scripted_llm import ScriptedLLM, Step

sdk = pytest.importorskip("claude_agent_sdk")

MODEL = "claude-sonnet-4-5"
USAGE = [(1000, 50, 0), (1200, 60, 800), (1400, 70, 1000), (1600, 40, 1200)]
PYTEST = "python -m pytest -q -p no:cacheprovider test_stats.py"


def _script(repo: Path) -> list[Step]:
    path = str(repo / "stats.py")
    return [
        Step(
            tools=[("Read", {"file_path": path})],
            usage=USAGE[0],
            reasoning="Read the file first. Actually, check the sign.",
        ),
        Step(
            tools=[("Edit", {"file_path": path, "old_string": "a - b", "new_string": "a + b"})],
            usage=USAGE[1],
        ),
        Step(tools=[("Bash", {"command": PYTEST, "description": "run tests"})], usage=USAGE[2]),
        Step(text="Fixed add().", usage=USAGE[3]),
    ]


@pytest.fixture
def instrumented() -> Iterator[None]:
    yield
    integration.uninstrument()


def _options(llm: ScriptedLLM, repo: Path, home: Path, **kwargs: Any) -> Any:
    home.mkdir(exist_ok=True)
    env = {
        "ANTHROPIC_BASE_URL": llm.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        # Loopback only: no telemetry, update checks or error reports.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "HOME": str(home),
        # CI runs as root, where the CLI refuses to skip permission prompts outside a sandbox.
        "IS_SANDBOX": "1",
    }
    return sdk.ClaudeAgentOptions(
        cwd=str(repo),
        env=env,
        model=MODEL,
        permission_mode="bypassPermissions",
        setting_sources=[],
        **kwargs,
    )


async def _collect(prompt: str, options: Any) -> list[Any]:
    return [m async for m in sdk.query(prompt=prompt, options=options)]


def test_query_runs_the_cli_on_a_real_repo(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("claude_agent_sdk", task_id="tiny__stats-1")
    with ScriptedLLM(_script(repo), model=MODEL) as llm:
        messages = asyncio.run(_collect("add() subtracts", _options(llm, repo, tmp_path / "h")))
        assert llm.used == 4
    # The raw stream events the integration asked for are not passed on.
    assert not [m for m in messages if type(m).__name__ == "StreamEvent"]
    [result] = [m for m in messages if type(m).__name__ == "ResultMessage"]
    assert result.subtype == "success"
    assert "a + b" in (repo / "stats.py").read_text()

    spans = captured.spans
    assert tree(spans) == [
        "trial tiny__stats-1",
        "  invoke_agent claude-code",
        "    turn 0",
        "    execute_tool Read",
        "    turn 1",
        "    execute_tool Edit",
        "    turn 2",
        "    execute_tool Bash",
        "    turn 3",
    ]
    first = attributes(captured.spans_of_type("turn")[0])
    assert first["agent_signals.turn.reasoning.chars"] == 46  # the thinking block, streamed
    assert first["agent_signals.turn.reasoning.self_corrections"] == 1
    tools = [attributes(t) for t in captured.spans_of_type("tool")]
    assert tools[0]["agent_signals.tool.files"] == [str(repo / "stats.py")]
    assert tools[1]["agent_signals.tool.edit_mode"] == "direct"
    assert tools[1]["agent_signals.tool.changed_files"] == ["stats.py"]
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "submitted"
    assert attempt["agent_signals.usage.cost_source"] == "framework"

    [record] = features.from_spans(spans).attempts
    b, tok = record.behavior, record.tokens
    assert b.turn_count == 4
    assert b.tool_sequence == ["Read", "Edit", "Bash"]
    assert b.tool_category_sequence == ["read", "edit", "test"]
    assert b.touched_files == ["stats.py"]
    assert b.edit_calls == 1
    assert b.shell_edit_calls == 0
    assert b.bash_mediated_edits is False
    assert b.validated_after_last_edit is True
    assert tok.input_tokens_total == 5200
    assert tok.output_tokens_total == 220
    assert tok.cache_read_tokens == 3000
    assert tok.model_calls == 4
    # claude-sonnet-4-5 list prices ($3 / $0.30 cached / $15 per million tokens): our estimate
    # per turn adds up to what Claude Code itself reported for the run.
    expected = sum((p - c) * 3e-6 + c * 0.3e-6 + o * 15e-6 for p, o, c in USAGE)
    assert tok.cost_usd == pytest.approx(expected, rel=1e-9)
    assert result.total_cost_usd == pytest.approx(expected, rel=1e-9)


def test_max_turns(tmp_path: Path, captured: CapturedSpans, instrumented: None) -> None:
    repo = make_repo(tmp_path)
    agentsignals.instrument("claude_agent_sdk", task_id="tiny__stats-2", workspace=None)
    options_kw = {"max_turns": 2}
    with ScriptedLLM(_script(repo), model=MODEL) as llm, pytest.raises(sdk.ProcessError):
        # The CLI exits with status 1 after its error_max_turns result.
        asyncio.run(_collect("add() subtracts", _options(llm, repo, tmp_path / "h", **options_kw)))
    attempt = attributes(captured.spans_of_type("attempt")[0])
    assert attempt["agent_signals.attempt.exit_reason"] == "max_turns"
    assert len(captured.spans_of_type("turn")) == 2


async def _collect_holding_after_read(prompt: str, options: Any, edited: Path) -> list[Any]:
    """A consumer slower than the CLI, deterministically: after the Read's tool_use message it
    pulls nothing more until the CLI's Edit has changed the file on disk (the CLI runs its
    tools without waiting for the caller to read the stream)."""
    messages = []
    async for message in sdk.query(prompt=prompt, options=options):
        messages.append(message)
        blocks = getattr(message, "content", None)
        if type(message).__name__ == "AssistantMessage" and any(
            getattr(b, "name", None) == "Read" for b in blocks or []
        ):
            for _ in range(1200):  # at most 60 s, then go on (and let the asserts say why)
                if "a + b" in edited.read_text():
                    break
                await asyncio.sleep(0.05)
    return messages


def test_edits_are_charged_to_their_tool_when_the_caller_reads_slowly(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("claude_agent_sdk", task_id="tiny__stats-3")
    with ScriptedLLM(_script(repo), model=MODEL) as llm:
        options = _options(llm, repo, tmp_path / "h")
        messages = asyncio.run(
            _collect_holding_after_read("add() subtracts", options, repo / "stats.py")
        )
    [result] = [m for m in messages if type(m).__name__ == "ResultMessage"]
    assert result.subtype == "success"
    tools = {t.name: attributes(t) for t in captured.spans_of_type("tool")}
    assert list(tools) == ["execute_tool Read", "execute_tool Edit", "execute_tool Bash"]
    # The edit is the Edit's, though the Read's result was read after the edit was made.
    assert tools["execute_tool Read"]["agent_signals.tool.changed_files"] == []
    assert "agent_signals.tool.edit_mode" not in tools["execute_tool Read"]
    assert tools["execute_tool Edit"]["agent_signals.tool.changed_files"] == ["stats.py"]
    assert tools["execute_tool Edit"]["agent_signals.tool.edit_mode"] == "direct"
    assert tools["execute_tool Bash"]["agent_signals.tool.changed_files"] == []
    # The results still come from the stream, as the model received them.
    assert tools["execute_tool Bash"]["agent_signals.test.failed_count"] == 0
    assert tools["execute_tool Bash"]["agent_signals.test.passed_count"] == 1
    [record] = features.from_spans(captured.spans).attempts
    assert record.behavior.validated_after_last_edit is True


def test_client_keeps_the_callers_hooks(
    tmp_path: Path, captured: CapturedSpans, instrumented: None
) -> None:
    repo = make_repo(tmp_path)
    assert agentsignals.instrument("claude_agent_sdk", task_id="tiny__stats-4")
    seen: list[tuple[str, str, str | None]] = []

    async def own_hook(data: Any, tool_use_id: str | None, context: Any) -> Any:
        seen.append((data["hook_event_name"], data["tool_name"], tool_use_id))
        return {}

    async def run(options: Any) -> list[Any]:
        async with sdk.ClaudeSDKClient(options) as client:
            await client.query("add() subtracts")
            return [m async for m in client.receive_response()]

    own = {
        "PreToolUse": [sdk.HookMatcher(matcher="Edit", hooks=[own_hook])],
        "PostToolUse": [sdk.HookMatcher(hooks=[own_hook])],
    }
    with ScriptedLLM(_script(repo), model=MODEL) as llm:
        options = _options(llm, repo, tmp_path / "h", hooks=own)
        messages = asyncio.run(run(options))
    assert [type(m).__name__ for m in messages][-1] == "ResultMessage"
    # The caller's hooks ran as they asked, and their options are theirs as they were.
    assert options.hooks is own and list(own) == ["PreToolUse", "PostToolUse"]
    assert [len(v) for v in own.values()] == [1, 1]
    tools = captured.spans_of_type("tool")
    ids = [attributes(t)["gen_ai.tool.call.id"] for t in tools]
    assert seen == [
        ("PostToolUse", "Read", ids[0]),
        ("PreToolUse", "Edit", ids[1]),
        ("PostToolUse", "Edit", ids[1]),
        ("PostToolUse", "Bash", ids[2]),
    ]
    assert [t.name for t in tools] == [
        "execute_tool Read",
        "execute_tool Edit",
        "execute_tool Bash",
    ]
    edit = attributes(tools[1])
    assert edit["agent_signals.tool.changed_files"] == ["stats.py"]
    assert edit["agent_signals.tool.edit_mode"] == "direct"


def test_the_tool_hook_never_fails_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite raises internal errors to catch bugs; a user's process logs them instead.
    monkeypatch.setenv("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", "0")

    def broken() -> Any:
        raise RuntimeError("boom")

    hook = integration._tool_hook(broken)
    event = {"hook_event_name": "PreToolUse", "tool_name": "Edit", "tool_use_id": "t1"}
    assert asyncio.run(hook(event, "t1", {"signal": None})) == {}
    # A run that has ended, and input that is not a hook's, are ignored the same way.
    done = integration._Run(False)
    done.finish(None)
    hook = integration._tool_hook(lambda: done)
    assert asyncio.run(hook(event, "t1", {"signal": None})) == {}
    assert asyncio.run(hook(None, None, {"signal": None})) == {}
    assert done.tools == {}


def test_hooks_time_the_calls_and_the_stream_fills_in(
    tmp_path: Path, captured: CapturedSpans
) -> None:
    """The run's own bookkeeping, fed the SDK's real message types in the orders the CLI and
    a lagging reader can produce them."""
    repo = make_repo(tmp_path)
    run = integration._Run(False)
    run.hooked = True
    run.start("add() subtracts", sdk.ClaudeAgentOptions(cwd=str(repo)))
    path = str(repo / "stats.py")
    edit = {"file_path": path, "old_string": "a - b", "new_string": "a + b"}

    def hook(event: str, tid: str, name: str, args: dict[str, Any]) -> None:
        data = {"hook_event_name": event, "tool_name": name, "tool_input": args}
        run.on_hook({**data, "tool_use_id": tid}, tid)

    def result(tid: str) -> Any:
        return sdk.UserMessage(content=[sdk.ToolResultBlock(tool_use_id=tid, content="ok")])

    uses = [
        sdk.ToolUseBlock("t1", "Edit", edit),
        sdk.ToolUseBlock("t2", "Read", {"file_path": path}),
    ]
    run.on_message(sdk.AssistantMessage(content=uses, model=MODEL))
    hook("PreToolUse", "t1", "Edit", edit)
    (repo / "stats.py").write_text((repo / "stats.py").read_text().replace("a - b", "a + b"))
    hook("PostToolUse", "t1", "Edit", edit)
    hook("PreToolUse", "t2", "Read", {"file_path": path})
    hook("PostToolUse", "t2", "Read", {"file_path": path})
    (repo / "notes.txt").write_text("made after the Read, before its result was read\n")
    run.on_message(result("t1"))
    run.on_message(result("t2"))
    hook("PostToolUse", "t1", "Edit", edit)  # a late repeat opens no second span
    # A call no hook reported is timed by the stream.
    run.on_message(
        sdk.AssistantMessage(
            content=[sdk.ToolUseBlock("t3", "Bash", {"command": "ls"})], model=MODEL
        )
    )
    run.on_message(result("t3"))
    run.finish(None)

    tools = captured.spans_of_type("tool")
    assert [t.name for t in tools] == [
        "execute_tool Edit",
        "execute_tool Read",
        "execute_tool Bash",
    ]
    first, second, third = (attributes(t) for t in tools)
    assert first["agent_signals.tool.changed_files"] == ["stats.py"]
    assert first["agent_signals.tool.edit_mode"] == "direct"
    assert second["agent_signals.tool.changed_files"] == []
    assert third["agent_signals.tool.changed_files"] == ["notes.txt"]
    assert first["agent_signals.tool.output.bytes"] == 2  # the result, from the stream
    # Each span ends where its PostToolUse came, not where its result was read.
    assert tools[0].end_time <= tools[1].start_time
    assert tools[1].end_time <= tools[2].start_time
    [attempt] = captured.spans_of_type("attempt")
    assert all(t.parent is not None and t.parent.span_id == attempt.context.span_id for t in tools)
