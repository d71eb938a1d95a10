"""`agentsignals import` end to end on the real trajectories in ../shared/data: every format
detected, OTLP/JSON that `agentsignals features` reads, truncated files named and skipped while
the rest imports, parallel workers giving the same spans, and a real OTLP endpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from agentsignals import features
from agentsignals._import.run import available_formats, detect_format

CLI = [sys.executable, "-m", "agentsignals.cli", "import", "--no-progress"]
EXPECTED_FORMATS = {
    "swe-agent",
    "mini-swe-agent",
    "openhands",
    "claude-code",
    "pi",
    "codex",
    "inspect-ai",
}


def _format_folders(shared_data: Path) -> list[str]:
    """The per-format folders of ../shared/data (not the 832-trajectory corpus, which has
    its own tests and benchmark)."""
    skip = {"corpus", "judge", "swebench"}
    return sorted(str(p) for p in shared_data.iterdir() if p.is_dir() and p.name not in skip)


def _formats_in(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    for kv in span["attributes"]:
                        if kv["key"] == "agent_signals.import.format" and span["name"].startswith(
                            "trial "
                        ):
                            fmt = kv["value"]["stringValue"]
                            counts[fmt] = counts.get(fmt, 0) + 1
    return counts


def test_all_formats_are_available() -> None:
    assert set(available_formats()) == EXPECTED_FORMATS


def test_import_all_real_data_then_features(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported.jsonl"
    run = subprocess.run(
        [*CLI, *_format_folders(shared_data), "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "problems" not in run.stderr.splitlines()[-1], run.stderr
    formats = _formats_in(out)
    assert set(formats) == EXPECTED_FORMATS, formats
    result = features.extract(out)
    assert not result.problems
    by_task = {r.task_id: r for r in result.attempts if r.parent_attempt_id is None}
    # Ground truth from SOURCES.md: SWE-agent pytest-7432 took 8 steps and submitted;
    # mini-swe-agent django-16527 made 22 API calls.
    swe = by_task["pytest-dev__pytest-7432"]
    assert swe.behavior.turn_count == 8 and swe.infra.exit_reason == "submitted"
    assert by_task["django__django-16527"].behavior.turn_count == 22
    # Then the verification layer joins outcomes onto imported runs like live ones.
    from agentsignals import verify

    verified = verify.verify(
        [out],
        reports=[
            shared_data
            / "mini-swe-agent/20251118_gemini-3-pro/logs/django__django-16527/report.json"
        ],
        dataset=shared_data / "swebench/swe-bench-lite.json",
    )
    django = next(r for r in verified.attempts if r.task_id == "django__django-16527")
    assert django.verification.patch_outcome_label == "correct_patch"
    assert django.behavior.gold_files == ["django/contrib/admin/templatetags/admin_modify.py"]
    assert django.behavior.localized_correct_file is not None


def test_truncated_files_are_named_and_the_rest_imports(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = shared_data / "claude-code/tool_heavy.jsonl"
    shutil.copy(good, folder / "good.jsonl")
    traj = (
        shared_data
        / "swe-agent/20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432/pytest-dev__pytest-7432.traj"  # noqa: E501
    )
    (folder / "cut.traj").write_bytes(traj.read_bytes()[: len(traj.read_bytes()) // 2])
    lines = (shared_data / "pi/redacted-session-01.jsonl").read_text().splitlines()
    (folder / "pi-cut.jsonl").write_text(
        "\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2]
    )
    out = tmp_path / "out.jsonl"
    run = subprocess.run(
        [*CLI, str(folder), "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "cut.traj" in run.stderr  # named, with what was wrong
    assert "pi-cut.jsonl" in run.stderr
    formats = _formats_in(out)
    assert formats.get("claude-code") == 1  # the good file still imported


def test_parallel_workers_give_the_same_spans(shared_data: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    subprocess.run(
        [*CLI, "--workers", "1", *_format_folders(shared_data), "-o", str(one)],
        capture_output=True,
        check=True,
    )
    subprocess.run(
        [*CLI, "--workers", "2", *_format_folders(shared_data), "-o", str(two)],
        capture_output=True,
        check=True,
    )
    assert one.read_text() == two.read_text()


def test_relative_and_absolute_paths_give_the_same_trace(tmp_path: Path) -> None:
    """Ids derive from the resolved source path, so re-importing by another spelling of the
    same path deduplicates instead of making a second trial."""
    fixture = Path(__file__).parent / "fixtures" / "mini_swe_agent" / "toolcall.traj.json"
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(fixture, runs / fixture.name)
    rel, absolute = tmp_path / "rel.jsonl", tmp_path / "abs.jsonl"
    subprocess.run([*CLI, "runs", "-o", str(rel)], cwd=tmp_path, capture_output=True, check=True)
    subprocess.run(
        [*CLI, str(runs / ".." / "runs"), "-o", str(absolute)], capture_output=True, check=True
    )
    assert rel.read_text() and rel.read_text() == absolute.read_text()
    assert str(runs.resolve() / fixture.name) in rel.read_text()  # agent_signals.import.source


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    bad = subprocess.run([*CLI, "--format", "nope", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown format" in bad.stderr
    # Run where the default output folder would go: a failed import leaves nothing behind.
    work = tmp_path / "work"
    work.mkdir()
    missing = subprocess.run(
        [*CLI, str(tmp_path / "missing")], capture_output=True, text=True, cwd=work
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    assert detect_format(tmp_path / "notes.json") is None
    # Nothing recognised: a failure named per file, and no empty output file either.
    none = subprocess.run(
        [*CLI, str(tmp_path / "notes.json")], capture_output=True, text=True, cwd=work
    )
    assert none.returncode == 1 and "nothing written" in none.stderr
    assert f"skipped {tmp_path / 'notes.json'}: not in a trajectory format" in none.stderr
    assert list(work.iterdir()) == []


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_import_straight_to_an_otlp_endpoint(shared_data: Path) -> None:
    receiver = _Receiver()
    try:
        port = receiver.server.server_address[1]
        subprocess.run(
            [*CLI, str(shared_data / "claude-code"), "--endpoint", f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    names = [
        s.name
        for r in receiver.requests
        for rs in r.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert sum(n.startswith("trial ") for n in names) == 4  # four Claude Code sessions
    assert any(n == "execute_tool Bash" for n in names)


@pytest.mark.parametrize("name", sorted(EXPECTED_FORMATS))
def test_each_format_detects_only_its_own_files(shared_data: Path, name: str) -> None:
    folders = {
        "swe-agent": "swe-agent", "mini-swe-agent": "mini-swe-agent", "openhands": "openhands",
        "claude-code": "claude-code", "pi": "pi", "codex": "codex", "inspect-ai": "inspect-ai",
    }  # fmt: skip
    own = [p for p in (shared_data / folders[name]).rglob("*") if p.is_file()]
    detected = {p.name: detect_format(p) for p in own}
    assert name in detected.values()
    others = [
        p
        for p in shared_data.rglob("*")
        if p.is_file() and folders[name] not in p.parts and "corpus" not in p.parts
    ]
    assert all(detect_format(p) != name for p in others)


def test_run_id_and_tags_are_stamped(shared_data: Path, tmp_path: Path) -> None:
    """`import --run-id R --tag k=v`: agent_signals.run.id on trial and attempt spans (as live
    trial(run_id=...)), the tags as resource attributes of every span; a malformed tag is one
    line and exit 2, before anything is written."""
    out = tmp_path / "out.jsonl"
    source = shared_data / "pi/before-compaction.jsonl"
    subprocess.run(
        [*CLI, str(source), "-o", str(out), "--run-id", "run-7", "--tag", "experiment=A",
         "--tag", "team=x=y"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    kinds: dict[str, set[object]] = {}
    for line in out.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            resource = {
                kv["key"]: kv["value"]["stringValue"] for kv in rs["resource"]["attributes"]
            }
            assert resource["experiment"] == "A" and resource["team"] == "x=y"
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    attrs = {kv["key"]: kv["value"] for kv in span["attributes"]}
                    kind = attrs["agent_signals.span.type"]["stringValue"]
                    run = attrs.get("agent_signals.run.id", {}).get("stringValue")
                    kinds.setdefault(kind, set()).add(run)
    assert kinds["trial"] == {"run-7"} and kinds["attempt"] == {"run-7"}
    assert kinds["turn"] == {None}  # as live: on trial and attempt spans
    [record] = features.extract(out).attempts
    assert record.run_id == "run-7"
    bad = subprocess.run(
        [*CLI, str(source), "-o", str(tmp_path / "bad.jsonl"), "--tag", "novalue"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.jsonl").exists()
