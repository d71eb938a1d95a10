"""What every integration relies on: lookup by name, lazy framework imports, never breaking the
host, the price table (checked against a real trajectory's recorded cost), and the workspace
leaving agentsignals' own output folder out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import agentsignals
from agentsignals import features
from agentsignals._instrument.pricing import estimate_cost
from agentsignals.integrations import NAMES, _common
from agentsignals.testing import capture_spans
from integration_helpers import make_repo

DJANGO = "mini-swe-agent/20251118_gemini-3-pro/trajs/django__django-16527"


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no integration named 'crewai'"):
        agentsignals.instrument("crewai")


def test_a_missing_framework_is_logged_and_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "smolagents", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "smolagents.agents", None)
    assert agentsignals.instrument("smolagents") is False
    assert "smolagents is not installed" in caplog.text


def test_importing_agentsignals_and_integrations_loads_no_framework() -> None:
    frameworks = ("dspy", "litellm", "minisweagent", "agents", "smolagents", "langchain_core",
                  "langgraph", "claude_agent_sdk", "openai", "anthropic",
                  "genai_prices")  # fmt: skip
    code = (
        "import sys, agentsignals, agentsignals.integrations\n"
        f"print(sorted(m for m in {frameworks!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert set(NAMES) == {
        "anthropic", "claude_agent_sdk", "dspy", "langchain", "litellm", "mini_swe_agent",
        "openai", "openai_agents", "smolagents",
    }  # fmt: skip


def test_price_table_reproduces_a_real_runs_recorded_cost(shared_data: Path) -> None:
    """The mini-swe-agent run of django__django-16527 recorded OpenRouter's billed cost per
    call; pricing each call's usage from the table gives the same total."""
    pytest.importorskip("genai_prices")
    [path] = (shared_data / DJANGO).glob("*.traj.json")
    data = json.loads(path.read_text())
    recorded = estimated = 0.0
    calls = 0
    for message in data["messages"]:
        response = (message.get("extra") or {}).get("response")
        if not response:
            continue
        usage = response["usage"]
        recorded += usage["cost"]
        priced = estimate_cost(
            response["model"],  # "google/gemini-3-pro-preview", as OpenRouter names it
            None,
            input_tokens=usage["prompt_tokens"],
            output_tokens=usage["completion_tokens"],
            cache_read_tokens=usage["prompt_tokens_details"]["cached_tokens"],
        )
        assert priced is not None
        assert priced[1].endswith("google/gemini-3-pro-preview")
        estimated += priced[0]
        calls += 1
    assert calls == 22
    assert data["info"]["model_stats"]["instance_cost"] == pytest.approx(0.1158102, abs=1e-9)
    assert estimated == pytest.approx(recorded, abs=1e-9)


def test_unknown_models_and_missing_usage_are_not_priced() -> None:
    pytest.importorskip("genai_prices")
    assert estimate_cost("my-finetune-7b", None, input_tokens=10, output_tokens=1) is None
    assert estimate_cost("gpt-4o-mini", "openai", input_tokens=None, output_tokens=None) is None
    assert estimate_cost(None, "openai", input_tokens=10, output_tokens=1) is None
    cost, source = estimate_cost("openai/gpt-4o-mini", None, input_tokens=1000, output_tokens=100)
    assert cost == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6, rel=1e-12)
    assert source.startswith("genai-prices ") and source.endswith(": openai/gpt-4o-mini")


def test_usage_shapes() -> None:
    # Anthropic's input_tokens exclude the cache; GenAI's include it.
    anthropic = {"input_tokens": 200, "output_tokens": 10, "cache_read_input_tokens": 800,
                 "cache_creation_input_tokens": 100}  # fmt: skip
    assert _common.usage_numbers(anthropic) == {
        "input_tokens": 1100, "output_tokens": 10, "cache_read_tokens": 800,
        "cache_write_tokens": 100, "reasoning_tokens": None,
    }  # fmt: skip
    chat = {"prompt_tokens": 1000, "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 600},
            "completion_tokens_details": {"reasoning_tokens": 20}}  # fmt: skip
    assert _common.usage_numbers(chat)["cache_read_tokens"] == 600
    assert _common.usage_numbers(chat)["reasoning_tokens"] == 20
    responses = {"input_tokens": 1000, "output_tokens": 50,
                 "input_tokens_details": {"cached_tokens": 600}}  # fmt: skip
    assert _common.usage_numbers(responses)["input_tokens"] == 1000
    assert _common.usage_numbers(responses)["cache_read_tokens"] == 600
    assert _common.usage_numbers(None) == {}
    # A framework's all-zero placeholder (no usage came back) is no usage, not zero tokens.
    assert _common.usage_numbers({"requests": 1, "input_tokens": 0, "output_tokens": 0}) == {}


def test_a_reported_cost_wins_over_the_estimate() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "cost": 0.5}
    with (
        capture_spans() as captured,
        agentsignals.trial("t"),
        agentsignals.attempt(),
        agentsignals.turn() as turn,
    ):
        _common.record_usage(turn, usage, model="gpt-4o-mini")
    [span] = captured.spans_of_type("turn")
    assert span.attributes["agent_signals.usage.cost_usd"] == 0.5
    assert span.attributes["agent_signals.usage.cost_source"] == "provider"


def test_our_output_folder_inside_the_repo_is_not_an_edit(
    tmp_path: Path, fresh_otel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default ./agentsignals-output/ sits in the agent's repository when the agent runs
    there: the traces written during the run are not files the agent touched."""
    repo = make_repo(tmp_path)
    monkeypatch.chdir(repo)
    agentsignals.configure(batch=False)
    with agentsignals.trial("t"), agentsignals.attempt(workspace="."):
        for i in range(2):
            with agentsignals.turn(), agentsignals.tool("bash", arguments={"command": "ls"}):
                if i:
                    (repo / "new.txt").write_text("x\n")
    agentsignals.shutdown()
    [record] = features.extract([repo / "agentsignals-output" / "traces"]).attempts
    assert os.listdir(repo / "agentsignals-output" / "traces")
    assert record.behavior.touched_files == ["new.txt"]
