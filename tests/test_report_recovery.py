"""The report's recovery section and the reward proxy-versus-outcome view, on records of real
scripted runs (real git repositories, real unittest runs, real faults), checked by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

import agentsignals
from agentsignals import faults, features, rewards
from agentsignals._demo import Workspace, create_repository
from agentsignals._features.record import JudgeField
from agentsignals._features.recovery import with_judge
from agentsignals._spans.decode import from_readable_spans
from agentsignals.testing import CapturedSpans

pytest.importorskip("scipy")
import contextlib

from agentsignals import report

STATS = "textkit/stats.py"
EDIT = {
    "command": "str_replace",
    "path": STATS,
    "old_str": "sum(values) / (len(values) + 1)",
    "new_str": "sum(values) / len(values)",
}
SED = {"command": "sed -i 's/ratio \\* 10:/ratio * 100:/' textkit/fmt.py"}
SOLVE = [
    ("read_file", {"path": STATS}),
    ("str_replace_editor", EDIT),
    ("bash", SED),
    ("run_tests", {}),
]


def attempt(
    root: Path, task: str, calls: list[tuple[str, dict[str, Any]]], fault: Any = None
) -> None:
    repo = create_repository(root / f"{task}-{'f' if fault else 'b'}")
    tools = Workspace(repo)
    with (
        agentsignals.trial(task),
        agentsignals.attempt(workspace=str(repo), agent_type="scripted", model_id="m") as a,
    ):
        if fault is not None:
            faults.inject(fault)
        for name, args in calls:
            with agentsignals.turn() as turn:
                turn.record_usage(input_tokens=100, output_tokens=10)
            with contextlib.suppress(Exception):
                getattr(tools, name)(**args)
        passed = (
            subprocess.run(
                [sys.executable, "-m", "unittest", "-q"], cwd=repo, capture_output=True, check=False
            ).returncode
            == 0
        )
        a.record_outcome(resolved=passed)


def test_recovery_and_reward_sections(tmp_path: Path, captured: CapturedSpans) -> None:
    # Task A: solved without a fault; a truncation after the first edit breaks it.
    attempt(tmp_path, "A", SOLVE)
    attempt(tmp_path, "A", SOLVE, faults.Fault("truncate_file"))
    # Task B: solved; a tool error hits the edit, the agent retries it and still solves it.
    attempt(tmp_path, "B", SOLVE)
    attempt(
        tmp_path, "B", [SOLVE[0], SOLVE[1], *SOLVE[1:]],
        faults.Fault("tool_error", trigger="after_step", step=1),
    )  # fmt: skip
    # Task C: never solved; the timed-out call is never retried.
    attempt(tmp_path, "C", [SOLVE[0]])
    attempt(
        tmp_path, "C", [SOLVE[0], ("bash", {"command": "ls"})],
        faults.Fault("tool_timeout", trigger="after_step", step=1),
    )  # fmt: skip
    recs = features.from_spans(captured.spans).attempts
    # A judge ran the noticed_fault rubric on C's faulted attempt only and says noticed.
    recs = [
        msgspec.structs.replace(r, recovery=with_judge(r.recovery, JudgeField(value=True)))
        if r.task_id == "C" and r.recovery.fault_injected
        else r
        for r in recs
    ]
    assert sorted((r.task_id, r.recovery.fault_injected, r.verification.reward) for r in recs) == [
        ("A", False, 1.0), ("A", True, 0.0), ("B", False, 1.0), ("B", True, 1.0),
        ("C", False, 0.0), ("C", True, 0.0),
    ]  # fmt: skip
    records_path = tmp_path / "records.jsonl"
    records_path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in recs))
    reward_run = rewards.from_spans(list(from_readable_spans(captured.spans)))
    rewards_path = tmp_path / "rewards.jsonl"
    rewards.write(reward_run, rewards_path)

    built = report.build(
        report.load([records_path]), report.Options(rewards=(str(rewards_path),), replicates=200)
    )
    rec = built.result("recovery")
    assert rec is not None and (rec["faulted"], rec["baseline"]) == (3, 3)
    [row] = [r for r in rec["rows"] if r["kind"] == "all kinds"]
    # Evidence in the trace for A and B; C's only from the judge: counted, and shown apart.
    assert (row["noticed"]["k"], row["noticed"]["n"]) == (3, 3)
    assert (row["noticed_in_trace"]["k"], row["noticed_in_trace"]["n"]) == (2, 3)
    assert (row["noticed_judge"]["k"], row["noticed_judge"]["n"]) == (1, 1)
    assert rec["judged"] is True
    assert (row["resolved"]["k"], row["resolved"]["n"]) == (1, 3)
    assert (row["baseline"]["k"], row["baseline"]["n"]) == (2, 3)
    # Recovery: faulted attempts on tasks the baseline solved (A, B): B recovered.
    assert (row["recovery"]["k"], row["recovery"]["n"]) == (1, 2)
    # Paired drop over tasks A (1 - 0), B (1 - 1), C (0 - 0).
    assert row["drop"]["value"] == pytest.approx(1 / 3) and row["drop"]["n"] == 3
    kinds = {r["kind"]: r for r in rec["rows"]}
    assert set(kinds) == {"all kinds", "truncate_file", "tool_error", "tool_timeout"}
    assert kinds["tool_timeout"]["noticed"]["k"] == 1
    assert kinds["tool_timeout"]["noticed_in_trace"]["k"] == 0  # never retried
    undone = kinds["truncate_file"]["undone"]
    assert (undone["k"], undone["n"], undone["lo"]) == (0, 1, 0.0)
    assert undone["hi"] == pytest.approx(0.7935, abs=1e-3)  # Wilson, 0 of 1
    # Recovery fields are the section's, not behaviour rows.
    behaviour = built.result("behaviour") or {"rows": []}
    assert not any(
        str(r.get("signal", "")).startswith("recovery.") for r in behaviour.get("rows", [])
    )

    rw = built.result("rewards")
    assert rw is not None and rw["attempts"] == 6
    # Shaping: validation (0.03) fired wherever an edit was followed by a test run: the two
    # solved baselines, both faulted A and B; C never edited (unavailable there).
    assert rw["shaping_auc"]["value"] == pytest.approx(7.5 / 9)
    assert rw["shaping_auc_within"] == {"value": 0.5, "pairs": 1, "tasks": 1}
    [validation] = [c for c in rw["components"] if c["name"] == "validation"]
    assert (validation["fired_resolved"]["k"], validation["fired_resolved"]["n"]) == (3, 3)
    assert (validation["fired_failed"]["k"], validation["fired_failed"]["n"]) == (1, 1)
    assert validation["kind"] == "bonus" and validation["agrees"] == "unclear"
    html = built.html()
    assert "Recovery from injected faults" in html and "Reward proxies versus the outcome" in html
    assert "recovery rate" in html and "truncate_file" in html
    assert "judge says noticed" in html
    assert "the judge says noticed in 1 of 1 it judged" in built.markdown()
