"""Decode + feature-extraction throughput, and the assembler's memory, on agent-shaped traces.

Throughput (single-threaded, so every rate is per core; CPU time, since wall time on a shared
machine also counts time spent descheduled). All rows run on the same OTLP/JSON lines, held in
memory as bytes, and the rows are interleaved within each repeat so load changes on a shared
machine hit them all alike:

* stdlib ``json.loads`` per line (dicts) and bare ``msgspec.json.decode`` per line (untyped);
* the typed msgspec decode of each line into OTLP structs, nothing more (the decoder
  ``decode_otlp_json`` starts with): the ceiling of issue #16;
* ``decode_otlp_json`` per line -> ``Span``;
* decode + features: each line decoded and fed to an ``Assembler`` (no-op sink, the offline
  clock "lines read" and grace of ``features.extract``), ``flush()`` at the end;
* features only: the same assembler fed spans decoded before the clock starts;
* ``agentsignals.features.extract(path)`` on the file itself (file reading, records kept in a
  ListSink, sorting).

Goals: decode + features runs at >= half the rate of bare ``msgspec.json.decode`` (issue #3),
and at >= 0.6x the typed msgspec decode of the same bytes (issue #16, finding 2).

Memory (each measurement in a fresh child process; tracemalloc and RSS in separate children so
tracemalloc's own bookkeeping is not counted in RSS):

* in flight: spans of ``--inflight`` attempts (~60 spans each) whose attempt span (and trial
  span) never arrives, fed to an ``Assembler``: all stay in flight. Also the same spans kept in
  a plain list, to separate the spans' own size from the assembler's bookkeeping;
* flatness: a stream of finished attempts (ids renamed on every pass over a generated pool so
  each attempt is new); tracemalloc current after 2k, 10k and 50k attempts.

    python benchmarks/gen_traces.py --spans 100000 --out /tmp/traces.jsonl
    python benchmarks/bench_features.py --input /tmp/traces.jsonl --json /tmp/run1.json
    python benchmarks/bench_features.py --merge /tmp/run1.json /tmp/run2.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from agentsignals import features
from agentsignals._features.assemble import Assembler
from agentsignals._features.run import OFFLINE_GRACE_LINES
from agentsignals._spans.decode import _json_decoder, decode_otlp_json
from agentsignals._spans.model import Span

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_traces import _Gen, generate_lines, request, resource_attributes

GOAL_RATIO = 0.5  # decode + features >= half the rate of bare msgspec decoding
GOAL_TYPED = 0.6  # decode + features >= 0.6x the typed msgspec decode (issue #16)


# ----------------------------------------------------------------------------- throughput


def _count_json(doc: Any) -> int:
    return sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])


def _noop(_record: object) -> None:
    pass


class _GcClock:
    """CPU seconds spent in cyclic-GC collections while active (a gc.callbacks hook)."""

    def __init__(self) -> None:
        self.active = False
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds += time.process_time() - self._start
            self.collections += 1


def _throughput(lines: list[bytes], path: Path, repeats: int) -> dict[str, Any]:
    grace = OFFLINE_GRACE_LINES
    # A row returns (spans, CPU seconds to count or None for the whole call).
    Row = Callable[[], tuple[int, float | None]]

    def stdlib() -> tuple[int, float | None]:
        return sum(_count_json(json.loads(line)) for line in lines), None

    def bare_msgspec() -> tuple[int, float | None]:
        return sum(_count_json(msgspec.json.decode(line)) for line in lines), None

    def typed_msgspec() -> tuple[int, float | None]:
        n = 0
        for line in lines:
            req = _json_decoder.decode(line)
            n += sum(len(ss.spans) for rs in req.resourceSpans or () for ss in rs.scopeSpans)
        return n, None

    def decode() -> tuple[int, float | None]:
        return sum(len(decode_otlp_json(line)) for line in lines), None

    def decode_features() -> tuple[int, float | None]:
        # What features.extract does per line, minus file reading and the ListSink.
        n = 0
        asm = Assembler(_noop, clock=lambda: float(n), grace=grace)
        for line in lines:
            n += 1
            asm.add(decode_otlp_json(line))
        asm.flush()
        return asm.stats.spans_in, None

    def decode_features_no_gc() -> tuple[int, float | None]:
        # What-if: the same with the cyclic GC paused for the whole run (spans, groups and
        # records hold no reference cycles).
        gc.disable()
        try:
            return decode_features()
        finally:
            gc.enable()

    def features_only() -> tuple[int, float | None]:
        # Spans decoded first (not timed), then only the assembler and records are timed. The
        # decoded spans exist only during this row, so other rows see the same heap.
        predecoded = [decode_otlp_json(line) for line in lines]
        gc.collect()
        c0 = time.process_time()
        n = 0
        asm = Assembler(_noop, clock=lambda: float(n), grace=grace)
        for batch in predecoded:
            n += 1
            asm.add(batch)
        asm.flush()
        cpu = time.process_time() - c0
        return asm.stats.spans_in, cpu

    def extract() -> tuple[int, float | None]:
        result = features.extract(path)
        assert not result.problems, result.problems[:3]
        return result.stats.spans_in, None

    rows: list[tuple[str, str, Row]] = [
        ("stdlib", "stdlib `json.loads` per line (dicts)", stdlib),
        ("msgspec", "bare `msgspec.json.decode` per line (untyped)", bare_msgspec),
        ("typed", "typed `msgspec` decode per line into OTLP structs (ceiling)", typed_msgspec),
        ("decode", "`decode_otlp_json` per line → `Span`", decode),
        ("decode_features", "decode + features (`Assembler`, no-op sink, flush)", decode_features),
        ("extract", "`features.extract(path)` (file → records)", extract),
        ("features_only", "features only (spans decoded beforehand, not timed)", features_only),
        (
            "decode_features_no_gc",
            "what-if: decode + features with the cyclic GC paused",
            decode_features_no_gc,
        ),
    ]
    samples: dict[str, dict[str, list[float]]] = {
        key: {"cpu": [], "wall": [], "gc": []} for key, _, _ in rows
    }
    spans: dict[str, int] = {}
    gc_clock = _GcClock()
    for _ in range(repeats):
        for key, _, run in rows:  # interleaved: each repeat runs every row once
            gc.collect()
            gc_clock.seconds = 0.0
            gc_clock.active = True
            w0, c0 = time.perf_counter(), time.process_time()
            n, own_cpu = run()
            cpu = time.process_time() - c0
            wall = time.perf_counter() - w0
            gc_clock.active = False
            spans[key] = n
            samples[key]["cpu"].append(own_cpu if own_cpu is not None else cpu)
            samples[key]["wall"].append(wall)
            samples[key]["gc"].append(gc_clock.seconds)
    return {
        "labels": {key: label for key, label, _ in rows},
        "spans": spans,
        "samples": samples,
    }


# --------------------------------------------------------------------------------- memory


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, Linux units


def _kv(attrs: list[dict[str, Any]], key: str) -> Any:
    for kv in attrs:
        if kv["key"] == key:
            return next(iter(kv["value"].values()))
    return None


def write_inflight_input(path: Path, n_attempts: int, seed: int) -> tuple[int, int]:
    """OTLP/JSON lines with the spans of n_attempts attempts, minus their attempt and trial
    spans (still running), ~500 spans per line. Returns (attempts, spans)."""
    gen = _Gen(seed)
    res = resource_attributes(0)
    attempts = spans = 0
    batch: list[tuple[str, dict[str, Any]]] = []
    with path.open("w", encoding="utf-8") as f:
        while attempts < n_attempts:
            taken: set[str] = set()  # attempt ids of this trial that are kept
            for scope, span in gen.trial():
                attrs = span["attributes"]
                if _kv(attrs, "agent_signals.span.type") in ("attempt", "trial"):
                    continue  # never arrives: the attempt is still running
                attempt_id = _kv(attrs, "agent_signals.attempt.id")
                if attempt_id not in taken:
                    if attempts >= n_attempts:
                        continue
                    taken.add(attempt_id)
                    attempts += 1
                batch.append((scope, span))
                spans += 1
                if len(batch) >= 500:
                    f.write(json.dumps(request(res, batch), separators=(",", ":")) + "\n")
                    batch.clear()
        if batch:
            f.write(json.dumps(request(res, batch), separators=(",", ":")) + "\n")
    return attempts, spans


def _child_inflight(path: Path, use_tracemalloc: bool, keep: str) -> dict[str, Any]:
    """Feed the in-flight input line by line into an Assembler (or a plain list)."""
    kept: list[Span] = []
    asm = Assembler(_noop, clock=lambda: 0.0, grace=1e12, idle_timeout=1e12)
    attempt_ids: set[str] = set()
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    base_tm = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    base_rss = _rss()
    t0 = time.process_time()
    spans = 0
    with path.open("rb") as f:
        for line in f:
            decoded = decode_otlp_json(line)
            spans += len(decoded)
            if keep == "assembler":
                asm.add(decoded)
            else:
                kept.extend(decoded)
            del decoded, line
    if keep == "assembler":
        attempts = asm.stats.in_flight
    else:
        # Counted after the measurement below would include the set; count it now and free it.
        attempt_ids.update(str(s.attributes["agent_signals.attempt.id"]) for s in kept)
        attempts = len(attempt_ids)
        attempt_ids.clear()
    gc.collect()
    cpu = time.process_time() - t0
    out: dict[str, Any] = {
        "attempts": attempts,
        "spans": spans,
        "keep": keep,
        "cpu_s": cpu,
        "rss_delta": _rss() - base_rss,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if keep == "assembler":
        out["in_flight"] = asm.stats.in_flight
        out["evicted"] = asm.stats.evicted
        out["records"] = asm.stats.attempt_records
    if use_tracemalloc:
        current, peak = tracemalloc.get_traced_memory()
        out["tracemalloc_current"] = current - base_tm
        out["tracemalloc_peak"] = peak - base_tm
    return out


_ID_RE = re.compile(rb'(\.(?:trial|attempt)\.id","value":\{"stringValue":")[0-9a-f]{4}')


def _child_flat(
    checkpoints: list[int], use_tracemalloc: bool, pool_spans: int, seed: int
) -> dict[str, Any]:
    """Stream finished attempts; memory after each checkpoint (attempt records written)."""
    pool = [line.encode() for line in generate_lines(pool_spans, seed=seed)]
    lines_read = 0
    asm = Assembler(_noop, clock=lambda: float(lines_read), grace=OFFLINE_GRACE_LINES)
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    base_tm = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    base_rss = _rss()
    t0 = time.process_time()
    points: list[dict[str, Any]] = []
    snapshots: list[tracemalloc.Snapshot] = []
    todo = sorted(checkpoints)
    generation = 0
    while todo:
        prefix = b"%04x" % generation
        generation += 1
        for line in pool:
            # Fresh trial and attempt ids on every pass: every attempt is a new one.
            spans = decode_otlp_json(_ID_RE.sub(rb"\g<1>" + prefix, line))
            lines_read += 1
            asm.add(spans)
            del spans
            if todo and asm.stats.attempt_records >= todo[0]:
                todo.pop(0)
                gc.collect()
                point: dict[str, Any] = {
                    "attempts": asm.stats.attempt_records,
                    "spans": asm.stats.spans_in,
                    "rss_delta": _rss() - base_rss,
                    "open": len(asm._open),
                    "finished_cache": len(asm._finished),
                    "remembered_ids": len(asm._emitted),
                    "trials": len(asm._trials),
                }
                if use_tracemalloc:
                    point["tracemalloc_current"] = tracemalloc.get_traced_memory()[0] - base_tm
                    snapshots.append(tracemalloc.take_snapshot())
                points.append(point)
                if not todo:
                    break
    out: dict[str, Any] = {"points": points, "cpu_s": time.process_time() - t0}
    if use_tracemalloc and len(snapshots) >= 2:
        # Where the growth between the last two checkpoints was allocated.
        diff = snapshots[-1].compare_to(snapshots[-2], "lineno")
        out["growth_top"] = [
            {"where": str(d.traceback[0]), "size_diff": d.size_diff, "count_diff": d.count_diff}
            for d in diff[:6]
        ]
        if use_tracemalloc:
            out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1] - base_tm
    return out


def _run_child(args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _memory(
    n_inflight: int, checkpoints: list[int], pool_spans: int, seed: int, jobs: int
) -> dict[str, Any]:
    """Memory children, `jobs` at a time (bytes do not depend on CPU contention)."""
    with tempfile.TemporaryDirectory() as tmp:
        inflight = Path(tmp) / "inflight.jsonl"
        attempts, spans = write_inflight_input(inflight, n_inflight, seed)
        f = str(inflight)
        cps = ",".join(map(str, checkpoints))
        children = {
            "inflight_tm": ["inflight", f, "tm", "assembler", "0"],
            "inflight_rss": ["inflight", f, "rss", "assembler", "0"],
            "list_tm": ["inflight", f, "tm", "list", "0"],
            "list_rss": ["inflight", f, "rss", "list", "0"],
            "flat_tm": ["flat", cps, "tm", str(pool_spans), str(seed)],
            "flat_rss": ["flat", cps, "rss", str(pool_spans), str(seed)],
        }
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {key: pool.submit(_run_child, argv) for key, argv in children.items()}
            out = {key: fut.result() for key, fut in futures.items()}
    out["inflight_input"] = {"attempts": attempts, "spans": spans}
    return out


# -------------------------------------------------------------------------------- reports


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _report(runs: list[dict[str, Any]]) -> str:
    """Markdown tables from one or more runs: medians over every repeat of every run, the
    min-max range across all of them, and each run's own median."""
    out: list[str] = []
    first = runs[0]
    env = first["env"]
    out.append(
        f"Input: {env['source']}, {env['lines']} lines, {env['mb']:.1f} MB, "
        f"{first['throughput']['spans']['decode']:,} spans. Python {env['python']}, msgspec "
        f"{env['msgspec']}, {env['cpus']} CPUs, commit {env.get('git', '?')}; {len(runs)} "
        f"run(s) × {env['repeats']} repeats; rates from CPU time (per core).\n"
    )
    tp = [r["throughput"] for r in runs]
    labels = first["throughput"]["labels"]
    spans = first["throughput"]["spans"]

    def rates(key: str) -> list[float]:
        return [spans[key] / c for t in tp for c in t["samples"][key]["cpu"]]

    def run_medians(key: str) -> list[float]:
        return [statistics.median(spans[key] / c for c in t["samples"][key]["cpu"]) for t in tp]

    bare = statistics.median(rates("msgspec"))
    out.append(
        "| path | spans/s per core (median) | range (min–max) | per run (medians) "
        "| µs/span | vs bare msgspec |"
    )
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key, label in labels.items():
        r = rates(key)
        med = statistics.median(r)
        per_run = " / ".join(f"{m:,.0f}" for m in run_medians(key))
        out.append(
            f"| {label} | {med:,.0f} | {min(r):,.0f}–{max(r):,.0f} | {per_run} | "
            f"{1e6 / med:.1f} | {med / bare:.2f}× |"
        )

    # Paired ratios: decode+features over bare msgspec within the same repeat.
    def paired(num: str, den: str) -> list[float]:
        return [
            (spans[num] / cn) / (spans[den] / cd)
            for t in tp
            for cn, cd in zip(t["samples"][num]["cpu"], t["samples"][den]["cpu"], strict=True)
        ]

    ratio = paired("decode_features", "msgspec")
    ratio_x = paired("extract", "msgspec")
    ratio_nogc = paired("decode_features_no_gc", "msgspec")
    own = [
        (cf - cd) / spans["decode"] * 1e6
        for t in tp
        for cf, cd in zip(
            t["samples"]["decode_features"]["cpu"], t["samples"]["decode"]["cpu"], strict=True
        )
    ]
    direct = [
        c / spans["features_only"] * 1e6 for t in tp for c in t["samples"]["features_only"]["cpu"]
    ]
    gc_share = [
        g / c
        for t in tp
        for g, c in zip(
            t["samples"]["decode_features"]["gc"],
            t["samples"]["decode_features"]["cpu"],
            strict=True,
        )
    ]
    med_ratio = statistics.median(ratio)
    out.append("")
    out.append(
        f"- **Goal: decode + features ≥ {GOAL_RATIO:.2f}× the rate of bare msgspec.** "
        f"Measured (paired per repeat): median **{med_ratio:.2f}×** "
        f"(range {min(ratio):.2f}–{max(ratio):.2f}) → "
        f"**{'met' if med_ratio >= GOAL_RATIO else 'NOT met'}**. "
        f"`features.extract(path)`: median {statistics.median(ratio_x):.2f}× "
        f"(range {min(ratio_x):.2f}–{max(ratio_x):.2f}). What-if with the cyclic GC paused: "
        f"median {statistics.median(ratio_nogc):.2f}× "
        f"(range {min(ratio_nogc):.2f}–{max(ratio_nogc):.2f})."
    )
    if "typed" in spans:
        typed = paired("decode_features", "typed")
        typed_x = paired("extract", "typed")
        typed_d = paired("decode", "typed")
        out.append(
            f"- **Goal (issue #16): decode + features ≥ {GOAL_TYPED:.2f}× the typed msgspec "
            f"decode of the same bytes.** Measured (paired per repeat): median "
            f"**{statistics.median(typed):.2f}×** (range {min(typed):.2f}–{max(typed):.2f}) → "
            f"**{'met' if statistics.median(typed) >= GOAL_TYPED else 'NOT met'}**. "
            f"`features.extract(path)`: median {statistics.median(typed_x):.2f}×; decode alone: "
            f"median {statistics.median(typed_d):.2f}× "
            f"(range {min(typed_d):.2f}–{max(typed_d):.2f})."
        )
    out.append(
        f"- Features' own cost: (decode + features) − decode = median "
        f"{statistics.median(own):.1f} µs/span (range {min(own):.1f}–{max(own):.1f}); measured "
        f"directly on pre-decoded spans: median {statistics.median(direct):.1f} µs/span "
        f"(range {min(direct):.1f}–{max(direct):.1f}). Cyclic-GC collections take a median "
        f"{statistics.median(gc_share):.0%} of decode + features CPU time "
        f"(range {min(gc_share):.0%}–{max(gc_share):.0%})."
    )

    mems = [r["memory"] for r in runs if r.get("memory")]
    if mems:
        out.append("")
        m0 = mems[0]
        n = m0["inflight_tm"]["attempts"]
        n_spans = m0["inflight_tm"]["spans"]
        out.append(
            f"In flight: {n:,} attempts, {n_spans:,} spans ({n_spans / n:.1f} per attempt), "
            "attempt and trial spans withheld so every attempt stays open "
            f"(in flight at the end: {m0['inflight_tm']['in_flight']:,}, evicted "
            f"{m0['inflight_tm']['evicted']}, records {m0['inflight_tm']['records']}).\n"
        )
        out.append(
            "| held by | tracemalloc current | per attempt | per span | RSS delta "
            "| RSS per attempt |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for key, label in (("inflight", "`Assembler` (in flight)"), ("list", "plain list")):
            tm = [m[f"{key}_tm"]["tracemalloc_current"] for m in mems]
            rss = [m[f"{key}_rss"]["rss_delta"] for m in mems]
            tm_m, rss_m = statistics.median(tm), statistics.median(rss)
            out.append(
                f"| {label} | {_mb(tm_m)} ({_range_mb(tm)}) | {tm_m / n / 1e3:.1f} kB | "
                f"{tm_m / n_spans:,.0f} B | {_mb(rss_m)} ({_range_mb(rss)}) | "
                f"{rss_m / n / 1e3:.1f} kB |"
            )
        over = [
            m["inflight_tm"]["tracemalloc_current"] - m["list_tm"]["tracemalloc_current"]
            for m in mems
        ]
        out.append(
            f"\nAssembler bookkeeping beyond the spans themselves: "
            f"{statistics.median(over) / n:,.0f} B per attempt "
            f"({statistics.median(over) / n_spans:,.0f} B per span)."
        )
        out.append("")
        out.append(
            "Flatness: a stream of finished attempts (no-op sink, offline clock and grace, "
            "default caches: 512 finished attempts, 200,000 remembered ids).\n"
        )
        out.append(
            "| attempts written | spans | tracemalloc current | RSS delta | open "
            "| finished cache | remembered ids |"
        )
        out.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for i, point in enumerate(m0["flat_tm"]["points"]):
            tm = [m["flat_tm"]["points"][i]["tracemalloc_current"] for m in mems]
            rss = [m["flat_rss"]["points"][i]["rss_delta"] for m in mems]
            out.append(
                f"| {point['attempts']:,} | {point['spans']:,} | "
                f"{_mb(statistics.median(tm))} ({_range_mb(tm)}) | "
                f"{_mb(statistics.median(rss))} ({_range_mb(rss)}) | {point['open']} | "
                f"{point['finished_cache']} | {point['remembered_ids']:,} |"
            )
        growth = m0["flat_tm"].get("growth_top")
        if growth:
            out.append("\nLargest tracemalloc growth between the last two checkpoints (run 1):\n")
            for g in growth:
                out.append(
                    f"- `{_short(g['where'])}`: {g['size_diff'] / 1e6:+.2f} MB, "
                    f"{g['count_diff']:+,} blocks"
                )
    return "\n".join(out)


def _range_mb(values: list[float]) -> str:
    if len(values) == 1:
        return "1 run"
    return f"{min(values) / 1e6:,.1f}–{max(values) / 1e6:,.1f}"


def _short(where: str) -> str:
    marker = "site-packages/"
    if marker in where:
        return where.split(marker, 1)[1]
    if "/src/" in where:
        return where.split("/src/", 1)[1]
    return where


# ----------------------------------------------------------------------------------- main


def _git_state() -> str:
    """The commit measured, and whether the library sources differed from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' + uncommitted src changes' if dirty else ''}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, a, mode, b, seed = argv[1:6]
        if kind == "inflight":
            child = _child_inflight(Path(a), mode == "tm", b)
        else:
            child = _child_flat([int(x) for x in a.split(",")], mode == "tm", int(b), int(seed))
        print(json.dumps(child))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--input", type=Path, help="OTLP/JSON lines file (.jsonl)")
    ap.add_argument("--spans", type=int, default=100_000, help="generate this many if no --input")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=10_000, help="in-flight attempts")
    ap.add_argument("--checkpoints", default="2000,10000,50000", help="flatness checkpoints")
    ap.add_argument("--pool-spans", type=int, default=100_000, help="flatness pool size")
    ap.add_argument("--seed", type=int, default=11, help="seed for the memory runs")
    ap.add_argument("--no-memory", action="store_true", help="throughput only")
    ap.add_argument("--memory-jobs", type=int, default=2, help="memory children run at once")
    ap.add_argument("--json", type=Path, help="also write the raw samples here")
    ap.add_argument("--merge", type=Path, nargs="+", help="report over earlier --json runs")
    args = ap.parse_args(argv)

    if args.merge:
        print(_report([json.loads(p.read_text()) for p in args.merge]))
        return 0

    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.input:
        path = args.input
        source = str(path)
    else:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "traces.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for line in generate_lines(args.spans):
                f.write(line + "\n")
        source = f"generated ({args.spans} spans)"
    with path.open("rb") as f:
        lines = [line for line in f if line.strip()]
    result: dict[str, Any] = {
        "env": {
            "source": source,
            "lines": len(lines),
            "mb": sum(map(len, lines)) / 1e6,
            "python": platform.python_version(),
            "msgspec": msgspec.__version__,
            "cpus": os.cpu_count(),
            "repeats": args.repeats,
            "loadavg": os.getloadavg(),
            "git": _git_state(),
        },
        "throughput": _throughput(lines, path, args.repeats),
    }
    del lines
    if not args.no_memory:
        checkpoints = [int(x) for x in args.checkpoints.split(",")]
        result["memory"] = _memory(
            args.inflight, checkpoints, args.pool_spans, args.seed, args.memory_jobs
        )
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(_report([result]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
