"""Import speed over the 832-trajectory corpus (../shared/data/corpus), side by side with
another checkout (the "before").

Run: ``python benchmarks/bench_import_corpus.py [--before /path/to/old/checkout] [--rounds N]``.

The corpus is stored gzip-compressed; a checkout that cannot read gzip is measured on the same
files decompressed into a temporary folder (once, outside the timing), and this checkout is
measured both ways. Each measurement is one `agentsignals import` run in a fresh process with
one worker (`--workers 1`), timed as process CPU time of the child (wall time shown too);
rounds interleave the versions. Reports seconds, spans and microseconds per span (the unit the
issue asks about: per span, since the two versions may emit different span counts). Not a test.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "corpus"

_SUMMARY = re.compile(r"(\d+) trajectories \((\d+) spans\)")


def decompress(corpus: Path, into: Path) -> Path:
    """The corpus trajectories decompressed, same relative paths without `.gz`."""
    for path in corpus.rglob("*.gz"):
        target = into / path.relative_to(corpus).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return into


def run(
    src: Path | None, folder: Path, out: Path, extra: tuple[str, ...] = ()
) -> tuple[float, float, int, int]:
    """(cpu s, wall s, trajectories, spans) of one import run in a fresh process."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    if out.exists():
        out.unlink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", "import", "--no-progress", "--workers", "1",
         str(folder), "-o", str(out), *extra],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = _SUMMARY.search(done.stderr)
    if match is None:
        raise RuntimeError(f"no summary in: {done.stderr[-500:]}")
    return cpu, wall, int(match.group(1)), int(match.group(2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="checkout to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--content", action="store_true", help="also time `import --content` (issue #13)"
    )
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        plain = decompress(args.corpus, Path(tmp) / "plain")
        out = Path(tmp) / "out.jsonl"
        cases: list[tuple[str, Path | None, Path, tuple[str, ...]]] = [
            ("this checkout, gzip as stored", None, args.corpus, ()),
            ("this checkout, decompressed", None, plain, ()),
        ]
        if args.content:
            # The messages and tool results carried too (redacted, budgeted), for the judge.
            cases.append(("this checkout, gzip as stored, --content", None, args.corpus,
                          ("--content",)))  # fmt: skip
        if args.before is not None:
            cases.append(("before, decompressed", args.before / "src", plain, ()))
        results: dict[str, list[tuple[float, float, int, int]]] = {c[0]: [] for c in cases}
        for _ in range(args.rounds):
            for label, src, folder, extra in cases:
                results[label].append(run(src, folder, out, extra))
    print(f"# Import of the corpus ({time.strftime('%Y-%m-%d')}, {args.rounds} rounds, medians)\n")
    print("| version | trajectories | spans | CPU s | wall s | µs per span (CPU) |")
    print("|---|---|---|---|---|---|")
    for label, rows in results.items():
        cpu = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        trajectories, spans = rows[0][2], rows[0][3]
        print(
            f"| {label} | {trajectories} | {spans} | {cpu:.2f} | {wall:.2f} "
            f"| {cpu / spans * 1e6:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
