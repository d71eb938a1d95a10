"""How runs fail: the patch outcome labels, "never found the right file" versus "found it and
wrote the wrong fix" (gold-patch localization, from `agentsignals verify --dataset`),
regressions and runs that produced no patch."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from agentsignals._report import plots
from agentsignals._report.base import Section
from agentsignals._report.context import FAILED, Context
from agentsignals._report.sections.overview import rate

LABELS = ("correct_patch", "partial_patch", "regressive_patch", "no_effect_patch", "unverifiable")
LOCALIZATION = {
    "never_read_gold": "never read a gold file",
    "read_not_edited": "read a gold file, never edited one",
    "edited_gold": "edited a gold file, wrong fix",
}
NO_PATCH_REASONS = {"empty_patch", "no_generation"}


class Failures(Section):
    id = "failures"
    title = "How runs fail"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        label = ctx.text("verification.patch_outcome_label")
        reason = ctx.text("verification.unverifiable_reason")
        p2f = ctx.num("verification.pass_to_fail_count")
        diff_lines = ctx.num("behavior.diff_lines")
        gold = ctx.num("behavior.localized_correct_file")
        read_step = ctx.num("behavior.first_gold_read_step")
        edit_step = ctx.num("behavior.first_gold_edit_step")
        has_gold = ~np.isnan(gold)
        arms = []
        for arm in ctx.arms:
            idx = np.flatnonzero((ctx.arm == arm) & ctx.population)
            if len(idx) == 0:
                continue
            failed = idx[ctx.status[idx] == FAILED]
            labels = Counter("(no label)" if v is None else str(v) for v in label[idx])
            loc: dict[str, int] = {}
            gold_failed = failed[has_gold[failed]]
            loc["never_read_gold"] = int(
                np.sum(np.isnan(read_step[gold_failed]) & np.isnan(edit_step[gold_failed]))
            )
            loc["read_not_edited"] = int(
                np.sum(~np.isnan(read_step[gold_failed]) & np.isnan(edit_step[gold_failed]))
            )
            loc["edited_gold"] = int(np.sum(~np.isnan(edit_step[gold_failed])))
            known_p2f = ~np.isnan(p2f[idx])
            no_patch = np.array([r in NO_PATCH_REASONS for r in reason[idx]], dtype=bool) | (
                diff_lines[idx] == 0
            )
            arms.append(
                {
                    "arm": arm,
                    "attempts": len(idx),
                    "labels": {k: labels.get(k, 0) for k in (*LABELS, "(no label)")},
                    "failed": len(failed),
                    "localization_known": len(gold_failed),
                    "localization": loc,
                    "regressions": rate(np.sum(p2f[idx][known_p2f] > 0), np.sum(known_p2f)),
                    "no_patch": rate(np.sum(no_patch), len(idx)),
                    "no_patch_failed": int(np.sum(no_patch & (ctx.status[idx] == FAILED))),
                }
            )
        if not arms:
            return None
        return {
            "population": ctx.options.attempts,
            "arms": arms,
            "localization_labels": LOCALIZATION,
        }

    def plots(self, result: dict[str, Any]) -> dict[str, str]:
        out = {"labels": plots.label_bars(result["arms"], LABELS)}
        if any(a["localization_known"] for a in result["arms"]):
            out["localization"] = plots.localization_bars(result["arms"], LOCALIZATION)
        return out

    def markdown(self, result: dict[str, Any]) -> list[str]:
        lines = []
        for a in result["arms"]:
            labels = ", ".join(f"{k} {v}" for k, v in a["labels"].items() if v)
            lines.append(f"- {a['arm']}: {labels}.")
            if a["localization_known"]:
                loc = a["localization"]
                lines.append(
                    f"  Of {a['localization_known']} failed attempts with a gold patch: "
                    + ", ".join(f"{LOCALIZATION[k]} {v}" for k, v in loc.items())
                    + "."
                )
        return lines


SECTION = Failures()
