"""`agentsignals rewards`: per-turn and trajectory rewards from traces and records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "rewards"
HELP = "dense rewards from traces and records, for RL trainers"
DESCRIPTION = (
    "Turn trace signals into training signal: the verifier's outcome plus small shaping "
    "components (judge flags, validation, regressions, self-correction that fixed a failing "
    "test) under a versioned YAML spec, one record per turn and per trajectory, keyed by span "
    "id. `--records` takes attempt records from `agentsignals verify` / `judge run` (outcomes, "
    "judge flags, the first wrong step); without them records are derived from the traces."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="trace files or folders (OTLP/JSON)")
    parser.add_argument(
        "--records",
        type=Path,
        default=None,
        help="attempt records (JSON lines or a feature folder)",
    )
    parser.add_argument(
        "--spec", default="builtin", help="reward spec: builtin or a YAML/JSON file"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="rewards.jsonl (default: stdout) or .parquet",
    )
    parser.add_argument(
        "--show-spec", action="store_true", help="print the spec (builtin: its YAML) and exit"
    )


def run(args: argparse.Namespace) -> int:
    from agentsignals._reward.spec import SpecError, builtin_text, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(f"agentsignals rewards: {exc}", file=sys.stderr)
        return 2
    if args.show_spec:
        if args.spec == "builtin":
            sys.stdout.write(builtin_text())
        else:
            sys.stdout.write(Path(args.spec).read_text())
        return 0
    if not args.paths:
        print("agentsignals rewards: give trace files or folders", file=sys.stderr)
        return 2
    records = None
    problems: list[str] = []
    if args.records is not None:
        from agentsignals._judge.command import read_attempt_records

        if not args.records.exists():
            print(f"agentsignals rewards: {args.records}: no such file or folder", file=sys.stderr)
            return 2
        records, problems = read_attempt_records(args.records)
    from agentsignals._reward.run import rewards_from_traces, write_rewards

    result = rewards_from_traces(args.paths, records, spec)
    for p in [*problems, *result.problems]:
        print(p, file=sys.stderr)
    if args.output is None:
        import json

        for row in result.rows():
            sys.stdout.write(json.dumps(row) + "\n")
    else:
        write_rewards(result, args.output)
    skipped: dict[str, int] = {}
    for why in result.skipped.values():
        skipped[why] = skipped.get(why, 0) + 1
    note = "".join(f"; skipped {n} ({why})" for why, n in sorted(skipped.items()))
    print(
        f"rewards: {len(result.trajectories)} attempts, {len(result.turns)} turns under "
        f"{spec.name} v{spec.version}{note}" + (f" -> {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0
