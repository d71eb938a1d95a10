"""The `agentsignals` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agentsignals",
        description="Telemetry for coding agents: where an agent falls apart, not just whether.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

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

    args = parser.parse_args(argv)
    if args.command == "demo":
        from agentsignals._demo import main as run_demo

        return run_demo(args.output, args.workdir)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
