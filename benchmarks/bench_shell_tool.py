"""The live shell tool's per-call cost, side by side with another checkout (the "before").

Run: ``python benchmarks/bench_shell_tool.py [--before /path/to/old/checkout] [--quick]``.

Times ``@agentsignals.trace_tool def bash(command)`` inside an attempt and a turn, capture off,
exported to a null exporter through agentsignals' pipeline (as bench_instrumentation does):

* **mix**: a realistic mix of 24 command shapes (reads, greps, test runs, heredoc writes, sed
  -i, pipes), each call a new command text (a counter in an argument), so the classifier's
  cache does not hide the parse;
* **repeat**: the same mix, each text seen before (the cache);
* **8 MiB heredoc**: one ``cat <<'EOF' > big.py`` of 8 MiB then ``python -m pytest``.

With ``--before``, the same measurement runs in a subprocess importing agentsignals from
``<before>/src`` and both columns are printed in one table (medians of interleaved repeats,
CPU time of the process). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MIX = [
    "cat src/pkg/module_{i}.py",
    "sed -n '1,80p' src/pkg/module_{i}.py",
    "head -n 40 tests/test_{i}.py",
    "grep -rn 'def handle_{i}' src",
    "grep -n PATTERN_{i} src/pkg/a.py",
    "find . -name 'test_{i}*.py' | head -20",
    "ls -la src/pkg/sub_{i}",
    "cd /testbed && python -m pytest tests/test_{i}.py -x -q 2>&1 | tail -20",
    "python reproduce_{i}.py",
    "sed -i 's/old_{i}/new/' src/pkg/a.py",
    "cat > /tmp/r{i}.py <<'EOF'\nimport pkg\nprint(pkg.f({i}))\nEOF\npython /tmp/r{i}.py",
    "git diff src/pkg/module_{i}.py",
    "python -c 'import pkg; print(pkg.__version__, {i})'",
    "cd /testbed && git status && git diff --stat # {i}",
    "nl -ba src/pkg/a.py | sed -n '{i},+30p'",
    "rm -f /tmp/r{i}.py reproduce.py",
    "pip install -e . > /dev/null 2>&1; echo {i}",
    "tail -n 50 log_{i}.txt",
    "grep -rl 'import foo_{i}' --include=*.py .",
    "python tests/runtests.py admin_{i} --parallel 1",
    "cat src/pkg/a.py | grep -n 'class X{i}'",
    "echo 'x = {i}' >> src/pkg/settings.py",
    "mv src/pkg/old_{i}.py src/pkg/new.py",
    "cd repo && make test TESTS={i}",
]

CHILD = r"""
import json, os, statistics, sys, time
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "1000000"
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import agentsignals

class Null(SpanExporter):
    def export(self, spans): return SpanExportResult.SUCCESS
    def shutdown(self): pass

provider = TracerProvider()
agentsignals.configure(tracer_provider=provider, exporters=[Null()], batch=True)

@agentsignals.trace_tool
def bash(command: str) -> str:
    return ""

mix, repeats, n = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
counter = [0]

def run(texts):
    with agentsignals.attempt(), agentsignals.turn():
        t0 = time.process_time_ns()
        for t in texts:
            bash(t)
        return (time.process_time_ns() - t0) / len(texts)

def fresh(k):
    out = []
    for _ in range(k):
        counter[0] += 1
        out.append(mix[counter[0] % len(mix)].replace("{i}", str(counter[0])))
    return out

seen = [m.replace("{i}", "7") for m in mix] * (n // len(mix) + 1)
run(fresh(200)); run(seen[:200])
results = {"mix": [], "repeat": [], "heredoc": []}
line = "x = 1  # a > b 'q' \"dq\"\n"
big = "cat <<'EOF' > big.py\n" + line * 350_000 + "EOF\npython -m pytest -q"
for _ in range(repeats):
    results["mix"].append(run(fresh(n)))
    results["repeat"].append(run(seen[:n]))
    results["heredoc"].append(run([big]))
provider.force_flush()
print(json.dumps({k: statistics.median(v) for k, v in results.items()}))
"""


def measure(src: Path | None, repeats: int, n: int) -> dict[str, float]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("OTEL_"):
            del env[name]
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(MIX), str(repeats), str(n)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="checkout to compare with")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats, n = (3, 400) if args.quick else (7, 2000)
    before_src = args.before / "src" if args.before is not None else None
    rounds: dict[str, list[dict[str, float]]] = {"after": [], "before": []}
    for _ in range(2 if args.quick else 3):  # interleave the two versions
        rounds["after"].append(measure(None, repeats, n))
        if before_src is not None:
            rounds["before"].append(measure(before_src, repeats, n))
    keys = [("mix", "µs per call, new command texts"), ("repeat", "µs per call, repeated texts"),
            ("heredoc", "ms for one 8 MiB heredoc call")]  # fmt: skip
    print(f"# `@trace_tool def bash(command)`, capture off ({time.strftime('%Y-%m-%d')})\n")
    print("| case | before | after |")
    print("|---|---|---|")
    for key, label in keys:
        scale = 1e6 if key == "heredoc" else 1e3
        after = statistics.median(r[key] for r in rounds["after"]) / scale
        before = None
        if rounds["before"]:
            before = statistics.median(r[key] for r in rounds["before"]) / scale
        shown = f"{before:.1f}" if before is not None else "-"
        print(f"| {label} | {shown} | {after:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
