"""Shared fixtures. Internal instrumentation errors raise in this suite (they are swallowed in
production), and every attribute any span emits is recorded for the registry drift test."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["AGENTSIGNALS_RAISE_INTERNAL_ERRORS"] = "1"
# LiteLLM (under DSPy, mini-swe-agent, smolagents) fetches its price map from the internet on
# import unless told to use the copy it ships; tests reach loopback only.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
# Never let the developer's environment redirect test spans.
for _var in [v for v in os.environ if v.startswith("OTEL_")] + [
    "TRACEPARENT",
    "TRACESTATE",
    "BAGGAGE",
]:
    os.environ.pop(_var, None)

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk import trace as sdk_trace  # noqa: E402

from agentsignals import _config  # noqa: E402
from agentsignals._instrument import runtime, scope  # noqa: E402
from agentsignals.semconv import SCHEMA_URL  # noqa: E402
from agentsignals.testing import CapturedSpans, capture_spans  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# key -> python type names seen, for spans from our instrumentation scope and for any
# agent_signals.* key on any span (identity stamped on other instrumentors' spans).
EMITTED: dict[str, set[str]] = defaultdict(set)
_original_end = sdk_trace.Span.end


def _recording_end(self: sdk_trace.Span, end_time: int | None = None) -> None:
    _original_end(self, end_time)
    scope = self.instrumentation_scope
    # Spans our instrumentation made: our scope name with our schema URL (tests that hand-build
    # spans under the same name do not count).
    ours = scope is not None and scope.name == "agentsignals" and scope.schema_url == SCHEMA_URL
    for key, value in (self.attributes or {}).items():
        if isinstance(value, tuple | list) and not value:
            continue  # an empty array carries no element type (int[] and string[] look alike)
        if ours or key.startswith("agent_signals."):
            EMITTED[key].add(_type_name(value))
    if ours:
        for event in self.events:
            for key, value in (event.attributes or {}).items():
                EMITTED[key].add(_type_name(value))


def _type_name(value: object) -> str:
    if isinstance(value, tuple | list):
        inner = {_type_name(v) for v in value} or {"string"}
        return f"{inner.pop()}[]" if len(inner) == 1 else "mixed[]"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    return "string"


sdk_trace.Span.end = _recording_end  # type: ignore[method-assign]


@pytest.fixture
def captured() -> Iterator[CapturedSpans]:
    with capture_spans() as c:
        yield c


@pytest.fixture
def captured_content() -> Iterator[CapturedSpans]:
    with capture_spans(capture_content=True) as c:
        yield c


def _reset_globals() -> None:
    _config.shutdown()
    _config._active = None
    trace._TRACER_PROVIDER_SET_ONCE = trace.Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    runtime.reset_tracer()
    runtime.RUNTIME.settings = runtime.Settings()
    scope.set_env_parent(None)


@pytest.fixture
def fresh_otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No global TracerProvider and no agentsignals configuration, before and after."""
    _reset_globals()
    yield
    _reset_globals()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real agent data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Any]:
    """`agentsignals collect` in process on free loopback ports (HTTP, and gRPC when asked):
    `collector(**settings)` starts one (output in tmp_path/out); all are stopped after."""
    from agentsignals._collector.config import CollectorConfig
    from agentsignals._collector.service import Collector

    started: list[Collector] = []

    def start(**overrides: Any) -> Collector:
        settings: dict[str, Any] = {
            "http_port": 0,
            "grpc_port": 0,
            "output_dir": tmp_path / "out",
            "grace_s": 0.2,
            "tick_s": 0.05,
            **overrides,
        }
        c = Collector(CollectorConfig(**settings)).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()
