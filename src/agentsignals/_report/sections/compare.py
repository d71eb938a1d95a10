"""Agent A versus agent B on the tasks both ran: the paired difference in resolve rate (exact
McNemar, and a paired bootstrap interval over the shared tasks), each arm's rate on all its
tasks next to its rate on the shared ones (a different task set shows up here, not as a
finding), and which behaviours differ between the two on the same tasks."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from agentsignals._report import plots, stats
from agentsignals._report.base import Section
from agentsignals._report.context import BOOL, NUM, STR, Context
from agentsignals._report.frame import isnull
from agentsignals._report.sections.behaviour import _est, _f, _levels, _num, _pct
from agentsignals._report.sections.overview import rate

MAX_PAIRS = 10


class Compare(Section):
    id = "compare"
    title = "Agent A versus agent B"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        base = ctx.population & ~np.isnan(ctx.y)
        per_arm: dict[str, dict[str, list[float]]] = {}
        for arm in ctx.arms:
            idx = np.flatnonzero(base & (ctx.arm == arm))
            tasks: dict[str, list[float]] = {}
            for t, v in zip(ctx.task_id[idx], ctx.y[idx], strict=True):
                tasks.setdefault(str(t), []).append(float(v))
            if tasks:
                per_arm[arm] = tasks
        pairs = []
        for a, b in itertools.combinations(sorted(per_arm), 2):
            shared = sorted(set(per_arm[a]) & set(per_arm[b]))
            if shared:
                pairs.append((len(shared), a, b, shared))
        if not pairs:
            return None
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        out = []
        for _, a, b, shared in pairs[:MAX_PAIRS]:
            out.append(self._pair(ctx, a, b, shared, per_arm))
        return {
            "pairs": out,
            "population": ctx.options.attempts,
            "pairs_left_out": max(0, len(pairs) - MAX_PAIRS),
        }

    def _pair(
        self,
        ctx: Context,
        a: str,
        b: str,
        shared: list[str],
        per_arm: dict[str, dict[str, list[float]]],
    ) -> dict[str, Any]:
        ra = np.array([np.mean(per_arm[a][t]) for t in shared])
        rb = np.array([np.mean(per_arm[b][t]) for t in shared])
        binary = bool(np.all(np.isin(ra, (0, 1))) and np.all(np.isin(rb, (0, 1))))
        n = len(shared)
        boot = stats.TaskBootstrap(n, ctx.options.replicates, ctx.options.seed + 3)
        reps = boot.sums(np.stack([ra - rb, np.ones(n)], axis=1))
        diff_reps = reps[:, 0] / reps[:, 1]
        lo, hi = stats.percentile_ci(diff_reps)
        result: dict[str, Any] = {
            "a": a,
            "b": b,
            "shared_tasks": n,
            "difference": {"value": float(np.mean(ra - rb)), "lo": _f(lo[0]), "hi": _f(hi[0])},
            "a_shared": rate(ra.sum(), n) if binary else {"rate": float(ra.mean()), "n": n},
            "b_shared": rate(rb.sum(), n) if binary else {"rate": float(rb.mean()), "n": n},
        }
        for key, arm in (("a_all", a), ("b_all", b)):
            vals = [v for vs in per_arm[arm].values() for v in vs]
            result[key] = rate(sum(vals), len(vals))
            result[key]["tasks"] = len(per_arm[arm])
        result["task_sets_differ"] = result["a_all"]["tasks"] != n or result["b_all"]["tasks"] != n
        if binary:
            both = int(np.sum((ra == 1) & (rb == 1)))
            a_only = int(np.sum((ra == 1) & (rb == 0)))
            b_only = int(np.sum((ra == 0) & (rb == 1)))
            neither = int(np.sum((ra == 0) & (rb == 0)))
            result["table"] = {"both": both, "a_only": a_only, "b_only": b_only, "neither": neither}
            result["mcnemar_p"] = stats.mcnemar_exact(a_only, b_only)
        result["behaviours"] = self._behaviours(ctx, a, b, shared)
        return result

    def _behaviours(self, ctx: Context, a: str, b: str, shared: list[str]) -> list[dict[str, Any]]:
        base = ctx.population
        sel = base & np.isin(ctx.arm, [a, b]) & np.isin(ctx.task_id, shared)
        idx = np.flatnonzero(sel)
        if len(idx) == 0:
            return []
        keys = np.char.add(ctx.task_id[idx].astype(str), "\x1f")
        keys = np.char.add(keys, ctx.arm[idx].astype(str))
        uniq, code = np.unique(keys, return_inverse=True)
        task_of = np.array([u.split("\x1f")[0] for u in uniq])
        arm_of = np.array([u.split("\x1f")[1] for u in uniq])
        series: list[tuple[str, str, np.ndarray]] = []
        for name, kind in ctx.signal_columns():
            col = ctx.frame.columns[name][idx]
            if kind in (BOOL, NUM):
                x = col.astype(float)
                if np.all(np.isnan(x)) or np.nanmin(x) == np.nanmax(x):
                    continue
                series.append((name, "numeric" if kind == NUM else "boolean", x))
            elif kind == STR:
                levels, why = _levels(col, ctx.options)
                if why:
                    continue
                present = ~isnull(col)
                for level in levels:
                    series.append(
                        (
                            f"{name} = {level}",
                            "categorical",
                            np.where(present, (col == level).astype(float), np.nan),
                        )
                    )
        rows: list[dict[str, Any]] = []
        for label, kind, x in series:
            ok = ~np.isnan(x)
            sums = np.bincount(code, weights=np.where(ok, x, 0), minlength=len(uniq))
            counts = np.bincount(code, weights=ok.astype(float), minlength=len(uniq))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sums / counts
            by_task: dict[str, dict[str, float]] = {}
            for t, arm, m in zip(task_of, arm_of, mean, strict=True):
                if not math.isnan(m):
                    by_task.setdefault(t, {})[arm] = m
            d = np.array([v[a] - v[b] for v in by_task.values() if a in v and b in v])
            if len(d) < ctx.options.min_per_outcome:
                continue
            est = stats.mean_difference(d)
            av = np.array([v[a] for v in by_task.values() if a in v and b in v])
            bv = np.array([v[b] for v in by_task.values() if a in v and b in v])
            rows.append(
                {
                    "signal": label,
                    "kind": kind,
                    "a_mean": float(av.mean()),
                    "b_mean": float(bv.mean()),
                    "difference": _est(est),
                }
            )
        p = np.array(
            [r["difference"]["p"] if r["difference"]["p"] is not None else np.nan for r in rows]
        )
        q = stats.benjamini_hochberg(p)
        for r, qv in zip(rows, q, strict=True):
            r["difference"]["q"] = None if math.isnan(qv) else float(qv)
        rows.sort(
            key=lambda r: (
                r["difference"]["q"] if r["difference"]["q"] is not None else 2.0,
                r["signal"],
            )
        )
        return rows

    def plots(self, result: dict[str, Any]) -> dict[str, str]:
        return {"paired": plots.paired_rates(result["pairs"])}

    def markdown(self, result: dict[str, Any]) -> list[str]:
        lines = []
        for p in result["pairs"]:
            d = p["difference"]
            line = (
                f"- {p['a']} vs {p['b']} on {p['shared_tasks']} shared tasks: "
                f"{_pct(p['a_shared']['rate'])} vs {_pct(p['b_shared']['rate'])}, "
                f"paired difference {_pct(d['value'])} [{_pct(d['lo'])}, {_pct(d['hi'])}]"
            )
            if "table" in p:
                t = p["table"]
                line += (
                    f"; both {t['both']}, A only {t['a_only']}, B only {t['b_only']}, "
                    f"neither {t['neither']} (exact McNemar p = {_num(p['mcnemar_p'])})"
                )
            lines.append(line + ".")
            if p["task_sets_differ"]:
                lines.append(
                    f"  The arms ran different task sets: on all their tasks "
                    f"{_pct(p['a_all']['rate'])} ({p['a_all']['tasks']} tasks) and "
                    f"{_pct(p['b_all']['rate'])} ({p['b_all']['tasks']} tasks); compare them on "
                    "the shared tasks, not by raw rates."
                )
        return lines


SECTION = Compare()
