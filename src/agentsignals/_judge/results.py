"""Judge results into the records and onto the traces.

Records: each result becomes ``judge.<rubric>.<field>`` (a JudgeField) in the attempt record
(results of other rubrics already there are kept; a rubric judged again is replaced whole).

Spans: each result becomes one judge span in the attempt's trace (a child of the attempt span,
or of the cited step's span for the first wrong step) with one ``gen_ai.evaluation.result``
event per field, named ``judge.<rubric>.<field>``, so Phoenix, Jaeger and other viewers show the
verdict where it belongs. Span ids are derived from what was judged, so writing the same results
twice gives the same spans (viewers and collectors deduplicate them).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from agentsignals import semconv as sc
from agentsignals._features.record import AttemptRecord, JudgeField
from agentsignals._features.recovery import JUDGE_FIELD as NOTICED_FIELD
from agentsignals._features.recovery import with_judge
from agentsignals._judge.engine import JobResult
from agentsignals._judge.transcript import Transcript
from agentsignals._spans.model import Attributes, AttrValue, Event, Span

__all__ = ["evaluation_event", "judge_spans", "merge_results", "write_judge_spans"]

MAX_EXPLANATION_ON_SPAN: Final = 4000


def merge_results(
    records: Iterable[AttemptRecord], results: Iterable[JobResult]
) -> list[AttemptRecord]:
    """New records with the results' fields under `judge` (input records are not changed)."""
    by_attempt: dict[str, list[JobResult]] = {}
    for result in results:
        by_attempt.setdefault(result.attempt_id, []).append(result)
    out: list[AttemptRecord] = []
    for record in records:
        found = by_attempt.get(record.attempt_id)
        if not found:
            out.append(record)
            continue
        judge = {k: dict(v) for k, v in (record.judge or {}).items()}
        for result in found:
            judge[result.rubric] = dict(result.fields)
        merged = msgspec.structs.replace(record, judge=judge)
        rubric, name = NOTICED_FIELD
        if rubric in judge and merged.recovery.fault_injected:
            # The judge's opinion on noticing the fault joins the recovery signals, apart.
            recovery = with_judge(merged.recovery, judge[rubric].get(name))
            merged = msgspec.structs.replace(merged, recovery=recovery)
        out.append(merged)
    return out


def _score(value: Any) -> tuple[str | None, float | None]:
    if isinstance(value, bool):
        return ("true" if value else "false"), (1.0 if value else 0.0)
    if isinstance(value, int | float):
        return None, float(value)
    if isinstance(value, str):
        return value[:200], None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)[:200], None
    return None, None


def evaluation_event(name: str, result: JudgeField, time_ns: int) -> Event:
    """The `gen_ai.evaluation.result` event of one judge field."""
    attrs: Attributes = {sc.GEN_AI_EVALUATION_NAME: name}
    if result.status != "ok":
        attrs[sc.ERROR_TYPE] = result.status
        attrs[sc.GEN_AI_EVALUATION_EXPLANATION] = (result.reason or "")[:MAX_EXPLANATION_ON_SPAN]
        return Event(sc.EVENT_GEN_AI_EVALUATION_RESULT, time_ns, attrs)
    label, score = _score(result.value)
    if label is not None:
        attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
    if score is not None:
        attrs[sc.GEN_AI_EVALUATION_SCORE_VALUE] = score
    if result.explanation:
        attrs[sc.GEN_AI_EVALUATION_EXPLANATION] = result.explanation[:MAX_EXPLANATION_ON_SPAN]
    return Event(sc.EVENT_GEN_AI_EVALUATION_RESULT, time_ns, attrs)


def _span_id(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).digest()[:8]
    if digest == b"\0" * 8:  # an all-zero id is invalid
        digest = b"\0" * 7 + b"\1"
    return digest.hex()


def judge_spans(
    results: Sequence[JobResult],
    transcripts: dict[str, Transcript],
    *,
    now_ns: int | None = None,
) -> list[Span]:
    """One judge span per result whose attempt has a trace and a span to hang it on."""
    now = time.time_ns() if now_ns is None else now_ns
    spans: list[Span] = []
    resources: dict[int, dict[str, AttrValue]] = {}
    for result in results:
        transcript = transcripts.get(result.attempt_id)
        if transcript is None or transcript.trace_id is None:
            continue
        resource = resources.setdefault(id(transcript), judge_resource(transcript.resource))
        parent = result.step_span_id or transcript.attempt_span_id
        if parent is None:
            continue
        model = next((f.model for f in result.fields.values() if f.model), "") or ""
        attrs: Attributes = {
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.JUDGE.value,
            sc.AGENT_SIGNALS_JUDGE_RUBRIC: result.rubric,
            sc.AGENT_SIGNALS_JUDGE_RUBRIC_VERSION: result.rubric_version,
            sc.AGENT_SIGNALS_JUDGE_ATTEMPT_SPAN_ID: transcript.attempt_span_id or "",
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.GEN_AI_USAGE_INPUT_TOKENS: result.usage.input_tokens
            + result.usage.cached_input_tokens,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: result.usage.output_tokens
            + result.usage.cached_output_tokens,
        }
        if result.step_index is not None:
            attrs[sc.AGENT_SIGNALS_JUDGE_STEP] = result.step_index
        if transcript.trial_id:
            attrs[sc.AGENT_SIGNALS_TRIAL_ID] = transcript.trial_id
        if transcript.task_id:
            attrs[sc.AGENT_SIGNALS_TASK_ID] = transcript.task_id
        events = [
            evaluation_event(f"judge.{result.rubric}.{name}", field, now)
            for name, field in result.fields.items()
        ]
        spans.append(
            Span(
                trace_id=transcript.trace_id,
                span_id=_span_id(
                    transcript.trace_id, parent, result.rubric, result.rubric_version, model
                ),
                parent_span_id=parent,
                name=f"judge {result.rubric}",
                kind=1,
                start_ns=now,
                end_ns=now,
                attributes=attrs,
                events=events,
                resource=resource,
                scope_name="agentsignals",
            )
        )
    return spans


_PRODUCER_KEYS = ("service.", "process.", "host.", "telemetry.")


def judge_resource(judged: Mapping[str, Any]) -> dict[str, AttrValue]:
    """The resource of a judge span: the judged run's (its project, environment and tags, so
    a viewer that groups by them, such as Phoenix's projects, shows the verdict beside the
    run) without what describes the run's producer, and `service.name` agentsignals-judge."""
    out: dict[str, AttrValue] = {
        k: v for k, v in judged.items() if not k.startswith(_PRODUCER_KEYS)
    }
    out["service.name"] = "agentsignals-judge"
    return out


def write_judge_spans(spans: Sequence[Span], directory: str | os.PathLike[str]) -> Path | None:
    """Write judge spans as one OTLP/JSON line to a new file in `directory` (the folder a
    viewer, `agentsignals features` or a collector reads); None when there are none."""
    if not spans:
        return None
    from agentsignals._spans.encode import encode_otlp_json

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = folder / f"judge-{stamp}-{os.getpid()}.jsonl"
    path.write_bytes(encode_otlp_json(list(spans), schema_url=sc.SCHEMA_URL) + b"\n")
    return path
