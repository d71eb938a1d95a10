"""Per-call overhead of agentsignals' tool instrumentation against plain OpenTelemetry spans.

Run: ``python benchmarks/bench_instrumentation.py [--quick] [--profile] [--json PATH]``.
Prints a Markdown report (tables of ns per call, ratios against the plain-OTel baselines, the
goals of issue #2, import time, span accounting). ``--quick`` is a smoke run of a few seconds;
``--profile`` appends a cProfile of the ``@trace_tool`` path. Not a test.

Set-up (identical for every scenario): one ``TracerProvider`` whose only processor is
agentsignals' pipeline (installed by ``agentsignals.configure(tracer_provider=provider,
exporters=[NullExporter()], batch=True)``), i.e. pipeline -> BatchSpanProcessor(NullExporter).
Plain-OTel baselines use ``provider.get_tracer("bench")`` and so go through the very same chain.
``OTEL_BSP_MAX_QUEUE_SIZE`` is raised before any processor exists and the queue is flushed
(outside the timed region) after every repeat, so no span is dropped; exported spans are
counted and checked against the spans created.

Every case is timed in two modes:

* child: inside ``agentsignals.attempt()``, the calls run in chunks of 100 inside a fresh
  ``agentsignals.turn()`` (as a real agent loop does); only the 100-call loops are timed, the
  cost of opening/closing the attempt and turns is excluded (and reported separately).
* root: no parent span at all, every tool span is the root of its own trace.

Cases are interleaved round-robin (repeat r of every case before repeat r+1 of any), each repeat
is a calibrated loop of ~0.4 s (9 repeats), and the tables show the median of the repeats in wall
time and in process CPU time (the latter ignores time taken by other processes on a shared
machine). Rows R2/R3 repeat scenarios 2/3 on a second provider without agentsignals' pipeline,
for reference only. Import time is measured in fresh processes (bytecode cached in a temporary
PYTHONPYCACHEPREFIX, and as the environment is).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Before anything creates a BatchSpanProcessor: a queue large enough that nothing drops, and no
# stray OTEL_* / TRACEPARENT settings from the caller's shell that would change what is measured.
for _name in list(os.environ):
    if _name.startswith("OTEL_") or _name in ("TRACEPARENT", "TRACESTATE", "BAGGAGE"):
        del os.environ[_name]
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "1000000"

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import agentsignals  # noqa: E402
from agentsignals._instrument.runtime import RUNTIME  # noqa: E402

CHUNK = 100  # tool calls per turn in child mode
HEAVY_MODULES = ("opentelemetry.sdk", "pydantic", "msgspec", "grpc", "google.protobuf")


class NullExporter(SpanExporter):
    """Counts spans, does no I/O, always succeeds; survives shutdown (configure() swaps the
    BatchSpanProcessor around it when capture is toggled, and shuts the old one down)."""

    def __init__(self) -> None:
        self.exported = 0
        self.shutdowns = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shutdowns += 1

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def work(x: int) -> int:
    return x + 1


# ------------------------------------------------------------------------------------- set-up


@dataclasses.dataclass
class Case:
    key: str
    label: str
    body: Callable[[int], None]  # runs n calls
    spans_per_call: int
    capture: bool = False
    fingerprint: bool = True
    reference: bool = False  # uses the pipeline-free reference provider (not a scenario)


@dataclasses.dataclass
class Bench:
    provider: TracerProvider
    null: NullExporter
    ref_provider: TracerProvider
    ref_null: NullExporter
    capture_on: bool = False
    expected: int = 0  # spans created through `provider`
    ref_expected: int = 0
    flush_mismatches: int = 0


def tool_attributes(root: bool) -> dict[str, Any]:
    """The attributes `@agentsignals.trace_tool` puts on a span of `work`, captured for real."""
    from agentsignals.testing import attributes, capture_spans

    traced = agentsignals.trace_tool(work)
    with capture_spans() as captured:
        if root:
            traced(1)
        else:
            with agentsignals.attempt(agent_type="bench"), agentsignals.turn():
                traced(1)
    (span,) = captured.spans_of_type("tool")
    return attributes(span)


def configure(bench: Bench, capture: bool) -> None:
    agentsignals.configure(
        tracer_provider=bench.provider,
        exporters=[bench.null],
        batch=True,
        capture_content=capture,
    )
    bench.capture_on = capture


def make_cases(bench: Bench, attrs: dict[str, dict[str, Any]]) -> dict[str, list[Case]]:
    tracer = bench.provider.get_tracer("bench")
    ref_tracer = bench.ref_provider.get_tracer("bench")
    traced = agentsignals.trace_tool(work)
    traced_cat = agentsignals.trace_tool(category="read")(work)
    span_name = "execute_tool work"

    def bare(n: int) -> None:
        f = work
        for i in range(n):
            f(i)

    def plain_span(start: Callable[..., Any]) -> Callable[[int], None]:
        def body(n: int) -> None:
            f, name = work, span_name
            for i in range(n):
                with start(name):
                    f(i)

        return body

    def plain_attrs(start: Callable[..., Any], a: dict[str, Any]) -> Callable[[int], None]:
        def body(n: int) -> None:
            f, name = work, span_name
            for i in range(n):
                with start(name, attributes=a):
                    f(i)

        return body

    def decorated(g: Callable[[int], int]) -> Callable[[int], None]:
        def body(n: int) -> None:
            for i in range(n):
                g(i)

        return body

    def cm(n: int) -> None:
        f, tool = work, agentsignals.tool
        for i in range(n):
            with tool("work"):
                f(i)

    def cm_args(n: int) -> None:
        f, tool = work, agentsignals.tool
        for i in range(n):
            with tool("work", arguments={"x": i}) as t:
                t.record_result(f(i))

    cases: dict[str, list[Case]] = {}
    for mode in ("child", "root"):
        a = attrs[mode]
        cases[mode] = [
            Case("1", "bare call `work(x)`", bare, 0),
            Case(
                "2",
                'plain OTel `start_as_current_span("execute_tool work")`',
                plain_span(tracer.start_as_current_span),
                1,
            ),
            Case(
                "3",
                f"plain OTel + the tool span's {len(a)} attributes",
                plain_attrs(tracer.start_as_current_span, a),
                1,
            ),
            Case("4", "`@agentsignals.trace_tool`", decorated(traced), 1),
            Case("4c", '`@agentsignals.trace_tool(category="read")`', decorated(traced_cat), 1),
            Case("5", '`with agentsignals.tool("work")`', cm, 1),
            Case(
                "5a",
                '`with agentsignals.tool("work", arguments={"x": x})` + `record_result`',
                cm_args,
                1,
            ),
            Case(
                "7",
                "`@agentsignals.trace_tool`, fingerprint off (private knob)",
                decorated(traced),
                1,
                fingerprint=False,
            ),
            Case(
                "6/4",
                "`@agentsignals.trace_tool`, capture_content=True",
                decorated(traced),
                1,
                capture=True,
            ),
            Case(
                "6/5", '`with agentsignals.tool("work")`, capture_content=True', cm, 1, capture=True
            ),
            Case(
                "6/5a",
                "`tool(..., arguments=)` + `record_result`, capture_content=True",
                cm_args,
                1,
                capture=True,
            ),
            Case(
                "R2",
                "reference: scenario 2 on a provider without agentsignals",
                plain_span(ref_tracer.start_as_current_span),
                1,
                reference=True,
            ),
            Case(
                "R3",
                "reference: scenario 3 on a provider without agentsignals",
                plain_attrs(ref_tracer.start_as_current_span, a),
                1,
                reference=True,
            ),
        ]
    return cases


# ------------------------------------------------------------------------------------ timing


def set_state(bench: Bench, case: Case) -> None:
    if case.capture != bench.capture_on:
        configure(bench, case.capture)
    if RUNTIME.settings.fingerprint_tools != case.fingerprint:
        RUNTIME.settings = dataclasses.replace(RUNTIME.settings, fingerprint_tools=case.fingerprint)


def run_once(bench: Bench, case: Case, mode: str, n: int) -> tuple[int, int]:
    """Time `n` calls; returns (wall ns, process CPU ns). Flushes after, outside the timing."""
    set_state(bench, case)
    body = case.body
    gc.collect()
    wall = cpu = 0
    our_spans = 0
    clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
    if mode == "root":
        c0, t0 = cpu_clock(), clock()
        body(n)
        wall, cpu = clock() - t0, cpu_clock() - c0
    else:
        with agentsignals.attempt(agent_type="bench"):
            our_spans += 1
            left = n
            while left > 0:
                k = CHUNK if left >= CHUNK else left
                with agentsignals.turn():
                    c0, t0 = cpu_clock(), clock()
                    body(k)
                    wall += clock() - t0
                    cpu += cpu_clock() - c0
                our_spans += 1
                left -= k
    made = n * case.spans_per_call
    if case.reference:
        bench.ref_expected += made
    else:
        our_spans += made
    bench.expected += our_spans
    agentsignals.force_flush()
    bench.ref_provider.force_flush()
    if bench.null.exported != bench.expected or bench.ref_null.exported != bench.ref_expected:
        bench.flush_mismatches += 1
    return wall, cpu


def calibrate(bench: Bench, case: Case, mode: str, target_s: float) -> int:
    n = CHUNK
    while True:
        ns, _ = run_once(bench, case, mode, n)
        if ns >= 20_000_000 or n >= 50_000_000:
            break
        n *= 4
    n = int(n * target_s * 1e9 / ns)
    return max(CHUNK, (n // CHUNK) * CHUNK)


def turn_cost(bench: Bench, repeats: int, n: int) -> tuple[float, float]:
    """Median ns of an empty `with agentsignals.turn()` inside an attempt, and of an attempt."""
    set_state(bench, Case("-", "-", lambda n: None, 0))
    turns, attempts = [], []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        gc.collect()
        with agentsignals.attempt(agent_type="bench"):
            t0 = clock()
            for _ in range(n):
                with agentsignals.turn():
                    pass
            turns.append((clock() - t0) / n)
        t0 = clock()
        for _ in range(n // 10):
            with agentsignals.attempt(agent_type="bench"):
                pass
        attempts.append((clock() - t0) / (n // 10))
        bench.expected += 1 + n + n // 10
        agentsignals.force_flush()
    return statistics.median(turns), statistics.median(attempts)


def measure(
    bench: Bench, cases: dict[str, list[Case]], repeats: int, target_s: float
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """ns per call of every (mode, case): {"wall": [...], "cpu": [...]}, one entry per repeat."""
    plan = [(mode, case) for mode in ("child", "root") for case in cases[mode]]
    # Capture-on cases last in each round, so configure() swaps the processor twice per round.
    plan.sort(key=lambda mc: mc[1].capture)
    sizes = {(mode, c.key): calibrate(bench, c, mode, target_s) for mode, c in plan}
    results: dict[tuple[str, str], dict[str, list[float]]] = {
        (m, c.key): {"wall": [], "cpu": []} for m, c in plan
    }
    for _ in range(repeats):
        for mode, case in plan:
            n = sizes[(mode, case.key)]
            wall, cpu = run_once(bench, case, mode, n)
            results[(mode, case.key)]["wall"].append(wall / n)
            results[(mode, case.key)]["cpu"].append(cpu / n)
    set_state(bench, Case("-", "-", lambda n: None, 0))
    return results


def components(repeats: int, n: int) -> list[tuple[str, float, float]]:
    """(label, median ns, min ns) of pieces of the per-call path, each timed in isolation."""
    import inspect

    import wrapt

    from agentsignals._classify.tools import category_for
    from agentsignals._instrument import capture

    signature = inspect.signature(work)
    passthrough = wrapt.FunctionWrapper(work, lambda wrapped, instance, a, kw: wrapped(*a, **kw))
    pieces: list[tuple[str, Callable[[int], object]]] = [
        ("`capture.fingerprint('work', (x,), {})` (every `@trace_tool` call)",
         lambda x: capture.fingerprint("work", (x,), {})),
        ("`tools.category_for('work')` (every `tool('work')` construction)",
         lambda x: category_for("work")),
        ("`wrapt.FunctionWrapper` pass-through around `work` (incl. the call)",
         passthrough),
        ("`inspect.Signature.bind_partial(x)` (capture on: arguments by name)",
         lambda x: signature.bind_partial(x).arguments),
        ("`capture.to_text({'x': x})` (capture on: msgspec JSON)",
         lambda x: capture.to_text({"x": x})),
        ("`capture.redact_secrets('{\"x\":1}')` (capture on: secret patterns)",
         lambda x: capture.redact_secrets('{"x":1}')),
    ]  # fmt: skip
    out = []
    clock = time.perf_counter_ns
    for label, fn in pieces:
        fn(0)
        samples = []
        for _ in range(repeats):
            t0 = clock()
            for i in range(n):
                fn(i)
            samples.append((clock() - t0) / n)
        out.append((label, statistics.median(samples), min(samples)))
    return out


# The build before issue #11 (main at 13862ac): its redaction is timed beside today's, in this run.
REDACTION_BASELINE = "13862ac"


def _baseline_redactor() -> tuple[Callable[[str], Any], Path] | None:
    """`redact_secrets` of the baseline build, loaded from git (None when git or the commit is
    not available, e.g. in a shallow clone)."""
    import importlib.util

    try:
        source = subprocess.run(
            ["git", "show", f"{REDACTION_BASELINE}:src/agentsignals/_instrument/capture.py"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "baseline_capture.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_capture", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.redact_secrets, path


def redaction(repeats: int, budget_chars: int) -> list[tuple[str, float, float, float | None]]:
    """(label, median µs, min µs, baseline median µs) of `redact_secrets` per value, by value
    size: with capture on it runs on each whole value before the byte budget cuts it; on export
    it runs on every string of every span. The baseline build's function on the same values,
    interleaved repeat by repeat, is the "before" column."""
    from agentsignals._features import extract
    from agentsignals._instrument import capture, redact

    loaded = _baseline_redactor()
    baseline = loaded[0] if loaded is not None else None
    # Source code that never names a secret, and source that names every kind (the baseline's
    # redaction module, and today's rule module: every keyword of every rule is in it).
    plain = Path(extract.__file__).read_text() * 20
    old_rules = ""
    if loaded is not None:
        old_rules = loaded[1].read_text() * 20
    new_rules = Path(redact.__file__).read_text() * 20
    values = {
        '7 bytes (`{"x":1}`)': '{"x":1}',
        "1 KB of pytest output": ("tests/test_a.py::test_x PASSED" + " " * 19 + "[ 10%]\n") * 18,
        "4 KB of Python source": plain[:4096],
        "64 KB of Python source": plain[:65536],
    }
    if old_rules:
        values["4 KB of the baseline's redaction module"] = old_rules[:4096]
        values["64 KB of the baseline's redaction module"] = old_rules[:65536]
    values["4 KB of today's rule module (every keyword)"] = new_rules[:4096]
    values["64 KB of today's rule module (every keyword)"] = new_rules[:65536]
    out: list[tuple[str, float, float, float | None]] = []
    for label, text in values.items():
        n = max(5, budget_chars // max(len(text), 100))
        samples: list[float] = []
        before: list[float] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                capture.redact_secrets(text)
            samples.append((time.perf_counter() - t0) / n * 1e6)
            if baseline is not None:
                t0 = time.perf_counter()
                for _ in range(n):
                    baseline(text)
                before.append((time.perf_counter() - t0) / n * 1e6)
        out.append(
            (
                label,
                statistics.median(samples),
                min(samples),
                statistics.median(before) if before else None,
            )
        )
    return out


# ------------------------------------------------------------------------------- import time


def _python(
    code: str, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, check=True
    )


def _import_env(pycache: str | None) -> dict[str, str]:
    """The caller's environment without OTEL_*; with `pycache`, bytecode is cached there
    (PYTHONPYCACHEPREFIX, nothing written into the source tree) even if the caller set
    PYTHONDONTWRITEBYTECODE."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _importtime(env: dict[str, str]) -> float:
    """`-X importtime` cumulative seconds of the top-level `agentsignals` import."""
    err = _python("import agentsignals", "-X", "importtime", env=env).stderr
    for line in err.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "agentsignals":
            return int(parts[1]) / 1e6
    raise RuntimeError("no agentsignals line in -X importtime output")


def import_times(runs: int) -> dict[str, Any]:
    """Import cost in fresh processes, medians of `runs`, all variants interleaved.

    "cached": bytecode cached (what an installed package sees). "as_is": the caller's
    environment unchanged; this sandbox sets PYTHONDONTWRITEBYTECODE=1, so the editable
    install's own modules are compiled from source on every start.
    """
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        envs = {"cached": _import_env(pycache)}
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            envs["as_is"] = _import_env(None)
        for env in envs.values():
            _python("import agentsignals", env=env)  # write bytecode, warm the file cache
        samples: dict[str, dict[str, list[float]]] = {
            name: {"importtime": [], "pass": [], "import": []} for name in envs
        }
        for _ in range(runs):
            for name, env in envs.items():
                samples[name]["importtime"].append(_importtime(env))
                for code, key in (("pass", "pass"), ("import agentsignals", "import")):
                    t0 = time.perf_counter()
                    _python(code, env=env)
                    samples[name][key].append(time.perf_counter() - t0)
    result: dict[str, Any] = {"as_is": None}
    for name, sample in samples.items():
        med = {k: statistics.median(v) for k, v in sample.items()}
        result[name] = {
            "importtime_s": med["importtime"],
            "wall_pass_s": med["pass"],
            "wall_import_s": med["import"],
            "wall_delta_s": med["import"] - med["pass"],
        }
    probe = (
        "import sys, json, agentsignals\n"
        f"print(json.dumps({{m: m in sys.modules for m in {list(HEAVY_MODULES)!r}}}))"
    )
    result["heavy_loaded"] = json.loads(_python(probe, env=_import_env(None)).stdout)
    return result


# ------------------------------------------------------------------------------------ report


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"nproc={os.cpu_count()}, {cpu}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}; "
        f"opentelemetry-sdk {_version('opentelemetry-sdk')}, wrapt {_version('wrapt')}, "
        f"msgspec {_version('msgspec')}"
    )


def _fmt_ns(ns: float) -> str:
    return f"{ns:,.0f}"


GOALS = (
    ("`@trace_tool` ≤ 1.25 × S3", "4", "3", 1.25),
    ("`@trace_tool` ≤ 1.5 × S2", "4", "2", 1.5),
    ("`@trace_tool(category=)` ≤ 1.25 × S3", "4c", "3", 1.25),
    ("`@trace_tool(category=)` ≤ 1.5 × S2", "4c", "2", 1.5),
)


def report(
    results: dict[tuple[str, str], dict[str, list[float]]],
    cases: dict[str, list[Case]],
    bench: Bench,
    imports: dict[str, Any] | None,
    turn_ns: tuple[float, float],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    med = {
        (mode, key, clock): statistics.median(v[clock])
        for (mode, key), v in results.items()
        for clock in ("wall", "cpu")
    }
    out: list[str] = []
    w = out.append
    w(
        f"## bench_instrumentation.py — {time.strftime('%Y-%m-%d %H:%M:%S')}"
        f"{' (quick)' if args.quick else ''}"
    )
    w("")
    w(f"- machine: {machine()}")
    w(
        f"- {args.repeats} repeats per case, round-robin, each a calibrated loop of "
        f"~{args.target:.2f} s; medians; total {elapsed:.0f} s"
    )
    w(
        "- wall = `perf_counter_ns`, [min–max] of the repeats; CPU = `process_time_ns` (all "
        "threads of the process, so the BatchSpanProcessor worker is included, but time stolen "
        "by other processes is not)"
    )
    w(
        "- one TracerProvider → agentsignals pipeline → BatchSpanProcessor(NullExporter) for "
        "every scenario; R rows: a second provider with only BatchSpanProcessor(NullExporter)"
    )
    w("")
    for mode, title in (
        ("child", f"child mode: tool spans under attempt › turn, new turn every {CHUNK} calls"),
        ("root", "root mode: no parent span"),
    ):
        w(f"### {title}")
        w("")
        w(
            "| # | scenario | wall ns/call [min–max] | CPU ns/call | span cost (wall − S1) "
            "| ÷ S3 wall | ÷ S2 wall | ÷ S3 CPU | ÷ S2 CPU |"
        )
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for case in cases[mode]:
            v = results[(mode, case.key)]["wall"]
            mw, mc = med[(mode, case.key, "wall")], med[(mode, case.key, "cpu")]
            if case.key == "1":
                cols = ["—"] * 5
            else:
                cols = [_fmt_ns(mw - med[(mode, "1", "wall")])] + [
                    f"{m / med[(mode, base, clock)]:.2f}×"
                    for m, clock in ((mw, "wall"), (mc, "cpu"))
                    for base in ("3", "2")
                ]
            w(
                f"| {case.key} | {case.label} | {_fmt_ns(mw)} [{_fmt_ns(min(v))}–{_fmt_ns(max(v))}]"
                f" | {_fmt_ns(mc)} | {' | '.join(cols)} |"
            )
        w("")
        for clock in ("wall", "cpu"):
            fp = med[(mode, "4", clock)] - med[(mode, "7", clock)]
            span = med[(mode, "4", clock)] - med[(mode, "1", clock)]
            pipe = med[(mode, "3", clock)] - med[(mode, "R3", clock)]
            w(
                f"- {clock}: fingerprint share of `@trace_tool` (S4 − S7) {_fmt_ns(fp)} ns/call = "
                f"{fp / span:.0%} of its span cost; our pipeline's cost on a plain span "
                f"(S3 − R3) {_fmt_ns(pipe)} ns/call"
            )
        w("")
    w(
        f"Not in the child-mode numbers: an empty `turn()` costs {_fmt_ns(turn_ns[0])} ns wall "
        f"(≈ {_fmt_ns(turn_ns[0] / CHUNK)} ns per tool call at {CHUNK} calls per turn), an empty "
        f"`attempt()` {_fmt_ns(turn_ns[1])} ns."
    )
    w("")
    w("### Goals (capture off)")
    w("")
    w("| goal | child wall | child CPU | root wall | root CPU | met |")
    w("|---|---:|---:|---:|---:|---|")
    for label, key, base, limit in GOALS:
        ratios = [
            med[(mode, key, clock)] / med[(mode, base, clock)]
            for mode in ("child", "root")
            for clock in ("wall", "cpu")
        ]
        met = sum(r <= limit for r in ratios)
        verdict = "yes" if met == len(ratios) else "NO" if met == 0 else f"partly ({met}/4)"
        w(f"| {label} | {' | '.join(f'{r:.2f}×' for r in ratios)} | {verdict} |")
    for label, key, base in (
        ("(info) `@trace_tool` ÷ R3, plain span on a provider without agentsignals", "4", "R3"),
        ("(info) `@trace_tool` ÷ R2, bare plain span without agentsignals", "4", "R2"),
    ):
        ratios = [
            med[(mode, key, clock)] / med[(mode, base, clock)]
            for mode in ("child", "root")
            for clock in ("wall", "cpu")
        ]
        w(f"| {label} | {' | '.join(f'{r:.2f}×' for r in ratios)} | — |")
    if imports is not None:
        c = imports["cached"]["wall_delta_s"]
        w(
            f"| import < 0.15 s (wall, bytecode cached) | {c * 1000:.0f} ms | | | | "
            f"{'yes' if c < 0.15 else 'NO'} |"
        )
        if imports["as_is"] is not None:
            a = imports["as_is"]["wall_delta_s"]
            w(
                f"| import < 0.15 s (wall, PYTHONDONTWRITEBYTECODE=1 as set here) | "
                f"{a * 1000:.0f} ms | | | | {'yes' if a < 0.15 else 'NO'} |"
            )
    w("")
    if imports is not None:
        w("### Import of `agentsignals`")
        w("")
        w(
            "| environment | `-X importtime` cumulative | wall `import agentsignals` | wall `pass` "
            "| difference |"
        )
        w("|---|---:|---:|---:|---:|")
        for key, label in (("cached", "bytecode cached"), ("as_is", "as is (no bytecode)")):
            r = imports[key]
            if r is None:
                continue
            w(
                f"| {label} | {r['importtime_s'] * 1000:.1f} ms "
                f"| {r['wall_import_s'] * 1000:.0f} ms | {r['wall_pass_s'] * 1000:.0f} ms "
                f"| **{r['wall_delta_s'] * 1000:.0f} ms** |"
            )
        w("")
        w(f"Medians of {args.import_runs} fresh processes each.")
        not_loaded = [m for m, v in imports["heavy_loaded"].items() if not v]
        loaded = [m for m, v in imports["heavy_loaded"].items() if v]
        w(
            f"After `import agentsignals`, not in `sys.modules`: {', '.join(not_loaded) or 'none'}"
            f"; loaded: {', '.join(loaded) or 'none'}."
        )
        w("")
    w("### Span accounting")
    w("")
    w(
        f"- pipeline provider: {bench.expected:,} spans created, {bench.null.exported:,} exported "
        f"({bench.expected - bench.null.exported:,} missing)"
    )
    w(
        f"- reference provider: {bench.ref_expected:,} created, {bench.ref_null.exported:,} "
        f"exported; per-repeat flush mismatches: {bench.flush_mismatches}"
    )
    return "\n".join(out)


def profile(bench: Bench, calls: int, top: int) -> str:
    """cProfile of `@trace_tool` in child mode (capture off), sorted by own time."""
    traced = agentsignals.trace_tool(work)
    set_state(bench, Case("-", "-", lambda n: None, 0))
    prof = cProfile.Profile()
    with agentsignals.attempt(agent_type="bench"):
        for start in range(0, calls, CHUNK):
            with agentsignals.turn():
                prof.enable()
                for i in range(start, start + CHUNK):
                    traced(i)
                prof.disable()
    bench.expected += 1 + calls // CHUNK + calls
    agentsignals.force_flush()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    text = re.sub(r"/\S*/site-packages/", "", buf.getvalue())
    text = text.replace(os.getcwd() + "/", "")
    return f"### cProfile: {calls:,} `@trace_tool` calls, child mode\n\n```\n{text.strip()}\n```"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case (9)")
    parser.add_argument("--target", type=float, default=None, help="seconds per repeat (0.4)")
    parser.add_argument("--import-runs", type=int, default=None, help="fresh processes (10)")
    parser.add_argument("--no-import", action="store_true", help="skip the import-time part")
    parser.add_argument("--profile", action="store_true", help="append a cProfile of @trace_tool")
    parser.add_argument("--json", metavar="PATH", help="also write raw per-repeat ns/call")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 9)
    args.target = args.target or (0.03 if args.quick else 0.4)
    args.import_runs = args.import_runs or (3 if args.quick else 10)

    began = time.perf_counter()
    attrs = {"child": tool_attributes(root=False), "root": tool_attributes(root=True)}
    null = NullExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    ref_null = NullExporter()
    ref_provider = TracerProvider(shutdown_on_exit=False)
    ref_provider.add_span_processor(BatchSpanProcessor(ref_null))
    bench = Bench(provider, null, ref_provider, ref_null)
    configure(bench, capture=False)
    cases = make_cases(bench, attrs)

    results = measure(bench, cases, args.repeats, args.target)
    turn_ns = turn_cost(bench, args.repeats, 200 if args.quick else 2000)
    parts = components(args.repeats, 2_000 if args.quick else 50_000)
    prof = profile(bench, 2_000 if args.quick else 50_000, 30) if args.profile else None
    imports = None if args.no_import else import_times(args.import_runs)
    agentsignals.force_flush()
    elapsed = time.perf_counter() - began

    print(report(results, cases, bench, imports, turn_ns, args, elapsed))
    print()
    print("### Pieces of the per-call path, timed alone")
    print()
    print("| piece | ns/call median | min |")
    print("|---|---:|---:|")
    for label, median_ns, min_ns in parts:
        print(f"| {label} | {_fmt_ns(median_ns)} | {_fmt_ns(min_ns)} |")
    print()
    print("### Secret redaction per captured value (capture on)")
    print()
    print(f"| value | µs median | min | before ({REDACTION_BASELINE}), µs median |")
    print("|---|---:|---:|---:|")
    budget = 200_000 if args.quick else 2_000_000
    for label, median_us, min_us, before_us in redaction(args.repeats, budget):
        was = f"{before_us:,.1f}" if before_us is not None else "n/a"
        print(f"| {label} | {median_us:,.1f} | {min_us:,.1f} | {was} |")
    print()
    print("Attributes of the tool span copied into scenario 3:")
    print()
    for mode in ("child", "root"):
        print(f"- {mode}: `{json.dumps(attrs[mode])}`")
    if prof is not None:
        print()
        print(prof)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "machine": machine(),
                    "ns_per_call": {f"{m}/{k}": v for (m, k), v in results.items()},
                    "imports": imports,
                    "turn_ns": turn_ns,
                    "components": parts,
                    "spans": {"expected": bench.expected, "exported": bench.null.exported},
                },
                fh,
                indent=1,
            )
    agentsignals.shutdown()
    ref_provider.shutdown()
    return 0 if bench.expected == bench.null.exported else 1


if __name__ == "__main__":
    sys.exit(main())
