"""Per-call cost of a traced tool under the peers' decorators, side by side in one run (issue #16).

Run: ``python benchmarks/bench_peers.py [--repeats 9] [--target 0.2] [--quick] [--json PATH]``.
Prints Markdown. Not a test.

Cases, each a tool function called in a loop, every call a root span, every provider's chain
ending in a ``BatchSpanProcessor`` to a counting exporter that does no I/O:

1. ``plain``: ``with tracer.start_as_current_span("execute_tool work")`` on a clean SDK
   ``TracerProvider`` (the ceiling);
2. ``agentsignals``: ``@agentsignals.trace_tool`` after
   ``configure(tracer_provider=<its own provider>, exporters=[null], batch=True)``;
3. ``openinference``: ``@tracer.tool`` of an OpenInference ``TracerProvider`` (an ``OITracer``);
4. ``logfire``: ``@lf.instrument()`` with ``lf = logfire.configure(local=True,
   send_to_logfire=False, console=False, metrics=False, additional_span_processors=[batch
   (null)])`` (a local instance: its own provider, not the global one);
5. ``traceloop``: traceloop-sdk's ``@tool()`` after ``Traceloop.init(exporter=null,
   telemetry_enabled=False)``. ``Traceloop.init`` sets the *global* tracer provider and
   instruments ``threading`` and every library it finds, so it runs in its own worker process
   (this file with ``--worker traceloop``, the protocol of ``bench_before_after.py``: one JSON
   job a line, answers on lines starting with ``@@``), which also runs the ceiling, so its ratio
   is taken against the ceiling in its own process in the same round;
6. ``langfuse``: ``@observe(as_type="tool")`` of a ``Langfuse(tracer_provider=<its own
   provider>, span_exporter=null, base_url=<a closed loopback port>)`` client.

Each decorator runs with its defaults (the peers record the arguments and the return value as
span attributes by default; agentsignals' content capture is off by default); ``--no-content``
turns that off in the peers (OpenInference ``hide_inputs``/``hide_outputs``, Logfire
``extract_args=False``, ``TRACELOOP_TRACE_CONTENT=false``, Langfuse ``capture_input`` /
``capture_output=False``). Two tool bodies:
``work(x) -> x + 1``, and ``bash(command) -> "ok\\n"`` over ten command shapes with a new text
each call (as an agent sends them, so no cache by text hides the work).

Protocol: >= 7 rounds; in each round every case runs once, in an order rotated by one place per
round; ``gc.collect()`` before each run; the loop size of a case is fixed for the whole run
(calibrated on the ceiling's agent CPU time to ~``--target`` seconds, >= 1,000 calls). Per
run: the agent thread's CPU time (``time.thread_time_ns``) and wall time over the calls only,
and the whole process's CPU time from the first call until the case's provider has flushed
(its export thread included). Every case is divided by the ceiling of the same round (same
process); the tables show the median of the rounds and [min–max].

Missing peers are skipped with a one-line note. The project venv has OpenInference and Logfire
(``pip install -e '.[dev]'``); Traceloop and Langfuse are never project dependencies. To run all
six, use a throwaway venv::

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install -e . openinference-instrumentation logfire traceloop-sdk langfuse
    /tmp/peers/bin/python benchmarks/bench_peers.py

(if pip's resolver backtracks for long over traceloop-sdk's unpinned instrumentation packages,
see benchmarks/README.md for the ``--no-deps`` install used for docs/performance.md).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from _harness import LineWorker

SHELL_MIX = (
    "cat src/pkg/module_{i}.py",
    "sed -n '1,80p' src/pkg/module_{i}.py",
    "grep -rn 'def handle_{i}' src",
    "find . -name 'test_{i}*.py' | head -20",
    "cd /testbed && python -m pytest tests/test_{i}.py -x -q 2>&1 | tail -20",
    "python reproduce_{i}.py",
    "sed -i 's/old_{i}/new/' src/pkg/a.py",
    "cat > /tmp/r{i}.py <<'EOF'\nimport pkg\nprint(pkg.f({i}))\nEOF\npython /tmp/r{i}.py",
    "git diff src/pkg/module_{i}.py",
    "nl -ba src/pkg/a.py | sed -n '{i},+30p'",
)

PEERS = ("plain", "agentsignals", "openinference", "logfire", "traceloop", "langfuse")
LABELS = {
    "plain": "plain OTel span, clean provider (ceiling)",
    "agentsignals": "`@agentsignals.trace_tool`",
    "openinference": "OpenInference `@tracer.tool`",
    "logfire": "Logfire `@logfire.instrument()`",
    "traceloop": "Traceloop/OpenLLMetry `@tool()`",
    "langfuse": "Langfuse `@observe(as_type='tool')`",
}
# Peers that take the global tracer provider: each runs in a worker process of its own.
GLOBAL_PEERS = ("traceloop",)
DISTRIBUTION = {
    "plain": "opentelemetry-sdk",
    "agentsignals": "agentsignals",
    "openinference": "openinference-instrumentation",
    "logfire": "logfire",
    "traceloop": "traceloop-sdk",
    "langfuse": "langfuse",
}


def _clean_env() -> None:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "LOGFIRE_", "TRACELOOP_", "LANGFUSE_")) or name in (
            "TRACEPARENT",
            "TRACESTATE",
            "BAGGAGE",
        ):
            del os.environ[name]
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "1000000"  # nothing dropped, whatever the load
    os.environ["TRACELOOP_TELEMETRY"] = "false"


class _Case:
    """One traced tool: its two bodies (``work`` loop, ``bash`` loop), its flush, its count."""

    def __init__(
        self,
        work: Callable[[Any], Any],
        bash: Callable[[str], str],
        flush: Callable[[], Any],
        exported: Callable[[], int],
    ) -> None:
        self.work, self.bash, self.flush, self.exported = work, bash, flush, exported


def _null_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    return NullExporter()


def _raw_work(x: Any) -> Any:
    return x + 1


def _raw_bash(command: str) -> str:
    return "ok\n"


def _setup(peer: str, tmp: Path, content: bool = True) -> _Case:
    """Build one case; raises ImportError when the peer is not installed.

    ``content=False`` turns off the peers' recording of arguments and return values (their
    default is on; agentsignals' is off either way)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    null = _null_exporter()
    if peer == "plain":
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(null))
        start = provider.get_tracer("bench").start_as_current_span

        def work(x: Any) -> Any:
            with start("execute_tool work"):
                return _raw_work(x)

        def bash(command: str) -> str:
            with start("execute_tool bash"):
                return _raw_bash(command)

        return _Case(work, bash, provider.force_flush, lambda: null.count)
    if peer == "agentsignals":
        import agentsignals

        provider = TracerProvider(shutdown_on_exit=False)
        agentsignals.configure(tracer_provider=provider, exporters=[null], batch=True)

        @agentsignals.trace_tool
        def work(x: Any) -> Any:
            return x + 1

        @agentsignals.trace_tool
        def bash(command: str) -> str:
            return "ok\n"

        return _Case(work, bash, agentsignals.force_flush, lambda: null.count)
    if peer == "openinference":
        from openinference.instrumentation import TraceConfig
        from openinference.instrumentation import TracerProvider as OIProvider

        hide = not content
        config = TraceConfig(hide_inputs=hide, hide_outputs=hide)
        oi_provider = OIProvider(shutdown_on_exit=False, config=config)
        oi_provider.add_span_processor(BatchSpanProcessor(null))
        tracer = oi_provider.get_tracer("bench")

        @tracer.tool
        def work(x: Any) -> Any:
            return x + 1

        @tracer.tool
        def bash(command: str) -> str:
            return "ok\n"

        return _Case(work, bash, oi_provider.force_flush, lambda: null.count)
    if peer == "logfire":
        import logfire

        lf = logfire.configure(
            local=True,
            send_to_logfire=False,
            console=False,
            metrics=False,
            service_name="bench",
            service_version="0",
            data_dir=tmp / ".logfire",
            config_dir=tmp,
            additional_span_processors=[BatchSpanProcessor(null)],
        )

        @lf.instrument(extract_args=content)
        def work(x: Any) -> Any:
            return x + 1

        @lf.instrument(extract_args=content)
        def bash(command: str) -> str:
            return "ok\n"

        return _Case(work, bash, lf.force_flush, lambda: null.count)
    if peer == "traceloop":
        from opentelemetry import trace
        from traceloop.sdk import Traceloop
        from traceloop.sdk.decorators import tool

        os.environ["TRACELOOP_TRACE_CONTENT"] = "true" if content else "false"
        with redirect_stdout(io.StringIO()):  # its banners go to stdout
            Traceloop.init(
                app_name="bench",
                exporter=null,
                disable_batch=False,
                telemetry_enabled=False,
                api_endpoint="http://127.0.0.1:9",
            )

        @tool()
        def work(x: Any) -> Any:
            return x + 1

        @tool()
        def bash(command: str) -> str:
            return "ok\n"

        global_provider: Any = trace.get_tracer_provider()
        return _Case(work, bash, global_provider.force_flush, lambda: null.count)
    if peer == "langfuse":
        from langfuse import Langfuse, observe

        provider = TracerProvider(shutdown_on_exit=False)
        client = Langfuse(
            public_key="pk-lf-bench",
            secret_key="sk-lf-bench",
            base_url="http://127.0.0.1:9",
            tracer_provider=provider,
            span_exporter=null,
        )

        @observe(as_type="tool", capture_input=content, capture_output=content)
        def work(x: Any) -> Any:
            return x + 1

        @observe(as_type="tool", capture_input=content, capture_output=content)
        def bash(command: str) -> str:
            return "ok\n"

        def flush() -> None:
            client.flush()
            provider.force_flush()

        return _Case(work, bash, flush, lambda: null.count)
    raise ValueError(peer)


class _Host:
    """Runs jobs for the cases set up in this process (the parent, or a worker)."""

    def __init__(self, peers: Sequence[str], tmp: Path, content: bool = True) -> None:
        self.cases: dict[str, _Case] = {}
        self.skipped: dict[str, str] = {}
        self.serial = 0
        for peer in peers:
            try:
                self.cases[peer] = _setup(peer, tmp, content)
            except ImportError as exc:
                self.skipped[peer] = f"not installed ({exc.name or exc})"
        self.expected = dict.fromkeys(self.cases, 0)

    def ask(self, job: dict[str, Any]) -> dict[str, Any]:
        op = job["op"]
        if op == "hello":
            return {"cases": list(self.cases), "skipped": self.skipped}
        if op == "quit":
            for case in self.cases.values():
                case.flush()
            return {"bye": True}
        if op != "run":
            return {"error": f"unknown op {op}"}
        case, n, tool = self.cases[job["case"]], int(job["n"]), job["tool"]
        if tool == "work":
            fn: Callable[[Any], Any] = case.work
            args: list[Any] = list(range(n))
        else:
            fn = case.bash
            base = self.serial
            args = [SHELL_MIX[i % 10].format(i=i) for i in range(base, base + n)]
            self.serial += n
        before = case.exported()
        gc.collect()
        clock, thread_cpu, process_cpu = (
            time.perf_counter_ns,
            time.thread_time_ns,
            time.process_time_ns,
        )
        p0 = process_cpu()
        c0, t0 = thread_cpu(), clock()
        for a in args:
            fn(a)
        wall, cpu = clock() - t0, thread_cpu() - c0
        case.flush()
        e2e_cpu, e2e_wall = process_cpu() - p0, clock() - t0
        return {
            "wall": wall / n,
            "cpu": cpu / n,
            "e2e_cpu": e2e_cpu / n,
            "e2e_wall": e2e_wall / n,
            "spans_per_call": (case.exported() - before) / n,
        }


def _worker(peers: Sequence[str], content: bool) -> int:
    _clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        os.chdir(tmp)
        real_stdout = sys.stdout
        sys.stdout = sys.stderr  # nothing a peer prints can break the protocol
        host = _Host(peers, Path(tmp), content)
        for line in sys.stdin:
            answer = host.ask(json.loads(line))
            print("@@" + json.dumps(answer), file=real_stdout, flush=True)
            if "bye" in answer:
                break
    return 0


class _Worker(LineWorker):
    def __init__(self, peers: Sequence[str], content: bool) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        flag = [] if content else ["--no-content"]
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", ",".join(peers), *flag]
        super().__init__(argv, env, stderr=subprocess.DEVNULL)


def _version(peer: str) -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION[peer])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _spread(values: list[float], fmt: str, unit: str = "") -> str:
    m, lo, hi = (format(v, fmt) for v in (statistics.median(values), min(values), max(values)))
    return f"{m}{unit} [{lo}–{hi}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None, help="rounds (9; at least 7)")
    parser.add_argument("--target", type=float, default=None, help="seconds per run (0.2)")
    parser.add_argument("--quick", action="store_true", help="smoke run (7 short rounds)")
    parser.add_argument("--json", metavar="PATH", help="also write every sample")
    parser.add_argument(
        "--no-content",
        action="store_true",
        help="the peers without recording arguments and return values (their default records them)",
    )
    args = parser.parse_args(argv)
    content = not args.no_content
    if args.worker:
        return _worker(args.worker.split(","), content)
    _clean_env()
    repeats = max(7, args.repeats or (7 if args.quick else 9))
    target = args.target or (0.03 if args.quick else 0.2)
    began = time.perf_counter()
    loads = [_load()]
    tools = ("work", "bash")

    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        local_peers = [p for p in PEERS if p not in GLOBAL_PEERS]
        with redirect_stdout(io.StringIO()):
            local = _Host(local_peers, Path(tmp), content)
        hosts: dict[str, Any] = {"main": local}
        skipped = dict(local.skipped)
        # (case key, host, peer); a worker's own ceiling is "plain@<peer>".
        cases: list[tuple[str, str, str]] = [("plain", "main", "plain")]
        cases += [(p, "main", p) for p in local_peers if p in local.cases and p != "plain"]
        for peer in GLOBAL_PEERS:
            worker = _Worker(["plain", peer], content)
            hello = worker.ask({"op": "hello"})
            if peer not in hello["cases"]:
                skipped.update(hello["skipped"])
                worker.close()
                continue
            hosts[peer] = worker
            cases += [(f"plain@{peer}", peer, "plain"), (peer, peer, peer)]
        reference = {
            key: ("plain" if host == "main" else f"plain@{host}") for key, host, _ in cases
        }
        try:
            # One loop size per tool for every case: ~target seconds of the ceiling's agent CPU
            # (CPU, not wall: a descheduled calibration run would shrink every run after it).
            sizes: dict[str, int] = {}
            for tool in tools:
                n = 100
                while True:
                    took = local.ask({"op": "run", "case": "plain", "tool": tool, "n": n})
                    if took["cpu"] * n / 1e9 >= 0.02 or n >= 1_000_000:
                        break
                    n *= 4
                per_call = statistics.median(
                    local.ask({"op": "run", "case": "plain", "tool": tool, "n": n})["cpu"]
                    for _ in range(3)
                )
                sizes[tool] = max(1000, int(target / (per_call / 1e9)))
            samples: dict[tuple[str, str], list[dict[str, Any]]] = {
                (key, tool): [] for key, _, _ in cases for tool in tools
            }
            jobs = [(key, host, peer, tool) for key, host, peer in cases for tool in tools]
            for r in range(repeats):
                shift = r % len(jobs)
                for key, host, peer, tool in jobs[shift:] + jobs[:shift]:
                    answer = hosts[host].ask(
                        {"op": "run", "case": peer, "tool": tool, "n": sizes[tool]}
                    )
                    samples[(key, tool)].append(answer)
                loads.append(_load())
        finally:
            for name, host in hosts.items():
                if name != "main":
                    host.close()
            local.ask({"op": "quit"})
    elapsed = time.perf_counter() - began

    w = print
    w(f"## bench_peers.py — {time.strftime('%Y-%m-%d %H:%M:%S')}{' (quick)' if args.quick else ''}")
    w("")
    versions = ", ".join(
        f"{p} {_version(p)}"
        for p in PEERS
        if p != "plain" and any(peer == p for _, _, peer in cases)
    )
    w(f"- versions: {versions}; opentelemetry-sdk {_version('plain')}")
    w(
        f"- machine: nproc={os.cpu_count()}, Python {platform.python_version()}; load average "
        f"(1/5/15 min) at the start {loads[0]}, after each round "
        f"{', '.join(x.split()[0] for x in loads[1:])}"
    )
    w(
        f"- {repeats} rounds, order rotated by one each round, gc.collect() before each run; "
        f"{sizes['work']:,} `work` / {sizes['bash']:,} `bash` calls per run; median [min–max] of "
        f"the rounds; ratios per round against the ceiling of the same process; total "
        f"{elapsed:.0f} s"
    )
    w(
        "- the peers record arguments and return values: "
        + ("yes (their default)" if content else "no (`--no-content`)")
        + "; agentsignals' content capture: off (its default)"
    )
    for peer, why in skipped.items():
        w(f"- skipped {peer}: {why}")
    w("")
    for tool in tools:
        w(f"### `{'work(x)' if tool == 'work' else 'bash(command)'}`")
        w("")
        w(
            "| case | process | agent CPU µs/call | ÷ ceiling, agent CPU | ÷ ceiling, agent wall "
            "| ÷ ceiling, process CPU until flushed | spans/call |"
        )
        w("|---|---|---:|---:|---:|---:|---:|")
        for key, host, peer in cases:
            mine, ref = samples[(key, tool)], samples[(reference[key], tool)]
            cells = []
            for field in ("cpu", "wall", "e2e_cpu"):
                ratios = [m[field] / f[field] for m, f in zip(mine, ref, strict=True)]
                cells.append(_spread(ratios, ".2f", "×"))
            label = LABELS[peer] if key == peer else f"control: {LABELS[peer]}"
            if key.startswith("plain@"):
                # the worker's ceiling against the parent's, same round: the process noise floor
                base = samples[("plain", tool)]
                cells = [
                    _spread(
                        [m[field] / f[field] for m, f in zip(mine, base, strict=True)],
                        ".2f",
                        "× ¹",
                    )
                    for field in ("cpu", "wall", "e2e_cpu")
                ]
            per_call = statistics.median(m["spans_per_call"] for m in mine)
            w(
                f"| {label} | {host} | {_spread([m['cpu'] / 1000 for m in mine], '.1f')} "
                f"| {' | '.join(cells)} | {per_call:.2f} |"
            )
        w("")
    if any(k.startswith("plain@") for k, _, _ in cases):
        w(
            "¹ The worker's ceiling ÷ the parent's, same round: the noise floor between "
            "processes. The worker's peer is divided by the worker's ceiling."
        )
        w("")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "loads": loads,
                    "sizes": sizes,
                    "skipped": skipped,
                    "samples": {f"{k}/{t}": v for (k, t), v in samples.items()},
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
