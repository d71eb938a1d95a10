"""The build before issue #11 and this build, side by side in one run, interleaved.

Run: ``python benchmarks/bench_before_after.py [--old 13862ac] [--repeats 9] [--quick]
[--json PATH]``. Prints Markdown. Not a test.

Each build runs in its own long-lived worker process (this file with ``--worker``), importing
agentsignals from that build's ``src/`` only: the old one is ``git archive <commit> src``
unpacked into a temporary folder, the new one is this checkout's ``src/``. Both use the same
interpreter and the same installed OpenTelemetry, msgspec and wrapt. The parent sends one job at
a time and waits for its answer, so the two builds never run at once; jobs are interleaved
(round r runs every case on both builds before round r + 1, and which build goes first
alternates by round and case), the loop size of a case is the same for both builds, and every
table shows the median of the rounds with the [min–max] spread, and the median of the paired
new ÷ old ratios (each round's two runs are adjacent in time, so machine load hits both alike).

Tool calls (capture off unless marked): the set-up of ``bench_instrumentation.py`` (one
``TracerProvider`` → agentsignals' pipeline → ``BatchSpanProcessor(NullExporter)``, the queue large
enough that nothing drops; one case with ``batch=False``). "agent" times only the calls, on the
agent's thread (wall, and that thread's CPU time); "end to end" times from the first call until
``force_flush`` returns, with the whole process's CPU time, so it holds the export threads' work
too (this build scrubs every exported span for secrets; the old one did not). R is a control:
a plain span on a second provider without agentsignals, the same code in both workers, so its
ratio is the noise floor of the comparison (the machine, not the build).

Redaction: ``capture.redact_secrets(text)`` of each build on the same texts, µs per call.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _harness import ROOT, LineWorker, build_src, commit_title

OLD_DEFAULT = "13862ac"  # main before the work of issue #11
CHUNK = 100  # tool calls per turn in child mode

# ------------------------------------------------------------------------------------ worker


def _worker() -> int:
    """Serve jobs from stdin, one JSON line each; answer on stdout lines starting with '@@'."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name in ("TRACEPARENT", "TRACESTATE", "BAGGAGE"):
            del os.environ[name]
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "1000000"

    import gc

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    import agentsignals
    from agentsignals._instrument import capture

    class NullExporter(SpanExporter):
        def __init__(self) -> None:
            self.exported = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.exported += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

    def work(x: Any) -> Any:
        return x

    null = NullExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    ref_null = NullExporter()
    ref = TracerProvider(shutdown_on_exit=False)
    ref.add_span_processor(BatchSpanProcessor(ref_null))
    state: dict[str, tuple[bool, bool] | None] = {"config": None}
    expected = {"ours": 0, "ref": 0}

    def set_config(capture: bool, batch: bool) -> None:
        if state["config"] != (capture, batch):
            agentsignals.configure(
                tracer_provider=provider, exporters=[null], batch=batch, capture_content=capture
            )
            state["config"] = (capture, batch)

    set_config(False, True)
    tracer = provider.get_tracer("bench")
    ref_tracer = ref.get_tracer("bench")
    traced = agentsignals.trace_tool(work)

    def bash(command: str) -> str:
        return "ok"

    traced_bash = agentsignals.trace_tool(bash)

    # Realistic tools (issue #16): a shell tool over a mix of command shapes (a new text each
    # call, as in an agent, so no cache hides the parse), a file read, an edit, a test run.
    source = "def handle(x):\n    return compute(x, 2)  # comment\n" * 80
    pytest_out = (
        "tests/test_a.py::test_x PASSED\n" * 20
        + "FAILED tests/test_a.py::test_y - AssertionError\n"
        + "==== 1 failed, 20 passed in 0.42s ====\n"
    )

    @agentsignals.trace_tool
    def read_file(path: str) -> str:
        return source

    @agentsignals.trace_tool
    def str_replace(path: str, old_str: str, new_str: str) -> str:
        return "The file has been edited."

    @agentsignals.trace_tool
    def run_tests(command: str) -> str:
        return pytest_out

    shell_mix = [
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
    ]
    serial = [0]

    def realistic(kind: str) -> Callable[[int], None]:
        def body(n: int) -> None:
            base = serial[0]
            serial[0] += n
            if kind == "shell":
                mix, k = shell_mix, len(shell_mix)
                for i in range(base, base + n):
                    traced_bash(mix[i % k].format(i=i))
            elif kind == "read":
                for i in range(base, base + n):
                    read_file(f"src/pkg/module_{i}.py")
            elif kind == "edit":
                for i in range(base, base + n):
                    str_replace(f"src/pkg/module_{i}.py", "return x", f"return x + {i}")
            elif kind == "test":
                for i in range(base, base + n):
                    run_tests(f"python -m pytest tests/test_{i}.py -q")

        return body

    # The ceiling for each realistic tool: a plain span on the provider without agentsignals
    # carrying the attributes the tool's span got (read once, from an in-memory exporter).
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    agentsignals.configure(tracer_provider=provider, exporters=[memory], batch=False)
    with agentsignals.attempt(agent_type="bench"), agentsignals.turn():
        for kind in ("shell", "read", "edit", "test"):
            realistic(kind)(1)
    same_attrs = {
        s.name: dict(s.attributes or {})
        for s in memory.get_finished_spans()
        if s.name.startswith("execute_tool")
    }
    ref_attrs = {
        "shell": ("execute_tool bash", same_attrs["execute_tool bash"]),
        "read": ("execute_tool read_file", same_attrs["execute_tool read_file"]),
        "edit": ("execute_tool str_replace", same_attrs["execute_tool str_replace"]),
        "test": ("execute_tool run_tests", same_attrs["execute_tool run_tests"]),
    }
    serial[0] = 0
    state["config"] = None
    set_config(False, True)
    heredoc = "cat > src/module.py <<'EOF'\n" + ("x = compute(1, 2)  # comment\n" * 560) + "EOF\n"

    def calls(kind: str) -> Callable[[int], None]:
        if kind == "trace_tool":

            def body(n: int) -> None:
                for i in range(n):
                    traced(i)

        elif kind == "tool_cm":

            def body(n: int) -> None:
                tool = agentsignals.tool
                for i in range(n):
                    with tool("work"):
                        work(i)

        elif kind == "bash_heredoc":

            def body(n: int) -> None:
                for _ in range(n):
                    traced_bash(heredoc)

        elif kind == "trace_tool_args":

            def body(n: int) -> None:
                for i in range(n):
                    traced({"path": "src/x.py", "line": i, "text": "def f():\n    return 1\n"})

        elif kind in ("shell", "read", "edit", "test"):
            body = realistic(kind)

        elif kind.startswith("ref_"):
            name, attrs = ref_attrs[kind[4:]]
            start = ref_tracer.start_as_current_span

            def body(n: int) -> None:
                for i in range(n):
                    with start(name, attributes=attrs):
                        work(i)

        elif kind in ("plain", "ref"):
            start = (tracer if kind == "plain" else ref_tracer).start_as_current_span

            def body(n: int) -> None:
                for i in range(n):
                    with start("execute_tool work"):
                        work(i)

        else:
            raise ValueError(kind)
        return body

    texts: dict[str, str] = {}

    def run_calls(job: dict[str, Any]) -> dict[str, Any]:
        set_config(bool(job.get("capture")), bool(job.get("batch", True)))
        body, n, mode = calls(job["kind"]), int(job["n"]), job["mode"]
        counter = "ref" if job["kind"].startswith("ref") else "ours"
        gc.collect()
        # Agent: wall and this thread's CPU, calls only. End to end: wall and the whole
        # process's CPU (the export threads included) until force_flush has returned.
        clock, cpu_clock, all_cpu = time.perf_counter_ns, time.thread_time_ns, time.process_time_ns
        wall = cpu = 0
        e2e_c0, e2e_t0 = all_cpu(), clock()
        if mode == "root":
            c0, t0 = cpu_clock(), clock()
            body(n)
            wall, cpu = clock() - t0, cpu_clock() - c0
        else:
            with agentsignals.attempt(agent_type="bench"):
                expected["ours"] += 1
                left = n
                while left > 0:
                    k = min(CHUNK, left)
                    with agentsignals.turn():
                        c0, t0 = cpu_clock(), clock()
                        body(k)
                        wall += clock() - t0
                        cpu += cpu_clock() - c0
                    expected["ours"] += 1
                    left -= k
        expected[counter] += n
        agentsignals.force_flush()
        ref.force_flush()
        e2e_wall, e2e_cpu = clock() - e2e_t0, all_cpu() - e2e_c0
        return {
            "wall": wall / n,
            "cpu": cpu / n,
            "e2e_wall": e2e_wall / n,
            "e2e_cpu": e2e_cpu / n,
            "lost": (expected["ours"] - null.exported) + (expected["ref"] - ref_null.exported),
        }

    def run_redact(job: dict[str, Any]) -> dict[str, Any]:
        text, n = texts[job["text"]], int(job["n"])
        redact = capture.redact_secrets
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            out = redact(text)
        elapsed = time.perf_counter_ns() - t0
        return {"us": elapsed / n / 1000, "found": out[1]}

    out = sys.stdout
    for line in sys.stdin:
        job = json.loads(line)
        op = job["op"]
        if op == "hello":
            answer: dict[str, Any] = {"file": agentsignals.__file__}
        elif op == "texts":
            texts.update(job["texts"])
            answer = {"ok": True}
        elif op == "calls":
            answer = run_calls(job)
        elif op == "redact":
            answer = run_redact(job)
        elif op == "quit":
            agentsignals.shutdown()
            ref.shutdown()
            print("@@" + json.dumps({"bye": True}), file=out, flush=True)
            return 0
        else:
            answer = {"error": f"unknown op {op}"}
        print("@@" + json.dumps(answer), file=out, flush=True)
    return 0


# ------------------------------------------------------------------------------------ parent


class Worker(LineWorker):
    def __init__(self, label: str, src: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["PYTHONPATH"] = str(src)
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        super().__init__(argv, env, label=f"{label} worker", cwd=tempfile.gettempdir())
        self.file = self.ask({"op": "hello"})["file"]
        if not Path(self.file).resolve().is_relative_to(src.resolve()):
            raise RuntimeError(f"{label} build imported agentsignals from {self.file}, not {src}")


# (key, label, job fields). Capture-on cases last, so each worker reconfigures twice a round.
CALL_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("R", "control: plain span, provider without agentsignals", {"kind": "ref", "mode": "child"}),
    ("S2", "another instrumentor's plain span inside a turn", {"kind": "plain", "mode": "child"}),
    ("S4", "`@trace_tool` call, inside attempt › turn", {"kind": "trace_tool", "mode": "child"}),
    ("S4r", "`@trace_tool` call, no parent span", {"kind": "trace_tool", "mode": "root"}),
    ("S5", '`with agentsignals.tool("work")`', {"kind": "tool_cm", "mode": "child"}),
    (
        "S4d",
        "`@trace_tool` call with a dict argument",
        {"kind": "trace_tool_args", "mode": "child"},
    ),
    (
        "S4h",
        "`@trace_tool` `bash(command)`, a 16 KB heredoc",
        {"kind": "bash_heredoc", "mode": "child"},
    ),
    (
        "Rsh",
        "ceiling: plain span with the shell tool's attributes, provider without us",
        {"kind": "ref_shell", "mode": "child"},
    ),
    (
        "T-sh",
        "realistic `bash(command)`, a mix of 10 command shapes, new text each call",
        {"kind": "shell", "mode": "child"},
    ),
    (
        "Rrd",
        "ceiling: plain span with the read tool's attributes",
        {"kind": "ref_read", "mode": "child"},
    ),
    ("T-rd", "realistic `read_file(path)` returning 4 KB", {"kind": "read", "mode": "child"}),
    (
        "Red",
        "ceiling: plain span with the edit tool's attributes",
        {"kind": "ref_edit", "mode": "child"},
    ),
    ("T-ed", "realistic `str_replace(path, old_str, new_str)`", {"kind": "edit", "mode": "child"}),
    (
        "Rts",
        "ceiling: plain span with the test tool's attributes",
        {"kind": "ref_test", "mode": "child"},
    ),
    (
        "T-ts",
        "realistic `run_tests(command)` returning pytest output",
        {"kind": "test", "mode": "child"},
    ),
    (
        "S4s",
        "`@trace_tool` call, `batch=False` (each span exported on end)",
        {"kind": "trace_tool", "mode": "child", "batch": False},
    ),
    (
        "C4d",
        "capture on: `@trace_tool` call with a dict argument",
        {"kind": "trace_tool_args", "mode": "child", "capture": True},
    ),
)


# (case, its reference): the ratios the issue's goals are stated in (agent wall time).
CEILING_PAIRS = (
    ("S2", "R"),
    ("S4", "R"),
    ("T-sh", "Rsh"),
    ("T-rd", "Rrd"),
    ("T-ed", "Red"),
    ("T-ts", "Rts"),
)


def redaction_texts(old_src: Path) -> dict[str, str]:
    """Texts for the redaction table: ordinary tool output, and adversarial ones."""
    source = (ROOT / "src/agentsignals/_features/extract.py").read_text() * 20
    old_rules = (old_src / "agentsignals/_instrument/capture.py").read_text() * 20
    new_rules = (ROOT / "src/agentsignals/_instrument/redact.py").read_text() * 20
    secrets = (
        "OPENAI_API_KEY=sk-proj-"
        + "Q7" * 12
        + "\nexport GITHUB_TOKEN=ghp_"
        + "a1" * 18
        + "\naws_access_key_id = AKIA"
        + "ABCDEFGH12345678"
        + "\npassword: 'hunter2-but-longer'\n"
    )
    with_secrets = source[: source.rindex("\n", 0, 3500) + 1] + secrets
    import base64

    blob = base64.b64encode(bytes(range(256)) * 192).decode()[:65536]
    return {
        '7 bytes (`{"x":1}`)': '{"x":1}',
        "1 KB of pytest output": ("tests/test_a.py::test_x PASSED" + " " * 19 + "[ 10%]\n") * 18,
        "4 KB of Python source": source[:4096],
        "64 KB of Python source": source[:65536],
        "4 KB of source with 4 secrets": with_secrets,
        "64 KB of base64 (an image in a tool result)": blob,
        "64 KB of the old build's redaction code (its every keyword)": old_rules[:65536],
        "64 KB of this build's rule module (its every keyword)": new_rules[:65536],
    }


def calibrate(worker: Worker, job: dict[str, Any], target_s: float, key: str) -> int:
    n = 10 if key == "S4h" else CHUNK
    while True:
        took = worker.ask({**job, "n": n})["e2e_wall"] * n / 1e9
        if took >= 0.02 or n >= 5_000_000:
            break
        n *= 4
    return max(10, int(n * target_s / took))


def calibrate_redact(worker: Worker, name: str, target_s: float) -> int:
    n = 1
    while True:
        took = worker.ask({"op": "redact", "text": name, "n": n})["us"] * n / 1e6
        if took >= 0.02 or n >= 5_000_000:
            break
        n *= 4
    return max(3, int(n * target_s / took))


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _spread(values: list[float], fmt: str) -> str:
    median, low, high = (
        format(v, fmt) for v in (statistics.median(values), min(values), max(values))
    )
    return f"{median} [{low}–{high}]"


def _ratio(old: list[float], new: list[float]) -> str:
    r = [b / a for a, b in zip(old, new, strict=True)]
    return f"**{statistics.median(r):.2f}×** [{min(r):.2f}–{max(r):.2f}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--old", default=OLD_DEFAULT, help=f"the old build's commit ({OLD_DEFAULT})"
    )
    parser.add_argument("--repeats", type=int, default=None, help="rounds (9; at least 5)")
    parser.add_argument("--target", type=float, default=None, help="seconds per run (0.25)")
    parser.add_argument("--quick", action="store_true", help="smoke run (5 short rounds)")
    parser.add_argument("--json", metavar="PATH", help="also write every sample")
    parser.add_argument("--no-redaction", action="store_true", help="skip the redaction table")
    args = parser.parse_args(argv)
    if args.worker:
        return _worker()
    repeats = max(5, args.repeats or (5 if args.quick else 9))
    target = args.target or (0.03 if args.quick else 0.25)

    began = time.perf_counter()
    loads = [load()]
    with tempfile.TemporaryDirectory(prefix="bench-old-build-") as tmp:
        old_src, old_title = build_src(args.old, Path(tmp)), commit_title(args.old)
        new_title = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        workers = {"old": Worker("old", old_src), "new": Worker("new", ROOT / "src")}
        texts = {} if args.no_redaction else redaction_texts(old_src)
        try:
            for w in workers.values():
                w.ask({"op": "texts", "texts": texts})
            # Loop sizes from the new build, the same for both.
            sizes = {
                key: calibrate(workers["new"], {"op": "calls", **job}, target, key)
                for key, _, job in CALL_CASES
            }
            rsizes = {name: calibrate_redact(workers["new"], name, target) for name in texts}
            calls: dict[tuple[str, str], list[dict[str, Any]]] = {
                (key, b): [] for key, _, _ in CALL_CASES for b in workers
            }
            red: dict[tuple[str, str], list[float]] = {(n, b): [] for n in texts for b in workers}
            found: dict[tuple[str, str], int] = {}
            for r in range(repeats):
                for i, (key, _, job) in enumerate(CALL_CASES):
                    order = ("old", "new") if (r + i) % 2 == 0 else ("new", "old")
                    for b in order:
                        calls[(key, b)].append(
                            workers[b].ask({"op": "calls", **job, "n": sizes[key]})
                        )
                for i, name in enumerate(texts):
                    order = ("old", "new") if (r + i) % 2 == 0 else ("new", "old")
                    for b in order:
                        answer = workers[b].ask({"op": "redact", "text": name, "n": rsizes[name]})
                        red[(name, b)].append(answer["us"])
                        found[(name, b)] = answer["found"]
                loads.append(load())
        finally:
            for w in workers.values():
                w.close()
    elapsed = time.perf_counter() - began

    w = print
    w(
        f"## bench_before_after.py — {time.strftime('%Y-%m-%d %H:%M:%S')}"
        f"{' (quick)' if args.quick else ''}"
    )
    w("")
    w(f"- old: `{old_title}`")
    w(f"- new: `{new_title}`{' + uncommitted changes in src/' if dirty else ''}")
    w(
        f"- machine: nproc={os.cpu_count()}, {cpu_model()}, Python {platform.python_version()}; "
        f"load average (1/5/15 min) at the start {loads[0]}, after each round "
        f"{', '.join(x.split()[0] for x in loads[1:])}"
    )
    w(
        f"- {repeats} rounds, old and new interleaved (order alternating), ~{target:.2f} s per "
        f"run, same loop size for both builds; median [min–max] of the rounds; new ÷ old: median "
        f"[min–max] of the paired rounds; total {elapsed:.0f} s"
    )
    lost = sum(s["lost"] for v in calls.values() for s in v[-1:])
    w(f"- spans lost (created − exported, both providers, both builds): {lost}")
    w("")
    w("### Tool calls, ns per call")
    w("")
    w(
        "| # | case | old, agent wall | new, agent wall | new ÷ old wall | new ÷ old agent CPU "
        "| old, end to end | new, end to end | new ÷ old end to end | new ÷ old end-to-end CPU |"
    )
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label, _ in CALL_CASES:
        o, n = calls[(key, "old")], calls[(key, "new")]
        get = lambda xs, f: [x[f] for x in xs]  # noqa: E731
        w(
            f"| {key} | {label} | {_spread(get(o, 'wall'), ',.0f')} "
            f"| {_spread(get(n, 'wall'), ',.0f')} "
            f"| {_ratio(get(o, 'wall'), get(n, 'wall'))} | {_ratio(get(o, 'cpu'), get(n, 'cpu'))} "
            f"| {_spread(get(o, 'e2e_wall'), ',.0f')} | {_spread(get(n, 'e2e_wall'), ',.0f')} "
            f"| {_ratio(get(o, 'e2e_wall'), get(n, 'e2e_wall'))} "
            f"| {_ratio(get(o, 'e2e_cpu'), get(n, 'e2e_cpu'))} |"
        )
    w("")
    w("### Against the ceiling: each build's case ÷ its plain-span reference, paired by round")
    w("")
    w("Agent-thread CPU time (wall time counts time descheduled on a shared machine).")
    w("")
    w("| case | reference | old, CPU | new, CPU | old, wall | new, wall |")
    w("|---|---|---:|---:|---:|---:|")
    for case, ref in CEILING_PAIRS:
        cells = []
        for field in ("cpu", "wall"):
            for b in ("old", "new"):
                pairs = zip(calls[(ref, b)], calls[(case, b)], strict=True)
                r = [c[field] / f[field] for f, c in pairs]
                cells.append(f"{statistics.median(r):.2f}× [{min(r):.2f}–{max(r):.2f}]")
        w(f"| {case} | {ref} | {' | '.join(cells)} |")
    w("")
    w(f"Loop sizes (calls per run): {', '.join(f'{k} {sizes[k]:,}' for k, _, _ in CALL_CASES)}.")
    w("")
    if texts:
        w("### Redaction, µs per `capture.redact_secrets(text)`")
        w("")
        w("| text | old | new | new ÷ old | secrets found old / new |")
        w("|---|---:|---:|---:|---:|")
        for name in texts:
            o, n = red[(name, "old")], red[(name, "new")]
            w(
                f"| {name} | {_spread(o, ',.1f')} | {_spread(n, ',.1f')} | {_ratio(o, n)} "
                f"| {found[(name, 'old')]} / {found[(name, 'new')]} |"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "old": old_title,
                    "new": new_title,
                    "loads": loads,
                    "sizes": sizes,
                    "calls": {f"{k}/{b}": v for (k, b), v in calls.items()},
                    "redaction_us": {f"{k}/{b}": v for (k, b), v in red.items()},
                },
                indent=1,
            )
        )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
