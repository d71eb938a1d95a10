"""Recovery signals: a fault was injected into the attempt (agentsignals.faults); did the agent
notice, how soon, and what did the rest of the run cost?

Read from the ``agent_signals.fault.injected`` / ``agent_signals.fault.checked`` events on the
attempt span and the tool calls and turns after the fault. The first fault of the attempt is
described (most plans inject one; ``fault_count`` says how many took effect).

**Noticed** (the issue's definition, from what the spans show): a later tool call

* ``read_file`` / ``edited_file``: states or changes a file the fault changed;
* ``reran_tests``: is a test run;
* ``retried_call``: for a tool fault, repeats the call it hit (same call fingerprint, or the
  same tool in the same category);

or ``mentioned``: a later turn's recorded text (reasoning or messages, captured content only)
contains one of the fault's mention words (the file's name, the added test's name, the broken
module, the error text). ``mentioned`` is None when no turn after the fault recorded text.

``noticed_in_trace`` is that evidence alone. Where a judge ran the ``noticed_fault`` rubric
(``agentsignals judge run``), ``noticed_judge`` is its verdict, and an attempt without evidence
in the trace that the judge says noticed is ``noticed`` with ``noticed_how`` ``judge``
(:func:`with_judge`); the judge never overrules evidence, and never sets the step or token
counts (it names no step the trace could measure from).

Everything is None for an attempt with no fault; ``fault_injected`` is False when the attempt
span arrived without fault events and None when the attempt span is missing (unknown).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import msgspec

from agentsignals import semconv as sc
from agentsignals._features.record import JudgeField, Recovery
from agentsignals._spans.model import Event, Span, coerce_bool, coerce_int, coerce_str_list

__all__ = ["JUDGE_FIELD", "NOTICED_HOW", "recovery", "with_judge"]

NOTICED_HOW = ("read_file", "edited_file", "reran_tests", "retried_call", "mentioned", "judge")
JUDGE_FIELD = ("noticed_fault", "noticed")
"""The judge's field read into ``recovery.noticed_judge``: ``judge.noticed_fault.noticed``."""
_TEST = sc.ToolCategory.TEST.value
_TOOL_KINDS = frozenset(
    {
        sc.FaultKind.TOOL_ERROR.value,
        sc.FaultKind.TOOL_TIMEOUT.value,
        sc.FaultKind.STALE_OUTPUT.value,
    }
)
_TEXT_KEYS = (sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_INPUT_MESSAGES)


def _same_file(a: str, b: str) -> bool:
    a = a.replace("\\", "/").removeprefix("./")
    b = b.replace("\\", "/").removeprefix("./")
    if a == b:
        return True
    if len(a) > len(b):
        a, b = b, a
    return b.endswith("/" + a) and not a.startswith("/")


def _turn_text(turn: Span) -> str | None:
    """The text a turn recorded (its output messages, reasoning included), or None. Only the
    output: the input repeats what the tools returned, which is not the agent speaking."""
    parts: list[str] = []
    value = turn.attributes.get(sc.GEN_AI_OUTPUT_MESSAGES)
    if isinstance(value, str):
        parts.append(value)
    for ev in turn.events:
        key = ev.attributes.get(sc.AGENT_SIGNALS_CONTENT_KEY)
        if key == sc.GEN_AI_OUTPUT_MESSAGES:
            text = ev.attributes.get(sc.AGENT_SIGNALS_CONTENT_VALUE)
            if isinstance(text, str):
                parts.append(text)
    if not parts:
        return None
    out: list[str] = []
    for p in parts:
        try:
            # JSON escapes (\n, \") would split words: read the strings back.
            out.append(" ".join(_strings(json.loads(p))))
        except ValueError:
            out.append(p)
    return "\n".join(out)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _tokens(turn_usage: Sequence[tuple[int | None, int | None]]) -> int | None:
    total: int | None = None
    for inp, out in turn_usage:
        for n in (inp, out):
            if n is not None:
                total = n if total is None else total + n
    return total


def recovery(
    attempt: Span | None,
    tools: Sequence[tuple[Span, str | None, list[str] | None]],
    turns: Sequence[Span],
    turn_usage: Sequence[tuple[int | None, int | None, float | None]],
) -> Recovery:
    """The recovery group of one attempt.

    ``tools``: the top-level tool calls in order, each (span, category, changed files);
    ``turns``: the turn spans in order; ``turn_usage``: per turn (input tokens, output tokens,
    cost), parallel to ``turns``.
    """
    if attempt is None:
        return Recovery()
    injected: list[Event] = [
        e for e in attempt.events if e.name == sc.EVENT_AGENT_SIGNALS_FAULT_INJECTED
    ]
    if not injected:
        return Recovery(fault_injected=False)
    injected.sort(key=lambda e: e.time_ns)
    first = injected[0]
    a = first.attributes
    fid = a.get(sc.AGENT_SIGNALS_FAULT_ID)
    kind = a.get(sc.AGENT_SIGNALS_FAULT_KIND)
    trigger = a.get(sc.AGENT_SIGNALS_FAULT_TRIGGER)
    out = Recovery(
        fault_injected=True,
        fault_count=len(injected),
        fault_id=str(fid) if fid is not None else None,
        fault_kind=str(kind) if kind is not None else None,
        fault_trigger=str(trigger) if trigger is not None else None,
        fault_step=coerce_int(a.get(sc.AGENT_SIGNALS_FAULT_STEP)),
        fault_turn=coerce_int(a.get(sc.AGENT_SIGNALS_TURN_INDEX)),
        fault_files=coerce_str_list(a.get(sc.AGENT_SIGNALS_FAULT_FILES)),
    )
    for ev in attempt.events:
        if ev.name == sc.EVENT_AGENT_SIGNALS_FAULT_CHECKED and (
            ev.attributes.get(sc.AGENT_SIGNALS_FAULT_ID) == fid
        ):
            out.fault_undone = coerce_bool(ev.attributes.get(sc.AGENT_SIGNALS_FAULT_UNDONE))
            out.fault_restored_exactly = coerce_bool(
                ev.attributes.get(sc.AGENT_SIGNALS_FAULT_RESTORED_EXACTLY)
            )
    step = out.fault_step
    if step is None:
        # No step recorded: the first call that started after the event.
        step = next((i for i, t in enumerate(tools) if t[0].start_ns >= first.time_ns), len(tools))
    is_tool_fault = out.fault_kind in _TOOL_KINDS
    # A tool fault hit call `step` itself; what comes after is the evidence.
    later_from = step + 1 if is_tool_fault else step
    later = list(enumerate(tools))[later_from:]
    out.steps_after_fault = len(tools) - later_from if len(tools) >= later_from else 0
    files = out.fault_files or []
    hit: tuple[Span, str | None, list[str] | None] | None = (
        tools[step] if is_tool_fault and 0 <= step < len(tools) else None
    )
    hit_fp = hit[0].attributes.get(sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT) if hit else None
    noticed_at: int | None = None
    how: str | None = None
    for i, (span, category, changed) in later:
        if sc.AGENT_SIGNALS_FAULT_ID in span.attributes:
            continue  # a call another fault hit: the agent saw the fault, not the state
        stated = [
            str(f) for f in coerce_str_list(span.attributes.get(sc.AGENT_SIGNALS_TOOL_FILES)) or []
        ]
        if files and changed and any(_same_file(c, f) for c in changed for f in files):
            how = "edited_file"
        elif files and any(_same_file(s, f) for s in stated for f in files):
            how = "read_file"
        elif category == _TEST:
            how = "reran_tests"
        elif hit is not None and (
            (
                hit_fp is not None
                and span.attributes.get(sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT) == hit_fp
            )
            or (
                span.attributes.get(sc.GEN_AI_TOOL_NAME)
                == hit[0].attributes.get(sc.GEN_AI_TOOL_NAME)
                and category == hit[1]
            )
        ):
            how = "retried_call"
        if how is not None:
            noticed_at = i
            break

    # Turns after the fault: those that started after the fault event (or after the hit call
    # started, for a tool fault: its event is inside that call).
    since = first.time_ns
    after = [(j, t) for j, t in enumerate(turns) if t.start_ns >= since]
    mentions = [m for m in coerce_str_list(a.get(sc.AGENT_SIGNALS_FAULT_MENTIONS)) or [] if m]
    mention_turn: int | None = None
    saw_text = False
    for j, t in after:
        text = _turn_text(t)
        if text is None:
            continue
        saw_text = True
        if mentions and any(m in text for m in mentions):
            mention_turn = j
            break
    if mentions:
        out.mentioned = True if mention_turn is not None else (False if saw_text else None)

    # The first evidence in time: the noticing call, or the mentioning turn.
    notice_time: int | None = tools[noticed_at][0].start_ns if noticed_at is not None else None
    if mention_turn is not None:
        t_start = turns[mention_turn].start_ns
        if notice_time is None or t_start < notice_time:
            notice_time = t_start
            how = "mentioned"
            noticed_at = next((i for i, (s, _, _) in later if s.start_ns >= t_start), len(tools))
    # Token counts are 0 over no turns when some turn recorded usage, None when none did.
    usage_known = any(u[0] is not None or u[1] is not None for u in turn_usage)
    out.noticed = out.noticed_in_trace = notice_time is not None
    if notice_time is not None and noticed_at is not None:
        out.noticed_how = how
        out.noticed_step = noticed_at if noticed_at < len(tools) else None
        out.steps_to_notice = noticed_at - later_from
        window = [
            (turn_usage[j][0], turn_usage[j][1]) for j, t in after if t.start_ns <= notice_time
        ]
        out.tokens_to_notice = _tokens(window) if window else (0 if usage_known else None)
    usage_after = [turn_usage[j] for j, _ in after]
    tokens_after = _tokens([(u[0], u[1]) for u in usage_after])
    out.tokens_after_fault = (
        tokens_after if tokens_after is not None else (0 if usage_known and not after else None)
    )
    costs = [u[2] for u in usage_after if u[2] is not None]
    out.cost_after_fault_usd = sum(costs) if costs else None
    return out


def with_judge(rec: Recovery, judged: JudgeField | None) -> Recovery:
    """``rec`` with the judge's verdict on whether the agent noticed the fault: a new struct
    (``rec`` is not changed). ``noticed_judge`` is the judge's value (None when it could not
    judge, or did not run); ``noticed`` stays the trace's evidence where there is some, and
    becomes true with ``noticed_how`` ``judge`` only where the trace has none and the judge
    says yes. Idempotent: judging again starts from ``noticed_in_trace``."""
    if not rec.fault_injected:
        return rec
    in_trace = rec.noticed_in_trace
    if in_trace is None and rec.noticed_how != "judge":
        in_trace = rec.noticed  # a record written before noticed_in_trace existed
    value = judged.value if judged is not None and judged.status == "ok" else None
    verdict = value if isinstance(value, bool) else None
    out = msgspec.structs.replace(rec, noticed_in_trace=in_trace, noticed_judge=verdict)
    if in_trace:
        return out
    if verdict:
        return msgspec.structs.replace(out, noticed=True, noticed_how="judge")
    if rec.noticed_how == "judge":  # an earlier judge's yes, withdrawn
        return msgspec.structs.replace(out, noticed=in_trace, noticed_how=None)
    return out
