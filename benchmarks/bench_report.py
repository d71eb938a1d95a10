"""The report over 100,000 attempt records: load (JSON lines and Parquet), statistics, HTML.

    python benchmarks/bench_report.py [--records 100000] [--tasks 5000] [--before REV]

Records are synthetic but full-size (every record field, tool sequences of 30 steps), 20
attempts per task from two agents, with judge flags. Each measurement runs in a fresh process
(imports count, and the peak resident memory is that process's own): wall and CPU time per
stage, the peak RSS, the RSS of the libraries alone (numpy, scipy, statsmodels, matplotlib,
pyarrow, imported before the report starts) and the bytes the loaded columns hold, so 'memory
bounded by the columns' can be checked against the size of the input.

`--before REV` runs the same measurements, in the same run, on the code of an earlier commit
(exported with `git archive` into a temporary folder): a side-by-side before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from _harness import ROOT, build_src


def make(path: Path, records: int, tasks: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    cats = ["search", "read", "read", "edit", "shell", "test"] * 5
    enc = msgspec.json.Encoder()
    with path.open("wb") as out:
        for i in range(records):
            task = i % tasks
            hard = (task * 7919) % 10 < 5
            failed = bool(rng.random() < (0.7 if hard else 0.25))
            agent = "agent-a" if i % 2 else "agent-b"
            rec = {
                "schema_version": 1,
                "attempt_id": f"a{i:07d}",
                "trial_id": f"t{i:07d}",
                "task_id": f"task-{task:05d}",
                "attempt_index": 0,
                "revision": 0,
                "treatment": {"agent_type": agent, "model_id": "m", "dataset": "d@1"},
                "behavior": {
                    "turn_count": int(rng.integers(5, 80)),
                    "tool_call_count": 30,
                    "edit_calls": int(rng.integers(0, 6)),
                    "stuck_loop": bool(rng.random() < 0.1),
                    "bash_mediated_edits": bool(rng.random() < 0.3),
                    "validated_after_last_edit": bool(rng.random() < 0.5),
                    "files_read_before_edit": int(rng.integers(0, 9)),
                    "edit_to_read_ratio": float(rng.random()),
                    "tool_sequence": ["bash"] * 30,
                    "tool_category_sequence": cats,
                    "step_files": [["src/a.py"]] * 30,
                    "touched_files": ["src/a.py"],
                },
                "tokens": {
                    "input_tokens_total": int(rng.integers(1e4, 1e6)),
                    "output_tokens_total": int(rng.integers(1e3, 1e5)),
                    "cost_usd": float(rng.random()),
                    "context_growth_curve": [1000] * 30,
                },
                "verification": {
                    "reward": 0.0 if failed else 1.0,
                    "patch_outcome_label": "no_effect_patch" if failed else "correct_patch",
                },
                "infra": {"exit_reason": "submitted", "wall_time_s": float(rng.random() * 600)},
                "judge": {
                    "memory_drift": {
                        "value": bool(rng.random() < (0.4 if failed else 0.1)),
                        "explanation": "x" * 80,
                    }
                },
            }
            out.write(enc.encode(rec) + b"\n")


def make_parquet(jsonl: Path, path: Path) -> None:
    """The same records through `agentsignals features -o x.parquet`'s writer (the record type
    has no judge field: those are left out)."""
    from agentsignals import features

    recs = [
        msgspec.convert({k: v for k, v in r.items() if k != "judge"}, features.AttemptRecord)
        for r in map(msgspec.json.decode, jsonl.read_bytes().splitlines())
    ]
    features.write_parquet(recs, path)


def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited from the
    process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: Path, out_dir: Path) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    import inspect

    import matplotlib.figure  # noqa: F401 - the libraries first: their RSS is not the data's
    import pyarrow.compute
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401
    import statsmodels.stats.contingency_tables  # noqa: F401

    libraries = _rss_mb()
    from agentsignals import report

    options = report.Options()
    load_kwargs = (
        {"options": options} if "options" in inspect.signature(report.load).parameters else {}
    )
    w0, c0 = time.perf_counter(), time.process_time()
    frame = report.load([path], **load_kwargs)
    w1, c1 = time.perf_counter(), time.process_time()
    after_load = _rss_mb()
    result = report.build(frame, options)
    w2, c2 = time.perf_counter(), time.process_time()
    result.write_html(out_dir / "report.html")
    result.write_json(out_dir / "report.json")
    w3, c3 = time.perf_counter(), time.process_time()
    nbytes = 0
    for col in frame.columns.values():
        nbytes += col.nbytes
        if col.dtype == object:
            distinct = {id(v): v for v in col if isinstance(v, str)}
            nbytes += sum(sys.getsizeof(v) for v in distinct.values())
    summary = json.loads((out_dir / "report.json").read_text())
    beh = summary["sections"]["behaviour"]
    return {
        "load_s": w1 - w0,
        "statistics_s": w2 - w1,
        "html_json_s": w3 - w2,
        "total_s": w3 - w0,
        "load_cpu_s": c1 - c0,
        "statistics_cpu_s": c2 - c1,
        "html_json_cpu_s": c3 - c2,
        "total_cpu_s": c3 - c0,
        "libraries_rss_mb": libraries,
        "after_load_rss_mb": after_load,
        "peak_rss_mb": _rss_mb(),
        "columns": len(frame.columns),
        "columns_mb": nbytes / 1e6,
        "rows": frame.n,
        "html_mb": (out_dir / "report.html").stat().st_size / 1e6,
        "behaviour_rows": len(beh["rows"]) + len(beh["numeric"]),
    }


def run_child(src: Path, path: Path, tmp: Path, name: str) -> dict[str, float]:
    out = tmp / f"out-{name}-{path.suffix.strip('.')}"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} on {path.name} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


ROWS = [
    ("load (wall)", "load_s", "{:.2f} s"),
    ("statistics (wall)", "statistics_s", "{:.2f} s"),
    ("plots+HTML+JSON (wall)", "html_json_s", "{:.2f} s"),
    ("total (wall)", "total_s", "{:.2f} s"),
    ("total (CPU)", "total_cpu_s", "{:.2f} s"),
    ("  load (CPU)", "load_cpu_s", "{:.2f} s"),
    ("  statistics (CPU)", "statistics_cpu_s", "{:.2f} s"),
    ("  plots+HTML+JSON (CPU)", "html_json_cpu_s", "{:.2f} s"),
    ("peak RSS", "peak_rss_mb", "{:.0f} MB"),
    ("  libraries alone", "libraries_rss_mb", "{:.0f} MB"),
    ("  after loading", "after_load_rss_mb", "{:.0f} MB"),
    ("columns held", "columns_mb", "{:.0f} MB"),
    ("columns", "columns", "{:.0f}"),
    ("behaviour rows", "behaviour_rows", "{:.0f}"),
    ("HTML", "html_mb", "{:.1f} MB"),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--tasks", type=int, default=5_000)
    ap.add_argument("--before", default=None, help="also measure this commit's code (git rev)")
    ap.add_argument("--no-parquet", action="store_true", help="skip the Parquet input")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]))))
        return 0
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        path = tmp / "attempts.jsonl"
        t = time.perf_counter()
        make(path, args.records, args.tasks)
        inputs = [path]
        if not args.no_parquet:
            make_parquet(path, tmp / "attempts.parquet")
            inputs.append(tmp / "attempts.parquet")
        made = time.perf_counter() - t
        print(
            f"input: {args.records:,} records on {args.tasks:,} tasks, "
            f"{path.stat().st_size / 1e6:.0f} MB JSON lines (made in {made:.1f} s)"
        )
        codes = [("now", ROOT / "src")]
        if args.before:
            codes.insert(
                0, (f"before ({args.before})", build_src(args.before, Path(tmp) / "before"))
            )
        results: dict[tuple[str, str], dict[str, float]] = {}
        for p in inputs:
            for label, src in codes:
                results[(label, p.suffix)] = run_child(src, p, tmp, label.split()[0])
        heads = [(label, p.suffix) for p in inputs for label, _ in codes]
        width = 24
        print(f"{'':<{width}}" + "".join(f"{f'{a} {b}':>22}" for a, b in heads))
        for title, key, fmt in ROWS:
            cells = [fmt.format(results[h][key]) if key in results[h] else "-" for h in heads]
            print(f"{title:<{width}}" + "".join(f"{c:>22}" for c in cells))
        cpus = os.cpu_count()
        print(f"(machine: {cpus} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
