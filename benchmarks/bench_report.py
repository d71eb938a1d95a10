"""The report over 100,000 attempt records: load (JSON lines and Parquet), statistics, HTML.

    python benchmarks/bench_report.py [--records 100000] [--tasks 5000]

Records are synthetic but full-size (every record field, tool sequences of 30 steps), 20
attempts per task from two agents, with judge flags. Reports wall time per stage and the peak
resident memory of the process (ru_maxrss), so 'memory bounded by the columns' can be checked
against the size of the input.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--tasks", type=int, default=5_000)
    ap.add_argument("--parquet", action="store_true", help="also time a Parquet input")
    args = ap.parse_args()
    from agentsignals import report

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "attempts.jsonl"
        t = time.perf_counter()
        make(path, args.records, args.tasks)
        size = path.stat().st_size
        print(
            f"input: {args.records:,} records, {size / 1e6:.0f} MB JSON lines "
            f"(made in {time.perf_counter() - t:.1f} s)"
        )
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        frame = report.load([path])
        t1 = time.perf_counter()
        result = report.build(frame, report.Options())
        t2 = time.perf_counter()
        html = result.write_html(Path(tmp) / "report.html")
        result.write_json(Path(tmp) / "report.json")
        t3 = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"load {t1 - t0:.2f} s · statistics {t2 - t1:.2f} s · plots+HTML+JSON "
            f"{t3 - t2:.2f} s · total {t3 - t0:.2f} s"
        )
        print("sections: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
        print(
            f"columns: {len(frame.columns)}; peak RSS {peak:.0f} MB (before the report "
            f"{base:.0f} MB; input {size / 1e6:.0f} MB); HTML {html.stat().st_size / 1e6:.1f} MB"
        )
        if args.parquet:
            from agentsignals import features

            recs = [
                msgspec.convert(
                    {k: v for k, v in r.items() if k != "judge"}, features.AttemptRecord
                )
                for r in map(msgspec.json.decode, path.read_bytes().splitlines())
            ]
            pq = Path(tmp) / "a.parquet"
            features.write_parquet(recs, pq)
            del recs
            t = time.perf_counter()
            report.load([pq])
            print(f"Parquet load {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
