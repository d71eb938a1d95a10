"""`agentsignals collect --workers N`: real worker processes sharing a port over loopback OTLP.

The property that matters: an attempt whose spans reach different workers (separate
connections, which the kernel spreads over the workers) is still assembled by one worker, into
one whole record, in the folder of the worker that owns its trace; never two half records.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from agentsignals._collector.workers import owner_hex, protobuf_trace_ids
from agentsignals._spans.decode import decode_otlp_protobuf, from_readable_spans
from agentsignals._spans.encode import encode_otlp_protobuf
from test_collector_service import (
    REPO,
    attempt_id,
    free_port,
    make_attempt,
    protobuf_body,
    split_open,
    wait_until,
)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _post(port: int, body: bytes) -> int:
    """POST on a new connection each time, so the kernel picks a worker per request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "collect.yaml"
    path.write_text("grace_s: 0.2\ntick_s: 0.05\nshutdown_timeout_s: 5\n")
    return path


@contextmanager
def _collector(
    tmp_path: Path, workers: int, port: int, grpc_port: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """`agentsignals collect --workers N` as a real process (output in tmp_path/out, stderr
    in tmp_path/collector.log); stopped with SIGTERM, which must end it cleanly."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with (tmp_path / "collector.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentsignals._collector", "--workers", str(workers),
             "--http-port", str(port), "--grpc-port", str(grpc_port),
             "--output-dir", str(tmp_path / "out"), "--config", str(_config(tmp_path))],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_trace_ids_are_read_from_the_wire_format() -> None:
    spans = [s for i in range(3) for s in make_attempt(f"w{i}", tools=2)]
    body = protobuf_body(spans)
    scanned = protobuf_trace_ids(body)
    assert scanned is not None
    ids, count = scanned
    decoded = decode_otlp_protobuf(body)
    assert count == len(decoded) == len(spans)
    assert {i.hex() for i in ids} == {s.trace_id for s in decoded}
    assert len(ids) == 3
    # Not a well-formed request: None (the decoder then answers 400 with its reason).
    assert protobuf_trace_ids(body[:-3]) is None
    assert protobuf_trace_ids(b"\x0a\x05\x12\x03\x12\x01\xff") is None
    assert protobuf_trace_ids(b"") == (set(), 0)
    # A span whose fields come in another order (span_id first) is read all the same.
    trace, span_id = bytes(range(16)), bytes(8)
    span = b"\x12\x08" + span_id + b"\x0a\x10" + trace
    scope = b"\x12" + bytes([len(span)]) + span
    request = b"\x0a" + bytes([len(scope) + 2]) + b"\x12" + bytes([len(scope)]) + scope
    assert protobuf_trace_ids(request) == ({trace}, 1)
    assert [s.trace_id for s in decode_otlp_protobuf(request)] == [trace.hex()]


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_assemble_each_trace_in_its_owner(tmp_path: Path, workers: int) -> None:
    port = free_port()
    grpc_port = free_port()
    out = tmp_path / "out"
    rng = random.Random(16)
    trials = [make_attempt(f"task-{i}", tools=rng.randint(2, 6)) for i in range(24)]
    with _collector(tmp_path, workers, port, grpc_port) as proc:
        wait_until(lambda: _healthy(port, proc), timeout=60, what="the workers")
        # Each trial in three requests on three connections: the attempt's children, then
        # its attempt span, then its trial span; every fourth request also carries the
        # children of the next trial (a request mixing traces of different owners).
        parts: list[list[Any]] = []
        for spans in trials:
            children, ends = split_open(spans)
            attempt = [s for s in ends if s.attributes.get("agent_signals.span.type") == "attempt"]
            trial = [s for s in ends if s not in attempt]
            parts += [children, attempt, trial]
        bodies = []
        for i in range(0, len(parts), 3):
            children, attempt, trial = parts[i : i + 3]
            bodies.append(protobuf_body(children))
            bodies.append(protobuf_body(attempt))
            bodies.append(protobuf_body(trial))
        # A request mixing the children of two trials that different workers own (sent
        # again later on their own: the owners drop the copies as duplicates).
        owners = [owner_hex(from_readable_spans(t)[0].trace_id, workers) for t in trials]
        other = next(i for i, o in enumerate(owners) if o != owners[0])
        mixed = from_readable_spans(parts[0]) + from_readable_spans(parts[3 * other])
        assert _post(port, encode_otlp_protobuf(mixed)) == 200
        for index, body in enumerate(bodies):
            assert _post(port, body) == 200, f"request {index}"
        # One more trial over OTLP/gRPC on the shared gRPC port.
        grpc_trial = make_attempt("grpc-task", tools=3)
        exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10)
        try:
            assert exporter.export(grpc_trial) == SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        trials.append(grpc_trial)
        expected = {attempt_id(spans): spans for spans in trials}

        def written() -> int:
            return sum(
                len(_lines(out / f"worker-{w}" / "features" / "trials.jsonl"))
                for w in range(workers)
            )

        wait_until(lambda: written() >= len(trials), timeout=30, what="every trial record")
    seen: dict[str, int] = {}
    for w in range(workers):
        features = out / f"worker-{w}" / "features"
        for record in _lines(features / "attempts.jsonl"):
            aid = record["attempt_id"]
            assert aid not in seen, f"attempt {aid} written by workers {seen[aid]} and {w}"
            seen[aid] = w
            spans = expected[aid]
            trace = from_readable_spans(spans)[0].trace_id
            assert w == owner_hex(trace, workers), "written by a worker that does not own it"
            assert record["revision"] == 0 and record["complete"] is True
            assert record["span_count"] == len(spans) - 1  # every span but the trial's
        for trial in _lines(features / "trials.jsonl"):
            assert trial["complete"] is True and trial["attempt_count"] == 1
            assert trial["revision"] == 0
    assert set(seen) == set(expected)
    assert len(set(seen.values())) > 1  # the traces were spread over the workers


def _healthy(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the collector exited"
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        out += [int(c) for c in text.split()]
    return out


def test_a_killed_worker_is_restarted_and_resumes_its_attempts(tmp_path: Path) -> None:
    """SIGKILL one worker while it holds open attempts: the parent starts it again on the same
    private socket, it replays its spool, and the attempts finish whole once their closing
    spans come (through either worker)."""
    port = free_port()
    out = tmp_path / "out"
    trials = [make_attempt(f"kill-{i}", tools=3) for i in range(8)]
    with _collector(tmp_path, 2, port) as proc:
        wait_until(lambda: _healthy(port, proc), timeout=60, what="the workers")
        # The parent watches its workers once it says it is up (every worker healthy).
        log_path = tmp_path / "collector.log"
        wait_until(lambda: b"2 workers, OTLP/HTTP" in log_path.read_bytes(), timeout=60,
                   what="the parent's start-up line")  # fmt: skip
        wait_until(lambda: len(_children(proc.pid)) == 2, what="two workers")
        for spans in trials:
            children, _ = split_open(spans)
            assert _post(port, protobuf_body(children)) == 200
        workers = _children(proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        wait_until(
            lambda: len(kids := _children(proc.pid)) == 2 and workers[0] not in kids,
            timeout=30,
            what="the worker to be restarted",
        )

        def closed_all() -> bool:
            # Until the restarted worker serves, a relay to it fails (503): send again.
            for spans in trials:
                _, ends = split_open(spans)
                if _post(port, protobuf_body(ends)) != 200:
                    return False
            return True

        wait_until(closed_all, timeout=60, what="every attempt closed")

        def written() -> int:
            return sum(
                len(_lines(out / f"worker-{w}" / "features" / "trials.jsonl")) for w in range(2)
            )

        wait_until(lambda: written() >= len(trials), timeout=30, what="every trial record")
    records: dict[str, dict[str, Any]] = {}
    for w in range(2):
        for record in _lines(out / f"worker-{w}" / "features" / "attempts.jsonl"):
            records.setdefault(record["attempt_id"], record)
            assert records[record["attempt_id"]] is record, "an attempt written twice"
    for spans in trials:
        record = records[attempt_id(spans)]
        assert record["complete"] is True and record["span_count"] == len(spans) - 1


def test_a_worker_killed_as_it_starts_is_started_again(tmp_path: Path) -> None:
    """SIGKILL the first worker as soon as it exists (while the parent waits for it to be
    healthy, or just after): the collector comes up with both workers all the same."""
    port = free_port()
    log_path = tmp_path / "collector.log"
    with _collector(tmp_path, 2, port) as proc:
        wait_until(lambda: len(_children(proc.pid)) >= 1, timeout=60, what="a worker")
        first = _children(proc.pid)[0]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: b"2 workers, OTLP/HTTP" in log_path.read_bytes(), timeout=90,
                   what="the parent's start-up line")  # fmt: skip
        wait_until(
            lambda: len(kids := _children(proc.pid)) == 2 and first not in kids,
            timeout=30,
            what="two workers, the killed one replaced",
        )
        wait_until(lambda: _healthy(port, proc), timeout=60, what="the workers")
        assert b"exited with status -9" in log_path.read_bytes()


class _Owner:
    """A loopback HTTP server standing in for the owning worker, answering as told."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self
        self.bodies: list[bytes] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                owner.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (429, b"", {"Retry-After": "3"}, "throttled"),
        (503, b'{"message": "down"}', {"Content-Type": "application/json"}, "unavailable"),
        (400, b'{"message": "bad span"}', {"Content-Type": "application/json"}, "rejected"),
        (200, b"", {"Content-Type": "application/x-protobuf"}, "accepted"),
    ],
)
def test_the_owners_answer_is_the_clients(
    tmp_path: Path, status: int, body: bytes, headers: dict[str, str], expected: str
) -> None:
    """A request relayed whole to its owner gets the owner's answer: 429 with its
    Retry-After, 503, 400 with its message, or 200; nothing is kept by the relaying worker."""
    from agentsignals._collector.ingest import Ingest, Rejected, Throttled, Unavailable
    from agentsignals._collector.pipeline import SpanQueue
    from agentsignals._collector.spool import KIND_PROTOBUF, Spool
    from agentsignals._collector.stats import Stats
    from agentsignals._collector.workers import Router

    owner = _Owner(status, body, headers)
    spool = Spool(tmp_path / "spool", fsync="never")
    spool.open()
    try:
        spans = from_readable_spans(make_attempt("relayed"))
        other = 1 - owner_hex(spans[0].trace_id, 2)  # this worker does not own the trace
        ports = [0, 0]
        ports[1 - other] = owner.port
        ingest = Ingest(spool, SpanQueue(1000), Stats())
        ingest.router = Router(other, ports, token=None)
        request = encode_otlp_protobuf(spans)
        if expected == "accepted":
            result = ingest.export(request, KIND_PROTOBUF)
            assert result.spans == len(spans) and result.rejected == 0
        else:
            error = {"throttled": Throttled, "unavailable": Unavailable, "rejected": Rejected}
            with pytest.raises(error[expected]) as info:
                ingest.export(request, KIND_PROTOBUF)
            if expected == "throttled":
                assert info.value.retry_after == 3  # type: ignore[attr-defined]
            else:
                assert ("down" if status == 503 else "bad span") in str(info.value)
        assert owner.bodies == [request]  # relayed as it came, not decoded and re-encoded
        assert spool.segments()[-1].data_records == 0  # the relaying worker keeps nothing
    finally:
        spool.close()
        owner.close()
