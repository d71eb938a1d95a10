"""The export guard's worker thread and its scrubbing fast path (agentsignals._export.guard).

Bounded exports run on one long-lived worker per exporter: many exports, one thread; a stuck
export times out, later batches are dropped (and counted) until it returns, then exports go on;
a forked child gets its own worker. Short strings found clean are remembered, never strings that
held a secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentsignals._export import guard


class Gate(SpanExporter):
    """Counts exported spans; `export` waits while the gate is closed."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        self.spans = 0
        self.threads: set[tuple[str, int]] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.threads.add((threading.current_thread().name, threading.get_ident()))
        self.entered.set()
        self.open.wait()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _spans(n: int) -> list[ReadableSpan]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span(f"span {i}"):
            pass
    return list(memory.get_finished_spans())


def test_bounded_exports_share_one_worker_thread() -> None:
    inner = Gate()
    exporter = guard.GuardedExporter(inner, timeout_s=30)
    spans = _spans(3)
    results = [exporter.export(spans[i % 3 : i % 3 + 1]) for i in range(300)]
    assert results == [SpanExportResult.SUCCESS] * 300
    assert inner.spans == 300
    # One thread ran all 300, and it is not the caller's.
    [(name, ident)] = inner.threads
    assert name == "agentsignals-export" and ident != threading.get_ident()
    exporter.shutdown()


def test_a_stuck_export_times_out_then_batches_drop_until_it_returns() -> None:
    inner = Gate()
    exporter = guard.GuardedExporter(inner, timeout_s=0.2)
    spans = _spans(2)
    dropped = guard.stats.spans_dropped_while_stuck
    timed_out = guard.stats.exports_timed_out
    inner.open.clear()
    assert exporter.export(spans[:1]) == SpanExportResult.FAILURE  # past its deadline
    assert inner.entered.is_set()
    assert guard.stats.exports_timed_out == timed_out + 1
    # While the first export is stuck, later batches are dropped at once and counted.
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert guard.stats.spans_dropped_while_stuck == dropped + 2
    assert inner.spans == 0
    worker = exporter._worker
    inner.open.set()  # the stuck export returns ...
    stuck = exporter._running
    assert stuck is not None
    for _ in range(6000):  # the worker marks it finished when its export has returned
        if stuck.finished():
            break
        threading.Event().wait(0.01)
    assert inner.spans == 1
    # ... and the next batch goes through, on the same worker.
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert inner.spans == 3
    assert exporter._worker is worker and len(inner.threads) == 1
    exporter.shutdown()


def test_an_export_after_shutdown_still_completes() -> None:
    inner = Gate()
    exporter = guard.GuardedExporter(inner, timeout_s=30)
    spans = _spans(1)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert inner.spans == 2
    exporter.shutdown()


def test_a_forked_child_exports_through_its_own_worker(tmp_path: Any) -> None:
    code = textwrap.dedent(
        """
        import os, sys, threading
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from agentsignals._export.guard import GuardedExporter

        class Count(SpanExporter):
            n = 0
            def export(self, spans):
                self.n += len(spans)
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
        spans = memory.get_finished_spans()
        inner = Count()
        exporter = GuardedExporter(inner, timeout_s=10)
        assert exporter.export(spans) == SpanExportResult.SUCCESS  # the parent's worker runs
        pid = os.fork()
        if pid == 0:
            ok = exporter.export(spans) == SpanExportResult.SUCCESS and inner.n == 2
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), inner.n)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["0", "1"]  # the child exported; the parent's count is its own


def test_only_clean_short_strings_are_remembered() -> None:
    guard._clean.clear()
    clean = "execute_tool read_file"
    secret = "token ghp_" + "a" * 36
    assert guard._scrub_text(clean) == (clean, 0)
    assert clean in guard._clean
    for _ in range(2):  # the second time too: a secret is never remembered as clean
        text, found = guard._scrub_text(secret)
        assert found == 1 and "ghp_" not in text
    assert secret not in guard._clean
    long_clean = "x" * (guard._CLEAN_MAX_CHARS + 1)
    assert guard._scrub_text(long_clean) == (long_clean, 0)
    assert long_clean not in guard._clean
    # Bounded: full means cleared, never grown.
    for i in range(guard._CLEAN_MAX_ENTRIES + 10):
        guard._scrub_text(f"clean string number {i}")
    assert len(guard._clean) <= guard._CLEAN_MAX_ENTRIES


def test_span_attributes_are_scrubbed_through_the_fast_path() -> None:
    """The attribute dict is read directly (not through BoundedAttributes' Mapping methods):
    a secret in an attribute, an event and the status is still redacted, and the span's own
    attributes are left untouched."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    secret = "sk-proj-" + "Q" * 24
    with provider.get_tracer("other.instrumentor").start_as_current_span("chat") as span:
        span.set_attribute("gen_ai.prompt", f"my key is {secret}")
        span.set_attribute("gen_ai.request.model", "stub-model")
        span.add_event("log", {"message": f"using {secret}"})
    [original] = memory.get_finished_spans()
    clean = guard.scrub_span(original)
    assert clean is not original
    assert secret not in str(dict(clean.attributes or {}))
    assert clean.attributes is not None and clean.attributes["gen_ai.request.model"] == "stub-model"
    assert secret not in str([dict(e.attributes or {}) for e in clean.events])
    assert original.attributes is not None and secret in str(original.attributes["gen_ai.prompt"])


def test_the_keyword_scan_without_ahocorasick_finds_the_same(monkeypatch: Any) -> None:
    """Without the ahocorasick-rs package, str.find finds the same keywords, so redaction gives
    the same text, on clean text, on secrets, and on text naming every rule's keywords."""
    from pathlib import Path

    from agentsignals._instrument import redact

    texts = [
        "nothing to see here, just a long enough line of text",
        "OPENAI_API_KEY=sk-proj-" + "Q7" * 12 + "\nexport GITHUB_TOKEN=ghp_" + "a1" * 18,
        "postgres://admin:hunter2-longer@db:5432/x and Authorization: Bearer abcdefghijklmnop",
        Path(redact.__file__).read_text()[:20_000],
    ]
    redact.redact_secrets("password=warm-up-value")  # the automaton exists
    assert redact._automaton not in (None, False)
    expected = [redact.redact_secrets(t) for t in texts]
    hits = [sorted(redact._find_keywords(redact._folded(t))) for t in texts]
    monkeypatch.setattr(redact, "_automaton", False)
    assert [sorted(redact._find_keywords(redact._folded(t))) for t in texts] == hits
    assert [redact.redact_secrets(t) for t in texts] == expected
    assert expected[1][1] == 2 and expected[2][1] >= 2
