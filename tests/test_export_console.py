"""The console exporter is for humans and must never touch stdout (often a protocol channel)."""

from __future__ import annotations

import io
import sys

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode

from agentsignals._export.console import ConsoleSpanExporter, format_spans

_RES = Resource({"service.name": "console-test"})


def _span(
    name: str,
    span_id: int,
    parent: int | None = None,
    *,
    start: int = 0,
    duration_ns: int = 12_300_000,
    status: Status | None = None,
    **attributes: object,
) -> ReadableSpan:
    return ReadableSpan(
        name,
        context=SpanContext(7, span_id, is_remote=False),
        parent=SpanContext(7, parent, is_remote=False) if parent is not None else None,
        resource=_RES,
        attributes=attributes,  # type: ignore[arg-type]
        start_time=start,
        end_time=start + duration_ns,
        status=status or Status(StatusCode.UNSET),
    )


def test_writes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=_RES, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    tool_attributes: dict[str, str | int] = {
        "gen_ai.tool.name": "bash",
        "agent_signals.tool.category": "shell",
        "process.exit.code": 0,
    }
    with (
        tracer.start_as_current_span("turn", attributes={"agent_signals.turn.index": 2}),
        tracer.start_as_current_span("execute_tool bash", attributes=tool_attributes),
    ):
        pass
    provider.shutdown()
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[agentsignals] execute_tool bash  ")
    assert lines[0].endswith("  ok  tool.category=shell exit=0")
    assert "tool=bash" not in lines[0]  # already in the span name
    assert lines[1].startswith("[agentsignals] turn  ") and lines[1].endswith("turn=2")


def test_batch_is_shown_as_an_indented_tree() -> None:
    spans = [
        _span("execute_tool bash", 3, parent=2, start=20, duration_ns=1_500),
        _span(
            "chat",
            4,
            parent=2,
            start=10,
            duration_ns=2_500_000_000,
            **{"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 34},
        ),
        _span(
            "turn",
            2,
            parent=1,
            start=5,
            duration_ns=125_000_000_000,
            status=Status(StatusCode.ERROR, "tool failed"),
            **{"error.type": "ExitCode", "gen_ai.tool.name": "my tool"},
        ),
        _span("orphan", 9, parent=8, start=1, duration_ns=0),
    ]
    lines = format_spans(spans).splitlines()
    assert lines == [
        "[agentsignals] orphan  0 µs  ok",
        '[agentsignals] turn  2m05.0s  ERROR "tool failed"  tool="my tool" error=ExitCode',
        "[agentsignals]   chat  2.50 s  ok  in_tokens=1200 out_tokens=34",
        "[agentsignals]   execute_tool bash  2 µs  ok",
    ]


def test_stream_is_resolved_at_export_time(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = ConsoleSpanExporter()
    replacement = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replacement)
    assert exporter.export([_span("late", 1)]) is SpanExportResult.SUCCESS
    assert replacement.getvalue() == "[agentsignals] late  12.3 ms  ok\n"


def test_explicit_stream_and_broken_stream() -> None:
    buffer = io.StringIO()
    assert ConsoleSpanExporter(buffer).export([_span("x\ny", 1)]) is SpanExportResult.SUCCESS
    assert buffer.getvalue() == '[agentsignals] "x\\ny"  12.3 ms  ok\n'
    closed = io.StringIO()
    closed.close()
    assert ConsoleSpanExporter(closed).export([_span("x", 1)]) is SpanExportResult.FAILURE


def test_in_memory_spans_render_without_error(capsys: pytest.CaptureFixture[str]) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=_RES, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        for i in range(3):
            with tracer.start_as_current_span(f"child-{i}", attributes={"process.exit.code": i}):
                pass
    ConsoleSpanExporter().export(memory.get_finished_spans())
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "[agentsignals] root",
        "[agentsignals]",
        "[agentsignals]",
        "[agentsignals]",
    ]
    assert [line.split()[1] for line in lines] == ["root", "child-0", "child-1", "child-2"]
