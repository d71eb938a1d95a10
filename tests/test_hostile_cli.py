"""Fault injection: the command line under bad arguments and unreachable services.

Every problem is one clear line on stderr (never a traceback), the exit code is non-zero when
nothing useful was done, and outputs are owner-only files.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agentsignals._collector import Collector, CollectorConfig

FIXTURE = Path(__file__).parent / "fixtures" / "mini_swe_agent" / "toolcall.traj.json"
AGENTSIGNALS = [sys.executable, "-m", "agentsignals"]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [*AGENTSIGNALS, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OTLP/JSON lines of one imported trajectory."""
    out = tmp_path_factory.mktemp("traces") / "traces.jsonl"
    code, _, err = run("import", "--no-progress", str(FIXTURE), "-o", str(out))
    assert code == 0, err
    return out


def test_version_and_python_dash_m() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.strip().startswith("agentsignals 0.")
    code, out, _ = run("--help")
    assert code == 0 and "import" in out and "features" in out and "collect" in out


def test_features_output_errors_are_one_line_before_any_work(traces: Path, tmp_path: Path) -> None:
    code, out, err = run("features", "--no-progress", str(traces), "-o", "/nonexistent/x.jsonl")
    assert code == 2 and out == ""
    assert lines(err) == [
        "agentsignals features: cannot write /nonexistent/x.jsonl: no such folder /nonexistent"
    ]
    assert not Path("/nonexistent").exists()
    code, _, err = run("features", "--no-progress", str(traces), "-o", str(tmp_path / "x.txt"))
    assert code == 2 and len(lines(err)) == 1 and ".jsonl (JSON lines), .csv or .parquet" in err
    assert not (tmp_path / "x.txt").exists()
    folder = tmp_path / "a-folder.jsonl"
    folder.mkdir()
    code, _, err = run("features", "--no-progress", str(traces), "-o", str(folder))
    assert code == 2 and lines(err) == [
        f"agentsignals features: cannot write {folder}: it is a folder"
    ]


def test_features_writes_real_csv_and_owner_only_files(traces: Path, tmp_path: Path) -> None:
    as_jsonl, as_csv, as_parquet = (tmp_path / f"r.{s}" for s in ("jsonl", "csv", "parquet"))
    for out in (as_jsonl, as_csv, as_parquet):
        code, _, err = run("features", "--no-progress", str(traces), "-o", str(out))
        assert code == 0, err
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    records = [json.loads(line) for line in as_jsonl.read_text().splitlines()]
    with as_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(records) >= 1
    for record, row in zip(records, rows, strict=True):
        assert row["attempt_id"] == record["attempt_id"]
        assert int(row["behavior.turn_count"]) == record["behavior"]["turn_count"]
        assert json.loads(row["behavior.tool_sequence"]) == record["behavior"]["tool_sequence"]
        nulls = [k for k, v in record["tokens"].items() if v is None]
        assert all(row[f"tokens.{k}"] == "" for k in nulls)
    import pyarrow.parquet as pq

    assert pq.read_table(as_parquet).num_rows == len(records)


def test_features_on_raw_trajectories_suggests_import_once(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "run.traj.json")
    codex = tmp_path / "rollout.jsonl"
    codex.write_text(
        "\n".join(
            json.dumps({"timestamp": f"2026-01-01T00:00:0{i}Z", "type": kind, "payload": payload})
            for i, (kind, payload) in enumerate(
                [("session_meta", {"id": "s", "cwd": "/r"}), ("turn_context", {"model": "m"})] * 20
            )
        )
    )
    code, out, err = run("features", "--no-progress", str(tmp_path))
    assert code == 1 and out == ""
    (hint, summary) = lines(err)
    assert "are agent trajectories (codex, mini-swe-agent), not OTLP traces" in hint
    assert f"agentsignals import {tmp_path} -o traces.jsonl" in hint
    assert summary == "agentsignals features: 0 attempt records from 0 spans"


def test_unreachable_clickhouse_is_one_line(traces: Path) -> None:
    url = f"clickhouse://reader:s3cret-pass@127.0.0.1:{closed_port()}/otel"
    code, _, err = run("features", "--source", url)
    assert code == 1 and len(lines(err)) == 1
    assert "cannot reach ClickHouse" in err and "s3cret-pass" not in err
    code, _, err = run("features", "--no-progress", str(traces), "--store", url, "-o", os.devnull)
    assert code == 1 and len(lines(err)) == 1 and "cannot reach ClickHouse" in err
    assert "s3cret-pass" not in err


def test_import_of_nothing_recognisable_fails_naming_each_file(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    (tmp_path / "binary.jsonl").write_bytes(bytes(range(256)))
    work = tmp_path / "work"
    work.mkdir()
    code, _, err = run(
        "import", "--no-progress", str(tmp_path / "notes.json"), str(tmp_path / "binary.jsonl"),
        "/dev/zero", cwd=work,
    )  # fmt: skip
    assert code == 1
    assert "skipped /dev/zero: not a regular file" in err  # read whole, it would never end
    assert f"skipped {tmp_path / 'notes.json'}: not in a trajectory format" in err
    assert f"skipped {tmp_path / 'binary.jsonl'}: not in a trajectory format" in err
    assert "known formats: " in err and "nothing written" in err
    assert list(work.iterdir()) == []  # no empty output left behind
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run("import", "--no-progress", str(empty))
    assert code == 1 and lines(err) == [f"agentsignals import: no trajectory files in {empty}"]


def test_import_output_is_owner_only_and_bad_targets_are_one_line(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "new" / "out.jsonl"
    code, _, err = run("import", "--no-progress", str(FIXTURE), "-o", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    code, _, err = run("import", "--no-progress", str(FIXTURE), "-o", str(tmp_path / "out.csv"))
    assert code == 2 and len(lines(err)) == 1 and "give a .jsonl file or a folder" in err
    blocked = tmp_path / "file"
    blocked.write_text("")
    code, _, err = run("import", "--no-progress", str(FIXTURE), "-o", str(blocked / "x.jsonl"))
    assert code == 2 and len(lines(err)) == 1 and "cannot write" in err


def test_import_endpoint_sends_headers_and_fails_in_one_line(tmp_path: Path) -> None:
    config = CollectorConfig(
        http_port=0, grpc_port=0, output_dir=tmp_path / "out", token="tok-123", grace_s=0.05,
        tick_s=0.05,
    )  # fmt: skip
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSIGNALS_COLLECTOR")}
    with Collector(config) as c:
        endpoint = f"http://127.0.0.1:{c.http_port}"
        args = ("import", "--no-progress", str(FIXTURE), "--endpoint", endpoint)
        # No credentials: refused, said in one line with the collector's reason.
        code, _, err = run(*args, env=base_env)
        assert code == 1 and len(lines(err)) == 1
        assert "answered 401" in err and "missing or wrong bearer token" in err
        # The collector's token from its environment variable ...
        code, _, err = run(*args, env={**base_env, "AGENTSIGNALS_COLLECTOR_TOKEN": "tok-123"})
        assert code == 0, err
        # ... or the OpenTelemetry exporter's headers variable (URL-encoded value).
        headers = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20tok-123"}
        code, _, err = run(*args, env={**base_env, **headers})
        assert code == 0, err
        code, _, err = run(*args, "--header", "Authorization=Bearer tok-123", env=base_env)
        assert code == 0, err
        assert c.metrics()["received_requests"] == 3
    code, _, err = run(
        "import", "--no-progress", str(FIXTURE), "--endpoint", f"http://127.0.0.1:{closed_port()}"
    )
    assert code == 1 and len(lines(err)) == 1
    assert "could not send: cannot reach" in err and "Connection refused" in err


def test_an_unanticipated_failure_is_still_one_line(tmp_path: Path) -> None:
    """A bug (here: the importer made to raise) is one line and exit 70, unless
    AGENTSIGNALS_RAISE_INTERNAL_ERRORS asks for the traceback, as this suite does."""
    probe = (
        "import sys\n"
        "import agentsignals._import.run as run\n"
        "def boom(*args, **kwargs):\n"
        "    raise LookupError('a bug\\nover two lines')\n"
        "run.run_import = boom\n"
        "from agentsignals.cli import main\n"
        f"sys.exit(main(['import', '--no-progress', {str(FIXTURE)!r}]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AGENTSIGNALS_RAISE_INTERNAL_ERRORS"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 70
    assert lines(done.stderr) == [
        "agentsignals: internal error: LookupError: a bug over two lines "
        "(AGENTSIGNALS_RAISE_INTERNAL_ERRORS=1 shows the traceback)"
    ]
    loud = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
        env={**env, "AGENTSIGNALS_RAISE_INTERNAL_ERRORS": "1"},
    )  # fmt: skip
    assert loud.returncode == 1 and "Traceback" in loud.stderr


def test_a_closed_stdout_pipe_stops_quietly(traces: Path) -> None:
    """`agentsignals features ... | head -c 10`: no error message about the pipe."""
    # 40 attempts (copies with other ids): more output than a pipe buffers, so the write
    # meets the closed pipe however the two processes are scheduled.
    line = traces.read_text().splitlines()[0]
    copies = [
        re.sub(r"\b[0-9a-f]{32}\b", lambda m, i=i: f"{i:02x}" + m.group(0)[2:], line)
        for i in range(40)
    ]
    many = traces.parent / "many.jsonl"
    many.write_text("\n".join(copies) + "\n")
    proc = subprocess.Popen(
        [*AGENTSIGNALS, "features", "--no-progress", str(many)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before anything is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(60) == 141, err
    assert "Traceback" not in err and "Broken pipe" not in err
