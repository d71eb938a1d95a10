"""OpenHands trajectories: event-stream exports and evaluation/resolver output.

Shapes read (field names from OpenHands' `event_to_dict`, `EvalOutput` and `ResolverOutput`):

* an event-stream export (`.json`): a list of events, each with `id`, `timestamp`, `source`
  (`agent`, `user`, `environment`), `action` + `args` or `observation` + `content` + `extras`,
  `cause` (an observation's action id), and on the agent's actions `tool_call_metadata`
  (`function_name`, `tool_call_id`, `model_response` with `id`, `model`, `choices`, `usage`) and
  in newer versions `llm_metrics` (accumulated cost and token usage at that event). The
  `{"trajectory": [...]}` wrapper of the conversation download is read too.
* evaluation output (`output.jsonl`, one trajectory a line): `instance_id`, `instruction`,
  `history`, `metrics` (`accumulated_cost`, `accumulated_token_usage`, `costs`, `token_usages`
  per call with `response_id`), `test_result.git_patch`, `error`, `instance`, `metadata`
  (`agent_class`, `llm_config.model`, `max_iterations`, `dataset`, `data_split`).
* resolver output (`output.jsonl`): `issue` (`owner`, `repo`, `number`), `instruction`,
  `git_patch`, `history`, `metrics`, `success`, `error`.

`history` is a list of event dicts, a list of `[action, observation]` pairs (older evaluation
output), or the oldest flat shape where an event's args/extras sit at its top level with no
`id`, `timestamp`, `source` or `cause` (the resolver fixture): there an observation answers the
latest agent action still waiting for one, a `message` is the user's unless it waits for a
response, and times are synthesized.

Mapping:

* Turns. One model response is one turn: the agent's actions that carry the same
  `tool_call_metadata.model_response.id` (parallel tool calls) share it; an agent action without
  that metadata (an agent `message`, any action of the pre-function-calling agents) is a turn of
  its own. `system`, `recall`, `condensation` and `change_agent_state` actions are not turns.
  A turn runs from the event before its first action to that action's timestamp.
* Tools. Every agent action other than `message` (`run`, `run_ipython`, `read`, `edit`, `write`,
  `browse`, `browse_interactive`, `think`, `finish`, `call_tool_mcp`, `delegate`, ...) is a tool
  call named by `function_name` (arguments from the model's tool call), or, without metadata, by
  the action (`run` -> execute_bash, `run_ipython` -> execute_ipython_cell, otherwise the action
  name). It runs from the action to its observation (linked by `cause`). Exit codes come from the
  observation (`extras.metadata.exit_code`, `extras.exit_code`); exit code -1 (the command was
  still running when OpenHands stopped waiting) is recorded as error `timeout`, not as an exit
  code; an `error` observation marks the call failed (`ErrorObservation`) and an edit that failed
  changed nothing, as does an edit its editor rejected (`edit_rejected`: "[Your proposed edit has
  introduced new syntax error(s)...", "[No exact match found...", "ERROR: ..."). IPython cells
  are classified by the agentskills they call (`open_file` read, `search_dir` search,
  `edit_file_by_replace` edit, ...) and by `open(path, "w")` writes.
* Usage, per turn, first found of: the response's own `usage` (`prompt_tokens` includes cached
  tokens, as LiteLLM reports them; cache read from `cache_read_input_tokens` or
  `prompt_tokens_details.cached_tokens`, cache write from `cache_creation_input_tokens`,
  reasoning from `completion_tokens_details.reasoning_tokens`); `metrics.token_usages` by
  `response_id` (or by position when the history has no response ids and there is one entry per
  turn); the growth of `llm_metrics.accumulated_token_usage` since the previous turn (which
  includes a condenser's calls in between). Cost per turn from the growth of
  `llm_metrics.accumulated_cost`, or `metrics.costs` by position when there is one cost per
  turn. `metrics.accumulated_cost` is the attempt's cost roll-up; token totals go to the
  attempt only when no turn has per-call usage.
* Exit reason: an `error` text (or, in an event stream, the error that moved the agent to state
  `error`) is classified: maximum iterations -> max_turns, budget -> cost_limit, context window
  -> context_overflow, time out -> timeout, `AgentStuckInLoopError` / "stuck in a loop" -> error
  (failure mode `stuck_in_loop`), anything else -> error (error.type the exception name when the
  text starts with one). Otherwise a `finish` action -> submitted; the agent state `stopped` ->
  user_stopped, `paused` -> interrupted, `finished` -> submitted. An interactive session that
  ends waiting for the user has no exit reason.
* The git patch (`test_result.git_patch`, resolver `git_patch`) is the submission.
* Not mapped: the resolver's `success` / `result_explanation` (an LLM judge, not a test
  verifier); a delegated agent's events, which the stream interleaves as the agent's own.
* task id: `instance_id`; for the resolver `owner/repo#number`; for an event-stream export the
  file name without its suffix. Timestamps without a zone are taken as UTC. A task id seen twice
  in one file gets its line in the source path so the two runs stay two trials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsignals import semconv as sc
from agentsignals._classify.tools import shell_edit_targets
from agentsignals._import.builder import AttemptBuilder, TrajectoryBuilder, TurnRef
from agentsignals._import.formats import ImportProblem, Report, TrajectoryError
from agentsignals._import.formats._common import (
    as_dict,
    as_list,
    loads_json,
    nonempty_str,
    open_source,
    read_source,
    source_name,
    source_stem,
    timestamp_ns,
)
from agentsignals._spans.model import Span

NAME = "openhands"

_NOT_TURNS = frozenset(
    {
        "system",
        "recall",
        "condensation",
        "condensation_request",
        "change_agent_state",
        "null",
        "start",
    }
)
_FALLBACK_TOOL_NAMES = {
    "run": "execute_bash",
    "run_ipython": "execute_ipython_cell",
    "browse_interactive": "browser",
}
# Action args that are bookkeeping, not what the model asked for.
_NOISE_ARGS = frozenset(
    {
        "thought",
        "impl_source",
        "translated_ipython_code",
        "is_confirmed",
        "confirmation_state",
        "action_risk",
        "security_risk",
        "keep_prompt",
        "kernel_init_code",
        "hidden",
        "blocking",
        "wait_for_response",
        "images_urls",
        "image_urls",
        "include_extra",
    }
)
_ENVELOPE = frozenset(
    {
        "id",
        "timestamp",
        "source",
        "message",
        "action",
        "observation",
        "cause",
        "args",
        "extras",
        "content",
        "tool_call_metadata",
        "llm_metrics",
        "success",
        "timeout",
        "security_risk",
    }
)

_JSON_LIST_EVENT = re.compile(rb'"(?:action|observation)"\s*:\s*"')
_SOURCE = re.compile(rb'"source"\s*:\s*"(?:agent|user|environment)"')


# ----------------------------------------------------------------------------------- detect


def detect(path: Path, head: bytes) -> bool:
    """Event-stream exports (`[` + events with a source and an action/observation) and
    evaluation or resolver output lines (`history` with `instance_id` or `issue_type`)."""
    name = source_name(path).lower()
    text = head.lstrip()
    if name.endswith(".jsonl"):
        if not text.startswith(b"{") or b'"trajectory_format"' in head:
            return False
        has_task = b'"instance_id"' in head or b'"issue_type"' in head
        has_run = b'"history"' in head or b'"git_patch"' in head or b'"test_result"' in head
        return has_task and has_run
    if name.endswith(".json"):
        if text.startswith(b"["):
            return bool(_JSON_LIST_EVENT.search(head)) and (
                bool(_SOURCE.search(head)) or b'"observation"' in head
            )
        if text.startswith(b"{"):
            if b'"history"' in head and (b'"instance_id"' in head or b'"issue_type"' in head):
                return b'"trajectory_format"' not in head
            return b'"trajectory"' in head and bool(_SOURCE.search(head))
    return False


# ------------------------------------------------------------------------------------- read


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    """One span list per trajectory: per line of an output.jsonl, one for an event export."""
    if source_name(path).lower().endswith(".jsonl"):
        yield from _read_lines(path, report)
        return
    try:
        raw = read_source(path)
    except OSError as exc:
        raise TrajectoryError(str(path), f"cannot read: {exc}") from exc
    if not raw.strip():
        raise TrajectoryError(str(path), "empty file")
    try:
        data = loads_json(raw)
    except UnicodeDecodeError as exc:
        raise TrajectoryError(str(path), f"not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TrajectoryError(
            str(path), f"not valid JSON (truncated or corrupted?): {exc.msg}", exc.lineno
        ) from exc

    def bad(message: str) -> None:
        report(ImportProblem(str(path), 0, message))

    if isinstance(data, list):
        record, task_id = {"history": data}, source_stem(path)
    elif isinstance(data, dict) and isinstance(data.get("history"), list):
        record, task_id = data, _task_id(data) or source_stem(path)
    elif isinstance(data, dict) and isinstance(data.get("trajectory"), list):
        record, task_id = {"history": data["trajectory"]}, source_stem(path)
    else:
        raise TrajectoryError(
            str(path), "not an OpenHands trajectory (expected a list of events or a history)"
        )
    try:
        spans = _build(path, str(path), record, task_id, bad)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        if isinstance(exc, TrajectoryError):
            raise
        raise TrajectoryError(str(path), f"could not import: {type(exc).__name__}: {exc}") from exc
    yield spans


def _read_lines(path: Path, report: Report) -> Iterator[list[Span]]:
    try:
        fh = open_source(path)
    except OSError as exc:
        raise TrajectoryError(str(path), f"cannot read: {exc}") from exc
    seen: set[str] = set()
    loose_events: list[Any] = []
    any_line = False
    with fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            any_line = True

            def bad(message: str, line: int = line_no) -> None:
                report(ImportProblem(str(path), line, message))

            try:
                record = loads_json(raw)
            except UnicodeDecodeError:
                bad("not UTF-8 text; line skipped")
                continue
            except json.JSONDecodeError as exc:
                bad(f"not valid JSON (truncated or corrupted?): {exc.msg}; line skipped")
                continue
            if not isinstance(record, dict):
                bad("not a JSON object; line skipped")
                continue
            if "history" not in record and ("action" in record or "observation" in record):
                loose_events.append(record)  # one event a line: the lines are one trajectory
                continue
            if not isinstance(record.get("history"), list):
                bad("no `history` list; line skipped")
                continue
            task_id = _task_id(record) or f"{source_stem(path)}:{line_no}"
            source = str(path) if task_id not in seen else f"{path}:{line_no}"
            seen.add(task_id)
            try:
                spans = _build(path, source, record, task_id, bad)
            except TrajectoryError as exc:
                bad(f"{exc.problem.message}; line skipped")
                continue
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                bad(f"could not import this trajectory: {type(exc).__name__}: {exc}")
                continue
            yield spans
    if not any_line:
        raise TrajectoryError(str(path), "empty file")
    if loose_events:

        def bad_event(message: str) -> None:
            report(ImportProblem(str(path), 0, message))

        yield _build(path, str(path), {"history": loose_events}, source_stem(path), bad_event)


def _task_id(record: Mapping[str, Any]) -> str | None:
    instance = record.get("instance_id")
    if isinstance(instance, str | int) and not isinstance(instance, bool):
        return str(instance)
    issue = record.get("issue")
    if isinstance(issue, dict):
        owner, repo, number = issue.get("owner"), issue.get("repo"), issue.get("number")
        if isinstance(owner, str) and isinstance(repo, str) and number is not None:
            return f"{owner}/{repo}#{number}"
    inst = record.get("instance")
    if isinstance(inst, dict) and isinstance(inst.get("instance_id"), str):
        return str(inst["instance_id"])
    return None


# ----------------------------------------------------------------------------------- events


@dataclass
class _Event:
    pos: int
    id: int | None
    ts: int | None
    source: str | None
    action: str | None
    observation: str | None
    cause: int | None
    args: dict[str, Any]
    content: str | None
    meta: dict[str, Any]
    llm_metrics: dict[str, Any]
    pair: int | None = None  # the action of its [action, observation] pair

    @property
    def response(self) -> dict[str, Any]:
        return _dict(self.meta.get("model_response"))


def _events(history: list[Any], bad: Callable[[str], None]) -> list[_Event]:
    out: list[_Event] = []
    for index, item in enumerate(history):
        parts = item if isinstance(item, list | tuple) else [item]
        paired_action: int | None = None
        for part in parts:
            event = _event(part, len(out))
            if event is None:
                bad(f"history[{index}]: not an event object; skipped")
                continue
            if event.observation is not None and event.cause is None and len(parts) > 1:
                event.pair = paired_action
            if event.action is not None:
                paired_action = event.pos
            out.append(event)
    _infer_sources(out)
    return out


def _event(raw: Any, pos: int) -> _Event | None:
    if not isinstance(raw, dict):
        return None
    action = _str(raw.get("action"))
    observation = _str(raw.get("observation"))
    if action is None and observation is None:
        return None
    nested = raw.get("args") if action is not None else raw.get("extras")
    if isinstance(nested, dict):
        args = dict(nested)
    else:  # the oldest flat shape: args and extras at the top level
        args = {k: v for k, v in raw.items() if k not in _ENVELOPE}
    content = raw.get("content")
    if action is not None and not isinstance(content, str):
        content = raw.get("message")
    return _Event(
        pos=pos,
        id=_int(raw.get("id")),
        ts=_timestamp(raw.get("timestamp")),
        source=_str(raw.get("source")),
        action=action,
        observation=observation,
        cause=_int(raw.get("cause")),
        args=args,
        content=content if isinstance(content, str) else None,
        meta=_dict(raw.get("tool_call_metadata")),
        llm_metrics=_dict(raw.get("llm_metrics")),
    )


def _infer_sources(events: list[_Event]) -> None:
    """The oldest shape has no `source`: the first message is the task, a message that waits for
    a response is the agent's, other messages are the user's, other actions the agent's."""
    first_action = True
    for e in events:
        if e.source is not None or e.action is None:
            continue
        if e.action == "message":
            agent = not first_action and e.args.get("wait_for_response") is True
            e.source = "agent" if agent else "user"
        elif e.action in ("change_agent_state", "recall"):
            e.source = "environment"
        else:
            e.source = "agent"
        first_action = False


def _is_turn_action(e: _Event) -> bool:
    return e.action is not None and e.source == "agent" and e.action not in _NOT_TURNS


def _is_tool_action(e: _Event) -> bool:
    return _is_turn_action(e) and e.action != "message"


def _link(events: list[_Event]) -> dict[int, _Event]:
    """Observation of each tool action, by the action's position."""
    by_id = {e.id: e for e in events if e.action is not None and e.id is not None}
    out: dict[int, _Event] = {}
    waiting: list[int] = []
    for e in events:
        if _is_tool_action(e):
            waiting.append(e.pos)
            continue
        if e.observation is None or e.observation in ("agent_state_changed", "null"):
            continue
        target: int | None = None
        if e.cause is not None:
            action = by_id.get(e.cause)
            target = action.pos if action is not None else None
        elif e.pair is not None:
            target = e.pair
        elif e.id is None and waiting:
            target = waiting[-1]  # the oldest shape: the answer to the latest open call
        if target is not None and target not in out and target in waiting:
            out[target] = e
            waiting.remove(target)
    return out


# ------------------------------------------------------------------------------------ usage


@dataclass
class _Usage:
    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None

    @property
    def known(self) -> bool:
        return self.input is not None or self.output is not None


def _response_usage(response: Mapping[str, Any]) -> _Usage | None:
    usage = _dict(response.get("usage"))
    if not usage:
        return None
    prompt_details = _dict(usage.get("prompt_tokens_details"))
    completion_details = _dict(usage.get("completion_tokens_details"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
    if cache_read is None:
        cache_read = _int(prompt_details.get("cached_tokens"))
    out = _Usage(
        input=_int(usage.get("prompt_tokens")),
        output=_int(usage.get("completion_tokens")),
        cache_read=cache_read,
        cache_write=_int(usage.get("cache_creation_input_tokens")),
        reasoning=_int(completion_details.get("reasoning_tokens")),
    )
    return out if out.known else None


def _token_usage(entry: Mapping[str, Any]) -> _Usage | None:
    out = _Usage(
        input=_int(entry.get("prompt_tokens")),
        output=_int(entry.get("completion_tokens")),
        cache_read=_int(entry.get("cache_read_tokens")),
        cache_write=_int(entry.get("cache_write_tokens")),
        reasoning=_int(entry.get("reasoning_tokens")),
    )
    return out if out.known else None


def _delta(now: _Usage | None, before: _Usage | None) -> _Usage | None:
    if now is None:
        return None
    if before is None:
        return now

    def sub(a: int | None, b: int | None) -> int | None:
        return None if a is None else a - (b or 0)

    return _Usage(
        sub(now.input, before.input),
        sub(now.output, before.output),
        sub(now.cache_read, before.cache_read),
        sub(now.cache_write, before.cache_write),
        sub(now.reasoning, before.reasoning),
    )


def _cost_value(entry: Any) -> float | None:
    if isinstance(entry, dict):
        entry = entry.get("cost")
    return _float(entry)


# ------------------------------------------------------------------------------------ turns


@dataclass
class _TurnPlan:
    key: str
    first: _Event
    start_ns: int | None
    actions: list[_Event] = field(default_factory=list)
    # Content: the system prompt and the user's messages since the previous response, and
    # what the agent said in `message` actions.
    inputs: list[tuple[str, str]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


def _message_text(e: _Event) -> str | None:
    text = e.args.get("content")
    return text if isinstance(text, str) else e.content


def _plan_turns(events: list[_Event]) -> list[_TurnPlan]:
    plans: dict[str, _TurnPlan] = {}
    previous_ts: int | None = None
    inputs: list[tuple[str, str]] = []
    for e in events:
        if _is_turn_action(e):
            response_id = _str(e.response.get("id"))
            key = response_id if response_id else f"#{e.pos}"
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = _TurnPlan(key, e, previous_ts, inputs=inputs)
                inputs = []
            if _is_tool_action(e):
                plan.actions.append(e)
            elif (text := _message_text(e)) is not None:
                plan.said.append(text)
        elif e.action == "message" and e.source == "user":
            inputs.append(("user", _message_text(e) or ""))
        elif e.action == "system":
            inputs.append(("system", _message_text(e) or ""))
        if e.ts is not None:
            previous_ts = e.ts
    return list(plans.values())


def _reasoning(response: Mapping[str, Any]) -> str | None:
    """The response's reasoning (thinking) text; "" when the response has none; None when the
    response itself was not recorded. The `thought` of an action is the model's visible text
    accompanying its tool call, not reasoning, so it is not counted."""
    if not response:
        return None
    parts: list[str] = []
    for choice in _list(response.get("choices")):
        message = _dict(_dict(choice).get("message"))
        text = message.get("reasoning_content")
        if isinstance(text, str) and text:
            parts.append(text)
            continue
        for block in _list(message.get("thinking_blocks")):
            thinking = _dict(block).get("thinking")
            if isinstance(thinking, str) and thinking:
                parts.append(thinking)
    return "\n\n".join(parts)


def _thought(actions: Sequence[_Event]) -> str | None:
    """The visible text the model wrote with its actions (their `thought`), the same signal
    as SWE-agent's thought; None when no action carries the field."""
    texts = [a.args.get("thought") for a in actions]
    known = [t for t in texts if isinstance(t, str)]
    if not known:
        return None
    return "\n\n".join(t.strip() for t in known if t.strip())


def _finish_reasons(response: Mapping[str, Any]) -> list[str] | None:
    reasons = [
        str(_dict(c).get("finish_reason"))
        for c in _list(response.get("choices"))
        if _dict(c).get("finish_reason")
    ]
    return reasons or None


# ------------------------------------------------------------------------------------ tools

_SKILLS: dict[str, sc.ToolCategory] = {
    "open_file": sc.ToolCategory.READ,
    "goto_line": sc.ToolCategory.READ,
    "scroll_down": sc.ToolCategory.READ,
    "scroll_up": sc.ToolCategory.READ,
    "search_dir": sc.ToolCategory.SEARCH,
    "search_file": sc.ToolCategory.SEARCH,
    "find_file": sc.ToolCategory.SEARCH,
    "create_file": sc.ToolCategory.EDIT,
    "edit_file": sc.ToolCategory.EDIT,
    "edit_file_by_replace": sc.ToolCategory.EDIT,
    "edit_file_by_line": sc.ToolCategory.EDIT,
    "insert_content_at_line": sc.ToolCategory.EDIT,
    "append_file": sc.ToolCategory.EDIT,
}
_SKILL_WITH_PATH = frozenset(
    {
        "open_file",
        "create_file",
        "edit_file",
        "edit_file_by_replace",
        "edit_file_by_line",
        "insert_content_at_line",
        "append_file",
    }
)
_SKILL_CALL = re.compile(
    r"(?<![\w.])(" + "|".join(sorted(_SKILLS)) + r")\(\s*"
    r"(?:(?:file_name|path|file)\s*=\s*)?(?:[rRbB]?(['\"])(?P<path>[^'\"\n]+)\2)?"
)
_PY_WRITE = re.compile(
    r"\bopen\(\s*[rRbB]?(['\"])(?P<path>[^'\"\n]+)\1\s*,\s*(?:mode\s*=\s*)?[rRbB]?(['\"])"
    r"(?P<mode>[rwaxbt+]+)\3"
)
_PY_WRITE_TEXT = re.compile(
    r"\bPath\(\s*[rRbB]?(['\"])(?P<path>[^'\"\n]+)\1\s*\)\s*\.\s*write_(?:text|bytes)\("
)


def _ipython(code: str) -> tuple[str | None, list[str], list[str]]:
    """(category, files stated, files written) of an IPython cell: its agentskills calls, its
    `open(path, "w")` writes, its `!shell` lines."""
    categories: list[sc.ToolCategory] = []
    files: list[str] = []
    written: list[str] = []
    for match in _SKILL_CALL.finditer(code):
        skill = match.group(1)
        categories.append(_SKILLS[skill])
        path = match.group("path")
        if path and skill in _SKILL_WITH_PATH and path not in files:
            files.append(path)
            if _SKILLS[skill] is sc.ToolCategory.EDIT and path not in written:
                written.append(path)
    for match in _PY_WRITE.finditer(code):
        if set(match.group("mode")) & set("wax+") and match.group("path") not in written:
            written.append(match.group("path"))
    for match in _PY_WRITE_TEXT.finditer(code):
        if match.group("path") not in written:
            written.append(match.group("path"))
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith("!"):
            for target in shell_edit_targets(stripped[1:]):
                if target not in written:
                    written.append(target)
    category: str | None = None
    for wanted in (sc.ToolCategory.EDIT, sc.ToolCategory.READ, sc.ToolCategory.SEARCH):
        if wanted in categories:
            category = wanted.value
            break
    if category is None and not any(ln.strip().startswith("!") for ln in code.splitlines()):
        category = sc.ToolCategory.SHELL.value
    return category, files, written


# What the editors answer when an edit was not applied (agentskills, file_editor).
_EDIT_REJECTED = re.compile(
    r"^\s*(?:\[Your proposed edit has introduced new syntax error|\[No exact match found"
    r"|\[Error|ERROR:|Traceback \(most recent call last\))"
)


def _tool_call_arguments(e: _Event) -> dict[str, Any] | None:
    call_id = e.meta.get("tool_call_id")
    for choice in _list(e.response.get("choices")):
        message = _dict(_dict(choice).get("message"))
        for item in _list(message.get("tool_calls")):
            call = _dict(item)
            if call_id is not None and call.get("id") != call_id:
                continue
            raw = _dict(call.get("function")).get("arguments")
            if isinstance(raw, dict):
                return raw
            if isinstance(raw, str):
                try:
                    parsed = loads_json(raw)
                except ValueError:
                    return None
                return parsed if isinstance(parsed, dict) else None
    return None


def _exit_code(obs: _Event | None) -> int | None:
    if obs is None:
        return None
    meta = _dict(obs.args.get("metadata"))
    code = _int(meta.get("exit_code"))
    return code if code is not None else _int(obs.args.get("exit_code"))


def _add_tool(attempt: AttemptBuilder, turn: TurnRef, e: _Event, obs: _Event | None) -> None:
    kind = e.action or ""
    args = e.args
    name = _str(e.meta.get("function_name"))
    if kind == "call_tool_mcp" and name is None:
        name = _str(args.get("name"))
    name = name or _FALLBACK_TOOL_NAMES.get(kind, kind)
    arguments = _tool_call_arguments(e)
    if arguments is None:
        arguments = {k: v for k, v in args.items() if k not in _NOISE_ARGS}
    command: str | None = None
    category: str | None = None
    files: list[str] | None = None
    changed: list[str] | None = None
    if kind == "run":
        command = _str(args.get("command"))
    elif kind == "run_ipython":
        code = _str(args.get("code")) or ""
        category, files, changed = _ipython(code)
        if category is None:  # shell escapes only: let the builder read the commands
            command = "\n".join(
                line.strip()[1:] for line in code.splitlines() if line.strip().startswith("!")
            )
    path = _str(args.get("path")) or _str(arguments.get("path"))
    if kind in ("read", "edit", "write") and path:
        files = [path]
    exit_code = _exit_code(obs)
    error: str | None = None
    if obs is not None and obs.observation == "error":
        error = "ErrorObservation"
    elif obs is not None and obs.observation == "user_rejected":
        error = "UserRejectObservation"
    if exit_code == -1:  # still running when OpenHands stopped waiting
        exit_code, error = None, error or "timeout"
    edits = kind in ("edit", "write") or category == sc.ToolCategory.EDIT.value
    if edits and obs is not None and obs.content and _EDIT_REJECTED.match(obs.content):
        error = error or "edit_rejected"
    if error and edits:
        changed = []
    call_id = _str(e.meta.get("tool_call_id"))
    attempt.tool(
        name,
        turn=turn,
        arguments=arguments,
        command=command,
        category=category,
        call_id=call_id,
        files=files,
        changed_files=changed,
        result=obs.content if obs is not None else None,
        exit_code=exit_code,
        error=error,
        start_ns=e.ts,
        end_ns=obs.ts if obs is not None else None,
    )


# ------------------------------------------------------------------------------------- exit

_ERROR_NAME = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exceeded\w*))\b")


def _classify_error(text: str) -> tuple[str, str, str | None]:
    """(exit reason, failure mode, error.type) of an OpenHands error text."""
    low = text.lower()
    named = _ERROR_NAME.match(text)
    name = named.group(1).rsplit(".", 1)[-1] if named else None
    if "maximum iteration" in low or "max_iterations" in low or "max iteration" in low:
        return sc.AttemptExitReason.MAX_TURNS.value, "max_iterations", None
    if "budget" in low:
        return sc.AttemptExitReason.COST_LIMIT.value, "max_budget", None
    if "contextwindowexceeded" in low or "context window" in low or "context length" in low:
        return sc.AttemptExitReason.CONTEXT_OVERFLOW.value, "context_window", None
    if "stuck in a loop" in low or "agentstuckinloop" in low:
        return sc.AttemptExitReason.ERROR.value, "stuck_in_loop", "AgentStuckInLoopError"
    if "timeout" in low or "timed out" in low:
        return sc.AttemptExitReason.TIMEOUT.value, "timeout", name
    if "interrupt" in low or "cancelled" in low:
        return sc.AttemptExitReason.INTERRUPTED.value, "interrupted", None
    return sc.AttemptExitReason.ERROR.value, "error", name or "Error"


def _exit(
    events: list[_Event], error_text: str | None
) -> tuple[str | None, str | None, str | None]:
    if error_text:
        return _classify_error(error_text)
    state: str | None = None
    reason: str | None = None
    last_error: str | None = None
    finished = False
    for e in events:
        if e.observation == "agent_state_changed":
            state = _str(e.args.get("agent_state"))
            reason = _str(e.args.get("reason")) or reason
        elif e.observation == "error" and e.content:
            last_error = e.content
        elif e.action == "finish" and e.source == "agent":
            finished = True
    if state == "error":
        return _classify_error(reason or last_error or "error")
    if finished or state == "finished":
        return sc.AttemptExitReason.SUBMITTED.value, None, None
    if state == "stopped":
        return sc.AttemptExitReason.USER_STOPPED.value, None, None
    if state == "paused":
        return sc.AttemptExitReason.INTERRUPTED.value, None, None
    return None, None, None


# ------------------------------------------------------------------------------------ build


def _build(
    path: Path, source: str, record: Mapping[str, Any], task_id: str, bad: Callable[[str], None]
) -> list[Span]:
    events = _events(list(record.get("history") or []), bad)
    if not events and record.get("history"):
        raise TrajectoryError(str(path), "history has no events")
    metadata = _dict(record.get("metadata"))
    metrics = _dict(record.get("metrics"))
    llm_config = _dict(metadata.get("llm_config"))
    plans = _plan_turns(events)
    observations = _link(events)

    model = _str(llm_config.get("model"))
    if model is None:
        for plan in plans:
            model = _str(plan.first.response.get("model"))
            if model:
                break
    agent_class = _str(metadata.get("agent_class"))
    if agent_class is None:
        system = next((e for e in events if e.action == "system"), None)
        agent_class = _str(system.args.get("agent_class")) if system is not None else None
    dataset = _str(metadata.get("dataset"))
    split = _str(metadata.get("data_split"))
    if dataset and split:
        dataset = f"{dataset}@{split}"
    times = [e.ts for e in events if e.ts is not None]
    start = min(times) if times else None
    end = max(times) if times else None

    traj = TrajectoryBuilder(
        source_format=NAME, source_path=source, task_id=task_id, start_ns=start, dataset=dataset
    )
    attempt = traj.attempt(
        agent_type="openhands",
        agent_name=agent_class or "openhands",
        model_id=model,
        start_ns=start,
        attempt1_tool_cap=_int(metadata.get("max_iterations")),
    )

    # Per-call usage and cost sources other than the response itself.
    token_usages = [_dict(t) for t in _list(metrics.get("token_usages"))]
    by_response = {
        str(t["response_id"]): t for t in token_usages if isinstance(t.get("response_id"), str)
    }
    have_ids = any(not p.key.startswith("#") for p in plans)
    positional_usage = not have_ids and len(token_usages) == len(plans) and not by_response
    costs = [_cost_value(c) for c in _list(metrics.get("costs"))]
    positional_costs = len(costs) == len(plans) and all(c is not None for c in costs)

    any_usage = False
    previous_acc: _Usage | None = None
    previous_cost: float | None = None
    for i, plan in enumerate(plans):
        response = plan.first.response
        usage = _response_usage(response)
        if usage is None and plan.key in by_response:
            usage = _token_usage(by_response[plan.key])
        if usage is None and positional_usage:
            usage = _token_usage(token_usages[i])
        acc = _token_usage(_dict(plan.first.llm_metrics.get("accumulated_token_usage")))
        if usage is None and acc is not None:
            usage = _delta(acc, previous_acc)
        previous_acc = acc or previous_acc
        cost: float | None = None
        acc_cost = _float(plan.first.llm_metrics.get("accumulated_cost"))
        if acc_cost is not None:
            cost = acc_cost - (previous_cost or 0.0)
            previous_cost = acc_cost
        elif positional_costs:
            cost = costs[i]
        any_usage = any_usage or (usage is not None and usage.known)
        turn_model = _str(response.get("model")) or model
        ref = attempt.turn(
            start_ns=plan.start_ns,
            end_ns=plan.first.ts,
            model=turn_model,
            input_tokens=usage.input if usage else None,
            output_tokens=usage.output if usage else None,
            cache_read_tokens=usage.cache_read if usage else None,
            cache_write_tokens=usage.cache_write if usage else None,
            reasoning_tokens=usage.reasoning if usage else None,
            cost_usd=cost,
            reasoning=_reasoning(response),
            thought=_thought(plan.actions),
            finish_reasons=_finish_reasons(response),
            inputs=plan.inputs,
            text="\n\n".join(t for t in [_thought(plan.actions), *plan.said] if t) or None,
        )
        for action in plan.actions:
            _add_tool(attempt, ref, action, observations.get(action.pos))

    totals: _Usage | None = None
    if not any_usage:
        totals = _token_usage(_dict(metrics.get("accumulated_token_usage")))
        if totals is None:
            last_metrics = next((e.llm_metrics for e in reversed(events) if e.llm_metrics), {})
            totals = _token_usage(_dict(last_metrics.get("accumulated_token_usage")))
    total_cost = _float(metrics.get("accumulated_cost"))
    if total_cost is None:
        last_metrics = next((e.llm_metrics for e in reversed(events) if e.llm_metrics), {})
        total_cost = _float(last_metrics.get("accumulated_cost"))

    error_text = _str(record.get("error"))
    exit_reason, failure_mode, error_type = _exit(events, error_text)
    patch = record.get("git_patch")
    if not isinstance(patch, str):
        patch = _dict(record.get("test_result")).get("git_patch")
    attempt.end(
        exit_reason=exit_reason,
        exit_status=failure_mode,
        submission=patch if isinstance(patch, str) else None,
        input_tokens=totals.input if totals else None,
        output_tokens=totals.output if totals else None,
        cache_read_tokens=totals.cache_read if totals else None,
        cache_write_tokens=totals.cache_write if totals else None,
        cost_usd=total_cost,
        end_ns=end,
        error=error_type,
    )
    return traj.finish(end_ns=end)


# ---------------------------------------------------------------------------------- helpers


def _timestamp(value: Any) -> int | None:
    return timestamp_ns(value, numbers="s")


def _dict(value: Any) -> dict[str, Any]:
    return as_dict(value)


def _list(value: Any) -> list[Any]:
    return as_list(value)


def _str(value: Any) -> str | None:
    return nonempty_str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
