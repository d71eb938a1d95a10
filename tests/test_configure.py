"""configure(): OTEL_* variables, the embedded default, OTLP over real loopback receivers,
cooperation with a host TracerProvider, idempotence, OTEL_SDK_DISABLED."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentsignals
from agentsignals import semconv as sc

pytestmark = pytest.mark.usefixtures("fresh_otel")


def _agent_run() -> None:
    with agentsignals.trial("task-1"), agentsignals.attempt(), agentsignals.turn():  # noqa: SIM117
        with agentsignals.tool("bash") as tool:
            tool.record_result("ok", exit_code=0)


def _names(request: trace_service_pb2.ExportTraceServiceRequest) -> list[str]:
    return [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


class OtlpHttpReceiver:
    """A real OTLP/HTTP receiver on loopback: decodes protobuf (optionally gzip) requests."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.headers.append(dict(self.headers))
                receiver.requests.append(
                    trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                )
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver() -> Iterator[OtlpHttpReceiver]:
    receiver = OtlpHttpReceiver()
    yield receiver
    receiver.close()


def test_embedded_default_writes_otlp_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = agentsignals.configure(batch=False)
    assert config.exporters == ("file",)
    assert config.output_dir == tmp_path / "agentsignals-output"
    _agent_run()
    agentsignals.shutdown()
    lines = [
        line
        for p in sorted(config.traces_dir.glob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    names = [
        s["name"]
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert sorted(names) == ["execute_tool bash", "invoke_agent", "trial task-1", "turn 0"]


def test_otlp_http_via_the_standard_variables(
    http_receiver: OtlpHttpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{http_receiver.port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-coding-agent")
    config = agentsignals.configure(output_dir=tmp_path)
    # The embedded store stays on beside OTLP (a backend outage loses nothing).
    assert config.exporters == ("otlp", "file")
    _agent_run()
    assert agentsignals.force_flush()
    names = [n for r in http_receiver.requests for n in _names(r)]
    assert sorted(names) == ["execute_tool bash", "invoke_agent", "trial task-1", "turn 0"]
    assert http_receiver.headers[0].get("x-team") == "agents"
    resource = http_receiver.requests[0].resource_spans[0].resource
    service = {a.key: a.value.string_value for a in resource.attributes}["service.name"]
    assert service == "my-coding-agent"
    scope = http_receiver.requests[0].resource_spans[0].scope_spans[0].scope
    assert scope.name == "agentsignals"
    assert http_receiver.requests[0].resource_spans[0].scope_spans[0].schema_url == sc.SCHEMA_URL


def test_otlp_http_explicit_endpoint_and_headers(http_receiver: OtlpHttpReceiver) -> None:
    agentsignals.configure(
        endpoint=f"http://127.0.0.1:{http_receiver.port}", headers={"authorization": "Bearer t0k"}
    )
    _agent_run()
    assert agentsignals.force_flush()
    assert len([n for r in http_receiver.requests for n in _names(r)]) == 4
    assert http_receiver.headers[0]["authorization"] == "Bearer t0k"


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_grpc_over_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    service = _TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")  # the opt-out of the local store
        config = agentsignals.configure()
        assert (config.exporters, config.protocol) == (("otlp",), "grpc")
        _agent_run()
        assert agentsignals.force_flush()
        agentsignals.shutdown()
    finally:
        server.stop(grace=None)
    assert sorted(n for r in service.requests for n in _names(r)) == [
        "execute_tool bash",
        "invoke_agent",
        "trial task-1",
        "turn 0",
    ]


def test_host_provider_is_kept_and_our_processors_added(tmp_path: Path) -> None:
    host_exporter = InMemorySpanExporter()
    host = TracerProvider()
    host.add_span_processor(SimpleSpanProcessor(host_exporter))
    trace.set_tracer_provider(host)
    agentsignals.configure(output_dir=tmp_path, batch=False)
    assert trace.get_tracer_provider() is host
    host_tracer = host.get_tracer("host.app")
    with agentsignals.attempt() as attempt, host_tracer.start_as_current_span("chat gpt-5"):
        pass
    agentsignals.force_flush()
    host_names = sorted(s.name for s in host_exporter.get_finished_spans())
    assert host_names == ["chat gpt-5", "invoke_agent"]
    chat = next(s for s in host_exporter.get_finished_spans() if s.name == "chat gpt-5")
    assert chat.attributes[sc.AGENT_SIGNALS_ATTEMPT_ID] == attempt.id
    written = "".join(p.read_text() for p in (tmp_path / "traces").glob("*.jsonl"))
    assert "chat gpt-5" in written and "invoke_agent" in written


def test_configure_is_idempotent_and_reconfigurable(tmp_path: Path) -> None:
    first = agentsignals.configure(output_dir=tmp_path / "a", batch=False)
    again = agentsignals.configure(output_dir=tmp_path / "a", batch=False)
    assert first == again
    provider = trace.get_tracer_provider()
    assert len(provider._active_span_processor._span_processors) == 1  # one pipeline, not two
    _agent_run()
    agentsignals.configure(output_dir=tmp_path / "b", batch=False)  # reconfigure: swap exporters
    _agent_run()
    agentsignals.shutdown()

    def count(folder: Path) -> int:
        return sum(len(p.read_text().splitlines()) for p in folder.glob("*.jsonl"))

    assert count(tmp_path / "a" / "traces") == 4  # SimpleSpanProcessor: one line per span
    assert count(tmp_path / "b" / "traces") == 4


def test_sdk_disabled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    config = agentsignals.configure(output_dir=tmp_path)
    assert config.enabled is False
    _agent_run()
    assert not (tmp_path / "traces").exists()


def test_invalid_arguments_fail_at_setup_but_bad_env_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown exporter"):
        agentsignals.configure(exporters=["zipkin"])
    with pytest.raises(ValueError, match="max_value_bytes"):
        agentsignals.configure(max_value_bytes=0)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin,console")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "sometimes")
    config = agentsignals.configure(output_dir=tmp_path)
    assert config.exporters == ("console",)
    assert config.protocol == "http/protobuf"
    assert config.capture == (False, True, False)


def test_sigterm_flushes_batched_spans(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import sys, time, agentsignals\n"
        "agentsignals.configure(output_dir=sys.argv[1])\n"
        "with agentsignals.attempt(), agentsignals.tool('bash'): pass\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    deadline = time.time() + 5
    while time.time() < deadline and not list((tmp_path / "traces").glob("*.jsonl")):
        time.sleep(0.05)
    written = "".join(p.read_text() for p in (tmp_path / "traces").glob("*.jsonl"))
    assert "execute_tool bash" in written and "invoke_agent" in written
