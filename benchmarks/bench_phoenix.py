"""The collector and Arize Phoenix receiving the same OTLP traffic, side by side in one run.

Run: ``python benchmarks/bench_phoenix.py [--rounds 7] [--spans 5000] [--clients 4]
[--phoenix-venv DIR] [--json PATH]``. Prints Markdown. Not a test.

Both servers run at once on loopback, each a subprocess with a fresh working directory:
``agentsignals collect`` (started as ``benchmarks/bench_collector.py`` starts it: default
settings, gRPC off) and a real Phoenix (``phoenix serve`` from its own venv through
``exporters/phoenix/start-phoenix.sh``, SQLite in its working directory, as
``tests/test_backends_phoenix.py`` starts it; ``--phoenix-venv`` or
``$AGENTSIGNALS_PHOENIX_VENV``, default ``<repo>/.venv-phoenix``).

Each round builds one batch of agent-shaped OTLP/protobuf requests (``bench_collector.
make_request``: an attempt span and its tool spans, 100 spans a request), with span and trace
ids made unique across the whole run (Phoenix keeps one row per span id, so the ids
``make_request`` repeats across clients would be dropped as duplicates there). The bodies are
encoded before the clock starts, and the same bytes go to both servers, one after the other,
which one goes first alternating by round. ``--clients`` threads POST them to
``/v1/traces`` as fast as each server answers. Per server and round:

- accepted spans/s: spans in 200 answers ÷ time from the first POST to the last answer;
- until processed / queryable (polled every 10 ms at first, every 0.25 s after 2.5 s): from
  the first POST until the collector's ``/metrics`` counts
  every span processed (``processed_spans``, its feature records written), and until Phoenix's
  GraphQL API counts every span in its projects (``recordCount``, as the UI and the REST API
  read them): spans ÷ that time;
- the server process's CPU time (``/proc/<pid>/stat``) over the same interval, as spans per
  CPU-second, the figure least moved by other people's load on a shared machine (also while
  accepting only: first POST to last answer). The kernel counts CPU in ticks of 10 ms, so
  the collector's ~0.1 CPU-second per round is read to about ±10%.

Tables: median [min–max] of the rounds, and the collector ÷ Phoenix ratio per round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_collector import Collector, make_request, post

ROOT = Path(__file__).resolve().parents[1]
START_SCRIPT = ROOT / "exporters" / "phoenix" / "start-phoenix.sh"
SPANS_PER_REQUEST = 100
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / _CLK_TCK


def _free_port() -> int:
    # Phoenix binds its gRPC port on every interface: the port must be free on all of them.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


class Phoenix:
    def __init__(self, venv: Path, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
        env.update(
            AGENTSIGNALS_PHOENIX_VENV=str(venv),
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.port),
            PHOENIX_GRPC_PORT=str(_free_port()),
            PHOENIX_WORKING_DIR=str(workdir),
        )
        self.log = (workdir.parent / "phoenix.log").open("wb")
        self.proc = subprocess.Popen(
            ["bash", str(START_SCRIPT)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"phoenix exited; see {self.log.name}")
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"phoenix not up after 180 s; see {self.log.name}") from None
                time.sleep(0.5)

    def span_count(self) -> int:
        query = {"query": "{ projects { edges { node { name recordCount } } } }"}
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        return sum(e["node"]["recordCount"] for e in body["data"]["projects"]["edges"])

    def stop(self) -> None:
        # The start script execs phoenix, so the process is Phoenix itself.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def unique_bodies(first_seq: int, clients: int, requests: int, next_id: list[int]) -> list[bytes]:
    """``make_request`` bodies with every span id (and its parent's) new in the run."""
    bodies = []
    for k in range(requests):
        client, seq = k % clients, first_seq + k // clients
        request = ExportTraceServiceRequest()
        request.ParseFromString(make_request(client, seq, SPANS_PER_REQUEST))
        new: dict[bytes, bytes] = {}
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    next_id[0] += 1
                    new[span.span_id] = next_id[0].to_bytes(8, "big")
                for span in ss.spans:
                    span.span_id = new[span.span_id]
                    if span.parent_span_id in new:
                        span.parent_span_id = new[span.parent_span_id]
        bodies.append(request.SerializeToString())
    return bodies


def send(port: int, bodies: list[bytes], clients: int) -> tuple[int, int, float]:
    """POST every body with `clients` threads; (spans accepted, other answers, seconds)."""
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "failed": 0}

    def client() -> None:
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(bodies):
                return
            code, _ = post(port, bodies[i])
            while code == 429:  # the collector sheds load with 429: retry, as an exporter does
                time.sleep(0.05)
                code, _ = post(port, bodies[i])
            with lock:
                if code == 200:
                    state["accepted"] += SPANS_PER_REQUEST
                else:
                    state["failed"] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state["accepted"], state["failed"], time.perf_counter() - t0


def run_one(
    port: int, pid: int, bodies: list[bytes], clients: int, done: Callable[[], bool]
) -> dict[str, float]:
    cpu0, t0 = _cpu_s(pid), time.perf_counter()
    accepted, failed, took = send(port, bodies, clients)
    accept_cpu = _cpu_s(pid) - cpu0
    # Poll often at first, then every 0.25 s: each count is a query the server answers, so a
    # tight poll would take CPU from the ingestion it measures.
    answered = time.perf_counter()
    while not done():
        waited = time.perf_counter() - answered
        if waited > 600:
            raise RuntimeError("spans not counted after 600 s")
        time.sleep(min(0.25, 0.01 + waited / 10))
    until = time.perf_counter() - t0
    cpu = _cpu_s(pid) - cpu0
    return {
        "accepted_per_s": accepted / took,
        "failed": failed,
        "done_per_s": accepted / until,
        "until_s": until,
        "lag_s": until - took,
        "spans_per_cpu_s": accepted / cpu if cpu else float("nan"),
        "accept_cpu_s": accept_cpu,
        "accept_spans_per_cpu_s": accepted / accept_cpu if accept_cpu else float("nan"),
    }


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _spread(values: list[float], fmt: str) -> str:
    m, lo, hi = (format(v, fmt) for v in (statistics.median(values), min(values), max(values)))
    return f"{m} [{lo}–{hi}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (7; at least 5)")
    parser.add_argument("--spans", type=int, default=5000, help="spans per round per server")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--phoenix-venv",
        default=os.environ.get("AGENTSIGNALS_PHOENIX_VENV", str(ROOT / ".venv-phoenix")),
    )
    parser.add_argument("--json", metavar="PATH", help="also write every sample")
    args = parser.parse_args()
    venv = Path(args.phoenix_venv)
    if not (venv / "bin" / "phoenix").is_file():
        print(f"no Phoenix at {venv}/bin/phoenix (pip install arize-phoenix into it)")
        return 2
    rounds = max(5, args.rounds)
    requests = max(args.clients, args.spans // SPANS_PER_REQUEST)
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import phoenix; print(phoenix.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    began = time.perf_counter()
    loads = [_load()]
    samples: dict[str, list[dict[str, float]]] = {"collector": [], "phoenix": []}
    with tempfile.TemporaryDirectory(prefix="bench-phoenix-") as tmp:
        work = Path(tmp)
        (work / "phoenix").mkdir()
        collector = Collector(work / "collector")
        phoenix: Phoenix | None = None
        try:
            phoenix = Phoenix(venv, work / "phoenix" / "data")
            sent = {"collector": 0, "phoenix": 0}
            next_id = [1 << 40]
            servers = {
                "collector": (
                    collector.port,
                    collector.proc.pid,
                    lambda: int(collector.metrics()["processed_spans"]) >= sent["collector"],
                ),
                "phoenix": (
                    phoenix.port,
                    phoenix.proc.pid,
                    lambda: phoenix is not None and phoenix.span_count() >= sent["phoenix"],
                ),
            }
            # A warm-up round for both (first requests, table creation), not counted.
            for r in range(-1, rounds):
                seq0 = (r + 1) * (requests // args.clients + 1)
                bodies = unique_bodies(seq0, args.clients, requests, next_id)
                order = ("collector", "phoenix") if r % 2 == 0 else ("phoenix", "collector")
                for name in order:
                    port, pid, counted = servers[name]
                    sent[name] += len(bodies) * SPANS_PER_REQUEST
                    result = run_one(port, pid, bodies, args.clients, counted)
                    if r >= 0:
                        samples[name].append(result)
                loads.append(_load())
        finally:
            collector.stop()
            if phoenix is not None:
                phoenix.stop()
    elapsed = time.perf_counter() - began

    c, p = samples["collector"], samples["phoenix"]
    w = print
    w(f"## bench_phoenix.py — {time.strftime('%Y-%m-%d %H:%M:%S')}")
    w("")
    w(
        f"- Phoenix {version or '?'} (SQLite), `agentsignals collect` (default settings); "
        f"{requests} requests × {SPANS_PER_REQUEST} spans per round and server, {args.clients} "
        f"client threads; {rounds} rounds after one warm-up, order alternating; total "
        f"{elapsed:.0f} s"
    )
    w(
        f"- machine: nproc={os.cpu_count()}, Python {platform.python_version()}; load average "
        f"(1/5/15 min) at the start {loads[0]}, after each round "
        f"{', '.join(x.split()[0] for x in loads[1:])}"
    )
    w(f"- non-200 answers: collector {sum(x['failed'] for x in c):.0f}, Phoenix "
      f"{sum(x['failed'] for x in p):.0f}")  # fmt: skip
    w("")
    w("| measure | collector | Phoenix | collector ÷ Phoenix |")
    w("|---|---:|---:|---:|")
    rows = (
        ("accepted spans/s (200 answers)", "accepted_per_s", ",.0f", True),
        (
            "spans/s until processed (collector) / queryable (Phoenix)",
            "done_per_s",
            ",.0f",
            True,
        ),
        ("seconds after the last answer until then", "lag_s", ".2f", False),
        ("spans per server CPU-second while accepting", "accept_spans_per_cpu_s", ",.0f", True),
        (
            "spans per server CPU-second, until processed / queryable",
            "spans_per_cpu_s",
            ",.0f",
            True,
        ),
    )
    for label, field, fmt, ratio in rows:
        cv, pv = [x[field] for x in c], [x[field] for x in p]
        cell = "–"
        if ratio:
            rs = [a / b for a, b in zip(cv, pv, strict=True)]
            cell = f"**{statistics.median(rs):.1f}×** [{min(rs):.1f}–{max(rs):.1f}]"
        w(f"| {label} | {_spread(cv, fmt)} | {_spread(pv, fmt)} | {cell} |")
    w("")
    if args.json:
        Path(args.json).write_text(json.dumps({"loads": loads, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
