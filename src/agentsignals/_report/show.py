"""`agentsignals show ID`: one attempt's timeline in the terminal, the view a person uses to
check a number in the report. ID is an attempt id (or a prefix of one), a trial id or a task id;
every matching attempt is shown. Reads the same inputs as `agentsignals report`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME = "show"
HELP = "one attempt's timeline in the terminal (by attempt, trial or task id)"
DESCRIPTION = (
    "Print the timeline of the attempts matching ID (an attempt id or its prefix, a trial id, "
    "a task id): each tool call with its category, phase and files, test runs, tokens, the "
    "outcome and judge labels. Reads feature files or folders, trace folders, or --source."
)
MAX_ATTEMPTS = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="attempt id (or prefix), trial id or task id")
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        help="feature or trace files/folders (default: ./agentsignals-output)",
    )
    p.add_argument("--source", default=None, help="ClickHouse/chDB URL")


def run(args: argparse.Namespace) -> int:
    from agentsignals._report.command import default_inputs

    inputs = list(args.inputs) or ([] if args.source else default_inputs())
    if not inputs and args.source is None:
        print(
            "agentsignals show: give feature or trace files/folders, or --source URL",
            file=sys.stderr,
        )
        return 2
    try:
        records = find(args.id, inputs, source=args.source)
    except FileNotFoundError as exc:
        print(f"agentsignals show: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(
            f"agentsignals show: no attempt, trial or task {args.id!r} in the inputs",
            file=sys.stderr,
        )
        return 1
    out = sys.stdout
    for record in records[:MAX_ATTEMPTS]:
        out.write(render(record))
        out.write("\n")
    if len(records) > MAX_ATTEMPTS:
        print(
            f"agentsignals show: {len(records)} attempts match; the first {MAX_ATTEMPTS} "
            "are shown (give an attempt id)",
            file=sys.stderr,
        )
    return 0


def _matches(record: dict[str, Any], key: str) -> bool:
    if key in (record.get("trial_id"), record.get("task_id"), record.get("attempt_id")):
        return True
    attempt = record.get("attempt_id") or ""
    return len(key) >= 6 and isinstance(attempt, str) and attempt.startswith(key)


def _record_lines(path: Path) -> Iterator[bytes]:
    from agentsignals._report.sources import is_record_file as _is_record_file
    from agentsignals._report.sources import record_lines as _lines

    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if f.suffix != ".parquet" and _is_record_file(f):
            yield from _lines(f)


def find(key: str, inputs: list[Path], *, source: str | None = None) -> list[dict[str, Any]]:
    """The latest revision of every attempt record matching `key`, as plain dicts."""
    import msgspec

    decoder = msgspec.json.Decoder()
    needle = key.encode()
    found: dict[str, dict[str, Any]] = {}

    def offer(record: dict[str, Any]) -> None:
        if not isinstance(record, dict) or not _matches(record, key):
            return
        old = found.get(record["attempt_id"])
        if old is None or (bool(old.get("partial")), -(old.get("revision") or 0)) >= (
            bool(record.get("partial")),
            -(record.get("revision") or 0),
        ):
            found[record["attempt_id"]] = record

    traces: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        seen = False
        for line in _record_lines(path):
            seen = True
            if needle in line:
                try:
                    offer(decoder.decode(line))
                except msgspec.DecodeError:
                    continue
        if not seen:
            traces.append(path)
    if traces:
        from agentsignals._features.run import extract

        for r in extract(traces).attempts:
            offer(msgspec.to_builtins(r))
    if source is not None:
        from agentsignals._store.clickhouse import connect

        with connect(source) as store:
            for r in store.read_attempts():
                offer(msgspec.to_builtins(r))
    return sorted(
        found.values(),
        key=lambda r: (
            str(r.get("task_id")),
            str(r.get("trial_id")),
            r.get("attempt_index") or 0,
            r.get("started_at_ns") or 0,
        ),
    )


def _g(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(r: dict[str, Any]) -> str:
    from agentsignals._report.frame import step_phases

    lines: list[str] = []
    g = _g
    reward = g(r, "verification.reward")
    label = g(r, "verification.patch_outcome_label")
    if reward is None and label is None:
        outcome = "no outcome recorded"
    else:
        resolved = (reward is not None and reward >= 1) or (
            reward is None and label == "correct_patch"
        )
        outcome = (
            "RESOLVED" if resolved else "FAILED"
        ) + f" ({label or '-'}, reward {_fmt(reward)}"
        outcome += (
            f"; fail->pass {_fmt(g(r, 'verification.fail_to_pass_count'))}, "
            f"pass->fail {_fmt(g(r, 'verification.pass_to_fail_count'))})"
        )
        reason = g(r, "verification.unverifiable_reason")
        if reason:
            outcome += f" unverifiable: {reason}"
    lines.append(
        f"attempt {r.get('attempt_id')} (index {_fmt(r.get('attempt_index'))}) · trial "
        f"{r.get('trial_id')} · task {r.get('task_id')}"
    )
    lines.append(
        f"  agent {_fmt(g(r, 'treatment.agent_type'))} · model {_fmt(g(r, 'treatment.model_id'))}"
        f" · dataset {_fmt(g(r, 'treatment.dataset'))}"
    )
    lines.append(f"  outcome: {outcome} · exit: {_fmt(g(r, 'infra.exit_reason'))}")
    ratio = g(r, "tokens.cache_read_ratio")
    lines.append(
        f"  {_fmt(g(r, 'behavior.turn_count'))} turns, {_fmt(g(r, 'behavior.tool_call_count'))}"
        f" tool calls · tokens in {_fmt(g(r, 'tokens.input_tokens_total'))} / out "
        f"{_fmt(g(r, 'tokens.output_tokens_total'))}"
        + (f" (cache read {100 * ratio:.0f}%)" if isinstance(ratio, float) else "")
        + f" · cost ${_fmt(g(r, 'tokens.cost_usd'))} · wall {_fmt(g(r, 'infra.wall_time_s'))} s"
    )
    judge = r.get("judge")
    if isinstance(judge, dict):
        flat: dict[str, Any] = {}
        from agentsignals._report.frame import flatten_value

        flatten_value(judge, "judge", flat, {})
        shown = [
            f"{k[6:]}={_fmt(v)}"
            for k, v in flat.items()
            if not k.startswith("judge.first_wrong_step")
            and not k.endswith((".explanation", ".reason"))
            and isinstance(v, bool | int | float | str)
            and len(str(v)) < 40
        ]
        if shown:
            lines.append("  judge: " + ", ".join(shown[:16]))
    fws = g(r, "judge.first_wrong_step")
    fws_index = fws.get("index", fws.get("step")) if isinstance(fws, dict) else None
    if isinstance(fws, dict):
        lines.append(
            f"  first wrong step: #{_fmt(fws_index)} ({_fmt(fws.get('category'))}): "
            f"{_fmt(fws.get('reason'))}"
        )
    if r.get("cluster_id") is not None:
        lines.append(f"  cluster: {r.get('cluster_id')}")
    tools = g(r, "behavior.tool_sequence") or []
    cats = g(r, "behavior.tool_category_sequence") or []
    files = g(r, "behavior.step_files") or []
    changed = g(r, "behavior.step_changed_files") or []
    phases = (
        step_phases(list(cats), files or None, changed or None, g(r, "behavior.touched_files"))
        if cats
        else []
    )
    marks = {
        g(r, "behavior.first_edit_step"): "first edit",
        g(r, "behavior.first_gold_read_step"): "first gold read",
        g(r, "behavior.first_gold_edit_step"): "first gold edit",
    }
    if tools:
        lines.append("")
        lines.append(f"  {'#':>3}  {'tool':<22} {'category':<8} {'phase':<9}  files · changed")
        for i, tool in enumerate(tools):
            cat = cats[i] if i < len(cats) else "-"
            phase = phases[i] if i < len(phases) else "-"
            f = ", ".join(_short(p) for p in (files[i] if i < len(files) else [])[:3])
            c = ", ".join(_short(p) for p in (changed[i] if i < len(changed) else [])[:3])
            note = []
            if c:
                note.append(f"changed {c}")
            for step, text in marks.items():
                if step == i:
                    note.append(text)
            if fws_index == i:
                note.append("<- FIRST WRONG STEP")
            tail = f
            if note:
                tail = (tail + " · " if tail else "") + " · ".join(note)
            lines.append(f"  {i:>3}  {str(tool)[:22]:<22} {cat:<8} {phase:<9}  {tail}")
    lines.append("")
    touched = g(r, "behavior.touched_file_lines") or []
    lines.append(
        "  touched: "
        + (
            ", ".join(f"{t['path']} (+{t['lines_added']} -{t['lines_removed']})" for t in touched)
            or "nothing"
        )
        + f" · files read before the first edit {_fmt(g(r, 'behavior.files_read_before_edit'))}"
    )
    lines.append(
        f"  tests: {_fmt(g(r, 'behavior.test_runs'))} runs; agent's first run failed "
        f"{_fmt(g(r, 'verification.agent_first_run_failed'))}, last run passed "
        f"{_fmt(g(r, 'verification.agent_last_run_passed'))} / failed "
        f"{_fmt(g(r, 'verification.agent_last_run_failed'))} · validated after the last edit "
        f"{_fmt(g(r, 'behavior.validated_after_last_edit'))} · stuck loop "
        f"{_fmt(g(r, 'behavior.stuck_loop'))}"
    )
    return "\n".join(lines) + "\n"


def _short(path: str, width: int = 40) -> str:
    p = path.split("/testbed/")[-1]
    return p if len(p) <= width else "…" + p[-(width - 1) :]
