"""What Jaeger (or any OTLP backend) receives from an agent, checked on the wire.

Jaeger cannot run on the machines this project is built on, so this test stands where it would:
loopback OTLP/HTTP and OTLP/gRPC receivers take the exact requests the OpenTelemetry SDK's
exporters send for a run of the demo agent (a subprocess configured by
`exporters/jaeger/agentsignals.env`, with an OTLP/gRPC exporter next to the recipe's OTLP/HTTP one
so both carry the same spans). Every request is parsed as an `ExportTraceServiceRequest` and
checked against what the OTLP schema and our semantic convention require.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from agentsignals import semconv as sc

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the demo needs git")

ROOT = Path(__file__).resolve().parents[1]
Request = trace_service_pb2.ExportTraceServiceRequest

DRIVER = r"""
import sys, tempfile
from pathlib import Path
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
import agentsignals
from agentsignals._demo import create_repository, run_agent

# The recipe's exporter ("otlp" from the environment) and a gRPC one on the same pipeline.
agentsignals.configure(exporters=["otlp", Grpc(endpoint=sys.argv[1], insecure=True)])
with tempfile.TemporaryDirectory() as scratch:
    run_agent(create_repository(Path(scratch) / "textkit"))
agentsignals.shutdown()
"""


@dataclass
class Received:
    http: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    grpc: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(
        self, request: Request, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.received.lock:
            self.received.grpc.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def _load_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


@pytest.fixture(scope="module")
def received() -> Iterator[Received]:
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with got.lock:
                got.http.append((self.path, dict(self.headers.items()), body))
            response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(got), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}
        env.update(_load_env(ROOT / "exporters/jaeger/agentsignals.env"))
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{http.server_address[1]}"
        # Content on, to spans and events: the widest set of attributes a user can send.
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_AND_EVENT"
        result = subprocess.run(
            [sys.executable, "-c", DRIVER, f"127.0.0.1:{grpc_port}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        yield got
    finally:
        server.stop(grace=None)
        http.shutdown()
        http.server_close()


def _http_requests(got: Received) -> list[Request]:
    return [Request.FromString(body) for _, _, body in got.http]


def _spans(requests: list[Request]) -> list[tuple[Any, Any, trace_pb2.Span]]:
    return [
        (rs, ss, span)
        for request in requests
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def _value(v: common_pb2.AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _no_unknown_fields(message: Message, where: str = "request") -> None:
    assert len(UnknownFieldSet(message)) == 0, f"unknown fields in {where}"
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items = value if descriptor.is_repeated else [value]
        for i, item in enumerate(items):
            if isinstance(item, Message):
                _no_unknown_fields(item, f"{where}.{descriptor.name}[{i}]")


# The AnyValue field each declared attribute type travels in.
_WIRE = {
    "string": ("string_value", None),
    "int": ("int_value", None),
    "double": ("double_value", None),
    "boolean": ("bool_value", None),
    "string[]": ("array_value", "string_value"),
    "int[]": ("array_value", "int_value"),
    "double[]": ("array_value", "double_value"),
    "boolean[]": ("array_value", "bool_value"),
}


def _check_types(kvs: Any, where: str, *, closed: bool) -> None:
    keys = [kv.key for kv in kvs]
    assert len(keys) == len(set(keys)), f"{where}: an attribute key repeats"
    for kv in kvs:
        assert kv.key, f"{where}: empty attribute key"
        declared = sc.ATTRIBUTE_TYPES.get(kv.key)
        if declared is None:
            assert not closed, f"{where}: {kv.key} is not in the semconv registry"
            continue
        outer, inner = _WIRE[declared]
        assert kv.value.WhichOneof("value") == outer, f"{where}: {kv.key} is not {declared}"
        if inner is not None:
            for item in kv.value.array_value.values:
                assert item.WhichOneof("value") == inner, f"{where}: {kv.key} is not {declared}"
        allowed = sc.ENUM_VALUES.get(kv.key)
        if allowed is not None and kv.key != sc.GEN_AI_OPERATION_NAME:
            assert _value(kv.value) in allowed, f"{where}: {kv.key}={_value(kv.value)!r}"


def test_http_requests_are_otlp_protobuf_posts(received: Received) -> None:
    assert received.http, "the OTLP/HTTP exporter sent nothing"
    for path, headers, body in received.http:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert path == "/v1/traces"  # the recipe's endpoint plus the signal path
        assert lowered["content-type"] == "application/x-protobuf"
        assert lowered.get("content-encoding", "identity") in ("identity", "gzip")
        assert body, "empty export request"


def test_requests_follow_the_otlp_schema(received: Received) -> None:
    requests = _http_requests(received)
    for request in requests:
        _no_unknown_fields(request)
    rows = _spans(requests)
    assert rows
    by_trace: dict[bytes, dict[bytes, trace_pb2.Span]] = {}
    for rs, _, span in rows:
        resource = _attrs(rs.resource.attributes)
        assert resource["service.name"] == "my-coding-agent"  # the recipe's OTEL_SERVICE_NAME
        assert resource["telemetry.sdk.language"] == "python"
        assert len(span.trace_id) == 16 and any(span.trace_id), span.name
        assert len(span.span_id) == 8 and any(span.span_id), span.name
        assert len(span.parent_span_id) in (0, 8), span.name
        assert span.name
        assert span.kind in (
            trace_pb2.Span.SPAN_KIND_INTERNAL,
            trace_pb2.Span.SPAN_KIND_SERVER,
            trace_pb2.Span.SPAN_KIND_CLIENT,
            trace_pb2.Span.SPAN_KIND_PRODUCER,
            trace_pb2.Span.SPAN_KIND_CONSUMER,
        ), f"{span.name}: kind {span.kind}"
        assert 0 < span.start_time_unix_nano <= span.end_time_unix_nano, span.name
        assert span.status.code in (0, 1, 2)
        # Bits 0-7 are W3C trace flags (the Python encoder leaves them 0; if set, sampled),
        # bit 8 says bit 9 is meaningful, bit 9 "parent is remote" (never: one process), the
        # rest reserved.
        assert span.flags & 0xFF in (0x00, 0x01), f"{span.name}: flags {span.flags:#x}"
        assert span.flags & ~0x3FF == 0, f"{span.name}: reserved flag bits {span.flags:#x}"
        if span.flags & 0x100:
            assert not span.flags & 0x200, f"{span.name}: parent marked remote"
        assert span.dropped_attributes_count == 0
        assert span.dropped_events_count == 0 and span.dropped_links_count == 0
        for event in span.events:
            assert event.name
            assert span.start_time_unix_nano <= event.time_unix_nano <= span.end_time_unix_nano
        trace = by_trace.setdefault(span.trace_id, {})
        assert span.span_id not in trace, f"{span.name}: span sent twice"
        trace[span.span_id] = span
    assert len(by_trace) == 1  # one trial, one trace
    for spans in by_trace.values():
        roots = [s for s in spans.values() if not s.parent_span_id]
        assert [r.name for r in roots] == ["trial textkit__textkit-1"]
        for span in spans.values():
            if not span.parent_span_id:
                continue
            parent = spans.get(span.parent_span_id)
            assert parent is not None, f"{span.name}: parent not in its trace"
            assert parent.start_time_unix_nano <= span.start_time_unix_nano
            assert span.end_time_unix_nano <= parent.end_time_unix_nano
            # The tree has no cycle: every chain of parents reaches the root.
            seen, node = set(), span
            while node.parent_span_id:
                assert node.span_id not in seen, f"{span.name}: parent cycle"
                seen.add(node.span_id)
                node = spans[node.parent_span_id]


def test_our_spans_carry_the_declared_attributes_and_types(received: Received) -> None:
    rows = _spans(_http_requests(received))
    types = Counter()
    for _, ss, span in rows:
        assert ss.scope.name == "agentsignals"
        assert ss.scope.version
        assert ss.schema_url == sc.SCHEMA_URL
        attrs = _attrs(span.attributes)
        span_type = attrs[sc.AGENT_SIGNALS_SPAN_TYPE]
        types[span_type] += 1
        assert span.kind == trace_pb2.Span.SPAN_KIND_INTERNAL  # every type is internal
        _check_types(span.attributes, span.name, closed=True)
        for event in span.events:
            _check_types(event.attributes, f"{span.name} event {event.name}", closed=True)
        if span_type == "tool":
            assert span.name == f"execute_tool {attrs[sc.GEN_AI_TOOL_NAME]}"
        elif span_type == "turn":
            assert span.name == f"turn {attrs[sc.AGENT_SIGNALS_TURN_INDEX]}"
        elif span_type == "attempt":
            assert span.name == "invoke_agent demo-agent"
    assert types == {"trial": 1, "attempt": 2, "turn": 9, "tool": 10}
    # Captured content went to spans and to events, as SPAN_AND_EVENT asks.
    tool_events = [
        event
        for _, _, span in rows
        for event in span.events
        if event.name == sc.EVENT_AGENT_SIGNALS_CONTENT
    ]
    assert tool_events


def test_grpc_sends_the_same_spans(received: Received) -> None:
    for request in received.grpc:
        _no_unknown_fields(request)

    def keyed(requests: list[Request]) -> dict[bytes, tuple[Any, ...]]:
        out: dict[bytes, tuple[Any, ...]] = {}
        for rs, ss, span in _spans(requests):
            assert span.span_id not in out
            out[span.span_id] = (
                sorted(_attrs(rs.resource.attributes).items()),
                rs.schema_url,
                ss.scope.name,
                ss.scope.version,
                ss.schema_url,
                span.SerializeToString(deterministic=True),
            )
        return out

    over_http = keyed(_http_requests(received))
    over_grpc = keyed(list(received.grpc))
    assert over_grpc.keys() == over_http.keys()
    assert over_grpc == over_http
