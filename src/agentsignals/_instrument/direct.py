"""Attributes we made ourselves, written into SDK spans without the SDK's per-value checks.

The OpenTelemetry SDK validates every attribute value (type checks, sequence copies, a lock per
key): about 0.7 µs per attribute here, a third of a plain span's cost for the 8 attributes of a
tool span. Our values are valid by construction (str, bool, int, float, lists of one of these),
so where writing them straight into the span's attribute dict gives exactly what
``set_attributes`` would store, we do that:

* the span is the SDK's own span class with its own ``BoundedAttributes``, not ended, with no
  value length limit (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` truncates: then the SDK writes)
  and room under the attribute count limit (else the SDK evicts as it does);
* lists become tuples, as the SDK stores them.

A span started with its attributes written afterwards is seen without them by the sampler and
by processors' ``on_start``: so that path (`start_attributes_later`) is taken only on providers
whose sampler ignores attributes (the SDK's always-on/off, trace-id ratio, parent-based over
those) and whose processors are ours or the SDK's export processors, which never read them on
start. Everywhere else the attributes go to ``start_span`` as before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes

_SDK_SPAN_TYPES: tuple[type, ...] | None = None


def _sdk_span_types() -> tuple[type, ...]:
    global _SDK_SPAN_TYPES
    if _SDK_SPAN_TYPES is None:
        module = sys.modules.get("opentelemetry.sdk.trace")
        if module is None:
            return ()  # no SDK spans exist yet: nothing to write directly
        _SDK_SPAN_TYPES = (module._Span, module.Span)
    return _SDK_SPAN_TYPES


def attribute_dict(span: Any, adding: int) -> dict[str, Any] | None:
    """The dict holding a live SDK span's attributes when `adding` of ours can be written into
    it directly with the result `set_attributes` would give; None otherwise. Call with the
    span's lock held (or before anyone else can see the span)."""
    if type(span) not in _sdk_span_types():
        return None
    try:
        attrs = span._attributes
        if type(attrs) is not BoundedAttributes or attrs.max_value_len is not None:
            return None
        if attrs._immutable or span._end_time is not None:
            return None
        values = attrs._dict
        maxlen = attrs.maxlen
    except AttributeError:  # another SDK version's internals: its own path
        return None
    if type(values) is not dict:
        return None
    if maxlen is not None and len(values) + adding > maxlen:
        return None
    return values


_SCALARS = (str, bool, int, float)


def write(values: dict[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any] | None:
    """Attributes into the dict as the SDK stores them (None values skipped, sequences as
    tuples). From the first value the SDK would have to look at (an empty key, another type,
    a mixed sequence: a user's extra attributes) on, the rest is returned for the SDK, so the
    order of attributes is kept."""
    items = iter(attributes.items())
    for key, value in items:
        if value is None:
            continue
        kind = type(value)
        if kind in _SCALARS and key and type(key) is str:
            values.pop(key, None)  # (the SDK moves a key set again to the end)
            values[key] = value
            continue
        if (kind is list or kind is tuple) and key and type(key) is str:
            first = type(value[0]) if value else str
            if first in _SCALARS and all(type(v) is first for v in value):
                values.pop(key, None)
                values[key] = tuple(value)
                continue
        rest = {key: value}
        rest.update((k, v) for k, v in items if v is not None)
        return rest
    return None


def set_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """`span.set_attributes(attributes)` (None values skipped), directly when that is exact."""
    lock = getattr(span, "_lock", None)
    inner = getattr(getattr(span, "_attributes", None), "_lock", None)
    if lock is not None and inner is not None and type(span) in _sdk_span_types():
        # The locks the SDK's set_attributes takes, in its order (span, then attributes).
        with lock, inner:
            values = attribute_dict(span, len(attributes))
            rest = write(values, attributes) if values is not None else None
        if values is not None:
            if rest:
                span.set_attributes(rest)
            return
    span.set_attributes({k: v for k, v in attributes.items() if v is not None})


# ------------------------------------------------------------------- starting without them


class ProviderCheck:
    """A verdict about a tracer and its provider's processors and sampler, decided once and
    kept until any of the three is another object (held, not by id: ids are reused)."""

    __slots__ = ("_decide", "_last")

    def __init__(self, decide: Callable[[Any, Any, Any], bool]) -> None:
        self._decide = decide  # (tracer, processors, sampler) -> verdict
        self._last: tuple[Any, Any, Any, bool] | None = None

    def __call__(self, tracer: Any) -> bool:
        multi = getattr(tracer, "span_processor", None)
        processors = getattr(multi, "_span_processors", None)
        sampler = getattr(tracer, "sampler", None)
        last = self._last  # (one tuple: a reader on another thread sees a whole verdict)
        if last is not None and last[0] is tracer and last[1] is processors and last[2] is sampler:
            return last[3]
        ok = self._decide(tracer, processors, sampler)
        self._last = (tracer, processors, sampler, ok)
        return ok

    def forget(self) -> None:
        """Decide again on the next call."""
        self._last = None


def _attributes_later(tracer: Any, processors: Any, sampler: Any) -> bool:
    return _sdk_tracer(tracer) and _blind(sampler) and _processors_ok(processors)


# Whether spans of a tracer may be started without their attributes, written right after: an
# SDK tracer whose sampler and processors never read attributes at start.
start_attributes_later: Final = ProviderCheck(_attributes_later)


def forget() -> None:
    """Check again on the next span (configure() changed our pipeline's processors)."""
    start_attributes_later.forget()


def _sdk_tracer(tracer: Any) -> bool:
    module = sys.modules.get("opentelemetry.sdk.trace")
    return module is not None and type(tracer) is module.Tracer


def _blind(sampler: Any, depth: int = 0) -> bool:
    """The SDK's samplers that decide without looking at attributes."""
    sampling = sys.modules.get("opentelemetry.sdk.trace.sampling")
    if sampling is None or depth > 4:
        return False
    kind = type(sampler)
    if kind in (sampling.StaticSampler, sampling.TraceIdRatioBased):
        return True
    if kind in (sampling.ParentBased, sampling.ParentBasedTraceIdRatio):
        return all(
            _blind(getattr(sampler, name, None), depth + 1)
            for name in (
                "_root",
                "_remote_parent_sampled",
                "_remote_parent_not_sampled",
                "_local_parent_sampled",
                "_local_parent_not_sampled",
            )
        )
    return False


blind_sampler = _blind


def _processors_ok(processors: Any) -> bool:
    if not isinstance(processors, tuple):
        return False
    export = sys.modules.get("opentelemetry.sdk.trace.export")
    known: tuple[type, ...] = (
        (export.BatchSpanProcessor, export.SimpleSpanProcessor) if export is not None else ()
    )
    for processor in processors:
        kind = type(processor)
        if kind in known:
            continue
        inner = getattr(processor, "processors", None)
        # Our pipeline: fine if what it fans out to does not read attributes at start.
        if (
            getattr(kind, "agentsignals_pipeline", False)
            and isinstance(inner, tuple)
            and all(
                type(p) in known or getattr(type(p), "reads_attributes_on_start", True) is False
                for p in inner
            )
        ):
            continue
        return False
    return True
