"""Recovery from injected faults (agentsignals.faults): by fault kind and arm, how often the
agent noticed, how soon, whether it still resolved the task, against the same tasks run by the
same arm without a fault, and what recovering cost.

* **noticed**: ``recovery.noticed`` among faulted attempts (Wilson). Where a judge ran the
  ``noticed_fault`` rubric, the two sources apart as well: ``recovery.noticed_in_trace`` (the
  trace's evidence alone) and ``recovery.noticed_judge`` (among attempts the judge judged).
* **resolved after the fault**: faulted attempts with a verified outcome (Wilson).
* **baseline**: attempts of the same arm on the same tasks with ``recovery.fault_injected``
  false (Wilson).
* **recovery rate**: resolved among faulted attempts whose task the baseline resolved at
  least once in that arm (a fault cannot be recovered from on a task the agent never solves).
* **paired drop**: over tasks with both a faulted and a baseline verified attempt in the arm,
  the mean of (baseline resolve rate - faulted resolve rate), t interval.
* **cost**: medians of steps and tokens to notice, and the within-task mean of (faulted -
  baseline) total tokens (input + output), t interval: the extra cost of the fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentsignals._report import stats
from agentsignals._report.base import Section
from agentsignals._report.context import Context
from agentsignals._report.frame import isnull
from agentsignals._report.sections.behaviour import _ci, _est, _f, _pct
from agentsignals._report.sections.overview import rate

ALL_KINDS = "all kinds"


def _median(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return _f(float(np.median(x))) if len(x) else None


def _per_task_diff(
    task: np.ndarray, a_mask: np.ndarray, b_mask: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Per task with both groups known: mean(values | b) - mean(values | a)."""
    out = []
    known = ~np.isnan(values)
    for t in np.unique(task[(a_mask | b_mask) & known]):
        ia = a_mask & known & (task == t)
        ib = b_mask & known & (task == t)
        if ia.any() and ib.any():
            out.append(values[ib].mean() - values[ia].mean())
    return np.array(out, dtype=float)


class Recovery(Section):
    id = "recovery"
    title = "Recovery from injected faults"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        injected = ctx.num("recovery.fault_injected")
        faulted = injected == 1
        if not faulted.any():
            return None
        baseline = injected == 0
        kinds = ctx.text("recovery.fault_kind")
        kind_text = np.where(isnull(kinds), "unknown", kinds).astype(str)
        noticed = ctx.num("recovery.noticed")
        in_trace = ctx.num("recovery.noticed_in_trace")
        by_judge = ctx.num("recovery.noticed_judge")
        undone = ctx.num("recovery.fault_undone")
        steps = ctx.num("recovery.steps_to_notice")
        tokens_notice = ctx.num("recovery.tokens_to_notice")
        total_tokens = ctx.num("tokens.input_tokens_total") + ctx.num("tokens.output_tokens_total")
        y = ctx.y
        verified = ~np.isnan(y)
        task = ctx.task_code
        rows: list[dict[str, Any]] = []
        for arm in ctx.arms:
            in_arm = ctx.arm == arm
            base = baseline & in_arm
            base_solved_tasks = set(task[base & verified & (y == 1)].tolist())
            for kind in [ALL_KINDS, *sorted(set(kind_text[faulted & in_arm].tolist()))]:
                g = faulted & in_arm & (True if kind == ALL_KINDS else kind_text == kind)
                n = int(g.sum())
                if n == 0:
                    continue
                g_tasks = set(task[g].tolist())
                same_tasks = np.isin(task, sorted(g_tasks))
                b = base & same_tasks
                known_notice = g & ~np.isnan(noticed)
                known_trace = g & ~np.isnan(in_trace)
                known_judge = g & ~np.isnan(by_judge)
                gv = g & verified
                solvable = gv & np.isin(task, sorted(base_solved_tasks))
                drop = stats.mean_difference(_per_task_diff(task, g & verified, b & verified, y))
                extra = stats.mean_difference(_per_task_diff(task, b, g, total_tokens))
                known_undone = g & ~np.isnan(undone)
                rows.append(
                    {
                        "arm": arm,
                        "kind": kind,
                        "attempts": n,
                        "tasks": len(g_tasks),
                        "noticed": rate(np.sum(noticed[known_notice] == 1), known_notice.sum()),
                        "noticed_in_trace": rate(
                            np.sum(in_trace[known_trace] == 1), known_trace.sum()
                        ),
                        "noticed_judge": rate(
                            np.sum(by_judge[known_judge] == 1), known_judge.sum()
                        ),
                        "resolved": rate(np.sum(y[gv] == 1), gv.sum()),
                        "baseline": rate(np.sum(y[b & verified] == 1), (b & verified).sum()),
                        "recovery": rate(np.sum(y[solvable] == 1), solvable.sum()),
                        "drop": _est(drop),
                        "steps_to_notice": _median(steps[g]),
                        "tokens_to_notice": _median(tokens_notice[g]),
                        "extra_tokens": _est(extra),
                        "undone": rate(np.sum(undone[known_undone] == 1), known_undone.sum()),
                    }
                )
        return {
            "faulted": int(faulted.sum()),
            "baseline": int(baseline.sum()),
            "rows": rows,
            "no_baseline": not baseline.any(),
            # Some faulted attempt has the judge's verdict: show the sources apart.
            "judged": bool((faulted & ~np.isnan(by_judge)).any()),
        }

    def markdown(self, result: dict[str, Any]) -> list[str]:
        out = []
        for r in result["rows"]:
            if r["kind"] != ALL_KINDS:
                continue
            out.append(
                f"- {r['arm']}: {r['attempts']} faulted attempts; noticed "
                f"{_pct(r['noticed']['rate'])}, resolved {_pct(r['resolved']['rate'])} vs "
                f"{_pct(r['baseline']['rate'])} without a fault; recovery rate "
                f"{_pct(r['recovery']['rate'])}; paired drop {_ci(r['drop'])}"
                + (
                    f" (noticed in the trace {_pct(r['noticed_in_trace']['rate'])}; the judge "
                    f"says noticed in {r['noticed_judge']['k']} of {r['noticed_judge']['n']} "
                    "it judged)"
                    if result["judged"]
                    else ""
                )
            )
        if result["no_baseline"]:
            out.append(
                "- No attempt ran without a fault: run the same tasks without the plan to "
                "measure recovery against a baseline."
            )
        return out


SECTION = Recovery()
