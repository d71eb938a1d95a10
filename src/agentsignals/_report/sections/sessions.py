"""Product sessions (interactive sessions a person steered; docs/sessions.md): how they ended,
their failure modes and attributions, and which signals go with accepted sessions versus the
others (abandoned, rejected, restarted).

* **outcomes, failure modes, attributions**: share of sessions with each value (Wilson), the
  undecided ones (a label the tree could not decide) counted apart with the inputs they lacked.
* **signals versus outcome**: per numeric session signal, the mean among accepted sessions
  minus the mean among the others, with a percentile bootstrap interval (sessions resampled
  within each group, seeded) and a two-sided bootstrap p, Benjamini-Hochberg adjusted across
  the signals. Sessions are not paired by task (a product session has no task id), so this is
  a between-session association, never an effect. Signals that define the outcome
  (output_applied, changes_reverted) are left out.

Sessions follow the attempt filters: with attempt records loaded, only the sessions of the
attempts that passed the filters are counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentsignals._report import stats
from agentsignals._report.base import Section
from agentsignals._report.context import Context
from agentsignals._report.sections.behaviour import _ci, _f, _pct
from agentsignals._report.sections.overview import rate

ACCEPTED = "accepted"
OUTCOMES = ("accepted", "abandoned_mid_session", "explicitly_rejected", "restarted_same_task")
UNDECIDED = "undecided"

# (column, what it is); `_value` reads each from a session record.
_SIGNALS: tuple[tuple[str, str], ...] = (
    ("user.user_turn_count", "user messages"),
    ("user.turn_ratio", "user messages / agent turns"),
    ("user.interrupts", "interrupts"),
    ("dynamics.correction_ratio", "correction ratio"),
    ("dynamics.user_msg_length_slope", "message length slope (words/message)"),
    ("user.tool_error_rate", "tool error rate"),
    ("dynamics.repetition_rate", "repetition rate (exact)"),
    ("user.agent_hedging_rate", "hedges per 100 words"),
    ("user.confirmation_requests", "confirmation requests"),
    ("user.region_re_edit_count", "regions re-edited"),
    ("oscillating_regions", "oscillating regions"),
    ("user.time_to_first_edit_s", "seconds to first edit"),
    ("compactions", "compactions"),
    ("model_changes", "model changes"),
    ("dynamics.max_cp", "max context pollution"),
    ("anticipation.assumption_count", "assumption phrases (first reasoning)"),
)


def _value(record: Any, column: str) -> float:
    user, dyn = record.user, record.dynamics
    if column == "oscillating_regions":
        trend = user.region_edit_convergence
        return np.nan if trend is None else float(sum(t == "oscillating" for t in trend))
    if column == "compactions":
        return np.nan if user.compaction_events is None else float(len(user.compaction_events))
    if column == "model_changes":
        return np.nan if user.model_changes is None else float(len(user.model_changes))
    group, _, name = column.partition(".")
    value = getattr(
        {"user": user, "dynamics": dyn, "anticipation": record.anticipation}[group], name
    )
    if value is None or isinstance(value, list | str):
        return np.nan
    return float(value)


def _shares(values: list[str], order: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    n = len(values)
    names = [*order, *sorted(set(values) - set(order) - {UNDECIDED})]
    if UNDECIDED in values:
        names.append(UNDECIDED)
    return [{"value": v, **rate(values.count(v), n)} for v in names if v in values or v in order]


def _missing(records: list[Any], attr: str) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for r in records:
        for name in attr_of(r, attr) or ():
            counts[name] = counts.get(name, 0) + 1
    return [{"input": k, "sessions": v} for k, v in sorted(counts.items(), key=lambda x: -x[1])]


def attr_of(record: Any, dotted: str) -> Any:
    group, _, name = dotted.partition(".")
    return getattr(getattr(record, group), name)


def _difference(
    a: np.ndarray, b: np.ndarray, replicates: int, rng: np.random.Generator
) -> stats.Estimate:
    """mean(a) - mean(b), sessions resampled within each group."""
    value = float(a.mean() - b.mean())
    ia = rng.integers(0, len(a), size=(replicates, len(a)))
    ib = rng.integers(0, len(b), size=(replicates, len(b)))
    reps = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    lo, hi = stats.percentile_ci(reps)
    # Two-sided: where 0 (no difference) falls among the replicates.
    p = stats.bootstrap_p(reps, 0.0)
    return stats.Estimate(value, float(lo[0]), float(hi[0]), float(p[0]), len(a) + len(b))


class Sessions(Section):
    id = "sessions"
    title = "Product sessions"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        records = list(ctx.options.sessions)
        if not records:
            return None
        if ctx.n and "attempt_id" in ctx.frame.columns:
            kept = {str(a) for a in ctx.text("attempt_id") if a is not None}
            records = [r for r in records if r.attempt_id in kept]
            if not records:
                return None
        outcomes = [r.user.session_outcome or UNDECIDED for r in records]
        modes = [r.dynamics.session_failure_mode or UNDECIDED for r in records]
        attributions = [r.anticipation.session_attribution or UNDECIDED for r in records]
        accepted = np.array([o == ACCEPTED for o in outcomes])
        decided = np.array([o != UNDECIDED for o in outcomes])
        opts = ctx.options
        rng = np.random.default_rng(opts.seed)
        rows: list[dict[str, Any]] = []
        enough = (
            int((accepted & decided).sum()) >= opts.min_per_outcome
            and int((~accepted & decided).sum()) >= opts.min_per_outcome
        )
        for column, label in _SIGNALS:
            values = np.array([_value(r, column) for r in records], dtype=float)
            known = ~np.isnan(values) & decided
            a = values[known & accepted]
            b = values[known & ~accepted]
            row: dict[str, Any] = {
                "signal": column,
                "label": label,
                "known": int(known.sum()),
                "mean_accepted": _f(a.mean()) if len(a) else None,
                "mean_other": _f(b.mean()) if len(b) else None,
                "difference": None,
            }
            if enough and len(a) >= opts.min_per_outcome and len(b) >= opts.min_per_outcome:
                row["difference"] = _difference(a, b, opts.replicates, rng).as_dict()
            rows.append(row)
        tested = [
            r for r in rows if r["difference"] is not None and r["difference"]["p"] is not None
        ]
        if tested:
            adjusted = stats.benjamini_hochberg(np.array([r["difference"]["p"] for r in tested]))
            for r, q in zip(tested, adjusted, strict=True):
                r["q"] = _f(q)
        return {
            "sessions": len(records),
            "agents": sorted({r.agent for r in records if r.agent}),
            "outcomes": _shares(outcomes, OUTCOMES),
            "failure_modes": _shares(modes),
            "failure_mode_missing": _missing(records, "dynamics.session_failure_mode_missing"),
            "attributions": _shares(attributions),
            "attribution_missing": _missing(records, "anticipation.session_attribution_missing"),
            "signals": rows,
            "compared": enough,
            "min_per_outcome": opts.min_per_outcome,
        }

    def markdown(self, result: dict[str, Any]) -> list[str]:
        shares = ", ".join(f"{o['value']} {_pct(o['rate'])}" for o in result["outcomes"] if o["k"])
        out = [f"- {result['sessions']} product sessions: {shares}"]
        decided = [m for m in result["failure_modes"] if m["value"] != UNDECIDED and m["k"]]
        undecided = next((m for m in result["failure_modes"] if m["value"] == UNDECIDED), None)
        if decided:
            out.append(
                "- failure modes: " + ", ".join(f"{m['value']} {_pct(m['rate'])}" for m in decided)
            )
        if undecided is not None and undecided["k"]:
            lacking = ", ".join(m["input"] for m in result["failure_mode_missing"][:3])
            out.append(
                f"- failure mode undecided for {undecided['k']} sessions (lacking {lacking})"
            )
        for r in result["signals"]:
            d = r["difference"]
            if d is not None and r.get("q") is not None and r["q"] < 0.05:
                out.append(f"- {r['label']}: accepted minus others {_ci(d)} (q={r['q']:.3g})")
        if not result["compared"]:
            out.append(
                f"- Too few accepted or other sessions (fewer than {result['min_per_outcome']}) "
                "to compare signals by outcome."
            )
        return out


SECTION = Sessions()
