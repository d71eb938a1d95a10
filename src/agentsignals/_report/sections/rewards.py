"""Reward proxies against the outcome (``agentsignals report --rewards rewards.jsonl``): does
each shaping component, and the shaping total, agree with what the verifier says?

A shaping term is a proxy: a policy trained on it will push it up whether or not the task
gets solved (running trivial tests for ``validation``, manufacturing errors for a
self-correction bonus). Tracked against the outcome, a proxy that stops agreeing shows:

* per component: how often it fired among resolved and among failed attempts (Wilson); a bonus
  should fire more among resolved ones, a penalty among failed ones; ``agrees`` says whether
  it does (``no`` when the intervals exclude the expected direction);
* the shaping total: its AUC for telling resolved from failed attempts (the probability a
  resolved attempt got more shaping than a failed one, ties half; Hanley-McNeil interval), raw
  and within task (pairs from the same task only, so task difficulty cannot make it agree).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agentsignals._report.base import Section
from agentsignals._report.context import Context
from agentsignals._report.sections.behaviour import _f, _pct
from agentsignals._report.sections.overview import rate


def _auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float, float]:
    """AUC with the Hanley-McNeil (1982) 95% interval; nan without both classes."""
    n1, n0 = len(pos), len(neg)
    if not n1 or not n0:
        return math.nan, math.nan, math.nan
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    auc = float(greater) / (n1 * n0)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n1 * n0)
    half = 1.959964 * math.sqrt(max(var, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def _within_auc(task: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
    """AUC over (resolved, failed) pairs of the same task; (auc, pairs, tasks)."""
    greater = 0.0
    pairs = 0
    tasks = 0
    for t in np.unique(task):
        m = task == t
        pos, neg = x[m & (y == 1)], x[m & (y == 0)]
        if len(pos) and len(neg):
            tasks += 1
            pairs += len(pos) * len(neg)
            greater += float((pos[:, None] > neg[None, :]).sum())
            greater += 0.5 * float((pos[:, None] == neg[None, :]).sum())
    return (greater / pairs if pairs else math.nan), pairs, tasks


class Rewards(Section):
    id = "rewards"
    title = "Reward proxies versus the outcome"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        paths = getattr(ctx.options, "rewards", ())
        if not paths:
            return None
        from agentsignals._reward.run import read_rewards

        rows: dict[str, dict[str, Any]] = {}
        spec: dict[str, Any] | None = None
        for path in paths:
            for row in read_rewards(path):
                if row.get("kind") == "trajectory":
                    rows[str(row["attempt_id"])] = row
                    spec = spec or row.get("spec")
        index = {str(a): i for i, a in enumerate(ctx.attempt_id)}
        matched = [(index[a], r) for a, r in rows.items() if a in index]
        if not matched:
            ctx.notes.append(
                f"--rewards: none of the {len(rows)} trajectory rewards matches an attempt of "
                "the report"
            )
            return None
        n = ctx.n
        shaping = np.full(n, np.nan)
        names = sorted(
            {k for _, r in matched for k in (r.get("components") or {})}
            | {u for _, r in matched for u in _unavailable(r)}
        )
        values = {name: np.full(n, np.nan) for name in names}
        signs: dict[str, float] = {}
        for i, r in matched:
            shaping[i] = float(r["shaping"])
            unavailable = set(_unavailable(r))
            for name in names:
                if name in unavailable:
                    continue
                value = float((r.get("components") or {}).get(name, 0.0))
                values[name][i] = value
                if value:
                    signs[name] = math.copysign(1.0, value)
        y = ctx.y
        known = ~np.isnan(y) & ~np.isnan(shaping)
        components = []
        for name in names:
            v = values[name]
            ok = known & ~np.isnan(v)
            fired = np.not_equal(v, 0.0)
            res = rate(np.sum(fired[ok & (y == 1)]), np.sum(ok & (y == 1)))
            fail = rate(np.sum(fired[ok & (y == 0)]), np.sum(ok & (y == 0)))
            sign = signs.get(name)
            components.append(
                {
                    "name": name,
                    "kind": None if sign is None else ("bonus" if sign > 0 else "penalty"),
                    "attempts": int(ok.sum()),
                    "fired_resolved": res,
                    "fired_failed": fail,
                    "agrees": _agrees(sign, res, fail),
                }
            )
        auc, lo, hi = _auc(shaping[known & (y == 1)], shaping[known & (y == 0)])
        w_auc, pairs, tasks = _within_auc(ctx.task_code[known], shaping[known], y[known])
        return {
            "spec": spec,
            "attempts": int(known.sum()),
            "unmatched": len(rows) - len(matched),
            "components": components,
            "shaping_auc": {"value": _f(auc), "lo": _f(lo), "hi": _f(hi)},
            "shaping_auc_within": {"value": _f(w_auc), "pairs": pairs, "tasks": tasks},
        }

    def markdown(self, result: dict[str, Any]) -> list[str]:
        a = result["shaping_auc"]
        out = [
            f"- shaping total vs outcome: AUC {_num(a['value'])} [{_num(a['lo'])}, "
            f"{_num(a['hi'])}] over {result['attempts']} attempts; within task "
            f"{_num(result['shaping_auc_within']['value'])}"
        ]
        for c in result["components"]:
            out.append(
                f"- {c['name']} ({c['kind'] or 'never fired'}): fired in "
                f"{_pct(c['fired_resolved']['rate'])} of resolved, "
                f"{_pct(c['fired_failed']['rate'])} of failed; agrees: {c['agrees']}"
            )
        return out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _unavailable(row: dict[str, Any]) -> list[str]:
    value = row.get("unavailable")
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return list(value or [])


def _agrees(sign: float | None, res: dict[str, Any], fail: dict[str, Any]) -> str:
    """yes / no / unclear: a bonus should fire more among resolved attempts, a penalty more
    among failed ones; no when the intervals do not overlap the other way round."""
    if sign is None or res["rate"] is None or fail["rate"] is None:
        return "unclear"
    hi_good, lo_good = (res, fail) if sign > 0 else (fail, res)
    if hi_good["lo"] is not None and lo_good["hi"] is not None and hi_good["lo"] > lo_good["hi"]:
        return "yes"
    if hi_good["hi"] is not None and lo_good["lo"] is not None and hi_good["hi"] < lo_good["lo"]:
        return "no"
    return "unclear"


SECTION = Rewards()
