"""The report's plots: matplotlib figures rendered to inline SVG (text kept as text, no
external fonts or scripts, so the HTML stays one offline file). Figures are built on
`matplotlib.figure.Figure` directly (no pyplot state), with links on row labels where a row
has a place in the page to go to."""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np

RESOLVED = "#2a9d8f"
FAILED = "#e76f51"
RAW = "#8d99ae"
WITHIN = "#1d3557"
LABEL_COLORS = {
    "correct_patch": "#2a9d8f",
    "partial_patch": "#e9c46a",
    "regressive_patch": "#9b2226",
    "no_effect_patch": "#f4a261",
    "unverifiable": "#adb5bd",
    "(no label)": "#e9ecef",
}
MAX_FOREST_ROWS = 40


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("svg", force=False)
    from matplotlib.figure import Figure

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",
            "font.family": "sans-serif",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "svg.hashsalt": "agentsignals",
        }
    )
    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any, label: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # Accessible name, and a class the page and the browser test find plots by.
    return text.replace("<svg ", f'<svg class="plot" role="img" aria-label="{_escape(label)}" ', 1)


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def anchor(signal: str) -> str:
    return "row-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", signal).strip("-")


def resolve_rates(arms: list[dict[str, Any]]) -> str:
    labels = [a["arm"] for a in arms]
    fig = _figure(7.5, 0.55 * len(arms) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(arms))
    has_retries = any(a["retries"]["n"] for a in arms)
    height = 0.38 if has_retries else 0.6
    series = [("attempt 1", "first", RESOLVED, 0.0)]
    if has_retries:
        series.append(("retries", "retries", "#457b9d", height))
    for name, key, color, offset in series:
        rate = np.array([a[key]["rate"] if a[key]["rate"] is not None else np.nan for a in arms])
        lo = np.array([a[key]["lo"] if a[key]["lo"] is not None else np.nan for a in arms])
        hi = np.array([a[key]["hi"] if a[key]["hi"] is not None else np.nan for a in arms])
        ax.barh(y + offset, rate * 100, height=height, color=color, label=name, alpha=0.85)
        ax.errorbar(
            rate * 100,
            y + offset,
            xerr=[(rate - lo) * 100, (hi - rate) * 100],
            fmt="none",
            ecolor="#222",
            capsize=3,
            lw=1,
        )
        for yi, r, n in zip(y + offset, rate, [a[key]["n"] for a in arms], strict=True):
            if not math.isnan(r):
                ax.text(
                    min(r * 100 + 1, 96), yi, f"{100 * r:.1f}% (n={n})", va="center", fontsize=8
                )
    ax.set_yticks(y + (height / 2 if has_retries else 0), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("resolved, % of attempts with an outcome (95% Wilson interval)")
    ax.set_title("Resolve rate by agent · model · dataset")
    if has_retries:
        ax.legend(loc="lower right", frameon=False)
    return _svg(fig, "Resolve rate by agent, model and dataset")


def label_bars(arms: list[dict[str, Any]], labels: tuple[str, ...]) -> str:
    fig = _figure(7.5, 0.5 * len(arms) + 1.5)
    ax = fig.add_subplot()
    y = np.arange(len(arms))
    left = np.zeros(len(arms))
    keys = [*labels, "(no label)"]
    for key in keys:
        counts = np.array([a["labels"].get(key, 0) for a in arms], dtype=float)
        total = np.array([max(a["attempts"], 1) for a in arms], dtype=float)
        share = 100 * counts / total
        if not counts.any():
            continue
        ax.barh(y, share, left=left, color=LABEL_COLORS[key], label=key, height=0.6)
        for yi, lft, s, c in zip(y, left, share, counts, strict=True):
            if s >= 6:
                ax.text(lft + s / 2, yi, f"{int(c)}", ha="center", va="center", fontsize=8)
        left += share
    ax.set_yticks(y, [a["arm"] for a in arms])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of attempts")
    ax.set_title("Patch outcome labels")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
    return _svg(fig, "Patch outcome labels by arm")


def localization_bars(arms: list[dict[str, Any]], names: dict[str, str]) -> str:
    shown = [a for a in arms if a["localization_known"]]
    fig = _figure(7.5, 0.5 * len(shown) + 1.5)
    ax = fig.add_subplot()
    y = np.arange(len(shown))
    left = np.zeros(len(shown))
    colors = ["#6c757d", "#e9c46a", "#e76f51"]
    for (key, name), color in zip(names.items(), colors, strict=True):
        counts = np.array([a["localization"][key] for a in shown], dtype=float)
        total = np.array([a["localization_known"] for a in shown], dtype=float)
        share = 100 * counts / total
        ax.barh(y, share, left=left, color=color, label=name, height=0.6)
        for yi, lft, s, c in zip(y, left, share, counts, strict=True):
            if s >= 8:
                ax.text(lft + s / 2, yi, f"{int(c)}", ha="center", va="center", fontsize=8)
        left += share
    ax.set_yticks(y, [f"{a['arm']} (n={a['localization_known']})" for a in shown])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of failed attempts whose task has a gold patch")
    ax.set_title("Never found the right file, or found it and wrote the wrong fix")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    return _svg(fig, "Localization of failed attempts")


def _clip(values: np.ndarray | list[float], lo: float, hi: float) -> np.ndarray:
    v = np.array(values, dtype=float)
    v = np.where(np.isnan(v), np.nan, np.clip(v, lo, hi))
    return v


def forest_odds(rows: list[dict[str, Any]], adjusted: bool = False) -> str:
    rows = rows[:MAX_FOREST_ROWS]
    n = len(rows)
    fig = _figure(8.5, 0.28 * n + 1.6)
    ax = fig.add_subplot()
    y = np.arange(n)
    lo_lim, hi_lim = 1 / 64, 64.0
    for key, color, offset, label, marker in (
        ("raw", RAW, -0.17, "raw (all attempts; bootstrap over tasks)", "o"),
        (
            "within",
            WITHIN,
            0.17,
            "within task, adjusted for agent (conditional logit)"
            if adjusted
            else "within task (Mantel-Haenszel)",
            "D",
        ),
    ):
        est = _clip([_val(r[key]["value"]) for r in rows], lo_lim, hi_lim)
        lo = _clip([_val(r[key]["lo"]) for r in rows], lo_lim, hi_lim)
        hi = _clip([_val(r[key]["hi"]) for r in rows], lo_lim, hi_lim)
        ok = ~np.isnan(est)
        ax.hlines(
            y[ok] + offset,
            np.where(np.isnan(lo[ok]), est[ok], lo[ok]),
            np.where(np.isnan(hi[ok]), est[ok], hi[ok]),
            color=color,
            lw=1.4,
        )
        ax.plot(
            est[ok],
            y[ok] + offset,
            marker,
            color=color,
            ms=4.5,
            label=label,
            mfc="white" if key == "raw" else color,
            linestyle="none",
        )
    ax.axvline(1, color="#333", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlim(lo_lim, hi_lim)
    ax.set_yticks(y, [""] * n)
    for yi, r in zip(y, rows, strict=True):
        t = ax.text(
            -0.01,
            yi,
            _short(r["signal"]),
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=8,
            color="#9b2226" if r.get("verdict") in ("reverses", "vanishes within task") else "#111",
        )
        t.set_url("#" + anchor(r["signal"]))
    ax.invert_yaxis()
    ax.set_xlabel("odds ratio of failure with the signal (log scale; > 1: goes with failure)")
    ax.set_title("Behaviour versus failure: raw and within-task odds ratios, 95% intervals")
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08 - 1.2 / max(n, 4) / 1.5),
        ncol=2,
        frameon=False,
    )
    return _svg(fig, "Forest plot of odds ratios, raw and within task")


def forest_numeric(rows: list[dict[str, Any]]) -> str:
    rows = rows[:MAX_FOREST_ROWS]
    n = len(rows)
    fig = _figure(8.5, 0.28 * n + 1.6)
    ax = fig.add_subplot()
    y = np.arange(n)
    for key, color, offset, label, marker in (
        ("raw", RAW, -0.17, "raw (bootstrap over tasks)", "o"),
        ("within", WITHIN, 0.17, "within task (mean over tasks)", "D"),
    ):
        vals = np.array([[_val(v) for v in r["standardized"][key]] for r in rows])
        est, lo, hi = vals[:, 0], vals[:, 1], vals[:, 2]
        est, lo, hi = (_clip(v, -2, 2) for v in (est, lo, hi))
        ok = ~np.isnan(est)
        ax.hlines(
            y[ok] + offset,
            np.where(np.isnan(lo[ok]), est[ok], lo[ok]),
            np.where(np.isnan(hi[ok]), est[ok], hi[ok]),
            color=color,
            lw=1.4,
        )
        ax.plot(
            est[ok],
            y[ok] + offset,
            marker,
            color=color,
            ms=4.5,
            label=label,
            mfc="white" if key == "raw" else color,
            linestyle="none",
        )
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlim(-2, 2)
    ax.set_yticks(y, [""] * n)
    for yi, r in zip(y, rows, strict=True):
        t = ax.text(
            -0.01,
            yi,
            _short(r["signal"]),
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=8,
            color="#9b2226" if r.get("verdict") in ("reverses", "vanishes within task") else "#111",
        )
        t.set_url("#" + anchor(r["signal"]))
    ax.invert_yaxis()
    ax.set_xlabel(
        "failed minus resolved, in standard deviations of the signal (> 0: higher "
        "in failed attempts)"
    )
    ax.set_title("Numeric signals: raw and within-task differences, 95% intervals")
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08 - 1.2 / max(n, 4) / 1.5),
        ncol=2,
        frameon=False,
    )
    return _svg(fig, "Forest plot of numeric differences, raw and within task")


def distributions(rows: list[dict[str, Any]]) -> str:
    n = len(rows)
    cols = 3
    nrows = math.ceil(n / cols)
    fig = _figure(8.5, 1.6 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, rows, strict=False):
        boxes = []
        for key, name in (("resolved", "resolved"), ("failed", "failed")):
            s = r[key]
            if not s["n"]:
                continue
            q5, q25, q50, q75, q95 = s["q"]
            boxes.append(
                {
                    "label": f"{name}\nn={s['n']}",
                    "whislo": q5,
                    "q1": q25,
                    "med": q50,
                    "q3": q75,
                    "whishi": q95,
                    "mean": s["mean"],
                    "fliers": [],
                }
            )
        if not boxes:
            continue
        artists = ax.bxp(
            boxes, orientation="horizontal", showmeans=True, patch_artist=True, widths=0.55
        )
        for patch, color in zip(artists["boxes"], (RESOLVED, FAILED), strict=False):
            patch.set_facecolor(color)
            patch.set_alpha(0.55)
        lows = [b["whislo"] for b in boxes]
        highs = [b["whishi"] for b in boxes]
        if min(lows) > 0 and max(highs) / max(min(lows), 1e-12) > 50:
            ax.set_xscale("log")
        ax.set_title(_short(r["signal"], 38), fontsize=8.5)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        "Distributions by outcome (box: quartiles, whiskers: 5th-95th percentile, triangle: mean)",
        fontsize=9,
    )
    return _svg(fig, "Distributions of numeric signals by outcome")


def paired_rates(pairs: list[dict[str, Any]]) -> str:
    n = len(pairs)
    fig = _figure(7.5, 1.3 * n + 1.0)
    axes = fig.subplots(n, 1, squeeze=False)
    for ax, p in zip(axes[:, 0], pairs, strict=True):
        bars = [
            (f"A on all its tasks ({p['a_all']['tasks']})", p["a_all"], "#a8dadc"),
            (f"A on the {p['shared_tasks']} shared tasks", p["a_shared"], "#457b9d"),
            (f"B on the {p['shared_tasks']} shared tasks", p["b_shared"], "#e76f51"),
            (f"B on all its tasks ({p['b_all']['tasks']})", p["b_all"], "#f4a261"),
        ]
        y = np.arange(len(bars))
        for yi, (_, r, color) in zip(y, bars, strict=True):
            rate = r["rate"] if r.get("rate") is not None else np.nan
            ax.barh(yi, 100 * rate, color=color, height=0.65)
            if r.get("lo") is not None:
                ax.errorbar(
                    100 * rate,
                    yi,
                    xerr=[[100 * (rate - r["lo"])], [100 * (r["hi"] - rate)]],
                    fmt="none",
                    ecolor="#222",
                    capsize=3,
                    lw=1,
                )
            ax.text(min(100 * rate + 1, 92), yi, f"{100 * rate:.1f}%", va="center", fontsize=8)
        ax.set_yticks(y, [b[0] for b in bars])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        d = p["difference"]
        ax.set_title(
            f"A = {_short(p['a'], 40)}  vs  B = {_short(p['b'], 40)}: paired difference "
            f"{100 * d['value']:+.1f} pp [{100 * _val(d['lo']):+.1f}, {100 * _val(d['hi']):+.1f}]",
            fontsize=8.5,
        )
    axes[-1, 0].set_xlabel("resolved, % (95% Wilson interval)")
    return _svg(fig, "Paired comparison of resolve rates on shared tasks")


def origin_heatmaps(heat: np.ndarray, baseline: np.ndarray, phases: list[str]) -> str:
    fig = _figure(8.5, 2.9)
    axes = fig.subplots(1, 2, sharey=True)
    vmax = max(float(heat.max()), float(baseline.max()), 1.0)
    bins = heat.shape[1]
    for ax, data, title in (
        (axes[0], heat, "first wrong step (failed attempts, as the judge placed it)"),
        (axes[1], baseline, "baseline: a uniformly random step of each attempt"),
    ):
        im = ax.imshow(data, aspect="auto", cmap="Reds", vmin=0, vmax=vmax)
        for (i, j), v in np.ndenumerate(data):
            if v >= 0.05:
                ax.text(
                    j,
                    i,
                    f"{v:.0f}" if float(v).is_integer() or v >= 10 else f"{v:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > vmax * 0.6 else "#222",
                )
        ax.set_xticks(range(bins), [f"{int(100 * k / bins)}" for k in range(bins)], fontsize=7)
        ax.set_xlabel("relative position of the step (%: 0 first, 100 last)")
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(phases)), phases)
    fig.colorbar(im, ax=axes, shrink=0.8, label="attempts")
    return _svg(fig, "Heatmap of where failures originate, with baseline")


def _val(x: Any) -> float:
    if x is None:
        return math.nan
    return float(x)


def _short(s: str, width: int = 46) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"
