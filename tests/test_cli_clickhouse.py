"""`agentsignals features --source clickhouse/chdb URL` and `--store URL`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("chdb", reason="chDB (the clickhouse extra) is not installed")

CLI = [sys.executable, "-m", "agentsignals.cli", "features", "--no-progress"]


def test_features_from_a_clickhouse_table_equal_features_from_files(tmp_path: Path) -> None:
    from agentsignals._store.clickhouse import insert_otlp_files

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import gen_traces

    traces = tmp_path / "traces.jsonl"
    traces.write_text("\n".join(gen_traces.generate_lines(3000, spans_per_line=500)) + "\n")
    db = f"chdb://{tmp_path / 'db'}"
    # Load the traces in a child process: chDB allows one data directory per process.
    loader = (
        "import sys; from agentsignals._store.clickhouse import insert_otlp_files; "
        "print(insert_otlp_files(sys.argv[1], [sys.argv[2]]))"
    )
    subprocess.run([sys.executable, "-c", loader, db, str(traces)], check=True, capture_output=True)
    del insert_otlp_files
    from_db = subprocess.run([*CLI, "--source", db], capture_output=True, text=True, check=True)
    from_files = subprocess.run([*CLI, str(traces)], capture_output=True, text=True, check=True)

    def by_attempt(out: str) -> dict[str, dict]:
        rows = [json.loads(line) for line in out.splitlines()]
        return {r["attempt_id"]: {k: v for k, v in r.items()} for r in rows}

    db_rows, file_rows = by_attempt(from_db.stdout), by_attempt(from_files.stdout)
    assert db_rows and db_rows.keys() == file_rows.keys()
    for attempt_id, row in file_rows.items():
        assert db_rows[attempt_id]["behavior"] == row["behavior"]
        assert db_rows[attempt_id]["tokens"] == row["tokens"]


def test_store_writes_the_feature_table_and_bad_urls_fail_clearly(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import gen_traces

    traces.write_text("\n".join(gen_traces.generate_lines(600, spans_per_line=300)) + "\n")
    db = f"chdb://{tmp_path / 'db'}"
    out = subprocess.run(
        [*CLI, str(traces), "--store", db], capture_output=True, text=True, check=True
    )
    n = len(out.stdout.splitlines())
    count = subprocess.run(
        [sys.executable, "-c",
         "import sys; from agentsignals._store.clickhouse import connect; "
         "print(connect(sys.argv[1], create=False).query_rows("
         "'SELECT count() AS n FROM agentsignals_attempts FINAL')[0]['n'])", db],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(count.stdout.strip()) == n > 0
    bad = subprocess.run([*CLI, "--source", "mysql://nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "agentsignals features:" in bad.stderr
