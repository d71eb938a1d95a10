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

With ``--ceiling`` (issue #16, finding 8): the
collector against a decode-only receiver, an old build and 1-2 workers, interleaved rounds,
spans per server CPU-second; then memory and spool when trial spans never arrive.

    python benchmarks/bench_collector.py --ceiling [--rounds 5] [--seconds 8] [--old f92fb54]
"""

from __future__ import annotations

import argparse
import contextlib
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

from _harness import build_src
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


def issue6_main(args: argparse.Namespace) -> int:
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


# ------------------------------------------------------------------ issue #16, finding 8

ROOT = Path(__file__).resolve().parents[1]
_TRACE_MARK = b"\xab" * 16  # the template's trace id (raw, in the protobuf)
_ID_MARK = b"ab" * 16  # the template's attempt and trial id (text)


def _template(shape: str, spans: int) -> bytes:
    """One request: one attempt of tool spans. ``complete``: with its attempt and trial spans;
    ``no-trial``: the attempt closes, its trial span never arrives; ``open``: neither."""
    ident = _ID_MARK.decode()
    trace = _TRACE_MARK.hex()
    resource = {"service.name": "bench-agent"}
    ends = {"complete": 2, "no-trial": 1, "open": 0}[shape]
    out = []
    for i in range(spans - ends):
        out.append(
            Span(
                trace_id=trace, span_id=f"{i + 1:016x}", parent_span_id="00000000000000aa",
                name="execute_tool bash", kind=1,
                start_ns=1_700_000_000_000_000_000 + i * 1_000_000,
                end_ns=1_700_000_000_000_500_000 + i * 1_000_000,
                attributes={
                    "agent_signals.span.type": "tool", "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "bash", "agent_signals.tool.category": "shell",
                    "agent_signals.attempt.id": ident, "agent_signals.attempt.index": 0,
                    "agent_signals.trial.id": ident, "agent_signals.turn.index": i // 4,
                    "agent_signals.tool.call.fingerprint": f"{i % 7:016x}",
                    "process.exit.code": 0,
                },
                resource=resource, scope_name="agentsignals",
            )
        )  # fmt: skip
    if ends >= 1:
        out.append(
            Span(
                trace_id=trace, span_id="00000000000000aa",
                parent_span_id="00000000000000bb" if ends == 2 else None,
                name="invoke_agent", kind=1,
                start_ns=1_700_000_000_000_000_000, end_ns=1_700_000_100_000_000_000,
                attributes={
                    "agent_signals.span.type": "attempt", "gen_ai.operation.name": "invoke_agent",
                    "agent_signals.attempt.id": ident, "agent_signals.attempt.index": 0,
                    "agent_signals.trial.id": ident,
                },
                resource=resource, scope_name="agentsignals",
            )
        )  # fmt: skip
    if ends == 2:
        out.append(
            Span(
                trace_id=trace, span_id="00000000000000bb", parent_span_id=None,
                name="trial", kind=1,
                start_ns=1_700_000_000_000_000_000, end_ns=1_700_000_100_000_000_001,
                attributes={
                    "agent_signals.span.type": "trial", "agent_signals.trial.id": ident,
                    "agent_signals.task.id": "bench-task",
                    "agent_signals.trial.attempt_count": 1,
                },
                resource=resource, scope_name="agentsignals",
            )
        )  # fmt: skip
    return encode_otlp_protobuf(out)


def run_load(spec: dict[str, object]) -> int:
    """The load generator (its own process): ``clients`` threads POST requests, each a new
    attempt (fresh ids by same-length substitution into one encoded template), as fast as
    they are answered, reconnecting every ``reconnect`` requests (so SO_REUSEPORT spreads
    connections over the workers). Prints a JSON summary."""
    import http.client

    port = int(str(spec["port"]))
    seconds = float(str(spec["seconds"]))
    clients = int(str(spec["clients"]))
    spans = int(str(spec["spans"]))
    reconnect = int(str(spec["reconnect"]))
    template = _template(str(spec["shape"]), spans)
    lock = threading.Lock()
    accepted = [0]
    codes: dict[int, int] = {}
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    def client(cid: int) -> None:
        seq = 0
        conn: http.client.HTTPConnection | None = None
        mine: list[float] = []
        while time.perf_counter() < stop_at:
            n = (cid << 40) | seq
            body = template.replace(_TRACE_MARK, n.to_bytes(16, "big")).replace(
                _ID_MARK, f"{n:032x}".encode()
            )
            if conn is None or seq % reconnect == 0:
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                code = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                code = 599
            mine.append(time.perf_counter() - started)
            with lock:
                codes[code] = codes.get(code, 0) + 1
                if code == 200:
                    accepted[0] += spans
            if code == 200:
                seq += 1
            else:
                time.sleep(0.05)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    print(
        json.dumps(
            {
                "accepted_spans": accepted[0],
                "elapsed": elapsed,
                "codes": codes,
                "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
                "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
                if latencies
                else 0.0,
            }
        )
    )
    return 0


def serve_decode(port: int) -> int:
    """The decode-only receiver: the same stdlib HTTP/1.1 server, body read and decoded into
    typed spans (agentsignals' decoder), 200 with an empty response. SO_REUSEPORT, so
    several can share a port."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from agentsignals._spans.decode import decode_otlp_protobuf

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            decode_otlp_protobuf(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        allow_reuse_port = True
        request_queue_size = 128

    Server(("127.0.0.1", port), Handler).serve_forever()
    return 0


def serve_receiver(argv: list[str]) -> int:
    """This build's collector with the features taken out (the processing thread only moves
    its position on): what receiving, spooling and syncing cost without assembling attempts."""
    from agentsignals._collector import pipeline, service

    def process(self: pipeline.Processor, batch: pipeline.Batch) -> None:
        self.processed = batch.end

    pipeline.Processor.process = process  # type: ignore[method-assign]
    config = service.config_from_args(service.build_parser().parse_args(argv))
    return service.run(config)


def _pids(root: int) -> list[int]:
    """``root`` and its descendants."""
    out = [root]
    i = 0
    while i < len(out):
        pid = out[i]
        i += 1
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                out += [int(c) for c in text.split()]
        except OSError:
            continue
    return out


def _cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _rss_mb(pids: list[int]) -> float:
    return sum(_rss_kb(p) for p in pids if Path(f"/proc/{p}").exists()) / 1024


def _dir_mb(path: Path, part: str) -> float:
    total = 0
    for f in path.rglob("*"):
        if part in f.parts and f.is_file():
            with contextlib.suppress(OSError):
                total += f.stat().st_size
    return total / (1 << 20)


class Server:
    """A receiver under test, as a process tree on a free port."""

    def __init__(self, kind: str, workdir: Path, old_src: Path | None, extra: list[str]) -> None:
        self.port = _free_port()
        self.workdir = workdir
        env = dict(os.environ)
        src = old_src if kind == "old" else ROOT / "src"
        env["PYTHONPATH"] = str(src)
        if kind.startswith("decode"):
            n = 2 if kind.endswith("x2") else 1
            self.procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--serve-decode", str(self.port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(n)
            ]
        else:
            cmd = [sys.executable, "-m", "agentsignals._collector", "--http-port", str(self.port),
                   "--grpc-port", "0", "--output-dir", str(workdir), *extra]  # fmt: skip
            if kind == "receiver":
                cmd[1:3] = [__file__, "--serve-receiver"]
            if kind == "new x2":
                cmd += ["--workers", "2"]
            self.procs = [
                subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{kind} did not start")
        time.sleep(0.5)  # every worker / process up

    def pids(self) -> list[int]:
        return [p for proc in self.procs for p in _pids(proc.pid)]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _load(port: int, seconds: float, clients: int, spans: int, shape: str) -> subprocess.Popen[str]:
    spec = {"port": port, "seconds": seconds, "clients": clients, "spans": spans,
            "shape": shape, "reconnect": 20}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, __file__, "--load", json.dumps(spec)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip


def _quiet_cpu(pids: list[int], timeout: float = 60.0) -> float:
    """CPU seconds once the server has finished its backlog (two quiet 0.2-s samples)."""
    last = _cpu_s(pids)
    quiet = 0
    deadline = time.time() + timeout
    while time.time() < deadline and quiet < 2:
        time.sleep(0.2)
        now = _cpu_s(pids)
        quiet = quiet + 1 if now - last < 0.01 else 0
        last = now
    return last


def _one_run(kind: str, work: Path, old_src: Path, args: argparse.Namespace) -> dict[str, float]:
    server = Server(kind, work, old_src, [])
    try:
        pids = server.pids()
        cpu0 = _cpu_s(pids)
        load = _load(server.port, args.seconds, args.clients, args.spans, "complete")
        out, _ = load.communicate()
        cpu1 = _quiet_cpu(pids)
        result = json.loads(out)
        rss = _rss_mb(pids)
    finally:
        server.stop()
    spans = float(result["accepted_spans"])
    codes = {int(k): v for k, v in result["codes"].items()}
    return {
        "spans_per_s": spans / result["elapsed"],
        "per_cpu_s": spans / max(1e-9, cpu1 - cpu0),
        "server_cpu_share": (cpu1 - cpu0) / result["elapsed"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "errors": float(sum(v for k, v in codes.items() if k not in (200, 429))),
        "http_429": float(codes.get(429, 0)),
        "rss_mb": rss,
    }


def _spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    mid, low, high = statistics.median(values), min(values), max(values)
    return f"{fmt.format(mid)} [{fmt.format(low)}–{fmt.format(high)}]"


def _bounds_run(kind: str, work: Path, old_src: Path, shape: str, seconds: float,
                extra: list[str], args: argparse.Namespace) -> dict[str, object]:  # fmt: skip
    server = Server(kind, work, old_src, extra)
    samples: list[tuple[float, float, float]] = []
    try:
        pids = server.pids()
        load = _load(server.port, seconds, args.clients, args.spans, shape)
        began = time.time()
        while load.poll() is None:
            samples.append((time.time() - began, _rss_mb(pids), _dir_mb(work, "spool")))
            time.sleep(1.0)
        out, _ = load.communicate()
        result = json.loads(out)
        time.sleep(2.0)
        samples.append((time.time() - began, _rss_mb(pids), _dir_mb(work, "spool")))
        metrics = {}
        if kind != "decode":
            with urllib.request.urlopen(
                f"http://127.0.0.1:{server.port}/metrics?format=json", timeout=10
            ) as r:
                metrics = json.loads(r.read())
    finally:
        server.stop()
    return {"samples": samples, "result": result, "metrics": metrics}


def ceiling_main(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",")]
    print(f"machine: {os.cpu_count()} cores (client and servers share them), "
          f"Python {sys.version.split()[0]}, old build {args.old}, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-ceiling-") as tmp:
        work = Path(tmp)
        old_src = build_src(args.old, work / "old")
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        if not args.skip_throughput:
            for r in range(args.rounds):
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                for kind in order:
                    res = _one_run(kind, work / f"r{r}-{kind.replace(' ', '')}", old_src, args)
                    runs[kind].append(res)
                    print(f"  round {r + 1} {kind}: {res['spans_per_s']:,.0f} spans/s, "
                          f"{res['per_cpu_s']:,.0f} per server CPU-s, errors {res['errors']:.0f}",
                          file=sys.stderr, flush=True)  # fmt: skip
            print()
            print(f"Throughput: {args.clients} client threads in one process, {args.spans}-span "
                  f"OTLP/protobuf requests (each a new trial: tools, attempt and trial spans), "
                  f"{args.seconds:.0f} s per run, {args.rounds} rounds interleaved "
                  f"(median [min–max]).")  # fmt: skip
            print()
            print("| receiver | accepted spans/s | spans per server CPU-s | server cores busy "
                  "| p50 ms | p99 ms | 429s | errors |")  # fmt: skip
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            for kind in kinds:
                rs = runs[kind]
                print(
                    f"| {kind} | {_spread([x['spans_per_s'] for x in rs])} | "
                    f"{_spread([x['per_cpu_s'] for x in rs])} | "
                    f"{_spread([x['server_cpu_share'] for x in rs], '{:.2f}')} | "
                    f"{_spread([x['p50_ms'] for x in rs], '{:.1f}')} | "
                    f"{_spread([x['p99_ms'] for x in rs], '{:.1f}')} | "
                    f"{sum(x['http_429'] for x in rs):,.0f} | {sum(x['errors'] for x in rs):,.0f} |"
                )
            print()

            def ratio(a: str, b: str, key: str) -> str:
                if not runs.get(a) or not runs.get(b):
                    return "–"
                vals = [x[key] / y[key] for x, y in zip(runs[a], runs[b], strict=True)]
                return _spread(vals, "{:.2f}") + "×"

            print("Paired by round:")
            print(f"- new ÷ decode-only, per server CPU-s: {ratio('new', 'decode', 'per_cpu_s')}; "
                  f"accepted spans/s: {ratio('new', 'decode', 'spans_per_s')}")  # fmt: skip
            print(f"- old ÷ decode-only, per server CPU-s: {ratio('old', 'decode', 'per_cpu_s')}; "
                  f"accepted spans/s: {ratio('old', 'decode', 'spans_per_s')}")  # fmt: skip
            print(f"- receiver without features ÷ decode-only, per server CPU-s: "
                  f"{ratio('receiver', 'decode', 'per_cpu_s')}")  # fmt: skip
            print(f"- new ÷ old, per server CPU-s: {ratio('new', 'old', 'per_cpu_s')}; "
                  f"accepted spans/s: {ratio('new', 'old', 'spans_per_s')}")  # fmt: skip
            print("- new, 2 workers ÷ 1: accepted spans/s "
                  f"{ratio('new x2', 'new', 'spans_per_s')}, "
                  f"per server CPU-s {ratio('new x2', 'new', 'per_cpu_s')}")  # fmt: skip
            print(f"- decode-only, 2 processes ÷ 1: accepted spans/s "
                  f"{ratio('decode x2', 'decode', 'spans_per_s')}, per server CPU-s "
                  f"{ratio('decode x2', 'decode', 'per_cpu_s')}")  # fmt: skip
            print(f"- new, 2 workers ÷ decode-only, 2 processes, per server CPU-s: "
                  f"{ratio('new x2', 'decode x2', 'per_cpu_s')}")  # fmt: skip
        if not args.skip_bounds:
            print()
            print(f"Bounds: {args.bounds_seconds:.0f} s at full speed, RSS of the server "
                  f"processes and spool on disk sampled every second (max over the run / at "
                  f"the end, 2 s after the load).")  # fmt: skip
            print()
            print("| load | build, settings | spans accepted | RSS MB max / end "
                  "| spool MB max / end | in flight / pending trials at end "
                  "| written early |")  # fmt: skip
            print("|---|---|---:|---:|---:|---:|---:|")
            cases = [
                ("trial span never arrives", "old", "no-trial", [], "old (max_in_flight 10,000)"),
                ("trial span never arrives", "new", "no-trial", [], "new, defaults"),
                ("attempt span never arrives", "old", "open", [], "old (max_in_flight 10,000)"),
                ("attempt span never arrives", "new", "open", [], "new, defaults"),
                ("attempt span never arrives", "new", "open",
                 ["--max-held-spans", "100000", "--max-spool-bytes", "256MiB"],
                 "new, --max-held-spans 100000 --max-spool-bytes 256MiB"),
            ]  # fmt: skip
            for i, (label, kind, shape, extra, name) in enumerate(cases):
                res = _bounds_run(kind, work / f"b{i}", old_src, shape, args.bounds_seconds,
                                  extra, args)  # fmt: skip
                samples = res["samples"]
                assert isinstance(samples, list)
                m = res["metrics"]
                assert isinstance(m, dict)
                result = res["result"]
                assert isinstance(result, dict)
                early = (
                    (m.get("evicted_attempts", 0) or 0)
                    + (m.get("evicted_trials", 0) or 0)
                    + (m.get("spool_bound_released", 0) or 0)
                )
                print(
                    f"| {label} | {name} | {result['accepted_spans']:,} | "
                    f"{max(s[1] for s in samples):.0f} / {samples[-1][1]:.0f} | "
                    f"{max(s[2] for s in samples):.0f} / {samples[-1][2]:.0f} | "
                    f"{m.get('in_flight_attempts', '?')} / {m.get('pending_trials', '–')} | "
                    f"{early:,} |",
                    flush=True,
                )
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--serve-receiver"]:  # internal: the rest are `collect` flags
        return serve_receiver(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--spans", type=int, default=100, help="spans per request")
    parser.add_argument(
        "--ceiling", action="store_true",
        help="issue #16 finding 8: spans per server CPU-second against a decode-only receiver, "
        "an old build and 1-2 workers, interleaved; memory and spool when trials never close",
    )  # fmt: skip
    parser.add_argument("--old", default="f92fb54", help="the old build (git commit) for --ceiling")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bounds-seconds", type=float, default=40.0)
    parser.add_argument("--skip-bounds", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--kinds", default="decode,receiver,old,new,decode x2,new x2",
        help="receivers for --ceiling, comma-separated",
    )  # fmt: skip
    # Internal: the processes the ceiling benchmark starts.
    parser.add_argument("--serve-decode", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_decode is not None:
        return serve_decode(args.serve_decode)
    if args.load is not None:
        return run_load(json.loads(args.load))
    if args.ceiling:
        return ceiling_main(args)
    return issue6_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
