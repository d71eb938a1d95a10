"""Encode typed spans back into OTLP: JSON lines for files, protobuf for OTLP endpoints.

The inverse of decode.py, used where spans are produced outside the OpenTelemetry SDK
(imported trajectories, verification spans), so they reach the same files and backends.

Encoding never fails on values a hostile input can smuggle in: an integer outside OTLP's int64
is written as a double (its magnitude kept), a time outside uint64 is clamped, and a lone
surrogate (from a `\\ud800` escape in a trajectory, or a file name that is not UTF-8) becomes
U+FFFD, because OTLP strings are UTF-8. Well-formed spans take the fast path untouched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, cast

import msgspec

from agentsignals._spans.model import AttrValue, Span

_encoder = msgspec.json.Encoder()
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def _double(value: int) -> float:
    """An integer too large for int64, as the nearest double (infinite past float range)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _time(ns: int) -> int:
    return ns if 0 <= ns <= _UINT64_MAX else min(max(ns, 0), _UINT64_MAX)


def _text(value: str) -> str:
    """A string OTLP can carry (UTF-8): lone surrogates replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def _clean_value(value: AttrValue) -> AttrValue:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return [_text(v) if isinstance(v, str) else v for v in value]
    return value


def _clean_attrs(attrs: dict[str, AttrValue]) -> dict[str, AttrValue]:
    return {_text(k): _clean_value(v) for k, v in attrs.items()}


def representable(spans: Sequence[Span]) -> list[Span]:
    """Copies of spans with every string made valid UTF-8 (the slow path of the encoders)."""
    resources: dict[int, dict[str, AttrValue]] = {}
    out: list[Span] = []
    for s in spans:
        resource = resources.get(id(s.resource))
        if resource is None:
            resource = resources[id(s.resource)] = _clean_attrs(s.resource)
        out.append(
            msgspec.structs.replace(
                s,
                name=_text(s.name),
                attributes=_clean_attrs(s.attributes),
                status_message=_text(s.status_message),
                events=[
                    msgspec.structs.replace(
                        e, name=_text(e.name), attributes=_clean_attrs(e.attributes)
                    )
                    for e in s.events
                ],
                resource=resource,
                scope_name=_text(s.scope_name),
            )
        )
    return out


def _any_value(value: AttrValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(value)}
        return _any_value(_double(value))
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attributes(attrs: dict[str, AttrValue]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in attrs.items()]


def _group(spans: Iterable[Span]) -> list[tuple[dict[str, AttrValue], str, list[Span]]]:
    groups: dict[tuple[int, str], tuple[dict[str, AttrValue], str, list[Span]]] = {}
    for span in spans:
        key = (id(span.resource), span.scope_name)
        if key not in groups:
            groups[key] = (span.resource, span.scope_name, [])
        groups[key][2].append(span)
    return list(groups.values())


def to_otlp_json_request(spans: Sequence[Span], *, schema_url: str | None = None) -> dict[str, Any]:
    """One ExportTraceServiceRequest as OTLP/JSON-shaped dicts."""
    by_resource: dict[int, dict[str, Any]] = {}
    for resource, scope, group in _group(spans):
        entry = by_resource.setdefault(
            id(resource),
            {"resource": {"attributes": _attributes(resource)}, "scopeSpans": []},
        )
        scope_spans: dict[str, Any] = {"scope": {"name": scope}, "spans": []}
        if schema_url:
            scope_spans["schemaUrl"] = schema_url
        for s in group:
            item: dict[str, Any] = {
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                "kind": s.kind,
                "startTimeUnixNano": str(
                    s.start_ns if 0 <= s.start_ns <= _UINT64_MAX else _time(s.start_ns)
                ),
                "endTimeUnixNano": str(
                    s.end_ns if 0 <= s.end_ns <= _UINT64_MAX else _time(s.end_ns)
                ),
                "attributes": _attributes(s.attributes),
            }
            if s.parent_span_id:
                item["parentSpanId"] = s.parent_span_id
            if s.events:
                item["events"] = [
                    {
                        "timeUnixNano": str(_time(e.time_ns)),
                        "name": e.name,
                        "attributes": _attributes(e.attributes),
                    }
                    for e in s.events
                ]
            if s.status_code:
                status: dict[str, Any] = {"code": s.status_code}
                if s.status_message:
                    status["message"] = s.status_message
                item["status"] = status
            scope_spans["spans"].append(item)
        entry["scopeSpans"].append(scope_spans)
    return {"resourceSpans": list(by_resource.values())}


def encode_otlp_json(spans: Sequence[Span], *, schema_url: str | None = None) -> bytes:
    """One OTLP/JSON export request, as bytes (no trailing newline)."""
    try:
        return _encoder.encode(to_otlp_json_request(spans, schema_url=schema_url))
    except UnicodeEncodeError:
        return _encoder.encode(to_otlp_json_request(representable(spans), schema_url=schema_url))


def encode_otlp_protobuf(spans: Sequence[Span], *, schema_url: str | None = None) -> bytes:
    """One OTLP/protobuf ExportTraceServiceRequest, serialized."""
    try:
        return _encode_protobuf(spans, schema_url)
    except UnicodeEncodeError:
        return _encode_protobuf(representable(spans), schema_url)


def _encode_protobuf(spans: Sequence[Span], schema_url: str | None) -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    def any_value(value: AttrValue) -> Any:
        if isinstance(value, bool):
            return common_pb2.AnyValue(bool_value=value)
        if isinstance(value, int):
            if _INT64_MIN <= value <= _INT64_MAX:
                return common_pb2.AnyValue(int_value=value)
            return common_pb2.AnyValue(double_value=_double(value))
        if isinstance(value, float):
            return common_pb2.AnyValue(double_value=value)
        if isinstance(value, list):
            return common_pb2.AnyValue(
                array_value=common_pb2.ArrayValue(values=[any_value(v) for v in value])
            )
        return common_pb2.AnyValue(string_value=str(value))

    def key_values(attrs: dict[str, AttrValue]) -> list[Any]:
        return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]

    request = trace_service_pb2.ExportTraceServiceRequest()
    resources: dict[int, Any] = {}
    for resource, scope, group in _group(spans):
        rs = resources.get(id(resource))
        if rs is None:
            rs = request.resource_spans.add()
            rs.resource.attributes.extend(key_values(resource))
            resources[id(resource)] = rs
        ss = rs.scope_spans.add()
        ss.scope.name = scope
        if schema_url:
            ss.schema_url = schema_url
        for s in group:
            span = trace_pb2.Span(
                trace_id=bytes.fromhex(s.trace_id),
                span_id=bytes.fromhex(s.span_id),
                name=s.name,
                kind=cast(Any, s.kind),
                start_time_unix_nano=_time(s.start_ns),
                end_time_unix_nano=_time(s.end_ns),
                attributes=key_values(s.attributes),
            )
            if s.parent_span_id:
                span.parent_span_id = bytes.fromhex(s.parent_span_id)
            for e in s.events:
                span.events.add(
                    time_unix_nano=_time(e.time_ns),
                    name=e.name,
                    attributes=key_values(e.attributes),
                )
            if s.status_code:
                span.status.code = cast(Any, s.status_code)
                span.status.message = s.status_message
            ss.spans.append(span)
    return bytes(request.SerializeToString())
