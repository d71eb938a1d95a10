"""Our attributes written straight into SDK spans (issue #16): exactly what the SDK would have
stored, and the SDK's own path wherever a sampler, a processor or a limit could tell."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, Sampler, SamplingResult

import agentsignals
from agentsignals._instrument import direct
from agentsignals._instrument.runtime import RUNTIME


class AttributeSampler(Sampler):
    """Samples everything, remembering the attributes it was shown."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None
                      ) -> SamplingResult:  # fmt: skip
        self.seen.append(dict(attributes or {}))
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "attribute sampler"


class OnStartReader(SpanProcessor):
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.seen.append(dict(span.attributes or {}))

    def on_end(self, span: ReadableSpan) -> None:
        pass


def _agent_run() -> None:
    @agentsignals.trace_tool
    def bash(command: str) -> str:
        return "src/a.py:3: def resolve\n"

    @agentsignals.trace_tool(attributes={"my.tags": ["a", "b"], "my.bad": [1, "x"]})
    def tagged(path: str) -> str:
        return "x"

    with agentsignals.trial("t", trial_id="T"), agentsignals.attempt(attempt_id="A"):
        with agentsignals.turn():
            bash("grep -rn 'def resolve' src/")
            bash("cat src/a.py src/b.py")
            tagged("src/a.py")
        with agentsignals.tool("read_file", arguments={"path": "x.py"}, files=["x.py"]) as t:
            t.record_result("hello")
            t.set_exit_code(1)


def _run(tmp_path: Any, **provider_args: Any) -> list[dict[str, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**provider_args)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agentsignals.configure(tracer_provider=provider, exporters=["none"], output_dir=tmp_path)
    _agent_run()
    agentsignals.shutdown()
    return [
        {"name": s.name, "attributes": dict(s.attributes or {})}
        for s in exporter.get_finished_spans()
    ]


@pytest.fixture
def fresh(fresh_otel: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import conftest

    # The user's own attributes here (my.tags, my.bad) are not ours: kept out of the record of
    # emitted attributes that tests/test_zz_semconv_registry.py checks against the registry.
    monkeypatch.setattr(conftest, "EMITTED", defaultdict(set))
    direct.forget()
    yield
    direct.forget()


@pytest.mark.usefixtures("fresh")
def test_direct_writes_store_exactly_what_the_sdk_stores(tmp_path: Any) -> None:
    fast = _run(tmp_path / "a")
    assert direct.start_attributes_later(RUNTIME.tracer) is False  # (shut down: no tracer)
    sampler = AttributeSampler()
    slow = _run(tmp_path / "b", sampler=sampler)  # a sampler reading attributes: SDK path
    assert fast == slow
    tools = [s for s in fast if s["attributes"].get("agent_signals.span.type") == "tool"]
    assert tools[1]["attributes"]["agent_signals.tool.files"] == ("src/a.py", "src/b.py")
    # The user's list is stored as a tuple; the mixed one is left to the SDK (equal above).
    assert tools[2]["attributes"]["my.tags"] == ("a", "b")
    assert "my.bad" in tools[2]["attributes"]
    assert json.dumps([s["attributes"] for s in fast], sort_keys=True)  # plain values only


@pytest.mark.usefixtures("fresh")
def test_a_sampler_that_reads_attributes_sees_them_at_start(tmp_path: Any) -> None:
    sampler = AttributeSampler()
    _run(tmp_path, sampler=sampler)
    tool_starts = [a for a in sampler.seen if a.get("agent_signals.span.type") == "tool"]
    assert len(tool_starts) == 4
    assert all("gen_ai.tool.name" in a and "agent_signals.attempt.id" in a for a in tool_starts)


@pytest.mark.usefixtures("fresh")
def test_a_host_processor_reading_on_start_sees_them(tmp_path: Any) -> None:
    reader = OnStartReader()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(reader)
    agentsignals.configure(tracer_provider=provider, exporters=["none"], output_dir=tmp_path)
    assert direct.start_attributes_later(RUNTIME.tracer) is False
    _agent_run()
    agentsignals.shutdown()
    tool_starts = [a for a in reader.seen if a.get("agent_signals.span.type") == "tool"]
    assert len(tool_starts) == 4 and all("gen_ai.tool.name" in a for a in tool_starts)


@pytest.mark.usefixtures("fresh")
def test_limits_are_applied_by_the_sdk(tmp_path: Any) -> None:
    limits = SpanLimits(max_span_attributes=5, max_attribute_length=4)
    spans = _run(tmp_path, span_limits=limits)
    tools = [s for s in spans if s["name"].startswith("execute_tool")]
    for span in tools:
        assert len(span["attributes"]) <= 5
        for value in span["attributes"].values():
            values: Sequence[Any] = value if isinstance(value, tuple) else (value,)
            assert all(len(v) <= 4 for v in values if isinstance(v, str))


@pytest.mark.usefixtures("fresh")
def test_the_fast_path_is_taken_on_a_plain_provider(tmp_path: Any) -> None:
    provider = TracerProvider()
    agentsignals.configure(tracer_provider=provider, exporters=["none"], output_dir=tmp_path)
    assert direct.start_attributes_later(RUNTIME.tracer) is True
    provider.add_span_processor(OnStartReader())  # the host adds a processor later
    assert direct.start_attributes_later(RUNTIME.tracer) is False
    agentsignals.shutdown()


@pytest.mark.usefixtures("fresh")
def test_set_attributes_matches_the_sdk_key_by_key() -> None:
    """Order, overwrites, None values, sequences and a value the SDK must check: the direct
    write and the SDK's own set_attributes leave the same attributes in the same order."""
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    updates: list[dict[str, Any]] = [
        {"a": 1, "b": "x", "c": None, "d": ["p", "q"]},
        {"a": 2, "e": (1.5, 2.5), "f": [1, "mixed"], "g": True, "": "empty key"},
        {"b": "y", "h": []},
    ]
    fast, slow = tracer.start_span("fast"), tracer.start_span("slow")
    for update in updates:
        direct.set_attributes(fast, update)
        slow.set_attributes({k: v for k, v in update.items() if v is not None})
    assert list((fast.attributes or {}).items()) == list((slow.attributes or {}).items())
    assert (fast.attributes or {})["d"] == ("p", "q")
    assert list(fast.attributes or {})[-2:] == ["b", "h"]
    fast.end()
    direct.set_attributes(fast, {"late": 1})  # ended: dropped, as the SDK does
    assert "late" not in (fast.attributes or {})
