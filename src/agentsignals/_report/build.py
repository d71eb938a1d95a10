"""From columns to a report: filters, then every section, then HTML, JSON and Markdown."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from agentsignals._report.context import Context, Options
from agentsignals._report.frame import (
    BOOL,
    NUM,
    STR,
    TIMELINE,
    Frame,
    in_attempt_order,
    isnull,
)
from agentsignals._report.sections import Section, default_sections

FORMAT = "agentsignals.report/v1"
# Where the records keep the resource attributes the producer set (the tags `--tag` reads).
RESOURCE = "resource_attributes"


class FilterError(ValueError):
    pass


@dataclass
class Report:
    options: Options
    sections: list[tuple[Section, dict[str, Any]]]
    context: Context
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def result(self, section_id: str) -> dict[str, Any] | None:
        return next((r for s, r in self.sections if s.id == section_id), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json_safe(
            {
                "format": FORMAT,
                "title": self.options.title,
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "filters": self.options.filters,
                "population": self.options.attempts,
                "strata": self.options.strata,
                "replicates": self.options.replicates,
                "seed": self.options.seed,
                "calibration": None
                if self.options.calibration is None
                else {
                    "source": self.options.calibration.source,
                    "format": self.options.calibration.format,
                    "judge": self.options.calibration.judge,
                    "fields": sorted(self.options.calibration.fields),
                    "models": self.options.calibration.models,
                    "unusable": self.options.calibration.unusable,
                },
                "notes": self.notes,
                "problems": [str(p) for p in self.context.frame.problems],
                "sections": {s.id: r for s, r in self.sections},
            }
        )
        return out

    def write_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        return p

    def markdown(self) -> str:
        lines = [f"# {self.options.title}", ""]
        if self.options.filters:
            lines += [
                "Filters: " + ", ".join(f"{k}={v}" for k, v in self.options.filters.items()),
                "",
            ]
        for note in self.notes:
            lines += [f"> {note}", ""]
        for section, result in self.sections:
            body = section.markdown(result)
            if not body:
                continue
            lines += [f"## {section.title}", "", *body, ""]
        return "\n".join(lines).rstrip() + "\n"

    def write_markdown(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.markdown(), encoding="utf-8")
        return p

    def html(self) -> str:
        return render_html(self)

    def write_html(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.html(), encoding="utf-8")
        return p


def apply_filters(frame: Frame, filters: dict[str, Any]) -> Frame:
    """Keep the rows that pass every filter: run_id, agent, model, dataset (glob patterns),
    tag (KEY=VALUE on the resource attributes), attempt_index ("0", "1-", "0,2", "1-3"),
    since/until (ISO time or Unix seconds), and `where` (a list of "column=value" pairs, value
    a glob for text)."""
    n = frame.n
    keep = np.ones(n, dtype=bool)

    def text(name: str) -> np.ndarray:
        col = frame.get(name)
        if col is None:
            return np.full(n, None, dtype=object)
        if col.dtype != object:
            out = np.empty(n, dtype=object)
            out[:] = [None if math.isnan(v) else _fmt_num(v) for v in col]
            return out
        return col

    def match(col: np.ndarray, patterns: list[str]) -> np.ndarray:
        """Rows whose value matches a pattern (each distinct value is matched once)."""
        out = np.zeros(n, dtype=bool)
        present = ~isnull(col)
        if not present.any():
            return out
        values, codes = np.unique(col[present].astype(str), return_inverse=True)
        hit = np.array(
            [any(fnmatch.fnmatchcase(str(v), p) for p in patterns) for v in values], dtype=bool
        )
        out[present] = hit[codes.reshape(-1)]
        return out

    for key, column in (
        ("run_id", "run_id"),
        ("agent", "treatment.agent_type"),
        ("model", "treatment.model_id"),
        ("dataset", "treatment.dataset"),
    ):
        value = filters.get(key)
        if value:
            keep &= match(text(column), list(value))
    tags = filters.get("tag")
    if tags:
        keep &= _tag_match(frame, list(tags), text, match)
    spec = filters.get("attempt_index")
    if spec:
        index = frame.get("attempt_index")
        if index is None:
            index = frame.get("infra.attempt_index")
        values = np.nan_to_num(index, nan=0.0) if index is not None else np.zeros(n)
        keep &= _index_match(values, spec)
    started = frame.get("started_at_ns")
    for key, op in (("since", np.greater_equal), ("until", np.less)):
        value = filters.get(key)
        if value is not None:
            bound = _time_ns(value)
            if started is None:
                raise FilterError(f"--{key}: the records have no start time")
            keep &= op(np.nan_to_num(started, nan=-1.0), bound) & ~np.isnan(started)
    for clause in filters.get("where") or []:
        name, sep, value = clause.partition("=")
        if not sep or not name:
            raise FilterError(f"--where {clause!r}: expected COLUMN=VALUE")
        name = name.strip()
        if name not in frame.columns:
            raise FilterError(f"--where {clause!r}: no column {name!r}")
        keep &= match(text(name), [value.strip()])
    if keep.all():
        return frame
    return frame.take(np.flatnonzero(keep))


def _tag_match(
    frame: Frame,
    tags: list[str],
    text: Any,
    match: Any,
) -> np.ndarray:
    """`--tag KEY=VALUE` (VALUE a glob; `KEY` alone: the tag is set) on the resource
    attributes the records carry (`resource_attributes.KEY`). Values given for one key match
    any of them; different keys must all match."""
    by_key: dict[str, list[str]] = {}
    for tag in tags:
        key, sep, value = str(tag).partition("=")
        key = key.strip()
        if not key:
            raise FilterError(f"--tag {tag!r}: expected KEY=VALUE")
        by_key.setdefault(key, []).append(value.strip() if sep else "*")
    keep = np.ones(frame.n, dtype=bool)
    for key, values in by_key.items():
        column = f"{RESOURCE}.{key}"
        if column not in frame.columns:
            carried = sorted(
                c[len(RESOURCE) + 1 :] for c in frame.columns if c.startswith(RESOURCE)
            )
            raise FilterError(
                f"--tag {key}=...: no attempt record carries the resource attribute {key!r} "
                + (f"(they carry: {', '.join(carried)})" if carried else "(they carry none)")
                + f"; set it with OTEL_RESOURCE_ATTRIBUTES={key}=VALUE in live runs or "
                f"agentsignals import --tag {key}=VALUE"
            )
        keep &= match(text(column), values)
    return keep


def _fmt_num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _index_match(values: np.ndarray, spec: str) -> np.ndarray:
    out = np.zeros(len(values), dtype=bool)
    for part in str(spec).split(","):
        part = part.strip()
        try:
            if part.endswith("-"):
                out |= values >= int(part[:-1])
            elif "-" in part:
                lo, hi = part.split("-", 1)
                out |= (values >= int(lo)) & (values <= int(hi))
            else:
                out |= values == int(part)
        except ValueError as exc:
            raise FilterError(f"--attempt-index {spec!r}: expected forms 0, 1-, 0-2, 0,2") from exc
    return out


def _time_ns(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value) * 1e9
    text = str(value).strip()
    try:
        return float(text) * 1e9
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"time {text!r}: expected ISO 8601 or Unix seconds") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp() * 1e9


def build_report(frame: Frame, options: Options | None = None) -> Report:
    options = options or Options()
    # One row order whatever the source: nothing below depends on the order rows arrived in.
    frame = apply_filters(in_attempt_order(frame), options.filters)
    ctx = Context(frame, options)
    notes: list[str] = []
    if frame.n == 0:
        notes.append("No attempt records matched: nothing to report.")
    elif not np.any(~np.isnan(ctx.y)):
        notes.append(
            "No attempt has a verified outcome (verification.reward or patch_outcome_label): "
            "run `agentsignals verify` with the verifier's reports, or record outcomes with "
            "attempt.record_outcome(...). Outcome statistics are empty."
        )
    retries = int((~ctx.first).sum())
    if retries and options.attempts == "first":
        notes.append(
            f"{retries} retries are kept apart: behaviour statistics use first attempts only "
            "(--attempts retries or all to change that; attempt 1 and retries are never pooled "
            "silently)."
        )
    sections: list[tuple[Section, dict[str, Any]]] = []
    timings: dict[str, float] = {}
    for section in default_sections():
        start = time.perf_counter()
        result = section.build(ctx) if frame.n else None
        timings[section.id] = time.perf_counter() - start
        if result is not None:
            sections.append((section, result))
    behaviour = next((r for s, r in sections if s.id == "behaviour"), None)
    if behaviour and behaviour.get("mixed_strata_span_arms"):
        notes.append(
            "Some tasks with both outcomes were run by more than one agent/model: within-task "
            "contrasts there include the difference between them (see Agent A versus agent B; "
            "--strata task+arm compares attempts of the same arm only)."
        )
    notes += _calibration_notes(ctx)
    return Report(options, sections, ctx, notes, timings)


def _calibration_notes(ctx: Context) -> list[str]:
    """What a reader must know about the judge calibration: flags it cannot correct, flags
    no column has, and labels compared with another judge model than the one in the records."""
    cal = ctx.options.calibration
    if cal is None:
        return []
    notes = [f"Judge calibration {cal.source}: {name} is not corrected: {why}." for name, why in
             sorted(cal.unusable.items())]  # fmt: skip
    columns = [c for c, _ in ctx.signal_columns()]
    for name in sorted(cal.fields):
        if not any(c == name or c.startswith(name + ".") for c in columns):
            notes.append(
                f"Judge calibration {cal.source}: no behaviour row is {name} "
                "(the records carry no such judge field)."
            )
    return notes


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


# --- HTML ---------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return (resources.files("agentsignals._report") / "templates" / name).read_text("utf-8")


def embedded_attempts(report: Report) -> dict[str, Any]:
    """Columnar data of the attempts the drill-down lists (all, or a deterministic sample when
    there are more than `max_embedded`)."""
    ctx = report.context
    n = ctx.n
    limit = report.options.max_embedded
    if n > limit:
        # A stable sample: the attempts with the smallest hash of their id.
        keys = np.array([hash_id(str(a)) for a in ctx.attempt_id])
        rows = np.sort(np.argsort(keys, kind="stable")[:limit])
    else:
        rows = np.arange(n)
    columns: dict[str, list[Any]] = {
        "attempt_id": [str(v) for v in ctx.attempt_id[rows]],
        "task_id": [str(v) for v in ctx.task_id[rows]],
        "trial_id": [str(v) for v in ctx.trial_id[rows]],
        "arm": [str(v) for v in ctx.arm[rows]],
        "status": [str(v) for v in ctx.status[rows]],
        "attempt_index": [int(v) for v in ctx.attempt_index[rows]],
    }
    kinds = {"attempt_index": NUM}
    if TIMELINE in ctx.frame.columns:
        columns["timeline"] = ctx.frame.columns[TIMELINE][rows].tolist()
    extra = [c for c, _ in ctx.signal_columns()]
    extra += [
        c for c in ctx.frame.columns if c.startswith(("cluster", "judge.first_wrong_step", "_fws"))
    ]
    for name in dict.fromkeys(extra):
        col = ctx.frame.columns[name][rows]
        kind = ctx.frame.kinds[name]
        if kind == STR:
            columns[name] = [None if v is None else str(v) for v in col]
        else:
            columns[name] = [
                None if v != v else (int(v) if kind == BOOL else _round(v)) for v in col.tolist()
            ]
        kinds[name] = kind
    return {"n": int(n), "embedded": len(rows), "columns": columns, "kinds": kinds}


def hash_id(text: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _round(v: float) -> float | int | str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if float(v).is_integer():
        return int(v)
    return float(f"{v:.6g}")


def render_html(report: Report) -> str:
    import jinja2

    from agentsignals._report import plots as plot_mod

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentsignals._report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pct=_pct_filter,
        num=_num_filter,
        anchor=plot_mod.anchor,
        ci=_ci_filter,
        money=_money_filter,
    )
    rendered = []
    start = time.perf_counter()
    for section, result in report.sections:
        plots = section.plots(result)
        template = env.get_template(section.template())
        rendered.append(
            {
                "id": section.id,
                "title": section.title,
                "html": template.render(r=result, plots=plots, report=report),
            }
        )
    report.timings["plots_and_html"] = time.perf_counter() - start
    data = embedded_attempts(report)
    # Plain values only (embedded_attempts makes them): msgspec writes them in one call.
    payload = msgspec.json.encode(data).decode()
    return env.get_template("report.html.j2").render(
        report=report,
        sections=rendered,
        css=_asset("report.css"),
        js=_asset("report.js"),
        data=payload.replace("</", "<\\/"),
        summary=report.to_json(),
    )


def _pct_filter(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * float(x):.{digits}f}%"


def _num_filter(x: Any) -> str:
    if x is None or x == "":
        return "–"
    if isinstance(x, str):
        return "∞" if x == "inf" else x
    v = float(x)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v != 0 and abs(v) < 0.001:
        return f"{v:.1e}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _ci_filter(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "–"
    return f"{_num_filter(e['value'])} [{_num_filter(e.get('lo'))}, {_num_filter(e.get('hi'))}]"


def _money_filter(x: Any) -> str:
    if x is None:
        return "–"
    v = float(x)
    return f"${v:,.2f}" if v >= 1 else f"${v:.3f}"
