"""Capture agentsignals spans in memory, with deterministic ids and times, in your own tests.

    from agentsignals.testing import capture_spans

    def test_my_agent():
        with capture_spans() as captured:
            run_my_agent()
        assert [s.name for s in captured.spans_of_type("tool")] == ["execute_tool bash"]

With pytest, the `agentsignals_spans` fixture does the same. Ids count up from 1 and our spans'
clock advances 1 ms per reading, so whole span trees can be compared exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Tracer

from agentsignals import semconv
from agentsignals._config import new_pipeline
from agentsignals._instrument import runtime, scope
from agentsignals._instrument.runtime import RUNTIME, Settings

__all__ = [
    "START_TIME_NS",
    "CapturedSpans",
    "IncrementalIdGenerator",
    "attributes",
    "capture_spans",
]

START_TIME_NS = 1_700_000_000_000_000_000
"""The first timestamp the deterministic clock returns (2023-11-14T22:13:20Z)."""


class IncrementalIdGenerator(IdGenerator):
    """Trace and span ids 1, 2, 3, ...: stable across runs."""

    def __init__(self) -> None:
        self._trace_ids = itertools.count(1)
        self._span_ids = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._span_ids)

    def generate_trace_id(self) -> int:
        return next(self._trace_ids)


class CapturedSpans:
    """The finished spans of a `capture_spans()` block."""

    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self._exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans in the order they ended."""
        return list(self._exporter.get_finished_spans())

    def spans_of_type(self, span_type: str) -> list[ReadableSpan]:
        """Our spans of one type: trial, attempt, turn or tool, in the order they ended."""
        key = semconv.AGENT_SIGNALS_SPAN_TYPE
        return [s for s in self.spans if (s.attributes or {}).get(key) == span_type]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def tracer(self, instrumenting_module: str) -> Tracer:
        """A tracer on the same provider, to stand in for another instrumentor in tests."""
        return self.provider.get_tracer(instrumenting_module)

    def parent_of(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        by_id = {s.context.span_id: s for s in self.spans}
        return by_id.get(span.parent.span_id)

    def tree(self) -> str:
        """Span names indented by depth, children in start order: a compact snapshot."""
        finished = sorted(self.spans, key=lambda s: (s.start_time or 0, s.context.span_id))
        children: dict[int | None, list[ReadableSpan]] = {}
        ids = {s.context.span_id for s in finished}
        for s in finished:
            parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
            children.setdefault(parent, []).append(s)
        lines: list[str] = []

        def walk(parent: int | None, depth: int) -> None:
            for s in children.get(parent, []):
                lines.append("  " * depth + s.name)
                walk(s.context.span_id, depth + 1)

        walk(None, 0)
        return "\n".join(lines)

    def clear(self) -> None:
        self._exporter.clear()


@contextmanager
def capture_spans(
    *,
    capture_content: bool = False,
    max_value_bytes: int = 16 * 1024,
    max_span_bytes: int = 64 * 1024,
    redact: Callable[[str, str], str | None] | None = None,
    deterministic: bool = True,
) -> Iterator[CapturedSpans]:
    """Route agentsignals spans into memory for the duration of the block.

    The global configuration is restored afterwards; nothing is exported anywhere else.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "agentsignals-test"}),
        id_generator=IncrementalIdGenerator() if deterministic else None,
        shutdown_on_exit=False,
    )
    pipeline = new_pipeline()
    pipeline.processors = (SimpleSpanProcessor(exporter),)
    provider.add_span_processor(pipeline)
    saved = (RUNTIME.tracer, RUNTIME.settings, RUNTIME.clock)
    RUNTIME.tracer = provider.get_tracer("agentsignals", runtime.VERSION, semconv.SCHEMA_URL)
    RUNTIME.settings = Settings(
        capture_content=capture_content,
        max_value_bytes=max_value_bytes,
        max_span_bytes=max_span_bytes,
        redact=redact,
    )
    if deterministic:
        ticks = itertools.count(START_TIME_NS, 1_000_000)
        RUNTIME.clock = ticks.__next__
    # Spans must not join a parent process's trace from the test runner's environment.
    scope.set_env_parent(None)
    try:
        yield CapturedSpans(provider, exporter)
    finally:
        RUNTIME.tracer, RUNTIME.settings, RUNTIME.clock = saved
        provider.shutdown()


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional for users
    pass
else:

    @pytest.fixture
    def agentsignals_spans() -> Iterator[CapturedSpans]:
        """Spans of the test, captured in memory with deterministic ids and times."""
        with capture_spans() as captured:
            yield captured


def attributes(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict (tuples become lists) for easy comparison."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()}
