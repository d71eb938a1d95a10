"""What the fault machinery of recovery evals (agentsignals.faults) costs a run whose faults
are armed but never fire, against the same run with no fault plan, side by side in one run.

Run: ``python benchmarks/bench_faults.py [--quick] [--repeats N] [--json PATH]``. Prints a
Markdown report. Not a test.

Every case is the same agent loop: ``@agentsignals.trace_tool`` calls inside
``agentsignals.attempt()``, 100 calls per ``agentsignals.turn()``; only the call loops are timed
(opening and closing the attempt, attaching the injector and flushing are outside the clock).
"Armed but not firing": each fault's trigger is ``after_step`` with a step the run never
reaches, so every call goes through the injector's hooks (``before_tool``, ``after_tool``:
counting the call, reading its attributes, remembering files read and, for stale output, every
result) and nothing is ever injected (checked: zero injections, zero fault events).

Two settings:

* **no workspace**: the tool is a plain function; the pure per-call cost of the hooks, the
  worst case relative to the rest.
* **workspace**: ``attempt(workspace=repo)`` on a real git repository of 200 files, and every
  call rewrites one file (the tracker diffs the tree after each call; faults that need the
  edit history read the previous content of the changed file). The realistic case.

Cases are interleaved round-robin (repeat r of every case before repeat r+1 of any); each
repeat is a calibrated loop; the tables show the median over repeats of ns (or µs) per call in
wall time and in process CPU time, and the ratio to "none" of the same setting computed per
repeat (median [min-max]). Spans go through agentsignals' pipeline to a counting exporter that
does no I/O (``configure(tracer_provider=..., exporters=[null], batch=True)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
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

for _name in list(os.environ):
    if _name.startswith("OTEL_") or _name in ("TRACEPARENT", "TRACESTATE", "BAGGAGE"):
        del os.environ[_name]
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "1000000"
os.environ.pop("AGENTSIGNALS_FAULTS", None)

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

import agentsignals  # noqa: E402
from agentsignals import faults  # noqa: E402

CHUNK = 100  # tool calls per turn
NEVER = 10**9  # an after_step trigger the run never reaches


class NullExporter(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0
        self.fault_events = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.exported += len(spans)
        for s in spans:
            self.fault_events += sum(
                1 for e in s.events if e.name.startswith("agent_signals.fault")
            )
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _never(kind: str, **kw: Any) -> faults.Fault:
    return faults.Fault(kind, trigger="after_step", step=NEVER, **kw)


PLANS: dict[str, list[faults.Fault] | None] = {
    "none": None,
    "tool_error armed": [_never("tool_error")],
    "stale_output armed": [_never("stale_output")],
    "revert_last_edit armed": [_never("revert_last_edit")],
    "all 9 kinds armed": [_never(k) for k in faults.KINDS],
}


@dataclasses.dataclass
class Case:
    setting: str
    plan: str
    run: Callable[[int], None]  # times n calls into wall / cpu
    wall: list[float] = dataclasses.field(default_factory=list)  # ns per call
    cpu: list[float] = dataclasses.field(default_factory=list)
    injections: int = 0


def make_repo(root: Path, files: int = 200) -> Path:
    repo = root / "repo"
    (repo / "pkg").mkdir(parents=True)
    for i in range(files):
        body = "".join(f"def f{i}_{j}(x):\n    return x + {j}\n\n" for j in range(20))
        (repo / "pkg" / f"m{i:03d}.py").write_text(body)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}  # fmt: skip
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env, capture_output=True)
    return repo


def make_case(setting: str, plan_name: str, repo: Path | None) -> Case:
    plan = PLANS[plan_name]

    if repo is None:

        @agentsignals.trace_tool("read_file")
        def tool(path: str) -> str:
            return path

        def call(i: int) -> None:
            tool(f"pkg/m{i % 200:03d}.py")

    else:
        target = repo / "pkg" / "m000.py"
        original = target.read_text()

        @agentsignals.trace_tool("write_file", category="edit")
        def tool(path: str, content: str) -> str:
            target.write_text(content)
            return "ok"

        def call(i: int) -> None:
            tool("pkg/m000.py", original + f"# {i}\n")

    case = Case(setting, plan_name, lambda n: None)

    def run(n: int) -> None:
        workspace = str(repo) if repo is not None else None
        with agentsignals.attempt(agent_type="bench", workspace=workspace):
            injector = faults.inject(plan) if plan is not None else None
            gc.collect()
            w0, c0 = time.perf_counter_ns(), time.process_time_ns()
            done = 0
            while done < n:
                with agentsignals.turn():
                    for i in range(done, min(n, done + CHUNK)):
                        call(i)
                done += CHUNK
            w1, c1 = time.perf_counter_ns(), time.process_time_ns()
            if injector is not None:
                case.injections += len(injector.injections)
        case.wall.append((w1 - w0) / n)
        case.cpu.append((c1 - c0) / n)

    case.run = run
    return case


def calibrate(case: Case, target_s: float, start: int) -> int:
    n = start
    while True:
        t0 = time.perf_counter()
        case.run(n)
        elapsed = time.perf_counter() - t0
        if elapsed >= target_s / 4 or n >= 1_000_000:
            break
        n *= 2
    case.wall.clear()
    case.cpu.clear()
    return max(CHUNK, int(n * target_s / max(elapsed, 1e-6)) // CHUNK * CHUNK)


def ratios(case: Case, base: Case, attr: str) -> list[float]:
    a, b = getattr(case, attr), getattr(base, attr)
    return [x / y for x, y in zip(a, b, strict=True)]


def fmt_ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}–{max(values):.3f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--target", type=float, default=0.4, help="seconds per repeat and case")
    ap.add_argument("--json", type=Path, default=None, help="write the raw samples here")
    args = ap.parse_args(argv)
    repeats, target = (3, 0.1) if args.quick else (args.repeats, args.target)

    null = NullExporter()
    provider = TracerProvider()
    agentsignals.configure(tracer_provider=provider, exporters=[null], batch=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench-faults-")
    repo = make_repo(Path(tmp.name))
    cases = [make_case("no workspace", p, None) for p in PLANS] + [
        make_case("workspace", p, repo) for p in PLANS
    ]
    sizes = {id(c): calibrate(c, target, 100 if c.setting == "workspace" else 1000) for c in cases}
    # One size per setting (the smallest calibrated), so every case runs the same calls.
    per_setting: dict[str, int] = {}
    for c in cases:
        per_setting[c.setting] = min(per_setting.get(c.setting, sizes[id(c)]), sizes[id(c)])
    for c in cases:
        c.injections = 0
    for _ in range(repeats):
        for c in cases:
            c.run(per_setting[c.setting])
            agentsignals.force_flush()
    agentsignals.force_flush()

    print("# Fault machinery: armed but not firing vs no fault plan\n")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared); {repeats} repeats per case, round-robin; "
        f"calls per repeat: " + ", ".join(f"{k} {v}" for k, v in per_setting.items()) + "\n"
    )
    for setting, unit, scale in (("no workspace", "ns", 1.0), ("workspace", "µs", 1e-3)):
        base = next(c for c in cases if c.setting == setting and c.plan == "none")
        print(f"## {setting} ({unit} per tool call, median of repeats)\n")
        print(f"| plan | wall {unit} | CPU {unit} | wall / none | CPU / none | injections |")
        print("|---|---:|---:|---|---|---:|")
        for c in (c for c in cases if c.setting == setting):
            w = statistics.median(c.wall) * scale
            u = statistics.median(c.cpu) * scale
            if c is base:
                rw = ru = "1"
            else:
                rw, ru = fmt_ratio(ratios(c, base, "wall")), fmt_ratio(ratios(c, base, "cpu"))
            print(f"| {c.plan} | {w:,.1f} | {u:,.1f} | {rw} | {ru} | {c.injections} |")
        print()
    injected = sum(c.injections for c in cases)
    print(f"Injections: {injected}; fault events exported: {null.fault_events}; "
          f"spans exported: {null.exported}.")  # fmt: skip
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [dataclasses.asdict(c) | {"run": None} for c in cases], indent=1, default=str
            )
        )
    agentsignals.shutdown()
    tmp.cleanup()
    return 1 if injected or null.fault_events else 0


if __name__ == "__main__":
    sys.exit(main())
