"""Export to Docent (Transluce): `AgentRun` JSON, and upload through its REST API.

Mapping: a trial is an ``AgentRun``; each attempt is a ``Transcript`` (named ``attempt N``,
``created_at`` its start); each turn an ``AssistantMessage`` (reasoning as ``ContentReasoning``,
text as ``ContentText``, its tool calls as ``ToolCall``), each tool call a ``ToolMessage`` (its
result, an ``error`` when it failed), the task statement and later user messages
``UserMessage``. Span ids, step numbers and turn indexes ride in each message's ``metadata``
(Docent hides metadata from its judges); the verifier's outcome is ``metadata.scores``, our
feature fields and judge results are in the transcript's ``metadata``, and
``metadata.agentsignals.trial_id`` is the key that de-duplicates uploads (Docent's client does
not let callers set ids).

No dependency on the ``docent`` package: the JSON is built here and checked in the tests
against Docent's own pydantic models.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from agentsignals._features.record import AttemptRecord
from agentsignals._features.store import flatten
from agentsignals._judge.transcript import Step, Transcript

__all__ = [
    "DEFAULT_API_URL",
    "MAX_PAYLOAD_BYTES",
    "UploadReport",
    "agent_run",
    "agent_runs",
    "upload_agent_runs",
]

DEFAULT_API_URL: Final = "https://api.docent.transluce.org/rest"
MAX_PAYLOAD_BYTES: Final = 100 * 1024 * 1024  # Docent's request limit, uncompressed
DEDUP_KEY: Final = "agentsignals"


def _iso(ns: int | None) -> str | None:
    if not ns:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat()


def _arguments(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"input": text}
    return value if isinstance(value, dict) else {"input": value}


def _message_meta(step: Step) -> dict[str, Any]:
    meta: dict[str, Any] = {"agentsignals_span_id": step.span_id, "step": step.index}
    if step.turn_index is not None:
        meta["turn_index"] = step.turn_index
    if step.kind == "tool":
        meta["category"] = step.category
        if step.exit_code is not None:
            meta["exit_code"] = step.exit_code
        if step.changed_files:
            meta["changed_files"] = step.changed_files
    return meta


def transcript_messages(transcript: Transcript) -> list[dict[str, Any]]:
    """The Docent messages of one attempt."""
    messages: list[dict[str, Any]] = []
    if transcript.task:
        messages.append({"role": "user", "content": transcript.task})
    steps = transcript.steps
    i = 0
    while i < len(steps):
        step = steps[i]
        if step.kind == "tool":
            # A tool with no turn before it (or after the turn's own calls): its own call.
            tools = [step]
            i += 1
            turn: Step | None = None
        else:
            turn = step
            i += 1
            tools = []
            while i < len(steps) and steps[i].kind == "tool":
                tools.append(steps[i])
                i += 1
        if turn is not None:
            for text in turn.user_texts:
                messages.append({"role": "user", "content": text})
        calls = []
        for tool in tools:
            call_id = tool.call_id or f"call_{tool.span_id}"
            calls.append(
                {
                    "id": call_id,
                    "function": tool.tool_name or "tool",
                    "arguments": _arguments(tool.arguments)
                    if tool.arguments or not tool.command
                    else {"command": tool.command},
                    "type": "function",
                }
            )
        if turn is not None and not tools and turn.tool_calls:
            # Tool calls the model asked for that no tool span ran (or recorded).
            calls = [
                {
                    "id": f"call_{turn.span_id}_{n}",
                    "function": name,
                    "arguments": _arguments(args),
                    "type": "function",
                }
                for n, (name, args) in enumerate(turn.tool_calls)
            ]
        content: list[dict[str, Any]] = []
        if turn is not None:
            content += [
                {"type": "reasoning", "reasoning": r, "redacted": False} for r in turn.reasoning
            ]
            content += [{"type": "text", "text": t} for t in turn.texts]
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": content if content else "",
            "metadata": _message_meta(turn) if turn is not None else {"step": None},
        }
        if turn is not None and turn.model:
            assistant["model"] = turn.model
        if calls:
            assistant["tool_calls"] = calls
        if turn is not None or calls:
            messages.append(assistant)
        for tool, call in zip(tools, calls, strict=False):
            message: dict[str, Any] = {
                "role": "tool",
                "content": tool.result if tool.result is not None else "",
                "tool_call_id": call["id"],
                "function": tool.tool_name,
                "metadata": _message_meta(tool),
            }
            if tool.failed:
                message["error"] = {
                    "type": "tool_error",
                    "message": tool.title.split("failed: ", 1)[-1].rstrip(")")
                    if "failed: " in tool.title
                    else "failed",
                }
            messages.append(message)
    return messages


def _scalars(record: AttemptRecord) -> dict[str, Any]:
    row = flatten(record)
    return {
        k: v
        for k, v in row.items()
        if isinstance(v, str | int | float | bool) and not k.startswith("judge.")
    }


def _judge_meta(record: AttemptRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rubric, fields in sorted((record.judge or {}).items()):
        out[rubric] = {
            name: {
                "value": f.value,
                "status": f.status,
                "explanation": f.explanation if f.status == "ok" else f.reason,
                "citations": f.citations,
                "model": f.model,
            }
            for name, f in sorted(fields.items())
        }
    return out


def agent_run(
    trial_id: str,
    transcripts: Sequence[Transcript],
    records: dict[str, AttemptRecord],
    *,
    trial_start_ns: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One Docent AgentRun (as JSON data) for a trial and its attempts."""

    def order(t: Transcript) -> tuple[int, int, str]:
        record = records.get(t.attempt_id)
        index = record.attempt_index if record is not None else None
        return (index or 0, (trial_start_ns or {}).get(t.attempt_id, 0), t.attempt_id)

    ordered = sorted(transcripts, key=order)
    out_transcripts = []
    last_record: AttemptRecord | None = None
    task_id = None
    for t in ordered:
        record = records.get(t.attempt_id)
        task_id = task_id or t.task_id or (record.task_id if record else None)
        meta: dict[str, Any] = {
            "agentsignals": {
                "attempt_id": t.attempt_id,
                "attempt_span_id": t.attempt_span_id,
                "trace_id": t.trace_id,
            }
        }
        name = "attempt"
        if record is not None:
            last_record = record if record.parent_attempt_id is None else last_record
            meta["attempt_index"] = record.attempt_index
            if record.parent_attempt_id:
                meta["parent_attempt_id"] = record.parent_attempt_id
                name = "subagent"
            meta["features"] = _scalars(record)
            if record.judge:
                meta["judge"] = _judge_meta(record)
            if record.cluster_id:
                meta["cluster"] = {"id": record.cluster_id, "name": record.cluster_name}
            name += f" {record.attempt_index}" if record.attempt_index is not None else ""
        entry: dict[str, Any] = {
            "name": name,
            "messages": transcript_messages(t),
            "metadata": meta,
        }
        start = (trial_start_ns or {}).get(t.attempt_id) or (
            record.started_at_ns if record is not None else None
        )
        created = _iso(start)
        if created:
            entry["created_at"] = created
        out_transcripts.append(entry)
    scores: dict[str, Any] = {}
    if last_record is not None:
        v = last_record.verification
        if v.reward is not None:
            scores["reward"] = v.reward
            scores["resolved"] = v.reward >= 1.0
        if v.patch_outcome_label is not None:
            scores["patch_outcome_label"] = v.patch_outcome_label
    return {
        "name": task_id or trial_id,
        "transcripts": out_transcripts,
        "metadata": {
            "scores": scores,
            DEDUP_KEY: {
                "trial_id": trial_id,
                "task_id": task_id,
                "schema_version": last_record.schema_version if last_record else None,
                "exported_by": "agentsignals export docent",
            },
        },
    }


def agent_runs(
    transcripts: Iterable[Transcript], records: Iterable[AttemptRecord]
) -> list[dict[str, Any]]:
    """AgentRuns for every trial (attempts without a trial id become runs of their own)."""
    by_record = {r.attempt_id: r for r in records}
    trials: dict[str, list[Transcript]] = {}
    for t in transcripts:
        record = by_record.get(t.attempt_id)
        trial = t.trial_id or (record.trial_id if record else None) or f"attempt:{t.attempt_id}"
        trials.setdefault(trial, []).append(t)
    return [agent_run(trial, ts, by_record) for trial, ts in sorted(trials.items())]


# ----------------------------------------------------------------------------------- upload


@dataclass
class UploadReport:
    uploaded: int = 0
    skipped_existing: int = 0
    too_large: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _trial_of(run: dict[str, Any]) -> str | None:
    meta = run.get("metadata") or {}
    own = meta.get(DEDUP_KEY) or {}
    value = own.get("trial_id")
    return value if isinstance(value, str) else None


def batches(runs: Sequence[dict[str, Any]], limit: int = MAX_PAYLOAD_BYTES) -> Iterable[
    tuple[list[dict[str, Any]], bytes]
]:  # fmt: skip
    """`{"agent_runs": [...]}` bodies of at most `limit` bytes uncompressed. A run larger than
    the limit on its own raises ValueError naming its trial."""
    prefix, suffix = b'{"agent_runs":[', b"]}"
    current: list[bytes] = []
    members: list[dict[str, Any]] = []
    size = len(prefix) + len(suffix)
    for run in runs:
        data = msgspec.json.encode(run)
        if len(prefix) + len(suffix) + len(data) > limit:
            raise ValueError(f"trial {_trial_of(run)}: {len(data)} bytes, over Docent's limit")
        if current and size + 1 + len(data) > limit:
            yield members, prefix + b",".join(current) + suffix
            current, members, size = [], [], len(prefix) + len(suffix)
        size += len(data) + (1 if current else 0)
        current.append(data)
        members.append(run)
    if current:
        yield members, prefix + b",".join(current) + suffix


def upload_agent_runs(
    runs: Sequence[dict[str, Any]],
    *,
    collection_id: str,
    api_key: str,
    api_url: str = DEFAULT_API_URL,
    dedup: bool = True,
    wait: bool = True,
    timeout_s: float = 600.0,
    limit: int = MAX_PAYLOAD_BYTES,
    sleep: Callable[[float], None] = time.sleep,
) -> UploadReport:
    """Upload AgentRuns to a Docent collection (gzip bodies, batches under the size limit),
    skipping trials the collection already holds (by ``metadata.agentsignals.trial_id``)."""
    import requests

    report = UploadReport()
    base = api_url.rstrip("/")
    if not base.endswith("/rest"):
        base += "/rest"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"

    def call(method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(4):
            response = session.request(method, f"{base}{path}", timeout=120, **kwargs)
            if response.status_code >= 500 and attempt < 3:
                sleep(0.5 * 2**attempt)
                continue
            if response.status_code >= 400:
                raise RuntimeError(
                    f"Docent {method} {path}: HTTP {response.status_code}: {response.text[:300]}"
                )
            return response.json() if response.content else {}
        raise RuntimeError(f"Docent {method} {path}: no answer")  # pragma: no cover

    call("GET", "/api-keys/test")
    existing: set[str] = set()
    if dedup:
        query = (
            f"SELECT agent_runs.metadata_json->'{DEDUP_KEY}'->>'trial_id' AS trial_id "
            f"FROM agent_runs WHERE agent_runs.metadata_json->'{DEDUP_KEY}'->>'trial_id' "
            "IS NOT NULL"
        )
        result = call(
            "POST",
            f"/dql/{collection_id}/execute",
            json={"dql": query, "source": "endpoint", "surface": "sdk"},
        )
        for row in result.get("rows", []) or []:
            if row and isinstance(row[0], str):
                existing.add(row[0])
        if result.get("truncated"):
            report.problems.append("the existing-run lookup was truncated: duplicates possible")
    todo = []
    for run in runs:
        trial = _trial_of(run)
        if trial is not None and trial in existing:
            report.skipped_existing += 1
        else:
            todo.append(run)
    fitting = []
    for run in todo:
        size = len(msgspec.json.encode(run))
        if size + 20 > limit:
            report.too_large.append(_trial_of(run) or run.get("name") or "?")
        else:
            fitting.append(run)
    for members, body in batches(fitting, limit):
        answer = call(
            "POST",
            f"/{collection_id}/agent_runs",
            data=gzip.compress(body),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        job = answer.get("job_id") if isinstance(answer, dict) else None
        if isinstance(job, str):
            report.job_ids.append(job)
        report.uploaded += len(members)
    if wait and report.job_ids:
        deadline = time.monotonic() + timeout_s
        pending = set(report.job_ids)
        while pending and time.monotonic() < deadline:
            statuses = call(
                "POST",
                f"/{collection_id}/agent_runs/jobs/batch_status",
                json={"job_ids": sorted(pending)[:100]},
            )
            for job in statuses.get("jobs", []):
                if job.get("status") in ("completed", "canceled"):
                    pending.discard(job.get("job_id"))
                    if job.get("status") == "canceled":
                        report.problems.append(
                            f"job {job.get('job_id')}: {job.get('error_message') or 'canceled'}"
                        )
            if pending:
                sleep(1.0)
        if pending:
            report.problems.append(f"{len(pending)} ingestion jobs still running at the timeout")
    return report
