"""In-process features and streaming extraction, an old build and this one side by side (#16).

Run: ``python benchmarks/bench_inprocess.py [--old main] [--repeats 5] [--quick]``. Prints
Markdown. Not a test.

Every measurement runs in a fresh child process importing agentsignals from one build's
``src/`` only (the old one is ``git archive <commit> src`` unpacked into a temporary folder),
with the same interpreter and libraries; children run one at a time, old and new alternating
within each round, so machine load hits both alike. Tables give the median of the rounds and
the [min–max] spread.

* **tool calls**: ``@trace_tool`` calls (100 per turn) under ``configure(features=False)`` and
  ``configure(features=True)``, both exporting to a null exporter through a
  ``BatchSpanProcessor``, and a plain span on a provider without agentsignals (the ceiling):
  CPU time of the agent's thread per call, and the whole process's CPU time per call until
  ``force_flush`` has returned (the feature worker's and exporter's threads included).
* **memory**: RSS growth over 50,000 tool calls in attempts of 100, 1,000 and 10,000 calls,
  features off and on, measured after ``force_flush`` (what stays, in the agent's process).
* **late spans**: an attempt whose N tool calls run in a context captured inside it and end
  after ``attempt()`` exited (a task that outlives the attempt): CPU time per late span until
  ``force_flush`` has returned, and how many revisions of the attempt record were written.
* **extraction memory**: peak RSS of ``features.extract(path)`` (records kept) and, where the
  build has it, ``features.extract_to(path, out.jsonl)`` (streaming) on generated traces
  (``gen_traces.py``), less the RSS after imports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import ROOT, build_src, commit_title

CHILD = r"""
import gc, json, os, resource, sys, tempfile, time
for name in list(os.environ):
    if name.startswith("OTEL_"):
        del os.environ[name]
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "1000000"
job = json.loads(sys.argv[1])


def rss():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
import agentsignals
from agentsignals import features


class Null(SpanExporter):
    def __init__(self):
        self.n = 0

    def export(self, spans):
        self.n += len(spans)
        return SpanExportResult.SUCCESS


def work(x):
    return x


out = {}
tmp = tempfile.mkdtemp(prefix="bench-inproc-")
kind = job["kind"]
if kind in ("calls", "memory", "late"):
    provider = TracerProvider(shutdown_on_exit=False)
    null = Null()
    if job.get("plain"):
        provider.add_span_processor(BatchSpanProcessor(null))
        tracer = provider.get_tracer("bench")

        def one(i):
            with tracer.start_as_current_span("execute_tool work"):
                work(i)

        def attempt():
            return tracer.start_as_current_span("invoke_agent bench")

        def turn():
            return tracer.start_as_current_span("turn")

        def flush():
            provider.force_flush()
    else:
        agentsignals.configure(
            tracer_provider=provider, exporters=[null], features=job["features"],
            output_dir=tmp, batch=True,
        )
        one = agentsignals.trace_tool(work)
        attempt = lambda: agentsignals.attempt(agent_type="bench")
        turn = agentsignals.turn
        flush = agentsignals.force_flush

    def run(n, per_attempt, clock):
        spent = 0
        done = 0
        while done < n:
            with attempt():
                k_attempt = min(per_attempt, n - done)
                left = k_attempt
                while left > 0:
                    k = min(100, left)
                    with turn():
                        t0 = clock()
                        for i in range(k):
                            one(i)
                        spent += clock() - t0
                    left -= k
                done += k_attempt
        return spent

    if kind == "calls":
        run(2000, 1000, time.thread_time_ns)  # warm-up
        flush()
        gc.collect()
        n = job["n"]
        p0 = time.process_time_ns()
        agent = run(n, 1000, time.thread_time_ns)
        flush()
        out = {"agent_ns": agent / n, "e2e_ns": (time.process_time_ns() - p0) / n}
    elif kind == "memory":
        run(1000, 100, time.thread_time_ns)
        flush()
        gc.collect()
        before = rss()
        run(job["n"], job["per_attempt"], time.thread_time_ns)
        flush()
        gc.collect()
        out = {"rss_growth": rss() - before}
    else:  # late
        import contextvars

        n = job["n"]
        p0 = time.process_time_ns()
        with attempt():
            with turn():
                one(0)
            ctx = contextvars.copy_context()
        flush()  # the attempt's record is written: what follows is late
        for i in range(n):
            ctx.run(one, i)
        agentsignals.shutdown()  # the last revision is written
        took = time.process_time_ns() - p0
        path = os.path.join(tmp, "features", "attempts.jsonl")
        with open(path) as fh:
            records = [json.loads(line) for line in fh]
        whole = [r for r in records if not r.get("partial")]
        out = {
            "per_span_ns": took / n,
            "revisions": len(records),
            "partial": len(records) - len(whole),
            # What a reader keeps: the last revision that is not partial.
            "tool_calls": whole[-1]["behavior"]["tool_call_count"],
        }
    if not job.get("plain") and kind != "late":
        agentsignals.shutdown()
elif kind in ("extract", "extract_to"):
    gc.collect()
    base = rss()
    if kind == "extract":
        result = features.extract(job["path"])
        count = len(result.attempts)
    else:
        summary = features.extract_to(job["path"], os.path.join(tmp, "out.jsonl"))
        count = summary.attempts
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"peak_growth": peak - base, "attempts": count}
print("@@" + json.dumps(out))
"""


def child(src: Path, job: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        timeout=1800,
    )
    for line in done.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])  # type: ignore[no-any-return]
    raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")


IMPORTS = (
    ("`import opentelemetry.sdk.trace`", "opentelemetry.sdk.trace"),
    ("`import agentsignals`", "agentsignals"),
)


def import_seconds(src: Path, module: str) -> float:
    """CPU time (user + system) of `import module` in a fresh interpreter (bytecode cached by
    a first run): wall time on a shared machine also counts time spent descheduled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(src)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as after pip install: bytecode cached
    code = f"import time; t = time.process_time(); import {module}; print(time.process_time() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(done.stdout.strip())


def _spread(values: list[float], fmt: str, scale: float = 1.0) -> str:
    v = [x / scale for x in values]
    return f"{format(statistics.median(v), fmt)} [{format(min(v), fmt)}–{format(max(v), fmt)}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", default="main", help="the old build's commit (main)")
    ap.add_argument("--new", help="the new build's commit (default: this checkout's src/)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 3 rounds")
    ap.add_argument("--traces", type=int, default=300_000, help="spans for extraction memory")
    ap.add_argument("--old-late-max", type=int, default=3000, help="largest N for the old build")
    ap.add_argument("--only", help="comma-separated tables: import,calls,memory,late,extract")
    ap.add_argument("--import-runs", type=int, default=20, help="fresh processes per import")
    ap.add_argument("--json", type=Path, help="also write every sample")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else max(3, args.repeats)
    calls_n = 5_000 if args.quick else 30_000
    mem_n = 10_000 if args.quick else 50_000
    late_ns = [10, 1000] if args.quick else [10, 1000, 10_000]
    traces_n = 50_000 if args.quick else args.traces
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-inproc-") as tmp:
        old_src, old_title = build_src(args.old, Path(tmp) / "old"), commit_title(args.old)
        if args.new:
            new_src, new_title = build_src(args.new, Path(tmp) / "new"), commit_title(args.new)
        else:
            new_src = ROOT / "src"
            new_title = subprocess.run(
                ["git", "log", "-1", "--format=%h %s"], capture_output=True, text=True, cwd=ROOT
            ).stdout.strip()
            new_title += " + any uncommitted changes in src/"
        builds = {"old": old_src, "new": new_src}
        traces = Path(tmp) / "traces.jsonl"
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks/gen_traces.py"), "--spans", str(traces_n),
             "--out", str(traces)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        jobs: list[tuple[str, str, dict[str, Any]]] = []  # (table, case, job)
        for label, job in (
            ("plain span, provider without agentsignals", {"plain": True, "features": False}),
            ("`@trace_tool`, features off", {"features": False}),
            ("`@trace_tool`, features on", {"features": True}),
        ):
            jobs.append(("calls", label, {"kind": "calls", "n": calls_n, **job}))
        for per in (100, 1000, 10_000):
            for feat in (False, True):
                label = f"{mem_n:,} calls, {per:,} per attempt, features {'on' if feat else 'off'}"
                jobs.append(
                    ("memory", label,
                     {"kind": "memory", "n": mem_n, "per_attempt": per, "features": feat})
                )  # fmt: skip
        for n in late_ns:
            jobs.append(("late", f"{n:,} late tool spans", {"kind": "late", "n": n,
                                                             "features": True}))  # fmt: skip
        jobs.append(("extract", "`features.extract(path)`", {"kind": "extract"}))
        jobs.append(("extract", "`features.extract_to(path, out)`", {"kind": "extract_to"}))

        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        skipped: dict[tuple[str, str], str] = {}
        imports: dict[tuple[str, str], list[float]] = {}
        tables = set((args.only or "import,calls,memory,late,extract").split(","))
        jobs = [j for j in jobs if j[0] in tables]
        if "import" not in tables:
            args.import_runs = 0
        for b in builds if args.import_runs else ():
            for _, module in IMPORTS:
                import_seconds(builds[b], module)  # bytecode written
        for r in range(args.import_runs):
            for i, (label, module) in enumerate(IMPORTS):
                order = ("old", "new") if (r + i) % 2 == 0 else ("new", "old")
                for b in order:
                    imports.setdefault((label, b), []).append(import_seconds(builds[b], module))
        for r in range(repeats):
            for i, (table, label, job) in enumerate(jobs):
                if table == "extract":
                    job = {**job, "path": str(traces)}
                order = ("old", "new") if (r + i) % 2 == 0 else ("new", "old")
                for b in order:
                    if table == "late" and b == "old" and job["n"] > args.old_late_max:
                        skipped[(label, b)] = "not run (quadratic: minutes)"
                        continue
                    try:
                        answer = child(builds[b], job)
                    except RuntimeError as exc:
                        skipped[(label, b)] = f"failed: {str(exc).splitlines()[-1][:80]}"
                        continue
                    results.setdefault((label, b), []).append(answer)
            print(f"round {r + 1}/{repeats} done", file=sys.stderr)

    def cell(label: str, b: str, field: str, fmt: str, scale: float = 1.0) -> str:
        rows = results.get((label, b))
        if not rows:
            return skipped.get((label, b), "–")
        return _spread([x[field] for x in rows], fmt, scale)

    w = print
    w(f"## bench_inprocess.py — {time.strftime('%Y-%m-%d %H:%M:%S')}{' (quick)' * args.quick}")
    w("")
    w(f"- old: `{old_title}`; new: `{new_title}`")
    w(
        f"- machine: nproc={os.cpu_count()}, Python {platform.python_version()}; {repeats} "
        f"rounds, each measurement a fresh process, old and new alternating; median "
        f"[min–max]; total {time.perf_counter() - began:.0f} s"
    )
    w("")
    if imports:
        w("### Import, ms of CPU time in a fresh process (bytecode cached)")
        w("")
        w("| import | old | new | new ÷ `import opentelemetry.sdk.trace` (paired) |")
        w("|---|---:|---:|---:|")
        sdk = imports[(IMPORTS[0][0], "new")]
        for label, _ in IMPORTS:
            o, n = imports[(label, "old")], imports[(label, "new")]
            ratio = [a / b for a, b in zip(n, sdk, strict=True)]
            w(
                f"| {label} | {_spread(o, '.1f', 1e-3)} | {_spread(n, '.1f', 1e-3)} "
                f"| {_spread(ratio, '.2f')} |"
            )
        w("")
    w("### Tool calls, CPU µs per call")
    w("")
    w("| case | old, agent thread | new, agent thread | old, whole process | new, whole process |")
    w("|---|---:|---:|---:|---:|")
    for table, label, _ in jobs:
        if table == "calls":
            w(
                f"| {label} | {cell(label, 'old', 'agent_ns', '.1f', 1e3)} "
                f"| {cell(label, 'new', 'agent_ns', '.1f', 1e3)} "
                f"| {cell(label, 'old', 'e2e_ns', '.1f', 1e3)} "
                f"| {cell(label, 'new', 'e2e_ns', '.1f', 1e3)} |"
            )
    w("")
    w("### Memory left in the agent's process, RSS growth in MB")
    w("")
    w("| case | old | new |")
    w("|---|---:|---:|")
    for table, label, _ in jobs:
        if table == "memory":
            w(
                f"| {label} | {cell(label, 'old', 'rss_growth', '.1f', 2**20)} "
                f"| {cell(label, 'new', 'rss_growth', '.1f', 2**20)} |"
            )
    w("")
    w("### Late spans: CPU µs per late span (whole process, until shut down), revisions")
    w("")
    w(
        "| case | old, µs/span | new, µs/span | old, revisions | new, revisions (partial) "
        "| tool calls in the last whole revision, old / new |"
    )
    w("|---|---:|---:|---:|---:|---:|")
    for table, label, _ in jobs:
        if table == "late":
            w(
                f"| {label} | {cell(label, 'old', 'per_span_ns', ',.1f', 1e3)} "
                f"| {cell(label, 'new', 'per_span_ns', ',.1f', 1e3)} "
                f"| {cell(label, 'old', 'revisions', '.0f')} "
                f"| {cell(label, 'new', 'revisions', '.0f')} "
                f"({cell(label, 'new', 'partial', '.0f')}) "
                f"| {cell(label, 'old', 'tool_calls', '.0f')} / "
                f"{cell(label, 'new', 'tool_calls', '.0f')} |"
            )
    w("")
    w(f"### Extraction of {traces_n:,} generated spans: peak RSS growth in MB")
    w("")
    w("| case | old | new | attempts |")
    w("|---|---:|---:|---:|")
    for table, label, _ in jobs:
        if table == "extract":
            rows = results.get((label, "new")) or results.get((label, "old")) or [{}]
            w(
                f"| {label} | {cell(label, 'old', 'peak_growth', '.1f', 2**20)} "
                f"| {cell(label, 'new', 'peak_growth', '.1f', 2**20)} "
                f"| {rows[0].get('attempts', '–')} |"
            )
    if args.json:
        args.json.write_text(
            json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
