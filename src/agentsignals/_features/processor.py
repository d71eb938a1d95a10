"""The in-process feature processor: `configure(features=True)`.

A span processor on the agent's own TracerProvider that feeds finished spans to the same
Assembler the offline and collector paths use, and writes each attempt's record to the
embedded store as the attempt ends. Children end before their attempt in-process, so the
grace period is zero by default; a child that ends later still yields a revised record (late
spans are gathered for `late_window_s`, so a stream of them costs a few rebuilds, not one
per span).

Batched (the default, as exports are): `span.end()` only appends the span to a queue; a
worker thread converts and assembles the spans in batches, waking every `schedule_delay_s`,
when a batch is full or when an attempt or trial span ends (so its record is written at
once). If the worker falls `max_queue` spans behind, the ending thread processes a batch
itself: records stay true and memory bounded, at the cost of that thread's time. With
`batch=False` every span is processed inside `span.end()` (records written synchronously).

Memory: an open attempt holds its spans until it ends; finished attempts are kept for late
spans only in a small cache bounded in attempts and spans (`finished_cache`,
`finished_spans`), so memory does not grow with the run.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from agentsignals._features.assemble import Assembler, Sink
from agentsignals._instrument import deferred
from agentsignals._instrument.runtime import internal_error
from agentsignals._spans.decode import ReadableConverter

# Span names whose end releases a record: wake the worker at once (GenAI's `invoke_agent`
# attempt span, our trial span).
_RELEASING: Final = ("invoke_agent", "trial ")


class FeatureSpanProcessor(SpanProcessor):
    """Derives feature records from the spans of this process."""

    reads_attributes_on_start = False  # (agentsignals._instrument.direct)
    agentsignals_resolves_pending = True  # (agentsignals._instrument.deferred)

    def __init__(
        self,
        sink: Sink,
        *,
        batch: bool = True,
        grace_s: float = 0.0,
        late_window_s: float = 1.0,
        idle_timeout_s: float = 6 * 3600.0,
        max_in_flight: int = 10_000,
        finished_cache: int = 8,
        finished_spans: int = 2_000,
        finished_trials: int = 16,
        schedule_delay_s: float = 0.5,
        max_batch: int = 512,
        max_queue: int = 20_000,
    ) -> None:
        self._sink = sink
        self._lock = threading.Lock()  # the assembler, the converter and the sink
        self._converter = ReadableConverter()
        self.assembler = Assembler(
            sink,
            clock=time.monotonic,
            grace=grace_s,
            idle_timeout=idle_timeout_s,
            max_in_flight=max_in_flight,
            finished_cache=finished_cache,
            finished_spans=finished_spans,
            finished_trials=finished_trials,
            seen_ids=0,  # the SDK ends each span once: no duplicates to recognise
            late_window=late_window_s,
        )
        self._batched = batch
        self._queue: deque[ReadableSpan] = deque()
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._delay = schedule_delay_s
        self._wakeup = threading.Condition(threading.Lock())
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._shut = False
        if batch and hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))

    # ------------------------------------------------------------------------- the agent
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._shut:
            return
        if not self._batched:
            try:
                with self._lock:
                    self._process([span])
            except Exception:
                internal_error("could not derive features from a span")
            return
        queue = self._queue
        queue.append(span)
        if self._worker is None:
            self._start_worker()
        depth = len(queue)
        if depth >= self._max_batch or span.name.startswith(_RELEASING):
            if depth > self._max_queue:
                self._drain(once=True)  # the worker is behind: help, never drop
            with self._wakeup:
                self._wakeup.notify()

    # ------------------------------------------------------------------------ the worker
    def _start_worker(self) -> None:
        with self._wakeup:
            if self._worker is not None or self._stopping:
                return
            worker = threading.Thread(target=self._run, name="agentsignals-features", daemon=True)
            self._worker = worker
        try:
            worker.start()
        except RuntimeError:  # late in interpreter shutdown: process on the caller's thread
            self._batched = False
            self._drain()

    def _run(self) -> None:
        queue = self._queue
        while True:
            with self._wakeup:
                if not self._stopping and len(queue) < self._max_batch:
                    self._wakeup.wait(self._delay)
                stopping = self._stopping
            self._drain()
            if stopping:
                return

    def _drain(self, *, once: bool = False) -> None:
        """Process queued spans in batches (and release what became due)."""
        queue = self._queue
        try:
            while True:
                with self._lock:
                    n = min(len(queue), self._max_batch)
                    popleft = queue.popleft
                    chunk = [popleft() for _ in range(n)]
                    if chunk:
                        self._process(chunk)
                    else:
                        self.assembler.tick()
                if not chunk or once:
                    return
        except Exception:
            internal_error("could not derive features from spans")

    def _process(self, spans: list[ReadableSpan]) -> None:
        deferred.resolve_spans(spans)  # (a tool span's command and output, read here)
        self.assembler.add(self._converter.convert(spans))

    def _reset_after_fork(self) -> None:
        # The parent's worker thread does not exist here, its lock may be held, and its
        # queued spans are the parent's to process (as a BatchSpanProcessor drops them).
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(threading.Lock())
        self._worker = None
        self._stopping = False
        self._queue.clear()

    # ------------------------------------------------------------------- flush and stop
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            self._drain()
            with self._lock:
                self.assembler.tick()
        except Exception:
            internal_error("could not flush feature records")
            return False
        return True

    def shutdown(self) -> None:
        if self._shut:
            return
        try:
            with self._wakeup:
                self._stopping = True
                worker = self._worker
                self._wakeup.notify()
            if worker is not None and worker is not threading.current_thread():
                worker.join(30.0)
            self._shut = True
            self._drain()
            with self._lock:
                self.assembler.flush()
                close: Any = getattr(self._sink, "close", None)
                if callable(close):
                    close()
        except Exception:
            internal_error("could not write the last feature records")


def _after_fork(ref: weakref.ReferenceType[FeatureSpanProcessor]) -> None:
    processor = ref()
    if processor is not None:
        processor._reset_after_fork()
