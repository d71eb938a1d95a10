"""A judge run over traces: read spans, render transcripts, judge, merge into records.

run = judge_traces(["agentsignals-output/traces"], rubrics=resolve_rubrics(["builtin"]),
                   judge=Judge(settings, cache=JudgeCache(path)), first_wrong_step="candidates")
run.records      # attempt records with judge.<rubric>.<field>
run.spans        # judge spans with gen_ai.evaluation.result events
run.usage        # the judge's own calls, cache hits, tokens and cost
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from agentsignals import semconv as sc
from agentsignals._features.record import AttemptRecord, JudgeField
from agentsignals._judge.attribution import RUBRIC_ID as FWS_ID
from agentsignals._judge.attribution import VERSION as FWS_VERSION
from agentsignals._judge.attribution import attribute
from agentsignals._judge.engine import InjectedFault, JobResult, Judge, Outcome, Usage
from agentsignals._judge.results import judge_spans, merge_results
from agentsignals._judge.rubrics import Rubric
from agentsignals._judge.transcript import (
    DEFAULT_MAX_PART_CHARS,
    Transcript,
    from_spans,
    group_by_attempt,
)
from agentsignals._spans.model import Span, coerce_int, coerce_str_list

__all__ = [
    "JudgeRun",
    "fault_of",
    "judge_spans_in_memory",
    "judge_traces",
    "outcome_of",
    "read_spans",
]

PathArg = str | os.PathLike[str]
FWS_FIELDS = (
    "index",
    "span_id",
    "category",
    "reason",
    "relative_position",
    "phase",
    "step_phases",
)


@dataclass
class JudgeRun:
    """What a judge run produced."""

    records: list[AttemptRecord] = field(default_factory=list)
    results: list[JobResult] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    planned: int = 0

    def summary(self) -> dict[str, object]:
        could_not = sum(1 for r in self.results for f in r.fields.values() if f.status != "ok")
        fields = sum(len(r.fields) for r in self.results)
        return {
            "attempts": len(self.transcripts),
            "judgments": len(self.results),
            "planned": self.planned,
            "fields": fields,
            "fields_could_not_judge": could_not,
            "usage": self.usage.as_dict(),
        }


def outcome_of(record: AttemptRecord | None) -> Outcome:
    """The verifier's outcome of an attempt from its record (unknown when not verified)."""
    if record is None:
        return Outcome()
    v = record.verification
    resolved: bool | None = None
    if v.reward is not None:
        resolved = v.reward >= 1.0
    elif v.patch_outcome_label is not None and v.patch_outcome_label != "unverifiable":
        resolved = v.patch_outcome_label == "correct_patch"
    return Outcome(resolved=resolved, reward=v.reward, label=v.patch_outcome_label)


def fault_of(spans: Sequence[Span]) -> InjectedFault | None:
    """The first fault injected into an attempt, from the ``agent_signals.fault.injected``
    events of its attempt span (None: no fault, or no attempt span)."""
    for span in spans:
        if span.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) != sc.SpanType.ATTEMPT.value:
            continue
        events = sorted(
            (e for e in span.events if e.name == sc.EVENT_AGENT_SIGNALS_FAULT_INJECTED),
            key=lambda e: e.time_ns,
        )
        if not events:
            return None
        a = events[0].attributes
        return InjectedFault(
            kind=str(a.get(sc.AGENT_SIGNALS_FAULT_KIND) or "unknown"),
            description=str(a.get(sc.AGENT_SIGNALS_FAULT_DESCRIPTION) or ""),
            step=coerce_int(a.get(sc.AGENT_SIGNALS_FAULT_STEP)),
            trigger=str(a.get(sc.AGENT_SIGNALS_FAULT_TRIGGER) or "") or None,
            files=tuple(coerce_str_list(a.get(sc.AGENT_SIGNALS_FAULT_FILES)) or ()),
            count=len(events),
        )
    return None


def read_spans(paths: PathArg | Iterable[PathArg]) -> tuple[list[Span], list[str]]:
    """Every span in OTLP/JSON files or folders, and the problems met (file:line: what)."""
    from agentsignals._spans.decode import DecodeProblem, read_otlp_json_files

    problems: list[DecodeProblem] = []
    spans = list(read_otlp_json_files(paths, problems=problems))
    return spans, [str(p) for p in problems]


def safe_job(
    job: Callable[[], JobResult], attempt_id: str, rubric: str, version: str, names: Sequence[str]
) -> Callable[[], JobResult]:
    """A job that cannot take the run down: an unexpected error becomes could_not_judge
    fields naming it (and the rest of the batch completes)."""

    def run() -> JobResult:
        try:
            return job()
        except Exception as exc:
            reason = f"internal error: {type(exc).__name__}: {exc}"[:300]
            fields = {
                n: JudgeField(value=None, status="could_not_judge", reason=reason) for n in names
            }
            return JobResult(attempt_id, rubric, version, fields)

    return run


def _applies(rubric: Rubric, outcome: Outcome, fault: InjectedFault | None) -> bool | None:
    if rubric.applies_to == "all":
        return True
    if rubric.applies_to == "faulted":
        return fault is not None
    if outcome.resolved is None:
        return None
    return outcome.resolved is (rubric.applies_to == "resolved")


def judge_spans_in_memory(
    spans: Sequence[Span],
    *,
    rubrics: Sequence[Rubric],
    judge: Judge,
    records: Sequence[AttemptRecord] | None = None,
    first_wrong_step: str | None = None,
    first_wrong_step_all: bool = False,
    ground_truth: dict[str, str] | None = None,
    progress: Callable[[int, int, Usage], None] | None = None,
    max_part_chars: int = DEFAULT_MAX_PART_CHARS,
    attempt_ids: set[str] | None = None,
) -> JudgeRun:
    """Judge the attempts in `spans`. `records` (e.g. verified ones) are merged into and give
    the outcome used to select attempts; without them records are derived from the spans."""
    run = JudgeRun()
    groups = group_by_attempt(spans)
    if attempt_ids is not None:
        groups = {k: v for k, v in groups.items() if k in attempt_ids}
    if records is not None:
        # Results go into the given records: an attempt without one would be judged for
        # nothing, so it is left out, and said so.
        known = {r.attempt_id for r in records}
        unrecorded = [k for k in groups if k not in known]
        if unrecorded:
            run.notes.append(
                f"{len(unrecorded)} traced attempts have no record in --records and were not judged"
            )
            groups = {k: v for k, v in groups.items() if k in known}
    for attempt_id in sorted(groups):
        run.transcripts[attempt_id] = from_spans(groups[attempt_id], max_part_chars=max_part_chars)
    if records is None:
        from agentsignals._features.run import from_spans as features_from_spans

        records = features_from_spans(spans).attempts
    by_id = {r.attempt_id: r for r in records}
    jobs: list[Callable[[], JobResult]] = []
    unknown: dict[str, int] = {}
    for attempt_id, transcript in run.transcripts.items():
        record = by_id.get(attempt_id)
        outcome = outcome_of(record)
        fault = fault_of(groups[attempt_id])
        for rubric in rubrics:
            applies = _applies(rubric, outcome, fault)
            if applies is None:
                unknown[rubric.id] = unknown.get(rubric.id, 0) + 1
                continue
            if applies:
                jobs.append(
                    safe_job(
                        partial(judge.judge_rubric, transcript, rubric, outcome, fault),
                        attempt_id,
                        rubric.id,
                        rubric.version,
                        [f.name for f in rubric.fields],
                    )
                )
        if first_wrong_step is not None:
            if outcome.resolved is False or first_wrong_step_all:
                jobs.append(
                    safe_job(
                        partial(
                            attribute,
                            judge,
                            transcript,
                            mode=first_wrong_step,
                            record=record,
                            ground_truth=(ground_truth or {}).get(attempt_id),
                        ),
                        attempt_id,
                        FWS_ID,
                        FWS_VERSION,
                        FWS_FIELDS,
                    )
                )
            elif outcome.resolved is None:
                unknown["first_wrong_step"] = unknown.get("first_wrong_step", 0) + 1
    for name, count in sorted(unknown.items()):
        run.notes.append(
            f"{name}: {count} attempts skipped, their outcome is unknown (merge verified records "
            "with --records, or judge all attempts)"
        )
    missing = [a for a in by_id if a not in run.transcripts]
    if missing and attempt_ids is None:
        run.notes.append(f"{len(missing)} records have no spans here and were not judged")
    run.planned = len(jobs)
    run.results = judge.run(jobs, progress=progress)
    run.usage = judge.usage
    run.records = merge_results(records, run.results)
    run.spans = judge_spans(run.results, run.transcripts)
    return run


def judge_traces(
    paths: PathArg | Iterable[PathArg],
    *,
    rubrics: Sequence[Rubric],
    judge: Judge,
    records: Sequence[AttemptRecord] | None = None,
    first_wrong_step: str | None = None,
    first_wrong_step_all: bool = False,
    progress: Callable[[int, int, Usage], None] | None = None,
    max_part_chars: int = DEFAULT_MAX_PART_CHARS,
) -> JudgeRun:
    """Judge every attempt in OTLP/JSON trace files or folders."""
    spans, problems = read_spans(paths)
    run = judge_spans_in_memory(
        spans,
        rubrics=rubrics,
        judge=judge,
        records=records,
        first_wrong_step=first_wrong_step,
        first_wrong_step_all=first_wrong_step_all,
        progress=progress,
        max_part_chars=max_part_chars,
    )
    run.problems = problems + run.problems
    return run
