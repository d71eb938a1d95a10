"""Verification end to end: outcomes from the real SWE-bench reports in ../shared/data merged
into traced attempts, gold-patch localization from the real SWE-bench Lite rows, outcomes
recorded in process, the agent's own test runs, and bad or ambiguous input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import agentsignals
from agentsignals import features, verify
from agentsignals import semconv as sc
from agentsignals.testing import attributes, capture_spans

REPORTS = "swebench/reports/sqlfluff__sqlfluff-1763/report.json"
BARE_REPORT = "mini-swe-agent/20251118_gemini-3-pro/logs/django__django-16527/report.json"
RESULTS = "swe-agent/20250511_sweagent_lm_32b/results.json"
LITE = "swebench/swe-bench-lite.json"


def _agent(
    task_id: str,
    *,
    steps: list[tuple[str, str, list[str]]],
    attempts: int = 1,
    run_id: str | None = None,
) -> None:
    """A traced agent run: steps are (tool name, category, files)."""
    with agentsignals.trial(task_id, run_id=run_id):
        for _ in range(attempts):
            with agentsignals.attempt(agent_type="test"):
                with agentsignals.turn():
                    pass
                for name, category, files in steps:
                    with agentsignals.tool(name, category=category, files=files):
                        pass


DJANGO_GOLD = "django/contrib/admin/templatetags/admin_modify.py"
DJANGO_STEPS = [
    ("grep", "search", []),
    ("read_file", "read", ["/testbed/django/contrib/admin/options.py"]),
    ("read_file", "read", [f"/testbed/{DJANGO_GOLD}"]),
    ("edit_file", "edit", [f"/testbed/{DJANGO_GOLD}"]),
    ("pytest", "test", []),
]


@pytest.fixture
def traces(tmp_path: Path, fresh_otel: None) -> Path:
    out = tmp_path / "out"
    agentsignals.configure(output_dir=out, batch=False)
    _agent("django__django-16527", steps=DJANGO_STEPS)
    _agent(
        "sqlfluff__sqlfluff-1763",
        steps=[("edit_file", "edit", ["src/sqlfluff/core/linter/linter.py"])],
    )
    _agent("pytest-dev__pytest-7432", steps=[("read_file", "read", ["src/_pytest/skipping.py"])])
    agentsignals.shutdown()
    return out / "traces"


def test_real_reports_and_lite_rows(traces: Path, shared_data: Path) -> None:
    result = verify.verify(
        [traces],
        reports=[shared_data / REPORTS, shared_data / BARE_REPORT],
        dataset=shared_data / LITE,
    )
    by_task = {r.task_id: r for r in result.attempts}
    django = by_task["django__django-16527"]
    assert django.verification.patch_outcome_label == "correct_patch"
    assert django.verification.reward == 1.0
    assert (django.verification.fail_to_pass_count, django.verification.pass_to_pass_count) == (
        1,
        6,
    )
    assert django.verification.pass_to_fail_count == 0
    assert django.verification.outcome_source.endswith("django__django-16527/report.json")
    sqlfluff = by_task["sqlfluff__sqlfluff-1763"]
    assert sqlfluff.verification.patch_outcome_label == "regressive_patch"
    assert sqlfluff.verification.reward == 0.0
    assert sqlfluff.verification.pass_to_fail_count == 18
    assert sqlfluff.verification.fail_to_fail_count == 3
    # Gold localization (django-16527 is a Lite instance; sqlfluff-1763 is not).
    b, a = django.behavior, django.anticipation
    assert b.gold_files == [DJANGO_GOLD]
    # This agent tracks no workspace: its touched files (the diff) are unknown, so the
    # inventory's touched_files[0] in gold is unknown too, and so is first_tool_precision.
    assert b.touched_files is None and b.localized_correct_file is None
    assert a.first_tool_precision is None
    assert b.first_gold_read_step == 2 and b.first_gold_edit_step == 3
    assert sqlfluff.behavior.gold_files is None
    assert len(result.matched) == 2 and not result.unmatched


def test_leaderboard_results_absent_means_unresolved(traces: Path, shared_data: Path) -> None:
    # Without a run id nothing is inferred from absence: only listed instances get outcomes.
    result = verify.verify([traces], reports=[shared_data / RESULTS])
    by_task = {r.task_id: r for r in result.attempts}
    assert by_task["pytest-dev__pytest-7432"].verification.reward is None
    assert any("lists resolved instances only" in n for n in result.notes)
    listed = json.loads((shared_data / RESULTS).read_text())
    traced_and_resolved = {"django__django-16527", "sqlfluff__sqlfluff-1763"} & set(
        listed["resolved"]
    )
    for task in traced_and_resolved:
        assert by_task[task].verification.patch_outcome_label == "correct_patch"
    # Every other listed instance (201 resolved + 4 no_generation) has no trace here: reported.
    assert len(result.unmatched) == 205 - len(traced_and_resolved)
    assert all(o.source.endswith("results.json") for o in result.unmatched)


def test_leaderboard_marks_only_its_own_run(tmp_path: Path, shared_data: Path) -> None:
    """SOURCES.md: pytest-7432 is absent from results.json's resolved list: not resolved, in
    that run. A trace of another run (or none, a Claude Code session) is never marked."""
    out = tmp_path / "out"
    agentsignals.configure(output_dir=out, batch=False)
    try:
        _agent("pytest-dev__pytest-7432", steps=[], run_id="lm32b")
        _agent("pytest-dev__pytest-7432", steps=[], run_id="other")
        _agent("claude-session-1", steps=[])
    finally:
        agentsignals.shutdown()
    result = verify.verify([out / "traces"], reports=[shared_data / RESULTS], run_id="lm32b")
    by_run = {(r.task_id, r.run_id): r.verification for r in result.attempts}
    mine = by_run[("pytest-dev__pytest-7432", "lm32b")]
    assert (mine.reward, mine.patch_outcome_label) == (0.0, None)
    assert mine.patch_outcome_label_reason == "resolved_only"
    assert by_run[("pytest-dev__pytest-7432", "other")].reward is None
    assert by_run[("claude-session-1", None)].reward is None


def test_multi_swe_bench_results_json_resolved_list(tmp_path: Path) -> None:
    """Multi-SWE-bench's results.json: run-level lists, the resolved one named `resolved`."""
    report = tmp_path / "results.json"
    report.write_text(
        json.dumps(
            {
                "total_instances": 3,
                "completed_ids": ["fmtlib__fmt-1171", "fmtlib__fmt-1361"],
                "submitted_ids": ["fmtlib__fmt-1171", "fmtlib__fmt-1361", "fmtlib__fmt-9"],
                "resolved": ["fmtlib__fmt-1171"],
                "unresolved_ids": ["fmtlib__fmt-1361"],
                "empty_error_patch_ids": ["fmtlib__fmt-9"],
            }
        )
    )
    by_id = {o.instance_id: o for o in verify.load_outcomes([report])}
    assert (by_id["fmtlib__fmt-1171"].reward, by_id["fmtlib__fmt-1171"].label) == (
        1.0,
        "correct_patch",
    )
    assert (by_id["fmtlib__fmt-1361"].reward, by_id["fmtlib__fmt-1361"].label) == (0.0, None)
    assert by_id["fmtlib__fmt-9"].label == "unverifiable"
    assert not any(o.listed_only for o in by_id.values())  # unresolved ones are listed


def test_verify_twice_into_the_folder_it_reads(traces: Path, shared_data: Path) -> None:
    """--spans-out into the folder that is read: old outcomes do not come back, counts do
    not grow."""
    first = verify.verify([traces], reports=[shared_data / BARE_REPORT])
    verify.write_verification_spans(first, traces)
    again = verify.verify([traces], reports=[shared_data / BARE_REPORT])
    verify.write_verification_spans(again, traces)
    by_task = {r.task_id: r for r in first.attempts}
    other = verify.verify([traces], reports=[shared_data / REPORTS])
    after = {r.task_id: r for r in other.attempts}
    # The django outcome came from the bare report only: not given now, not applied now.
    assert after["django__django-16527"].verification.reward is None
    assert after["sqlfluff__sqlfluff-1763"].verification.patch_outcome_label == "regressive_patch"
    for task, record in after.items():
        assert record.span_count == by_task[task].span_count
    # Reading traces and outcome spans together: each outcome once.
    merged = features.extract([traces])
    django = next(r for r in merged.attempts if r.task_id == "django__django-16527")
    assert django.verification.patch_outcome_label == "correct_patch"
    assert django.span_count == by_task["django__django-16527"].span_count


def test_run_level_report_and_unknown_and_truncated_reports(
    traces: Path, shared_data: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "broken" / "report.json"
    truncated.parent.mkdir()
    truncated.write_text((shared_data / REPORTS).read_text()[:300])
    result = verify.verify(
        [traces],
        reports=[
            shared_data
            / "swebench/reports/deepseek__deepseek-chat.deepseek_lite_dev_noparallel.json",
            truncated,
        ],
    )
    by_task = {r.task_id: r for r in result.attempts}
    # sqlfluff-1763 is among the run's unresolved ids: reward 0, no test detail for a label.
    assert by_task["sqlfluff__sqlfluff-1763"].verification.reward == 0.0
    assert by_task["sqlfluff__sqlfluff-1763"].verification.patch_outcome_label is None
    assert by_task["django__django-16527"].verification.reward is None  # not in that run
    assert len(result.unmatched) == 22  # the run's other instances: reported, not dropped
    assert any("broken/report.json" in p for p in result.problems)


def test_two_attempts_and_two_trials_of_one_instance(tmp_path: Path, fresh_otel: None) -> None:
    agentsignals.configure(output_dir=tmp_path, batch=False)
    _agent("astropy__astropy-12907", steps=[("edit_file", "edit", ["a.py"])], attempts=2)
    _agent("psf__requests-2317", steps=[], run_id="run-a")
    _agent("psf__requests-2317", steps=[], run_id="run-b")
    _agent("sympy__sympy-20590", steps=[])
    _agent("sympy__sympy-20590", steps=[])
    agentsignals.shutdown()
    outcomes = [
        verify.Outcome(
            instance_id="astropy__astropy-12907",
            source="r1",
            resolved=True,
            reward=1.0,
            label="correct_patch",
        ),
        verify.Outcome(instance_id="psf__requests-2317", source="r2", run_id="run-b", reward=0.0),
        verify.Outcome(
            instance_id="sympy__sympy-20590", source="r3", reward=1.0, label="correct_patch"
        ),
        verify.Outcome(instance_id="nobody__nothing-1", source="r4", reward=1.0),
    ]
    result = verify.verify([tmp_path / "traces"], outcomes=outcomes)
    astropy = sorted(
        (r for r in result.attempts if r.task_id == "astropy__astropy-12907"),
        key=lambda r: r.attempt_index or 0,
    )
    assert [r.verification.reward for r in astropy] == [None, 1.0]  # the last attempt's patch
    assert any("applied to attempt 1" in n for n in result.notes)
    requests = {
        r.run_id: r.verification.reward
        for r in result.attempts
        if r.task_id == "psf__requests-2317"
    }
    assert requests == {"run-a": None, "run-b": 0.0}  # matched by run id
    assert [o.instance_id for o, _ in result.ambiguous] == ["sympy__sympy-20590"]
    assert all(
        r.verification.reward is None for r in result.attempts if r.task_id == "sympy__sympy-20590"
    )
    assert [o.instance_id for o in result.unmatched] == ["nobody__nothing-1"]
    [trial] = [t for t in result.trials if t.task_id == "astropy__astropy-12907"]
    assert (trial.final_reward, trial.resolved_on_attempt) == (1.0, 1)


def test_outcome_recorded_in_process_is_an_event_and_a_feature() -> None:
    with capture_spans() as captured:  # noqa: SIM117
        with agentsignals.trial("t-1"), agentsignals.attempt() as attempt:
            attempt.record_outcome(
                fail_to_pass=2, fail_to_fail=1, pass_to_pass=40, pass_to_fail=0, patch_applies=True
            )
    span = captured.spans_of_type("attempt")[0]
    attrs = attributes(span)
    assert attrs[sc.AGENT_SIGNALS_VERIFY_PATCH_OUTCOME_LABEL] == "partial_patch"
    [event] = [e for e in span.events if e.name == "gen_ai.evaluation.result"]
    assert event.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] == "partial_patch"
    assert "2 of 3 FAIL_TO_PASS" in event.attributes[sc.GEN_AI_EVALUATION_EXPLANATION]
    [record] = features.from_spans(captured.spans).attempts
    assert record.verification.patch_outcome_label == "partial_patch"
    assert record.verification.outcome_source == "in_process"
    assert (record.verification.fail_to_pass_count, record.verification.pass_to_pass_count) == (
        2,
        40,
    )


def test_agent_test_runs_give_a_signal_without_any_harness(tmp_path: Path) -> None:
    (tmp_path / "test_calc.py").write_text(
        "import calc\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n\ndef test_sub():\n    assert calc.sub(3, 2) == 1\n"  # noqa: E501
    )
    (tmp_path / "calc.py").write_text(
        "def add(a, b):\n    return a - b\n\ndef sub(a, b):\n    return a - b\n"
    )

    @agentsignals.trace_tool("pytest")
    def run_tests() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", str(tmp_path)],
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip

    with capture_spans() as captured, agentsignals.attempt(), agentsignals.turn():
        run_tests()
        (tmp_path / "calc.py").write_text(
            "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n"
        )
        run_tests()
    first, last = (attributes(s) for s in captured.spans_of_type("tool"))
    assert first[sc.AGENT_SIGNALS_TEST_FRAMEWORK] == "pytest"
    assert (
        first[sc.AGENT_SIGNALS_TEST_FAILED_COUNT],
        first[sc.AGENT_SIGNALS_TEST_PASSED_COUNT],
    ) == (1, 1)
    assert first[sc.AGENT_SIGNALS_TEST_FAILED] == ["test_calc.py::test_add"]
    assert last[sc.AGENT_SIGNALS_TEST_FAILED_COUNT] == 0
    [record] = features.from_spans(captured.spans).attempts
    v = record.verification
    assert (v.agent_test_runs, v.agent_first_run_failed, v.agent_last_run_failed) == (2, 1, 0)
    assert v.agent_tests_fixed == ["test_calc.py::test_add"]
    assert v.agent_tests_broken == []


def test_cli_verify_writes_records_and_outcome_spans(
    traces: Path, shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "verified.jsonl"
    spans_dir = tmp_path / "outcome-spans"
    cli = [sys.executable, "-m", "agentsignals.cli", "verify"]
    run = subprocess.run(
        [*cli, "--reports", str(shared_data / REPORTS), "--reports", str(shared_data / BARE_REPORT),
         "--dataset", str(shared_data / LITE), "-o", str(out), "--spans-out", str(spans_dir), str(traces)],  # noqa: E501
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = {r["task_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["django__django-16527"]["verification"]["patch_outcome_label"] == "correct_patch"
    assert rows["django__django-16527"]["behavior"]["first_gold_edit_step"] == 3
    assert "2 outcomes matched" in run.stderr
    # The outcome spans join their attempts: reading traces and outcome spans together gives
    # records that carry the verifier's outcome, as a trace viewer would show it.
    merged = features.extract([traces, spans_dir])
    labels = {r.task_id: r.verification.patch_outcome_label for r in merged.attempts}
    assert labels == {
        "django__django-16527": "correct_patch",
        "sqlfluff__sqlfluff-1763": "regressive_patch",
        "pytest-dev__pytest-7432": None,
    }
