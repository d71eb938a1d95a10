"""Sustained offline extraction over >= 1M spans: spans/s per 100k-span window, and peak RSS.

Short benchmarks measure warm-up: the first ~100k spans run while the assembler's caches are
still filling. This one streams a large OTLP/JSON lines file (``gen_traces.py --spans
1000000``) through the offline path and reports the rate of every 100k-span window, so the
warm-up windows and the sustained rate are both visible. Every case runs in a fresh child
process (its own heap, its own peak RSS); the cases are interleaved round by round, so load
from other processes on a shared machine hits them alike. Rates are CPU time of the child
(single-threaded: per core).

Cases, all reading the same file with the same line splitter:

* ``typed``: the typed msgspec decode of each line into OTLP structs (``_JRequest``), nothing
  more: the ceiling for any decoder written on msgspec;
* ``decode``: ``decode_otlp_json`` per line -> ``Span``;
* ``features/N``: decode + ``Assembler`` exactly as ``features.extract`` sets it up (offline
  clock and grace, cyclic GC paused), a counting sink, with a finished-attempt cache of N
  attempts / 250·N spans (``features.extract`` uses 64 / 16,000);
* with ``--old REF``: ``old decode`` and ``old features/64``, the same cases on an earlier
  commit's ``src/`` (``git archive``), in the same rounds.

    python benchmarks/gen_traces.py --spans 1000000 --out /tmp/t1m.jsonl      # 1.3 GB
    python benchmarks/bench_sustained.py --input /tmp/t1m.jsonl --rounds 3 --old main
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import build_src

WINDOW = 100_000
SPANS_PER_CACHED_ATTEMPT = 250  # features.extract: 64 attempts / 16,000 spans


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _lines(path: Path) -> Iterator[bytes | memoryview]:
    from agentsignals._spans.decode import _open_binary, _reader, _split_lines

    with _open_binary(path) as f:
        yield from _split_lines(_reader(f))


def child(case: str, path: Path, max_spans: int) -> dict[str, Any]:
    from agentsignals._features.assemble import Assembler
    from agentsignals._features.run import OFFLINE_GRACE_LINES
    from agentsignals._spans.decode import _json_decoder, decode_otlp_json

    records = [0]

    def sink(_record: object) -> None:
        records[0] += 1

    asm: Assembler | None = None
    n_lines = 0
    if case.startswith("features/"):
        cache = int(case.split("/")[1])
        asm = Assembler(
            sink,
            clock=lambda: float(n_lines),
            grace=OFFLINE_GRACE_LINES,
            finished_cache=cache,
            finished_spans=cache * SPANS_PER_CACHED_ATTEMPT,
            finished_trials=cache,
        )
    gc.disable()  # as features.extract does (and decode_otlp_json per call)
    spans = 0
    boundary = WINDOW
    windows: list[dict[str, float]] = []
    clock = time.process_time
    w_spans, w_cpu = 0, clock()
    c0 = w_cpu
    w_add = 0.0  # CPU in Assembler.add this window (the rest is reading and decoding)
    for line in _lines(path):
        if not line:
            continue
        n_lines += 1
        if case == "typed":
            req = _json_decoder.decode(line)
            n = sum(len(ss.spans) for rs in req.resourceSpans or () for ss in rs.scopeSpans)
            del req
        else:
            batch = decode_otlp_json(line)
            n = len(batch)
            if asm is not None:
                a0 = clock()
                asm.add(batch)
                w_add += clock() - a0
            del batch
        spans += n
        if spans >= boundary:
            now = clock()
            windows.append(
                {
                    "spans": spans - w_spans,
                    "cpu": now - w_cpu,
                    "add_cpu": w_add,
                    "rss": _rss(),
                    "end": spans,
                }
            )
            w_spans, w_cpu, w_add = spans, now, 0.0
            boundary += WINDOW
        if spans >= max_spans:
            break
    if asm is not None:
        asm.flush()
    total_cpu = time.process_time() - c0
    out: dict[str, Any] = {
        "case": case,
        "spans": spans,
        "cpu": total_cpu,
        "windows": windows,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if asm is not None:
        out["records"] = records[0]
        out["attempt_records"] = asm.stats.attempt_records
        out["partial_records"] = asm.stats.partial_records
    return out


def _run_child(case: str, path: Path, max_spans: int, old_src: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if case.startswith("old "):
        assert old_src is not None
        env["PYTHONPATH"] = str(old_src)  # ahead of the editable install of this checkout
    cmd = [sys.executable, __file__, "--child", case.removeprefix("old "), "--input", str(path)]
    cmd += ["--max-spans", str(max_spans)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rate(w: dict[str, float]) -> float:
    return w["spans"] / w["cpu"]


def report(results: dict[str, list[dict[str, Any]]], path: Path) -> str:
    out: list[str] = []
    first = next(iter(results.values()))[0]
    rounds = len(next(iter(results.values())))
    out.append(
        f"Input: {path.name}, {first['spans']:,} spans; {rounds} round(s), each case a fresh "
        f"process; Python {platform.python_version()}, {os.cpu_count()} CPUs; CPU-time rates "
        "(per core), medians over rounds.\n"
    )
    typed = [r["spans"] / r["cpu"] for r in results.get("typed", [])]
    out.append(
        "| case | whole run spans/s | first 100k | sustained (windows 2..n, median) "
        "| last window | ÷ typed decode (sustained) | peak RSS | records (partial) |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    sustained_typed = None
    for case, runs in results.items():
        whole = statistics.median(r["spans"] / r["cpu"] for r in runs)
        firsts = statistics.median(_rate(r["windows"][0]) for r in runs)
        sustained = statistics.median(
            statistics.median(_rate(w) for w in r["windows"][1:]) for r in runs
        )
        last = statistics.median(_rate(r["windows"][-1]) for r in runs)
        if case == "typed":
            sustained_typed = sustained
        ratio = f"{sustained / sustained_typed:.2f}×" if sustained_typed else "–"
        rss = statistics.median(r["peak_rss"] for r in runs) / 1e6
        recs = (
            f"{runs[0]['attempt_records']:,} ({runs[0]['partial_records']})"
            if "attempt_records" in runs[0]
            else "–"
        )
        out.append(
            f"| {case} | {whole:,.0f} | {firsts:,.0f} | {sustained:,.0f} | {last:,.0f} | "
            f"{ratio} | {rss:,.0f} MB | {recs} |"
        )
    if typed:
        out.append(f"\n(typed decode whole-run rates per round: {[round(t) for t in typed]})")
    out.append("\nPer window (spans/s, median over rounds; RSS in MB at the window's end):\n")
    cases = list(results)
    out.append("| window ending at | " + " | ".join(cases) + " |")
    out.append("|---:|" + "---:|" * len(cases))
    n_windows = min(len(r["windows"]) for runs in results.values() for r in runs)
    for i in range(n_windows):
        cells = []
        for case in cases:
            runs = results[case]
            rate = statistics.median(_rate(r["windows"][i]) for r in runs)
            rss = statistics.median(r["windows"][i]["rss"] for r in runs) / 1e6
            cells.append(f"{rate:,.0f} ({rss:,.0f})")
        end = results[cases[0]][0]["windows"][i]["end"]
        out.append(f"| {end:,} | " + " | ".join(cells) + " |")
    split = [c for c in cases if c.startswith("features/")]
    if split:
        out.append(
            "\nWhere the time goes per window (µs per span, median over rounds): reading and "
            "decoding / `Assembler.add` (assembling and the records):\n"
        )
        out.append("| window ending at | " + " | ".join(split) + " |")
        out.append("|---:|" + "---:|" * len(split))
        for i in range(n_windows):
            cells = []
            for case in split:
                runs = results[case]
                add = statistics.median(
                    r["windows"][i]["add_cpu"] / r["windows"][i]["spans"] for r in runs
                )
                dec = statistics.median(
                    (r["windows"][i]["cpu"] - r["windows"][i]["add_cpu"]) / r["windows"][i]["spans"]
                    for r in runs
                )
                cells.append(f"{dec * 1e6:.1f} / {add * 1e6:.1f}")
            end = results[cases[0]][0]["windows"][i]["end"]
            out.append(f"| {end:,} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--input", type=Path, required=True, help="OTLP/JSON lines, >= 1M spans")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--caches",
        default="16,64,512",
        help="finished-attempt cache sizes to compare (attempts; spans = 250 × attempts)",
    )
    ap.add_argument("--max-spans", type=int, default=10**12, help="stop after this many spans")
    ap.add_argument("--old", metavar="REF", help="also run decode and features/64 on this commit")
    ap.add_argument("--json", type=Path, help="write the raw results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.input, args.max_spans)))
        return 0
    cases = ["typed", "decode"] + [f"features/{c}" for c in args.caches.split(",") if c]
    tmp = tempfile.TemporaryDirectory()
    old_src = None
    if args.old:
        old_src = build_src(args.old, Path(tmp.name))
        cases[2:2] = ["old decode", "old features/64"]
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    for r in range(args.rounds):
        for case in cases:
            res = _run_child(case, args.input, args.max_spans, old_src)
            results[case].append(res)
            print(
                f"round {r + 1} {case}: {res['spans'] / res['cpu']:,.0f} spans/s, "
                f"peak RSS {res['peak_rss'] / 1e6:,.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    tmp.cleanup()
    if args.json:
        args.json.write_text(json.dumps(results))
    print(report(results, args.input))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
