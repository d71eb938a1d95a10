"""The collector under load: sustained spans/s through the OTLP/HTTP receiver, request latency,
shedding with 429, and memory with 10,000 in-flight attempts.

Starts `agentsignals collect` as a real subprocess on loopback, then:

1. sustained load: `--clients` threads each POST OTLP/protobuf requests of `--spans` spans
   (agent-shaped: attempts of turns and tools) as fast as the collector accepts them, for
   `--seconds`; reports accepted spans/s, p50/p99 latency, 429s, and the collector's RSS;
2. paced load: 50 "agents" x 100 spans/s (5,000 spans/s, the goal) for `--seconds`;
3. overload: a tiny processing queue, to show 429s with Retry-After instead of memory growth;
4. in-flight memory: 10,000 attempts whose attempt span never arrives; RSS and /metrics.

    python benchmarks/bench_collector.py [--seconds 10] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from agentsignals._spans.encode import encode_otlp_protobuf
from agentsignals._spans.model import Span


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def make_request(
    client: int, seq: int, spans_per_request: int, *, with_attempt_span: bool = True
) -> bytes:
    """One request: the spans of one small attempt (tools, then the attempt span)."""
    resource = {"service.name": f"agent-{client}"}
    attempt = f"{client:08x}{seq:024x}"
    trace = f"{client:08x}{seq:024x}"
    spans = []
    n_tools = spans_per_request - 1
    for i in range(n_tools):
        spans.append(
            Span(
                trace_id=trace,
                span_id=f"{(seq * 1000 + i + 1) % (1 << 63):016x}",
                parent_span_id="00000000000000aa",
                name="execute_tool bash",
                kind=1,
                start_ns=1_700_000_000_000_000_000 + i * 1_000_000,
                end_ns=1_700_000_000_000_500_000 + i * 1_000_000,
                attributes={
                    "agent_signals.span.type": "tool",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "bash",
                    "agent_signals.tool.category": "shell",
                    "agent_signals.attempt.id": attempt,
                    "agent_signals.attempt.index": 0,
                    "agent_signals.trial.id": attempt,
                    "agent_signals.turn.index": i // 4,
                    "agent_signals.tool.call.fingerprint": f"{i % 7:016x}",
                    "process.exit.code": 0,
                },
                resource=resource,
                scope_name="agentsignals",
            )
        )
    if with_attempt_span:
        spans.append(
            Span(
                trace_id=trace,
                span_id="00000000000000aa",
                parent_span_id=None,
                name="invoke_agent",
                kind=1,
                start_ns=1_700_000_000_000_000_000,
                end_ns=1_700_000_100_000_000_000,
                attributes={
                    "agent_signals.span.type": "attempt",
                    "gen_ai.operation.name": "invoke_agent",
                    "agent_signals.attempt.id": attempt,
                    "agent_signals.attempt.index": 0,
                    "agent_signals.trial.id": attempt,
                },
                resource=resource,
                scope_name="agentsignals",
            )
        )
    return encode_otlp_protobuf(spans)


class Collector:
    def __init__(self, workdir: Path, *extra: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentsignals._collector", "--http-port", str(self.port),
             "--grpc-port", "0", "--output-dir", str(workdir), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("collector did not start")

    def metrics(self) -> dict[str, object]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/metrics?format=json", timeout=5
        ) as r:
            return dict(json.loads(r.read()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def post(port: int, body: bytes) -> tuple[int, float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces", data=body, method="POST",
        headers={"Content-Type": "application/x-protobuf"},
    )  # fmt: skip
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    return code, time.perf_counter() - start


def load(
    port: int, clients: int, seconds: float, spans: int, rate_per_client: float | None
) -> dict[str, float]:
    """Each client sends requests until time is up; paced when a rate (spans/s) is given."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    accepted = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(cid: int) -> None:
        seq = 0
        next_at = time.perf_counter()
        while time.perf_counter() < stop_at:
            body = make_request(cid, seq, spans)
            seq += 1
            code, latency = post(port, body)
            with lock:
                latencies.append(latency)
                codes[code] = codes.get(code, 0) + 1
                if code == 200:
                    accepted[0] += spans
            if code == 429:
                time.sleep(0.05)
            if rate_per_client:
                next_at += spans / rate_per_client
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "spans_per_s": accepted[0] / elapsed,
        "requests": float(len(latencies)),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0,
        "http_429": float(codes.get(429, 0)),
        "errors": float(sum(v for k, v in codes.items() if k not in (200, 429))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--spans", type=int, default=100, help="spans per request")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        work = Path(tmp)
        c = Collector(work / "a")
        try:
            r = load(c.port, args.clients, args.seconds, args.spans, None)
            rows.append((f"max rate, {args.clients} clients", r, _rss_kb(c.proc.pid)))
            r = load(c.port, 50, args.seconds, args.spans, 100.0)
            rows.append(("paced: 50 agents x 100 spans/s", r, _rss_kb(c.proc.pid)))
        finally:
            c.stop()
        c = Collector(work / "b", "--queue-size", "2000")
        try:
            r = load(c.port, 16, args.seconds, args.spans, None)
            rows.append(("overload: queue of 2,000 spans, 16 clients", r, _rss_kb(c.proc.pid)))
        finally:
            c.stop()
        c = Collector(work / "c")
        try:
            base = _rss_kb(c.proc.pid)
            for seq in range(10_000):
                code, _ = post(c.port, make_request(1, seq, 11, with_attempt_span=False))
                while code == 429:
                    time.sleep(0.05)
                    code, _ = post(c.port, make_request(1, seq, 11, with_attempt_span=False))
            time.sleep(2)
            metrics = c.metrics()
            inflight_rss = _rss_kb(c.proc.pid)
        finally:
            c.stop()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print()
    header = "| load | accepted spans/s | requests | p50 ms | p99 ms | 429s | errors | RSS MB |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r, rss in rows:
        print(
            f"| {label} | {r['spans_per_s']:,.0f} | {r['requests']:,.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['http_429']:,.0f} | {r['errors']:,.0f} | {rss / 1024:.0f} |"
        )
    print()
    in_flight = metrics.get("in_flight_attempts", metrics.get("in_flight"))
    print(
        f"10,000 in-flight attempts (11 spans each, attempt span never sent): in flight per "
        f"/metrics = {in_flight}; RSS {base / 1024:.0f} MB -> {inflight_rss / 1024:.0f} MB "
        f"({(inflight_rss - base) * 1024 / 10_000:,.0f} bytes per attempt)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
