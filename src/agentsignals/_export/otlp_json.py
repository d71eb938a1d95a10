"""Encode SDK spans as one OTLP/JSON ``ExportTraceServiceRequest``.

Why not ``protobuf.json_format``: building protobuf messages and walking them again to produce
JSON costs several times more, and this runs on every export. Why msgspec Structs rather than
dicts: a batch allocates dozens of containers per span, and with dicts most of the encode time
goes to the cyclic garbage collector scanning them; Structs declared ``gc=False`` are invisible
to it and also encode faster. ``omit_defaults`` gives the protobuf-JSON rule of leaving out
default-valued fields for free.

The output follows OTLP/JSON (lowerCamelCase names, hex trace/span ids, 64-bit integers as
decimal strings, enums as integers), so it is interchangeable with what an OpenTelemetry
Collector writes and parses back into the message the SDK's own OTLP encoder produces.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

__all__ = ["build_request", "encode_request"]

_log = logging.getLogger("agentsignals")

# One encoder for the process: creating one per call shows up in profiles of small batches.
_ENCODER = msgspec.json.Encoder()

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# SpanFlags bits. The SDK's OTLP encoder always records that it knows whether the parent is
# remote; mirror it so both encoders describe the same span identically.
_FLAG_HAS_IS_REMOTE = 0x100
_FLAG_IS_REMOTE = 0x200

_KIND_INTERNAL = SpanKind.INTERNAL
_KIND_SERVER = SpanKind.SERVER
_KIND_CLIENT = SpanKind.CLIENT
_KIND_PRODUCER = SpanKind.PRODUCER
_KIND_CONSUMER = SpanKind.CONSUMER

_STATUS_OK = StatusCode.OK
_STATUS_ERROR = StatusCode.ERROR

# Shared, never mutated: passing it avoids msgspec copying the `[]` default per instance.
_NO_ITEMS: list[Any] = []

# Value types already reported as unencodable; the SDK logs every time, which floods logs when
# one instrumentation keeps setting the same bad attribute.
_reported_bad_types: set[str] = set()


class _Message(msgspec.Struct, gc=False, rename="camel", omit_defaults=True):
    """Base for OTLP messages: camelCase keys, default-valued fields omitted, GC-untracked."""


class _StringValue(_Message):
    string_value: str


class _BoolValue(_Message):
    bool_value: bool


class _IntValue(_Message):
    int_value: str


class _DoubleValue(_Message):
    double_value: Any  # float, or "NaN"/"Infinity"/"-Infinity"


class _BytesValue(_Message):
    bytes_value: str


class _Values(_Message):
    values: list[Any] = []


class _ArrayValue(_Message):
    array_value: _Values


class _KvlistValue(_Message):
    kvlist_value: _Values


class _EmptyValue(_Message):
    pass


class _KeyValue(msgspec.Struct, gc=False):
    key: str
    value: Any


class _Event(_Message):
    time_unix_nano: str
    name: str
    attributes: list[_KeyValue] = []
    dropped_attributes_count: int = 0


class _Link(_Message):
    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: list[_KeyValue] = []
    dropped_attributes_count: int = 0
    flags: int = 0


class _Status(_Message):
    message: str = ""
    code: int = 0


class _Span(_Message):
    trace_id: str
    span_id: str
    trace_state: str = ""
    parent_span_id: str = ""
    flags: int = 0
    name: str = ""
    kind: int = 0
    start_time_unix_nano: str = ""
    end_time_unix_nano: str = ""
    attributes: list[_KeyValue] = []
    dropped_attributes_count: int = 0
    events: list[_Event] = []
    dropped_events_count: int = 0
    links: list[_Link] = []
    dropped_links_count: int = 0
    # Always given a _Status, so never equal to this default: an empty status object is always
    # written, as the SDK and the Collector do.
    status: Any = None


class _Scope(_Message):
    name: str = ""
    version: str = ""
    attributes: list[_KeyValue] = []


class _ScopeSpans(_Message):
    scope: _Scope
    spans: list[_Span]
    schema_url: str = ""


class _Resource(_Message):
    attributes: list[_KeyValue] = []


class _ResourceSpans(_Message):
    resource: _Resource
    scope_spans: list[_ScopeSpans]
    schema_url: str = ""


class _Request(_Message):
    resource_spans: list[_ResourceSpans] = []


_EMPTY_VALUE = _EmptyValue()
_EMPTY_ARRAY = _ArrayValue(_Values(_NO_ITEMS))
_EMPTY_KVLIST = _KvlistValue(_Values(_NO_ITEMS))


class _UnencodableValue(TypeError):
    pass


def _double(value: float) -> _DoubleValue:
    # inf - inf and nan - nan are both nan, so this is a one-comparison finiteness test.
    if value - value == 0.0:
        return _DoubleValue(value)
    if value != value:
        return _DoubleValue("NaN")
    return _DoubleValue("Infinity" if value > 0 else "-Infinity")


def _any_value(value: object) -> _Message:
    # Exact type checks first: they are what SDK attributes almost always hold and are much
    # cheaper than isinstance chains. bool must be tested before int (bool subclasses int).
    t = type(value)
    if t is str:
        return _StringValue(value)  # type: ignore[arg-type]
    if t is bool:
        return _BoolValue(value)  # type: ignore[arg-type]
    if t is int:
        if _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            return _IntValue(str(value))
        raise _UnencodableValue(f"integer {value!r} does not fit in int64")
    if t is float:
        return _double(value)  # type: ignore[arg-type]
    if t is tuple or t is list:
        if not value:
            return _EMPTY_ARRAY
        return _ArrayValue(_Values([_any_value(v) for v in value]))  # type: ignore[attr-defined]
    return _any_value_slow(value)


def _any_value_slow(value: object) -> _Message:
    if value is None:
        return _EMPTY_VALUE
    if isinstance(value, bool):
        return _BoolValue(bool(value))
    if isinstance(value, str):
        return _StringValue(str(value))
    if isinstance(value, int):
        return _any_value(int(value))
    if isinstance(value, float):
        return _double(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return _BytesValue(base64.b64encode(value).decode("ascii"))
    if isinstance(value, Mapping):
        if not value:
            return _EMPTY_KVLIST
        return _KvlistValue(_Values([_KeyValue(str(k), _any_value(v)) for k, v in value.items()]))
    if isinstance(value, Sequence):
        if not value:
            return _EMPTY_ARRAY
        return _ArrayValue(_Values([_any_value(v) for v in value]))
    raise _UnencodableValue(f"unsupported attribute value type {type(value).__name__}")


def _key_values(attributes: Mapping[str, object]) -> list[_KeyValue]:
    try:
        return [
            _KeyValue(k, _StringValue(v) if type(v) is str else _any_value(v))
            for k, v in attributes.items()
        ]
    except (TypeError, ValueError):
        return _key_values_skipping_bad(attributes)


def _key_values_skipping_bad(attributes: Mapping[str, object]) -> list[_KeyValue]:
    out = []
    for key, value in attributes.items():
        try:
            out.append(_KeyValue(key, _any_value(value)))
        except (TypeError, ValueError) as exc:
            # Same policy as the SDK encoder: drop the one attribute, keep the span.
            kind = type(value).__name__
            if kind not in _reported_bad_types:
                _reported_bad_types.add(kind)
                _log.warning("dropping attribute %r that cannot be encoded as OTLP: %s", key, exc)
    return out


def _span_attributes(span: ReadableSpan) -> Mapping[str, object]:
    # ReadableSpan.attributes wraps BoundedAttributes in a MappingProxy whose items() makes two
    # Python-level __getitem__ calls per key; reading the SDK's backing dict directly halves the
    # attribute cost. Falls back to the public API if the internals ever change.
    inner = getattr(getattr(span, "_attributes", None), "_dict", None)
    if type(inner) is dict:
        return inner
    return span.attributes or {}


def _trace_state(entries: Iterable[tuple[str, str]]) -> str:
    return ",".join([f"{k}={v}" for k, v in entries])


def _kind(kind: SpanKind) -> int:
    # Identity tests: Enum.__hash__ is Python code, so a dict lookup would be slower.
    if kind is _KIND_INTERNAL:
        return 1
    if kind is _KIND_SERVER:
        return 2
    if kind is _KIND_CLIENT:
        return 3
    if kind is _KIND_PRODUCER:
        return 4
    if kind is _KIND_CONSUMER:
        return 5
    return 0


def _events(span: ReadableSpan) -> list[_Event]:
    out = []
    for event in span.events:
        attributes = event.attributes
        out.append(
            _Event(
                str(event.timestamp),
                event.name,
                _key_values(attributes) if attributes else _NO_ITEMS,
                event.dropped_attributes,
            )
        )
    return out


def _links(span: ReadableSpan) -> list[_Link]:
    out = []
    for link in span.links:
        ctx = link.context
        trace_state = ctx.trace_state
        attributes = link.attributes
        out.append(
            _Link(
                f"{ctx.trace_id:032x}",
                f"{ctx.span_id:016x}",
                _trace_state(trace_state.items()) if trace_state else "",
                _key_values(attributes) if attributes else _NO_ITEMS,
                getattr(link, "dropped_attributes", 0),
                _FLAG_HAS_IS_REMOTE | (_FLAG_IS_REMOTE if ctx.is_remote else 0),
            )
        )
    return out


def _encode_span(span: ReadableSpan) -> _Span:
    ctx = span.context
    trace_state = ctx.trace_state
    parent = span.parent
    start = span.start_time
    end = span.end_time
    attributes = _span_attributes(span)
    status = span.status
    code = status.status_code if status is not None else None
    # The public events/links properties copy the bounded lists under a lock; most spans have
    # neither, so test the backing containers before paying for the copy.
    has_events = getattr(span, "_events", True)
    has_links = getattr(span, "_links", True)
    return _Span(
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        _trace_state(trace_state.items()) if trace_state else "",
        f"{parent.span_id:016x}" if parent is not None else "",
        _FLAG_HAS_IS_REMOTE | (_FLAG_IS_REMOTE if parent is not None and parent.is_remote else 0),
        span.name,
        _kind(span.kind),
        str(start) if start is not None else "",
        str(end) if end is not None else "",
        _key_values(attributes) if attributes else _NO_ITEMS,
        span.dropped_attributes,
        _events(span) if has_events else _NO_ITEMS,
        span.dropped_events,
        _links(span) if has_links else _NO_ITEMS,
        span.dropped_links,
        _Status(
            (status.description or "") if status is not None else "",
            2 if code is _STATUS_ERROR else 1 if code is _STATUS_OK else 0,
        ),
    )


def _encode_scope(scope: InstrumentationScope | None) -> _Scope:
    if scope is None:
        return _Scope()
    attributes = scope.attributes
    return _Scope(
        scope.name or "",
        scope.version or "",
        _key_values(attributes) if attributes else _NO_ITEMS,
    )


def _merge_equal(groups: Iterable[tuple[Any, list[_Span]]]) -> list[tuple[Any, list[_Span]]]:
    # Grouping by id() keeps the per-span cost at one dict lookup (Resource.__hash__ serialises
    # all attributes to JSON). Distinct-but-equal objects are then merged here, over the few
    # distinct objects only, so the grouping matches the SDK's equality-based grouping.
    merged: list[tuple[Any, list[_Span]]] = []
    for key, members in groups:
        for existing_key, existing in merged:
            if existing_key is key or existing_key == key:
                existing.extend(members)
                break
        else:
            merged.append((key, members))
    return merged


def _build(spans: Sequence[ReadableSpan]) -> _Request:
    by_resource: dict[int, tuple[Resource, dict[int, tuple[Any, list[_Span]]]]] = {}
    for span in spans:
        resource = span.resource
        entry = by_resource.get(id(resource))
        if entry is None:
            entry = by_resource[id(resource)] = (resource, {})
        scope = span.instrumentation_scope
        scopes = entry[1]
        scope_entry = scopes.get(id(scope))
        if scope_entry is None:
            scope_entry = scopes[id(scope)] = (scope, [])
        scope_entry[1].append(_encode_span(span))

    # Merge distinct-but-equal resources, keeping each one's scope groups together.
    resources: list[tuple[Resource, list[tuple[Any, list[_Span]]]]] = []
    for resource, scopes in by_resource.values():
        for existing_resource, existing_scopes in resources:
            if existing_resource is resource or existing_resource == resource:
                existing_scopes.extend(scopes.values())
                break
        else:
            resources.append((resource, list(scopes.values())))

    resource_spans = []
    for resource, scope_groups in resources:
        if len(scope_groups) > 1:
            scope_groups = _merge_equal(scope_groups)
        scope_spans = [
            _ScopeSpans(
                _encode_scope(scope),
                encoded,
                (scope.schema_url or "") if scope is not None else "",
            )
            for scope, encoded in scope_groups
        ]
        attributes = resource.attributes
        resource_spans.append(
            _ResourceSpans(
                _Resource(_key_values(attributes) if attributes else _NO_ITEMS),
                scope_spans,
                resource.schema_url or "",
            )
        )
    return _Request(resource_spans)


def build_request(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Return the OTLP/JSON ``ExportTraceServiceRequest`` for ``spans`` as plain dicts/lists.

    Convenience for callers that want the decoded form; slower than ``encode_request``.
    """
    result: dict[str, Any] = msgspec.to_builtins(_build(spans))
    return result


def _scrub_strings(obj: Any) -> Any:
    # Lone surrogates (e.g. from os.fsdecode of undecodable file names) are valid Python str but
    # not UTF-8; replace them instead of losing the whole batch. Only runs after a failure.
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, dict):
        return {_scrub_strings(k): _scrub_strings(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub_strings(v) for v in obj]
    return obj


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """Encode ``spans`` as one OTLP/JSON ``ExportTraceServiceRequest`` (compact, no newline)."""
    request = _build(spans)
    try:
        return _ENCODER.encode(request)
    except UnicodeEncodeError:
        # to_builtins keeps str objects as they are, so the scrub can then fix them.
        return _ENCODER.encode(_scrub_strings(msgspec.to_builtins(request)))
