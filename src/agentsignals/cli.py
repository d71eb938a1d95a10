"""The `agentsignals` command line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

# Commands of the analysis stage live with their package: each module named here defines
# `NAME`, `HELP`, `DESCRIPTION`, `add_arguments(parser)` and `run(args) -> int`, and keeps its
# heavy imports inside `run`, so `agentsignals --help` stays fast. One line here per command.
_COMMAND_MODULES: tuple[str, ...] = (
    "agentsignals._judge.command",
    "agentsignals._judge.export_command",
)


def _command_modules() -> list[Any]:
    return [importlib.import_module(name) for name in _COMMAND_MODULES]


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["collect"]:
        # The collector owns its flags (and its --help).
        from agentsignals._collector.service import main as collect_main

        return collect_main(args_in[1:])
    parser = argparse.ArgumentParser(
        prog="agentsignals",
        description="Telemetry for coding agents: where an agent falls apart, not just whether.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "collect",
        help="run the collector: OTLP in (HTTP/gRPC), features out, spans forwarded",
        add_help=False,
    )

    demo = commands.add_parser(
        "demo",
        help="run a scripted coding agent on a scratch git repo and trace it",
        description="Run a small scripted coding agent (no model, no network) on a scratch git "
        "repository with a real bug; write its traces to the embedded store.",
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("agentsignals-output"),
        help="root folder of the embedded store (default: ./agentsignals-output)",
    )
    demo.add_argument(
        "--workdir", type=Path, default=None, help="keep the scratch repository in this folder"
    )

    feats = commands.add_parser(
        "features",
        help="derive feature records from OTLP/JSON trace files or folders",
        description="Read OTLP/JSON lines (agentsignals' file exporter or the OpenTelemetry "
        "Collector's file exporter) and write one feature record per attempt (or per trial).",
    )
    feats.add_argument("paths", nargs="*", type=Path, help="files or folders of traces")
    feats.add_argument(
        "--source", default=None,
        help="read traces from ClickHouse instead: clickhouse://user:pass@host:8123/db or chdb:///dir",
    )  # fmt: skip
    feats.add_argument(
        "--store", default=None,
        help="also write the records into the feature tables at this ClickHouse/chDB URL",
    )  # fmt: skip
    feats.add_argument(
        "-o", "--output", type=Path, default=None,
        help="output file: .jsonl (default: stdout) or .parquet (needs the parquet extra)",
    )  # fmt: skip
    feats.add_argument("--trials", action="store_true", help="write trial records instead")
    feats.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    ver = commands.add_parser(
        "verify",
        help="merge SWE-bench outcomes and gold-patch localization into feature records",
        description="Match verifier reports (per-instance report.json, run-level reports, "
        "leaderboard results.json) to traced attempts by instance id, label each outcome, and "
        "add gold-patch localization from the dataset rows.",
    )
    ver.add_argument("inputs", nargs="+", type=Path, help="trace folders/files or feature files")
    ver.add_argument(
        "--reports", action="append", type=Path, default=[],
        help="report files or folders (repeatable)",
    )  # fmt: skip
    ver.add_argument(
        "--dataset", type=Path, default=None, help="SWE-bench rows: JSON, JSONL, Parquet"
    )
    ver.add_argument(
        "-o", "--output", type=Path, default=None, help=".jsonl (default stdout) or .parquet"
    )
    ver.add_argument("--trials", action="store_true", help="write trial records instead")
    ver.add_argument(
        "--spans-out", type=Path, default=None,
        help="also write each outcome as a span under its attempt (OTLP/JSON lines) in this folder",
    )  # fmt: skip

    imp = commands.add_parser(
        "import",
        help="turn existing agent trajectories into agentsignals spans (OTLP)",
        description="Import SWE-agent, mini-swe-agent, OpenHands, Claude Code, pi, Codex and "
        "inspect-ai trajectories as trial/attempt/turn/tool spans: OTLP/JSON lines that "
        "`agentsignals features` reads, or straight to an OTLP endpoint.",
    )
    imp.add_argument("paths", nargs="+", type=Path, help="trajectory files or folders")
    imp.add_argument("--format", default="auto", help="format name, or auto (default)")
    imp.add_argument(
        "-o", "--output", type=Path, default=None,
        help="a .jsonl file or a folder (default: ./agentsignals-output/traces)",
    )  # fmt: skip
    imp.add_argument("--endpoint", default=None, help="send to this OTLP/HTTP endpoint instead")
    imp.add_argument(
        "--workers", type=int, default=1, help="worker processes for large folders (default 1)"
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    extra = {}
    for module in _command_modules():
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(sub)
        extra[module.NAME] = module

    args = parser.parse_args(args_in)
    if args.command in extra:
        return int(extra[args.command].run(args))
    if args.command == "import":
        return _import(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "features":
        return _features(args)
    if args.command == "demo":
        from agentsignals._demo import main as run_demo

        return run_demo(args.output, args.workdir)
    parser.error(f"unknown command {args.command}")
    return 2


def _features(args: argparse.Namespace) -> int:
    from agentsignals import features
    from agentsignals._features.store import write_json_lines

    if not args.paths and args.source is None:
        print(
            "agentsignals features: give trace files or folders, or --source URL", file=sys.stderr
        )
        return 2
    progress = None if args.no_progress or args.source else _progress_bar()
    try:
        if args.source is not None:
            from agentsignals._store.clickhouse import features_from_clickhouse

            result = features_from_clickhouse(args.source)
        else:
            result = features.extract(args.paths, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"agentsignals features: {exc}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.close()
    if args.store is not None:
        from agentsignals._store.clickhouse import connect

        try:
            connect(args.store).insert_records([*result.attempts, *result.trials])
        except ValueError as exc:
            print(f"agentsignals features: {exc}", file=sys.stderr)
            return 2
    for problem in result.problems:
        print(f"agentsignals features: skipped {problem}", file=sys.stderr)
    records = result.trials if args.trials else result.attempts
    if args.output is not None and args.output.suffix == ".parquet":
        try:
            features.write_parquet(records, args.output)
        except ImportError as exc:
            print(f"agentsignals features: {exc}", file=sys.stderr)
            return 2
    else:
        write_json_lines(records, args.output)
    kind = "trial" if args.trials else "attempt"
    print(
        f"agentsignals features: {len(records)} {kind} records from "
        f"{result.stats.spans_in} spans"
        + (f" ({len(result.problems)} unreadable lines skipped)" if result.problems else ""),
        file=sys.stderr,
    )
    return 1 if result.problems and not records else 0


def _verify(args: argparse.Namespace) -> int:
    from agentsignals import verify
    from agentsignals._features.store import write_json_lines

    try:
        result = verify.verify(args.inputs, reports=args.reports or None, dataset=args.dataset)
    except (FileNotFoundError, ValueError) as exc:
        print(f"agentsignals verify: {exc}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"agentsignals verify: skipped {problem}", file=sys.stderr)
    for outcome in result.unmatched:
        print(
            f"agentsignals verify: no trace for {outcome.instance_id} "
            f"(outcome {outcome.label or outcome.reward} from {outcome.source})",
            file=sys.stderr,
        )
    for outcome, trials in result.ambiguous:
        print(
            f"agentsignals verify: {outcome.instance_id} ran in {len(trials)} trials and the "
            f"report from {outcome.source} names no run id or attempt: not applied",
            file=sys.stderr,
        )
    for note in result.notes:
        print(f"agentsignals verify: {note}", file=sys.stderr)
    records = result.trials if args.trials else result.attempts
    if args.output is not None and args.output.suffix == ".parquet":
        from agentsignals import features

        features.write_parquet(records, args.output)
    else:
        write_json_lines(records, args.output)
    if args.spans_out is not None:
        path = verify.write_verification_spans(result, args.spans_out)
        print(f"agentsignals verify: outcome spans in {path}", file=sys.stderr)
    print(f"agentsignals verify: {result.summary()}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    import time

    from agentsignals import semconv
    from agentsignals._import.run import available_formats, candidate_files, post_otlp, run_import
    from agentsignals._spans.encode import encode_otlp_json, encode_otlp_protobuf

    if args.format != "auto" and args.format not in available_formats():
        known = ", ".join(sorted(available_formats()))
        print(
            f"agentsignals import: unknown format {args.format!r} (known: {known})", file=sys.stderr
        )
        return 2
    try:
        candidate_files(args.paths)  # a missing path is an error before anything is written
    except FileNotFoundError as exc:
        print(f"agentsignals import: {exc}", file=sys.stderr)
        return 2
    path: Path | None = None
    if args.endpoint is None:
        target = args.output or Path("agentsignals-output") / "traces"
        if target.suffix == ".jsonl":
            path = target
        else:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            path = target / f"imported-{stamp}-{os.getpid()}.jsonl"
    out = None  # opened at the first trajectory: an import that finds none writes nothing
    progress = None if args.no_progress else _Progress(unit="files")
    files = trajectories = spans = 0
    problems = 0
    by_format: dict[str, int] = {}
    try:
        for result in run_import(
            args.paths, fmt=args.format, workers=args.workers, progress=progress
        ):
            files += 1
            for problem in result.problems:
                problems += 1
                print(f"agentsignals import: skipped {problem}", file=sys.stderr)
            if result.format is None and not result.problems:
                continue
            for trajectory in result.trajectories:
                trajectories += 1
                spans += len(trajectory)
                by_format[result.format or "?"] = by_format.get(result.format or "?", 0) + 1
                if path is not None:
                    if out is None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        out = path.open("ab")
                    out.write(encode_otlp_json(trajectory, schema_url=semconv.SCHEMA_URL) + b"\n")
                else:
                    post_otlp(
                        args.endpoint,
                        encode_otlp_protobuf(trajectory, schema_url=semconv.SCHEMA_URL),
                    )
    except FileNotFoundError as exc:
        print(f"agentsignals import: {exc}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.close()
        if out is not None:
            out.close()
    formats = ", ".join(f"{k}: {v}" for k, v in sorted(by_format.items())) or "none recognised"
    where = args.endpoint if path is None else str(path) if out is not None else "nothing written"
    print(
        f"agentsignals import: {trajectories} trajectories ({spans} spans) from {files} files "
        f"[{formats}] -> {where}" + (f"; {problems} problems" if problems else ""),
        file=sys.stderr,
    )
    return 1 if problems and not trajectories else 0


class _Progress:
    """A byte-based progress bar on stderr: tqdm when installed, a plain line otherwise."""

    def __init__(self, unit: str = "B") -> None:
        self._bar = None
        self._unit = unit
        try:
            from tqdm import tqdm

            self._bar = tqdm(
                total=0, unit=unit, unit_scale=unit == "B", file=sys.stderr, leave=False
            )
        except ImportError:
            pass
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
        elif sys.stderr.isatty() and total:
            percent = done * 100 // total
            if percent != self._last:
                self._last = percent
                label = "reading traces" if self._unit == "B" else f"importing {self._unit}"
                print(f"\r{label}: {percent:3d}%", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._last >= 0:
            print(file=sys.stderr)


def _progress_bar() -> _Progress:
    return _Progress()


if __name__ == "__main__":
    sys.exit(main())
