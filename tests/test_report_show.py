"""`agentsignals show` on real imported trajectories and on the demo's traces, checked against
what the trajectory files themselves say (turns, test runs, usage, the submitted diff)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

DJANGO = "mini-swe-agent/20251118_gemini-3-pro"
PYTEST = "swe-agent/20250511_sweagent_lm_32b"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}
    return subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env=env,
    )


def _ok(*args: str, cwd: Path | None = None) -> str:
    proc = _cli(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _turns(out: str) -> dict[int, list[str]]:
    """The step lines under each `turn N` heading."""
    turns: dict[int, list[str]] = {}
    current: int | None = None
    for line in out.splitlines():
        head = re.match(r"  turn (\d+)", line)
        if head:
            current = int(head.group(1))
            turns[current] = []
        elif current is not None and re.match(r"\s+\d+  ", line):
            turns[current].append(line)
        elif not line.strip():
            current = None
    return turns


@pytest.fixture(scope="module")
def django(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    from conftest import SHARED_DATA

    root = SHARED_DATA / DJANGO
    if not root.is_dir():
        pytest.skip(f"real agent data not found at {root} (../shared/data is absent)")
    work = tmp_path_factory.mktemp("django")
    traces = work / "traces.jsonl"
    attempts = work / "attempts.jsonl"
    _ok("import", str(root / "trajs"), "-o", str(traces), "--no-progress")
    report = root / "logs" / "django__django-16527" / "report.json"
    _ok("verify", str(traces), "--reports", str(report), "-o", str(attempts))
    (traj,) = (root / "trajs").rglob("*.traj.json")
    return traces, attempts, json.loads(traj.read_text())


def test_show_groups_a_real_trajectory_by_turn_with_its_test_runs(
    django: tuple[Path, Path, dict],
) -> None:
    traces, attempts, traj = django
    out = _ok("show", "django__django-16527", str(traces), str(attempts))
    assert out.count("attempt ") == 1 and "[from the record" not in out
    # One turn per model response, each requesting one bash command.
    responses = [m for m in traj["messages"] if m["role"] == "assistant"]
    turns = _turns(out)
    assert sorted(turns) == list(range(len(responses))) == list(range(22))
    assert all(len(lines) == 1 for lines in turns.values())
    assert f"{len(responses)} turns, {len(responses)} tool calls" in out
    # Tokens per turn are the provider's usage of that response.
    usage = responses[0]["extra"]["response"]["usage"]
    assert (
        f"turn 0 · S0 · tokens in {usage['prompt_tokens']:,} / out {usage['completion_tokens']:,}"
        in (out)
    )
    # Each test run with its outcome, as the runner printed it ("Ran N tests ... OK").
    observations = [m["content"] for m in traj["messages"] if m["role"] == "user"][1:]
    runs = [
        (int(m.group(1)), int(s.group(1)) if (s := re.search(r"skipped=(\d+)", text)) else 0)
        for text in observations
        if (m := re.search(r"Ran (\d+) tests? in", text))
    ]
    assert runs == [(6, 0), (358, 23)]
    test_lines = [line for lines in turns.values() for line in lines if " test " in line]
    assert len(test_lines) == 2
    for line, (ran, skipped) in zip(test_lines, runs, strict=True):
        counted = f"{ran - skipped} passed" + (f", {skipped} skipped" if skipped else "")
        assert "verify" in line and f"passed: {counted} (django)" in line
    # A command that failed, under its turn; the first edit marked.
    assert "ERROR (exit 1)" in turns[7][0]
    assert "first edit" in turns[6][0] and "changed reproduce_issue.py" in turns[6][0]
    # Files edited: the submitted diff's own line counts.
    diff = traj["info"]["submission"].splitlines()
    added = sum(line.startswith("+") and not line.startswith("+++") for line in diff)
    removed = sum(line.startswith("-") and not line.startswith("---") for line in diff)
    assert (
        f"files edited: django/contrib/admin/templatetags/admin_modify.py (+{added} -{removed})"
        in out
    )
    # The verifier's outcome comes from the record (spans from the import have none).
    assert "outcome: RESOLVED (correct_patch, reward 1" in out


def test_show_without_spans_uses_the_record(django: tuple[Path, Path, dict]) -> None:
    _, attempts, _ = django
    out = _ok("show", "django__django-16527", str(attempts))
    assert "[from the record: no spans in the inputs]" in out
    assert "turn 0" not in out and "22 turns, 22 tool calls" in out
    assert "outcome: RESOLVED" in out
    step15 = next(line for line in out.splitlines() if line.strip().startswith("15 "))
    assert "test" in step15 and "verify" in step15


def test_show_swe_agent_trajectory(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / PYTEST
    traces = tmp_path / "traces.jsonl"
    attempts = tmp_path / "attempts.jsonl"
    # A leaderboard results.json speaks for one run: name it on import and verify.
    _ok("import", str(root / "trajs"), "-o", str(traces), "--run-id", "r1", "--no-progress")
    _ok(
        "verify", str(traces), "--reports", str(root / "results.json"), "--run-id", "r1",
        "-o", str(attempts),
    )  # fmt: skip
    out = _ok("show", "pytest-dev__pytest-7432", str(tmp_path))
    # SOURCES.md: 8 steps, 8 API calls, exit `submitted`, not resolved.
    turns = _turns(out)
    assert sorted(turns) == list(range(8)) and all(len(v) == 1 for v in turns.values())
    assert "exit: submitted" in out and "outcome: FAILED" in out
    assert "submit" in turns[7][0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("the demo needs git")
    out = tmp_path_factory.mktemp("demo") / "agentsignals-output"
    _ok("demo", "--output", str(out))
    return out


def test_show_on_the_demo_traces(demo: Path) -> None:
    # From the folder `agentsignals demo` wrote, as a user runs it (the default input).
    out = _ok("show", "textkit__textkit-1", cwd=demo.parent)
    first, second = out.split("\nattempt ")[0], "attempt " + out.split("\nattempt ")[1]
    assert "[from the record" not in out
    assert "(index 0)" in first and "exit: max_turns" in first and "outcome: FAILED" in first
    assert "(index 1)" in second and "exit: submitted" in second
    assert "outcome: RESOLVED (correct_patch" in second
    turns = _turns(first)
    assert sorted(turns) == [0, 1, 2, 3]
    # The demo declares a phase per turn; the tools it calls, in order (tests/test_demo.py).
    heads = [line for line in first.splitlines() if line.startswith("  turn ")]
    assert [h.split("declared phase ")[1] for h in heads] == [
        "explore",
        "localize",
        "implement",
        "verify",
    ]
    # Each call with its step in the judge's transcript (a turn, then its call: S0, S1, ...)
    # and the phase the judge gives it.
    calls = [line.split()[1:5] for lines in turns.values() for line in lines]
    assert calls == [
        ["S1", "bash", "search", "explore"],
        ["S3", "read_file", "read", "localize"],
        ["S5", "str_replace_editor", "edit", "implement"],
        ["S7", "run_tests", "test", "verify"],
    ]
    # The demo's test runs carry what the agent saw (unittest reports on stderr), parsed.
    assert "FAILED: 2 passed, 1 failed (unittest) · failing: test_percent" in turns[3][0]
    assert "passed: 3 passed (unittest)" in _turns(second)[3][0]
    assert [h.split(" · ")[1] for h in heads] == ["S0", "S2", "S4", "S6"]
    assert "files edited: textkit/stats.py (+1 -1)" in first


def test_show_from_clickhouse_spans_equals_show_from_files(demo: Path, tmp_path: Path) -> None:
    pytest.importorskip("chdb", reason="chDB (the clickhouse extra) is not installed")
    db = f"chdb://{tmp_path / 'db'}"
    loader = (
        "import sys; from agentsignals._store.clickhouse import insert_otlp_files; "
        "print(insert_otlp_files(sys.argv[1], [sys.argv[2]]))"
    )
    subprocess.run(
        [sys.executable, "-c", loader, db, str(demo / "traces")], check=True, capture_output=True
    )
    from_db = _ok("show", "textkit__textkit-1", "--source", db)
    from_files = _ok("show", "textkit__textkit-1", str(demo / "traces"))
    assert from_db == from_files and from_db.count("  turn ") == 9


def test_show_errors_are_one_line(tmp_path: Path) -> None:
    missing = _cli("show", "x", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    (tmp_path / "attempts.jsonl").write_text('{"attempt_id": "a1"}\n')
    none = _cli("show", "zzz", str(tmp_path))
    assert none.returncode == 1 and "no attempt, trial or task 'zzz'" in none.stderr
