"""A tool call's command and output read off the agent's thread (issue #16, finding 5): the
exported spans are exactly those the agent's thread would have made, the reading happens on
the export path when every consumer is ours, and on the agent's thread wherever anything else
could see the span first."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentsignals
from agentsignals._instrument import deferred, direct

PYTEST_OUT = (
    "tests/test_a.py::test_x PASSED\n" * 3
    + "FAILED tests/test_a.py::test_y - AssertionError\n"
    + "==== 1 failed, 3 passed in 0.42s ====\n"
)
GREP_OUT = "src/pkg/a.py:3:def handle(x):\nsrc/pkg/b.py:10:    handle(1)\n"
COMMANDS = [
    ("cat src/pkg/module.py", "x = 1\n"),
    ("sed -n '1,80p' src/pkg/module.py", "x = 1\n"),
    ("grep -rn 'def handle' src", GREP_OUT),
    ("find . -name 'test_*.py' | head -20", "./tests/test_a.py\n"),
    ("cd /testbed && python -m pytest tests/test_a.py -x -q 2>&1 | tail -20", PYTEST_OUT),
    ("python reproduce.py", "Traceback (most recent call last):\n"),
    ("sed -i 's/old/new/' src/pkg/a.py", ""),
    ("cat > /tmp/r.py <<'EOF'\nimport pkg\nprint(pkg.f(1))\nEOF\npython /tmp/r.py", "1\n"),
    ("git diff src/pkg/module.py", "diff --git a/x b/x\n"),
    ("nl -ba src/pkg/a.py | sed -n '3,+30p'", "3 x\n"),
    ('python -c "' + "x = 1; " * 20_000 + '"', ""),  # larger than the parser's bound
]


class Reader(SpanProcessor):
    """A host's processor: keeps the attributes each span has when it ends."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.seen.append(dict(span.attributes or {}))


def _agent() -> None:
    """Tool calls of every shape whose attributes come from a command or an output."""

    @agentsignals.trace_tool
    def bash(command: str) -> str:
        return dict(COMMANDS)[command]

    @agentsignals.trace_tool
    def run_tests(command: str) -> str:
        return PYTEST_OUT

    @agentsignals.trace_tool
    def grep(pattern: str, path: str) -> str:
        return GREP_OUT

    @agentsignals.trace_tool("shell")
    def shell_bytes(cmd: str) -> bytes:
        return PYTEST_OUT.encode()

    @agentsignals.trace_tool("bash")
    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 2, stdout=PYTEST_OUT, stderr="")

    with agentsignals.trial("t", trial_id="T"), agentsignals.attempt(attempt_id="A"):
        with agentsignals.turn():
            for command, _ in COMMANDS:
                bash(command)
            run_tests("python -m pytest -q")
            grep("def handle", "src")
            shell_bytes("pytest -q")
            run("pytest tests/test_a.py")
        with agentsignals.turn():
            with agentsignals.tool("bash", arguments={"command": "pytest -q"}) as t:
                t.record_result(PYTEST_OUT)
            with agentsignals.tool("shell", arguments={"cmd": "grep -n x a.py"}) as t:
                t.record_result("a.py:1:x\n")
                t.set_exit_code(1, failed=False)
            with agentsignals.tool(
                "bash", category="edit", arguments={"command": "sed -i s/a/b/ f.py"}
            ):
                pass  # fmt: skip
            # Two results: the first one's reading is kept where the second gives nothing.
            with agentsignals.tool("bash", arguments={"command": "pytest -q"}) as t:
                t.record_result(PYTEST_OUT)
                t.record_result("no tests ran")
            # Calls that read or replace what the parse gives.
            with agentsignals.tool("bash", arguments={"command": "cat a.py"}) as t:
                t.set_category("other")
            with agentsignals.tool("bash", arguments={"command": "cat a.py"}) as t:
                t.set_files(["b.py"])
            with agentsignals.tool("bash", arguments={"command": "make check"}) as t:
                t.record_result(PYTEST_OUT)
                t.record_test_report(
                    '<testsuite tests="1"><testcase classname="t" name="ok"/></testsuite>'
                )
            with agentsignals.tool("bash", arguments={"command": "ls"}) as t:
                t.set_attribute("agent_signals.tool.category", "other")


def _tools(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if s.get("agent_signals.span.type") == "tool"]


def _run(tmp_path: Path, *, host_reader: Reader | None = None) -> list[dict[str, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    if host_reader is not None:
        provider.add_span_processor(host_reader)
    agentsignals.configure(
        tracer_provider=provider, exporters=[exporter], output_dir=tmp_path, batch=True
    )
    _agent()
    agentsignals.force_flush()
    spans = [dict(s.attributes or {}) for s in exporter.get_finished_spans()]
    agentsignals.shutdown()
    return spans


@pytest.fixture
def fresh(fresh_otel: None) -> Iterator[None]:
    direct.forget()
    deferred.forget()
    yield
    direct.forget()
    deferred.forget()


@pytest.fixture
def reading_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads on which a pending command or output was read."""
    names: list[str] = []
    original = deferred.Pending.attributes

    def attributes(self: deferred.Pending) -> dict[str, Any]:
        names.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(deferred.Pending, "attributes", attributes)
    return names


@pytest.mark.usefixtures("fresh")
def test_export_path_gives_exactly_the_agent_threads_attributes(
    tmp_path: Path, reading_threads: list[str]
) -> None:
    later = _run(tmp_path / "a")
    off_thread = [n for n in reading_threads if n != threading.main_thread().name]
    assert len(off_thread) >= 16  # read on the export thread: the shell calls, tests, greps
    reading_threads.clear()

    host = Reader()
    now = _run(tmp_path / "b", host_reader=host)  # a host's processor: read on our thread
    assert set(reading_threads) <= {threading.main_thread().name}
    assert _tools(later) == _tools(now) == _tools(host.seen)
    assert later == now

    tools = _tools(later)
    by_command = {
        command: tools[i]["agent_signals.tool.category"] for i, (command, _) in enumerate(COMMANDS)
    }
    assert by_command["cat src/pkg/module.py"] == "read"
    assert by_command["sed -n '1,80p' src/pkg/module.py"] == "read"
    assert by_command["grep -rn 'def handle' src"] == "search"
    assert tools[0]["agent_signals.tool.files"] == ("src/pkg/module.py",)
    assert tools[2]["agent_signals.tool.result_files"] == ("src/pkg/a.py", "src/pkg/b.py")
    pytest_call = tools[4]
    assert pytest_call["agent_signals.tool.category"] == "test"
    assert pytest_call["agent_signals.test.runner"] == "pytest"
    assert pytest_call["agent_signals.test.passed_count"] == 3
    assert pytest_call["agent_signals.test.failed"] == ("tests/test_a.py::test_y",)
    assert tools[10]["agent_signals.tool.command_complete"] is False
    run_tests, grep, as_bytes, completed = tools[11:15]
    assert run_tests["agent_signals.test.failed_count"] == 1
    assert grep["agent_signals.tool.result_files"] == ("src/pkg/a.py", "src/pkg/b.py")
    assert as_bytes["agent_signals.test.passed_count"] == 3
    assert completed["process.exit.code"] == 2 and completed["agent_signals.test.failed_count"] == 1
    cm_test, cm_grep, given, twice, recat, refile, report, user = tools[15:]
    assert cm_test["agent_signals.test.passed_count"] == 3
    assert cm_grep["agent_signals.tool.result_files"] == ("a.py",)
    assert given["agent_signals.tool.category"] == "edit"
    assert twice["agent_signals.test.passed_count"] == 3
    assert recat["agent_signals.tool.category"] == "other"
    assert refile["agent_signals.tool.files"] == ("b.py",)
    assert report["agent_signals.test.passed"] == ("t::ok",)
    assert user["agent_signals.tool.category"] == "other"


@pytest.mark.usefixtures("fresh")
def test_a_processor_the_host_adds_later_sees_complete_spans(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    agentsignals.configure(tracer_provider=provider, exporters=[exporter], output_dir=tmp_path)

    @agentsignals.trace_tool
    def bash(command: str) -> str:
        return PYTEST_OUT

    with agentsignals.attempt(), agentsignals.turn():
        bash("python -m pytest -q")
        host = Reader()
        provider.add_span_processor(host)  # mid-run, between two calls
        bash("python -m pytest -q")
        with agentsignals.tool("bash", arguments={"command": "pytest"}) as t:
            provider.add_span_processor(Reader())  # while a call is in flight
            t.record_result(PYTEST_OUT)
    agentsignals.force_flush()
    assert [a["agent_signals.test.passed_count"] for a in _tools(host.seen)] == [3, 3]
    exported = _tools([dict(s.attributes or {}) for s in exporter.get_finished_spans()])
    assert [a["agent_signals.test.passed_count"] for a in exported] == [3, 3, 3]
    agentsignals.shutdown()


@pytest.mark.usefixtures("fresh")
def test_testing_capture_and_configure_on_one_provider(tmp_path: Path) -> None:
    from agentsignals.testing import capture_spans

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    agentsignals.configure(tracer_provider=provider, exporters=[exporter], output_dir=tmp_path)
    with capture_spans() as captured:

        @agentsignals.trace_tool
        def bash(command: str) -> str:
            return GREP_OUT

        with agentsignals.attempt(), agentsignals.turn():
            bash("grep -rn handle src")
        tool = captured.spans_of_type("tool")[0]
        assert (tool.attributes or {})["agent_signals.tool.result_files"] == (
            "src/pkg/a.py",
            "src/pkg/b.py",
        )


@pytest.mark.usefixtures("fresh")
def test_category_reads_the_command_when_asked(tmp_path: Path) -> None:
    agentsignals.configure(
        tracer_provider=TracerProvider(), exporters=["none"], output_dir=tmp_path
    )
    with agentsignals.attempt(), agentsignals.turn():
        with agentsignals.tool("bash", arguments={"command": "python -m pytest -q"}) as t:
            assert t.category == "test"
        assert t.category == "test"
    agentsignals.shutdown()


@pytest.mark.usefixtures("fresh")
def test_in_process_features_read_the_same_records(tmp_path: Path) -> None:
    """With features on, the feature worker and the exporter both complete the spans; the
    records equal those of a run read on the agent's thread."""
    import json

    def records(out: Path, host: bool) -> list[dict[str, Any]]:
        provider = TracerProvider()
        if host:
            provider.add_span_processor(Reader())
        agentsignals.configure(
            tracer_provider=provider,
            exporters=[InMemorySpanExporter()],
            output_dir=out,
            features=True,
        )
        _agent()
        agentsignals.shutdown()
        found = sorted((out / "features").glob("*.jsonl"))
        rows = [json.loads(line) for f in found for line in f.read_text().splitlines()]
        return [_without_clock(row) for row in rows]

    later = records(tmp_path / "a", host=False)
    now = records(tmp_path / "b", host=True)
    assert later and later == now
    attempt = next(r for r in later if r.get("attempt_id") == "A")
    assert attempt["behavior"]["test_runs"] == 7
    assert attempt["behavior"]["tool_category_sequence"][:5] == [
        "read", "read", "search", "search", "test"
    ]  # fmt: skip


def _without_clock(value: Any) -> Any:
    """A record without what differs between two runs: ids, times and durations."""
    if isinstance(value, dict):
        return {
            k: _without_clock(v)
            for k, v in value.items()
            if k not in ("trace_id", "span_id")
            and not any(w in k for w in ("_ns", "time", "wall", "duration", "latency", "_ms"))
            and not k.endswith("_s")
        }
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def test_the_agent_thread_does_not_parse_in_a_fresh_process(tmp_path: Path) -> None:
    """In a plain process (no test hooks), configure() on a new provider and a shell call: the
    command's reading happens on the export thread."""
    script = f"""
import threading
import agentsignals
from agentsignals._instrument import deferred
seen = []
original = deferred.Pending.attributes
def spy(self):
    seen.append(threading.current_thread() is threading.main_thread())
    return original(self)
deferred.Pending.attributes = spy
agentsignals.configure(output_dir={str(tmp_path)!r})
@agentsignals.trace_tool
def bash(command):
    return "ok"
with agentsignals.attempt(), agentsignals.turn():
    bash("cat setup.py")
agentsignals.shutdown()
print(seen)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[False]"
    spans = "".join(p.read_text() for p in (tmp_path / "traces").glob("*.jsonl"))
    assert '"agent_signals.tool.files"' in spans and "setup.py" in spans


@pytest.mark.usefixtures("fresh")
def test_the_hand_off_table_stays_bounded(tmp_path: Path) -> None:
    """Entries whose span never reached our pipeline are dropped oldest first; a call handed
    off after them still ends complete."""
    exporter = InMemorySpanExporter()
    agentsignals.configure(
        tracer_provider=TracerProvider(), exporters=[exporter], output_dir=tmp_path
    )
    stray = deferred.Pending("bash", {"command": "ls"}, None, None)
    try:
        for i in range(5000):
            deferred.hand_off(10**12 + i, stray)
        assert len(deferred.HANDOFF) == 4096

        @agentsignals.trace_tool
        def bash(command: str) -> str:
            return GREP_OUT

        with agentsignals.attempt(), agentsignals.turn():
            bash("grep -rn handle src")
        agentsignals.force_flush()
        (tool,) = _tools([dict(s.attributes or {}) for s in exporter.get_finished_spans()])
        assert tool["agent_signals.tool.result_files"] == ("src/pkg/a.py", "src/pkg/b.py")
        # One more stray dropped to make room (the oldest), ours taken by the pipeline.
        assert len(deferred.HANDOFF) == 4095 and 10**12 + 904 not in deferred.HANDOFF
        assert 10**12 + 905 in deferred.HANDOFF and 10**12 + 4999 in deferred.HANDOFF
    finally:
        deferred.HANDOFF.clear()
        agentsignals.shutdown()
