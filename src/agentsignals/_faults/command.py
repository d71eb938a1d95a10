"""`agentsignals faults`: the harness hook of recovery evals.

``agentsignals faults run --plan PLAN -- COMMAND ...`` runs an unmodified agent with the plan
in ``AGENTSIGNALS_FAULTS`` (every attempt it starts under agentsignals gets the faults) and
exits with the command's exit code. ``agentsignals faults check PLAN`` validates a plan and
prints what it will do; ``agentsignals faults kinds`` lists the fault kinds and triggers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

NAME = "faults"
HELP = "inject faults into live agent runs (recovery evals)"
DESCRIPTION = (
    "Recovery evals: break the state of a live run on purpose (revert an edit, corrupt or "
    "truncate a file the agent read, add a failing test, delete a file it created, break a "
    "dependency, fail or time out or stale the next tool call) at a chosen point, and record "
    "each injection on the attempt span. `run` gives an unmodified agent a fault plan through "
    "AGENTSIGNALS_FAULTS; `check` validates a plan."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="faults_command", required=True)
    r = sub.add_parser(
        "run",
        help="run a command with a fault plan (AGENTSIGNALS_FAULTS)",
        description="Run COMMAND with AGENTSIGNALS_FAULTS set to the plan; agentsignals in that "
        "process (and its children) injects the faults into every attempt it traces.",
    )
    r.add_argument("--plan", required=True, help="a YAML or JSON plan file, or inline JSON")
    r.add_argument("argv", nargs=argparse.REMAINDER, help="the command (after --)")
    c = sub.add_parser("check", help="validate a fault plan and print what it does")
    c.add_argument("plan", help="a YAML or JSON plan file, or inline JSON")
    sub.add_parser("kinds", help="the fault kinds and triggers")


def _describe(plan_spec: str) -> tuple[int, list[str]]:
    from agentsignals._faults.plan import PlanError, load_plan

    try:
        plan = load_plan(plan_spec)
    except PlanError as exc:
        return 2, [f"agentsignals faults: {exc}"]
    lines = []
    scope = []
    if plan.tasks:
        scope.append("tasks " + ", ".join(plan.tasks))
    if plan.attempts:
        scope.append("attempts " + ", ".join(str(a) for a in plan.attempts))
    lines.append(
        f"plan {plan.source}: {len(plan.faults)} fault(s); " + ("; ".join(scope) or "every attempt")
    )
    for f in plan.faults:
        when = f.trigger
        if f.step is not None:
            when += f" {f.step}"
        if f.trigger == "random":
            when += f" (seed {f.seed}, calls 1-{f.max_step})"
        extra = "".join(
            f", {k} {v}" for k, v in (("path", f.path), ("module", f.module)) if v is not None
        )
        lines.append(f"  {f.id}: {f.kind} {when}{extra}")
    return 0, lines


def run(args: argparse.Namespace) -> int:
    if args.faults_command == "kinds":
        from agentsignals import semconv as sc

        print("kinds:")
        for k in sc.FaultKind:
            print(f"  {k.value}")
        print("triggers: " + ", ".join(t.value for t in sc.FaultTrigger))
        return 0
    if args.faults_command == "check":
        code, lines = _describe(args.plan)
        for line in lines:
            print(line, file=sys.stderr if code else sys.stdout)
        return code
    code, lines = _describe(args.plan)
    if code:
        for line in lines:
            print(line, file=sys.stderr)
        return code
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(
            "agentsignals faults run: no command given (agentsignals faults run --plan P -- CMD)",
            file=sys.stderr,
        )
        return 2
    spec = args.plan.strip()
    if not spec.startswith(("{", "[")):
        spec = os.path.abspath(spec)  # the agent may change its working directory
    env = {**os.environ, "AGENTSIGNALS_FAULTS": spec}
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except OSError as exc:
        print(
            f"agentsignals faults run: cannot run {argv[0]}: {exc.strerror or exc}", file=sys.stderr
        )
        return 127
