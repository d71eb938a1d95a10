"""`agentsignals collect`: real servers on loopback, real OTLP clients, real subprocesses.

Spans come from agentsignals' own instrumentation (captured in memory, then exported with the
OpenTelemetry SDK's OTLP exporters, or exported by `configure(endpoint=...)` in a subprocess).
Downstream forwarding goes to a second real HTTP server that records what it receives.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import msgspec
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

import agentsignals
from agentsignals._collector import Collector, CollectorConfig, load_config, main
from agentsignals._collector.config import parse_size
from agentsignals._collector.service import build_parser, config_from_args
from agentsignals._collector.spool import KIND_PROTOBUF, MAGIC, Spool
from agentsignals._features.store import read_records
from agentsignals._spans.decode import decode_otlp_json, decode_otlp_protobuf, from_readable_spans
from agentsignals._spans.encode import encode_otlp_json, encode_otlp_protobuf
from agentsignals.testing import capture_spans

REPO = Path(__file__).resolve().parents[1]
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPAN_TYPE = "agent_signals.span.type"
ATTEMPT_ID = "agent_signals.attempt.id"


# ----------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def make_attempt(task: str = "task", tools: int = 3) -> list[ReadableSpan]:
    """One trial with one attempt: a turn and `tools` tool calls (random ids)."""
    with (
        capture_spans(deterministic=False) as cap,
        agentsignals.trial(task),
        agentsignals.attempt(agent_type="test-agent", model_id="m"),
    ):
        with agentsignals.turn() as turn:
            turn.record_usage(input_tokens=100, output_tokens=10)
        for i in range(tools):
            with agentsignals.tool("bash", arguments={"command": f"echo {i}"}):
                pass
    return list(cap.spans)


def attempt_id(spans: list[ReadableSpan]) -> str:
    for span in spans:
        value = (span.attributes or {}).get(ATTEMPT_ID)
        if isinstance(value, str):
            return value
    raise AssertionError("no attempt id")


def split_open(spans: list[ReadableSpan]) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """(children, the attempt and trial spans): the first part leaves the attempt open."""
    ends = [s for s in spans if (s.attributes or {}).get(SPAN_TYPE) in ("attempt", "trial")]
    return [s for s in spans if s not in ends], ends


def protobuf_body(spans: list[ReadableSpan]) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def json_body(spans: list[ReadableSpan]) -> bytes:
    return encode_otlp_json(from_readable_spans(spans))


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post_pb(port: int, spans: list[ReadableSpan], **headers: str) -> int:
    status, _, _ = post(
        f"http://127.0.0.1:{port}/v1/traces",
        protobuf_body(spans),
        {"Content-Type": "application/x-protobuf", **headers},
    )
    return status


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, body = _get(url, headers)
    return status, json.loads(body)


def _get(url: str, headers: dict[str, str] | None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def attempt_lines(output: Path) -> list[dict[str, Any]]:
    path = output / "features" / "attempts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records_for(output: Path, attempt: str) -> list[dict[str, Any]]:
    return [r for r in attempt_lines(output) if r["attempt_id"] == attempt]


def span_key(span: Any) -> tuple[str, str]:
    return span.trace_id, span.span_id


class Downstream:
    """A tiny OTLP/HTTP receiver that records every request (and can refuse some)."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes, float]] = []
        self.responses: deque[tuple[int, dict[str, str]]] = deque()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Downstream:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                owner.requests.append((self.path, dict(self.headers), body, time.monotonic()))
                status, headers = owner.responses.popleft() if owner.responses else (200, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1/traces"

    def spans(self) -> list[Any]:
        out: list[Any] = []
        for _, headers, body, _ in self.requests:
            if headers.get("Content-Type") == "application/json":
                out.extend(decode_otlp_json(body))
            else:
                out.extend(decode_otlp_protobuf(body))
        return out

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def downstream() -> Iterator[Downstream]:
    server = Downstream().start()
    yield server
    server.stop()


Factory = Callable[..., Collector]


def traces_url(c: Collector) -> str:
    return f"http://127.0.0.1:{c.http_port}/v1/traces"


# --------------------------------------------------------------------------- OTLP receivers


def test_http_exporter_spans_become_feature_records(collector: Factory, tmp_path: Path) -> None:
    c = collector()
    spans = make_attempt("django__django-1", tools=4)
    exporter = OTLPSpanExporter(endpoint=traces_url(c), timeout=5)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    out = tmp_path / "out"
    wait_until(lambda: records_for(out, attempt_id(spans)), what="the attempt record")
    (record,) = records_for(out, attempt_id(spans))
    assert record["complete"] is True
    assert record["task_id"] == "django__django-1"
    assert record["span_count"] == len(spans) - 1  # every span but the trial's
    assert record["behavior"]["tool_call_count"] == 4
    wait_until(lambda: read_records(out / "features")[1], what="the trial record")
    m = c.metrics()
    assert m["received_spans"] == len(spans) and m["received_requests"] == 1
    assert m["attempt_records"] == 1 and m["trial_records"] == 1
    assert m["in_flight_attempts"] == 0 and m["queue_depth"] == 0


def test_grpc_exporter_spans_become_feature_records(collector: Factory, tmp_path: Path) -> None:
    c = collector(grpc_port=free_port())
    spans = make_attempt(tools=2)
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True, timeout=5)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)), what="the record")
    assert c.metrics()["grpc_requests"] == 1
    # Malformed and random payloads: INVALID_ARGUMENT with the decoder's message, or OK.
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary(EXPORT)
    with pytest.raises(grpc.RpcError) as info:
        export(b"\xff\xff\xff", timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed OTLP/protobuf ExportTraceServiceRequest" in (info.value.details() or "")
    rng = random.Random(4)
    for _ in range(100):
        try:
            export(rng.randbytes(rng.randrange(1, 500)), timeout=5)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    assert c.metrics()["processing_errors"] == 0


def test_json_and_gzip_bodies(collector: Factory, tmp_path: Path) -> None:
    c = collector()
    spans = make_attempt()
    children, ends = split_open(spans)
    status, headers, body = post(
        traces_url(c),
        gzip.compress(json_body(children)),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert (status, body) == (200, b"{}")
    assert headers["Content-Type"] == "application/json"
    # A protobuf request is answered with a protobuf ExportTraceServiceResponse.
    status, headers, body = post(
        traces_url(c), protobuf_body(ends), {"Content-Type": "application/x-protobuf"}
    )
    assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    assert not response.HasField("partial_success")
    wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)))
    (record,) = records_for(tmp_path / "out", attempt_id(spans))
    assert record["complete"] and record["span_count"] == len(spans) - 1


def test_configure_endpoint_in_a_subprocess(collector: Factory, tmp_path: Path) -> None:
    """A real agent process using agentsignals.configure(endpoint=...) reaches the collector."""
    c = collector()
    script = textwrap.dedent(
        f"""
        import agentsignals
        agentsignals.configure(
            endpoint="http://127.0.0.1:{c.http_port}", protocol="http/protobuf",
            service_name="subprocess-agent",
        )
        with agentsignals.trial("sub-task"):
            for index in range(2):
                with agentsignals.attempt(agent_type="sub", model_id="m"):
                    with agentsignals.turn() as turn:
                        turn.record_usage(input_tokens=5, output_tokens=1)
                    with agentsignals.tool("bash", arguments={{"command": "ls"}}):
                        pass
        agentsignals.shutdown()
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    wait_until(lambda: len(attempt_lines(out)) == 2 and read_records(out / "features")[1])
    attempts, trials = read_records(out / "features")
    assert {a.service_name for a in attempts} == {"subprocess-agent"}
    assert all(a.complete for a in attempts)
    assert trials[0].task_id == "sub-task" and trials[0].attempt_count == 2


# ---------------------------------------------------------------------------------- hardening


def test_request_size_limits(collector: Factory) -> None:
    c = collector(max_request_bytes=4096)
    url = traces_url(c)
    big = protobuf_body(make_attempt(tools=40))
    assert len(big) > 4096
    status, _, body = post(url, big, {"Content-Type": "application/x-protobuf"})
    assert status == 413
    assert "larger than the limit of 4096 bytes" in status_pb2.Status.FromString(body).message
    # A small gzip body that inflates past the limit (a decompression bomb).
    bomb = gzip.compress(b"\0" * 1_000_000)
    status, _, body = post(
        url, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert status == 413 and b"decompressed request body larger" in body
    # A huge Content-Length is refused before anything is read.
    with socket.create_connection(("127.0.0.1", c.http_port), timeout=5) as s:
        s.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999999\r\n\r\n"
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    # Expect: 100-continue is refused before the body is sent.
    conn = http.client.HTTPConnection("127.0.0.1", c.http_port, timeout=5)
    conn.putrequest("POST", "/v1/traces")
    conn.putheader("Content-Type", "application/x-protobuf")
    conn.putheader("Content-Length", "100000")
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert c.metrics()["rejections"]["too_large"] >= 3


def test_malformed_payloads_get_400_with_the_decoders_message(collector: Factory) -> None:
    c = collector()
    url = traces_url(c)
    status, headers, body = post(url, b"\xff\xff\xff", {"Content-Type": "application/x-protobuf"})
    assert status == 400 and headers["Content-Type"] == "application/x-protobuf"
    message = status_pb2.Status.FromString(body).message
    assert message.startswith("malformed OTLP/protobuf ExportTraceServiceRequest")
    status, _, body = post(url, b'{"resourceSpans": [', {"Content-Type": "application/json"})
    assert status == 400
    assert json.loads(body) == {
        "code": 3,
        "message": "truncated JSON at byte 19: the input ends before the document is complete",
    }
    status, _, body = post(url, b'{"resource_spans": []}', {"Content-Type": "application/json"})
    assert status == 400 and "snake_case" in json.loads(body)["message"]
    truncated = gzip.compress(json_body(make_attempt()))[:-20]
    status, _, body = post(
        url, truncated, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert status == 400 and "truncated gzip body" in json.loads(body)["message"]
    status, _, body = post(url, b"{}", {"Content-Type": "text/plain"})
    assert status == 415 and "unsupported Content-Type" in json.loads(body)["message"]
    status, _, body = post(
        url, b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}
    )
    assert status == 415
    m = c.metrics()
    assert m["received_requests"] == 0 and m["rejected_requests"] == 6


def test_partial_success_drops_only_the_bad_spans(collector: Factory, tmp_path: Path) -> None:
    c = collector()
    spans = make_attempt(tools=3)
    doc = json.loads(json_body(spans))
    bad = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    bad_name = bad["name"]
    bad["spanId"] = "xyz"
    status, _, body = post(
        traces_url(c), json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == 1
    assert "invalid spanId 'xyz'" in partial["errorMessage"]
    # Protobuf: a span with a 3-byte span id.
    request = encode_spans(make_attempt(tools=1))
    request.resource_spans[0].scope_spans[0].spans[0].span_id = b"abc"
    status, _, body = post(
        traces_url(c), request.SerializeToString(), {"Content-Type": "application/x-protobuf"}
    )
    assert status == 200
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    assert response.partial_success.rejected_spans == 1
    assert "invalid span_id: 3 bytes" in response.partial_success.error_message
    wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)))
    (record,) = records_for(tmp_path / "out", attempt_id(spans))
    good = [s for s in spans if s.name != bad_name]
    assert record["span_count"] == len(good) - 1
    assert c.metrics()["rejected_spans"] == 2


def test_bearer_token(collector: Factory, tmp_path: Path) -> None:
    c = collector(token="s3cret", grpc_port=free_port())
    spans = make_attempt()
    assert post_pb(c.http_port, spans) == 401
    assert post_pb(c.http_port, spans, Authorization="Bearer wrong") == 401
    status, headers, _ = _get(f"http://127.0.0.1:{c.http_port}/metrics", None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert _get(f"http://127.0.0.1:{c.http_port}/health", None)[0] == 200
    assert post_pb(c.http_port, spans, Authorization="Bearer s3cret") == 200
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary(EXPORT)
    with pytest.raises(grpc.RpcError) as info:
        export(protobuf_body(spans), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    export(protobuf_body(spans), timeout=5, metadata=[("authorization", "Bearer s3cret")])
    channel.close()
    # The SDK exporter with headers= works too.
    exporter = OTLPSpanExporter(
        endpoint=traces_url(c), headers={"Authorization": "Bearer s3cret"}, timeout=5
    )
    assert exporter.export(make_attempt()) == SpanExportResult.SUCCESS
    exporter.shutdown()
    status, m = get_json(
        f"http://127.0.0.1:{c.http_port}/metrics?format=json", {"Authorization": "Bearer s3cret"}
    )
    assert status == 200 and m["rejections"]["unauthorized"] == 3


def test_wrong_path_and_method(collector: Factory) -> None:
    c = collector()
    base = f"http://127.0.0.1:{c.http_port}"
    assert post(f"{base}/v1/logs", b"{}", {"Content-Type": "application/json"})[0] == 404
    status, headers, _ = _get(f"{base}/v1/traces", None)
    assert status == 405 and headers["Allow"] == "POST"
    assert post(f"{base}/health", b"", method="POST")[0] == 405
    assert post(f"{base}/v1/traces", b"", method="DELETE")[0] == 405
    status, _, body = _get(f"{base}/nope?x=1", None)
    assert status == 404 and json.loads(body)["message"] == "no such path: /nope"


def _block_processing(c: Collector) -> Callable[[], None]:
    """Hold the processor's lock so accepted spans pile up in the queue."""
    c.processor.lock.acquire()
    return c.processor.lock.release


def test_backpressure_http_429_with_retry_after(collector: Factory, tmp_path: Path) -> None:
    c = collector(queue_size=12)
    release = _block_processing(c)
    try:
        statuses: list[int] = []
        retry_after = None
        for _ in range(10):
            body = json_body(make_attempt(tools=2))
            status, headers, body = post(traces_url(c), body, {"Content-Type": "application/json"})
            statuses.append(status)
            if status == 429:
                retry_after = headers["Retry-After"]
                assert json.loads(body)["code"] == 8  # RESOURCE_EXHAUSTED
                break
        assert statuses[-1] == 429 and statuses[:-1] == [200] * (len(statuses) - 1)
        assert retry_after == "1"
        assert c.metrics()["queue_depth"] <= 12
    finally:
        release()
    wait_until(lambda: c.metrics()["queue_depth"] == 0)
    assert post_pb(c.http_port, make_attempt()) == 200
    assert c.metrics()["throttled_requests"] == 1


def test_request_bytes_in_progress_are_bounded(collector: Factory) -> None:
    """A flood of big bodies is shed with 429 before being read, not held in memory."""
    c = collector()
    budget = c.ingest.body_budget_bytes
    assert c.ingest.reserve(budget - 1000)  # as if other requests were being read
    try:
        status, headers, _ = post(
            traces_url(c), json_body(make_attempt()), {"Content-Type": "application/json"}
        )
        assert (status, headers["Retry-After"]) == (429, "1")
        assert c.metrics()["request_bytes_in_progress"] == budget - 1000
    finally:
        c.ingest.release(budget - 1000)
    assert post_pb(c.http_port, make_attempt()) == 200
    wait_until(lambda: c.metrics()["request_bytes_in_progress"] == 0)


def test_backpressure_grpc_resource_exhausted_with_retry_info(collector: Factory) -> None:
    c = collector(queue_size=12, grpc_port=free_port())
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary(EXPORT)
    release = _block_processing(c)
    try:
        error = None
        for _ in range(10):
            try:
                export(protobuf_body(make_attempt(tools=2)), timeout=5)
            except grpc.RpcError as exc:
                error = exc
                break
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(error.trailing_metadata())
        info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert info.retry_delay.seconds == 1
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        detail = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(detail) and detail.retry_delay.seconds == 1
        # The SDK's gRPC exporter honours RetryInfo: it waits, retries and succeeds.
        exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True, timeout=10)
        result: list[SpanExportResult] = []
        thread = threading.Thread(target=lambda: result.append(exporter.export(make_attempt())))
        thread.start()
        time.sleep(0.3)
    finally:
        release()
    thread.join(15)
    exporter.shutdown()
    channel.close()
    assert result == [SpanExportResult.SUCCESS]


def test_connection_cap(collector: Factory) -> None:
    c = collector(max_connections=3)
    held = [socket.create_connection(("127.0.0.1", c.http_port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", c.http_port), timeout=5) as extra:
            assert extra.recv(100).startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()
    wait_until(lambda: _get(f"http://127.0.0.1:{c.http_port}/health", None)[0] == 200)


def test_no_crash_on_any_input(collector: Factory, tmp_path: Path) -> None:
    c = collector(read_timeout_s=0.5, max_request_bytes=64 * 1024)
    rng = random.Random(6)
    port = c.http_port

    def raw(data: bytes, read: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(data)
            if not read:
                return b""
            try:
                s.shutdown(socket.SHUT_WR)
                return s.recv(65536)
            except OSError:
                return b""

    # Random bytes instead of HTTP.
    for _ in range(150):
        raw(rng.randbytes(rng.randrange(0, 3000)))
    # Valid HTTP, random bodies, both encodings, sometimes "gzip".
    seen: set[int] = set()
    for i in range(300):
        kind = ("application/x-protobuf", "application/json")[i % 2]
        body = rng.randbytes(rng.randrange(0, 2000))
        if i % 3 == 0:
            body = b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + body + b"]}]}]}"
        headers = {"Content-Type": kind}
        if i % 5 == 0:
            headers["Content-Encoding"] = "gzip"
        status = post(traces_url(c), body, headers)[0]
        seen.add(status)
    assert seen <= {200, 400}, seen
    # Broken framing.
    cases = [
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: x\r\n\r\n",
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}",
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"8000\r\n" + b"a" * 0x8000 + b"\r\n" * 3,
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    ]
    answers = [raw(case) for case in cases]
    assert answers[0].startswith(b"HTTP/1.1 400")
    assert answers[1].startswith(b"HTTP/1.1 411")
    assert answers[2].startswith(b"HTTP/1.1 400")
    assert answers[4].startswith(b"HTTP/1.") and b" 431 " in answers[4][:20]
    # A valid chunked request works.
    body = json_body(make_attempt())
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100])
        for i in range(0, len(body), 100)
    )
    answer = raw(
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked + b"0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200")
    # Slow clients are cut off: headers never finished; a body that stops coming.
    for slow in (
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n",
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{",
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(slow)
            started = time.monotonic()
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - started < 3.0
    # Still healthy, still working, no internal errors.
    assert _get(f"http://127.0.0.1:{port}/health", None)[0] == 200
    spans = make_attempt()
    assert post_pb(port, spans) == 200
    wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)))
    assert c.metrics()["processing_errors"] == 0


def test_health_and_metrics(collector: Factory) -> None:
    c = collector()
    status, health = get_json(f"http://127.0.0.1:{c.http_port}/health")
    assert status == 200 and health["status"] == "ok" and health["http_port"] == c.http_port
    post_pb(c.http_port, make_attempt())
    status, m = get_json(f"http://127.0.0.1:{c.http_port}/metrics?format=json")
    assert status == 200
    for key in (
        "received_spans", "received_requests", "forwarded_spans", "dropped_spans",
        "rejected_spans", "rejected_requests", "in_flight_attempts", "late_spans",
        "duplicates", "spool_bytes", "queue_depth", "partial_attempt_records",
    ):  # fmt: skip
        assert key in m, key
    assert m["received_requests"] == 1 and m["spool_bytes"] > len(MAGIC)


def test_duplicate_and_late_spans_are_counted(collector: Factory, tmp_path: Path) -> None:
    c = collector()
    spans = make_attempt()
    assert post_pb(c.http_port, spans) == 200
    assert post_pb(c.http_port, spans) == 200  # a client retry: duplicates
    wait_until(lambda: c.metrics()["attempt_records"] == 1)
    wait_until(lambda: c.metrics()["duplicates"] == len(spans))
    # After the record is written, a retried request is still recognised.
    assert post_pb(c.http_port, spans) == 200
    wait_until(lambda: c.metrics()["duplicates"] == 2 * len(spans))
    assert c.metrics()["late_spans"] == 0 == c.metrics()["partial_attempt_records"]
    assert len(records_for(tmp_path / "out", attempt_id(spans))) == 1


# --------------------------------------------------------------------------------- forwarding


def test_forwarding_sends_spans_unchanged(collector: Factory, downstream: Downstream) -> None:
    c = collector(forward=f"http://127.0.0.1:{downstream.port}")  # base URL: /v1/traces added
    pb = protobuf_body(make_attempt())
    assert post(traces_url(c), pb, {"Content-Type": "application/x-protobuf"})[0] == 200
    wait_until(lambda: len(downstream.requests) == 1)
    path, headers, body, _ = downstream.requests[0]
    assert path == "/v1/traces" and body == pb
    assert headers["Content-Type"] == "application/x-protobuf"
    js = json_body(make_attempt())
    assert post(traces_url(c), js, {"Content-Type": "application/json"})[0] == 200
    wait_until(lambda: len(downstream.requests) == 2)
    assert downstream.requests[1][2] == js
    assert downstream.requests[1][1]["Content-Type"] == "application/json"
    # Spans from the SDK exporter arrive equal, attribute for attribute.
    spans = make_attempt(tools=5)
    exporter = OTLPSpanExporter(endpoint=traces_url(c), timeout=5)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    wait_until(lambda: len(downstream.requests) == 3)
    got = sorted(decode_otlp_protobuf(downstream.requests[2][2]), key=span_key)
    assert got == sorted(from_readable_spans(spans), key=span_key)
    wait_until(lambda: c.metrics()["forwarded_requests"] == 3)
    wait_until(lambda: c.metrics()["forward_backlog_bytes"] == 0)


def test_forwarding_waits_for_a_down_downstream(collector: Factory) -> None:
    port = free_port()  # nothing listens here yet
    c = collector(forward=f"http://127.0.0.1:{port}/v1/traces", forward_max_backoff_s=0.3)
    sent = [make_attempt(tools=2) for _ in range(3)]
    for spans in sent:
        assert post_pb(c.http_port, spans) == 200
    wait_until(lambda: c.metrics()["forward_retries"] >= 2)
    m = c.metrics()
    assert m["forwarded_spans"] == 0 and m["forward_backlog_bytes"] > 0
    assert "ConnectionRefusedError" in m["forward_last_error"]
    late = Downstream(port).start()
    try:
        wait_until(lambda: c.metrics()["forward_backlog_bytes"] == 0, timeout=15)
        expected = sorted((s for spans in sent for s in from_readable_spans(spans)), key=span_key)
        assert sorted(late.spans(), key=span_key) == expected
        assert len(late.requests) == 1  # the three requests went as one (protobuf concatenation)
        wait_until(lambda: c.metrics()["forwarded_spans"] == len(expected))
    finally:
        late.stop()


def test_forwarding_honours_retry_after_and_drops_poison(
    collector: Factory, downstream: Downstream
) -> None:
    downstream.responses.extend([(429, {"Retry-After": "1"}), (200, {})])
    c = collector(forward=downstream.url)
    assert post_pb(c.http_port, make_attempt()) == 200
    wait_until(lambda: len(downstream.requests) == 2, timeout=10)
    waited = downstream.requests[1][3] - downstream.requests[0][3]
    assert 0.9 <= waited < 3.0
    # A request the downstream refuses for good (400) is dropped, and the next one goes.
    downstream.responses.append((400, {}))
    poison = make_attempt()
    assert post_pb(c.http_port, poison) == 200
    wait_until(lambda: c.metrics()["dropped_spans"] == len(poison))
    assert post_pb(c.http_port, make_attempt()) == 200
    wait_until(lambda: len(downstream.requests) == 4)


def test_unforwarded_data_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = CollectorConfig(
        http_port=0,
        grpc_port=0,
        output_dir=tmp_path / "out",
        forward=f"http://127.0.0.1:{port}",
        forward_max_backoff_s=0.2,
        shutdown_timeout_s=0.5,
        grace_s=0.1,
        tick_s=0.05,
    )
    spans = make_attempt()
    with Collector(config) as c:
        assert post_pb(c.http_port, spans) == 200
        wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)))
    assert any((tmp_path / "out" / "spool").glob("*.seg"))  # kept: not forwarded yet
    down = Downstream(port).start()
    try:
        with Collector(config):
            wait_until(lambda: len(down.spans()) == len(spans), timeout=15)
        # The record was written before the restart and is not written again.
        assert len(records_for(tmp_path / "out", attempt_id(spans))) == 1
        assert not list((tmp_path / "out" / "spool").glob("*.seg"))
    finally:
        down.stop()


# ------------------------------------------------------------------- durability and restart


def _start_subprocess(config_file: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-m", "agentsignals._collector", "--config", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    def healthy() -> bool:
        assert proc.poll() is None, "the collector exited"
        try:
            return _get(f"http://127.0.0.1:{port}/health", None)[0] == 200
        except OSError:
            return False

    wait_until(healthy, timeout=30, what="the collector to start")


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    config_file = tmp_path / "collect.yaml"
    config_file.write_text(
        f"http_port: {port}\ngrpc_port: 0\noutput_dir: {out}\ngrace_s: 1.0\ntick_s: 0.05\n"
    )
    log = tmp_path / "collector.log"
    proc = _start_subprocess(config_file, log)
    try:
        _wait_healthy(port, proc)
        done = make_attempt("done")  # finished and written before the crash
        assert post_pb(port, done) == 200
        wait_until(lambda: records_for(out, attempt_id(done)), what="the first record")
        running = make_attempt("running", tools=4)  # half of it arrives before the crash
        first, rest = split_open(running)
        assert post_pb(port, first) == 200
        ended = make_attempt("ended")  # complete, but still in its grace period
        assert post_pb(port, ended) == 200
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not records_for(out, attempt_id(ended)), "the crash came too late to matter"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = _start_subprocess(config_file, log)
    try:
        _wait_healthy(port, proc)
        # The acknowledged but unprocessed attempt is replayed and written.
        wait_until(lambda: records_for(out, attempt_id(ended)), what="the replayed record")
        (record,) = records_for(out, attempt_id(ended))
        assert record["complete"] and record["span_count"] == len(ended) - 1
        # The half attempt resumes: its first spans were kept across the crash.
        assert post_pb(port, rest) == 200
        wait_until(lambda: records_for(out, attempt_id(running)), what="the resumed record")
        (record,) = records_for(out, attempt_id(running))
        assert record["complete"] and record["span_count"] == len(running) - 1
        assert record["behavior"]["tool_call_count"] == 4
        # The attempt written before the crash is not written again.
        assert len(records_for(out, attempt_id(done))) == 1
        _, m = get_json(f"http://127.0.0.1:{port}/metrics?format=json")
        assert m["replayed_spans"] == len(first) + len(ended)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, trials = read_records(out / "features")
    assert {t.task_id for t in trials} == {"done", "running", "ended"}
    assert all(t.complete for t in trials)


def test_sigterm_writes_open_attempts_as_incomplete(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    config_file = tmp_path / "collect.yaml"
    config_file.write_text(f"http_port: {port}\ngrpc_port: 0\noutput_dir: {out}\n")
    log = tmp_path / "collector.log"
    proc = _start_subprocess(config_file, log)
    try:
        _wait_healthy(port, proc)
        spans = make_attempt(tools=3)
        first, _ = split_open(spans)
        assert post_pb(port, first) == 200
        time.sleep(0.2)
        assert not records_for(out, attempt_id(spans))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (record,) = records_for(out, attempt_id(spans))
    assert record["complete"] is False and record["span_count"] == len(first)
    assert not list((out / "spool").glob("*.seg"))  # everything accounted for and retired
    assert "shutting down" in log.read_text()
    # A restart has nothing to replay and writes nothing again.
    proc = _start_subprocess(config_file, log)
    try:
        _wait_healthy(port, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(records_for(out, attempt_id(spans))) == 1


def test_max_age_releases_a_stuck_attempt(collector: Factory, tmp_path: Path) -> None:
    c = collector(max_age_s=0.3)
    spans = make_attempt()
    first, _ = split_open(spans)
    assert post_pb(c.http_port, first) == 200
    wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)))
    (record,) = records_for(tmp_path / "out", attempt_id(spans))
    assert record["complete"] is False and record["span_count"] == len(first)
    m = c.metrics()
    assert m["max_age_released"] == 1 and m["in_flight_attempts"] == 0


def test_revisions_continue_across_a_restart(tmp_path: Path) -> None:
    """A span arriving after a restart for an attempt written before it yields revision 1."""
    config = CollectorConfig(
        http_port=0, grpc_port=0, output_dir=tmp_path / "out", grace_s=0.1, tick_s=0.05
    )
    spans = make_attempt()
    with Collector(config) as c:
        assert post_pb(c.http_port, spans) == 200
        wait_until(lambda: records_for(tmp_path / "out", attempt_id(spans)))
    typed = from_readable_spans(spans)
    child = next(s for s in typed if s.attributes.get(SPAN_TYPE) == "tool")
    late = msgspec.structs.replace(child, span_id=os.urandom(8).hex(), name="late")
    with Collector(config) as c:
        status, _, _ = post(
            traces_url(c), encode_otlp_protobuf([late]), {"Content-Type": "application/x-protobuf"}
        )
        assert status == 200
    revisions = [r["revision"] for r in records_for(tmp_path / "out", attempt_id(spans))]
    assert revisions == [0, 1]


def test_second_collector_on_the_same_spool_is_refused(collector: Factory, tmp_path: Path) -> None:
    collector()
    other = Collector(CollectorConfig(http_port=0, grpc_port=0, output_dir=tmp_path / "out"))
    with pytest.raises(OSError, match="another collector is using the spool"):
        other.start()


def test_segments_are_retired_once_released_and_forwarded(
    collector: Factory, downstream: Downstream
) -> None:
    c = collector(forward=downstream.url, segment_roll_s=0.1)
    for _ in range(5):
        assert post_pb(c.http_port, make_attempt()) == 200
        time.sleep(0.15)
    wait_until(lambda: c.metrics()["attempt_records"] == 5)
    wait_until(lambda: c.metrics()["spool_segments"] <= 2, what="old segments to be retired")
    wait_until(lambda: c.metrics()["forwarded_requests"] == 5)


def test_spool_recovers_a_torn_tail(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="never")
    assert spool.open() == []
    for i in range(3):
        spool.append(KIND_PROTOBUF, 1, b"x" * (100 + i))
    segment = spool.segments()[-1]
    spool.close()
    with segment.path.open("ab") as f:
        f.write(b"\x05\x00\x00\x00partial")  # a record cut short by a power failure
    again = Spool(tmp_path, fsync="never")
    (old,) = again.open()
    assert old.data_records == 3 and old.size < segment.path.stat().st_size + 1
    assert [r.body for r in again.records(old.seq)] == [b"x" * 100, b"x" * 101, b"x" * 102]
    again.close()


def test_group_commit_shares_syncs(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="group")
    spool.open()

    def writer() -> None:
        for _ in range(50):
            ticket = spool.append(KIND_PROTOBUF, 1, b"y" * 500)
            assert ticket is not None
            spool.commit(ticket)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 < spool.syncs < 400
    (segment,) = spool.segments()
    assert spool.durable_end(segment.seq) == segment.size
    spool.close()


# ------------------------------------------------------------------------------ configuration


def test_config_file_and_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "http_port: 5000\nmax_request_bytes: 2MiB\nforward: http://example.test:4318\n"
        "forward_headers:\n  x-api-key: abc\nqueue_size: 100\n"
    )
    args = build_parser().parse_args(["--config", str(config_file), "--http-port", "6000"])
    config = config_from_args(args)
    assert config.http_port == 6000  # the flag wins
    assert config.max_request_bytes == 2 << 20 and config.queue_size == 100
    assert config.forward_headers == {"x-api-key": "abc"}
    assert parse_size("512k") == 512 << 10 and parse_size("8MB") == 8_000_000
    config_file.write_text("htp_port: 1\n")
    with pytest.raises(ValueError, match="unknown collector setting 'htp_port'"):
        load_config(config_file)
    assert main(["--config", str(config_file)]) == 2
    assert main(["--fsync", "always", "--http-port", "70000"]) == 2


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "collectors" / "agentsignals-collect.yaml")
    config.validate()
    assert config.host == "127.0.0.1" and config.http_port == 4318 and config.grpc_port == 4317
