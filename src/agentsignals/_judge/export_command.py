"""`agentsignals export docent`: traced runs as Docent AgentRuns (JSON), optionally uploaded.

agentsignals export docent TRACES [--records judged.jsonl] -o runs.jsonl
agentsignals export docent TRACES --upload --collection-id ID   # key from DOCENT_API_KEY
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

NAME = "export"
HELP = "export traced runs to other tools (Docent)"
DESCRIPTION = (
    "Export traced runs, with their feature records and judge results, to other analysis "
    "tools. `docent` writes Docent AgentRun JSON (one trial per run, one attempt per "
    "transcript) and can upload it through Docent's REST API."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="export_target", required=True)
    d = sub.add_parser("docent", help="Docent AgentRun JSON, and upload")
    d.add_argument("paths", nargs="+", type=Path, help="trace files or folders (with content)")
    d.add_argument(
        "--records",
        type=Path,
        default=None,
        help="attempt records (features, verification, judge) to include as metadata",
    )
    d.add_argument(
        "-o", "--output", type=Path, default=None,
        help=".jsonl (one AgentRun per line) or .json ({\"agent_runs\": [...]}); default stdout",
    )  # fmt: skip
    d.add_argument("--upload", action="store_true", help="upload to a Docent collection")
    d.add_argument("--collection-id", default=None, help="the Docent collection")
    d.add_argument(
        "--api-url",
        default=os.environ.get("DOCENT_API_URL"),
        help="Docent API base (default DOCENT_API_URL, or https://api.docent.transluce.org/rest)",
    )
    d.add_argument("--api-key-env", default="DOCENT_API_KEY", help="variable holding the key")
    d.add_argument(
        "--no-dedup",
        action="store_true",
        help="upload trials the collection already holds again",
    )


def _err(message: str) -> None:
    print(f"agentsignals export: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from agentsignals._judge.command import read_attempt_records
    from agentsignals._judge.docent import DEFAULT_API_URL, agent_runs, upload_agent_runs
    from agentsignals._judge.run import read_spans
    from agentsignals._judge.transcript import from_spans, group_by_attempt

    for path in [*args.paths, *([args.records] if args.records else [])]:
        if not path.exists():
            _err(f"{path}: no such file or folder")
            return 2
    if args.upload and not args.collection_id:
        _err("--upload needs --collection-id")
        return 2
    key = os.environ.get(args.api_key_env) if args.upload else None
    if args.upload and not key:
        _err(f"--upload needs the API key in {args.api_key_env}")
        return 2
    spans, problems = read_spans(args.paths)
    for problem in problems:
        _err(f"skipped {problem}")
    groups = group_by_attempt(spans)
    transcripts = [from_spans(groups[a], max_part_chars=1 << 20) for a in sorted(groups)]
    if args.records is not None:
        records, record_problems = read_attempt_records(args.records)
        for problem in record_problems:
            _err(f"skipped {problem}")
    else:
        from agentsignals._features.run import from_spans as features_from_spans

        records = features_from_spans(spans).attempts
    runs = agent_runs(transcripts, records)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if args.output.suffix == ".json":
            args.output.write_text(json.dumps({"agent_runs": runs}) + "\n")
        else:
            args.output.write_text("".join(json.dumps(r) + "\n" for r in runs))
    elif not args.upload:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in runs))
    _err(f"{len(runs)} agent runs from {len(transcripts)} attempts")
    if not args.upload:
        return 1 if problems and not runs else 0
    try:
        report = upload_agent_runs(
            runs,
            collection_id=args.collection_id,
            api_key=key or "",
            api_url=args.api_url or DEFAULT_API_URL,
            dedup=not args.no_dedup,
        )
    except (RuntimeError, OSError) as exc:
        _err(f"upload failed: {exc}")
        return 1
    for problem in report.problems:
        _err(problem)
    for trial in report.too_large:
        _err(f"trial {trial} is over Docent's 100 MB limit: not uploaded")
    _err(
        f"uploaded {report.uploaded} runs ({len(report.job_ids)} jobs); "
        f"{report.skipped_existing} already in the collection"
    )
    return 0
