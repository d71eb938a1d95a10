"""FileSpanExporter must keep every completely written line, whatever happens to the process.

These tests use real files, real subprocesses and real signals: the failure modes being guarded
against (SIGKILL mid-run, SIGTERM with spans still queued, fork, a torn tail) only show up
against the real kernel.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from agentsignals._export import file as file_module
from agentsignals._export.file import FileSpanExporter, iter_export_requests

_RESOURCE = Resource({"service.name": "file-test"})
_SCOPE = InstrumentationScope("agentsignals.test", "0")
_NAME_RE = re.compile(r"traces-\d{8}T\d{6}\.\d{3}Z-(\d+)-(\d{4})\.jsonl")
_REPO = Path(__file__).resolve().parents[1]


def _span(name: str, span_id: int = 1, **attributes: Any) -> ReadableSpan:
    return ReadableSpan(
        name,
        context=SpanContext(0xABC, span_id, is_remote=False),
        resource=_RESOURCE,
        instrumentation_scope=_SCOPE,
        attributes=attributes,
        start_time=1_000,
        end_time=2_000,
    )


def _span_names(path: Path) -> list[str]:
    return [
        span["name"]
        for request in iter_export_requests(path)
        for rs in request["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]


def _jsonl_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def _assert_all_lines_complete(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} has a torn tail"
    return [json.loads(line) for line in data.splitlines()]


def _run(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


# -- basic behaviour -----------------------------------------------------------------------------


def test_spans_from_tracer_provider_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "does" / "not" / "exist"
    exporter = FileSpanExporter(out)
    provider = TracerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("agentsignals.test")
    tool_attributes: dict[str, str | int | bool] = {
        "gen_ai.tool.name": "bash",
        "process.exit.code": 0,
        "ok": True,
    }
    with (
        tracer.start_as_current_span("turn", attributes={"agent_signals.turn.index": 3}),
        tracer.start_as_current_span("execute_tool bash", attributes=tool_attributes),
    ):
        pass
    provider.shutdown()

    files = _jsonl_files(out)
    assert len(files) == 1
    match = _NAME_RE.fullmatch(files[0].name)
    assert match and int(match.group(1)) == os.getpid() and match.group(2) == "0001"
    assert stat.S_IMODE(files[0].stat().st_mode) & 0o077 == 0
    assert len(_assert_all_lines_complete(files[0])) == 2  # SimpleSpanProcessor: one per span

    spans = [
        span
        for request in iter_export_requests(out)
        for rs in request["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert [s["name"] for s in spans] == ["execute_tool bash", "turn"]
    tool, turn = spans
    attrs = {kv["key"]: kv["value"] for kv in tool["attributes"]}
    assert attrs == {
        "gen_ai.tool.name": {"stringValue": "bash"},
        "process.exit.code": {"intValue": "0"},
        "ok": {"boolValue": True},
    }
    assert tool["parentSpanId"] == turn["spanId"]
    # iter_export_requests accepts a single file as well as a directory.
    assert _span_names(files[0]) == ["execute_tool bash", "turn"]


def test_export_writes_nothing_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = FileSpanExporter(tmp_path)
    assert exporter.export([_span("a")]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_shutdown_and_flush_semantics(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exporter = FileSpanExporter(tmp_path, fsync=True)
    assert exporter.export([]) is SpanExportResult.SUCCESS
    assert exporter.current_path is None  # nothing opened for an empty batch
    assert exporter.export([_span("a")]) is SpanExportResult.SUCCESS
    assert exporter.force_flush() is True
    exporter.shutdown()
    exporter.shutdown()
    with caplog.at_level(logging.DEBUG, logger="agentsignals"):
        assert exporter.export([_span("late")]) is SpanExportResult.FAILURE
    assert _span_names(tmp_path) == ["a"]
    assert exporter.force_flush() is True


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileSpanExporter(tmp_path, max_bytes=0)
    with pytest.raises(ValueError):
        FileSpanExporter(tmp_path, prefix="a/b")


def test_two_exporters_in_one_process_never_share_a_file(tmp_path: Path) -> None:
    first, second = FileSpanExporter(tmp_path), FileSpanExporter(tmp_path)
    for i in range(3):
        assert first.export([_span(f"first-{i}")]) is SpanExportResult.SUCCESS
        assert second.export([_span(f"second-{i}")]) is SpanExportResult.SUCCESS
    assert first.current_path != second.current_path
    assert first.current_path is not None and second.current_path is not None
    assert _span_names(first.current_path) == ["first-0", "first-1", "first-2"]
    assert _span_names(second.current_path) == ["second-0", "second-1", "second-2"]


# -- rotation ------------------------------------------------------------------------------------


def test_rotation_keeps_every_line(tmp_path: Path) -> None:
    exporter = FileSpanExporter(tmp_path, max_bytes=2_000)
    names = [f"span-{i:02d}" for i in range(30)]
    for i, name in enumerate(names):
        assert exporter.export([_span(name, span_id=i + 1, payload="x" * 200)]) is (
            SpanExportResult.SUCCESS
        )
    huge = _span("huge", span_id=99, payload="y" * 10_000)
    assert exporter.export([huge]) is SpanExportResult.SUCCESS
    assert exporter.export([_span("after-huge", span_id=100)]) is SpanExportResult.SUCCESS
    exporter.shutdown()

    files = _jsonl_files(tmp_path)
    assert len(files) > 3
    seqs = [int(m.group(2)) for f in files if (m := _NAME_RE.fullmatch(f.name))]
    assert seqs == list(range(1, len(files) + 1))
    for f in files:
        lines = _assert_all_lines_complete(f)
        size = f.stat().st_size
        assert size <= 2_000 or len(lines) == 1, f"{f.name} exceeds max_bytes with {len(lines)}"
    assert _span_names(tmp_path) == [*names, "huge", "after-huge"]
    huge_files = [f for f in files if b'"huge"' in f.read_bytes()]
    assert len(huge_files) == 1 and len(_assert_all_lines_complete(huge_files[0])) == 1


# -- crash safety --------------------------------------------------------------------------------


def test_sigkill_between_batches_keeps_all_lines(tmp_path: Path) -> None:
    n = 40
    result = _run(
        f"""
        import os, signal
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from agentsignals._export.file import FileSpanExporter

        provider = TracerProvider(resource=Resource({{"service.name": "killed"}}))
        provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter({str(tmp_path)!r})))
        tracer = provider.get_tracer("t")
        for i in range({n}):
            with tracer.start_as_current_span(f"batch-{{i}}", attributes={{"i": i}}):
                pass
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    files = _jsonl_files(tmp_path)
    assert len(files) == 1
    assert len(_assert_all_lines_complete(files[0])) == n
    assert _span_names(tmp_path) == [f"batch-{i}" for i in range(n)]


def test_sigkill_during_writes_only_ever_loses_the_tail(tmp_path: Path) -> None:
    # A writer thread hammers large batches while the main thread SIGKILLs the process at an
    # arbitrary moment. Whatever the timing, every line but a possibly torn final one is valid.
    result = _run(
        f"""
        import os, signal, threading, time
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext
        from agentsignals._export.file import FileSpanExporter

        exporter = FileSpanExporter({str(tmp_path)!r}, max_bytes=4 * 1024 * 1024)
        res = Resource({{"service.name": "killed"}})
        batch = [
            ReadableSpan(f"s{{i}}", context=SpanContext(1, i + 1, False), resource=res,
                         attributes={{"blob": "z" * 2000, "i": i}}, start_time=1, end_time=2)
            for i in range(100)
        ]
        def hammer():
            while True:
                exporter.export(batch)
        threading.Thread(target=hammer, daemon=True).start()
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    complete = 0
    for f in _jsonl_files(tmp_path):
        data = f.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        for line in lines:
            assert len(json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 100
            complete += 1
        if tail:
            with pytest.raises(json.JSONDecodeError):
                json.loads(tail)
    assert complete > 0
    assert sum(1 for _ in iter_export_requests(tmp_path)) == complete


def test_torn_file_is_never_appended_to_and_reader_skips_its_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Simulates a previous process (same pid even, as in a container) killed mid-line.
    good = FileSpanExporter(tmp_path / "src")
    good.export([_span("old-1")])
    good.export([_span("old-2")])
    good.shutdown()
    assert good.current_path is not None
    good_lines = good.current_path.read_bytes()
    torn_path = tmp_path / good.current_path.name
    torn_bytes = good_lines + good_lines.splitlines(keepends=True)[0][:57]
    torn_path.write_bytes(torn_bytes)
    shutil.rmtree(tmp_path / "src")

    exporter = FileSpanExporter(tmp_path)
    assert exporter.export([_span("new")]) is SpanExportResult.SUCCESS
    exporter.shutdown()

    assert torn_path.read_bytes() == torn_bytes
    assert exporter.current_path is not None and exporter.current_path != torn_path
    assert _span_names(exporter.current_path) == ["new"]

    with caplog.at_level(logging.WARNING, logger="agentsignals"):
        names = _span_names(tmp_path)
    assert sorted(names) == ["new", "old-1", "old-2"]
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    assert torn_path.name in warnings_[0].getMessage()
    assert ":3" in warnings_[0].getMessage()


def test_name_collision_with_earlier_run_takes_next_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same pid and same millisecond as an earlier (killed) run - routine for pid 1 in
    # containers. Pin the clock-derived stamp so the collision is certain.
    monkeypatch.setattr(file_module, "_utc_stamp", lambda: "20250101T000000.000Z")
    pid = os.getpid()
    taken = [tmp_path / f"traces-20250101T000000.000Z-{pid}-{seq:04d}.jsonl" for seq in (1, 2)]
    taken[0].write_bytes(b'{"resourceSpans":[]}\n{"resourceSp')  # torn tail
    taken[1].write_bytes(b'{"resourceSpans":[]}\n')  # clean, still not ours
    before = [p.read_bytes() for p in taken]

    exporter = FileSpanExporter(tmp_path)
    assert exporter.export([_span("new")]) is SpanExportResult.SUCCESS
    exporter.shutdown()

    assert [p.read_bytes() for p in taken] == before
    assert exporter.current_path == tmp_path / f"traces-20250101T000000.000Z-{pid}-0003.jsonl"
    assert _span_names(exporter.current_path) == ["new"]


def test_reader_skips_malformed_middle_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"resourceSpans": []}\nnot json\n[1, 2]\n\n{"resourceSpans": [{}]}\n')
    with caplog.at_level(logging.WARNING, logger="agentsignals"):
        requests = list(iter_export_requests(path))
    assert requests == [{"resourceSpans": []}, {"resourceSpans": [{}]}]
    assert len(caplog.records) == 2


# -- fork ----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_writes_its_own_file(tmp_path: Path) -> None:
    exporter = FileSpanExporter(tmp_path)
    assert exporter.export([_span("parent-before")]) is SpanExportResult.SUCCESS
    parent_path = exporter.current_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # multi-threaded fork (3.12+)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = exporter.export([_span("child", span_id=2)]) is SpanExportResult.SUCCESS
            code = 0 if ok and exporter.current_path != parent_path else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    assert exporter.export([_span("parent-after", span_id=3)]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert exporter.current_path == parent_path

    files = _jsonl_files(tmp_path)
    assert len(files) == 2
    by_pid = {}
    for f in files:
        match = _NAME_RE.fullmatch(f.name)
        assert match
        by_pid[int(match.group(1))] = f
        _assert_all_lines_complete(f)
    assert set(by_pid) == {os.getpid(), pid}
    assert _span_names(by_pid[os.getpid()]) == ["parent-before", "parent-after"]
    assert _span_names(by_pid[pid]) == ["child"]


# -- I/O errors ----------------------------------------------------------------------------------


def test_unusable_directory_fails_quietly_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory should be")
    exporter = FileSpanExporter(blocker / "traces")
    with caplog.at_level(logging.WARNING, logger="agentsignals"):
        assert exporter.export([_span("a")]) is SpanExportResult.FAILURE
        assert exporter.export([_span("b")]) is SpanExportResult.FAILURE
    records = [r for r in caplog.records if r.name == "agentsignals"]
    assert len(records) == 1
    assert "blocker" in records[0].getMessage()
    exporter.shutdown()


def test_directory_removed_while_running_is_recreated(tmp_path: Path) -> None:
    out = tmp_path / "traces"
    exporter = FileSpanExporter(out)
    assert exporter.export([_span("before")]) is SpanExportResult.SUCCESS
    shutil.rmtree(out)
    assert exporter.export([_span("after")]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert _span_names(out) == ["after"]


# -- exit flush ----------------------------------------------------------------------------------

_BATCH_SETUP = """
import logging, os, signal, sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from agentsignals._export import lifecycle
from agentsignals._export.file import FileSpanExporter, install_exit_flush

logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
# shutdown_on_exit=False: prove that our hook, not the SDK's atexit, writes the spans.
provider = TracerProvider(resource=Resource({{"service.name": "t"}}), shutdown_on_exit=False)
provider.add_span_processor(
    BatchSpanProcessor(FileSpanExporter({out!r}), schedule_delay_millis=600_000)
)
tracer = provider.get_tracer("t")
"""


def _start(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=_REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"child did not start: {line!r} {err}")
    return proc


def test_sigterm_flushes_queued_spans_and_still_dies_by_sigterm(tmp_path: Path) -> None:
    proc = _start(
        _BATCH_SETUP.format(out=str(tmp_path))
        + """
install_exit_flush(provider.force_flush)
install_exit_flush(provider.force_flush)  # idempotent
assert len(lifecycle._flushes) == 1
with tracer.start_as_current_span("queued-span"):
    pass
print("ready", flush=True)
time.sleep(60)
"""
    )
    assert _jsonl_files(tmp_path) == []  # still queued in the BatchSpanProcessor
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err
    assert _span_names(tmp_path) == ["queued-span"]


def test_sigterm_chains_to_previous_python_handler(tmp_path: Path) -> None:
    proc = _start(
        _BATCH_SETUP.format(out=str(tmp_path))
        + """
def previous(signum, frame):
    print("previous handler ran", flush=True)
    os._exit(3)
signal.signal(signal.SIGTERM, previous)
install_exit_flush(provider.force_flush)
with tracer.start_as_current_span("queued-span"):
    pass
print("ready", flush=True)
time.sleep(60)
"""
    )
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "previous handler ran" in out
    assert _span_names(tmp_path) == ["queued-span"]


def test_failing_flush_is_logged_not_raised(tmp_path: Path) -> None:
    proc = _start(
        _BATCH_SETUP.format(out=str(tmp_path))
        + """
def broken():
    raise RuntimeError("flush exploded")
install_exit_flush(broken)
install_exit_flush(provider.force_flush)
with tracer.start_as_current_span("queued-span"):
    pass
print("ready", flush=True)
time.sleep(60)
"""
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err
    assert "flush exploded" in err
    assert _span_names(tmp_path) == ["queued-span"]


def test_normal_exit_flushes_via_atexit(tmp_path: Path) -> None:
    result = _run(
        _BATCH_SETUP.format(out=str(tmp_path))
        + """
install_exit_flush(provider.force_flush)
with tracer.start_as_current_span("at-exit-span"):
    pass
"""
    )
    assert result.returncode == 0, result.stderr
    assert _span_names(tmp_path) == ["at-exit-span"]


def test_install_from_worker_thread_skips_signal_handler(tmp_path: Path) -> None:
    result = _run(
        _BATCH_SETUP.format(out=str(tmp_path))
        + """
import threading
t = threading.Thread(target=install_exit_flush, args=(provider.force_flush,))
t.start(); t.join()
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
install_exit_flush(provider.force_flush)
assert signal.getsignal(signal.SIGTERM) is lifecycle._on_sigterm
assert len(lifecycle._flushes) == 1
"""
    )
    assert result.returncode == 0, result.stderr
