"""Inspect AI eval logs: the `.json` log and the zipped `.eval` log.

Mapping (one span list per sample × epoch):

* **Trial** — one sample in one epoch. Epochs are independent repeats of the same sample from a
  fresh state (Inspect reduces them with a mean, pass@k, ...), not retries informed by a failed
  pass, so they are separate trials of the same task: `task.id` is `<task>/<sample id>` (epochs
  of a sample group by it) and `run.id` is the eval's run id. Making them attempts would turn
  independent repeats into "retries" and give `resolved_on_attempt` a recovery meaning it does
  not have. The trial's `import.source` names the sample within the file
  (`log.eval#samples/1_epoch_2.json`), which also keeps the trial ids of epochs apart.
* **Attempts** — the sample's run is attempt 0. When Inspect retried the sample after an error
  (`error_retries`, from `retry_on_error`), each failed run is an earlier attempt with only its
  error (no turns; the log has no times for it, so they are synthesized and the trial is marked
  `synthetic_time`) and the recorded run comes last: a retry from scratch after a failure is
  exactly what an attempt is.
* **Turns** — the assistant messages. Each is matched to the model event that produced it (by
  message id, else by a tool call id, else by its text, in order); the event gives per-call usage,
  times, finish reasons and the full model id. Model events no message claims (a failed call, a
  call whose output was dropped) become model-call spans so their usage still counts; those made
  inside a tool (an agent-as-tool) are children of the tool's span. Model calls made while
  scoring (scorer spans, the `grader` role) are not the agent's and are left out.
* **Tools** — the assistant message's `tool_calls`, with results and errors from the `tool`
  message of the same `tool_call_id` and times from the tool event. A call that never ran (no
  result message and no event: the sample stopped first) is left out. Inspect's `text_editor`
  is categorised like `str_replace_based_edit_tool` (by its `command`), `bash_session` by the
  command it types; a `ToolCallError` type becomes the exception it stands for (`ToolError`,
  `TimeoutError`, ...).
* **Usage** — Inspect's `input_tokens` excludes cached tokens when its total says so (Anthropic,
  newer OpenAI: `total = input + cache read + cache write + output`); the spans carry GenAI's
  cache-inclusive input. With no model events, the sample's `model_usage` totals (else its
  `output.usage`) go on the attempt.
* **Outcome** — the first scorer (in the eval's scorer order) whose value reads as a number
  (`C`/`I`/`P`/`N`, yes/no, true/false, numbers) is the attempt's reward, source
  `inspect-ai score <scorer>`.
* **Exit** — a sample error is `error`; a limit (`message`, `token`, `time`, `working`,
  `context`, `operator`) maps to the closest exit reason; a final `model_length` stop is a
  context overflow; otherwise a scored or answered sample `submitted` its answer.

Large content fields in events may be `attachment://<hash>` references into the sample's
`attachments` (older logs: `tc://`); they are resolved before text is measured.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from agentsignals import semconv as sc
from agentsignals._classify.outcome import outcome_attributes
from agentsignals._classify.tools import category_for, classify_command
from agentsignals._import.builder import AttemptBuilder, TrajectoryBuilder, TurnRef
from agentsignals._import.formats import ImportProblem, Report, TrajectoryError
from agentsignals._import.formats._common import (
    as_dict,
    as_list,
    loads_json,
    read_source,
    read_zip_member,
    timestamp_ns,
)
from agentsignals._spans.model import Span

NAME = "inspect-ai"

_ZIP_MAGIC = b"PK\x03\x04"
_HEADER_MEMBERS = ("header.json", "_journal/start.json")
_ATTACHMENT_PREFIXES = ("attachment://", "tc://")
_SCORING_SPANS = frozenset({"scorer", "scorers"})
_GRADER_ROLES = frozenset({"grader", "scorer"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What zipfile raises for a damaged archive or member (bad headers, CRC, compressed data, an
# unsupported version or method).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    struct.error,
)

# Inspect's ToolCallError types, as the exception each stands for (error.type is a class name).
_TOOL_ERRORS = {
    "timeout": "TimeoutError",
    "unicode_decode": "UnicodeDecodeError",
    "permission": "PermissionError",
    "file_not_found": "FileNotFoundError",
    "is_a_directory": "IsADirectoryError",
    "parsing": "ToolParsingError",
    "approval": "ToolApprovalError",
    "unknown": "ToolError",
    "output_limit": "OutputLimitExceededError",
    "limit": "LimitExceededError",
}
# Inspect's sample limits, as the exit reason closest to each.
_LIMIT_EXITS = {
    "message": sc.AttemptExitReason.MAX_TURNS.value,
    "token": sc.AttemptExitReason.COST_LIMIT.value,
    "cost": sc.AttemptExitReason.COST_LIMIT.value,
    "time": sc.AttemptExitReason.TIMEOUT.value,
    "working": sc.AttemptExitReason.TIMEOUT.value,
    "context": sc.AttemptExitReason.CONTEXT_OVERFLOW.value,
    "operator": sc.AttemptExitReason.USER_STOPPED.value,
}
# Inspect's score values for correct / incorrect / partial / no answer.
_SCORE_LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
_SCORE_WORDS = {"yes": 1.0, "true": 1.0, "no": 0.0, "false": 0.0}
# Inspect's tool names that the shared category table does not know.
_TOOL_ALIASES = {"text_editor": "str_replace_based_edit_tool"}
_SHELL_SESSION_TOOLS = frozenset({"bash_session"})
# GenAI provider names for Inspect's model prefixes (open enum: the rest pass through).
_PROVIDERS = {
    "google": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "azureai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "grok": "x_ai",
}
_EXC_NAME = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*[(:]")
_TB_LAST = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout)\w*)\b", re.M)


# ---------------------------------------------------------------------------------- detection


def detect(path: Path, head: bytes) -> bool:
    """An `.eval` zip, or a JSON object with the eval log's top-level keys near the start."""
    if head.startswith(_ZIP_MAGIC):
        return path.suffix.lower() == ".eval" or any(
            name.encode() in head for name in _HEADER_MEMBERS
        )
    if not head.lstrip().startswith(b"{"):
        return False
    return (
        b'"eval"' in head and b'"run_id"' in head and (b'"samples"' in head or b'"version"' in head)
    )


# ------------------------------------------------------------------------------------ reading


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    """One span list per sample × epoch. Raises TrajectoryError at once for a file that cannot
    be read at all (not JSON, truncated, a broken zip, no eval header); a bad sample is reported
    and the others still import."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise TrajectoryError(str(path), f"cannot open: {exc}") from exc
    if magic == _ZIP_MAGIC or path.suffix.lower() == ".eval":
        return _read_eval(path, report)
    return _read_json(path, report)


@dataclass
class _Log:
    """What the eval header says about every sample."""

    path: Path
    eval: dict[str, Any]
    plan: dict[str, Any]
    status: str | None

    @property
    def task(self) -> str:
        return _str(self.eval.get("task")) or _str(self.eval.get("task_id")) or "task"

    @property
    def model(self) -> str | None:
        return _str(self.eval.get("model"))

    @property
    def run_id(self) -> str | None:
        return _str(self.eval.get("run_id"))

    @property
    def dataset(self) -> str | None:
        dataset = _dict(self.eval.get("dataset"))
        return _str(dataset.get("name")) or _str(dataset.get("location"))

    @property
    def solver(self) -> str | None:
        """The agent: the eval's solver, else the plan's solver chain."""
        solver = _str(self.eval.get("solver"))
        if solver:
            return solver
        steps = [_str(_dict(s).get("solver")) for s in _list(self.plan.get("steps"))]
        names = [s for s in steps if s]
        return ",".join(names) if names else None

    @property
    def timeout_s(self) -> float | None:
        config = _dict(self.eval.get("config"))
        return _num(config.get("time_limit")) or _num(config.get("working_limit"))

    @property
    def scorer_order(self) -> list[str]:
        names = [_str(_dict(s).get("name")) for s in _list(self.eval.get("scorers"))]
        return [n for n in names if n]


def _read_json(path: Path, report: Report) -> Iterator[list[Span]]:
    try:
        data = read_source(path)
    except OSError as exc:
        raise TrajectoryError(str(path), f"cannot read: {exc}") from exc
    doc = _decode(data, str(path))
    log = _header(doc, str(path))
    samples = doc.get("samples")
    if not isinstance(samples, list) or not samples:
        report(ImportProblem(str(path), 0, "no samples in the log (written without samples?)"))
        return iter(())
    return _json_samples(log, samples, report)


def _json_samples(log: _Log, samples: list[Any], report: Report) -> Iterator[list[Span]]:
    for position, sample in enumerate(samples, 1):
        if not isinstance(sample, dict):
            report(ImportProblem(str(log.path), 0, f"sample {position}: not a JSON object"))
            continue
        name = f"samples/{sample.get('id')}_epoch_{sample.get('epoch', 1)}"
        spans = _guarded(log, sample, f"{log.path}#{name}", name, report)
        if spans is not None:
            yield spans


def _read_eval(path: Path, report: Report) -> Iterator[list[Span]]:
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise TrajectoryError(str(path), f"not a readable .eval (zip) log: {exc}") from exc
    try:
        log = _eval_header(archive, path, report)
        members = [
            info.filename
            for info in archive.infolist()
            if info.filename.startswith("samples/") and info.filename.endswith(".json")
        ]
    except BaseException:
        archive.close()
        raise
    if not members:
        report(ImportProblem(str(path), 0, "no samples in the log (written without samples?)"))
    return _eval_samples(archive, log, members, report)


def _eval_header(archive: zipfile.ZipFile, path: Path, report: Report) -> _Log:
    names = set(archive.namelist())
    problems: list[str] = []
    for member in _HEADER_MEMBERS:
        if member not in names:
            continue
        try:
            doc = _decode(_member_bytes(archive, member), f"{path}#{member}")
            log = _header(doc, f"{path}#{member}", path=path)
        except _MemberError as exc:
            problems.append(f"{member}: {exc}")
        except TrajectoryError as exc:
            problems.append(str(exc))
        else:
            for problem in problems:  # header.json is broken, the journal's start is not
                report(ImportProblem(str(path), 0, f"{problem}; read {member} instead"))
            return log
    if problems:
        raise TrajectoryError(str(path), "no readable eval header: " + "; ".join(problems))
    raise TrajectoryError(
        str(path), "not an Inspect eval log: no header.json or _journal/start.json"
    )


def _eval_samples(
    archive: zipfile.ZipFile, log: _Log, members: list[str], report: Report
) -> Iterator[list[Span]]:
    with archive:
        for member in members:
            where = f"{log.path}#{member}"
            try:
                doc = _decode(_member_bytes(archive, member), where)
            except _MemberError as exc:
                report(ImportProblem(str(log.path), 0, f"{member}: {exc}"))
                continue
            except _DecodeError as exc:
                report(ImportProblem(str(log.path), exc.problem.line, f"{member}: {exc.detail}"))
                continue
            if not isinstance(doc, dict):
                report(ImportProblem(str(log.path), 0, f"{member}: not a JSON object"))
                continue
            spans = _guarded(log, doc, where, member, report)
            if spans is not None:
                yield spans


class _MemberError(Exception):
    """A zip member that cannot be read (bad CRC, broken compressed data, encrypted)."""


def _member_bytes(archive: zipfile.ZipFile, member: str) -> bytes:
    try:
        return read_zip_member(archive, member)  # refuses a zip bomb before inflating it
    except (*_ZIP_ERRORS, RuntimeError) as exc:  # RuntimeError: an encrypted member
        raise _MemberError(f"cannot read zip member: {exc}") from exc


def _decode(data: bytes, where: str) -> Any:
    """JSON, fast; Inspect may write NaN/Infinity, which only the stdlib parser accepts, and the
    stdlib parser also gives the line of a malformed or truncated document."""
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        pass
    except RecursionError:
        raise _DecodeError(where, "JSON nested too deeply to read", 1) from None
    try:
        text = data.decode("utf-8-sig")
        return loads_json(text)
    except json.JSONDecodeError as exc:
        rest = text[exc.pos + 1 :]
        truncated = exc.pos >= len(text.rstrip()) or (
            exc.msg.startswith("Unterminated string") and '"' not in rest
        )
        what = "truncated JSON" if truncated else f"malformed JSON: {exc.msg}"
        detail = f"{what} (line {exc.lineno}, column {exc.colno})"
        raise _DecodeError(where, detail, exc.lineno) from exc
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise _DecodeError(where, f"not JSON: {exc}", 0) from exc


class _DecodeError(TrajectoryError):
    def __init__(self, path: str, message: str, line: int = 0) -> None:
        super().__init__(path, message, line)
        self.detail = message


def _header(doc: Any, where: str, *, path: Path | None = None) -> _Log:
    if not isinstance(doc, dict) or not isinstance(doc.get("eval"), dict):
        raise TrajectoryError(where, "not an Inspect eval log: no `eval` header object")
    return _Log(
        path=path if path is not None else Path(where),
        eval=doc["eval"],
        plan=_dict(doc.get("plan")),
        status=_str(doc.get("status")),
    )


def _guarded(
    log: _Log, sample: dict[str, Any], source: str, name: str, report: Report
) -> list[Span] | None:
    """The sample's spans, or a report naming the sample when its content is malformed."""
    try:
        return _sample_spans(log, sample, source)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        report(ImportProblem(str(log.path), 0, f"{name}: cannot import sample: {exc!r}"))
        return None


# ---------------------------------------------------------------------------------- one sample


@dataclass
class _Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    cost_usd: float | None = None

    @classmethod
    def of(cls, value: Any) -> _Usage | None:
        """GenAI usage from Inspect's ModelUsage: input including cached tokens."""
        u = _dict(value)
        if not u:
            return None
        inp = _int(u.get("input_tokens"))
        out = _int(u.get("output_tokens"))
        cache_read = _int(u.get("input_tokens_cache_read"))
        cache_write = _int(u.get("input_tokens_cache_write"))
        total = _int(u.get("total_tokens"))
        cached = (cache_read or 0) + (cache_write or 0)
        # Inclusive only when the total says so (older OpenAI: total = prompt + completion);
        # otherwise the cache fields are disjoint from input_tokens (Anthropic, newer Inspect).
        if inp is not None and cached and not (total is not None and total == inp + (out or 0)):
            inp += cached
        return cls(inp, out, cache_read, cache_write, _int(u.get("reasoning_tokens")),
                   _num(u.get("total_cost")))  # fmt: skip

    def add(self, other: _Usage) -> None:
        self.input_tokens = _sum(self.input_tokens, other.input_tokens)
        self.output_tokens = _sum(self.output_tokens, other.output_tokens)
        self.cache_read = _sum(self.cache_read, other.cache_read)
        self.cache_write = _sum(self.cache_write, other.cache_write)
        self.reasoning = _sum(self.reasoning, other.reasoning)
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd


@dataclass
class _ModelCall:
    event: dict[str, Any]
    tool_call_id: str | None  # set when the call was made inside a tool
    claimed: bool = False


@dataclass
class _Events:
    """What a sample's event stream says, sorted out once."""

    models: list[_ModelCall] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    limit: str | None = None
    first_ns: int | None = None
    last_ns: int | None = None
    # id(event) -> the time of the event before it, for older events stamped when they ended.
    after: dict[int, int] = field(default_factory=dict)

    def times(
        self, event: Mapping[str, Any], duration_s: float | None
    ) -> tuple[int | None, int | None]:
        return _event_times(event, duration_s, self.after.get(id(event)))

    def saw(self, *times: int | None) -> None:
        for t in times:
            if t is None:
                continue
            self.first_ns = t if self.first_ns is None else min(self.first_ns, t)
            self.last_ns = t if self.last_ns is None else max(self.last_ns, t)


def _sample_spans(log: _Log, sample: dict[str, Any], source: str) -> list[Span]:
    attachments = {k: v for k, v in _dict(sample.get("attachments")).items() if isinstance(k, str)}
    resolve = _Resolver(attachments)
    events = _sort_events(_sample_events(sample))
    start_ns = _ns(sample.get("started_at")) or events.first_ns
    end_ns = _ns(sample.get("completed_at")) or events.last_ns
    total_time = _num(sample.get("total_time"))
    if end_ns is None and start_ns is not None and total_time is not None:
        end_ns = start_ns + int(total_time * 1e9)

    sample_id = sample.get("id")
    trajectory = TrajectoryBuilder(
        source_format=NAME,
        source_path=source,
        task_id=f"{log.task}/{sample_id}",
        start_ns=start_ns,
        run_id=log.run_id,
        dataset=log.dataset,
    )
    model = log.model
    provider = _provider(model)
    identity: dict[str, Any] = {
        "agent_type": log.solver,
        "agent_name": _str(log.eval.get("solver")),
        "model_id": model,
        "provider": provider,
        "timeout_s": log.timeout_s,
    }

    # Runs Inspect retried after an error: earlier attempts with nothing but their error.
    for failed in _list(sample.get("error_retries")):
        retry = trajectory.attempt(**identity)
        retry.end(exit_reason=sc.AttemptExitReason.ERROR.value, error=_error_type(failed))

    attempt = trajectory.attempt(
        **identity, conversation_id=_str(sample.get("uuid")), start_ns=start_ns
    )
    messages = [m for m in _list(sample.get("messages")) if isinstance(m, dict)]
    _add_turns(attempt, messages, events, resolve, model, provider)

    error = _dict(sample.get("error"))
    exit_reason = _exit_reason(log, sample, events, error)
    # Attempt totals only when no model call recorded its own usage (they are not spread).
    per_call = any(
        sc.GEN_AI_USAGE_INPUT_TOKENS in s.attributes
        or sc.GEN_AI_USAGE_OUTPUT_TOKENS in s.attributes
        for s in attempt.spans
    )
    totals = None if per_call else _sample_totals(sample)
    reward = _reward(_dict(sample.get("scores")), log.scorer_order)
    if reward is not None:
        scorer, value = reward
        outcome, _event = outcome_attributes(
            reward=value, source=f"inspect-ai score {scorer}", patch=False
        )
        attempt.attributes.update(outcome)
    attempt.end(
        exit_reason=exit_reason,
        input_tokens=totals.input_tokens if totals else None,
        output_tokens=totals.output_tokens if totals else None,
        cache_read_tokens=totals.cache_read if totals else None,
        cache_write_tokens=totals.cache_write if totals else None,
        cost_usd=totals.cost_usd if totals else None,
        end_ns=end_ns,
        error=_error_type(error) if error else None,
    )
    return trajectory.finish(end_ns=end_ns)


def _add_turns(
    attempt: AttemptBuilder,
    messages: list[dict[str, Any]],
    events: _Events,
    resolve: _Resolver,
    model: str | None,
    provider: str | None,
) -> None:
    results = {
        call_id: m
        for m in messages
        if m.get("role") == "tool" and (call_id := _str(m.get("tool_call_id")))
    }
    matcher = _Matcher(events.models, resolve)
    tool_spans: dict[str, str] = {}
    inputs: list[tuple[str, str]] = []  # content: what the next call reads first
    for message in messages:
        role = message.get("role")
        if role in ("system", "user"):
            inputs.append((str(role), resolve.text(message.get("content"))))
        if role != "assistant":
            continue
        call = matcher.claim(message)
        event = call.event if call is not None else {}
        output = _dict(event.get("output"))
        usage = _Usage.of(output.get("usage")) or _Usage()
        start, end = events.times(event, _num(output.get("time")))
        turn_model = _str(event.get("model")) or model
        turn = attempt.turn(
            start_ns=start,
            end_ns=end,
            model=turn_model,
            provider=_provider(turn_model) or provider,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
            reasoning_tokens=usage.reasoning,
            cost_usd=usage.cost_usd,
            reasoning=_reasoning(message, resolve),
            finish_reasons=[
                r for c in _list(output.get("choices")) if (r := _str(_dict(c).get("stop_reason")))
            ],
            inputs=inputs,
            text=resolve.text(message.get("content")) or None,
            calls=[
                (_str(c.get("function")) or "unknown", resolve.value(c.get("arguments")))
                for t in _list(message.get("tool_calls"))
                if not _ran(c := _dict(t), results, events)
            ],
        )
        inputs = []
        for tool_call in _list(message.get("tool_calls")):
            ran = _add_tool(attempt, turn, _dict(tool_call), results, events, resolve)
            if ran is not None:
                call_id, span_id = ran
                tool_spans[call_id] = span_id
    # Model calls no assistant message claims still count: inside their tool, else unattributed.
    for call in events.models:
        if call.claimed:
            continue
        output = _dict(call.event.get("output"))
        own = _Usage.of(output.get("usage"))
        if own is None:
            continue
        start, end = events.times(call.event, _num(output.get("time")))
        attempt.model_call(
            model=_str(call.event.get("model")) or model,
            input_tokens=own.input_tokens,
            output_tokens=own.output_tokens,
            cache_read_tokens=own.cache_read,
            cache_write_tokens=own.cache_write,
            reasoning_tokens=own.reasoning,
            cost_usd=own.cost_usd,
            start_ns=start,
            end_ns=end,
            parent_span_id=tool_spans.get(call.tool_call_id) if call.tool_call_id else None,
        )


def _ran(call: dict[str, Any], results: Mapping[str, Any], events: _Events) -> bool:
    """Whether a tool call ran: a result message or a tool event answers its id."""
    call_id = _str(call.get("id"))
    return call_id is not None and (call_id in results or call_id in events.tools)


def _add_tool(
    attempt: AttemptBuilder,
    turn: TurnRef,
    call: dict[str, Any],
    results: Mapping[str, dict[str, Any]],
    events: _Events,
    resolve: _Resolver,
) -> tuple[str, str] | None:
    """A tool span for one call that ran; (call id, span id), or None when it never ran."""
    call_id = _str(call.get("id"))
    name = _str(call.get("function")) or "unknown"
    result_message = results.get(call_id) if call_id else None
    event = events.tools.get(call_id) if call_id else None
    if not _ran(call, results, events):
        return None
    arguments = call.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = loads_json(arguments)
        except ValueError:
            arguments = {"arguments": arguments}
    args = {str(k): resolve.value(v) for k, v in _dict(arguments).items()}

    command: str | None = None
    category: str | None = None
    files: list[str] | None = None
    if name in _SHELL_SESSION_TOOLS:
        text = args.get("input")
        if isinstance(text, str) and args.get("action") in (None, "type_submit", "type"):
            command = text
            category = classify_command(text).value
    elif name in _TOOL_ALIASES:
        category = category_for(_TOOL_ALIASES[name], args).value
    target = args.get("path") or args.get("file") or args.get("file_path")
    if isinstance(target, str) and target:
        files = [target]

    if result_message is not None:
        result = resolve.text(result_message.get("content"))
        error = _dict(result_message.get("error"))
    else:
        result = resolve.text(_dict(event).get("result"))
        error = _dict(_dict(event).get("error"))
    error_type = _str(error.get("type"))
    start, end = events.times(event or {}, _num(_dict(event).get("working_time")))
    span_id = attempt.tool(
        name,
        turn=turn,
        arguments=args,
        command=command,
        category=category,
        call_id=call_id,
        files=files,
        result=result,
        error=_TOOL_ERRORS.get(error_type, error_type) if error_type else None,
        start_ns=start,
        end_ns=end,
    )
    return (call_id, span_id) if call_id else None


class _Matcher:
    """Pairs assistant messages with the model events that produced them, in order: the same
    message id, else a shared tool call id, else the same text."""

    def __init__(self, calls: list[_ModelCall], resolve: _Resolver) -> None:
        self.calls = calls
        self.resolve = resolve
        self.next = 0
        self.keys = [self._keys(_dict(_first_choice(c.event).get("message"))) for c in calls]

    def _keys(self, message: dict[str, Any]) -> tuple[str | None, set[str], str]:
        ids = {i for t in _list(message.get("tool_calls")) if (i := _str(_dict(t).get("id")))}
        return _str(message.get("id")), ids, self.resolve.text(message.get("content")).strip()

    def claim(self, message: dict[str, Any]) -> _ModelCall | None:
        msg_id, tool_ids, text = self._keys(message)
        for matcher in (
            lambda k: msg_id is not None and k[0] == msg_id,
            lambda k: bool(tool_ids & k[1]),
            lambda k: not tool_ids and not k[1] and k[2] == text,
        ):
            for i in range(self.next, len(self.calls)):
                if not self.calls[i].claimed and matcher(self.keys[i]):
                    self.calls[i].claimed = True
                    self.next = i + 1
                    return self.calls[i]
        return None


def _first_choice(event: dict[str, Any]) -> dict[str, Any]:
    choices = _list(_dict(event.get("output")).get("choices"))
    return _dict(choices[0]) if choices else {}


# ------------------------------------------------------------------------------------- events


def _sample_events(sample: dict[str, Any]) -> list[dict[str, Any]]:
    events = sample.get("events")
    if not isinstance(events, list):  # logs before 0.3.2x kept a transcript
        events = _dict(sample.get("transcript")).get("events")
    return [e for e in _list(events) if isinstance(e, dict)]


def _sort_events(events: list[dict[str, Any]]) -> _Events:
    """Model calls (not the scorers'), tool events by call id, limits, and the time range.

    Newer logs are flat, with spans (`span_begin` type `scorer`/`tool` and `span_id` on each
    event); older ones nest a tool's events in the tool event and mark scoring with `step`
    events. Both are read.
    """
    out = _Events()
    spans: dict[str, tuple[str | None, str | None, str | None]] = {}  # id -> type, name, parent
    # A tool span's call: Inspect opens `span_begin(type=tool, name=function)` and writes the
    # tool event inside it (the event's own span_id is the tool span's parent), so the event
    # belongs to the latest unclaimed tool span of its function.
    open_tools: dict[str, list[str]] = defaultdict(list)  # function -> unclaimed tool span ids
    span_call: dict[str, str] = {}
    for e in events:
        kind = e.get("event")
        if kind == "span_begin" and (span_id := _str(e.get("id"))):
            span_type = _str(e.get("type"))
            spans[span_id] = (span_type, _str(e.get("name")), _str(e.get("parent_id")))
            if span_type == "tool":
                open_tools[_str(e.get("name")) or ""].append(span_id)
        elif kind == "tool" and (call_id := _str(e.get("id"))):
            waiting = open_tools.get(_str(e.get("function")) or "")
            if waiting:
                span_call[waiting.pop()] = call_id

    def context(span_id: str | None) -> tuple[bool, str | None]:
        scoring, tool = False, None
        seen: set[str] = set()
        while span_id is not None and span_id not in seen:
            seen.add(span_id)
            kind, _name, parent = spans.get(span_id, (None, None, None))
            if kind in _SCORING_SPANS:
                scoring = True
            if kind == "tool" and tool is None:
                tool = span_call.get(span_id)
            span_id = parent
        return scoring, tool

    def walk(items: Sequence[Any], in_tool: str | None, steps: list[str]) -> None:
        previous: int | None = None
        for e in items:
            if not isinstance(e, dict):
                continue
            kind = e.get("event")
            start, end = _event_times(e, None)
            out.saw(start, end)
            if previous is not None and start is not None and previous <= start:
                out.after[id(e)] = previous
            previous = start if start is not None else previous
            if kind == "step":  # older logs: scoring is a step, not a span
                step_type = _str(e.get("type")) or ""
                if e.get("action") == "begin":
                    steps.append(step_type)
                elif steps:
                    steps.pop()
                continue
            scoring, tool = context(_str(e.get("span_id")))
            scoring = scoring or any(s in _SCORING_SPANS for s in steps)
            if kind == "model":
                if scoring or _str(e.get("role")) in _GRADER_ROLES:
                    continue
                out.models.append(_ModelCall(e, tool or in_tool))
            elif kind == "tool":
                call_id = _str(e.get("id"))
                if call_id and not scoring:
                    out.tools.setdefault(call_id, e)
                walk(_list(e.get("events")), call_id or in_tool, [])
            elif kind == "subtask":
                walk(_list(e.get("events")), in_tool, [])
            elif kind == "sample_limit" and out.limit is None:
                out.limit = _str(e.get("type"))

    walk(events, None, [])
    return out


def _event_times(
    event: Mapping[str, Any], duration_s: float | None, after_ns: int | None = None
) -> tuple[int | None, int | None]:
    """(start, end) of an event. Newer events start at `timestamp` and carry `completed`; older
    ones were written when the work was done, so `timestamp` is the end and the work started
    `duration_s` before it, else no earlier than the event before it (`after_ns`)."""
    stamp = _ns(event.get("timestamp"))
    completed = _ns(event.get("completed"))
    if stamp is None:
        return None, None
    if completed is not None:
        return stamp, max(stamp, completed)
    if duration_s is not None and duration_s > 0:
        return stamp - int(duration_s * 1e9), stamp
    if after_ns is not None and after_ns <= stamp:
        return after_ns, stamp
    return stamp, stamp


# ---------------------------------------------------------------------------------- outcomes


def _exit_reason(
    log: _Log, sample: dict[str, Any], events: _Events, error: dict[str, Any]
) -> str | None:
    if error:
        return sc.AttemptExitReason.ERROR.value
    limit = _str(_dict(sample.get("limit")).get("type")) or events.limit
    if limit:
        return _LIMIT_EXITS.get(limit)
    output = _dict(sample.get("output"))
    choices = _list(output.get("choices"))
    if choices and _dict(choices[-1]).get("stop_reason") == "model_length":
        return sc.AttemptExitReason.CONTEXT_OVERFLOW.value
    if sample.get("scores") or choices:
        return sc.AttemptExitReason.SUBMITTED.value
    if log.status == "cancelled":
        return sc.AttemptExitReason.INTERRUPTED.value
    return None


def _error_type(error: Any) -> str:
    """An exception class name from Inspect's EvalError (message and traceback)."""
    err = _dict(error)
    traceback = _str(err.get("traceback")) or ""
    names = _TB_LAST.findall(traceback)
    if names:
        return str(names[-1]).rsplit(".", 1)[-1]
    match = _EXC_NAME.match(_str(err.get("message")) or "")
    if match and match.group(1)[:1].isupper():
        return match.group(1).rsplit(".", 1)[-1]
    return "EvalError"


def _reward(scores: dict[str, Any], order: list[str]) -> tuple[str, float] | None:
    """(scorer, reward) from the first scorer whose value reads as a number."""
    names = [n for n in order if n in scores] + [n for n in scores if n not in order]
    for name in names:
        value = _score_value(_dict(scores[name]).get("value"))
        if value is not None:
            return name, value
    return None


def _score_value(value: Any) -> float | None:
    """Inspect's value_to_float: C/I/P/N, yes/no, true/false, numbers, numeric strings."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if number == number else None  # NaN: no reward
    if isinstance(value, str):
        text = value.strip()
        if text.upper() in _SCORE_LETTERS and len(text) == 1:
            return _SCORE_LETTERS[text.upper()]
        if text.lower() in _SCORE_WORDS:
            return _SCORE_WORDS[text.lower()]
        try:
            number = float(text)
        except ValueError:
            return None
        return number if number == number else None
    return None


def _sample_totals(sample: dict[str, Any]) -> _Usage | None:
    """The sample's usage over all its models, else its final output's."""
    total: _Usage | None = None
    for usage in _dict(sample.get("model_usage")).values():
        u = _Usage.of(usage)
        if u is None:
            continue
        if total is None:
            total = u
        else:
            total.add(u)
    return total or _Usage.of(_dict(sample.get("output")).get("usage"))


def _reasoning(message: dict[str, Any], resolve: _Resolver) -> str | None:
    """The turn's reasoning text; "" when the message has none; None when it is only redacted
    (present, but its length unknown)."""
    parts: list[str] = []
    redacted = False
    content = message.get("content")
    for block in _list(content):
        b = _dict(block)
        if b.get("type") != "reasoning":
            continue
        if b.get("redacted"):
            summary = resolve.text(b.get("summary"))
            if summary:
                parts.append(summary)
            else:
                redacted = True
            continue
        parts.append(resolve.text(b.get("reasoning")))
    legacy = message.get("reasoning")  # assistant messages of early 2025 logs
    if isinstance(legacy, str) and legacy:
        parts.append(resolve.text(legacy))
    if not parts and redacted:
        return None
    return "\n\n".join(p for p in parts if p)


# ------------------------------------------------------------------------------------ helpers


class _Resolver:
    """Text of content fields, `attachment://` references resolved."""

    def __init__(self, attachments: Mapping[str, Any]) -> None:
        self.attachments = attachments

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            for prefix in _ATTACHMENT_PREFIXES:
                if value.startswith(prefix):
                    found = self.attachments.get(value[len(prefix) :])
                    return found if isinstance(found, str) else value
            return value
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def text(self, content: Any) -> str:
        """A message's text: a string, or its text blocks joined (images, reasoning left out)."""
        if content is None:
            return ""
        if isinstance(content, str):
            resolved = self.value(content)
            return resolved if isinstance(resolved, str) else ""
        parts: list[str] = []
        for block in _list(content):
            b = _dict(block)
            if b.get("type") == "text":
                text = self.value(b.get("text"))
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)


def _provider(model: str | None) -> str | None:
    if not model or "/" not in model:
        return None
    prefix = model.split("/", 1)[0].lower()
    return _PROVIDERS.get(prefix, prefix)


def _ns(value: Any) -> int | None:
    """Nanoseconds since the epoch from an ISO 8601 timestamp (naive ones taken as UTC)."""
    return timestamp_ns(value, numbers=None)


def _dict(value: Any) -> dict[str, Any]:
    return as_dict(value)


def _list(value: Any) -> list[Any]:
    return as_list(value)


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number else None


def _sum(a: int | None, b: int | None) -> int | None:
    if b is None:
        return a
    return b if a is None else a + b
