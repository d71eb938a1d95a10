"""`agentsignals report`: attempt records in, one offline HTML file, JSON and a summary out.

Registered through `_COMMAND_MODULES` in cli.py; nothing heavy is imported until `run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAME = "report"
HELP = "the report: where agents fall apart, with intervals and within-task statistics"
DESCRIPTION = (
    "Read attempt records (feature files, Parquet, the embedded store's feature folder, trace "
    "folders, or ClickHouse with --source) and write one self-contained HTML report (plots, "
    "sortable tables, drill-down to attempts), the same numbers as JSON, and a Markdown summary "
    "(also printed). Needs the report extra: pip install 'agentsignals[report]'."
)
DEFAULT_OUTPUT = Path("agentsignals-output") / "report" / "report.html"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        help="attempts.jsonl, .parquet, feature or trace folders (default: ./agentsignals-output)",
    )
    p.add_argument(
        "--source",
        default=None,
        help="ClickHouse/chDB URL: the feature tables, else features of otel_traces",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"HTML file (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument("--json", type=Path, default=None, help="JSON file (default: beside the HTML)")
    p.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="Markdown summary file (default: beside the HTML)",
    )
    p.add_argument("--title", default="agentsignals report")
    f = p.add_argument_group("filters (repeatable ones match any; text values are glob patterns)")
    f.add_argument("--run-id", action="append", default=[])
    f.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a resource attribute the producer set (OTEL_RESOURCE_ATTRIBUTES, import --tag); "
        "VALUE a glob; one key given twice matches either, different keys must all match",
    )
    f.add_argument("--agent", action="append", default=[])
    f.add_argument("--model", action="append", default=[])
    f.add_argument("--dataset", action="append", default=[])
    f.add_argument("--attempt-index", default=None, help="e.g. 0, 1-, 0-2, 0,2")
    f.add_argument("--since", default=None, help="ISO time or Unix seconds (attempt start)")
    f.add_argument("--until", default=None, help="ISO time or Unix seconds (attempt start)")
    f.add_argument("--where", action="append", default=[], help="COLUMN=VALUE (any column)")
    s = p.add_argument_group("statistics")
    s.add_argument(
        "--attempts",
        choices=("first", "retries", "all"),
        default="first",
        help="population of the behaviour statistics (default: first attempts)",
    )
    s.add_argument(
        "--by",
        default="agent,model,dataset",
        help="fields that make an arm (default: agent,model,dataset; any column)",
    )
    s.add_argument(
        "--strata",
        choices=("task", "task+arm"),
        default="task",
        help="within-task strata (default: task)",
    )
    s.add_argument("--replicates", type=int, default=2000, help="bootstrap replicates (2000)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--judge-calibration",
        type=Path,
        default=None,
        help="judge calibration: the calibration.json of `agentsignals judge eval --labels`, "
        "or sensitivity/specificity per flag (docs/report.md)",
    )
    s.add_argument(
        "--rewards",
        action="append",
        default=[],
        help="reward records (agentsignals rewards) for the proxy-versus-outcome view",
    )
    s.add_argument(
        "--signals",
        action="append",
        default=[],
        help="only these columns as behaviour rows (glob, repeatable)",
    )
    s.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="leave these columns out of the behaviour rows (glob, repeatable)",
    )
    s.add_argument(
        "--max-embedded",
        type=int,
        default=10_000,
        help="attempts embedded for the drill-down (a stable sample beyond it)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the summary")


def default_inputs() -> list[Path]:
    root = Path("agentsignals-output")
    for candidate in (root / "features", root / "traces"):
        if candidate.is_dir() and any(candidate.iterdir()):
            return [candidate]
    return []


def run(args: argparse.Namespace) -> int:
    try:
        from agentsignals._report.build import FilterError, build_report
        from agentsignals._report.calibration import CalibrationError, load_calibration
        from agentsignals._report.context import Options
        from agentsignals._report.sources import load
    except ImportError as exc:
        print(
            f"agentsignals report: needs the report extra ({exc.name} is missing): "
            "pip install 'agentsignals[report]'",
            file=sys.stderr,
        )
        return 2
    inputs = list(args.inputs) or ([] if args.source else default_inputs())
    if not inputs and args.source is None:
        print(
            "agentsignals report: give feature or trace files/folders, or --source URL "
            "(nothing found in ./agentsignals-output)",
            file=sys.stderr,
        )
        return 2
    if args.replicates < 100:
        print("agentsignals report: --replicates must be at least 100", file=sys.stderr)
        return 2
    calibration = None
    if args.judge_calibration is not None:
        try:
            calibration = load_calibration(args.judge_calibration)
        except CalibrationError as exc:
            print(f"agentsignals report: {exc}", file=sys.stderr)
            return 2
    filters: dict[str, object] = {}
    for key in ("run_id", "tag", "agent", "model", "dataset", "where"):
        value = getattr(args, key)
        if value:
            filters[key] = list(value)
    for key in ("attempt_index", "since", "until"):
        value = getattr(args, key)
        if value is not None:
            filters[key] = value
    options = Options(
        attempts=args.attempts,
        strata=args.strata,
        replicates=args.replicates,
        seed=args.seed,
        include=tuple(args.signals),
        exclude=tuple(args.exclude),
        max_embedded=args.max_embedded,
        title=args.title,
        calibration=calibration,
        rewards=tuple(str(p) for p in args.rewards),
        filters=filters,
        by=tuple(b.strip() for b in args.by.split(",") if b.strip()),
    )
    sessions: list[Any] = []
    try:
        frame = load(inputs, source=args.source, options=options, sessions=sessions)
        options.sessions = tuple(sessions)
    except (FileNotFoundError, ValueError) as exc:
        print(f"agentsignals report: {exc}", file=sys.stderr)
        return 2
    for problem in frame.problems:
        print(f"agentsignals report: skipped {problem}", file=sys.stderr)
    try:
        report = build_report(frame, options)
    except FilterError as exc:
        print(f"agentsignals report: {exc}", file=sys.stderr)
        return 2
    html = report.write_html(args.output)
    json_path = report.write_json(args.json or args.output.with_suffix(".json"))
    md_path = report.write_markdown(args.markdown or args.output.with_suffix(".md"))
    if not args.quiet:
        print(report.markdown())
    print(
        f"agentsignals report: {report.context.n} attempts -> {html.resolve()} "
        f"(open it in a browser); numbers in {json_path}, summary in {md_path}",
        file=sys.stderr,
    )
    return 0 if report.context.n else 1
