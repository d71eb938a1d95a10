"""The report's statistics against independent computations on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("statsmodels", reason="the report extra is not installed")

from agentsignals._report import stats
from agentsignals._report.build import build_report
from agentsignals._report.context import Options
from agentsignals._report.sources import from_records


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score).
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_published_reference_values(k: int, n: int, lo: float, hi: float) -> None:
    got_lo, got_hi = stats.wilson(k, n)
    assert float(got_lo) == pytest.approx(lo, abs=5e-5)
    assert float(got_hi) == pytest.approx(hi, abs=5e-5)


def test_wilson_matches_statsmodels_vectorized() -> None:
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(1)
    n = rng.integers(1, 500, 200)
    k = rng.integers(0, n + 1)
    lo, hi = stats.wilson(k, n)
    ref_lo, ref_hi = proportion_confint(k, n, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, atol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, atol=1e-12)


def test_task_bootstrap_interval_of_a_mean_matches_the_normal_reference() -> None:
    # One attempt per task: the bootstrap SE of a mean is sd/sqrt(n).
    rng = np.random.default_rng(2)
    x = rng.normal(10, 3, 400)
    boot = stats.TaskBootstrap(400, 4000, seed=5)
    reps = boot.sums(np.stack([x, np.ones(400)], axis=1))
    lo, hi = stats.percentile_ci(reps[:, 0] / reps[:, 1])
    se = x.std(ddof=0) / math.sqrt(400)
    assert lo[0] == pytest.approx(x.mean() - 1.96 * se, abs=0.12 * se)
    assert hi[0] == pytest.approx(x.mean() + 1.96 * se, abs=0.12 * se)


def test_task_bootstrap_widens_for_attempts_of_one_task_that_move_together() -> None:
    # 100 tasks x 9 identical attempts: the information is 100 tasks, not 900 attempts, so the
    # interval is 3x (sqrt 9) the one an attempt-level bootstrap would give.
    rng = np.random.default_rng(3)
    per_task = rng.integers(0, 2, 100).astype(float)
    boot = stats.TaskBootstrap(100, 4000, seed=1)
    sums = np.stack([per_task * 9, np.full(100, 9.0)], axis=1)
    reps = boot.sums(sums)
    lo, hi = stats.percentile_ci(reps[:, 0] / reps[:, 1])
    p = per_task.mean()
    assert hi[0] - lo[0] == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / 100), rel=0.12)


def test_bootstrap_is_reproducible_and_chunked_equals_cached() -> None:
    s = np.random.default_rng(0).random((50, 3))
    a = stats.TaskBootstrap(50, 500, seed=7).sums(s)
    b = stats.TaskBootstrap(50, 500, seed=7).sums(s)
    np.testing.assert_array_equal(a, b)
    big = stats.TaskBootstrap(50, 500, seed=7)
    big._weights = None  # force the regenerate-in-chunks path
    np.testing.assert_allclose(big.sums(s), a, rtol=1e-5)


def _mh_by_hand(tables: np.ndarray) -> float:
    n = tables.sum(axis=(1, 2))
    return float(
        np.sum(tables[:, 0, 0] * tables[:, 1, 1] / n)
        / np.sum(tables[:, 0, 1] * tables[:, 1, 0] / n)
    )


def _simulate_confounded(seed: int = 0, tasks: int = 400, per_task: int = 6) -> list[dict]:
    """Hard tasks make the flag common and failure likely; within a task the flag *halves* the
    odds of failure. The raw comparison says the flag goes with failure; the truth is the
    opposite."""
    rng = np.random.default_rng(seed)
    records = []
    for t in range(tasks):
        difficulty = rng.normal(0, 2)
        p_flag = 1 / (1 + math.exp(-1.5 * difficulty))
        for a in range(per_task):
            flag = rng.random() < p_flag
            logit = difficulty + (math.log(0.5) if flag else 0.0)
            failed = rng.random() < 1 / (1 + math.exp(-logit))
            turns = 60 + 6 * difficulty + (-4 if failed else 0) + rng.normal(0, 2)
            records.append(
                {
                    "attempt_id": f"a{t}-{a}",
                    "trial_id": f"t{t}-{a}",
                    "task_id": f"task-{t}",
                    "attempt_index": 0,
                    "treatment": {"agent_type": "sim", "model_id": "m"},
                    "behavior": {"stuck_loop": bool(flag), "turn_count": turns},
                    "verification": {"reward": 0.0 if failed else 1.0},
                }
            )
    return records


def test_planted_within_task_effect_the_raw_ratio_gets_wrong() -> None:
    report = build_report(from_records(_simulate_confounded()), Options(replicates=1000))
    beh = report.result("behaviour")
    assert beh is not None
    row = next(r for r in beh["rows"] if r["signal"] == "behavior.stuck_loop")
    # Raw: the flag looks like a failure marker.
    assert row["raw"]["lo"] > 1 and row["ratio"]["lo"] > 1
    # Within task: the planted odds ratio 0.5 is recovered, and it excludes 1.
    assert row["within"]["lo"] < 0.5 < row["within"]["hi"] < 1
    assert row["verdict"] == "reverses"
    # Numbers: failed runs are longer overall (hard tasks) but 4 turns shorter within a task.
    turns = next(r for r in beh["numeric"] if r["signal"] == "behavior.turn_count")
    assert turns["raw"]["lo"] > 0
    assert turns["within"]["lo"] < -4 < turns["within"]["hi"] < 0
    assert turns["verdict"] == "reverses"


def test_mantel_haenszel_against_hand_formula_and_conditional_logit() -> None:
    records = _simulate_confounded(seed=4, tasks=300, per_task=4)
    flag = np.array([r["behavior"]["stuck_loop"] for r in records], dtype=float)
    fail = np.array([r["verification"]["reward"] == 0 for r in records], dtype=float)
    task = np.repeat(np.arange(300), 4)
    tables = np.zeros((300, 2, 2))
    for t, x, f in zip(task, flag, fail, strict=True):
        tables[t, 0 if x else 1, 0 if f else 1] += 1
    est = stats.mantel_haenszel(tables)
    informative = tables[
        (tables.sum(axis=2) > 0).all(axis=1) & (tables.sum(axis=1) > 0).all(axis=1)
    ]
    assert est.value == pytest.approx(_mh_by_hand(informative), rel=1e-12)
    assert est.n == len(informative)
    cl = stats.conditional_logit(fail, flag, None, task)
    assert cl.value == pytest.approx(est.value, rel=0.15)
    assert est.lo < est.value < est.hi


def test_benjamini_hochberg_by_the_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.5])
    q = stats.benjamini_hochberg(p)
    # Sorted p (m=5): 0.005, 0.01, 0.03, 0.04, 0.5 -> p*m/rank, then running minimum from the top.
    expected = {0.005: 0.025, 0.01: 0.025, 0.03: 0.05, 0.04: 0.05, 0.5: 0.5}
    for pv, qv in zip(p, q, strict=True):
        if math.isnan(pv):
            assert math.isnan(qv)
        else:
            assert qv == pytest.approx(expected[pv])


def test_mcnemar_exact_equals_the_binomial_test() -> None:
    from scipy.stats import binomtest

    assert stats.mcnemar_exact(82, 7) == pytest.approx(binomtest(7, 89, 0.5).pvalue)
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_rogan_gladen() -> None:
    assert float(stats.rogan_gladen(0.3, 0.9, 0.8)) == pytest.approx(0.1 / 0.7)
    assert float(stats.rogan_gladen(0.05, 0.9, 0.8)) == 0.0  # clipped
    assert math.isnan(float(stats.rogan_gladen(0.3, 0.5, 0.5)))  # a coin-flip judge


def test_agreement_classes() -> None:
    e = stats.Estimate
    assert stats.classify_agreement(e(2, 1.5, 3, 0, 9), e(0.5, 0.3, 0.8, 0, 9), 1) == "reverses"
    assert stats.classify_agreement(e(2, 1.5, 3, 0, 9), e(1.2, 0.8, 1.9, 0, 9), 1) == (
        "vanishes within task"
    )
    assert stats.classify_agreement(e(2, 1.5, 3, 0, 9), e(9, 0.0, math.inf, 0, 9), 1) == (
        "not estimable within task"
    )
    assert stats.classify_agreement(e(1.1, 0.8, 1.3, 0, 9), e(2, 1.2, 3, 0, 9), 1) == (
        "appears within task"
    )
