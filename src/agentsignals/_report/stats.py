"""The statistics of the report, on numpy arrays; scipy and statsmodels where they have it.

* Wilson score intervals for every rate.
* A cluster bootstrap over **tasks** (attempts of one task move together), vectorized: the
  replicate weights of the tasks are a B x T multinomial matrix, and every statistic that is a
  ratio of sums over attempts is W @ (per-task sums), one matrix product for all rows at once.
* Within-task estimates: the Mantel-Haenszel odds ratio stratified by task with the
  Robins-Breslow-Greenland interval and the Cochran-Mantel-Haenszel test (statsmodels), and for
  numbers the mean over tasks of the resolved-minus-failed difference (t interval and test).
* Benjamini-Hochberg across rows; McNemar (exact) and a paired bootstrap for agent A vs B;
  Rogan-Gladen correction of a judge's prevalence for its sensitivity and specificity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

Z95 = float(_st.norm.ppf(0.975))


def wilson(
    k: np.ndarray | float, n: np.ndarray | float, conf: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (vectorized; nan where n == 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = float(_st.norm.ppf(0.5 + conf / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    # Exact at the edges (the formula's rounding can leave 1e-17).
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    return lo, hi


class TaskBootstrap:
    """Replicates that resample tasks with replacement. Weights are drawn in chunks from a
    seeded generator, so the same seed gives the same replicates for every statistic."""

    def __init__(self, n_tasks: int, replicates: int = 2000, seed: int = 0) -> None:
        self.n_tasks = n_tasks
        self.replicates = replicates
        self.seed = seed
        self._weights: np.ndarray | None = None
        # Keep the B x T matrix when it is small (16 MB); regenerate chunk by chunk otherwise,
        # so memory does not grow with tasks x replicates.
        if n_tasks * replicates <= 4_000_000:
            self._weights = np.concatenate(list(self._chunks()))

    def _chunks(self) -> list[np.ndarray]:
        """B x T weights: each replicate draws T tasks uniformly with replacement (a
        multinomial count per task, built with one bincount per chunk of replicates)."""
        out = []
        rng = np.random.default_rng(self.seed)
        t = self.n_tasks
        step = max(1, min(self.replicates, 1_000_000 // max(t, 1)))
        done = 0
        while done < self.replicates:
            size = min(step, self.replicates - done)
            if t == 0:
                out.append(np.zeros((size, 0), dtype=np.float32))
            else:
                offsets = np.arange(size, dtype=np.int64)[:, None] * t
                draws = rng.integers(0, t, size=(size, t), dtype=np.int64) + offsets
                counts = np.bincount(draws.ravel(), minlength=size * t)
                out.append(counts.reshape(size, t).astype(np.float32))
            done += size
        return out

    def sums(self, task_sums: np.ndarray) -> np.ndarray:
        """B x K replicated totals of per-task sums (T x K)."""
        s = np.asarray(task_sums, dtype=np.float64)
        if self.n_tasks == 0:
            return np.zeros((self.replicates, s.shape[1]))
        if self._weights is not None:
            return (self._weights @ s.astype(np.float32)).astype(np.float64)
        return np.concatenate(
            [(w @ s.astype(np.float32)).astype(np.float64) for w in self._chunks()]
        )


def per_task_sums(task: np.ndarray, n_tasks: int, values: np.ndarray) -> np.ndarray:
    """T x K sums of per-attempt values (n x K) by task code (sorted once, summed by block)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    out = np.zeros((n_tasks, values.shape[1]))
    if len(task) == 0:
        return out
    task = np.asarray(task)
    order = np.argsort(task, kind="stable")
    ordered = task[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    out[ordered[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


def percentile_ci(
    reps: np.ndarray, conf: float = 0.95, max_undefined: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of B x K replicates. Replicates where the statistic is
    undefined (nan) are left out; a column with more than `max_undefined` of them gets nan.
    Infinite values are kept (a ratio whose reference prevalence is 0 in a replicate)."""
    reps = np.asarray(reps, dtype=float)
    if reps.ndim == 1:
        reps = reps[:, None]
    alpha = (1 - conf) / 2
    k = reps.shape[1]
    lo = np.full(k, np.nan)
    hi = np.full(k, np.nan)
    if reps.shape[0] == 0 or k == 0:
        return lo, hi
    ordered = np.sort(reps, axis=0)  # nan sorts last
    defined = np.sum(~np.isnan(reps), axis=0)
    ok = (defined > 0) & (defined >= (1 - max_undefined) * reps.shape[0])
    last = np.maximum(defined - 1, 0)
    low = np.floor(alpha * last).astype(int)
    high = np.ceil((1 - alpha) * last).astype(int)
    cols = np.arange(k)
    lo[ok] = ordered[low, cols][ok]
    hi[ok] = ordered[high, cols][ok]
    return lo, hi


def bootstrap_p(reps: np.ndarray, null: float) -> np.ndarray:
    """Two-sided bootstrap p-value for `statistic == null`: twice the smaller share of
    replicates on either side of the null (with the usual +1 correction)."""
    reps = np.asarray(reps, dtype=float)
    if reps.ndim == 1:
        reps = reps[:, None]
    defined = np.sum(~np.isnan(reps), axis=0)
    with np.errstate(invalid="ignore"):
        below = (np.sum(reps <= null, axis=0) + 1) / (defined + 1)
        above = (np.sum(reps >= null, axis=0) + 1) / (defined + 1)
    return np.where(defined > 0, np.minimum(1.0, 2 * np.minimum(below, above)), np.nan)


@dataclass
class Estimate:
    value: float
    lo: float
    hi: float
    p: float
    n: int  # units the estimate rests on (tasks)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "value": _clean(self.value),
            "lo": _clean(self.lo),
            "hi": _clean(self.hi),
            "p": _clean(self.p),
            "n": self.n,
        }


def _clean(x: float) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if isinstance(x, float) and math.isinf(x):
        return x  # rendered as "inf"; JSON writers turn it into a string
    return float(x)


NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan, math.nan, 0)


def mantel_haenszel(tables: np.ndarray) -> Estimate:
    """Pooled odds ratio over strata (K x 2 x 2: [[exposed&event, exposed&no event],
    [unexposed&event, unexposed&no event]]) with the Robins-Breslow-Greenland 95% interval and
    the CMH test; strata without both rows and both columns carry no information and are left
    out (n = informative strata)."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    t = np.asarray(tables, dtype=float)
    if t.size == 0:
        return NAN_ESTIMATE
    rows_ok = (t[:, 0, :].sum(axis=1) > 0) & (t[:, 1, :].sum(axis=1) > 0)
    cols_ok = (t[:, :, 0].sum(axis=1) > 0) & (t[:, :, 1].sum(axis=1) > 0)
    t = t[rows_ok & cols_ok]
    if len(t) == 0:
        return NAN_ESTIMATE
    num = np.sum(t[:, 0, 0] * t[:, 1, 1] / t.sum(axis=(1, 2)))
    den = np.sum(t[:, 0, 1] * t[:, 1, 0] / t.sum(axis=(1, 2)))
    if num == 0 or den == 0:
        value = 0.0 if num == 0 and den > 0 else (math.inf if den == 0 and num > 0 else math.nan)
        return Estimate(value, math.nan, math.nan, math.nan, len(t))
    st = StratifiedTable(np.moveaxis(t, 0, 2))
    lo, hi = st.oddsratio_pooled_confint()
    p = st.test_null_odds(correction=False).pvalue
    return Estimate(float(st.oddsratio_pooled), float(lo), float(hi), float(p), len(t))


def mean_difference(diffs: np.ndarray) -> Estimate:
    """Mean of per-task differences with a t interval and a one-sample t test."""
    d = np.asarray(diffs, dtype=float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return Estimate(
            float(d.mean()) if len(d) else math.nan, math.nan, math.nan, math.nan, len(d)
        )
    if np.all(d == d[0]):
        return Estimate(float(d[0]), float(d[0]), float(d[0]), 1.0 if d[0] == 0 else 0.0, len(d))
    res = _st.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(0.95)
    return Estimate(float(d.mean()), float(ci.low), float(ci.high), float(res.pvalue), len(d))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH adjusted p-values (q); nan entries are not in the family and stay nan."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = _st.false_discovery_control(p[ok], method="bh")
    return q


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value: discordant pairs b (A only) and c (B only)."""
    from statsmodels.stats.contingency_tables import mcnemar

    if b + c == 0:
        return 1.0
    return float(mcnemar(np.array([[0, b], [c, 0]]), exact=True).pvalue)


def rogan_gladen(
    p: np.ndarray | float, sensitivity: np.ndarray | float, specificity: np.ndarray | float
) -> np.ndarray:
    """True prevalence from an apparent one: (p + Sp - 1) / (Se + Sp - 1), clipped to [0, 1];
    nan where the judge is no better than chance (Se + Sp <= 1)."""
    p = np.asarray(p, dtype=float)
    se = np.asarray(sensitivity, dtype=float)
    sp = np.asarray(specificity, dtype=float)
    j = se + sp - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(j > 0, (p + sp - 1) / j, np.nan)
    return np.clip(out, 0, 1)


def classify_agreement(raw: Estimate, within: Estimate, null: float) -> str:
    """How a raw estimate and a within-task one relate (both as intervals around `null`):
    agree, reverses (opposite sides, one interval excludes the null), vanishes within task
    (raw excludes the null, within does not), appears within task, or n/a."""
    if any(math.isnan(x) for x in (raw.value, within.value)):
        return "n/a"

    def side(e: Estimate) -> int:
        if not math.isnan(e.lo) and e.lo > null:
            return 1
        if not math.isnan(e.hi) and e.hi < null:
            return -1
        return 0

    rs, ws = side(raw), side(within)
    if rs and ws:
        return "agree" if rs == ws else "reverses"
    unbounded = (
        math.isnan(within.lo)
        or math.isnan(within.hi)
        or math.isinf(within.hi)
        or (null == 1.0 and within.lo <= 0)
        or math.isinf(within.lo)
    )
    if rs and unbounded:
        return "not estimable within task"
    if rs:
        return "vanishes within task"
    if ws:
        return "appears within task"
    return "agree"


def conditional_logit(
    event: np.ndarray, x: np.ndarray, covariates: np.ndarray | None, groups: np.ndarray
) -> Estimate:
    """Odds ratio of `event` per unit of `x` from conditional logistic regression stratified by
    `groups` (task fixed effects, conditioned away), adjusted for `covariates` (e.g. arm
    indicators); only groups with both outcomes inform it. Wald 95% interval and test."""
    import warnings

    from statsmodels.discrete.conditional_models import ConditionalLogit

    ok = ~np.isnan(x)
    event, x, groups = event[ok], x[ok], groups[ok]
    cov = covariates[ok] if covariates is not None else None
    both = np.zeros(int(groups.max()) + 1 if len(groups) else 0, dtype=bool)
    if len(groups):
        pos = np.bincount(groups, weights=event, minlength=len(both))
        cnt = np.bincount(groups, minlength=len(both))
        both = (pos > 0) & (pos < cnt)
    keep = both[groups] if len(groups) else np.zeros(0, dtype=bool)
    event, x, groups = event[keep], x[keep], groups[keep]
    n_groups = len(np.unique(groups))
    if n_groups < 2 or np.nanstd(x) == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, n_groups)
    design = x[:, None]
    if cov is not None:
        c = cov[keep]
        c = c[:, np.std(c, axis=0) > 0] if c.size else c
        if c.size:
            design = np.column_stack([x, c])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = ConditionalLogit(event, design, groups=groups).fit(disp=0)
        except (np.linalg.LinAlgError, ValueError):
            return Estimate(math.nan, math.nan, math.nan, math.nan, n_groups)
    beta = float(fit.params[0])
    lo, hi = (float(v) for v in fit.conf_int()[0])
    p = float(fit.pvalues[0])
    if not all(math.isfinite(v) for v in (beta, lo, hi)) or abs(beta) > 20:
        return Estimate(math.nan, math.nan, math.nan, math.nan, n_groups)
    # A bound past e^50 means the data cannot bound it (near separation): infinite.
    return Estimate(
        math.exp(beta),
        math.exp(max(lo, -50)) if lo > -50 else 0.0,
        math.exp(hi) if hi < 50 else math.inf,
        p,
        n_groups,
    )
