"""The report on the 832 labelled SWE-bench Verified trajectories of ../shared/data/corpus,
imported, feature-extracted and verified with the corpus' own labels (once per session)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

from agentsignals import report

GEMINI = "gruckion__mini-swe-agent/swebench_results/20251118_gemini-3-pro-74pct"
LM32B = "lgetter__swe-agent-trajectory-analysis/20250511_sweagent_lm_32b"


def _cli(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="session")
def corpus_records(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from conftest import SHARED_DATA

    corpus = SHARED_DATA / "corpus"
    if not (corpus / "labels.csv").is_file():
        pytest.skip(f"the labelled corpus is not at {corpus} (../shared/data is absent)")
    work = tmp_path_factory.mktemp("corpus")
    parts = []
    for name, reports in (
        (GEMINI, corpus / GEMINI / "logs"),
        (LM32B, corpus / LM32B / "results" / "results.json"),
    ):
        # Trajectories are read as stored (gzip-compressed); each run gets its run id, so a
        # leaderboard results.json may mark that run's unlisted instances unresolved.
        run_id = name.split("/")[-1]
        traces = work / f"{run_id}.traces.jsonl"
        verified = work / f"{run_id}.attempts.jsonl"
        _cli(
            "import", str(corpus / name / "trajs"), "-o", str(traces), "--run-id", run_id,
            "--workers", "2", "--no-progress",
        )  # fmt: skip
        _cli(
            "verify", str(traces), "--reports", str(reports), "--run-id", run_id,
            "-o", str(verified),
        )  # fmt: skip
        parts.append(verified)
    combined = work / "attempts.jsonl"
    combined.write_bytes(b"".join(p.read_bytes() for p in parts))
    return combined, corpus / "labels.csv"


@pytest.fixture(scope="session")
def corpus_report(corpus_records: tuple[Path, Path]) -> report.Report:
    attempts, _ = corpus_records
    return report.build(
        report.load([attempts]), report.Options(by=("agent",), title="832 SWE-bench Verified runs")
    )


def _labels(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_resolve_rates_equal_the_labels(
    corpus_report: report.Report, corpus_records: tuple[Path, Path]
) -> None:
    labels = _labels(corpus_records[1])
    overview = corpus_report.result("overview")
    assert overview is not None
    arms = {a["arm"]: a for a in overview["arms"]}
    for agent, prefix in (("mini-swe-agent", "mini-swe-agent"), ("swe-agent", "SWE-agent")):
        rows = [r for r in labels if r["agent"].startswith(prefix)]
        first = arms[agent]["first"]
        assert (first["k"], first["n"]) == (sum(r["resolved"] == "1" for r in rows), len(rows))
    assert (arms["mini-swe-agent"]["first"]["k"], arms["swe-agent"]["first"]["k"]) == (371, 185)
    lo, hi = arms["swe-agent"]["first"]["lo"], arms["swe-agent"]["first"]["hi"]
    assert (round(lo, 4), round(hi, 4)) == (0.5034, 0.6097)  # Wilson 185/332, computed by hand


def test_within_task_estimates_use_the_89_mixed_tasks(
    corpus_report: report.Report, corpus_records: tuple[Path, Path]
) -> None:
    by_task: dict[str, set[str]] = {}
    for r in _labels(corpus_records[1]):
        by_task.setdefault(r["instance_id"], set()).add(r["resolved"])
    mixed = {t for t, v in by_task.items() if v == {"0", "1"}}
    behaviour = corpus_report.result("behaviour")
    assert behaviour is not None
    assert len(mixed) == behaviour["mixed_tasks"] == 89
    assert set(behaviour["mixed_task_ids"]) == mixed
    # Each mixed task pairs the two agents, so within-task rows are adjusted for the agent.
    assert behaviour["mixed_strata_span_arms"] and behaviour["adjusted"]
    for row in behaviour["rows"] + behaviour["numeric"]:
        assert row["within"]["n"] <= 89 and (row.get("adjusted") or {}).get("n", 0) <= 89


def test_missing_longest_trajectories_show_as_raw_vs_paired_not_as_a_finding(
    corpus_report: report.Report,
) -> None:
    compare = corpus_report.result("compare")
    assert compare is not None
    (pair,) = compare["pairs"]
    assert (pair["a"], pair["b"], pair["shared_tasks"]) == ("mini-swe-agent", "swe-agent", 332)
    assert pair["table"] == {"both": 178, "a_only": 82, "b_only": 7, "neither": 65}
    assert pair["task_sets_differ"] is True
    raw = pair["a_all"]["rate"] - pair["b_all"]["rate"]
    assert round(raw, 3) == round(371 / 500 - 185 / 332, 3)
    assert pair["difference"]["value"] == pytest.approx((82 - 7) / 332)
    # Gemini resolves more of the shared (shorter-run) tasks than of all its tasks: the task
    # sets differ in difficulty, which the report says instead of reading it as a finding.
    assert pair["a_shared"]["rate"] > pair["a_all"]["rate"]
    assert pair["mcnemar_p"] < 1e-15
    assert "compare them on the shared tasks" in corpus_report.markdown()
