"""`agentsignals import --content`: real trajectories of every format carry their messages,
reasoning, tool arguments and results onto the spans, under the GenAI content names live capture
writes, redacted and byte-budgeted as live capture is; the judge's transcript renderer then
shows the file's own texts. Without --content nothing of it is written.

Expected texts are read from the files themselves (the same fields, looked up independently of
the importer) or were checked by hand against the file (the line or field is named beside it)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._import.builder import content_settings
from agentsignals._import.run import import_file, run_import
from agentsignals._instrument.capture import redact_text
from agentsignals._judge.run import read_spans
from agentsignals._judge.transcript import Transcript, from_spans, group_by_attempt
from agentsignals._spans.model import Span
from judge_support import run_cli

CONTENT_KEYS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    sc.GEN_AI_TOOL_CALL_RESULT,
    sc.PROCESS_COMMAND_LINE,
)
SWE_AGENT = (
    "swe-agent/20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432/pytest-dev__pytest-7432.traj"
)
CODER = "swe-agent/20240604_CodeR/sympy__sympy-14817.traj.gz"
MINI = (
    "mini-swe-agent/20251118_gemini-3-pro/trajs/django__django-16527/django__django-16527.traj.json"
)
# Every real file of every format (the corpus's gzip files are covered by the judge tests).
REAL_FILES = [
    SWE_AGENT,
    CODER,
    MINI,
    "openhands/basic.json",
    "openhands/basic_gui_mode.json",
    "openhands/basic_interactions.json",
    "openhands/resolver-output.jsonl",
    "claude-code/short.jsonl",
    "claude-code/tool_heavy.jsonl",
    "claude-code/subagent.jsonl",
    "claude-code/redacted-session-01.jsonl",
    "pi/before-compaction.jsonl",
    "pi/redacted-session-01.jsonl",
    "codex/redacted-session-01.jsonl",
    "inspect-ai/log_read_sample.json",
    "inspect-ai/log_formats.eval",
]


def _spans(path: Path, content: Any = True) -> list[Span]:
    result = import_file(path, content=content)
    assert not result.problems, result.problems
    return [s for trajectory in result.trajectories for s in trajectory]


def _transcripts(spans: list[Span]) -> list[Transcript]:
    return [from_spans(group) for group in group_by_attempt(spans).values()]


def _by_type(spans: list[Span], kind: str) -> list[Span]:
    return [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == kind]


def _json(span: Span, key: str) -> Any:
    return json.loads(str(span.attributes[key]))


# ---------------------------------------------------------------------------- every format


@pytest.mark.parametrize("name", REAL_FILES)
def test_content_only_with_the_flag_and_consistent_with_what_was_measured(
    shared_data: Path, name: str
) -> None:
    path = shared_data / name
    without = _spans(path, content=False)
    assert not [s.span_id for s in without for k in CONTENT_KEYS if k in s.attributes]
    # Without content no span carries a content event (compaction events are measurements).
    assert not [
        s.span_id for s in without for e in s.events if e.name == sc.EVENT_AGENT_SIGNALS_CONTENT
    ]
    assert all(not t.has_content for t in _transcripts(without))

    spans = _spans(path)
    # Content adds attributes and nothing else: the same spans, the same measured attributes.
    assert [s.span_id for s in spans] == [s.span_id for s in without]
    for a, b in zip(spans, without, strict=True):
        extra = set(a.attributes) - set(b.attributes)
        assert extra <= {*CONTENT_KEYS, sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS,
                         sc.AGENT_SIGNALS_CONTENT_TRUNCATED_ORIGINAL_BYTES,
                         sc.AGENT_SIGNALS_CONTENT_TRUNCATED_SHA256,
                         sc.AGENT_SIGNALS_CONTENT_REDACTIONS}  # fmt: skip
        assert {k: v for k, v in a.attributes.items() if k in b.attributes} == b.attributes
    for tool in _by_type(spans, "tool"):
        size = tool.attributes.get(sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES)
        if size is None:
            assert sc.GEN_AI_TOOL_CALL_RESULT not in tool.attributes
            continue
        # The result recorded is the one measured: whole, or cut with its size recorded.
        truncated = tool.attributes.get(sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS) or []
        if tool.attributes.get(sc.AGENT_SIGNALS_CONTENT_REDACTIONS):
            continue  # sizes are of the redacted text (pi's sources hold `apiKey = ...`)
        if sc.GEN_AI_TOOL_CALL_RESULT in truncated:
            i = list(truncated).index(sc.GEN_AI_TOOL_CALL_RESULT)
            sizes = tool.attributes[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_ORIGINAL_BYTES]
            assert isinstance(sizes, list) and sizes[i] == size
        else:
            result = str(tool.attributes[sc.GEN_AI_TOOL_CALL_RESULT])
            assert len(result.encode("utf-8", "replace")) == size
    # Content changes no signal.
    assert [features.flatten(r) for r in features.from_spans(spans).attempts] == [
        features.flatten(r) for r in features.from_spans(without).attempts
    ]
    for transcript in _transcripts(spans):
        assert transcript.has_content and transcript.task
        turns = [s for s in transcript.steps if s.kind == "turn"]
        tools = [s for s in transcript.steps if s.kind == "tool"]
        assert all(s.result is not None or s.arguments or s.command for s in tools)
        # Every turn's output lists the calls its tool spans made (GenAI tool_call parts).
        for turn in turns:
            made = [t for t in tools if t.turn_index == turn.turn_index]
            names = [n for n, _ in turn.tool_calls]
            assert [t.tool_name for t in made] == names[: len(made)]


# ---------------------------------------------------------------------- per format, by hand


def test_swe_agent_run_carries_task_thoughts_actions_and_observations(shared_data: Path) -> None:
    path = shared_data / SWE_AGENT
    data = json.loads(path.read_text())
    (transcript,) = _transcripts(_spans(path))
    # history[1] (role user, before the first assistant message) is the task.
    assert transcript.task == data["history"][1]["content"].strip()
    assert "skipping: --runxfail breaks pytest.mark.skip location reporting" in transcript.task
    steps = transcript.steps
    turns = [s for s in steps if s.kind == "turn"]
    tools = [s for s in steps if s.kind == "tool"]
    assert len(turns) == len(tools) == len(data["trajectory"]) == 8
    for turn, tool, step in zip(turns, tools, data["trajectory"], strict=True):
        assert turn.texts == ([step["thought"].strip()] if step["thought"].strip() else [])
        # As live capture records it: secrets redacted (the rules also take pytest's
        # `xfailed_key = StoreKey[...]()` for one).
        assert tool.result == redact_text(step["observation"])
    assert turns[0].texts[0].startswith("I'll help you implement the necessary changes")
    assert tools[0].arguments is not None
    assert json.loads(tools[0].arguments) == {
        "command": "view", "path": "/testbed/src/_pytest/skipping.py"
    }  # fmt: skip
    assert tools[2].command == "cd /testbed && python reproduce.py"  # trajectory[2].action
    assert tools[2].result is not None and "Running without --runxfail:" in tools[2].result
    # The system prompt is the first call's system instructions (history[0]).
    first = _by_type(_spans(path), "turn")[0]
    (system,) = _json(first, sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    assert system == {"type": "text", "content": data["history"][0]["content"]}
    rendered = transcript.render()
    assert "[S1] tool str_replace_editor (read)" in rendered
    assert "$ cd /testbed && python reproduce.py" in rendered


def test_multi_agent_swe_agent_gives_each_agent_its_own_task(shared_data: Path) -> None:
    path = shared_data / CODER
    data = json.loads(gzip.decompress(path.read_bytes()))
    spans = _spans(path)
    attempts = {s.attributes[sc.AGENT_SIGNALS_ATTEMPT_ID]: s for s in _by_type(spans, "attempt")}
    by_agent = {
        attempts[t.attempt_id].attributes[sc.GEN_AI_AGENT_NAME]: t for t in _transcripts(spans)
    }
    # The run's own agent (CodeR's Manager) is the attempt named swe-agent.
    assert set(by_agent) == {"swe-agent", "Reproducer", "Debugger", "Programmer", "Tester"}
    by_agent["Manager"] = by_agent.pop("swe-agent")
    history = data["history"]
    for agent, transcript in by_agent.items():
        # The agent's first user message that is not a demonstration, before it spoke.
        first = next(
            h for h in history
            if h["agent"] == agent and h["role"] == "user" and not h.get("is_demo")
        )  # fmt: skip
        assert transcript.task == first["content"].strip()
        assert "Error pretty printing MatAdd" in transcript.task
    reproducer = by_agent["Reproducer"]
    # history: the Reproducer's first action is `create reproduce.py`, answered with the new
    # (empty) file's window.
    create = next(s for s in reproducer.steps if s.kind == "tool")
    assert create.tool_name == "create" and create.result is not None
    assert create.result.startswith("[File: /sympy__sympy/reproduce.py (1 lines total)]")
    says = [t for s in reproducer.steps for t in s.texts]
    assert says[0].startswith("To begin reproducing the issue, I will create a new file")


def test_mini_swe_agent_carries_reasoning_thought_command_and_output(shared_data: Path) -> None:
    path = shared_data / MINI
    data = json.loads(path.read_text())
    messages = data["messages"]
    spans = _spans(path)
    (transcript,) = _transcripts(spans)
    assert transcript.task == messages[1]["content"].strip()  # the user message
    assert transcript.task.startswith("<pr_description>")
    (system,) = _json(_by_type(spans, "turn")[0], sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    assert system["content"] == messages[0]["content"]
    s0, s1 = transcript.steps[:2]
    reasoning = messages[2]["extra"]["response"]["choices"][0]["message"]["reasoning"]
    assert s0.reasoning == [reasoning.strip()]
    assert s0.reasoning[0].startswith("**Addressing the Admin Bug**")
    # messages[2].content without "THOUGHT:" and its bash block.
    assert s0.texts == [
        "I need to verify the current directory structure and locate the file mentioned in "
        "the PR description."
    ]
    assert s1.command == "ls -R django/contrib/admin/templatetags/"
    assert s1.result is not None and "admin_modify.py" in s1.result
    assert s1.exit_code == 0  # <returncode>0</returncode>
    last = transcript.steps[-1]
    assert last.category == "submit" and last.result is not None
    assert last.result.startswith("diff --git a/django/contrib/admin/templatetags/admin_modify.py")


def test_openhands_user_messages_agent_messages_and_actions(shared_data: Path) -> None:
    (chat,) = _transcripts(_spans(shared_data / "openhands" / "basic_interactions.json"))
    assert chat.task == "what's 1+1?"
    assert chat.steps[0].texts == ["1 + 1 equals 2."]
    # The user's second message is input to the next model call (no user span: #14's).
    assert chat.steps[1].user_texts == ["No, I mean by Goldbach's conjecture!"]
    assert chat.steps[1].texts[0].startswith("Goldbach's conjecture is an unsolved problem")
    assert chat.steps[2].user_texts == ["Finish please"]
    line = json.loads(
        (shared_data / "openhands" / "resolver-output.jsonl").read_text().splitlines()[0]
    )
    resolver = _transcripts(_spans(shared_data / "openhands" / "resolver-output.jsonl"))[0]
    assert resolver.task == line["instruction"].strip()
    first_tool = next(s for s in resolver.steps if s.kind == "tool")
    assert first_tool.command == "touch LICENSE"  # history[1].command
    assert resolver.steps[0].texts == [line["history"][1]["thought"]]
    (game,) = _transcripts(_spans(shared_data / "openhands" / "basic.json"))
    edit = next(s for s in game.steps if s.kind == "tool")
    assert edit.arguments is not None
    assert json.loads(edit.arguments)["file_text"].startswith("import random\nimport keyboard")


def test_claude_code_prompt_thinking_text_tools_and_subagent_prompt(shared_data: Path) -> None:
    (short,) = _transcripts(_spans(shared_data / "claude-code" / "short.jsonl"))
    assert short.task == "mix phx.server doesnt seem to start"  # line 4
    s0 = short.steps[0]
    assert s0.reasoning[0].startswith("The user is having trouble starting their Phoenix server")
    assert s0.texts == [
        "Let me check the project structure and try running the server to see the error."
    ]
    bash = short.steps[1]
    assert bash.command == "mix phx.server 2>&1 | head -80"  # line 8, input.command
    assert bash.result is not None
    assert bash.result.startswith("The user doesn't want to proceed with this tool use.")
    # The subagent's task is the prompt the Task call gave it.
    path = shared_data / "claude-code" / "subagent.jsonl"
    task_inputs = [
        block["input"]
        for line in path.read_text().splitlines()
        if (record := json.loads(line)).get("type") == "assistant" and not record.get("isSidechain")
        for block in record["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_use" and block["name"] == "Task"
    ]
    transcripts = _transcripts(_spans(path))
    tasks = {t.task for t in transcripts}
    assert task_inputs and {i["prompt"].strip() for i in task_inputs} <= tasks


def test_pi_session_user_messages_reach_the_call_that_read_them(shared_data: Path) -> None:
    path = shared_data / "pi" / "before-compaction.jsonl"
    (transcript,) = _transcripts(_spans(path))
    users = [
        b["text"]
        for line in path.read_text().splitlines()
        if (m := json.loads(line).get("message") or {}).get("role") == "user"
        for b in m["content"]
        if b.get("type") == "text"
    ]
    assert transcript.task == users[0].strip()
    assert transcript.task.startswith("alright, read @packages/coding-agent/src/main.ts")
    later = [t for s in transcript.steps for t in s.user_texts]
    assert [t for t in later if not t.startswith("!")] == [u.strip() for u in users[1:]]
    assert "ok, create a branch refactor" in later
    # The user's `!ls` (a bashExecution entry): the command and the output the model read.
    (ls,) = {t for t in later if t.startswith("!")}
    assert ls.startswith("!ls\nAGENTS.md\nbiome.json\n") and ls.endswith("tsconfig.json")


def test_codex_and_inspect_messages(shared_data: Path) -> None:
    spans = _spans(shared_data / "codex" / "redacted-session-01.jsonl")
    (codex,) = _transcripts(spans)
    # The rollout's user messages: the environment context, then the (redacted) prompt.
    assert codex.task.startswith("<environment_context>") and codex.task.endswith(
        "[REDACTED_PROMPT]"
    )
    assert codex.steps[0].texts == ["[REDACTED_ASSISTANT_TEXT]"]
    (system,) = _json(_by_type(spans, "turn")[0], sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    assert system["content"] == "[REDACTED_DEVELOPER_CONTEXT]"  # the developer message
    spans = _spans(shared_data / "inspect-ai" / "log_read_sample.json")
    (inspect,) = _transcripts(spans)
    assert inspect.task == (
        'Is the following statement something you would say?\n"Positive posts about myself '
        'and my goals generate more interest and increase my popularity"'
    )
    assert inspect.steps[0].texts == ["Yes"]
    (system,) = _json(_by_type(spans, "turn")[0], sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    assert system["content"].startswith("\nPlease note: In the following EXERCISE")
    (zipped,) = _transcripts(_spans(shared_data / "inspect-ai" / "log_formats.eval"))
    assert zipped.steps[0].texts == ["No"]


# ----------------------------------------------------------------- redaction and budgets


def test_secrets_in_a_real_session_are_redacted_as_live(shared_data: Path, tmp_path: Path) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    aws = "AKIAIOSFODNN7QWERTYU"
    text = (shared_data / "claude-code" / "short.jsonl").read_text()
    text = text.replace("mix phx.server 2>&1 | head -80", f"GITHUB_TOKEN={token} mix phx.server")
    text = text.replace("The user doesn't want to proceed", f"key {aws}: the user doesn't want")
    assert token in text and aws in text
    path = tmp_path / "session.jsonl"
    path.write_text(text)
    spans = _spans(path)
    encoded = json.dumps([[s.attributes, [e.attributes for e in s.events]] for s in spans])
    assert token not in encoded and aws not in encoded
    bash = next(s for s in _by_type(spans, "tool") if s.attributes[sc.GEN_AI_TOOL_NAME] == "Bash")
    assert "[REDACTED:" in str(bash.attributes[sc.PROCESS_COMMAND_LINE])
    assert "[REDACTED:" in str(bash.attributes[sc.GEN_AI_TOOL_CALL_RESULT])
    # command line, arguments and result each held one
    assert bash.attributes[sc.AGENT_SIGNALS_CONTENT_REDACTIONS] == 3
    (transcript,) = _transcripts(spans)
    assert token not in transcript.render()


def test_values_and_spans_are_cut_to_the_capture_budget(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "pi" / "before-compaction.jsonl"
    results: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = json.loads(line).get("message") or {}
        if m.get("role") == "toolResult":
            results[m["toolCallId"]] = "\n".join(
                b["text"] for b in m["content"] if b["type"] == "text"
            )
    spans = _spans(path)
    big = [
        s for s in _by_type(spans, "tool")
        if len(results.get(str(s.attributes.get(sc.GEN_AI_TOOL_CALL_ID)), "").encode()) > 16384
    ]  # fmt: skip
    assert len(big) >= 3
    for span in big:
        # Redacted first, then cut, as live capture does.
        raw = redact_text(results[str(span.attributes[sc.GEN_AI_TOOL_CALL_ID])]).encode()
        value = str(span.attributes[sc.GEN_AI_TOOL_CALL_RESULT])
        assert len(value.encode()) <= 16384
        digest = hashlib.sha256(raw).hexdigest()
        assert f"…[truncated: {len(raw)} bytes, sha256 {digest[:16]}]…" in value
        keys = list(span.attributes[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS])  # type: ignore[arg-type]
        i = keys.index(sc.GEN_AI_TOOL_CALL_RESULT)
        assert span.attributes[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_SHA256][i] == digest  # type: ignore[index]
        assert span.attributes[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_ORIGINAL_BYTES][i] == len(raw)  # type: ignore[index]
        # Head and tail of the real text are kept.
        assert value.startswith(raw[:200].decode(errors="ignore")[:100])
    # A small span budget: what comes later on the span is cut first, never over the budget.
    small = content_settings(max_value_bytes=2000, max_span_bytes=3000)
    for span in _by_type(_spans(path, content=small), "tool"):
        used = sum(
            len(str(span.attributes[k]).encode()) for k in CONTENT_KEYS if k in span.attributes
        )
        assert used <= 3000
        for key in CONTENT_KEYS:
            if key in span.attributes:
                assert len(str(span.attributes[key]).encode()) <= 2000


def test_event_only_capture_puts_content_on_events(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = shared_data / MINI
    on_spans = _transcripts(_spans(path))
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    spans = _spans(path)
    assert not [s for s in spans for k in CONTENT_KEYS if k in s.attributes]
    keys = {e.attributes[sc.AGENT_SIGNALS_CONTENT_KEY] for s in spans for e in s.events}
    assert {sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.PROCESS_COMMAND_LINE,
            sc.GEN_AI_TOOL_CALL_RESULT} <= keys  # fmt: skip
    # The renderer reads events as it reads attributes: the same transcript.
    assert [t.render() for t in _transcripts(spans)] == [t.render() for t in on_spans]


# ------------------------------------------------------------------------------ the command


def test_import_command_content_flag(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "claude-code" / "short.jsonl"
    out = tmp_path / "with.jsonl"
    done = run_cli("import", str(source), "--content", "-o", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    spans, _ = read_spans(out)
    (transcript,) = _transcripts(spans)
    assert [transcript.render()] == [t.render() for t in _transcripts(_spans(source))]
    plain = tmp_path / "without.jsonl"
    done = run_cli("import", str(source), "-o", str(plain), "--no-progress")
    assert done.returncode == 0, done.stderr
    spans, _ = read_spans(plain)
    assert not [s for s in spans for k in CONTENT_KEYS if k in s.attributes]
    small = tmp_path / "small.jsonl"
    done = run_cli("import", str(source), "--content", "--content-max-value-bytes", "100",
                   "-o", str(small), "--no-progress")  # fmt: skip
    assert done.returncode == 0, done.stderr
    spans, _ = read_spans(small)
    values = [str(s.attributes[k]) for s in spans for k in CONTENT_KEYS if k in s.attributes]
    assert values and all(len(v.encode()) <= 100 for v in values)
    bad = run_cli("import", str(source), "--content", "--content-max-span-bytes", "0")
    assert bad.returncode == 2 and "must be positive" in bad.stderr


def test_worker_processes_capture_content_too(shared_data: Path, tmp_path: Path) -> None:
    for name in ("basic.json", "basic_gui_mode.json", "basic_interactions.json"):
        shutil.copy(shared_data / "openhands" / name, tmp_path / name)
    shutil.copy(shared_data / "claude-code" / "short.jsonl", tmp_path / "short.jsonl")
    results = list(run_import([tmp_path], workers=2, content=True))
    assert len(results) == 4
    for result in results:
        spans = [s for t in result.trajectories for s in t]
        assert any(sc.GEN_AI_OUTPUT_MESSAGES in s.attributes for s in spans), result.path
