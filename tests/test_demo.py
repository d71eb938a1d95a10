"""`agentsignals demo`, run as a user runs it: a real subprocess, a real scratch git repo, real
unittest runs; the traces it leaves on disk say what the agent did."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the demo needs git")


def _attrs(span: dict) -> dict:
    out = {}
    for kv in span.get("attributes", []):
        (kind, value), *_ = kv["value"].items()
        if kind == "arrayValue":
            value = [next(iter(v.values())) for v in value.get("values", [])]
        elif kind == "intValue":
            value = int(value)
        out[kv["key"]] = value
    return out


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo_run(demo_output: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    out = demo_output
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", "demo", "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    spans = []
    for path in sorted((out / "traces").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    spans.extend(ss["spans"])
    spans.sort(key=lambda s: int(s["startTimeUnixNano"]))
    return result, spans


def test_demo_prints_where_traces_are_and_a_summary(demo_run: tuple) -> None:
    result, _ = demo_run
    assert result.returncode == 0, result.stderr
    assert "traces (OTLP/JSON lines):" in result.stdout
    lines = result.stdout.splitlines()
    header = lines.index("attempt  turns  tool calls  tests   exit")
    assert lines[header + 1].split() == ["0", "4", "4", "FAIL", "max_turns"]
    assert lines[header + 2].split() == ["1", "5", "5", "pass", "submitted"]


def test_demo_traces_record_what_the_agent_did(demo_run: tuple) -> None:
    _, spans = demo_run
    kinds = [_attrs(s).get("agent_signals.span.type") for s in spans]
    assert kinds.count("trial") == 1 and kinds.count("attempt") == 2 and kinds.count("turn") == 9
    attempts = [_attrs(s) for s in spans if _attrs(s).get("agent_signals.span.type") == "attempt"]
    assert [a["agent_signals.attempt.index"] for a in attempts] == [0, 1]
    assert [a["agent_signals.attempt.exit_reason"] for a in attempts] == ["max_turns", "submitted"]
    assert attempts[0]["agent_signals.treatment.attempt1_tool_cap"] == 4
    tools = [_attrs(s) for s in spans if _attrs(s).get("agent_signals.span.type") == "tool"]
    sequence = [
        (t["agent_signals.attempt.index"], t["gen_ai.tool.name"], t["agent_signals.tool.category"])
        for t in tools
    ]
    assert sequence == [
        (0, "bash", "search"),
        (0, "read_file", "read"),
        (0, "str_replace_editor", "edit"),
        (0, "run_tests", "test"),
        (1, "bash", "search"),
        (1, "read_file", "read"),
        (1, "bash", "shell"),
        (1, "run_tests", "test"),
        (1, "submit", "submit"),
        (1, "bash", "shell"),
    ]
    edits = [t for t in tools if t.get("agent_signals.tool.changed_files")]
    assert [
        (t["agent_signals.tool.changed_files"], t["agent_signals.tool.edit_mode"]) for t in edits
    ] == [
        (["textkit/stats.py"], "direct"),
        (["textkit/fmt.py"], "shell_mediated"),  # the sed -i edit, invisible to an edit counter
    ]
    failing_tests, passing_tests = (t for t in tools if t["gen_ai.tool.name"] == "run_tests")
    assert failing_tests["process.exit.code"] == 1 and passing_tests["process.exit.code"] == 0
    # What the agent saw of unittest (it reports on stderr), parsed into outcomes.
    assert failing_tests["agent_signals.test.framework"] == "unittest"
    assert failing_tests["agent_signals.test.passed_count"] == 2
    assert failing_tests["agent_signals.test.failed_count"] == 1
    assert failing_tests["agent_signals.test.failed"] == [
        "test_percent (tests.test_textkit.TextkitTest)"
    ]
    assert passing_tests["agent_signals.test.passed_count"] == 3
    assert passing_tests["agent_signals.test.failed_count"] == 0


def test_show_on_the_demo_gives_the_test_outcomes(demo_run: tuple, demo_output: Path) -> None:
    result, _ = demo_run
    assert result.returncode == 0, result.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", "show", "textkit__textkit-1", str(demo_output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    runs = [line.split() for line in shown.stdout.splitlines() if " run_tests " in line]
    assert len(runs) == 2
    # time, step (S1, S3, ...), tool, category, phase, then what the test run said
    assert all(words[1].startswith("S") and words[2] == "run_tests" for words in runs)
    first, second = (" ".join(words[5:]) for words in runs)
    assert first == (
        "FAILED: 2 passed, 1 failed (unittest) · failing: test_percent "
        "(tests.test_textkit.TextkitTest)"
    )
    assert second == "passed: 3 passed (unittest)"


def test_demo_prints_the_features_of_its_attempts(demo_run: tuple) -> None:
    result, _ = demo_run
    out = result.stdout
    assert "features per attempt (agentsignals.features):" in out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line.startswith("  behavior.")
        or line.startswith("  infra.")
        or line.startswith("  tokens.")
    }
    assert rows["behavior.edit_calls"] == ["1", "0"]
    assert rows["behavior.shell_edit_calls"] == ["0", "1"]
    assert rows["behavior.bash_mediated_edits"] == ["False", "True"]
    assert rows["behavior.touched_files"] == ["textkit/stats.py", "textkit/fmt.py"]
    assert rows["behavior.validated_after_last_edit"] == ["True", "True"]
    assert rows["infra.exit_reason"] == ["max_turns", "submitted"]
    # 900 context tokens plus 350 per turn: 4 turns, then 5.
    assert rows["tokens.input_tokens_total"] == [
        str(sum(900 + 350 * k for k in range(1, 5))),
        str(sum(900 + 350 * k for k in range(1, 6))),
    ]
