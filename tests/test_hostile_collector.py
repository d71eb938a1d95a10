"""Fault injection: hostile requests against the real collector over loopback, a corrupt
spool, and kill -9 with restarts of the collector as a subprocess.

What must hold: malformed input gets a 4xx (never a 500, never a crash: the collector stays
healthy and keeps accepting); slow clients are cut off at every phase of a request; a corrupt
spool record costs only itself and is counted; across kill -9 and restart every acknowledged
attempt gets its record and no record is written twice at one revision; files are 0600.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from prometheus_client.parser import text_string_to_metric_families

import agentsignals
from agentsignals._collector import Collector, CollectorConfig
from agentsignals._collector.spool import HEADER, MAGIC, scan_records
from agentsignals.testing import capture_spans

REPO = Path(__file__).resolve().parents[1]
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ATTEMPT_ID = "agent_signals.attempt.id"


# ----------------------------------------------------------------------------------- helpers


def make_attempt(task: str = "task", tools: int = 2) -> bytes:
    """One trial with one attempt (random ids) as an OTLP/protobuf request body."""
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
    return bytes(encode_spans(list(cap.spans)).SerializeToString())


def attempt_of(body: bytes) -> str:
    from agentsignals._spans.decode import decode_otlp_protobuf

    ids = {s.attributes.get(ATTEMPT_ID) for s in decode_otlp_protobuf(body)}
    (found,) = ids - {None}
    return str(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post_pb(port: int, body: bytes) -> int:
    status, _, _ = request(
        f"http://127.0.0.1:{port}/v1/traces", body, {"Content-Type": "application/x-protobuf"}
    )
    return status


def raw(port: int, data: bytes) -> bytes:
    """Send bytes, half-close, and return what the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
        return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def attempt_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "features" / "attempts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metrics_json(port: int) -> dict[str, Any]:
    status, _, body = request(f"http://127.0.0.1:{port}/metrics?format=json")
    assert status == 200
    return dict(json.loads(body))


Factory = Callable[..., Collector]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Factory]:
    started: list[Collector] = []

    def start(**overrides: Any) -> Collector:
        settings: dict[str, Any] = {
            "http_port": 0,
            "grpc_port": 0,
            "output_dir": tmp_path / "out",
            "grace_s": 0.1,
            "tick_s": 0.05,
        }
        settings.update(overrides)
        c = Collector(CollectorConfig(**settings)).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def _still_serving(c: Collector, out: Path) -> None:
    """Healthy, accepting, processing: no request above broke anything."""
    assert request(f"http://127.0.0.1:{c.http_port}/health")[0] == 200
    body = make_attempt("after")
    assert post_pb(c.http_port, body) == 200
    attempt = attempt_of(body)
    wait_until(lambda: any(r["attempt_id"] == attempt for r in attempt_lines(out)))
    assert c.metrics()["processing_errors"] == 0


# ------------------------------------------------------------------------- hostile bodies


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    size, length = b"", len(payload)
    while True:
        byte = length & 0x7F
        length >>= 7
        size += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([number << 3 | 2]) + size + payload


def _deep_protobuf(depth: int) -> bytes:
    """An ExportTraceServiceRequest whose resource attribute is kvlists `depth` deep."""
    value = _field(1, b"x")  # AnyValue.string_value
    for _ in range(depth):
        key_value = _field(1, b"k") + _field(2, value)  # KeyValue{key, value}
        value = _field(6, _field(1, key_value))  # AnyValue.kvlist_value{values}
    resource = _field(1, _field(1, b"deep") + _field(2, value))  # Resource.attributes
    return _field(1, _field(1, resource))  # request.resource_spans{resource}


def _deep_json_kvlist(depth: int) -> bytes:
    value = '{"kvlistValue":{"values":[{"key":"k","value":' * depth + '{"stringValue":"x"}'
    value += "}]}}" * depth
    resource = '{"attributes":[{"key":"deep","value":' + value + "}]}"
    return ('{"resourceSpans":[{"resource":' + resource + ',"scopeSpans":[]}]}').encode()


HOSTILE_JSON = {
    "arrays-300": b'{"resourceSpans":' + b"[" * 300 + b"]" * 300 + b"}",
    "arrays-100k": b'{"resourceSpans":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "kvlist-300": _deep_json_kvlist(300),
    "kvlist-2000": _deep_json_kvlist(2000),
    "objects-5000": b'{"resourceSpans":[{"resource":' + b'{"a":' * 5000 + b"1" + b"}" * 5001
    + b"]}",
    "huge-int": b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"' + b"1" * 32
    + b'","spanId":"' + b"2" * 16 + b'","startTimeUnixNano":' + b"9" * 400 + b"}]}]}]}",
    "nan-everywhere": b'{"resourceSpans":NaN}',
    "not-utf8": b'{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"\xff\xfe"}}]}]}',
    "lone-surrogate": b'{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"\\ud800"}}]}]}',
}  # fmt: skip
HOSTILE_PROTOBUF = {
    "kvlist-200": _deep_protobuf(200),
    "kvlist-5000": _deep_protobuf(5000),
    "random": random.Random(5).randbytes(4096),
    "truncated": _deep_protobuf(3)[:-2],
    "huge-length": b"\x0a\xff\xff\xff\xff\x0f",
}


def test_hostile_bodies_get_4xx_never_500(collector: Factory, tmp_path: Path) -> None:
    c = collector(max_request_bytes=2 << 20)
    url = f"http://127.0.0.1:{c.http_port}/v1/traces"
    answers: dict[str, int] = {}
    for name, body in HOSTILE_JSON.items():
        answers[f"json {name}"] = request(url, body, {"Content-Type": "application/json"})[0]
    for name, body in HOSTILE_PROTOBUF.items():
        headers = {"Content-Type": "application/x-protobuf"}
        answers[f"protobuf {name}"] = request(url, body, headers)[0]
    assert set(answers.values()) == {400}, answers
    assert c.metrics()["rejections"]["malformed"] == len(answers)
    _still_serving(c, tmp_path / "out")


def test_hostile_grpc_messages_get_invalid_argument(collector: Factory, tmp_path: Path) -> None:
    c = collector(grpc_port=free_port())
    with grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}") as channel:
        export = channel.unary_unary(
            EXPORT, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        codes = {}
        for name, body in HOSTILE_PROTOBUF.items():
            try:
                export(body, timeout=10)
                codes[name] = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                codes[name] = exc.code()
        good = make_attempt("grpc")
        export(good, timeout=10)
    assert set(codes.values()) == {grpc.StatusCode.INVALID_ARGUMENT}, codes
    _still_serving(c, tmp_path / "out")


# ------------------------------------------------------------------------- framing


def test_ambiguous_or_bad_lengths_get_400(collector: Factory, tmp_path: Path) -> None:
    c = collector(read_timeout_s=2.0, header_timeout_s=2.0)
    body = b"{}"
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    cases = {
        "two different Content-Length": b"Content-Length: 2\r\nContent-Length: 5\r\n",
        "Content-Length and chunked": b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        "two Transfer-Encoding": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "negative Content-Length": b"Content-Length: -2\r\n",
        "list Content-Length": b"Content-Length: 2, 2\r\n",
        "20-digit Content-Length": b"Content-Length: 99999999999999999999\r\n",
        "hex Content-Length": b"Content-Length: 0x2\r\n",
    }
    answers = {
        name: status_of(raw(c.http_port, head + h + b"\r\n" + body)) for name, h in cases.items()
    }
    assert all(status == 400 for status in answers.values()), answers
    # The same length twice is not ambiguous (RFC 9110 section 8.6): accepted.
    same = head + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n" + body
    assert status_of(raw(c.http_port, same)) == 200
    # A body cut short by the client: the connection is dropped without an answer.
    assert raw(c.http_port, head + b"Content-Length: 500\r\n\r\n{") == b""
    _still_serving(c, tmp_path / "out")


# -------------------------------------------------------------------------- slowloris


def _trickle(port: int, parts: list[bytes], pause: float, closed: list[float]) -> None:
    """Send `parts` one at a time; record when the server cut the connection (if it did)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.settimeout(pause)
        for part in parts:
            try:
                s.sendall(part)
                if s.recv(4096) == b"":
                    closed.append(time.monotonic() - started)
                    return
            except TimeoutError:
                continue  # the server is still waiting for us
            except OSError:
                closed.append(time.monotonic() - started)
                return


def test_slowloris_clients_are_cut_off_and_slots_come_back(
    collector: Factory, tmp_path: Path
) -> None:
    """8 connections (every slot) each trickling a header line every 0.1 s, for 30 s if let:
    the header deadline (1 s) cuts every one long before, and a normal client then gets in.
    Likewise a connection that sends nothing, and a body trickled a byte at a time."""
    c = collector(max_connections=8, header_timeout_s=1.0, read_timeout_s=2.0)
    port = c.http_port
    header_lines = [b"POST /v1/traces HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 300
    body_drip = [
        b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    ] + [b" "] * 300
    closed: list[float] = []
    threads = [
        threading.Thread(target=_trickle, args=(port, header_lines, 0.1, closed)) for _ in range(6)
    ]
    threads.append(threading.Thread(target=_trickle, args=(port, body_drip, 0.1, closed)))
    threads.append(threading.Thread(target=_trickle, args=(port, [b""] * 300, 0.1, closed)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Each was cut by the server, not by running out of lines to send (30 s of them).
    assert len(closed) == 8, closed
    assert max(closed) < 25, closed
    # The slots are free again: a normal request gets through.
    wait_until(lambda: post_pb(port, make_attempt("after slowloris")) == 200)
    _still_serving(c, tmp_path / "out")


# ---------------------------------------------------------------------------- metrics


def test_metrics_speak_prometheus_text_and_json_on_request(collector: Factory) -> None:
    c = collector()
    assert post_pb(c.http_port, make_attempt()) == 200
    url = f"http://127.0.0.1:{c.http_port}/metrics"
    status, headers, body = request(url)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    received = families["agentsignals_collector_received_spans"]
    assert received.type == "counter" and received.samples[0].value > 0
    assert families["agentsignals_collector_spool_bytes"].type == "gauge"
    as_json = json.loads(request(url, headers={"Accept": "application/json"})[2])
    assert as_json["received_spans"] == received.samples[0].value
    assert json.loads(request(url + "?format=json")[2])["received_requests"] == 1


# ------------------------------------------------------------------ subprocess collectors


def _config(tmp_path: Path, port: int, **extra: Any) -> Path:
    settings = {"http_port": port, "grpc_port": 0, "output_dir": str(tmp_path / "out"),
                "tick_s": 0.05, **extra}  # fmt: skip
    path = tmp_path / "collect.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
    return path


def _start(config: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentsignals", "collect", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip

    def healthy() -> bool:
        assert proc.poll() is None, f"the collector exited: {log.read_text()[-2000:]}"
        try:
            return request(f"http://127.0.0.1:{port}/health")[0] == 200
        except OSError:
            return False

    wait_until(healthy, timeout=60, what="the collector to start")
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_kill_9_and_restart_lose_nothing_and_write_nothing_twice(tmp_path: Path) -> None:
    """Rounds of: start, send attempts while records are being written, kill -9. Then a last
    clean run. Every acknowledged attempt has its record; no record appears twice at one
    revision; no collector crashed on its own."""
    port = free_port()
    config = _config(tmp_path, port, grace_s=0.02)
    log = tmp_path / "collector.log"
    rng = random.Random(9)
    bodies = [make_attempt(f"t{i}") for i in range(240)]
    acknowledged: list[str] = []
    sent = 0
    for _ in range(4):
        proc = _start(config, log, port)
        try:
            until = time.monotonic() + rng.uniform(0.3, 0.8)
            first = sent
            # At least 15 attempts a round, then until the (random) moment of the kill.
            while sent < len(bodies) and (time.monotonic() < until or sent - first < 15):
                if post_pb(port, bodies[sent]) == 200:
                    acknowledged.append(attempt_of(bodies[sent]))
                sent += 1
            assert proc.poll() is None, "the collector died on its own"
        finally:
            _kill(proc)
    proc = _start(config, log, port)
    try:
        wait_until(
            lambda: {r["attempt_id"] for r in attempt_lines(tmp_path / "out")} >= set(acknowledged),
            what="every acknowledged attempt's record",
        )
    finally:
        _stop(proc)
    lines = attempt_lines(tmp_path / "out")
    twice = [
        k for k, n in Counter((r["attempt_id"], r["revision"]) for r in lines).items() if n > 1
    ]
    assert twice == []
    assert len(acknowledged) >= 60
    trials = tmp_path / "out" / "features" / "trials.jsonl"
    trial_keys = Counter(
        (t["trial_id"], t["revision"]) for t in map(json.loads, trials.read_text().splitlines())
    )
    assert max(trial_keys.values()) == 1
    assert "Traceback" not in log.read_text()


def _segments(out: Path) -> list[Path]:
    return sorted((out / "spool").glob("*.seg"))


def test_a_record_written_but_not_marked_before_a_kill_is_not_written_again(
    tmp_path: Path,
) -> None:
    """The window the kill -9 test hits by chance, made certain: the record is in
    attempts.jsonl, the release marker saying so is not in the spool."""
    port = free_port()
    config = _config(tmp_path, port, grace_s=0.05)
    log = tmp_path / "collector.log"
    out = tmp_path / "out"
    body = make_attempt("marked-or-not")
    attempt = attempt_of(body)
    proc = _start(config, log, port)
    try:
        assert post_pb(port, body) == 200
        wait_until(lambda: attempt_lines(out), what="the record")
        time.sleep(0.2)  # the marker follows the record
    finally:
        _kill(proc)
    (segment,) = _segments(out)
    data = segment.read_bytes()
    records, _, _ = scan_records(1, data, len(MAGIC))
    last_data = max(r.end for r in records if r.kind in (1, 2))
    assert len(data) > last_data  # the marker is there ...
    os.truncate(segment, last_data)  # ... and now it is not: killed just before writing it
    proc = _start(config, log, port)
    try:
        wait_until(lambda: metrics_json(port)["attempt_records"] >= 1, what="the replay")
        time.sleep(0.3)
    finally:
        _stop(proc)
    assert [r["attempt_id"] for r in attempt_lines(out)] == [attempt]
    trials = (out / "features" / "trials.jsonl").read_text().splitlines()
    assert len(trials) == 1
    assert "2 records written before the stop but not marked" in log.read_text()


def test_a_corrupt_spool_record_costs_only_itself(tmp_path: Path) -> None:
    """Five requests spooled, none written yet (long grace), kill -9, one byte flipped in the
    third record's body: the restart writes the other four attempts and counts the loss."""
    port = free_port()
    log = tmp_path / "collector.log"
    out = tmp_path / "out"
    bodies = [make_attempt(f"c{i}", tools=i + 1) for i in range(5)]
    proc = _start(_config(tmp_path, port, grace_s=600), log, port)
    try:
        for body in bodies:
            assert post_pb(port, body) == 200
    finally:
        _kill(proc)
    assert attempt_lines(out) == []
    (segment,) = _segments(out)
    data = bytearray(segment.read_bytes())
    records, _, _ = scan_records(1, bytes(data), len(MAGIC))
    third = [r for r in records if r.kind == 1][2]
    data[third.start + HEADER.size + 40] ^= 0x01  # a single bit
    segment.write_bytes(bytes(data))
    proc = _start(_config(tmp_path, port, grace_s=0.05), log, port)
    try:
        wanted = {attempt_of(b) for i, b in enumerate(bodies) if i != 2}
        wait_until(lambda: {r["attempt_id"] for r in attempt_lines(out)} == wanted)
        m = metrics_json(port)
        assert (m["spool_lost_records"], m["spool_lost_spans"]) == (1, third.count)
        assert m["spool_lost_bytes"] == third.end - third.start
    finally:
        _stop(proc)
    assert "skipped a corrupt record" in log.read_text()


# ------------------------------------------------------------------------------ files


class _Downstream:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_collector_files_are_owner_only(collector: Factory, tmp_path: Path) -> None:
    down = _Downstream()
    try:
        c = collector(forward=down.url, segment_roll_s=60)
        assert post_pb(c.http_port, make_attempt()) == 200
        out = tmp_path / "out"
        wait_until(lambda: attempt_lines(out) and list((out / "spool").glob("*.fwd")))
        c.processor.save_revisions(c.config.spool_dir)
        files = [
            *(out / "spool").iterdir(),
            out / "features" / "attempts.jsonl",
            out / "features" / "trials.jsonl",
        ]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        assert {"LOCK", "revisions.json", "attempts.jsonl", "trials.jsonl"} <= set(modes)
        assert any(n.endswith(".seg") for n in modes) and any(n.endswith(".fwd") for n in modes)
        assert set(modes.values()) == {0o600}, modes
    finally:
        down.close()
