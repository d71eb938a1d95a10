"""The OTLP/JSON encoder must describe spans exactly as the SDK's protobuf encoder does.

The reference is ``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``; the
JSON produced here is parsed back with ``google.protobuf.json_format`` and compared field for
field, so any drift in naming, grouping or value encoding shows up as a diff.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from google.protobuf.json_format import MessageToDict, Parse
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from agentsignals._export.otlp_json import build_request, encode_request

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids_to_base64(request: dict[str, Any]) -> dict[str, Any]:
    # json_format follows plain proto3 JSON (base64 bytes); OTLP/JSON uses hex for ids.
    def convert(obj: dict[str, Any]) -> None:
        for key in _ID_KEYS:
            if key in obj:
                obj[key] = base64.b64encode(bytes.fromhex(obj[key])).decode("ascii")

    for rs in request.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                convert(span)
                for link in span.get("links", []):
                    convert(link)
    return request


def _assert_equivalent(spans: list[ReadableSpan]) -> dict[str, Any]:
    raw = encode_request(spans)
    decoded = json.loads(raw)
    parsed = Parse(json.dumps(_hex_ids_to_base64(json.loads(raw))), ExportTraceServiceRequest())
    expected = encode_spans(spans)
    assert MessageToDict(parsed) == MessageToDict(expected)
    assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    return decoded  # type: ignore[no-any-return]


def _iter_spans(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for rs in request.get("resourceSpans", []):
        for ss in rs["scopeSpans"]:
            yield from ss["spans"]


def _provider(
    resource: Resource, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, span_limits=limits, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


ALL_TYPES: dict[str, Any] = {
    "str": 'héllo ✓ "quoted"\n\t🙂',
    "empty.str": "",
    "bool.true": True,
    "bool.false": False,
    "int": 42,
    "int.zero": 0,
    "int.negative": -7,
    "int.big": 2**62 + 12345,
    "int.min": -(2**63),
    "float": 3.25,
    "float.zero": 0.0,
    "float.negative": -1e-300,
    "float.huge": 1.7976931348623157e308,
    "arr.str": ("a", "", "ü"),
    "arr.bool": (True, False),
    "arr.int": (1, -2, 2**63 - 1),
    "arr.float": (0.5, -2.0),
    "arr.empty": (),
}


def _rich_spans() -> list[ReadableSpan]:
    res_a = Resource.create({"service.name": "agent-a", "host.cpus": 8, "labels": ["x", "y"]})
    res_a = Resource(res_a.attributes, schema_url="https://opentelemetry.io/schemas/1.26.0")
    res_b = Resource({"service.name": "agent-b"})
    prov_a, exp_a = _provider(res_a)
    prov_b, exp_b = _provider(
        res_b,
        SpanLimits(
            max_span_attributes=2,
            max_events=1,
            max_links=1,
            max_event_attributes=1,
            max_link_attributes=1,
        ),
    )

    tracer_one = prov_a.get_tracer("scope.one", "1.2.3", schema_url="https://example/schema")
    tracer_two = prov_a.get_tracer("scope.two", attributes={"scope.attr": "v", "n": 2})
    tracer_b = prov_b.get_tracer("scope.b")

    with tracer_one.start_as_current_span("trial", kind=SpanKind.SERVER, attributes=ALL_TYPES):
        with tracer_two.start_as_current_span("turn", kind=SpanKind.CLIENT) as turn:
            turn.add_event("started", {"ev.int": 1, "ev.arr": ("p", "q")}, timestamp=1_000)
            turn.add_event("bare")
            with tracer_one.start_as_current_span("tool", kind=SpanKind.PRODUCER) as tool:
                tool.set_status(Status(StatusCode.ERROR, "boom: exit 2"))
                tool.set_attribute("error.type", "ExitCode")
            other = tracer_one.start_span("consumer", kind=SpanKind.CONSUMER)
            other.set_status(Status(StatusCode.OK))
            other.end()
        linked = tracer_two.start_span(
            "linked",
            links=[
                Link(turn.get_span_context(), {"link.attr": "x", "link.n": 1.5}),
                Link(tool.get_span_context()),
            ],
        )
        linked.end()

    remote_ctx = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "abc"), ("other", "1")]),
    )
    parent_ctx = trace_api.set_span_in_context(trace_api.NonRecordingSpan(remote_ctx))
    token = otel_context.attach(parent_ctx)
    try:
        limited = tracer_b.start_span(
            "limited",
            attributes={"a": 1, "b": 2, "c": 3, "d": 4},
            links=[
                Link(turn.get_span_context()),
                # No trace state here: the SDK encoder drops Link trace state (see below).
                Link(SpanContext(7, 8, is_remote=True), {"l1": 1, "l2": 2}),
            ],
        )
        # Bounded lists keep the newest entries, so the surviving event is the last one.
        limited.add_event("e1")
        limited.add_event("e2")
        limited.add_event("e3", {"x": 1, "y": 2})
        limited.end()
    finally:
        otel_context.detach(token)

    return list(exp_a.get_finished_spans()) + list(exp_b.get_finished_spans())


def test_equivalent_to_sdk_protobuf_encoder() -> None:
    spans = _rich_spans()
    decoded = _assert_equivalent(spans)

    assert len(decoded["resourceSpans"]) == 2
    scopes = [ss["scope"].get("name") for ss in decoded["resourceSpans"][0]["scopeSpans"]]
    assert scopes == ["scope.one", "scope.two"]
    assert decoded["resourceSpans"][0]["schemaUrl"].endswith("1.26.0")

    by_name = {s["name"]: s for s in _iter_spans(decoded)}
    assert set(by_name) == {"trial", "turn", "tool", "consumer", "linked", "limited"}
    for span in _iter_spans(decoded):
        assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
        assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
        assert isinstance(span["startTimeUnixNano"], str)
        assert isinstance(span["endTimeUnixNano"], str)
        assert isinstance(span["kind"], int)

    trial = by_name["trial"]
    assert "parentSpanId" not in trial
    values = {kv["key"]: kv["value"] for kv in trial["attributes"]}
    assert values["int"] == {"intValue": "42"}
    assert values["int.min"] == {"intValue": str(-(2**63))}
    assert values["float"] == {"doubleValue": 3.25}
    assert values["bool.false"] == {"boolValue": False}
    assert values["empty.str"] == {"stringValue": ""}
    assert values["arr.int"]["arrayValue"]["values"][2] == {"intValue": str(2**63 - 1)}
    assert values["arr.empty"] == {"arrayValue": {}}

    tool = by_name["tool"]
    assert tool["parentSpanId"] == by_name["turn"]["spanId"]
    assert tool["status"] == {"code": 2, "message": "boom: exit 2"}
    assert by_name["consumer"]["status"] == {"code": 1}
    assert by_name["turn"]["status"] == {}
    assert by_name["turn"]["events"][0]["timeUnixNano"] == "1000"

    limited = by_name["limited"]
    assert limited["parentSpanId"] == "00f067aa0ba902b7"
    assert limited["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert limited["traceState"] == "vendor=abc,other=1"
    assert limited["flags"] == 0x300
    assert limited["droppedAttributesCount"] == 2
    assert limited["droppedEventsCount"] == 2
    assert limited["droppedLinksCount"] == 1
    assert limited["events"][0]["droppedAttributesCount"] == 1
    assert limited["links"][0]["droppedAttributesCount"] == 1
    assert limited["links"][0]["flags"] == 0x300


def test_non_finite_doubles_use_proto_json_strings() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"r": 1}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span(
        "s",
        attributes={
            "nan": math.nan,
            "inf": math.inf,
            "ninf": -math.inf,
            "arr": (1.0, math.inf, math.nan),
        },
    ):
        pass
    spans = list(exporter.get_finished_spans())
    decoded = _assert_equivalent(spans)
    attrs = {kv["key"]: kv["value"] for kv in next(_iter_spans(decoded))["attributes"]}
    assert attrs["nan"] == {"doubleValue": "NaN"}
    assert attrs["inf"] == {"doubleValue": "Infinity"}
    assert attrs["ninf"] == {"doubleValue": "-Infinity"}
    assert attrs["arr"]["arrayValue"]["values"][1:] == [
        {"doubleValue": "Infinity"},
        {"doubleValue": "NaN"},
    ]


def _ctx(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=False)


def test_hand_built_spans_bytes_maps_equal_resources_and_no_scope() -> None:
    # Distinct-but-equal Resource/scope objects must be merged like the SDK's dict grouping.
    res1 = Resource({"service.name": "x"})
    res2 = Resource({"service.name": "x"})
    scope1 = InstrumentationScope("s", "1")
    scope2 = InstrumentationScope("s", "1")
    spans = [
        ReadableSpan(
            "a",
            context=_ctx(1, 1),
            resource=res1,
            instrumentation_scope=scope1,
            attributes={"blob": b"\x00\xffbin", "map": {"k": 1, "nested": {"z": [True]}}},
            start_time=10,
            end_time=20,
            events=[Event("ev", {"b": b"x"}, timestamp=15)],
        ),
        ReadableSpan(
            "b",
            context=_ctx(1, 2),
            parent=_ctx(1, 1),
            resource=res2,
            instrumentation_scope=scope2,
            start_time=11,
            end_time=19,
        ),
        ReadableSpan(
            "c",
            context=_ctx(2**128 - 1, 2**64 - 1),
            resource=res2,
            instrumentation_scope=None,
            start_time=1,
            end_time=2,
        ),
    ]
    decoded = _assert_equivalent(spans)
    assert len(decoded["resourceSpans"]) == 1
    scope_spans = decoded["resourceSpans"][0]["scopeSpans"]
    assert [len(ss["spans"]) for ss in scope_spans] == [2, 1]
    assert scope_spans[1]["scope"] == {}
    c = scope_spans[1]["spans"][0]
    assert c["traceId"] == "f" * 32 and c["spanId"] == "f" * 16
    a = scope_spans[0]["spans"][0]
    attrs = {kv["key"]: kv["value"] for kv in a["attributes"]}
    assert attrs["blob"] == {"bytesValue": base64.b64encode(b"\x00\xffbin").decode()}
    assert "kvlistValue" in attrs["map"]


def test_unencodable_attribute_is_dropped_not_fatal() -> None:
    span = ReadableSpan(
        "s",
        context=_ctx(1, 1),
        resource=Resource({}),
        attributes={"ok": 1, "too.big": 2**64, "weird": object(), "after": "x"},
        start_time=1,
        end_time=2,
    )
    decoded = json.loads(encode_request([span]))
    keys = [kv["key"] for kv in next(_iter_spans(decoded))["attributes"]]
    assert keys == ["ok", "after"]


def test_lone_surrogates_do_not_lose_the_batch() -> None:
    span = ReadableSpan(
        "bad\udc80name",
        context=_ctx(1, 1),
        resource=Resource({}),
        attributes={"path": "/tmp/\udcff"},
        start_time=1,
        end_time=2,
    )
    decoded = json.loads(encode_request([span]))
    assert next(_iter_spans(decoded))["name"] == "bad?name"


def test_link_trace_state_is_kept() -> None:
    # The SDK encoder drops Link trace state; OTLP has a field for it, so it is kept here.
    link_ctx = SpanContext(5, 6, is_remote=True, trace_state=TraceState([("k", "v")]))
    span = ReadableSpan(
        "s",
        context=_ctx(1, 1),
        resource=Resource({}),
        links=[Link(link_ctx)],
        start_time=1,
        end_time=2,
    )
    link = next(_iter_spans(json.loads(encode_request([span]))))["links"][0]
    assert link["traceState"] == "k=v"
    assert link["flags"] == 0x300


def test_empty_batch() -> None:
    assert encode_request([]) == b"{}"
    assert build_request([]) == {}
