"""Where failures originate: for failed attempts whose first wrong step the judge labelled
(`judge.first_wrong_step`), the step's relative position and phase as the judge wrote them, as a
heatmap, next to a position-only baseline: where the label would fall if it were a uniformly
random step of the same attempt (from the phases of the attempt's steps, which the judge writes
with the label)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from agentsignals._report import plots
from agentsignals._report.base import Section
from agentsignals._report.context import FAILED, Context
from agentsignals._report.frame import (
    FWS,
    FWS_CATEGORY,
    FWS_POSITION,
    FWS_ROW,
    PHASES,
    POSITION_BINS,
    isnull,
    position_bin,
)


class Origins(Section):
    id = "origins"
    title = "Where failures originate"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        label_columns = [c for c in ctx.frame.columns if c.startswith(f"{FWS}.")]
        if not label_columns:
            return None
        failed = ctx.status == FAILED
        labelled = np.zeros(ctx.n, dtype=bool)
        for c in label_columns:
            col = ctx.frame.columns[c]
            labelled |= ~isnull(col) if col.dtype == object else ~np.isnan(col)
        if not (failed & labelled).any():
            return None
        position = ctx.num(FWS_POSITION)
        placed = failed & ~np.isnan(position)
        rows = ctx.text(FWS_ROW)
        heat = np.zeros((len(PHASES), POSITION_BINS))
        for i in np.flatnonzero(placed).tolist():
            heat[PHASES.index(str(rows[i])), position_bin(float(position[i]))] += 1
        steps = ctx.frame.baseline_steps.get("steps")
        with_steps = np.zeros(ctx.n, dtype=bool)
        baseline = np.zeros_like(heat)
        if steps is not None:
            with_steps = placed & (steps.reshape(ctx.n, -1).sum(axis=1) > 0)
            baseline = steps[with_steps].sum(axis=0).astype(np.float64)
        category = ctx.text(FWS_CATEGORY)
        categories = Counter(str(c) for c in category[placed] if c is not None)
        shown = [i for i, p in enumerate(PHASES) if heat[i].sum() or baseline[i].sum()]
        return {
            "phases": [PHASES[i] for i in shown],
            "bins": POSITION_BINS,
            "failed": int(failed.sum()),
            "labelled_failed": int((failed & labelled).sum()),
            "placed": int(placed.sum()),
            "baseline_attempts": int(with_steps.sum()),
            "heatmap": heat[shown].tolist(),
            "baseline": baseline[shown].tolist(),
            "categories": dict(categories.most_common()),
            "by_phase": {PHASES[i]: int(heat[i].sum()) for i in shown},
            "baseline_by_phase": {PHASES[i]: float(baseline[i].sum()) for i in shown},
            "by_position": heat.sum(axis=0).astype(int).tolist(),
            "baseline_by_position": baseline.sum(axis=0).tolist(),
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
                "label; none has the relative position the judge writes with it."
            ]
        top = max(result["by_phase"].items(), key=lambda kv: kv[1])
        line = (
            f"{result['placed']} of {result['failed']} failed attempts have a first wrong step "
            f"placed by the judge; most originate in {top[0]} ({top[1]}"
        )
        if result["baseline_attempts"]:
            base = result["baseline_by_phase"][top[0]]
            line += (
                f", against {base:.1f} if it were a random step of the same "
                f"{result['baseline_attempts']} attempts)."
            )
        else:
            line += "; no baseline: the labels came without the phases of their steps)."
        return [line]


SECTION = Origins()
