"""The in-process feature processor: `configure(features=True)`.

A span processor on the agent's own TracerProvider that feeds finished spans to the same
Assembler the offline and collector paths use, and writes each attempt's record to the
embedded store as the attempt ends. Children end before their attempt in-process, so the
grace period is zero by default; a child that ends later still yields a revised record.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from agentsignals._features.assemble import Assembler, Sink
from agentsignals._instrument.runtime import internal_error
from agentsignals._spans.decode import from_readable_spans


class FeatureSpanProcessor(SpanProcessor):
    """Derives feature records from the spans of this process."""

    def __init__(
        self,
        sink: Sink,
        *,
        grace_s: float = 0.0,
        idle_timeout_s: float = 6 * 3600.0,
        max_in_flight: int = 10_000,
    ) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.assembler = Assembler(
            sink,
            clock=time.monotonic,
            grace=grace_s,
            idle_timeout=idle_timeout_s,
            max_in_flight=max_in_flight,
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        try:
            typed = from_readable_spans([span])
            with self._lock:
                self.assembler.add(typed)
        except Exception:
            internal_error("could not derive features from a span")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            with self._lock:
                self.assembler.tick()
        except Exception:
            internal_error("could not flush feature records")
            return False
        return True

    def shutdown(self) -> None:
        try:
            with self._lock:
                self.assembler.flush()
            close: Any = getattr(self._sink, "close", None)
            if callable(close):
                close()
        except Exception:
            internal_error("could not write the last feature records")
