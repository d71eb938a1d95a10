"""Import speed: trajectories per second on a folder of real trajectory files.

Copies the real files in ../shared/data (every format) into a scratch folder N times, then
times the importer over it with 1 and 2 worker processes, plus the import + features path
(`agentsignals import` then `agentsignals features` on its output). Wall time: workers are
processes, so CPU time of the parent alone would not count them.

    python benchmarks/bench_import.py [--copies 20] [--repeats 3] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agentsignals import features
from agentsignals._import.run import candidate_files, detect_format, run_import
from agentsignals._spans.encode import encode_otlp_json

ROOT = Path(__file__).resolve().parents[1]


def build_corpus(data: Path, target: Path, copies: int) -> dict[str, int]:
    """Copy every recognised trajectory file `copies` times; returns files per format."""
    per_format: dict[str, int] = {}
    sources = [p for p in candidate_files([data]) if detect_format(p) is not None]
    for i in range(copies):
        for src in sources:
            rel = src.relative_to(data)
            dest = target / f"copy{i:03d}" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
            # Claude Code sessions bring their subagent folders with them.
            side = src.with_suffix("")
            if side.is_dir():
                shutil.copytree(side, dest.with_suffix(""), dirs_exist_ok=True)
            fmt = detect_format(src) or "?"
            per_format[fmt] = per_format.get(fmt, 0) + 1
    return per_format


def time_import(folder: Path, workers: int, out: Path | None) -> tuple[float, int, int]:
    start = time.perf_counter()
    trajectories = spans = 0
    fh = out.open("wb") if out is not None else None
    try:
        for result in run_import([folder], workers=workers):
            for trajectory in result.trajectories:
                trajectories += 1
                spans += len(trajectory)
                if fh is not None:
                    fh.write(encode_otlp_json(trajectory) + b"\n")
    finally:
        if fh is not None:
            fh.close()
    return time.perf_counter() - start, trajectories, spans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no trajectory data at {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
        corpus = Path(scratch) / "corpus"
        per_format = build_corpus(args.data, corpus, args.copies)
        size_mb = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file()) / 1e6
        rows = []
        for workers in (1, 2):
            times = []
            for _ in range(args.repeats):
                elapsed, n_traj, n_spans = time_import(corpus, workers, None)
                times.append(elapsed)
            median = statistics.median(times)
            rows.append((f"import, {workers} worker(s)", median, n_traj, n_spans))
        out = Path(scratch) / "imported.jsonl"
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            time_import(corpus, 2, out)
            records = features.extract(out)
            times.append(time.perf_counter() - start)
        rows.append(
            (
                "import (2 workers) + write OTLP/JSON + features",
                statistics.median(times),
                n_traj,
                n_spans,
            )
        )
        formats = ", ".join(f"{k} {v}" for k, v in sorted(per_format.items()))
        files = sum(per_format.values())
        print(f"corpus: {files} files ({size_mb:.1f} MB), {args.copies} copies: {formats}")
        print(f"feature records from the import: {len(records.attempts)} attempts")
        print()
        print("| path | median s | trajectories | spans | trajectories/s | spans/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, seconds, n_traj, n_spans in rows:
            rates = f"{n_traj / seconds:,.0f} | {n_spans / seconds:,.0f}"
            print(f"| {label} | {seconds:.2f} | {n_traj} | {n_spans} | {rates} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
