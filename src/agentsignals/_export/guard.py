"""What stands between every span and every exporter of ours: secret scrubbing and deadlines.

**Scrubbing.** Our exporters write other instrumentors' spans too (an OpenAI instrumentor's
prompts, an HTTP client's URLs), and exception events and status messages carry free text even
with content capture off. :func:`scrub_span` runs the built-in secret rules over every string a
span holds (name, attributes, event names and attributes, status message, link attributes)
before any exporter encodes it. A span with nothing to redact is passed on as the same object,
so the cost is one keyword scan per string; strings our own capture already redacted, and our
identifier attributes, are not scanned again.

**Deadlines.** An exporter's ``export`` may hang (a black-holed endpoint, a bug). The SDK's
processors wait for it without limit: ``BatchSpanProcessor.force_flush`` ignores its timeout,
``SimpleSpanProcessor`` exports on the agent's own thread, and the exit flush waits forever.
:class:`GuardedExporter` runs the wrapped exporter's ``export`` on a worker thread and waits at
most the export timeout (``OTEL_BSP_EXPORT_TIMEOUT``, default 30 s, OpenTelemetry's meaning:
the longest one export may take). An export past its deadline reports FAILURE; while it is
still stuck, later batches are dropped at once and counted (never queued behind it), and when
it returns the exporter is used again. At process exit the wrapped exporter is told to stop
retrying, so a dead endpoint costs one attempt, not a backoff schedule.
"""

from __future__ import annotations

import copy
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from agentsignals import semconv as sc
from agentsignals._instrument import deferred, redact
from agentsignals._instrument.runtime import internal_error, logger

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT_S",
    "GuardedExporter",
    "export_timeout_s",
    "scrub_span",
    "stats",
]

DEFAULT_EXPORT_TIMEOUT_S: Final = 30.0

# Attributes that never hold free text: identifiers, enums, hashes our instrumentation writes.
_NEVER_FREE_TEXT: Final = frozenset(
    {
        sc.AGENT_SIGNALS_SPAN_TYPE, sc.AGENT_SIGNALS_TRIAL_ID, sc.AGENT_SIGNALS_ATTEMPT_ID,
        sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID, sc.AGENT_SIGNALS_TOOL_CATEGORY,
        sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT, sc.AGENT_SIGNALS_TOOL_EDIT_MODE,
        sc.GEN_AI_OPERATION_NAME, sc.AGENT_SIGNALS_CONTENT_TRUNCATED_SHA256,
        sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS,
    }
)  # fmt: skip
# Content our capture redacted already (built-in rules, then the user's hook) on our spans.
_REDACTED_AT_CAPTURE: Final = frozenset(
    {
        sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT, sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES, sc.PROCESS_COMMAND_LINE, sc.AGENT_SIGNALS_CONTENT_VALUE,
    }
)  # fmt: skip
_OUR_SCOPE: Final = "agentsignals"
_SKIP_OURS: Final = _NEVER_FREE_TEXT | _REDACTED_AT_CAPTURE
# Shorter strings cannot hold a secret any rule matches.
_MIN_CHARS: Final = 6
# Short strings found clean before (span names, tool and model names, enum-like values recur on
# every span) are looked up instead of scanned again: the rules are deterministic, so the same
# string is clean again. Only clean strings are kept; bounded, cleared when full.
_CLEAN_MAX_CHARS: Final = 200
_CLEAN_MAX_ENTRIES: Final = 4096
# Spans whose strings add up to more are scanned string by string without a first glance.
_GLANCE_MAX_CHARS: Final = 4096
_clean: dict[str, None] = {}


class _Stats:
    """Process-wide counters (tests and health checks read them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.redactions = 0
        self.spans_scrubbed = 0
        self.exports_timed_out = 0
        self.batches_dropped_while_stuck = 0
        self.spans_dropped_while_stuck = 0


stats = _Stats()


def export_timeout_s(default: float = DEFAULT_EXPORT_TIMEOUT_S) -> float:
    """OTEL_BSP_EXPORT_TIMEOUT (milliseconds) in seconds; the default when unset or invalid."""
    raw = os.environ.get("OTEL_BSP_EXPORT_TIMEOUT", "").strip()
    if not raw:
        return default
    try:
        value = float(raw) / 1000.0
    except ValueError:
        logger.warning("agentsignals: ignoring invalid OTEL_BSP_EXPORT_TIMEOUT=%r", raw)
        return default
    if value <= 0 or value != value:
        logger.warning("agentsignals: ignoring invalid OTEL_BSP_EXPORT_TIMEOUT=%r", raw)
        return default
    return min(value, 24 * 3600.0)


# ------------------------------------------------------------------------------- scrubbing


def _scrub_text(text: str) -> tuple[str, int]:
    size = len(text)
    if size < _MIN_CHARS:
        return text, 0
    if size > _CLEAN_MAX_CHARS:
        return redact.redact_secrets(text)
    if text in _clean:
        return text, 0
    new, found = redact.redact_secrets(text)
    if not found:
        if len(_clean) >= _CLEAN_MAX_ENTRIES:
            _clean.clear()
        _clean[text] = None
    return new, found


def _scrub_value(value: Any) -> tuple[Any, int]:
    if type(value) is str:
        return _scrub_text(value)
    if isinstance(value, tuple | list) and value and any(type(v) is str for v in value):
        total = 0
        items = []
        for v in value:
            if type(v) is str:
                v, found = _scrub_text(v)
                total += found
            items.append(v)
        return (tuple(items) if total else value), total
    return value, 0


def _scrub_mapping(
    attributes: Mapping[str, Any] | None, skip: frozenset[str] = frozenset()
) -> tuple[dict[str, Any] | None, int]:
    """A redacted copy of `attributes`, or None when nothing was redacted."""
    if not attributes:
        return None, 0
    # BoundedAttributes' Mapping methods are Python code run per key; its dict is not.
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        attributes = inner
    changed: dict[str, Any] | None = None
    total = 0
    for key, value in attributes.items():
        if key in _NEVER_FREE_TEXT or key in skip:
            continue
        new, found = _scrub_value(value)
        if found:
            total += found
            if changed is None:
                changed = dict(attributes)
            changed[key] = new
    return changed, total


def _bounded(new: dict[str, Any], old: Any) -> BoundedAttributes:
    bounded = BoundedAttributes(maxlen=None, attributes=new, immutable=True)
    bounded.dropped = getattr(old, "dropped", 0)
    return bounded


def _clean_at_a_glance(span: ReadableSpan, attributes: Any, skip: frozenset[str]) -> bool:
    """True when no rule can match any string of `span` (a span without events or links):
    its strings joined by NUL, which no keyword holds, so every keyword found in the join lies
    in one string. A join that recurs (our tool and turn spans, a model's name) is found in
    the clean-string memory with one lookup."""
    # (BoundedList's own __len__ is Python code: look at its deque.)
    events = getattr(span, "_events", None)
    if events is not None and getattr(events, "_dq", events):
        return False
    links = getattr(span, "_links", None)
    if links is not None and getattr(links, "_dq", links):
        return False
    parts = [span.name or ""]
    status = span.status
    if status is not None and status.description:
        parts.append(status.description)
    if attributes:
        inner = getattr(attributes, "_dict", None)
        for key, value in (inner if type(inner) is dict else attributes).items():
            if key in skip:
                continue
            kind = type(value)
            if kind is str:
                parts.append(value)
            elif kind is tuple or kind is list:
                parts.extend(v for v in value if type(v) is str)
    probe = "\0".join(parts)
    size = len(probe)
    if size > _GLANCE_MAX_CHARS:
        return False  # long text: scanned string by string, once
    if size <= _CLEAN_MAX_CHARS and probe in _clean:
        return True
    if redact.holds_keyword(probe):
        return False
    if size <= _CLEAN_MAX_CHARS:
        if len(_clean) >= _CLEAN_MAX_ENTRIES:
            _clean.clear()
        _clean[probe] = None
    return True


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """`span`, or a copy of it with every secret in its strings redacted."""
    scope = span.instrumentation_scope
    ours = scope is not None and scope.name == _OUR_SCOPE
    skip = _SKIP_OURS if ours else _NEVER_FREE_TEXT
    source_attributes = getattr(span, "_attributes", None)  # the public property copies it
    if source_attributes is None:
        source_attributes = span.attributes
    if _clean_at_a_glance(span, source_attributes, skip):
        return span
    total = 0
    name, found = _scrub_text(span.name or "")
    total += found
    attributes, found = _scrub_mapping(
        source_attributes, _REDACTED_AT_CAPTURE if ours else frozenset()
    )
    total += found
    events: list[Event] | None = None
    source_events = getattr(span, "_events", None) or ()
    if source_events:
        for i, event in enumerate(span.events):
            event_name, found_name = _scrub_text(event.name)
            event_attrs, found_attrs = _scrub_mapping(
                event.attributes, _REDACTED_AT_CAPTURE if ours else frozenset()
            )
            if found_name or found_attrs:
                if events is None:
                    events = list(span.events)
                events[i] = Event(
                    event_name,
                    _bounded(event_attrs, event.attributes)
                    if event_attrs is not None
                    else event.attributes,
                    event.timestamp,
                )
                total += found_name + found_attrs
    status = span.status
    new_status: Status | None = None
    if status is not None and status.description:
        description, found = _scrub_text(status.description)
        if found:
            new_status = Status(status.status_code, description)
            total += found
    links: list[Link] | None = None
    source_links = getattr(span, "_links", None) or ()
    if source_links:
        for i, link in enumerate(span.links):
            link_attrs, found = _scrub_mapping(link.attributes)
            if found:
                if links is None:
                    links = list(span.links)
                links[i] = Link(link.context, _bounded(link_attrs or {}, link.attributes))
                total += found
    if not total:
        return span
    clone = copy.copy(span)  # ReadableSpan has no public copy-with
    if name != span.name:
        clone._name = name
    if attributes is not None:
        clone._attributes = _bounded(attributes, span._attributes)
    if events is not None:
        clone._events = tuple(events)
    if new_status is not None:
        clone._status = new_status
    if links is not None:
        clone._links = tuple(links)
    with stats.lock:
        stats.redactions += total
        stats.spans_scrubbed += 1
    return clone


def scrub_spans(spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
    """Every span scrubbed; a span that cannot be scanned is withheld, never passed raw."""
    out: list[ReadableSpan] | None = None
    for i, span in enumerate(spans):
        try:
            clean = scrub_span(span)
        except Exception:
            internal_error("could not scan a span for secrets; span withheld")
            clean = None
        if clean is not span:
            if out is None:
                out = list(spans[:i])
            if clean is not None:
                out.append(clean)
        elif out is not None:
            out.append(span)
    return spans if out is None else out


# ------------------------------------------------------------------------------- deadlines

# Set at process exit: exporters stop retrying, waits end by this monotonic time.
_exit_deadline: float | None = None
_guarded: list[GuardedExporter] = []
_guarded_lock = threading.Lock()


def begin_exit(budget_s: float) -> float:
    """The process is exiting: every guarded exporter stops retrying, and every bounded wait
    from now on ends by one shared deadline. Returns that deadline (monotonic)."""
    global _exit_deadline
    if _exit_deadline is None:
        _exit_deadline = time.monotonic() + budget_s
        with _guarded_lock:
            exporters = list(_guarded)
        for exporter in exporters:
            exporter.stop_retrying()
    return _exit_deadline


def exit_deadline() -> float | None:
    return _exit_deadline


def remaining(timeout_s: float) -> float:
    """`timeout_s`, cut to what is left of the exit deadline when the process is exiting."""
    deadline = _exit_deadline
    if deadline is None:
        return timeout_s
    return max(0.0, min(timeout_s, deadline - time.monotonic()))


_failures_logged: set[tuple[str, str]] = set()


def _exporter_failed(exporter: object, what: str, exc: Exception) -> None:
    """An exporter raised: one WARNING line per exporter type and operation, then DEBUG."""
    key = (type(exporter).__name__, what)
    first = key not in _failures_logged and len(_failures_logged) < 1000
    _failures_logged.add(key)
    message = "agentsignals: %s raised during %s: %s (spans of this batch are lost to it)"
    args = (key[0], what, type(exc).__name__)
    if first:
        logger.warning(message, *args)
    else:
        logger.debug(message, *args)


class _Job:
    """One export handed to the worker thread. `done` is a plain lock, held until the export
    returns (cheaper to wait on than an Event: no Condition, no Python-level waiter list)."""

    __slots__ = ("batch", "done", "result")

    def __init__(self, batch: Sequence[ReadableSpan]) -> None:
        self.batch = batch
        self.done = threading.Lock()
        self.done.acquire()
        self.result = SpanExportResult.FAILURE

    def finished(self) -> bool:
        return not self.done.locked()


class GuardedExporter(SpanExporter):
    """Scrubs secrets from every span, then exports with a deadline (see the module doc).

    Bounded exports run on one long-lived worker thread per exporter (started on first use,
    and again after a fork), so a deadline costs a hand-over, not a new thread per export:
    with ``batch=False`` every span is an export."""

    def __init__(
        self,
        inner: SpanExporter,
        *,
        scrub: bool = True,
        bounded: bool = True,
        timeout_s: float | None = None,
    ) -> None:
        self.inner = inner
        self._scrub = scrub
        self._bounded = bounded
        self._timeout_s = timeout_s if timeout_s is not None else export_timeout_s()
        self._lock = threading.Lock()
        self._warned_stuck = False
        # The worker, its queue, and the export it is running (None when idle).
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._running: _Job | None = None
        self._pid = os.getpid()
        with _guarded_lock:
            _guarded.append(self)
            del _guarded[:-1000]  # bounded: reconfiguring many times must not grow this

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            deferred.resolve_spans(spans)  # (before scrubbing: what they add is scrubbed too)
            batch = scrub_spans(spans) if self._scrub else spans
        except Exception:
            internal_error("could not scrub spans; batch withheld")
            return SpanExportResult.FAILURE
        if not batch:
            return SpanExportResult.SUCCESS
        if not self._bounded:
            try:
                return self.inner.export(batch)
            except Exception as exc:
                _exporter_failed(self.inner, "export", exc)
                return SpanExportResult.FAILURE
        return self._export_bounded(batch)

    def _run(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                job.result = self.inner.export(job.batch)
            except Exception as exc:  # the exporter's failure, not ours: logged, not raised
                _exporter_failed(self.inner, "export", exc)
                job.result = SpanExportResult.FAILURE
            finally:
                job.batch = ()
                job.done.release()

    def _start_worker(self) -> bool:
        """A live worker thread (False when none can be started, late at interpreter exit)."""
        if self._pid != os.getpid():  # forked: the parent's worker and its job are not here
            self._pid = os.getpid()
            self._jobs = queue.SimpleQueue()
            self._worker = None
            self._running = None
        worker = self._worker
        if worker is not None and worker.is_alive():
            return True
        worker = threading.Thread(
            target=self._run, args=(self._jobs,), name="agentsignals-export", daemon=True
        )
        try:
            worker.start()
        except RuntimeError:
            return False
        self._worker = worker
        return True

    def _export_bounded(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
        # Concurrent callers (SimpleSpanProcessor on several threads) take turns, each within
        # its own deadline.
        if not self._lock.acquire(timeout=max(remaining(self._timeout_s), 0.001)):
            self._drop_while_stuck(len(batch))
            return SpanExportResult.FAILURE
        try:
            running = self._running
            if running is not None and not running.finished():
                self._drop_while_stuck(len(batch))
                return SpanExportResult.FAILURE
            job = _Job(batch)
            if not self._start_worker():  # no new threads late in interpreter shutdown
                self._running = None
                try:
                    return self.inner.export(batch)
                except Exception as exc:
                    _exporter_failed(self.inner, "export", exc)
                    return SpanExportResult.FAILURE
            self._running = job
            self._jobs.put(job)
            if job.done.acquire(timeout=max(remaining(self._timeout_s), 0.0)):
                self._running = None
                return job.result
        finally:
            self._lock.release()
        with stats.lock:
            stats.exports_timed_out += 1
        logger.warning(
            "agentsignals: %s did not finish exporting %d span(s) within %.1f s "
            "(OTEL_BSP_EXPORT_TIMEOUT); batches are dropped until it returns",
            type(self.inner).__name__,
            len(batch),
            self._timeout_s,
        )
        return SpanExportResult.FAILURE

    def _drop_while_stuck(self, count: int) -> None:
        with stats.lock:
            stats.batches_dropped_while_stuck += 1
            stats.spans_dropped_while_stuck += count
        if not self._warned_stuck:
            self._warned_stuck = True
            logger.warning(
                "agentsignals: %s is still stuck in an earlier export; dropping batches "
                "(further drops are logged at DEBUG)",
                type(self.inner).__name__,
            )
        else:
            logger.debug("agentsignals: dropped %d span(s): exporter still stuck", count)

    def stop_retrying(self) -> None:
        """Ask the wrapped OTLP exporter to give up retries with backoff (at exit)."""
        client = getattr(self.inner, "_client", None)
        for holder in (client, self.inner):
            event = getattr(holder, "_shutdown_event", None) or getattr(
                holder, "_shutdown_in_progress", None
            )
            if isinstance(event, threading.Event):
                event.set()
                return

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._call_bounded(
            lambda: self.inner.force_flush(timeout_millis), timeout_millis / 1000.0, "flush"
        )

    def shutdown(self) -> None:
        self.stop_retrying()
        self._call_bounded(self.inner.shutdown, self._timeout_s, "shut down")
        if self._worker is not None:
            # The worker ends after the export it may still be running; an export after this
            # starts a new worker on a new queue.
            self._jobs.put(None)
            self._jobs = queue.SimpleQueue()
            self._worker = None
        with _guarded_lock:
            if self in _guarded:
                _guarded.remove(self)

    def _call_bounded(self, fn: Any, timeout_s: float, what: str) -> bool:
        result: list[Any] = []

        def run() -> None:
            try:
                result.append(fn())
            except Exception as exc:
                _exporter_failed(self.inner, what, exc)
                result.append(False)

        worker = threading.Thread(target=run, name=f"agentsignals-{what}", daemon=True)
        try:
            worker.start()
        except RuntimeError:
            run()
            return bool(result and result[0] is not False)
        worker.join(remaining(max(0.0, timeout_s)))
        if worker.is_alive():
            logger.warning(
                "agentsignals: %s did not %s within %.1f s", type(self.inner).__name__, what,
                timeout_s,
            )  # fmt: skip
            return False
        return bool(result and result[0] is not False)
