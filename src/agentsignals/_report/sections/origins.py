"""Where failures originate: for failed attempts with a first-wrong-step label
(`judge.first_wrong_step`), the step's relative position and phase as a heatmap, next to a
baseline of where every step of the same attempts falls (what a label placed by position alone,
uniformly over the steps, would give)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from agentsignals._report import plots
from agentsignals._report.base import Section
from agentsignals._report.context import FAILED, Context
from agentsignals._report.frame import FWS_PHASE, FWS_POSITION, PHASES, POSITION_BINS


class Origins(Section):
    id = "origins"
    title = "Where failures originate"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        phase = ctx.frame.get(FWS_PHASE)
        labelled_any = [c for c in ctx.frame.columns if c.startswith("judge.first_wrong_step.")]
        if phase is None and not labelled_any:
            return None
        failed = ctx.status == FAILED
        labelled = np.zeros(ctx.n, dtype=bool)
        for c in labelled_any:
            col = ctx.frame.columns[c]
            present = (
                np.array([v is not None for v in col]) if col.dtype == object else ~np.isnan(col)
            )
            labelled |= present
        position = ctx.num(FWS_POSITION)
        placed = failed & ~np.isnan(position)
        heat = np.zeros((len(PHASES), POSITION_BINS))
        phases = ctx.text(FWS_PHASE)
        for i in np.flatnonzero(placed):
            b = min(POSITION_BINS - 1, int(position[i] * POSITION_BINS))
            heat[PHASES.index(phases[i]), b] += 1
        steps = ctx.frame.baseline_steps.get("steps")
        baseline = (
            steps[placed].sum(axis=0) if steps is not None and placed.any() else np.zeros_like(heat)
        )
        total = heat.sum()
        if baseline.sum() > 0 and total > 0:
            baseline = baseline * (total / baseline.sum())
        category = ctx.text("judge.first_wrong_step.category")
        categories = Counter(str(c) for c in category[placed] if c is not None)
        return {
            "phases": list(PHASES),
            "bins": POSITION_BINS,
            "failed": int(failed.sum()),
            "labelled_failed": int((failed & labelled).sum()),
            "placed": int(placed.sum()),
            "heatmap": heat.tolist(),
            "baseline": baseline.tolist(),
            "categories": dict(categories.most_common()),
            "by_phase": {p: int(heat[i].sum()) for i, p in enumerate(PHASES)},
            "baseline_by_phase": {p: float(baseline[i].sum()) for i, p in enumerate(PHASES)},
        }

    def plots(self, result: dict[str, Any]) -> dict[str, str]:
        if not result["placed"]:
            return {}
        return {
            "heatmap": plots.origin_heatmaps(
                np.array(result["heatmap"]), np.array(result["baseline"]), result["phases"]
            )
        }

    def markdown(self, result: dict[str, Any]) -> list[str]:
        if not result["placed"]:
            return [
                f"{result['labelled_failed']} failed attempts carry a first-wrong-step "
                "label; none could be placed on its attempt's steps."
            ]
        top = max(result["by_phase"].items(), key=lambda kv: kv[1])
        base = result["baseline_by_phase"][top[0]]
        return [
            f"{result['placed']} of {result['failed']} failed attempts have a placed first "
            f"wrong step; most originate in {top[0]} ({top[1]}, against {base:.1f} expected "
            "from where steps fall)."
        ]


SECTION = Origins()
