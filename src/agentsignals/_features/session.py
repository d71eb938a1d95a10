"""The product-session feature group: the inventory's `user.*`, the model-free `dynamics.*`,
the session labels, and the joins across sessions of one repository.

Pure functions over one attempt's typed spans (its `user_turn` spans, turns, tool calls and the
attempt span's compaction events), written as a :class:`SessionRecord` beside the attempt
record, for product sessions only (:func:`is_product_session`). Nothing here needs a model: the
embedding and judge signals (cp_curve, intent coherence, task paraphrase, ...) come from a
semantic pass whose result is merged through :func:`merge_semantic` (the hook), and are None
until one runs. The labels' decision trees say which inputs they lacked instead of guessing.

Units, chosen where the inventory says "tokens" and no tokenizer is shared by every agent:
user message lengths are whitespace-separated words; tool result sizes are bytes.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from agentsignals import semconv as sc
from agentsignals._features.record import (
    AttemptRecord,
    CompactionEvent,
    ModelChange,
    RegionEdit,
    SessionAnticipation,
    SessionDynamics,
    SessionRecord,
    ToolErrors,
    UserSignals,
)
from agentsignals._spans.model import STATUS_ERROR, AttrValue, Span, coerce_bool, coerce_int

__all__ = [
    "SessionThresholds",
    "is_product_session",
    "link_sessions",
    "merge_semantic",
    "session_attribution",
    "session_failure_mode",
    "session_record",
]

_log = logging.getLogger("agentsignals.features")


@dataclass(frozen=True)
class SessionThresholds:
    """Every threshold the session labels use, by name (the inventory's where it gives one)."""

    # dynamics.max_cp: > 0.45 severe misalignment, > 0.2 moderate (the inventory's).
    cp_severe: float = 0.45
    cp_moderate: float = 0.2
    # anticipation.scope_drift: > 2.0 is scope bleed (the inventory's).
    scope_drift_bleed: float = 2.0
    # dynamics.repetition_rate at or above which the session is a stuck loop (the inventory
    # says "high"; 3-5 repeats of the same call: max_repeat is behavior.stuck_loop's 3).
    stuck_repetition_rate: float = 0.3
    stuck_max_repeat: int = 3
    # dynamics.correction_ratio at or above which the user was steering heavily.
    correction_high: float = 0.3
    # anticipation.conflation_turn at or before which scope was wide from the start (multi
    # intent) rather than drifting later (scope bleed).
    early_conflation_turn: int = 1
    # anticipation.prompt_underspecification at or above which the prompt is underspecified.
    underspecified: float = 0.6
    # anticipation.task_paraphrase_accuracy below which the agent misread the task, and at
    # or above which it understood it.
    paraphrase_misread: float = 0.5
    paraphrase_understood: float = 0.8
    # A correction in the user's first `early_correction_turns` follow-ups is "early".
    early_correction_turns: int = 2
    # user.session_outcome restarted_same_task: a new session on the same repository within
    # this many seconds of this one's end.
    restart_window_s: float = 1800.0
    # user.session_reopened_within_s: null when no new session within this window (24 h).
    reopen_window_s: float = 86400.0


DEFAULT_THRESHOLDS: Final = SessionThresholds()

# Outcome values.
ACCEPTED: Final = "accepted"
RESTARTED: Final = "restarted_same_task"
ABANDONED: Final = "abandoned_mid_session"
REJECTED: Final = "explicitly_rejected"

_TYPE: Final = sc.AGENT_SIGNALS_SPAN_TYPE
_MESSAGE: Final = sc.UserTurnKind.MESSAGE.value
# Enum values read once (an Enum member's `.value` is a descriptor call, per span otherwise).
_ATTEMPT: Final = sc.SpanType.ATTEMPT.value
_VERIFICATION: Final = sc.SpanType.VERIFICATION.value
_USER_TURN: Final = sc.SpanType.USER_TURN.value
_PRODUCT: Final = sc.AttemptContext.PRODUCT.value
_EVAL: Final = sc.AttemptContext.EVAL.value


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def _order(span: Span) -> tuple[int, str]:
    return (span.start_ns, span.span_id)


def is_product_session(spans: Sequence[Span]) -> bool:
    """An interactive session a person steered: the attempt says `context=product`, or says
    nothing, is not a subagent, has a user message (a `user_turn` span of kind `message`) and
    no verifier outcome. Eval runs (`context=eval`, or no user turns) get no session record."""
    attempt = next((s for s in spans if s.attributes.get(_TYPE) == _ATTEMPT), None)
    if attempt is not None:
        context = attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_CONTEXT)
        if context == _PRODUCT:
            return True
        if context == _EVAL:
            return False
        if attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID) is not None:
            return False  # a subagent: its user is the parent agent
    has_message = False
    for s in spans:
        kind = s.attributes.get(_TYPE)
        if kind == _VERIFICATION:
            return False
        if kind == _USER_TURN and s.attributes.get(sc.AGENT_SIGNALS_USER_TURN_KIND) == _MESSAGE:
            has_message = True
    return has_message


# ------------------------------------------------------------------------------- the record


def session_record(
    spans: Sequence[Span],
    attempt: AttemptRecord,
    *,
    thresholds: SessionThresholds = DEFAULT_THRESHOLDS,
    embedder: Any = None,
    judge: Any = None,
) -> SessionRecord:
    """The session record of one product session's spans (its attempt record computed).
    With an `embedder` and/or a session `judge`, the semantic pass runs on the session's
    captured text and its signals are merged (`semantic_pass`)."""
    from agentsignals._features.extract import split_spans

    parts = split_spans(spans)
    user_spans = sorted(
        (s for s in parts.spans if s.attributes.get(_TYPE) == sc.SpanType.USER_TURN.value),
        key=_order,
    )
    attempt_span = parts.attempt
    a = attempt_span.attributes if attempt_span is not None else {}
    synthetic = any(
        s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) is True
        for s in (attempt_span, *user_spans, *parts.turns)
        if s is not None
    )
    record = SessionRecord(
        attempt_id=attempt.attempt_id,
        conversation_id=_s(a.get(sc.GEN_AI_CONVERSATION_ID)),
        trace_id=attempt.trace_id,
        span_id=attempt.span_id,
        service_name=attempt.service_name,
        resource_attributes=attempt.resource_attributes,
        agent=_s(a.get(sc.AGENT_SIGNALS_IMPORT_FORMAT)) or _s(a.get(sc.GEN_AI_AGENT_NAME)),
        repository=_s(a.get(sc.PROCESS_WORKING_DIRECTORY)),
        complete=attempt.complete,
        revision=attempt.revision,
        started_at_ns=attempt.started_at_ns,
        ended_at_ns=attempt.ended_at_ns,
    )
    user = record.user
    messages = [
        s for s in user_spans if s.attributes.get(sc.AGENT_SIGNALS_USER_TURN_KIND) == _MESSAGE
    ]
    kinds = [s.attributes.get(sc.AGENT_SIGNALS_USER_TURN_KIND) for s in user_spans]
    user.user_turn_count = len(messages)
    user.interrupts = sum(1 for k in kinds if k == sc.UserTurnKind.INTERRUPT.value)
    user.commands = sum(1 for k in kinds if k == sc.UserTurnKind.COMMAND.value)
    user.agent_turn_count = len(parts.turns)
    user.turn_ratio = len(messages) / len(parts.turns) if parts.turns else None
    lengths = [coerce_int(s.attributes.get(sc.AGENT_SIGNALS_USER_TURN_WORDS)) for s in messages]
    if all(n is not None for n in lengths):
        user.user_msg_lengths = [n for n in lengths if n is not None]
    chars = [coerce_int(s.attributes.get(sc.AGENT_SIGNALS_USER_TURN_CHARS)) for s in messages]
    if all(n is not None for n in chars):
        user.user_msg_chars = [n for n in chars if n is not None]
    user.abandoned_turns = coerce_int(a.get(sc.AGENT_SIGNALS_SESSION_ABANDONED_TURNS))
    user.output_applied = coerce_bool(a.get(sc.AGENT_SIGNALS_SESSION_OUTPUT_APPLIED))
    user.changes_reverted = coerce_bool(a.get(sc.AGENT_SIGNALS_SESSION_CHANGES_REVERTED))
    if not synthetic:
        _times(record, user_spans, parts.turns, parts.tools)
    user.compaction_events = _compactions(attempt_span, parts.turns, synthetic)
    user.model_changes = _model_changes(parts.turns)
    _tools(user, [c.span for c in parts.tools])
    _agent_text(record, parts.turns)
    _regions(user, parts.tool_spans, parts.by_id, synthetic)
    dyn = record.dynamics
    markers = [_markers(s) for s in messages]
    if messages:
        user.correction_turns = [i for i, m in enumerate(markers) if "correction" in m]
        dyn.correction_ratio = len(user.correction_turns) / len(messages)
    if user.user_msg_lengths is not None:
        dyn.user_msg_length_slope = slope(user.user_msg_lengths)
    dyn.repetition_rate = attempt.behavior.repetition_rate
    dyn.max_repeat = attempt.behavior.max_repeat
    record.anticipation.first_tool_precision = attempt.anticipation.first_tool_precision
    user.session_outcome = _outcome(user, markers)
    label(record, thresholds)
    if embedder is not None or judge is not None:
        semantic_pass(record, semantic_inputs(parts.spans), embedder, judge)
    return record


def _s(value: AttrValue | None) -> str | None:
    return value if isinstance(value, str) and value else None


def _markers(span: Span) -> list[str]:
    raw = span.attributes.get(sc.AGENT_SIGNALS_USER_TURN_MARKERS)
    return [str(x) for x in raw] if isinstance(raw, list) else []


def slope(values: Sequence[float]) -> float | None:
    """Least-squares slope of `values` against their index (scipy's linregress slope); None
    for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    sxy = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values))
    return sxy / sxx


def _times(
    record: SessionRecord, user_spans: list[Span], turns: list[Span], tools: Sequence[Any]
) -> None:
    user = record.user
    stamps = sorted([s.start_ns for s in user_spans] + [t.start_ns for t in turns])
    user.turn_timestamps = [_iso(ns) for ns in stamps]
    user.per_turn_latency_s = [max(0, t.end_ns - t.start_ns) / 1e9 for t in turns]
    start = record.started_at_ns
    if user_spans:
        start = min(user_spans[0].start_ns, start) if start is not None else user_spans[0].start_ns
    first_edit = next((c.span.start_ns for c in tools if c.is_edit), None)
    if start is not None and first_edit is not None:
        user.time_to_first_edit_s = max(0, first_edit - start) / 1e9


def _compactions(
    attempt: Span | None, turns: list[Span], synthetic: bool
) -> list[CompactionEvent] | None:
    events = [
        e
        for e in (attempt.events if attempt else ())
        if e.name == sc.EVENT_AGENT_SIGNALS_COMPACTION
    ]
    if events:
        return [
            CompactionEvent(
                turn_index=e.attr_int(sc.AGENT_SIGNALS_TURN_INDEX),
                tokens_before=e.attr_int(sc.AGENT_SIGNALS_COMPACTION_TOKENS_BEFORE),
                tokens_after=e.attr_int(sc.AGENT_SIGNALS_COMPACTION_TOKENS_AFTER),
                trigger=e.attr_str(sc.AGENT_SIGNALS_COMPACTION_TRIGGER),
                timestamp=None if synthetic else _iso(e.time_ns),
            )
            for e in sorted(events, key=lambda e: e.time_ns)
        ]
    # Producers that mark only the first turn after a compaction.
    return [
        CompactionEvent(
            turn_index=coerce_int(t.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX)),
            timestamp=None if synthetic else _iso(t.start_ns),
        )
        for t in turns
        if t.attributes.get(sc.GEN_AI_CONVERSATION_COMPACTED) is True
    ]


def _model(turn: Span) -> str | None:
    a = turn.attributes
    return _s(a.get(sc.GEN_AI_RESPONSE_MODEL)) or _s(a.get(sc.GEN_AI_REQUEST_MODEL))


def _model_changes(turns: list[Span]) -> list[ModelChange]:
    out: list[ModelChange] = []
    previous: str | None = None
    for i, turn in enumerate(turns):
        model = _model(turn)
        if model is None:
            continue
        if previous is not None and model != previous:
            index = coerce_int(turn.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))
            out.append(ModelChange(from_model=previous, to_model=model, turn_index=index or i))
        previous = model
    return out


def _failed(span: Span) -> bool:
    return span.status_code == STATUS_ERROR or span.attributes.get(sc.ERROR_TYPE) is not None


def _tools(user: UserSignals, calls: list[Span]) -> None:
    user.tool_result_sizes = [
        coerce_int(c.attributes.get(sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES)) for c in calls
    ]
    if not calls:
        return
    by_tool: dict[str, list[int]] = {}
    errors = 0
    for c in calls:
        name = _s(c.attributes.get(sc.GEN_AI_TOOL_NAME)) or "unknown"
        counts = by_tool.setdefault(name, [0, 0])
        counts[0] += 1
        if _failed(c):
            counts[1] += 1
            errors += 1
    user.tool_error_rate = errors / len(calls)
    user.tool_errors_by_type = [
        ToolErrors(tool=name, calls=n, errors=e) for name, (n, e) in sorted(by_tool.items())
    ]


def _agent_text(record: SessionRecord, turns: list[Span]) -> None:
    user, anticipation = record.user, record.anticipation
    curve: list[float | None] = []
    words_total = hedges_total = confirmations = 0
    counted = False
    for turn in turns:
        a = turn.attributes
        words = coerce_int(a.get(sc.AGENT_SIGNALS_TURN_TEXT_WORDS))
        hedges = coerce_int(a.get(sc.AGENT_SIGNALS_TURN_TEXT_HEDGES))
        asks = coerce_int(a.get(sc.AGENT_SIGNALS_TURN_TEXT_CONFIRMATION_REQUESTS))
        if anticipation.assumption_count is None:
            # The first reasoning block's assumption phrases.
            anticipation.assumption_count = coerce_int(
                a.get(sc.AGENT_SIGNALS_TURN_REASONING_ASSUMPTIONS)
            )
        if words is None:
            curve.append(None)
            continue
        counted = True
        words_total += words
        hedges_total += hedges or 0
        confirmations += asks or 0
        curve.append(100.0 * (hedges or 0) / words if words else None)
    if not counted:
        return
    user.agent_hedging_curve = curve
    user.agent_hedging_rate = 100.0 * hedges_total / words_total if words_total else None
    user.confirmation_requests = confirmations


# -------------------------------------------------------------------------------- regions


def _regions(
    user: UserSignals, tool_spans: list[Span], by_id: Mapping[str, Span], synthetic: bool
) -> None:
    """region_edit_history from every tool span's `agent_signals.tool.regions.*` (edit-tool
    diffs or workspace diffs), and the re-edit count and convergence of regions edited more
    than once (edits whose line ranges overlap in the same file are one region)."""
    edits: list[tuple[int, str, RegionEdit]] = []
    for span in tool_spans:
        a = span.attributes
        files = a.get(sc.AGENT_SIGNALS_TOOL_REGIONS_FILES)
        starts = a.get(sc.AGENT_SIGNALS_TOOL_REGIONS_START_LINES)
        added = a.get(sc.AGENT_SIGNALS_TOOL_REGIONS_ADDED_LINES)
        removed = a.get(sc.AGENT_SIGNALS_TOOL_REGIONS_REMOVED_LINES)
        if not (
            isinstance(files, list)
            and isinstance(starts, list)
            and isinstance(added, list)
            and isinstance(removed, list)
        ):
            continue
        n = min(len(files), len(starts), len(added), len(removed))
        turn = _turn_of(span, by_id)
        for i in range(n):
            start, plus, minus = (
                coerce_int(starts[i]),
                coerce_int(added[i]),
                coerce_int(removed[i]),
            )
            if start is None or plus is None or minus is None:
                continue
            edit = RegionEdit(
                file=str(files[i]),
                start_line=start,
                end_line=start + max(plus, 1) - 1,
                lines_added=plus,
                lines_removed=minus,
                turn_index=turn,
                timestamp=None if synthetic else _iso(span.start_ns),
            )
            edits.append((span.start_ns, span.span_id, edit))
    if not edits:
        if tool_spans and any(
            s.attributes.get(sc.AGENT_SIGNALS_TOOL_CATEGORY) == sc.ToolCategory.EDIT.value
            for s in tool_spans
        ):
            return  # edits were made but their line ranges not recorded: unknown, not none
        user.region_edit_history = []
        user.region_re_edit_count = 0
        user.region_edit_convergence = []
        return
    edits.sort(key=lambda e: (e[0], e[1]))
    history = [e for _, _, e in edits]
    user.region_edit_history = history
    sizes = assign_regions(history)
    multi = [s for s in sizes if len(s) > 1]
    user.region_re_edit_count = len(multi)
    user.region_edit_convergence = [convergence(s) for s in multi]


def _turn_of(span: Span, by_id: Mapping[str, Span]) -> int | None:
    parent = by_id.get(span.parent_span_id or "")
    steps = 0
    while parent is not None and steps < 64:
        if parent.attributes.get(_TYPE) == sc.SpanType.TURN.value:
            return coerce_int(parent.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))
        parent = by_id.get(parent.parent_span_id or "")
        steps += 1
    return coerce_int(span.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))


def assign_regions(history: list[RegionEdit]) -> list[list[int]]:
    """Group edits into regions (same file, overlapping or touching line ranges, merged
    transitively in edit order); sets each edit's `region` and returns each region's edit
    sizes (lines added + removed) in order. Line numbers are taken as recorded: edits above a
    region that shift it are not replayed."""
    regions: list[tuple[str, int, int, list[int]]] = []  # file, first, last, edit sizes
    for edit in history:
        lo, hi = edit.start_line, edit.end_line
        hits = [
            i for i, (f, a, b, _) in enumerate(regions) if f == edit.file and lo <= b and a <= hi
        ]
        size = edit.lines_added + edit.lines_removed
        if not hits:
            regions.append((edit.file, lo, hi, [size]))
            edit.region = len(regions) - 1
            continue
        keep = hits[0]
        f, a, b, sizes = regions[keep]
        for j in reversed(hits[1:]):  # an edit spanning two regions joins them
            _, a2, b2, sizes2 = regions[j]
            a, b = min(a, a2), max(b, b2)
            sizes = sizes + sizes2
            del regions[j]
            for other in history:
                if other.region == j and other is not edit:
                    other.region = keep
                elif other.region > j and other is not edit:
                    other.region -= 1
        regions[keep] = (f, min(a, lo), max(b, hi), [*sizes, size])
        edit.region = keep
    return [r[3] for r in regions]


def convergence(sizes: Sequence[int]) -> str:
    """A region's re-edit trend from its edit sizes in order: `converging` (never growing and
    smaller at the end), `expanding` (never shrinking and larger at the end), else
    `oscillating` (the size went both ways, or stayed the same: the same lines rewritten)."""
    steps = [b - a for a, b in itertools.pairwise(sizes)]
    if all(d <= 0 for d in steps) and sizes[-1] < sizes[0]:
        return "converging"
    if all(d >= 0 for d in steps) and sizes[-1] > sizes[0]:
        return "expanding"
    return "oscillating"


# -------------------------------------------------------------------------------- outcome


def _outcome(user: UserSignals, markers: list[list[str]]) -> str | None:
    """session_outcome from the raw end state (restarted_same_task needs the other sessions
    of the repository: `link_sessions`): rejected when the user's last message rejects the
    work or the changes were reverted; accepted when the output was committed or the last
    message is positive; otherwise abandoned. None without any user message."""
    if not markers:
        return None
    last = markers[-1]
    if "rejection" in last or user.changes_reverted is True:
        return REJECTED
    if user.output_applied is True or ("positive" in last and "correction" not in last):
        return ACCEPTED
    return ABANDONED


# --------------------------------------------------------------------------------- labels


def label(record: SessionRecord, t: SessionThresholds = DEFAULT_THRESHOLDS) -> None:
    """(Re)compute both labels from the record's current signals."""
    mode, rule, missing = session_failure_mode(record, t)
    dyn = record.dynamics
    dyn.session_failure_mode, dyn.session_failure_mode_rule = mode, rule
    dyn.session_failure_mode_missing = missing or None
    who, why, lacking = session_attribution(record, t)
    ant = record.anticipation
    ant.session_attribution, ant.session_attribution_rule = who, why
    ant.session_attribution_missing = lacking or None


def session_failure_mode(
    record: SessionRecord, t: SessionThresholds = DEFAULT_THRESHOLDS
) -> tuple[str | None, str | None, list[str]]:
    """The decision tree, first rule that holds wins; returns (label, rule, missing inputs).

    1. stuck_loop: dynamics.repetition_rate >= stuck_repetition_rate, or the same call ran
       stuck_max_repeat times in a row, or embedding_repetition_rate >= stuck_repetition_rate.
    2. multi_intent_confusion: anticipation.conflation_turn <= early_conflation_turn (scope
       wide from the start).
    3. scope_bleed: anticipation.scope_drift > scope_drift_bleed, or a later conflation_turn.
    4. assumption_locked: dynamics.assumption_lock_turn is set, or max_cp > cp_severe with
       correction_ratio >= correction_high (the user corrects, the agent stays off task).
    5. shifted_intent: max_cp > cp_severe with correction_ratio < correction_high (the
       conversation moved away from turn 0 without the user correcting the agent).
    6. clean: max_cp <= cp_severe, correction_ratio < correction_high, repetition below the
       stuck thresholds, and the scope inputs known and quiet.
    A rule whose inputs are null cannot fire; when no rule fired and an input a rule needed
    was null, the label is None and `missing` names those inputs (never a guessed `clean`).
    """
    dyn, ant = record.dynamics, record.anticipation
    missing: list[str] = []
    rep = dyn.repetition_rate
    if rep is None:
        if record.user.tool_result_sizes:  # no calls: no loop of calls
            missing.append("dynamics.repetition_rate")
    elif rep >= t.stuck_repetition_rate:
        return "stuck_loop", f"repetition_rate {rep:.3g} >= {t.stuck_repetition_rate}", []
    if dyn.max_repeat is not None and dyn.max_repeat >= t.stuck_max_repeat:
        return "stuck_loop", f"max_repeat {dyn.max_repeat} >= {t.stuck_max_repeat}", []
    emb = dyn.embedding_repetition_rate
    if emb is not None and emb >= t.stuck_repetition_rate:
        return "stuck_loop", f"embedding_repetition_rate {emb:.3g}", []
    conflation = ant.conflation_turn
    if conflation is not None and conflation <= t.early_conflation_turn:
        return "multi_intent_confusion", f"conflation_turn {conflation} (from the start)", []
    drift = ant.scope_drift
    if drift is not None and drift > t.scope_drift_bleed:
        return "scope_bleed", f"scope_drift {drift:.3g} > {t.scope_drift_bleed}", []
    if conflation is not None:
        return "scope_bleed", f"conflation_turn {conflation}", []
    if conflation is None and drift is None:
        missing.append("anticipation.scope_drift or anticipation.conflation_turn")
    if dyn.assumption_lock_turn is not None:
        return "assumption_locked", f"assumption_lock_turn {dyn.assumption_lock_turn}", []
    cp, corrections = dyn.max_cp, dyn.correction_ratio
    if cp is None:
        missing.append("dynamics.max_cp")
    if corrections is None:
        missing.append("dynamics.correction_ratio")
    if cp is not None and corrections is not None and cp > t.cp_severe:
        if corrections >= t.correction_high:
            return "assumption_locked", f"max_cp {cp:.3g} with corrections {corrections:.3g}", []
        return "shifted_intent", f"max_cp {cp:.3g} without corrections ({corrections:.3g})", []
    if missing:
        return None, None, missing
    assert cp is not None and corrections is not None
    if corrections >= t.correction_high:
        return None, f"correction_ratio {corrections:.3g} without drift: no rule fits", []
    return "clean", f"max_cp {cp:.3g} <= {t.cp_severe}, corrections {corrections:.3g}", []


def session_attribution(
    record: SessionRecord, t: SessionThresholds = DEFAULT_THRESHOLDS
) -> tuple[str | None, str | None, list[str]]:
    """Why the session went as it did; returns (label, rule, missing inputs).

    0. anticipation.prompt_underspecification gates everything (the inventory: without it
       frustration is misattributed): null -> None, missing it.
    1. underspecified_prompt: prompt_underspecification >= underspecified.
    2. scope_conflation: conflation_turn is set, or scope_drift > scope_drift_bleed.
    3. agent_misunderstood (the prompt was clear): task_paraphrase_accuracy <
       paraphrase_misread, or plan_optimality `wrong_direction`, or the user corrected the
       agent in one of the first early_correction_turns follow-ups.
    4. correct_anticipation: the session was accepted with no correction, and the agent read
       the task (task_paraphrase_accuracy >= paraphrase_understood or plan_optimality
       `optimal`).
    Otherwise None: with the judge's inputs null, `missing` names them.
    """
    ant, user = record.anticipation, record.user
    under = ant.prompt_underspecification
    if under is None:
        return None, None, ["anticipation.prompt_underspecification"]
    if under >= t.underspecified:
        return "underspecified_prompt", f"prompt_underspecification {under:.3g}", []
    if ant.conflation_turn is not None:
        return "scope_conflation", f"conflation_turn {ant.conflation_turn}", []
    if ant.scope_drift is not None and ant.scope_drift > t.scope_drift_bleed:
        return "scope_conflation", f"scope_drift {ant.scope_drift:.3g}", []
    para, plan = ant.task_paraphrase_accuracy, ant.plan_optimality
    if para is not None and para < t.paraphrase_misread:
        return "agent_misunderstood", f"task_paraphrase_accuracy {para:.3g}", []
    if plan == "wrong_direction":
        return "agent_misunderstood", "plan_optimality wrong_direction", []
    early = record.dynamics.correction_ratio
    if early is not None and _early_correction(record, t):
        return "agent_misunderstood", "a correction in the first follow-ups", []
    understood = (para is not None and para >= t.paraphrase_understood) or plan == "optimal"
    if user.session_outcome == ACCEPTED and early == 0 and understood:
        return "correct_anticipation", "accepted without correction, task read right", []
    missing = [
        name
        for name, value in (
            ("anticipation.task_paraphrase_accuracy", para),
            ("anticipation.plan_optimality", plan),
            ("anticipation.conflation_turn", ant.conflation_turn),
        )
        if value is None
    ]
    return None, None, missing


def _early_correction(record: SessionRecord, t: SessionThresholds) -> bool:
    """A correction in one of the user's first follow-ups (message 0 is the prompt)."""
    turns = record.user.correction_turns or []
    return any(1 <= i <= t.early_correction_turns for i in turns)


# ---------------------------------------------------------------------------- the joins


def link_sessions(
    sessions: list[SessionRecord], *, thresholds: SessionThresholds = DEFAULT_THRESHOLDS
) -> list[SessionRecord]:
    """Fill the joins across sessions of one repository (`process.working_directory`), in
    start order: prior_sessions_same_repo, prior_sessions_same_region (earlier sessions with
    an edit overlapping one of this session's edits), session_reopened_within_s (to the next
    session's start, None beyond reopen_window_s), and session_outcome restarted_same_task
    (an abandoned session followed within restart_window_s by another on the same
    repository). Sessions without a repository or times are left as they are. Returns the
    sessions sorted by start."""
    ordered = sorted(sessions, key=lambda s: (s.started_at_ns or 0, s.attempt_id))
    by_repo: dict[str, list[SessionRecord]] = {}
    for s in ordered:
        if s.repository is not None and s.started_at_ns is not None:
            by_repo.setdefault(s.repository, []).append(s)
    for group in by_repo.values():
        for i, s in enumerate(group):
            s.user.prior_sessions_same_repo = i
            mine = s.user.region_edit_history
            if mine is not None:
                s.user.prior_sessions_same_region = sum(
                    1
                    for p in group[:i]
                    if p.user.region_edit_history is not None
                    and _overlap(mine, p.user.region_edit_history)
                )
            nxt = group[i + 1] if i + 1 < len(group) else None
            end = s.ended_at_ns
            if end is None:
                continue
            gap = (nxt.started_at_ns - end) / 1e9 if nxt and nxt.started_at_ns else None
            if gap is not None and gap < 0:
                gap = 0.0  # overlapping sessions: reopened at once
            s.user.session_reopened_within_s = (
                gap if gap is not None and gap <= thresholds.reopen_window_s else None
            )
            if (
                s.user.session_outcome == ABANDONED
                and gap is not None
                and gap <= thresholds.restart_window_s
            ):
                s.user.session_outcome = RESTARTED
                label(s, thresholds)
    return ordered


def _overlap(a: Iterable[RegionEdit], b: Iterable[RegionEdit]) -> bool:
    theirs: dict[str, list[tuple[int, int]]] = {}
    for e in b:
        theirs.setdefault(e.file, []).append((e.start_line, e.end_line))
    return any(
        lo <= e.end_line and e.start_line <= hi for e in a for lo, hi in theirs.get(e.file, ())
    )


# ------------------------------------------------------------------------- semantic hook


def merge_semantic(record: SessionRecord, values: Mapping[str, object]) -> list[str]:
    """THE HOOK for the model-based session signals: set the record's `dynamics.*` and
    `anticipation.*` fields from a semantic pass's result (keys `dynamics.cp_curve` or bare
    `cp_curve`), then recompute the labels. A key naming no field, or a value of the wrong
    type, is skipped and returned (logged once), never stored."""
    import msgspec

    skipped: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        group_name, _, name = key.rpartition(".")
        targets = (
            [getattr(record, group_name, None)]
            if group_name
            else [record.dynamics, record.anticipation]
        )
        target = next(
            (g for g in targets if isinstance(g, msgspec.Struct) and name in g.__struct_fields__),
            None,
        )
        if target is None or name.startswith("session_"):
            skipped.append(key)
            continue
        try:
            converted = msgspec.convert(value, _HINTS[(type(target).__name__, name)])
        except (msgspec.ValidationError, KeyError):
            skipped.append(key)
            continue
        setattr(target, name, converted)
    if skipped:
        _log.warning("semantic session signals not stored (unknown or ill-typed): %s", skipped)
    label(record)
    return skipped


def _field_hints() -> dict[tuple[str, str], Any]:
    import typing

    out: dict[tuple[str, str], Any] = {}
    for group in (SessionDynamics, SessionAnticipation):
        for name, hint in typing.get_type_hints(group).items():
            out[(group.__name__, name)] = hint
    return out


_HINTS: Final = _field_hints()


SEMANTIC_MODULE: Final = "agentsignals._features.session_semantic"


def semantic_pass(
    record: SessionRecord, inputs: Mapping[str, Any], embedder: Any, judge: Any = None
) -> list[str] | None:
    """THE CALL of the model-based session signals: `semantic_signals(SessionText(**inputs),
    embedder, judge)` of `agentsignals._features.session_semantic` (imported lazily; a
    separate feature group), its result merged by `merge_semantic`. None when that module is
    not installed; a failure of the pass is logged and leaves the record as it was."""
    import importlib

    try:
        module = importlib.import_module(SEMANTIC_MODULE)
    except ImportError:
        return None
    try:
        values = module.semantic_signals(module.SessionText(**inputs), embedder, judge)
    except Exception:
        _log.exception("session %s: the semantic pass failed", record.attempt_id)
        return None
    record.semantic_source = SEMANTIC_MODULE
    return merge_semantic(record, values)


def semantic_inputs(spans: Sequence[Span]) -> dict[str, Any]:
    """The session's text as the semantic pass takes it (`SessionText`'s fields), from the
    content captured on the spans (`--content` imports, live content capture), in order:
    `task` (the first user message), `user_turns` (every user message; "" where its text was
    not captured), `agent_turns` (each agent turn's visible text), `reasoning` (the reasoning
    blocks written), `tool_calls` (`name` and the arguments as sorted-key JSON; "" where the
    arguments were not captured), the user turns after which a compaction happened and the
    agent turns that followed one (`compaction_turns`, `compaction_agent_turns`), the user
    turn each agent turn answers and the agent turn of each call (`agent_turn_user`,
    `call_turns`). Without content the texts
    are empty and the task None: the pass then has nothing to embed."""
    import json

    by_id = {s.span_id: s for s in spans}
    user_spans = sorted(
        (
            s
            for s in spans
            if s.attributes.get(_TYPE) == sc.SpanType.USER_TURN.value
            and s.attributes.get(sc.AGENT_SIGNALS_USER_TURN_KIND) == _MESSAGE
        ),
        key=_order,
    )
    turns = sorted(
        (s for s in spans if s.attributes.get(_TYPE) == sc.SpanType.TURN.value), key=_order
    )
    tools = sorted(
        (
            s
            for s in spans
            if s.attributes.get(_TYPE) == sc.SpanType.TOOL.value
            and by_id.get(s.parent_span_id or "") is not None
            and by_id[s.parent_span_id or ""].attributes.get(_TYPE) != sc.SpanType.TOOL.value
        ),
        key=_order,
    )
    user_turns = [
        _message_text(s.attributes.get(sc.GEN_AI_INPUT_MESSAGES), "user", "text")
        for s in user_spans
    ]
    agent_turns, reasoning, agent_turn_user = [], [], []
    compaction_turns: list[int] = []
    compaction_agent_turns: list[int] = []
    turn_index = {t.span_id: i for i, t in enumerate(turns)}
    u = 0
    for i, t in enumerate(turns):
        while u < len(user_spans) and _order(user_spans[u]) <= _order(t):
            u += 1
        agent_turn_user.append(max(u - 1, 0))
        output = t.attributes.get(sc.GEN_AI_OUTPUT_MESSAGES)
        agent_turns.append(_message_text(output, None, "text"))
        thought = _message_text(output, None, "reasoning")
        if thought:
            reasoning.append(thought)
        if t.attributes.get(sc.GEN_AI_CONVERSATION_COMPACTED) is True:
            compaction_agent_turns.append(i)
            compaction_turns.append(max(u - 1, 0))
    calls, call_turns = [], []
    for s in tools:
        name = _s(s.attributes.get(sc.GEN_AI_TOOL_NAME)) or "unknown"
        args = s.attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
        # Arguments not captured (no content): no text, so no signal is computed from the
        # bare name (every `Bash` call would read as a near-duplicate of the first).
        text = ""
        if isinstance(args, str):
            try:
                text = f"{name} {json.dumps(json.loads(args), sort_keys=True)}"
            except ValueError:
                text = f"{name} {args}"  # a truncated value is plain text
        calls.append(text)
        call_turns.append(turn_index.get(s.parent_span_id or "", 0))
    task = next((t for t in user_turns if t.strip()), None)
    return {
        "task": task,
        "user_turns": user_turns,
        "agent_turns": agent_turns,
        "compaction_turns": compaction_turns,
        "tool_calls": calls,
        "reasoning": reasoning,
        "compaction_agent_turns": compaction_agent_turns,
        "agent_turn_user": agent_turn_user,
        "call_turns": call_turns,
    }


def _message_text(value: AttrValue | None, role: str | None, kind: str) -> str:
    """The `kind` parts (text, reasoning) of GenAI JSON messages of `role` (any: None),
    joined."""
    import json

    if not isinstance(value, str):
        return ""
    try:
        messages = json.loads(value)
    except ValueError:
        return ""
    out: list[str] = []
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, dict) or (role is not None and m.get("role") != role):
            continue
        for part in m.get("parts") or []:
            if isinstance(part, dict) and part.get("type") == kind:
                content = part.get("content")
                if isinstance(content, str):
                    out.append(content)
    return "\n".join(out)
