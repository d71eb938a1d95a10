"""Behaviour versus success: every boolean, categorical and numeric signal, raw and within task.

For a boolean (or one level of a categorical) signal X, on the attempts of the population
(first attempts by default) with a verified outcome:

* prevalence among resolved and among failed attempts, and their ratio failed/resolved (the
  write-up's "~4.6x more common in failed runs") with a 95% percentile interval from the
  bootstrap over tasks;
* the raw odds ratio of failure with X (same bootstrap) and the **within-task** Mantel-Haenszel
  odds ratio stratified by task (only tasks with both outcomes and both values of X inform it),
  with the Robins-Breslow-Greenland interval and the CMH test;
* Benjamini-Hochberg q-values across rows, separately for the raw and the within-task tests;
* where a judge calibration is given, Rogan-Gladen corrected prevalences and ratio.

For a number: medians and quartiles by outcome, the raw difference of means (failed minus
resolved, bootstrap over tasks), and the within-task difference: the mean over tasks with both
outcomes of (mean among failed - mean among resolved), t interval and test.

Everything is oriented toward failure: a ratio or odds ratio above 1, or a positive
difference, means the signal goes with failed attempts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentsignals._report import plots, stats
from agentsignals._report.base import Section
from agentsignals._report.context import BOOL, NUM, STR, Context
from agentsignals._report.frame import isnull


class Behaviour(Section):
    id = "behaviour"
    title = "Behaviour versus success"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        opts = ctx.options
        pop = ctx.population & ~np.isnan(ctx.y)
        idx = np.flatnonzero(pop)
        population_name = {
            "first": "first attempts (attempt index 0)",
            "retries": "retries (attempt index 1 and later)",
            "all": "all attempts, attempt 1 and retries pooled",
        }[opts.attempts]
        result: dict[str, Any] = {
            "population": population_name,
            "attempts": len(idx),
            "resolved": int(np.sum(ctx.y[idx] == 1)),
            "failed": int(np.sum(ctx.y[idx] == 0)),
            "replicates": opts.replicates,
            "seed": opts.seed,
            "strata": opts.strata,
            "rows": [],
            "numeric": [],
            "skipped": [],
            "family_size": {"raw": 0, "within": 0},
            "adjusted": False,
            "excluded_retries": int(np.sum(~ctx.first & ~np.isnan(ctx.y)))
            if opts.attempts == "first"
            else 0,
        }
        if len(idx) == 0:
            result["empty"] = "no attempt with a verified outcome in this population"
            return result
        y = ctx.y[idx]
        tasks, task = np.unique(ctx.task_code[idx], return_inverse=True)
        task = task.reshape(-1)
        n_tasks = len(tasks)
        arm = ctx.arm_code[idx]
        n_arms = max(len(ctx.arm_names), 1)
        if opts.strata == "task+arm":
            strata = np.unique(task * n_arms + arm, return_inverse=True)[1].reshape(-1)
        else:
            strata = task
        n_strata = int(strata.max()) + 1
        mixed = _mixed(strata, y, n_strata)
        result["tasks"] = n_tasks
        result["mixed_tasks"] = int(mixed.sum())
        result["mixed_task_ids"] = (
            sorted(str(t) for t in ctx.task_names[tasks[mixed]]) if opts.strata == "task" else []
        )
        # Whether some stratum with both outcomes holds attempts of more than one arm.
        pairs = np.unique(strata * n_arms + arm)
        arms_per_stratum = np.bincount(pairs // n_arms, minlength=n_strata)
        result["mixed_strata_span_arms"] = bool(np.any(arms_per_stratum[mixed] > 1))
        boot = stats.TaskBootstrap(n_tasks, opts.replicates, opts.seed)

        # Boolean and categorical rows.
        indicators: list[tuple[str, str, str | None, np.ndarray]] = []
        numerics: list[tuple[str, np.ndarray]] = []
        for name, kind in ctx.signal_columns():
            col = ctx.frame.columns[name][idx]
            if kind == BOOL:
                indicators.append((name, name, None, col.astype(float)))
            elif kind == NUM:
                x = col.astype(float)
                ok = ~np.isnan(x)
                if ok.sum() == 0 or np.nanmin(x) == np.nanmax(x):
                    result["skipped"].append({"signal": name, "why": "constant or empty"})
                    continue
                values = np.unique(x[ok])
                if len(values) == 2 and set(values.tolist()) <= {0.0, 1.0}:
                    indicators.append((name, name, None, x))
                else:
                    numerics.append((name, x))
            elif kind == STR:
                levels, why = _levels(col, opts)
                if why:
                    result["skipped"].append({"signal": name, "why": why})
                    continue
                present = ~isnull(col)
                for level in levels:
                    x = np.where(present, (col == level).astype(float), np.nan)
                    indicators.append((f"{name} = {level}", name, level, x))
        # Per task (and stratum), for each signal x: x among resolved, resolved with x known, x
        # among failed, failed with x known; then every bootstrap total in one matrix product.
        xs = [ind[3] for ind in indicators] + [x for _, x in numerics]
        by_task = _outcome_sums(xs, y, task, n_tasks)
        by_stratum = by_task if opts.strata == "task" else _outcome_sums(xs, y, strata, n_strata)
        reps = boot.sums(by_task)
        k = 4 * len(indicators)
        rows = self._indicator_rows(
            indicators, _Sums(by_task[:, :k], by_stratum[:, :k], reps[:, :k]), n_tasks, ctx
        )
        nums = self._numeric_rows(
            numerics, y, _Sums(by_task[:, k:], by_stratum[:, k:], reps[:, k:]), n_tasks, opts
        )
        adjust = result["mixed_strata_span_arms"] and opts.strata == "task"
        if adjust:
            informative = int(np.sum(mixed[strata]))
            if informative > ADJUST_MAX_ATTEMPTS:
                result["adjusted_skipped"] = (
                    f"{informative} attempts in tasks with both outcomes: more than "
                    f"{ADJUST_MAX_ATTEMPTS}, so the agent-adjusted estimate is not computed "
                    "(use --strata task+arm)"
                )
                adjust = False
        result["adjusted"] = bool(adjust)
        if adjust:
            arms, arm_code = np.unique(arm, return_inverse=True)
            dummies = np.eye(len(arms))[arm_code.reshape(-1)][:, 1:] if len(arms) > 1 else None
            fail = 1.0 - y
            for row, x in zip(rows, [ind[3] for ind in indicators], strict=True):
                self._adjust(row, fail, x, dummies, task, is_numeric=False)
            for row, (_, x) in zip(nums, numerics, strict=True):
                sd = row["sd"]
                self._adjust(row, fail, x / sd if sd else x, dummies, task, is_numeric=True)
        for family in (rows, nums):
            for key in ("raw", "within", "adjusted"):
                if key == "adjusted" and not adjust:
                    continue
                p = np.array([r[key]["p"] if r[key]["p"] is not None else np.nan for r in family])
                q = stats.benjamini_hochberg(p)
                for r, qv in zip(family, q, strict=True):
                    r[key]["q"] = None if math.isnan(qv) else float(qv)
        rows.sort(key=_order)
        nums.sort(key=_order)
        result["rows"] = rows
        result["numeric"] = nums
        result["family_size"] = {
            "raw": sum(r["raw"]["p"] is not None for r in rows + nums),
            "within": sum(r["within"]["p"] is not None for r in rows + nums),
        }
        return result

    def _adjust(
        self,
        row: dict[str, Any],
        fail: np.ndarray,
        x: np.ndarray,
        dummies: np.ndarray | None,
        task: np.ndarray,
        *,
        is_numeric: bool,
    ) -> None:
        if row["verdict"] == "too few":
            row["adjusted"] = _est(stats.NAN_ESTIMATE)
            return
        est = stats.conditional_logit(fail, x, dummies, task)
        row["adjusted"] = _est(est)
        raw = _from(row["raw"])
        if is_numeric:
            row["verdict"] = stats.classify_agreement(raw, _log(est), 0.0)
        else:
            row["verdict"] = stats.classify_agreement(raw, est, 1.0)

    def _indicator_rows(
        self,
        indicators: list[tuple[str, str, str | None, np.ndarray]],
        sums: _Sums,
        n_tasks: int,
        ctx: Context,
    ) -> list[dict[str, Any]]:
        opts = ctx.options
        if not indicators:
            return []
        by_stratum, total, reps = sums.by_stratum, sums.by_task.sum(axis=0), sums.reps
        rng = np.random.default_rng(opts.seed + 1)
        rows = []
        for j, (label, column, level, _) in enumerate(indicators):
            a, b, c, d = total[4 * j : 4 * j + 4]
            ra, rb, rc, rd = (reps[:, 4 * j + i] for i in range(4))
            row: dict[str, Any] = {
                "signal": label,
                "column": column,
                "level": level,
                "kind": "categorical" if level is not None else "boolean",
                "n_resolved": int(b),
                "n_failed": int(d),
                "with_resolved": int(a),
                "with_failed": int(c),
            }
            eligible = b >= opts.min_per_outcome and d >= opts.min_per_outcome and 0 < a + c < b + d
            with np.errstate(invalid="ignore", divide="ignore"):
                prev_res = a / b if b else math.nan
                prev_fail = c / d if d else math.nan
                row["prevalence_resolved"] = _f(prev_res)
                row["prevalence_failed"] = _f(prev_fail)
                lo_r, hi_r = stats.wilson(a, b)
                lo_f, hi_f = stats.wilson(c, d)
                row["prevalence_resolved_ci"] = [_f(lo_r), _f(hi_r)]
                row["prevalence_failed_ci"] = [_f(lo_f), _f(hi_f)]
                if not eligible:
                    row["ratio"] = _est(stats.NAN_ESTIMATE)
                    row["raw"] = _est(stats.NAN_ESTIMATE)
                    row["within"] = _est(stats.NAN_ESTIMATE)
                    row["verdict"] = "too few"
                    rows.append(row)
                    continue
                ratio = _safe_div(prev_fail, prev_res)
                ratio_reps = _safe_div(rc / rd, ra / rb)
                odds = _odds_ratio(a, b, c, d)
                odds_reps = _odds_ratio(ra, rb, rc, rd)
            lo, hi = stats.percentile_ci(ratio_reps)
            row["ratio"] = _est(stats.Estimate(ratio, lo[0], hi[0], math.nan, n_tasks))
            lo, hi = stats.percentile_ci(odds_reps)
            with np.errstate(divide="ignore", invalid="ignore"):
                p = stats.bootstrap_p(np.log(odds_reps), 0.0)
            raw = stats.Estimate(odds, lo[0], hi[0], float(p[0]), n_tasks)
            row["raw"] = _est(raw)
            s = by_stratum[:, 4 * j : 4 * j + 4]
            tables = np.stack(
                [
                    np.stack([s[:, 2], s[:, 0]], axis=1),  # X: failed, resolved
                    np.stack([s[:, 3] - s[:, 2], s[:, 1] - s[:, 0]], axis=1),  # not X
                ],
                axis=1,
            )
            within = stats.mantel_haenszel(tables)
            row["within"] = _est(within)
            row["verdict"] = stats.classify_agreement(raw, within, 1.0)
            cal = opts.calibration.for_column(column) if opts.calibration else None
            if cal is not None and level is None:
                row["corrected"] = _corrected(
                    cal, (a, b, c, d), (ra, rb, rc, rd), rng, opts.replicates
                )
            rows.append(row)
        return rows

    def _numeric_rows(
        self,
        numerics: list[tuple[str, np.ndarray]],
        y: np.ndarray,
        sums: _Sums,
        n_tasks: int,
        opts: Any,
    ) -> list[dict[str, Any]]:
        if not numerics:
            return []
        by_stratum, total, reps = sums.by_stratum, sums.by_task.sum(axis=0), sums.reps
        rows = []
        for j, (name, x) in enumerate(numerics):
            a, b, c, d = total[4 * j : 4 * j + 4]
            ok = ~np.isnan(x)
            res = x[ok & (y == 1)]
            fail = x[ok & (y == 0)]
            sd = float(np.nanstd(x))
            row: dict[str, Any] = {
                "signal": name,
                "column": name,
                "kind": "numeric",
                "n_resolved": int(b),
                "n_failed": int(d),
                "resolved": _summary(res),
                "failed": _summary(fail),
                "sd": sd,
            }
            if b < opts.min_per_outcome or d < opts.min_per_outcome:
                row["raw"] = _est(stats.NAN_ESTIMATE)
                row["within"] = _est(stats.NAN_ESTIMATE)
                row["verdict"] = "too few"
                rows.append(row)
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                diff = c / d - a / b
                diff_reps = reps[:, 4 * j + 2] / reps[:, 4 * j + 3] - (
                    reps[:, 4 * j] / reps[:, 4 * j + 1]
                )
                s = by_stratum[:, 4 * j : 4 * j + 4]
                both = (s[:, 1] > 0) & (s[:, 3] > 0)
                per_task = s[both, 2] / s[both, 3] - s[both, 0] / s[both, 1]
            lo, hi = stats.percentile_ci(diff_reps)
            p = stats.bootstrap_p(diff_reps, 0.0)
            raw = stats.Estimate(float(diff), lo[0], hi[0], float(p[0]), n_tasks)
            within = stats.mean_difference(per_task)
            row["raw"] = _est(raw)
            row["within"] = _est(within)
            row["standardized"] = {
                "raw": [_f(v / sd) if sd else None for v in (raw.value, raw.lo, raw.hi)],
                "within": [
                    _f(v / sd) if sd else None for v in (within.value, within.lo, within.hi)
                ],
            }
            row["verdict"] = stats.classify_agreement(raw, within, 0.0)
            rows.append(row)
        return rows

    def plots(self, result: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        rows = [r for r in result.get("rows", []) if r["raw"]["value"] is not None]
        if result.get("adjusted"):
            # The plot shows the estimate the verdict uses.
            rows = [{**r, "within": r.get("adjusted") or r["within"]} for r in rows]
        if rows:
            out["forest"] = plots.forest_odds(rows, adjusted=bool(result.get("adjusted")))
        nums = [r for r in result.get("numeric", []) if r.get("standardized")]
        if nums:
            out["forest_numeric"] = plots.forest_numeric(nums)
            out["distributions"] = plots.distributions(nums[:12])
        return out

    def markdown(self, result: dict[str, Any]) -> list[str]:
        lines = [
            f"Population: {result['population']}; {result['attempts']} attempts "
            f"({result['resolved']} resolved, {result['failed']} failed) on "
            f"{result.get('tasks', 0)} tasks, {result.get('mixed_tasks', 0)} with both outcomes "
            "(the within-task estimates rest on those)."
        ]
        key = "adjusted" if result.get("adjusted") else "within"
        shown = [r for r in result["rows"] + result["numeric"] if r[key].get("q") is not None]
        if not shown:
            lines.append("Too few attempts for behaviour statistics.")
            return lines
        lines.append("")
        if result.get("adjusted"):
            lines.append(
                "Within-task estimates are adjusted for agent · model (conditional "
                "logistic regression): the mixed tasks were run by different arms."
            )
        lines.append("| signal | resolved | failed | raw [95% CI] | within task [95% CI] | q | |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in shown[:15]:
            if r["kind"] == "numeric":
                res = _num(r["resolved"]["median"])
                fail = _num(r["failed"]["median"])
                raw = f"diff {_ci(r['raw'])}"
                within = (
                    f"OR/SD {_ci(r['adjusted'])}"
                    if key == "adjusted"
                    else f"diff {_ci(r['within'])}"
                )
            else:
                res = _pct(r["prevalence_resolved"])
                fail = _pct(r["prevalence_failed"])
                raw = f"ratio {_ci(r['ratio'])}, OR {_ci(r['raw'])}"
                within = f"OR {_ci(r[key])}"
            lines.append(
                f"| {r['signal']} | {res} | {fail} | {raw} | {within} | "
                f"{_num(r[key]['q'])} | {r['verdict']} |"
            )
        return lines


ADJUST_MAX_ATTEMPTS = 20_000


def _from(d: dict[str, Any]) -> stats.Estimate:
    def v(x: Any) -> float:
        return math.nan if x is None else (math.inf if x == "inf" else float(x))

    return stats.Estimate(v(d["value"]), v(d["lo"]), v(d["hi"]), v(d["p"]), d["n"])


def _log(e: stats.Estimate) -> stats.Estimate:
    def lg(x: float) -> float:
        return math.log(x) if x > 0 and not math.isnan(x) else math.nan

    return stats.Estimate(lg(e.value), lg(e.lo), lg(e.hi), e.p, e.n)


@dataclass
class _Sums:
    """Per-task and per-stratum sums (T x 4k, S x 4k) of a family of rows, and their
    bootstrap totals (B x 4k)."""

    by_task: np.ndarray
    by_stratum: np.ndarray
    reps: np.ndarray


def _outcome_sums(
    xs: list[np.ndarray], y: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray:
    """G x 4k sums by group of, for each signal x: x among resolved, resolved with x known,
    x among failed, failed with x known (one bincount each, no n x 4k matrix)."""
    out = np.zeros((n_groups, 4 * len(xs)))
    resolved = y == 1
    failed = y == 0
    for j, x in enumerate(xs):
        ok = ~np.isnan(x)
        xv = np.where(ok, x, 0.0)
        for i, w in enumerate((xv * resolved, ok & resolved, xv * failed, ok & failed)):
            out[:, 4 * j + i] = np.bincount(group, weights=w, minlength=n_groups)
    return out


def _mixed(strata: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    res = np.bincount(strata, weights=(y == 1).astype(float), minlength=n)
    fail = np.bincount(strata, weights=(y == 0).astype(float), minlength=n)
    return (res > 0) & (fail > 0)


def _levels(col: np.ndarray, opts: Any) -> tuple[list[str], str | None]:
    values = col[~isnull(col)]
    if len(values) == 0:
        return [], "empty"
    seen = set(values[:10_000].tolist())
    if len(seen) > opts.max_levels:  # free text: no need to count every distinct value
        return [], f"more than {opts.max_levels} distinct values (text, not a category)"
    uniq, counts = np.unique(values.astype(str), return_counts=True)
    if len(uniq) == 1:
        return [], "constant"
    if len(uniq) > opts.max_levels:
        return [], f"{len(uniq)} distinct values (text, not a category)"
    order = np.argsort(-counts, kind="stable")
    return [str(uniq[i]) for i in order if counts[i] >= opts.min_per_outcome], None


def _odds_ratio(a: Any, b: Any, c: Any, d: Any) -> Any:
    """Odds ratio of failure with X: c(b-a) / (a(d-c)), inf when only failures have X."""
    num = c * (b - a)
    den = a * (d - c)
    return _safe_div(num, den)


def _safe_div(num: Any, den: Any) -> Any:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(
            den != 0, num / np.where(den != 0, den, 1), np.where(num > 0, np.inf, np.nan)
        )
    return float(out) if out.ndim == 0 else out


def _corrected(
    cal: Any,
    point: tuple[float, float, float, float],
    reps: tuple[np.ndarray, ...],
    rng: np.random.Generator,
    replicates: int,
) -> dict[str, Any]:
    a, b, c, d = point
    ra, rb, rc, rd = reps
    se, sp = cal.sensitivity, cal.specificity
    if cal.positives and cal.negatives:
        se_r = rng.binomial(cal.positives, se, replicates) / cal.positives
        sp_r = rng.binomial(cal.negatives, sp, replicates) / cal.negatives
        carries = True
    else:
        se_r = np.full(replicates, se)
        sp_r = np.full(replicates, sp)
        carries = False
    with np.errstate(invalid="ignore", divide="ignore"):
        res = float(stats.rogan_gladen(a / b, se, sp))
        fail = float(stats.rogan_gladen(c / d, se, sp))
        res_r = stats.rogan_gladen(ra / rb, se_r, sp_r)
        fail_r = stats.rogan_gladen(rc / rd, se_r, sp_r)
        ratio = _safe_div(fail, res)
        ratio_r = _safe_div(fail_r, res_r)
    out: dict[str, Any] = {
        "sensitivity": se,
        "specificity": sp,
        "calibration_uncertainty": carries,
        "prevalence_resolved": _f(res),
        "prevalence_failed": _f(fail),
    }
    for key, r in (
        ("prevalence_resolved_ci", res_r),
        ("prevalence_failed_ci", fail_r),
        ("ratio_ci", ratio_r),
    ):
        lo, hi = stats.percentile_ci(r, max_undefined=0.5)
        out[key] = [_f(lo[0]), _f(hi[0])]
    out["ratio"] = _f(ratio)
    if se + sp <= 1:
        out["note"] = "the judge is no better than chance on its calibration set"
    return out


def _summary(x: np.ndarray) -> dict[str, Any]:
    if len(x) == 0:
        return {"n": 0, "mean": None, "median": None, "q": [None] * 5}
    q = np.percentile(x, [5, 25, 50, 75, 95])
    return {
        "n": len(x),
        "mean": float(np.mean(x)),
        "median": float(q[2]),
        "q": [float(v) for v in q],
    }


def _order(row: dict[str, Any]) -> tuple[float, float, str]:
    qw = (row.get("adjusted") or row["within"]).get("q")
    qr = row["raw"].get("q")
    return (
        qw if qw is not None else 2.0,
        qr if qr is not None else 2.0,
        row["signal"],
    )


def _est(e: stats.Estimate) -> dict[str, Any]:
    return e.as_dict()


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ci(e: dict[str, Any]) -> str:
    if e.get("value") is None:
        return "-"
    return f"{_num(e['value'])} [{_num(e['lo'])}, {_num(e['hi'])}]"


SECTION = Behaviour()
