"""Tags: the resource attributes a producer set reach the attempt and trial records (live runs
through OTEL_RESOURCE_ATTRIBUTES, imports through `agentsignals import --tag`, ClickHouse through
otel_traces and the feature tables), and `agentsignals report --tag KEY=VALUE` filters on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

# A live agent in its own process: trial > attempt > turn > tool, features derived in process,
# traces to files, the outcome recorded in process.
AGENT = """
import sys, agentsignals
out, task, resolved = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
agentsignals.configure(output_dir=out, service_name="tag-test", exporters=("file",), features=True)
with agentsignals.trial(task, dataset="tags@1"):
    with agentsignals.attempt(agent_type="scripted", model_id="test/m") as attempt:
        with agentsignals.turn(model="test/m") as turn:
            turn.record_usage(input_tokens=10, output_tokens=2)
        with agentsignals.tool("bash", category="search") as tool:
            tool.set_exit_code(0)
        attempt.record_outcome(resolved=resolved, reward=1.0 if resolved else 0.0)
agentsignals.shutdown()
"""
USER = {"team": "search", "deployment.environment": "ci"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}
    return {**env, **extra}


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env or _env(),
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=_env(),
    )


def _attempts(*args: str, out: Path) -> int:
    """How many attempts `agentsignals report ARGS` reports on."""
    proc = _cli("report", *args, "-q", "--replicates", "100", "-o", str(out))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    totals = data["sections"].get("overview", {}).get("totals", {})
    return int(totals.get("attempts", 0))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three live runs: two with team=search, one with team=infra, all set through
    OTEL_RESOURCE_ATTRIBUTES (the SDK adds telemetry.sdk.* and service.instance.id itself)."""
    out = tmp_path_factory.mktemp("live") / "agentsignals-output"
    for task, team, resolved in (
        ("t1", "search", "1"),
        ("t2", "search", "0"),
        ("t3", "infra", "0"),
    ):
        attributes = f"team={team},deployment.environment=ci"
        _run("-c", AGENT, str(out), task, resolved, env=_env(OTEL_RESOURCE_ATTRIBUTES=attributes))
    return out


def test_live_records_carry_the_resource_attributes_the_user_set(live: Path) -> None:
    attempts = _lines(live / "features" / "attempts.jsonl")
    trials = _lines(live / "features" / "trials.jsonl")
    assert len(attempts) == len(trials) == 3
    by_task = {a["task_id"]: a for a in attempts}
    for task, team in (("t1", "search"), ("t2", "search"), ("t3", "infra")):
        assert by_task[task]["resource_attributes"] == {**USER, "team": team}
        assert by_task[task]["service_name"] == "tag-test"
    # The trace files carry what the SDK added too; the records leave it out.
    trace = json.loads(next((live / "traces").glob("*.jsonl")).read_text().splitlines()[0])
    keys = {a["key"] for a in trace["resourceSpans"][0]["resource"]["attributes"]}
    assert {"telemetry.sdk.name", "service.instance.id", "service.name", "team"} <= keys
    for t in trials:  # the trial span's resource: the same process's
        assert t["resource_attributes"] == t["first_attempt"]["resource_attributes"]
    # Features derived offline from the trace files agree with those made in process.
    derived = _lines(Path(_derive(live / "traces", live.parent / "derived.jsonl")))
    assert {a["attempt_id"]: a["resource_attributes"] for a in derived} == {
        a["attempt_id"]: a["resource_attributes"] for a in attempts
    }


def _derive(traces: Path, out: Path) -> str:
    proc = _cli("features", str(traces), "-o", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return str(out)


def test_report_tag_filters_live_records(live: Path, tmp_path: Path) -> None:
    features = str(live / "features")
    assert _attempts(features, out=tmp_path / "all.html") == 3
    assert _attempts(features, "--tag", "team=search", out=tmp_path / "s.html") == 2
    assert _attempts(features, "--tag", "team=inf*", out=tmp_path / "i.html") == 1
    # One key given twice: either value; different keys: both.
    both = ["--tag", "team=search", "--tag", "team=infra"]
    assert _attempts(features, *both, out=tmp_path / "b.html") == 3
    anded = ["--tag", "team=search", "--tag", "deployment.environment=prod"]
    assert _attempts(features, *anded, out=tmp_path / "a.html") == 0
    assert _attempts(features, "--tag", "deployment.environment", out=tmp_path / "k.html") == 3
    # From the traces (features derived on the fly) the same.
    assert _attempts(str(live / "traces"), "--tag", "team=search", out=tmp_path / "t.html") == 2
    proc = _cli("report", features, "--tag", "owner=me", "-o", str(tmp_path / "x.html"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "carry: deployment.environment, team" in proc.stderr


def test_imported_trajectories_carry_import_tags(shared_data: Path, tmp_path: Path) -> None:
    django = shared_data / "mini-swe-agent" / "20251118_gemini-3-pro" / "trajs"
    sweagent = shared_data / "swe-agent" / "20250511_sweagent_lm_32b"
    if not django.is_dir() or not sweagent.is_dir():
        pytest.skip("the mini-swe-agent and swe-agent trajectories are not in ../shared/data")
    traces = tmp_path / "traces"
    traces.mkdir()
    for path, tags in (
        (django, ["--tag", "team=search", "--tag", "suite=verified"]),
        (sweagent, ["--tag", "team=infra"]),
    ):
        proc = _cli("import", str(path), "-o", str(traces / f"{path.parent.name}.jsonl"),
                    "--no-progress", *tags)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
    records = _lines(Path(_derive(traces, tmp_path / "attempts.jsonl")))
    teams = [r["resource_attributes"]["team"] for r in records]
    assert teams.count("search") >= 1 and teams.count("infra") >= 1
    for r in records:
        tags = r["resource_attributes"]
        assert tags in ({"team": "search", "suite": "verified"}, {"team": "infra"})
    n_search = teams.count("search")
    assert _attempts(str(traces), "--tag", "team=search", out=tmp_path / "s.html") == n_search
    assert _attempts(str(traces), "--tag", "suite=verified", out=tmp_path / "v.html") == n_search
    assert _attempts(str(tmp_path / "attempts.jsonl"), "--tag", "team=infra",
                     out=tmp_path / "i.html") == len(records) - n_search  # fmt: skip


def test_tags_through_clickhouse(live: Path, tmp_path: Path) -> None:
    pytest.importorskip("chdb", reason="chDB (the clickhouse extra) is not installed")
    # Spans in otel_traces: the report derives features from them (resource attributes are
    # the table's ResourceAttributes).
    spans_db = f"chdb://{tmp_path / 'spans'}"
    loader = (
        "import sys; from agentsignals._store.clickhouse import insert_otlp_files; "
        "insert_otlp_files(sys.argv[1], [sys.argv[2]])"
    )
    _run("-c", loader, spans_db, str(live / "traces"))
    assert _attempts("--source", spans_db, "--tag", "team=search", out=tmp_path / "a.html") == 2
    # Records in the feature tables: resource_attributes is JSON text there.
    records_db = f"chdb://{tmp_path / 'records'}"
    loader = (
        "import sys, msgspec; from agentsignals import features; "
        "from agentsignals._store.clickhouse import connect; "
        "dec = {'a': features.AttemptRecord, 't': features.TrialRecord}; "
        "recs = [msgspec.json.decode(l, type=dec[k]) for k, p in (('a', sys.argv[2]), "
        "('t', sys.argv[3])) for l in open(p, 'rb')]; "
        "s = connect(sys.argv[1]); s.insert_records(recs); "
        'q = "SELECT count() AS n FROM agentsignals_trials FINAL '
        "WHERE JSONExtractString(resource_attributes, 'team') = 'search'\"; "
        "print(s.query_rows(q)[0]['n']); s.close()"
    )
    features = live / "features"
    out = _run(
        "-c", loader, records_db, str(features / "attempts.jsonl"), str(features / "trials.jsonl")
    )
    assert int(out.strip()) == 2  # trial records carry them too, queryable in SQL
    assert _attempts("--source", records_db, "--tag", "team=infra", out=tmp_path / "b.html") == 1
    assert _attempts("--source", records_db, out=tmp_path / "c.html") == 3
