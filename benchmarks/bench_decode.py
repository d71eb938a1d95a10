"""Decode throughput for OTLP/JSON lines: stdlib json vs bare msgspec vs agentsignals.

Single-threaded, so every figure is per core. Each row decodes every line of the input once
per repeat and reports the median; the cyclic GC is left as the interpreter has it (enabled),
so whatever a decoder does about the GC itself is part of its number. Prints a Markdown table.

    python benchmarks/gen_traces.py --spans 100000 --out /tmp/traces.jsonl
    python benchmarks/bench_decode.py --input /tmp/traces.jsonl
"""

from __future__ import annotations

import argparse
import base64
import gc
import gzip
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from agentsignals._spans.decode import (
    _json_decoder,
    decode_otlp_json,
    decode_otlp_protobuf,
    read_otlp_json_files,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_traces import generate_lines


def _count_json(doc: Any) -> int:
    return sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])


def _time(run: Callable[[], int], repeats: int) -> tuple[float, float, int]:
    """Median wall seconds, median CPU seconds of this process, spans per run."""
    wall, cpu = [], []
    n = 0
    for _ in range(repeats):
        gc.collect()  # start each repeat from the same heap state
        w0, c0 = time.perf_counter(), time.process_time()
        n = run()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(wall), statistics.median(cpu), n


def _to_protobuf(lines: list[bytes]) -> list[bytes]:
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    out = []
    for line in lines:
        doc = json.loads(line)
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    # proto3 JSON wants base64 bytes; OTLP/JSON has hex ids.
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if span.get(key):
                            span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        out.append(ParseDict(doc, ExportTraceServiceRequest()).SerializeToString())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--input", type=Path, help="OTLP/JSON lines file (.jsonl or .jsonl.gz)")
    ap.add_argument("--spans", type=int, default=100_000, help="generate this many if no --input")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-protobuf", action="store_true", help="skip the protobuf row")
    args = ap.parse_args(argv)

    if args.input:
        opener: Any = gzip.open if args.input.suffix == ".gz" else open
        with opener(args.input, "rb") as f:
            lines = [line for line in f if line.strip()]
        source = str(args.input)
    else:
        lines = [line.encode() for line in generate_lines(args.spans)]
        source = f"generated ({args.spans} spans)"
    total_bytes = sum(len(line) for line in lines)

    def stdlib() -> int:
        return sum(_count_json(json.loads(line)) for line in lines)

    def bare_msgspec() -> int:
        return sum(_count_json(msgspec.json.decode(line)) for line in lines)

    def typed() -> int:
        # The typed msgspec decode into OTLP structs that decode_otlp_json starts with: the
        # ceiling for any decoder on msgspec (issue #16).
        n = 0
        for line in lines:
            req = _json_decoder.decode(line)
            n += sum(len(ss.spans) for rs in req.resourceSpans or () for ss in rs.scopeSpans)
        return n

    def ours() -> int:
        return sum(len(decode_otlp_json(line)) for line in lines)

    def ours_retained() -> int:
        # Processors that gather a whole file keep every span alive: the GC then has a
        # growing heap to walk, and the allocator cannot reuse freed memory.
        kept: list[Any] = []
        for line in lines:
            kept.extend(decode_otlp_json(line))
        return len(kept)

    rows: list[tuple[str, Callable[[], int], int]] = [
        ("stdlib `json.loads` (dicts)", stdlib, total_bytes),
        ("bare `msgspec.json.decode` (untyped dicts)", bare_msgspec, total_bytes),
        ("typed `msgspec` decode into OTLP structs (ceiling)", typed, total_bytes),
        ("agentsignals `decode_otlp_json` → `Span`", ours, total_bytes),
        ("agentsignals `decode_otlp_json` → `Span`, all spans kept", ours_retained, total_bytes),
    ]
    if args.input:
        path = args.input

        def from_file() -> int:
            return sum(1 for _ in read_otlp_json_files(path))

        size = path.stat().st_size
        rows.append(("agentsignals `read_otlp_json_files` (file → `Span`)", from_file, size))
    if not args.no_protobuf:
        pb_lines = _to_protobuf(lines)
        pb_bytes = sum(len(b) for b in pb_lines)

        def protobuf() -> int:
            return sum(len(decode_otlp_protobuf(b)) for b in pb_lines)

        rows.append(("agentsignals `decode_otlp_protobuf` → `Span`", protobuf, pb_bytes))

    print(f"Input: {source}, {len(lines)} lines, {total_bytes / 1e6:.1f} MB of OTLP/JSON")
    print(
        f"Python {platform.python_version()} ({platform.machine()}), msgspec "
        f"{msgspec.__version__}, {os.cpu_count()} CPUs, GC enabled={gc.isenabled()}, "
        f"median of {args.repeats}\n"
    )
    # Rates use CPU time: on a shared machine wall time also counts time spent descheduled, and
    # the decode is single-threaded, so CPU seconds are exactly "per core".
    print("| decoder | spans | wall s | CPU s | spans/s per core | MB/s per core |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, run, nbytes in rows:
        wall, cpu, n = _time(run, args.repeats)
        print(
            f"| {label} | {n:,} | {wall:.3f} | {cpu:.3f} | {n / cpu:,.0f} | "
            f"{nbytes / 1e6 / cpu:,.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
