"""`agentsignals export docent`: AgentRun JSON from a live run, checked with Docent's own
data models (its SDK, installed without dependencies in the models venv), and the upload
against a Docent-shaped REST server on loopback (Docent's server cannot run here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agentsignals._judge.docent import batches, upload_agent_runs
from agentsignals._judge.run import read_spans
from judge_support import (
    LoopbackServer,
    Reply,
    agent_in_subprocess,
    docent_python,
    read_jsonl,
    run_cli,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    root = tmp_path_factory.mktemp("docent")
    traces = agent_in_subprocess(root / "out", root / "work")
    out = root / "runs.jsonl"
    done = run_cli("export", "docent", str(traces), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return read_jsonl(out), traces


def test_a_trial_becomes_an_agent_run_with_span_ids_in_message_metadata(
    runs: tuple[list[dict[str, Any]], Path],
) -> None:
    (run,), traces = runs
    spans, _ = read_spans(traces)
    by_id = {s.span_id: s for s in spans}
    assert run["name"] == "textkit__textkit-1"
    assert run["metadata"]["agentsignals"]["trial_id"]  # the de-duplication key
    (transcript,) = run["transcripts"]
    assert transcript["name"] == "attempt 0" and transcript["created_at"].endswith("+00:00")
    assert transcript["metadata"]["features"]["behavior.turn_count"] == 5
    messages = transcript["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["user"] + ["assistant", "tool"] * 5
    assert messages[0]["content"].startswith("mean() of word lengths is too small")
    first = messages[1]
    assert first["content"][0] == {
        "type": "reasoning",
        "reasoning": "The issue mentions mean(); find where it is defined.",
        "redacted": False,
    }
    (call,) = first["tool_calls"]
    assert call["function"] == "bash"
    assert call["arguments"] == {"command": "grep -rn 'def mean' textkit"}
    tool = messages[2]
    assert tool["tool_call_id"] == call["id"] and "def mean(values)" in tool["content"]
    for message in messages[1:]:
        span = by_id[message["metadata"]["agentsignals_span_id"]]
        assert span.attributes["agent_signals.span.type"] == {
            "assistant": "turn", "tool": "tool",
        }[message["role"]]  # fmt: skip
    failing = next(m for m in messages if m["role"] == "tool" and m.get("error"))
    assert failing["function"] == "run_tests" and "FAILED (failures=1)" in failing["content"]


def test_docents_own_models_accept_the_export(
    runs: tuple[list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    python = docent_python()
    if python is None:
        pytest.skip("Docent's SDK is not in the models venv (.ci/run installs it, --no-deps)")
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs[0]))
    code = (
        "import json, sys\n"
        "from docent.data_models import AgentRun\n"
        "from docent.data_models.agent_run import AgentRunView\n"
        "for data in json.load(open(sys.argv[1])):\n"
        "    run = AgentRun.model_validate(data)\n"
        "    print(len(run.transcripts), sum(len(t.messages) for t in run.transcripts),\n"
        "          run.transcripts[0].messages[1].tool_calls[0].function)\n"
        "    text = AgentRunView.from_agent_run(run).to_text()\n"
        "    print('T0B1' in text, 'agentsignals_span_id' in text)\n"
    )
    done = subprocess.run(
        [str(python), "-c", code, str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Docent renders it for its judges, and keeps our span ids out of what they read.
    assert done.stdout.split() == ["1", "11", "bash", "True", "False"]


class _Docent:
    """Docent's REST endpoints as its SDK calls them (0.1.88), kept in memory."""

    def __init__(self, existing: list[str]) -> None:
        self.existing = existing
        self.uploads: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> Reply:
        assert request["headers"]["Authorization"] == "Bearer secret-key"
        path = request["path"]
        if path == "/rest/dql/coll/execute":
            assert "metadata_json->'agentsignals'->>'trial_id'" in request["body"]["dql"]
            return Reply(200, {"columns": ["trial_id"], "rows": [[t] for t in self.existing]})
        if path == "/rest/coll/agent_runs":
            assert request["headers"]["Content-Encoding"] == "gzip"
            self.uploads.append(request)
            return Reply(202, {"job_id": f"job-{len(self.uploads)}"})
        if path == "/rest/coll/agent_runs/jobs/batch_status":
            jobs = request["body"]["job_ids"]
            return Reply(200, {"jobs": [{"job_id": j, "status": "completed"} for j in jobs]})
        return Reply(404, {"detail": f"no route {path}"})


def _fake_runs(n: int, size: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"task-{i}",
            "transcripts": [{"messages": [{"role": "user", "content": "x" * size}]}],
            "metadata": {"agentsignals": {"trial_id": f"trial-{i}"}},
        }
        for i in range(n)
    ]


def test_upload_skips_what_the_collection_has_and_batches_under_the_limit() -> None:
    server = _Docent(existing=["trial-0"])
    runs = _fake_runs(5, 400)
    one = len(json.dumps(runs[0], separators=(",", ":")))
    limit = 2 * one + 40  # two runs per request at most
    with LoopbackServer(default=server) as http:
        report = upload_agent_runs(
            runs,
            collection_id="coll",
            api_key="secret-key",
            api_url=f"{http.url}/rest",
            limit=limit,
            sleep=lambda s: None,
        )
    assert report.skipped_existing == 1 and report.uploaded == 4
    assert report.job_ids == ["job-1", "job-2"] and report.problems == []
    sent = [r["body"]["agent_runs"] for r in server.uploads]
    assert [[run["name"] for run in batch] for batch in sent] == [
        ["task-1", "task-2"], ["task-3", "task-4"],
    ]  # fmt: skip
    assert all(r["size"] <= limit for r in server.uploads)


def test_a_run_over_the_limit_is_reported_and_the_others_go() -> None:
    server = _Docent(existing=[])
    runs = _fake_runs(3, 100)
    runs[1]["transcripts"][0]["messages"][0]["content"] = "y" * 5000
    with LoopbackServer(default=server) as http:
        report = upload_agent_runs(
            runs, collection_id="coll", api_key="secret-key", api_url=f"{http.url}/rest",
            limit=2000, sleep=lambda s: None,
        )  # fmt: skip
    assert report.too_large == ["trial-1"] and report.uploaded == 2
    with pytest.raises(ValueError, match="trial-1"):
        list(batches(runs, 2000))


def test_the_cli_needs_the_key_in_the_environment_not_on_the_command_line(
    runs: tuple[list[dict[str, Any]], Path],
) -> None:
    _, traces = runs
    done = run_cli(
        "export", "docent", str(traces), "--upload", "--collection-id", "c",
        env={"DOCENT_API_KEY": ""},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("--upload needs the API key in DOCENT_API_KEY")
    assert "Traceback" not in done.stderr
