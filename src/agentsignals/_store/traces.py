"""Typed spans to ``otel_traces`` rows and back.

Writing follows what the Collector's ClickHouse exporter writes for the same span: hex ids
(``ParentSpanId`` empty for a root), the start time in ``Timestamp``, ``Duration`` in ns,
``SpanKind``/``StatusCode`` as the collector's names (``Internal``, ``Error``, ...),
``ServiceName`` from the resource's ``service.name``, and every attribute value as a string the
way the collector's ``AsString`` renders it: ints in decimal, bools ``true``/``false``, doubles
like JavaScript numbers (``1``, ``0.5``, ``1e-7``), arrays as JSON.

Reading restores the attribute types from the semantic convention's registry
(:data:`agentsignals.semconv.ATTRIBUTE_TYPES`): a key declared int, double, boolean or an array
type gets its Python type back; every other key stays a string, as in the table. A span whose
end precedes its start is stored with ``Duration`` 0 (the column is unsigned) and comes back
with ``end_ns == start_ns``. Trace state, links and the scope version are not part of
:class:`Span` and are written empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final, TypeAlias, TypeVar

import msgspec

from agentsignals import semconv
from agentsignals._spans.decode import _without_gc
from agentsignals._spans.model import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Attributes,
    AttrScalar,
    AttrValue,
    Event,
    Span,
)

__all__ = [
    "INSERT_COLUMNS",
    "SELECT_COLUMNS",
    "SpanRowDecoder",
    "SpanRowEncoder",
    "attr_to_str",
    "restore_attributes",
]

# The exporter's names (pdata's SpanKind/StatusCode String()), by OTLP number.
_KIND_NAMES: Final = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS_NAMES: Final = {STATUS_UNSET: "Unset", STATUS_OK: "Ok", STATUS_ERROR: "Error"}
# Read both the current names and the older exporter's SPAN_KIND_* / STATUS_CODE_* names.
_KIND_NUMBERS: Final = {
    **{name.lower(): i for i, name in enumerate(_KIND_NAMES)},
    **{f"span_kind_{name.lower()}": i for i, name in enumerate(_KIND_NAMES)},
}
_STATUS_NUMBERS: Final = {
    **{name.lower(): code for code, name in _STATUS_NAMES.items()},
    **{f"status_code_{name.lower()}": code for code, name in _STATUS_NAMES.items()},
}

INSERT_COLUMNS: Final = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)
"""Columns of an insert, in the order of :meth:`SpanRowEncoder.row`."""

SELECT_COLUMNS: Final = (
    "toUnixTimestamp64Nano(Timestamp)",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "SpanName",
    "SpanKind",
    "Duration",
    "SpanAttributes",
    "StatusCode",
    "StatusMessage",
    "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp)",
    "Events.Name",
    "Events.Attributes",
    "ResourceAttributes",
    "ScopeName",
)
"""Expressions a span is read from, in the order :class:`SpanRowDecoder` expects."""

_Row: TypeAlias = tuple[
    int,
    str,
    str,
    str,
    str,
    str,
    int,
    dict[str, str],
    str,
    str,
    list[int],
    list[str],
    list[dict[str, str]],
    dict[str, str],
    str,
]


# ----------------------------------------------------------------------------- writing


def _float_str(value: float) -> str:
    """A double as the collector writes it (JavaScript number formatting)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(value).split("e")
        power = int(exponent)
        return f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


_json_encode = msgspec.json.Encoder().encode


def attr_to_str(value: AttrValue) -> str:
    """One attribute value as its ``otel_traces`` string."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _float_str(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        return _json_encode(value).decode()
    return str(value)


def _attrs_to_strings(attrs: Attributes) -> dict[str, str]:
    return {k: v if type(v) is str else attr_to_str(v) for k, v in attrs.items()}


_EMPTY: Final[list[Any]] = []  # shared, only ever encoded


_A = TypeVar("_A")
_R = TypeVar("_R")


def _gc_paused(fn: Callable[[_A], _R], arg: _A) -> _R:
    """``fn(arg)`` with the cyclic GC paused, through the OTLP decoders' shared pause:
    building or decoding rows allocates many containers that all survive, so collections
    meanwhile are wasted work."""
    box: list[_R] = []

    def run(a: _A) -> list[Span]:
        box.append(fn(a))
        return []

    _without_gc(run, arg)
    return box[0]


def _ts(ns: int) -> str:
    """Unix ns as ``seconds.nanoseconds``: how DateTime64(9) parses an exact instant."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return f"{seconds}.{frac:09d}"


class SpanRowEncoder:
    """Encodes spans as JSONCompactEachRow lines for :data:`INSERT_COLUMNS`.

    Resource attributes are converted once per resource object (spans of one resource share
    it), so keep one encoder per stream of spans.
    """

    def __init__(self) -> None:
        self._resources: dict[int, tuple[Attributes, dict[str, str], str]] = {}
        self._encoder = msgspec.json.Encoder()

    def _resource(self, resource: Attributes) -> tuple[dict[str, str], str]:
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1], cached[2]
        if len(self._resources) > 4096:
            self._resources.clear()
        strings = _attrs_to_strings(resource)
        service = resource.get("service.name")
        name = service if isinstance(service, str) else ""
        self._resources[id(resource)] = (resource, strings, name)
        return strings, name

    def row(self, span: Span) -> list[Any]:
        resource, service = self._resource(span.resource)
        events = span.events
        kind = span.kind
        if events:
            event_times = [_ts(e.time_ns) for e in events]
            event_names = [e.name for e in events]
            event_attrs = [_attrs_to_strings(e.attributes) for e in events]
        else:
            event_times = event_names = event_attrs = _EMPTY
        return [
            _ts(span.start_ns),
            span.trace_id,
            span.span_id,
            span.parent_span_id or "",
            "",
            span.name,
            _KIND_NAMES[kind] if 0 <= kind < len(_KIND_NAMES) else _KIND_NAMES[0],
            service,
            resource,
            span.scope_name,
            "",
            _attrs_to_strings(span.attributes),
            max(0, span.end_ns - span.start_ns),
            _STATUS_NAMES.get(span.status_code, "Unset"),
            span.status_message,
            event_times,
            event_names,
            event_attrs,
            _EMPTY,
            _EMPTY,
            _EMPTY,
            _EMPTY,
        ]

    def encode(self, spans: Sequence[Span]) -> bytes:
        """JSONCompactEachRow lines, one per span (the cyclic GC paused meanwhile)."""
        return _gc_paused(self._encode, spans)

    def _encode(self, spans: Sequence[Span]) -> bytes:
        return self._encoder.encode_lines([self.row(s) for s in spans])


# ----------------------------------------------------------------------------- reading


def _int_or_str(text: str) -> AttrValue:
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() else text


def _float_or_str(text: str) -> AttrValue:
    try:
        return float(text)
    except ValueError:
        return text


def _bool_or_str(text: str) -> AttrValue:
    if text == "true":
        return True
    if text == "false":
        return False
    return text


_json_decode = msgspec.json.Decoder(list[str | int | float | bool]).decode


def _array(item: Callable[[AttrScalar], AttrScalar | None]) -> Callable[[str], AttrValue]:
    def convert(text: str) -> AttrValue:
        if not text.startswith("["):
            return text
        try:
            values = _json_decode(text)
        except msgspec.DecodeError:
            return text
        out: list[AttrScalar] = []
        for v in values:
            converted = item(v)
            if converted is None:
                return text
            out.append(converted)
        return out

    return convert


def _item_int(v: AttrScalar) -> AttrScalar | None:
    if type(v) is int:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v if isinstance(v, str) else None


def _item_float(v: AttrScalar) -> AttrScalar | None:
    if isinstance(v, bool):
        return None
    return float(v) if isinstance(v, int | float) else v


def _item_bool(v: AttrScalar) -> AttrScalar | None:
    return v if isinstance(v, bool | str) else None


def _item_str(v: AttrScalar) -> AttrScalar | None:
    return v if isinstance(v, str) else attr_to_str(v)


_BY_TYPE: Final[dict[str, Callable[[str], AttrValue]]] = {
    "int": _int_or_str,
    "double": _float_or_str,
    "boolean": _bool_or_str,
    "string[]": _array(_item_str),
    "int[]": _array(_item_int),
    "double[]": _array(_item_float),
    "boolean[]": _array(_item_bool),
}
CONVERTERS: Final[dict[str, Callable[[str], AttrValue]]] = {
    key: _BY_TYPE[kind] for key, kind in semconv.ATTRIBUTE_TYPES.items() if kind in _BY_TYPE
}
"""Attribute key -> the function that restores its declared type from the stored string."""


def restore_attributes(strings: dict[str, str]) -> Attributes:
    """Attribute values with their declared types restored (in place; returns the dict)."""
    attrs: Attributes = strings  # type: ignore[assignment]
    converters = CONVERTERS
    for key, value in strings.items():
        convert = converters.get(key)
        if convert is not None:
            attrs[key] = convert(value)
    return attrs


class SpanRowDecoder:
    """Decodes JSONCompactEachRow lines of :data:`SELECT_COLUMNS` into :class:`Span`.

    Spans with the same resource attributes share one resource dict, as decoded spans do.
    """

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(_Row)
        self._resources: dict[tuple[tuple[str, str], ...], Attributes] = {}

    def _resource(self, strings: dict[str, str]) -> Attributes:
        key = tuple(strings.items())
        resource = self._resources.get(key)
        if resource is None:
            if len(self._resources) > 4096:
                self._resources.clear()
            resource = restore_attributes(strings)
            self._resources[key] = resource
        return resource

    def decode_lines(self, data: bytes) -> list[Span]:
        """The spans of some complete JSONCompactEachRow lines (the cyclic GC paused)."""
        return _gc_paused(self._decode, data)

    def _decode(self, data: bytes) -> list[Span]:
        span = self.span
        return [span(row) for row in self._decoder.decode_lines(data)]

    def span(self, row: _Row) -> Span:
        (
            start,
            trace_id,
            span_id,
            parent,
            name,
            kind,
            duration,
            attrs,
            status,
            status_message,
            event_times,
            event_names,
            event_attrs,
            resource,
            scope,
        ) = row
        events = (
            [
                Event(name=n, time_ns=t, attributes=restore_attributes(a))
                for t, n, a in zip(event_times, event_names, event_attrs, strict=False)
            ]
            if event_names
            else []
        )
        return Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent or None,
            name=name,
            kind=_KIND_NUMBERS.get(kind.lower(), 0),
            start_ns=start,
            end_ns=start + duration,
            attributes=restore_attributes(attrs),
            status_code=_STATUS_NUMBERS.get(status.lower(), STATUS_UNSET),
            status_message=status_message,
            events=events,
            resource=self._resource(resource),
            scope_name=scope,
        )
