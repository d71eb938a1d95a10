"""The README's framework snippets, run as written: each in a fresh Python process, in a real git
repository with a bug, against a scripted model server on loopback (the OpenAI and Anthropic
SDKs find it through OPENAI_BASE_URL / ANTHROPIC_BASE_URL), with the default `configure()`
writing its files; the records read back from those files must show the agent's run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from integration_helpers import FIX, make_repo
from scripted_llm import ScriptedLLM, Step

README = Path(__file__).resolve().parents[1] / "README.md"
CAT = "cat stats.py"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def _sections() -> dict[str, str]:
    text = README.read_text()
    part = text.split("## Frameworks: one line", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for match in re.finditer(r"### (.+?)\n.*?```python\n(.*?)```", part, re.S):
        out[match.group(1).strip()] = match.group(2)
    return out


def _react(tool: str, args: dict[str, Any]) -> str:
    return (
        f"[[ ## next_thought ## ]]\nnext\n\n[[ ## next_tool_name ## ]]\n{tool}\n\n"
        f"[[ ## next_tool_args ## ]]\n{json.dumps(args)}\n\n[[ ## completed ## ]]"
    )


def _bash(command: str, name: str = "bash") -> Step:
    return Step(tools=[(name, {"command": command})], usage=(1000, 10, 0))


# section → (script, model name the server reports, expected tool categories, turns)
CASES: dict[str, tuple[list[Step], str, list[str], int]] = {
    "DSPy": (
        [Step(text=_react("bash", {"command": CAT}), usage=(1000, 10, 0)),
         Step(text=_react("bash", {"command": FIX}), usage=(1000, 10, 0)),
         Step(text=_react("finish", {}), usage=(1000, 10, 0)),
         Step(text="[[ ## reasoning ## ]]\nok\n\n[[ ## answer ## ]]\nfixed\n\n"
                   "[[ ## completed ## ]]", usage=(1000, 10, 0))],
        "gpt-4o-mini", ["read", "shell", "submit"], 4,
    ),
    "mini-swe-agent": (
        [_bash(CAT), _bash(FIX), _bash(SUBMIT)], "gpt-4o-mini", ["read", "shell", "submit"], 3,
    ),
    "OpenAI Agents SDK": (
        [_bash(CAT), _bash(FIX), Step(text="fixed", usage=(1000, 10, 0))],
        "gpt-4o-mini", ["read", "shell"], 3,
    ),
    "Claude Agent SDK": (
        [_bash(CAT, "Bash"), _bash(FIX, "Bash"), Step(text="fixed", usage=(1000, 10, 0))],
        "claude-sonnet-4-5", ["read", "shell"], 3,
    ),
    "smolagents": (
        [_bash(CAT), _bash(FIX),
         Step(tools=[("final_answer", {"answer": "fixed"})], usage=(1000, 10, 0))],
        "gpt-4o-mini", ["read", "shell", "submit"], 3,
    ),
    "LangGraph": (
        [_bash(CAT), _bash(FIX), Step(text="fixed", usage=(1000, 10, 0))],
        "gpt-4o-mini", ["read", "shell"], 3,
    ),
    "Any OpenAI, Anthropic or LiteLLM loop": (
        [Step(text="hi", usage=(1000, 10, 0))], "gpt-4o-mini", [], 1,
    ),
}  # fmt: skip

# Frameworks whose package a test environment may lack: the section is skipped, not failed.
_NEEDS = {
    "DSPy": "dspy",
    "mini-swe-agent": "minisweagent",
    "OpenAI Agents SDK": "agents",
    "Claude Agent SDK": "claude_agent_sdk",
    "smolagents": "smolagents",
    "LangGraph": "langgraph",
    "Any OpenAI, Anthropic or LiteLLM loop": "openai",
}

# The Agents SDK exports its traces to the OpenAI dashboard by default; the harness removes that
# exporter before the snippet runs so nothing leaves loopback. The snippet itself is unchanged.
_PRELUDE = {
    "OpenAI Agents SDK": "import agents; agents.set_trace_processors([])\n",
}


def test_every_framework_has_a_tested_section() -> None:
    assert set(_sections()) == set(CASES)


@pytest.mark.parametrize("section", sorted(CASES))
def test_readme_snippet_runs_as_written(section: str, tmp_path: Path) -> None:
    pytest.importorskip(_NEEDS[section])
    snippet = _sections()[section]
    script, model, categories, turns = CASES[section]
    repo = make_repo(tmp_path)
    out = tmp_path / "out"
    home = tmp_path / "home"
    home.mkdir()
    with ScriptedLLM(list(script), model=model) as llm:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))},
            "AGENTSIGNALS_OUTPUT_DIR": str(out),
            "OPENAI_BASE_URL": llm.openai_url,
            "OPENAI_API_BASE": llm.openai_url,
            "OPENAI_API_KEY": "sk-test",
            "ANTHROPIC_BASE_URL": llm.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MSWEA_CONFIGURED": "true",  # mini-swe-agent: no first-run set-up prompt
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "IS_SANDBOX": "1",
            "HOME": str(home),
        }
        # From a file, as a user's script would be (smolagents reads its tools' source).
        script_file = tmp_path / "agent.py"
        script_file.write_text(_PRELUDE.get(section, "") + snippet)
        run = subprocess.run(
            [sys.executable, str(script_file)],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
    result = features.extract([out / "traces"])
    [record] = result.attempts
    assert record.behavior.turn_count == turns
    assert record.behavior.tool_category_sequence == categories
    assert record.tokens.input_tokens_total == 1000 * turns
    if categories:
        assert record.behavior.touched_files == ["stats.py"]
        assert record.behavior.bash_mediated_edits is True
    assert "a + b" in (repo / "stats.py").read_text() or not categories
