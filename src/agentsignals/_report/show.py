"""`agentsignals show ID`: one attempt's timeline in the terminal, the view a person uses to
check a number in the report. ID is an attempt id (or a prefix of one), a trial id or a task id;
every matching attempt is shown.

Built from the spans where the inputs have them (trace files or folders, `--source` with
`otel_traces`): tool calls grouped by the turn that requested them, each with its category,
phase, the files it named and changed, each test run with its parsed outcome, tokens per turn,
and the outcome. From the attempt record otherwise (feature files, the feature table): the same
calls, categories and phases, without turns or per-run test results, which records do not keep.
Judge labels and verifier outcomes that only the record carries are shown in both.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsignals import semconv as sc

# The judge's first-wrong-step field (frame.FWS; frame is imported only where needed).
FWS = "judge.first_wrong_step"

if TYPE_CHECKING:
    from agentsignals._features.extract import AttemptSpans, ToolCall
    from agentsignals._spans.model import Span

NAME = "show"
HELP = "one attempt's timeline in the terminal (by attempt, trial or task id)"
DESCRIPTION = (
    "Print the timeline of the attempts matching ID (an attempt id or its prefix, a trial id, "
    "a task id): tool calls grouped by turn with their categories, phases and files, each test "
    "run and its outcome, tokens, the outcome and judge labels. Built from the spans when the "
    "inputs have them (trace files or folders, --source), from the attempt records otherwise."
)
MAX_ATTEMPTS = 20
MIN_PREFIX = 6


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="attempt id (or a prefix of 6+ characters), trial id or task id")
    p.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        help="trace and/or feature files or folders (default: ./agentsignals-output)",
    )
    p.add_argument(
        "--source",
        default=None,
        help="ClickHouse/chDB URL: spans from otel_traces, records from the feature table",
    )


def run(args: argparse.Namespace) -> int:
    inputs = list(args.inputs)
    if not inputs and args.source is None and Path("agentsignals-output").is_dir():
        inputs = [Path("agentsignals-output")]
    if not inputs and args.source is None:
        print(
            "agentsignals show: give trace or feature files/folders, or --source URL "
            "(nothing found in ./agentsignals-output)",
            file=sys.stderr,
        )
        return 2
    try:
        attempts, problems = find(args.id, inputs, source=args.source)
    except (FileNotFoundError, ValueError) as exc:
        print(f"agentsignals show: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a store that cannot be reached: one line, no traceback
        from agentsignals._store.clickhouse import ClickHouseError

        if not isinstance(exc, ClickHouseError | ImportError):
            raise
        print(f"agentsignals show: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"agentsignals show: skipped {problem}", file=sys.stderr)
    if not attempts:
        print(
            f"agentsignals show: no attempt, trial or task {args.id!r} in the inputs",
            file=sys.stderr,
        )
        return 1
    out = sys.stdout
    try:
        for attempt in attempts[:MAX_ATTEMPTS]:
            out.write(render(attempt))
            out.write("\n")
        out.flush()
    except BrokenPipeError:  # `agentsignals show ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if len(attempts) > MAX_ATTEMPTS:
        print(
            f"agentsignals show: {len(attempts)} attempts match; the first {MAX_ATTEMPTS} "
            "are shown (give an attempt id)",
            file=sys.stderr,
        )
    return 0


# --- finding ------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One attempt to show: its record (from the spans, completed by a stored record's judge
    and verifier fields), and its classified spans when the inputs had them."""

    record: dict[str, Any]
    spans: AttemptSpans | None = None


def _matches(key: str, attempt_id: Any, *others: Any) -> bool:
    if key in (attempt_id, *others):
        return True
    return len(key) >= MIN_PREFIX and isinstance(attempt_id, str) and attempt_id.startswith(key)


def _newer(record: dict[str, Any], old: dict[str, Any] | None) -> bool:
    if old is None:
        return True
    return (bool(old.get("partial")), -(old.get("revision") or 0)) >= (
        bool(record.get("partial")),
        -(record.get("revision") or 0),
    )


class _Finder:
    def __init__(self, key: str) -> None:
        self.key = key
        self.needle = key.encode()
        self.records: dict[str, dict[str, Any]] = {}
        self.spans: dict[str, dict[str, Span]] = {}  # attempt id -> span id -> span
        self.problems: list[str] = []

    def offer_record(self, record: Any) -> None:
        if not isinstance(record, dict):
            return
        aid = record.get("attempt_id")
        if not isinstance(aid, str):
            return
        if not _matches(self.key, aid, record.get("trial_id"), record.get("task_id")):
            return
        if _newer(record, self.records.get(aid)):
            self.records[aid] = record

    def record_file(self, path: Path) -> None:
        import msgspec

        from agentsignals._report.sources import record_lines

        decode = msgspec.json.Decoder().decode
        for line in record_lines(path):
            if self.needle in line:
                try:
                    self.offer_record(decode(line))
                except msgspec.DecodeError:
                    continue

    def trace_files(self, paths: list[Path]) -> None:
        """Two passes over lines holding the key: which attempts and trials match (task ids
        are only on attempt and trial spans), then every span of those attempts."""
        from agentsignals._report.sources import record_lines
        from agentsignals._spans.decode import DecodeError, decode_otlp_json

        def requests(needles: list[bytes]) -> Iterator[list[Span]]:
            for path in paths:
                for lineno, line in enumerate(record_lines(path), 1):
                    if not any(n in line for n in needles):
                        continue
                    try:
                        yield decode_otlp_json(line)
                    except DecodeError as exc:
                        self.problems.append(f"{path}:{lineno}: {exc}")

        attempts: set[str] = set()
        trials: set[str] = set()
        for batch in requests([self.needle]):
            for s in batch:
                aid = s.attr_str(sc.AGENT_SIGNALS_ATTEMPT_ID)
                tid = s.attr_str(sc.AGENT_SIGNALS_TRIAL_ID)
                task = s.attr_str(sc.AGENT_SIGNALS_TASK_ID)
                if aid is not None and _matches(self.key, aid, tid, task):
                    attempts.add(aid)
                elif aid is None and tid is not None and self.key in (tid, task):
                    trials.add(tid)
        if not attempts and not trials:
            return
        self.problems.clear()  # the second pass sees the same lines again
        needles = [x.encode() for x in sorted(attempts | trials)]
        for batch in requests(needles):
            self.add_spans(batch, attempts, trials)

    def add_spans(self, spans: list[Span], attempts: set[str], trials: set[str]) -> None:
        for s in spans:
            aid = s.attr_str(sc.AGENT_SIGNALS_ATTEMPT_ID)
            if aid is None:
                continue
            if aid in attempts or s.attr_str(sc.AGENT_SIGNALS_TRIAL_ID) in trials:
                self.spans.setdefault(aid, {})[s.span_id] = s

    def clickhouse(self, url: str) -> None:
        from agentsignals._store.clickhouse import ClickHouseError, connect

        text = _sql_text(self.key)
        with connect(url, create=False) as store:
            attr = "SpanAttributes['{}']".format
            cond = " OR ".join(
                f"{attr(k)} = {text}"
                for k in (
                    sc.AGENT_SIGNALS_ATTEMPT_ID,
                    sc.AGENT_SIGNALS_TRIAL_ID,
                    sc.AGENT_SIGNALS_TASK_ID,
                )
            )
            if len(self.key) >= MIN_PREFIX:
                cond += f" OR startsWith({attr(sc.AGENT_SIGNALS_ATTEMPT_ID)}, {text})"
            attempts: set[str] = set()
            trials: set[str] = set()
            batches = list(store.read_spans(where=cond))
            for batch in batches:
                for s in batch:
                    aid = s.attr_str(sc.AGENT_SIGNALS_ATTEMPT_ID)
                    tid = s.attr_str(sc.AGENT_SIGNALS_TRIAL_ID)
                    task = s.attr_str(sc.AGENT_SIGNALS_TASK_ID)
                    if aid is not None and _matches(self.key, aid, tid, task):
                        attempts.add(aid)
                    elif aid is None and tid is not None and self.key in (tid, task):
                        trials.add(tid)
            for batch in batches:
                self.add_spans(batch, attempts, trials)
            where = f"attempt_id = {text} OR trial_id = {text} OR task_id = {text}"
            if len(self.key) >= MIN_PREFIX:
                where += f" OR startsWith(attempt_id, {text})"
            try:
                records = store.read_attempts(where=where)
            except ClickHouseError:
                records = []  # no feature table of this version: spans alone
        import msgspec

        for r in records:
            self.offer_record(msgspec.to_builtins(r))

    def attempts(self) -> list[Attempt]:
        import msgspec

        from agentsignals._features.extract import split_spans
        from agentsignals._features.run import from_spans

        out: dict[str, Attempt] = {}
        for aid, by_id in self.spans.items():
            spans = list(by_id.values())
            derived = {r.attempt_id: r for r in from_spans(spans).attempts}
            if aid not in derived:
                continue
            record = _completed(msgspec.to_builtins(derived[aid]), self.records.get(aid))
            out[aid] = Attempt(record, split_spans(spans))
        for aid, record in self.records.items():
            out.setdefault(aid, Attempt(record))
        return sorted(
            out.values(),
            key=lambda a: (
                str(a.record.get("task_id")),
                str(a.record.get("trial_id")),
                a.record.get("attempt_index") or 0,
                a.record.get("started_at_ns") or 0,
                str(a.record.get("attempt_id")),
            ),
        )


def _completed(from_spans: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """The record derived from the spans, with what only a stored record has: judge labels,
    clusters, and a verifier outcome added offline (`agentsignals verify`)."""
    if stored is None:
        return from_spans
    out = dict(from_spans)
    for key, value in stored.items():
        if out.get(key) in (None, {}, []):
            out[key] = value
    verification = out.get("verification") or {}
    if not any(v is not None for v in verification.values()):
        out["verification"] = stored.get("verification") or verification
    else:
        merged = dict(stored.get("verification") or {})
        merged.update({k: v for k, v in verification.items() if v is not None})
        out["verification"] = merged
    return out


def _sql_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def find(
    key: str, inputs: list[Path], *, source: str | None = None
) -> tuple[list[Attempt], list[str]]:
    """Every attempt matching `key` in the inputs (trace and feature files or folders) and the
    store at `source`, with the problems met on the way (one line each)."""
    from agentsignals._report.sources import is_record_file

    finder = _Finder(key)
    traces: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.suffix == ".parquet" or f.name.startswith("trials.jsonl"):
                continue
            if is_record_file(f):
                finder.record_file(f)
            elif f.name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")) or not path.is_dir():
                traces.append(f)
    if traces:
        finder.trace_files(traces)
    if source is not None:
        finder.clickhouse(source)
    return finder.attempts(), finder.problems


# --- rendering ----------------------------------------------------------------------------


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


def _short(path: str, width: int = 40) -> str:
    p = path.split("/testbed/")[-1]
    return p if len(p) <= width else "…" + p[-(width - 1) :]


def _outcome(r: dict[str, Any]) -> str:
    reward = _g(r, "verification.reward")
    label = _g(r, "verification.patch_outcome_label")
    reason = _g(r, "verification.unverifiable_reason")
    if reward is None and label is None:
        return "no outcome recorded" + (f" (unverifiable: {reason})" if reason else "")
    resolved = (reward is not None and reward >= 1) or (reward is None and label == "correct_patch")
    text = ("RESOLVED" if resolved else "FAILED") + f" ({label or '-'}, reward {_fmt(reward)}"
    text += (
        f"; fail->pass {_fmt(_g(r, 'verification.fail_to_pass_count'))}, "
        f"pass->fail {_fmt(_g(r, 'verification.pass_to_fail_count'))})"
    )
    if reason:
        text += f" unverifiable: {reason}"
    return text


def _header(r: dict[str, Any], from_spans: bool) -> list[str]:
    from agentsignals._report.frame import flatten_value

    g = _g
    lines = [
        f"attempt {r.get('attempt_id')} (index {_fmt(r.get('attempt_index'))}) · trial "
        f"{r.get('trial_id')} · task {r.get('task_id')}"
        + ("" if from_spans else "  [from the record: no spans in the inputs]"),
        f"  agent {_fmt(g(r, 'treatment.agent_type'))} · model {_fmt(g(r, 'treatment.model_id'))}"
        f" · dataset {_fmt(g(r, 'treatment.dataset'))}",
        f"  outcome: {_outcome(r)} · exit: {_fmt(g(r, 'infra.exit_reason'))}",
    ]
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
        flatten_value(judge, "judge", flat, {})
        shown = [
            f"{k[6:]}={_fmt(v)}"
            for k, v in flat.items()
            if not k.startswith(f"{FWS}.")
            and not k.endswith((".explanation", ".reason"))
            and isinstance(v, bool | int | float | str)
            and len(str(v)) < 40
        ]
        if shown:
            lines.append("  judge: " + ", ".join(shown[:16]))
    fws = first_wrong_step(r)
    if fws is not None:
        where = fws.label
        if fws.position is not None:
            where += f", at {100 * fws.position:.0f}% of the steps"
        if fws.phase:
            where += f", {fws.phase}"
        lines.append(
            f"  first wrong step: {where} ({_fmt(fws.category)}): {_fmt(fws.reason)}"
            + (f" [span {fws.span_id}]" if fws.span_id else "")
        )
    if r.get("cluster_id") is not None:
        name = r.get("cluster_name")
        lines.append(f"  cluster: {r.get('cluster_id')}" + (f" ({name})" if name else ""))
    return lines


@dataclass
class FirstWrongStep:
    """The judge's first-wrong-step label of an attempt, as it wrote it (docs/judge.md):
    `index` counts the judge's steps (turns and top-level tool calls), `span_id` is the
    step's span."""

    index: int | None
    span_id: str | None
    category: str | None
    reason: str | None
    phase: str | None
    position: float | None

    @property
    def label(self) -> str:
        return f"S{self.index}" if self.index is not None else "a step"


def _judge_value(r: dict[str, Any], name: str) -> Any:
    """A judge field's value from a record dict (a JudgeField object, or a bare value)."""
    value = _g(r, f"{FWS}.{name}")
    return value.get("value") if isinstance(value, dict) else value


def first_wrong_step(r: dict[str, Any]) -> FirstWrongStep | None:
    if not isinstance(_g(r, FWS), dict):
        return None
    index = _judge_value(r, "index")
    span = _judge_value(r, "span_id")
    position = _judge_value(r, "relative_position")
    label = FirstWrongStep(
        index if isinstance(index, int) and not isinstance(index, bool) else None,
        span if isinstance(span, str) and span else None,
        _text(_judge_value(r, "category")),
        _text(_judge_value(r, "reason")),
        _text(_judge_value(r, "phase")),
        float(position) if isinstance(position, int | float) else None,
    )
    if label.index is None and label.span_id is None:
        return None
    return label


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _marks(r: dict[str, Any]) -> dict[int, list[str]]:
    """Notes on tool calls by their index in the record's tool sequence."""
    marks: dict[int, list[str]] = {}
    for field, text in (
        ("behavior.first_edit_step", "first edit"),
        ("behavior.first_gold_read_step", "first gold read"),
        ("behavior.first_gold_edit_step", "first gold edit"),
    ):
        step = _g(r, field)
        if isinstance(step, int):
            marks.setdefault(step, []).append(text)
    return marks


def _record_phases(r: dict[str, Any]) -> list[str]:
    """The phase of each tool call from its category, as the judge's transcript gives it; a
    shell or other call takes its turn's declared phase there, which records do not keep."""
    from agentsignals._judge.transcript import CATEGORY_PHASE

    cats = _g(r, "behavior.tool_category_sequence") or []
    return [CATEGORY_PHASE.get(str(c), "-") for c in cats]


def test_result(call: ToolCall) -> str | None:
    """A test run's outcome from its span: the parsed summary, else the exit code."""
    a = call.span.attributes
    counts = {
        key: call.span.attr_int(attr)
        for key, attr in (
            ("passed", sc.AGENT_SIGNALS_TEST_PASSED_COUNT),
            ("failed", sc.AGENT_SIGNALS_TEST_FAILED_COUNT),
            ("errors", sc.AGENT_SIGNALS_TEST_ERROR_COUNT),
            ("skipped", sc.AGENT_SIGNALS_TEST_SKIPPED_COUNT),
        )
    }
    framework = call.span.attr_str(sc.AGENT_SIGNALS_TEST_FRAMEWORK)
    exit_code = call.span.attr_int(sc.PROCESS_EXIT_CODE)
    if framework is None and all(v is None for v in counts.values()):
        if call.category != "test":
            return None
        if exit_code is not None:
            return f"exit {exit_code}, output not parsed"
        return "outcome not recorded"
    bad = (counts["failed"] or 0) + (counts["errors"] or 0)
    verdict = "FAILED" if bad else ("passed" if counts["passed"] else "no tests ran")
    parts = [f"{v} {k}" for k, v in counts.items() if v]
    text = f"{verdict}: {', '.join(parts) or 'nothing counted'}"
    if framework:
        text += f" ({framework})"
    if a.get(sc.AGENT_SIGNALS_TEST_COMPLETE) is False:
        text += ", cut off before its summary"
    failed = a.get(sc.AGENT_SIGNALS_TEST_FAILED)
    if isinstance(failed, list) and failed:
        text += " · failing: " + ", ".join(str(f) for f in failed[:3])
        text += f" (+{len(failed) - 3})" if len(failed) > 3 else ""
    return text


def _step_line(
    i: int,
    step: str | None,
    tool: str,
    category: str,
    phase: str,
    files: list[str],
    changed: list[str],
    notes: list[str],
) -> str:
    stated = ", ".join(_short(p) for p in files[:3]) + (" …" if len(files) > 3 else "")
    tail = [stated] if stated else []
    if changed:
        tail.append("changed " + ", ".join(_short(p) for p in changed[:3]))
    tail += notes
    head = f"    {i:>3}  " + (f"{step:>4}  " if step is not None else "")
    return head + f"{tool[:22]:<22} {category:<8} {phase:<9}  " + " · ".join(tail)


def render(attempt: Attempt | dict[str, Any]) -> str:
    """The timeline of one attempt (an `Attempt`, or a bare record dict)."""
    if isinstance(attempt, dict):
        attempt = Attempt(attempt)
    r = attempt.record
    lines = _header(r, attempt.spans is not None)
    marks = _marks(r)
    fws = first_wrong_step(r)
    if attempt.spans is not None:
        lines += _from_spans(attempt.spans, marks, fws)
    else:
        lines += _from_record(r, _record_phases(r), marks)
        if fws is not None:
            lines.append(
                f"  (the first wrong step, {fws.label}, counts turns and tool calls: give the "
                "trace files or folders too to see it in place)"
            )
    lines.append("")
    touched = _g(r, "behavior.touched_file_lines") or []
    edited = [f"{t['path']} (+{t['lines_added']} -{t['lines_removed']})" for t in touched]
    if not edited:
        edited = [str(p) for p in (_g(r, "behavior.touched_files") or [])]
    lines.append("  files edited: " + (", ".join(edited) or "none recorded"))
    read = _files_read(r)
    lines.append(
        "  files read: "
        + (", ".join(_short(p) for p in read[:12]) or "none stated")
        + (f" (+{len(read) - 12})" if len(read) > 12 else "")
        + f" · before the first edit {_fmt(_g(r, 'behavior.files_read_before_edit'))}"
    )
    lines.append(
        f"  tests: {_fmt(_g(r, 'behavior.test_runs'))} runs; agent's first run failed "
        f"{_fmt(_g(r, 'verification.agent_first_run_failed'))}, last run passed "
        f"{_fmt(_g(r, 'verification.agent_last_run_passed'))} / failed "
        f"{_fmt(_g(r, 'verification.agent_last_run_failed'))} · validated after the last edit "
        f"{_fmt(_g(r, 'behavior.validated_after_last_edit'))} · stuck loop "
        f"{_fmt(_g(r, 'behavior.stuck_loop'))}"
    )
    lines.append(f"  outcome: {_outcome(r)}")
    return "\n".join(lines) + "\n"


def _files_read(r: dict[str, Any]) -> list[str]:
    cats = _g(r, "behavior.tool_category_sequence") or []
    files = _g(r, "behavior.step_files") or []
    out: dict[str, None] = {}
    for cat, stated in zip(cats, files, strict=False):
        if cat in ("read", "search"):
            out.update(dict.fromkeys(str(p) for p in stated))
    return list(out)


def _from_record(r: dict[str, Any], phases: list[str], marks: dict[int, list[str]]) -> list[str]:
    tools = _g(r, "behavior.tool_sequence") or []
    cats = _g(r, "behavior.tool_category_sequence") or []
    files = _g(r, "behavior.step_files") or []
    changed = _g(r, "behavior.step_changed_files") or []
    if not tools:
        return []
    lines = ["", f"    {'#':>3}  {'tool':<22} {'category':<8} {'phase':<9}  files"]
    for i, tool in enumerate(tools):
        lines.append(
            _step_line(
                i,
                None,
                str(tool),
                str(cats[i]) if i < len(cats) else "-",
                phases[i] if i < len(phases) else "-",
                [str(p) for p in (files[i] if i < len(files) else [])],
                [str(p) for p in (changed[i] if i < len(changed) else [])],
                marks.get(i, []),
            )
        )
    return lines


def _from_spans(
    spans: AttemptSpans, marks: dict[int, list[str]], fws: FirstWrongStep | None
) -> list[str]:
    """Tool calls under the turn that requested them (`agent_signals.turn.index`, else the
    turn span they run in); calls outside any turn last. Each turn and call carries its step
    number in the judge's transcript (S0, S1, ...) and the phase the judge gives it, and the
    first wrong step is marked on the span the judge cited."""
    from agentsignals._judge.transcript import from_spans as transcript_of

    steps = {s.span_id: s for s in transcript_of(list(spans.spans)).steps if s.span_id}
    cited = fws.span_id if fws is not None else None
    if fws is not None and cited is None and fws.index is not None:
        cited = next((sid for sid, st in steps.items() if st.index == fws.index), None)
    marker = f"<- FIRST WRONG STEP ({fws.label})" if fws is not None else ""
    placed = False
    turn_index: dict[str, int] = {}
    for t in spans.turns:
        index = t.attr_int(sc.AGENT_SIGNALS_TURN_INDEX)
        if index is not None:
            turn_index[t.span_id] = index
    groups: dict[int | None, list[tuple[int, ToolCall]]] = {}
    for i, call in enumerate(spans.tools):
        index = call.span.attr_int(sc.AGENT_SIGNALS_TURN_INDEX)
        if index is None:
            index = _enclosing_turn(call.span, spans, turn_index)
        groups.setdefault(index, []).append((i, call))
    turns = {turn_index.get(t.span_id): t for t in spans.turns}
    order = sorted({*turns, *groups} - {None}, key=lambda x: x if x is not None else -1)
    lines = [
        "",
        f"    {'#':>3}  {'step':>4}  {'tool':<22} {'category':<8} {'phase':<9}  files · result",
    ]
    for index in [*order, None]:
        calls = groups.get(index, [])
        turn = turns.get(index)
        if index is None:
            if not calls:
                continue
            lines.append("  outside any turn")
        else:
            step = steps.get(turn.span_id) if turn is not None else None
            head = f"  turn {index}" + (f" · {step.label}" if step is not None else "")
            head += _turn_summary(turn)
            if turn is not None and turn.span_id == cited:
                head += f"  {marker}"
                placed = True
            lines.append(head)
        for i, call in calls:
            notes: list[str] = []
            result = test_result(call)
            if result:
                notes.append(result)
            elif call.span.is_error:
                code = call.span.attr_int(sc.PROCESS_EXIT_CODE)
                notes.append("ERROR" + (f" (exit {code})" if code is not None else ""))
            notes += marks.get(i, [])
            if call.span.span_id == cited:
                notes.append(marker)
                placed = True
            files = call.span.attributes.get(sc.AGENT_SIGNALS_TOOL_FILES)
            step = steps.get(call.span.span_id)
            lines.append(
                _step_line(
                    i,
                    step.label if step is not None else "-",
                    call.name or "-",
                    call.category or "-",
                    (step.phase or "-") if step is not None else "-",
                    [str(p) for p in files] if isinstance(files, list) else [],
                    list(call.changed_files or []),
                    notes,
                )
            )
    if fws is not None and not placed:
        lines.append(
            f"  (the first wrong step, {fws.label}"
            + (f", span {fws.span_id}," if fws.span_id else "")
            + " is not among these spans)"
        )
    return lines


def _enclosing_turn(span: Span, spans: AttemptSpans, turn_index: dict[str, int]) -> int | None:
    parent = span.parent_span_id
    for _ in range(len(spans.by_id)):
        if parent is None:
            return None
        if parent in turn_index:
            return turn_index[parent]
        above = spans.by_id.get(parent)
        parent = above.parent_span_id if above is not None else None
    return None


def _turn_summary(turn: Span | None) -> str:
    if turn is None:
        return " (no turn span)"
    parts: list[str] = []
    tokens_in = turn.attr_int(sc.GEN_AI_USAGE_INPUT_TOKENS)
    tokens_out = turn.attr_int(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    if tokens_in is not None or tokens_out is not None:
        parts.append(f"tokens in {_fmt(tokens_in)} / out {_fmt(tokens_out)}")
    cost = turn.attributes.get(sc.AGENT_SIGNALS_USAGE_COST_USD)
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        parts.append(f"${cost:.4g}")
    chars = turn.attr_int(sc.AGENT_SIGNALS_TURN_REASONING_CHARS)
    if chars:
        parts.append(f"reasoning {chars:,} chars")
    phase = turn.attr_str(sc.AGENT_SIGNALS_TURN_PHASE)
    if phase:
        parts.append(f"declared phase {phase}")
    if turn.is_error:
        parts.append("ERROR")
    return (" · " + " · ".join(parts)) if parts else ""
