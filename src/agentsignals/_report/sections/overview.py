"""Overview: trials, attempts and resolve rates by agent x model x dataset, attempt 1 apart from
the retries (never pooled silently), cost and tokens per attempt and per resolved task, exit
reasons, and infra failures apart from agent failures."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from agentsignals._report import plots, stats
from agentsignals._report.base import Section
from agentsignals._report.context import FAILED, INFRA, RESOLVED, UNVERIFIED, Context
from agentsignals._report.sections.behaviour import _f, _num, _pct


def rate(k: float, n: float) -> dict[str, Any]:
    lo, hi = stats.wilson(k, n)
    return {
        "k": int(k),
        "n": int(n),
        "rate": _f(k / n) if n else None,
        "lo": _f(lo),
        "hi": _f(hi),
    }


class Overview(Section):
    id = "overview"
    title = "Overview"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        cost = ctx.num("tokens.cost_usd")
        tokens_in = ctx.num("tokens.input_tokens_total")
        tokens_out = ctx.num("tokens.output_tokens_total")
        exit_reason = ctx.text("infra.exit_reason")
        reason = ctx.text("verification.unverifiable_reason")
        # A trial is resolved when any of its verified attempts is.
        verified_all = ~np.isnan(ctx.y)
        n_trials = len(ctx.trial_names)
        trial_verified = np.bincount(ctx.trial_code[verified_all], minlength=n_trials) > 0
        trial_resolved = (
            np.bincount(
                ctx.trial_code[verified_all],
                weights=(ctx.y[verified_all] == 1).astype(float),
                minlength=n_trials,
            )
            > 0
        )
        arms = []
        for a, arm in enumerate(ctx.arms):
            idx = np.flatnonzero(ctx.arm_code == a)
            if len(idx) == 0:
                continue
            status = ctx.status[idx]
            y = ctx.y[idx]
            first = ctx.first[idx]
            verified = ~np.isnan(y)
            trials = np.unique(ctx.trial_code[idx])
            known = trials[trial_verified[trials]]
            c = cost[idx]
            tokens = tokens_in[idx] + tokens_out[idx]
            row: dict[str, Any] = {
                "arm": arm,
                "agent": ctx.agent[idx[0]],
                "model": ctx.model[idx[0]],
                "dataset": ctx.dataset[idx[0]],
                "attempts": len(idx),
                "trials": len(trials),
                "tasks": len(np.unique(ctx.task_code[idx])),
                "first": rate(np.sum(y[first & verified] == 1), np.sum(first & verified)),
                "retries": rate(np.sum(y[~first & verified] == 1), np.sum(~first & verified)),
                "trial": rate(int(trial_resolved[known].sum()), len(known)),
                "status": {
                    s: int(np.sum(status == s)) for s in (RESOLVED, FAILED, INFRA, UNVERIFIED)
                },
                "cost_per_attempt": _f(np.nanmean(c)) if np.any(~np.isnan(c)) else None,
                "cost_known": int(np.sum(~np.isnan(c))),
                "tokens_per_attempt": _f(np.nanmean(tokens)) if np.any(~np.isnan(tokens)) else None,
                "exit_reasons": dict(
                    Counter("-" if r is None else str(r) for r in exit_reason[idx]).most_common()
                ),
                "infra_reasons": dict(
                    Counter(str(r) for r in reason[idx][status == INFRA]).most_common()
                ),
            }
            row["cost_per_resolved_task"] = self._cost_per_resolved(ctx, idx, trial_resolved)
            arms.append(row)
        verified = ~np.isnan(ctx.y)
        totals = {
            "attempts": ctx.n,
            "trials": n_trials,
            "tasks": len(ctx.task_names),
            "first_attempts": int(ctx.first.sum()),
            "retries": int((~ctx.first).sum()),
            "status": {
                s: int(np.sum(ctx.status == s)) for s in (RESOLVED, FAILED, INFRA, UNVERIFIED)
            },
            "verified": int(verified.sum()),
        }
        return {"totals": totals, "arms": arms}

    def _cost_per_resolved(
        self, ctx: Context, idx: np.ndarray, trial_resolved: np.ndarray
    ) -> dict[str, Any] | None:
        cost = ctx.num("tokens.cost_usd")[idx]
        trial = ctx.trial_code[idx]
        if not np.any(~np.isnan(cost)) or not trial_resolved[trial].any():
            return None
        tasks, task = np.unique(ctx.task_code[idx], return_inverse=True)
        # Per attempt: its cost, and 1 on one attempt (the first row) of each resolved trial.
        marker = np.zeros(len(idx))
        trials, first_row = np.unique(trial, return_index=True)
        marker[first_row[trial_resolved[trials]]] = 1
        values = np.stack([np.nan_to_num(cost), marker], axis=1)
        by_task = stats.per_task_sums(task.reshape(-1), len(tasks), values)
        total = by_task.sum(axis=0)
        boot = stats.TaskBootstrap(len(tasks), ctx.options.replicates, ctx.options.seed + 2)
        reps = boot.sums(by_task)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = reps[:, 0] / np.where(reps[:, 1] > 0, reps[:, 1], np.nan)
        lo, hi = stats.percentile_ci(ratio, max_undefined=0.5)
        return {
            "value": float(total[0] / total[1]),
            "lo": _f(lo[0]),
            "hi": _f(hi[0]),
            "resolved_trials": int(total[1]),
            "cost_missing": int(np.sum(np.isnan(cost))),
        }

    def plots(self, result: dict[str, Any]) -> dict[str, str]:
        return {"rates": plots.resolve_rates(result["arms"])}

    def markdown(self, result: dict[str, Any]) -> list[str]:
        t = result["totals"]
        s = t["status"]
        lines = [
            f"{t['attempts']} attempts in {t['trials']} trials on {t['tasks']} tasks "
            f"({t['first_attempts']} first attempts, {t['retries']} retries): "
            f"{s[RESOLVED]} resolved, {s[FAILED]} failed, {s[INFRA]} infra failures, "
            f"{s[UNVERIFIED]} without an outcome.",
            "",
            "| agent · model · dataset | tasks | attempt 1 resolved [95% CI] | retries "
            "| cost/attempt | cost/resolved task |",
            "|---|---|---|---|---|---|",
        ]
        for a in result["arms"]:
            first = a["first"]
            retries = a["retries"]
            cpr = a["cost_per_resolved_task"]
            lines.append(
                f"| {a['arm']} | {a['tasks']} | {_rate(first)} | "
                f"{_rate(retries) if retries['n'] else '-'} | "
                f"{_money(a['cost_per_attempt'])} | "
                f"{_money(cpr['value']) if cpr else '-'} |"
            )
        return lines


def _rate(r: dict[str, Any]) -> str:
    if not r["n"]:
        return "-"
    return f"{_pct(r['rate'])} ({r['k']}/{r['n']}) [{_pct(r['lo'])}, {_pct(r['hi'])}]"


def _money(x: float | None) -> str:
    return "-" if x is None else f"${_num(x)}"


SECTION = Overview()
