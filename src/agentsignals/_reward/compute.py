"""Dense rewards: an attempt's spans and record -> per-turn reward records and a trajectory one.

The trajectory reward is the verifier's outcome plus the shaping components the spec lists
(clipped to ``shaping.max_total``; when clipped, every turn's shaping is scaled by the same
factor so the turns still add up to the trajectory). The outcome sits on the last turn, where
trainers put a sparse reward. Credit assignment: in a failed attempt with a first wrong step
(``judge.first_wrong_step``, status ok), the turns before the step's turn are not blamed:
``credited`` is False for them and their ``return`` stops before that turn (it holds only their
own shaping), so a trainer can zero their advantage. Components a record cannot support
(no judge run, no parsed test runs) are listed as ``unavailable``, never scored as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentsignals import semconv as sc
from agentsignals._features.extract import AttemptSpans, ToolCall, split_spans
from agentsignals._features.record import AttemptRecord
from agentsignals._reward.spec import Component, RewardSpec
from agentsignals._spans.model import Span, coerce_int

__all__ = ["AttemptRewards", "TrajectoryReward", "TurnReward", "attempt_rewards", "resolved_of"]

_TEST = sc.ToolCategory.TEST.value
_EDIT = sc.ToolCategory.EDIT.value
_SUBMIT = sc.ToolCategory.SUBMIT.value


@dataclass
class TurnReward:
    trial_id: str | None
    attempt_id: str
    task_id: str | None
    turn_index: int
    span_id: str
    value: float
    components: dict[str, float]
    credited: bool
    return_: float
    spec: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "turn",
            "spec": self.spec,
            "trial_id": self.trial_id,
            "attempt_id": self.attempt_id,
            "task_id": self.task_id,
            "turn_index": self.turn_index,
            "span_id": self.span_id,
            "value": self.value,
            "components": self.components,
            "credited": self.credited,
            "return": self.return_,
        }


@dataclass
class TrajectoryReward:
    trial_id: str | None
    attempt_id: str
    task_id: str | None
    attempt_index: int | None
    span_id: str | None
    trace_id: str | None
    value: float
    outcome: float
    resolved: bool | None
    shaping: float
    shaping_raw: float
    components: dict[str, float]
    unavailable: list[str]
    turns: int
    first_wrong_turn: int | None
    spec: dict[str, str]
    arm: dict[str, str | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "trajectory",
            "spec": self.spec,
            "trial_id": self.trial_id,
            "attempt_id": self.attempt_id,
            "task_id": self.task_id,
            "attempt_index": self.attempt_index,
            "span_id": self.span_id,
            "trace_id": self.trace_id,
            "value": self.value,
            "outcome": self.outcome,
            "resolved": self.resolved,
            "shaping": self.shaping,
            "shaping_raw": self.shaping_raw,
            "components": self.components,
            "unavailable": self.unavailable,
            "turns": self.turns,
            "first_wrong_turn": self.first_wrong_turn,
            **self.arm,
        }


@dataclass
class AttemptRewards:
    trajectory: TrajectoryReward
    turns: list[TurnReward]


def resolved_of(record: AttemptRecord) -> bool | None:
    """The verifier's verdict (the report's rule): reward >= 1, else the label, else None."""
    v = record.verification
    if v.reward is not None:
        return v.reward >= 1.0 - 1e-9
    if v.patch_outcome_label is not None and v.patch_outcome_label != "unverifiable":
        return v.patch_outcome_label == "correct_patch"
    return None


class _Turns:
    """Turn spans in order, and where a span (turn or tool) belongs."""

    def __init__(self, parts: AttemptSpans) -> None:
        self.spans = parts.turns
        self.position: dict[int, int] = {}
        for i, t in enumerate(self.spans):
            idx = coerce_int(t.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))
            if idx is not None and idx not in self.position:
                self.position[idx] = i
        self.by_span = {t.span_id: i for i, t in enumerate(self.spans)}
        self.parts = parts

    def of_span(self, span: Span) -> int | None:
        if span.span_id in self.by_span:
            return self.by_span[span.span_id]
        idx = coerce_int(span.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))
        if idx is not None and idx in self.position:
            return self.position[idx]
        # No index: the last turn that started before it.
        before = [i for i, t in enumerate(self.spans) if t.start_ns <= span.start_ns]
        return before[-1] if before else None

    def of_span_id(self, span_id: str) -> int | None:
        span = self.parts.by_id.get(span_id)
        return self.of_span(span) if span is not None else None

    @property
    def last(self) -> int:
        return len(self.spans) - 1


def _names(span: Span, key: str) -> set[str]:
    value = span.attributes.get(key)
    return {str(v) for v in value} if isinstance(value, list) else set()


def _executed(span: Span) -> int:
    a = span.attributes
    return sum(
        coerce_int(a.get(k)) or 0
        for k in (
            sc.AGENT_SIGNALS_TEST_PASSED_COUNT,
            sc.AGENT_SIGNALS_TEST_FAILED_COUNT,
            sc.AGENT_SIGNALS_TEST_ERROR_COUNT,
        )
    )


def _all_passed(span: Span, at_least: int) -> bool:
    """A complete run with no failure or error that ran at least ``at_least`` tests (its
    output need not name the tests that passed: ``pytest -q`` does not)."""
    a = span.attributes
    failed = (coerce_int(a.get(sc.AGENT_SIGNALS_TEST_FAILED_COUNT)) or 0) + (
        coerce_int(a.get(sc.AGENT_SIGNALS_TEST_ERROR_COUNT)) or 0
    )
    return (
        a.get(sc.AGENT_SIGNALS_TEST_COMPLETE) is True
        and failed == 0
        and _executed(span) >= max(at_least, 1)
    )


def _parsed_runs(calls: Sequence[ToolCall]) -> list[tuple[int, ToolCall]]:
    return [
        (i, c)
        for i, c in enumerate(calls)
        if c.span.attributes.get(sc.AGENT_SIGNALS_TEST_FRAMEWORK) is not None
    ]


def _last_edit_before(calls: Sequence[ToolCall], stop: int, start: int = 0) -> int | None:
    for i in range(stop - 1, start - 1, -1):
        if calls[i].is_edit:
            return i
    return None


def _judge_value(record: AttemptRecord, rubric: str, name: str) -> Any:
    fields = (record.judge or {}).get(rubric) or {}
    f = fields.get(name)
    if f is None or f.status != "ok":
        return None
    return f


def _record_field(record: AttemptRecord, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return value


def _component(
    c: Component, record: AttemptRecord, turns: _Turns, calls: Sequence[ToolCall]
) -> tuple[bool, int | None]:
    """(available, the turn it fires at or None when it does not fire)."""
    last = turns.last
    if c.rule == "judge_flag":
        f = _judge_value(record, c.rubric or "", "match")
        if f is None:
            return False, None
        if f.value is not True:
            return True, None
        for span_id in f.citations:
            at = turns.of_span_id(span_id)
            if at is not None:
                return True, at
        return True, last
    if c.rule == "record_flag":
        value = _record_field(record, c.field or "")
        if value is None:
            return False, None
        return True, (last if value == c.equals else None)
    if c.rule == "unvalidated_submit":
        validated = record.behavior.validated_after_last_edit
        if validated is None:
            return False, None
        submitted = record.infra.exit_reason == sc.AttemptExitReason.SUBMITTED.value or (
            bool(calls) and calls[-1].category == _SUBMIT
        )
        return True, (last if submitted and not validated else None)
    edits = [i for i, c2 in enumerate(calls) if c2.is_edit]
    if c.rule == "validation":
        if not edits:
            return False, None
        for i in range(edits[-1] + 1, len(calls)):
            call = calls[i]
            if call.category != _TEST:
                continue
            parsed = call.span.attributes.get(sc.AGENT_SIGNALS_TEST_FRAMEWORK) is not None
            if parsed and _executed(call.span) < c.min_tests:
                continue
            return True, turns.of_span(call.span)
        return True, None
    runs = _parsed_runs(calls)
    if c.rule == "regression":
        if len(runs) < 2:
            return False, None
        passed_before: set[str] = set()
        prev = 0
        for i, run in runs:
            failed = _names(run.span, sc.AGENT_SIGNALS_TEST_FAILED)
            if failed & passed_before:
                edit = _last_edit_before(calls, i, prev)
                return True, turns.of_span(calls[edit if edit is not None else i].span)
            passed_before |= _names(run.span, sc.AGENT_SIGNALS_TEST_PASSED)
            prev = i
        return True, None
    if c.rule == "fixed_failing_test":
        first_edit = edits[0] if edits else len(calls)
        baseline: set[str] = set()
        seen_before = False
        for i, run in runs:
            if i < first_edit:
                seen_before = True
                baseline |= _names(run.span, sc.AGENT_SIGNALS_TEST_FAILED)
        if not seen_before:
            return False, None
        covered = max((_executed(run.span) for i, run in runs if i < first_edit), default=0)
        for i, run in runs:
            if i <= first_edit:
                continue
            fixed = baseline & _names(run.span, sc.AGENT_SIGNALS_TEST_PASSED)
            if not fixed and baseline and _all_passed(run.span, covered):
                fixed = baseline  # a complete, all-green run at least as large as the baseline
            if fixed:
                edit = _last_edit_before(calls, i)
                return True, turns.of_span(calls[edit if edit is not None else i].span)
        return True, None
    return False, None


def attempt_rewards(
    spans: Sequence[Span], record: AttemptRecord, spec: RewardSpec
) -> AttemptRewards | None:
    """Rewards of one attempt, or None when the spec skips it (no verifier outcome and
    ``outcome.unverified: skip``, or no turn spans to put rewards on)."""
    parts = split_spans(spans)
    turns = _Turns(parts)
    if not turns.spans:
        return None
    resolved = resolved_of(record)
    if resolved is None and spec.unverified == "skip":
        return None
    outcome = spec.resolved if resolved else spec.failed if resolved is False else 0.0
    n = len(turns.spans)
    shaping_at: list[dict[str, float]] = [{} for _ in range(n)]
    totals: dict[str, float] = {}
    unavailable: list[str] = []
    for c in spec.components:
        available, at = _component(c, record, turns, parts.tools)
        if not available:
            unavailable.append(c.name)
            continue
        totals[c.name] = 0.0
        if at is not None:
            shaping_at[at][c.name] = c.value
            totals[c.name] = c.value
    raw = sum(totals.values())
    scale = 1.0
    if spec.max_total and abs(raw) > spec.max_total:
        scale = spec.max_total / abs(raw)
    elif spec.max_total == 0:
        scale = 0.0
    values: list[float] = []
    components_at: list[dict[str, float]] = []
    for i in range(n):
        comps = {k: v * scale for k, v in shaping_at[i].items()}
        if i == n - 1:
            comps["outcome"] = outcome
        components_at.append(comps)
        values.append(sum(comps.values()))
    # Credit assignment from the first wrong step (failed attempts only).
    fws_turn: int | None = None
    if spec.first_wrong_step and resolved is False:
        f = _judge_value(record, "first_wrong_step", "span_id")
        if f is not None and isinstance(f.value, str):
            fws_turn = turns.of_span_id(f.value)
    credited = [fws_turn is None or i >= fws_turn for i in range(n)]
    returns = [0.0] * n
    acc = 0.0
    for i in range(n - 1, -1, -1):
        if fws_turn is not None and i == fws_turn - 1:
            acc = 0.0  # the turns before the first wrong step do not inherit what follows
        acc = values[i] + spec.discount * acc
        returns[i] = acc
    header = spec.header()
    base = (record.trial_id, record.attempt_id, record.task_id)
    turn_records = [
        TurnReward(
            *base,
            turn_index=coerce_int(t.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX)) or i,
            span_id=t.span_id,
            value=values[i],
            components=components_at[i],
            credited=credited[i],
            return_=returns[i],
            spec=header,
        )
        for i, t in enumerate(turns.spans)
    ]
    shaping = raw * scale
    trajectory = TrajectoryReward(
        *base,
        attempt_index=record.attempt_index,
        span_id=record.span_id,
        trace_id=record.trace_id,
        value=outcome + shaping,
        outcome=outcome,
        resolved=resolved,
        shaping=shaping,
        shaping_raw=raw,
        components={k: v * scale for k, v in totals.items()},
        unavailable=unavailable,
        turns=n,
        first_wrong_turn=fws_turn,
        spec=header,
        arm={
            "agent_type": record.treatment.agent_type,
            "model_id": record.treatment.model_id,
            "dataset": record.treatment.dataset,
        },
    )
    return AttemptRewards(trajectory, turn_records)
