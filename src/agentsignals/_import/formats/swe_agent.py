"""SWE-agent trajectories (`.traj`), 0.x and 1.x, single runs and retry-agent runs.

Shapes read (field names from SWE-agent's `DefaultAgent.get_trajectory_data` and
`RetryAgent.get_trajectory_data`):

* a run: `trajectory` (steps with `action`, `observation`, `response`, `thought`, `state`, in 1.x
  also `execution_time`, `query`/`messages`, `extra_info`, `reasoning_content`), `history` (the
  messages: `role`, `content`, `agent`, on the model's messages `thought`, `action`, and with
  function calling `tool_calls`; demonstrations are flagged `is_demo`), `info` (`exit_status`,
  `submission`, `model_stats` {`instance_cost`, `tokens_sent`, `tokens_received`, `api_calls`}),
  in 1.x `replay_config` (the run's config, JSON text or an object), `environment`.
* a retry-agent run: the same plus `attempts` (one run object per attempt); the top-level
  `trajectory` is a copy of the chosen attempt and is not imported twice.

Mapping:

* Attempts. A run is one attempt; each entry of `attempts` is an attempt of its own (index 0,
  1, ...), with its own exit status, submission and usage. The instance id (task id) is the
  config's `problem_statement.id`, else the file name without `.traj` (SWE-agent names the file
  after the instance).
* Turns. Each trajectory step is one model call, so one turn; its `thought` (and
  `reasoning_content`, when recorded) is the turn's reasoning. Two kinds of steps are not the
  model's: the harness's exit step (no action, thought "Exit due to ..."; written when the run
  stops on the cost limit, a context overflow, repeated format errors, ...) makes no turn. A
  requeried step (1.x records the model's output that failed to parse, was blocked, or was not
  valid bash, then asks again) is a turn without a tool: its action never ran. Requeried steps
  are the steps no `history` message of the agent matches (the history keeps only the output
  that ran); without a history every step's action is taken to have run.
* Tools. One tool call per step with an action. With function calling (a history message with
  one `tool_calls` entry) the tool name and arguments are the model's. Otherwise the action text
  is read: its first word is the tool when it is one of SWE-agent's commands (the config's
  `command_docs`, else the stock ones: `str_replace_editor`, `open`, `goto`, `scroll_up`,
  `scroll_down`, `create`, `edit`, `insert`, `search_dir`, `search_file`, `find_file`,
  `filemap`, `submit`, `exit_forfeit`), else the action is a shell command (`bash`), classified
  by what it does. `str_replace_editor` is read by its subcommand (view -> read;
  create / str_replace / insert / undo_edit -> edit) with `command`, `path` and the other flags
  as arguments and `path` as the file. The windowed-editor commands act on the open file
  (`state.open_file`, or the last file opened or created): `open`, `goto`, `scroll_*`, `filemap`
  are reads, `edit` / `insert` / `create` edits, `search_*` / `find_file` searches. The step's
  `observation` is the result; an edit SWE-agent rejected (linter errors, `No replacement was
  performed`, ...) is a failed call that changed nothing; a cancelled command is error
  `timeout`. SWE-agent records no exit codes and no timestamps: times are synthesized in step
  order.
* Several agents. History messages labelled with another `agent` than the run's own (0.x
  subroutines, reviewers or helpers that share the history) are a subagent: a nested attempt
  (`agent_signals.attempt.parent_id`) under the tool call that started it (the agent's latest
  step before them), with a turn per message of theirs and a tool per action. They are not in
  `trajectory`, and their usage is inside the run's `model_stats` (SWE-agent adds it there), so
  the subagent attempt has no usage of its own.
* Usage. SWE-agent keeps only run totals: `tokens_sent` / `tokens_received` / `instance_cost` go
  to the attempt as totals, not spread over turns. All-zero totals with API calls (a replay or
  human model) are unknown, not zero.
* Exit. `info.exit_status` is kept as the raw label and mapped: `submitted` -> submitted;
  `submitted (exit_X)` (the harness auto-submitted the patch after X) and `exit_X`: exit_cost ->
  cost_limit, exit_context -> context_overflow, exit_total_execution_time -> timeout,
  exit_format / exit_error / exit_api / exit_environment_error / exit_command_timeout -> error;
  exit_forfeit (the agent gave up) -> gave_up; exit_command (the agent typed `exit`) and unknown
  labels have no exit reason. `info.submission` is the submitted patch (touched files and line
  counts); a run that submitted an empty patch touched nothing.
* Treatment: model from the config's `agent.model.name` (0.x: the run folder's name,
  `<model>__<data>__<config>__t-..__p-..__c-..__install-..`), the call limit
  (`per_instance_call_limit`) as the first attempt's tool cap, the config's
  `total_execution_timeout` as the time limit.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsignals import semconv as sc
from agentsignals._import.builder import AttemptBuilder, TrajectoryBuilder, TurnRef
from agentsignals._import.formats import ImportProblem, Report, TrajectoryError
from agentsignals._import.formats._common import (
    loads_json,
    read_source,
    source_name,
    source_stem,
)
from agentsignals._spans.model import Span, coerce_float

NAME = "swe-agent"

_AGENT_TYPE = "swe-agent"
_MINI_MARKERS = (b'"mini_version"', b"mini-swe-agent")
_STOCK_COMMANDS = frozenset(
    {
        "str_replace_editor",
        "open",
        "goto",
        "scroll_up",
        "scroll_down",
        "create",
        "edit",
        "insert",
        "search_dir",
        "search_file",
        "find_file",
        "filemap",
        "submit",
        "exit_forfeit",
    }
)
# Windowed-editor commands that act on the open file.
_ON_OPEN_FILE = frozenset({"goto", "scroll_up", "scroll_down", "edit", "insert"})
_READS = frozenset({"open", "goto", "scroll_up", "scroll_down", "filemap"})
_EXIT_REASONS = {
    "submitted": sc.AttemptExitReason.SUBMITTED.value,
    "exit_cost": sc.AttemptExitReason.COST_LIMIT.value,
    "exit_total_cost": sc.AttemptExitReason.COST_LIMIT.value,
    "exit_context": sc.AttemptExitReason.CONTEXT_OVERFLOW.value,
    "exit_total_execution_time": sc.AttemptExitReason.TIMEOUT.value,
    "exit_format": sc.AttemptExitReason.ERROR.value,
    "exit_error": sc.AttemptExitReason.ERROR.value,
    "exit_api": sc.AttemptExitReason.ERROR.value,
    "exit_environment_error": sc.AttemptExitReason.ERROR.value,
    "exit_command_timeout": sc.AttemptExitReason.ERROR.value,
    "exit_forfeit": sc.AttemptExitReason.GAVE_UP.value,
}
_HARNESS_EXIT = re.compile(r"^\s*Exit(?:ing)? due to\b")
# SWE-agent's own messages for an edit it did not make.
_EDIT_FAILED = re.compile(
    r"Your proposed edit has introduced new syntax error|No replacement was performed|"
    r"^ERROR: |^Error: |^Usage: |did not appear verbatim|Invalid `\w+` parameter|"
    r"Cannot overwrite files",
    re.M,
)
_CANCELLED = re.compile(r"^The command .* was cancelled because it took more than", re.S)
_RUN_DIR = re.compile(
    r"^(?P<model>.+?)__.+__t-\d+(?:\.\d+)?__p-\d+(?:\.\d+)?__c-\d+(?:\.\d+)?__install-\w+$"
)
_NOT_MODELS = frozenset({"replay", "human", "human_thought", "instant_empty_submit"})
_COMMAND_DOC = re.compile(r"^([A-Za-z_][\w-]*):\s*$", re.M)


# ------------------------------------------------------------------------------ reading


def load_json_document(path: Path) -> Any:
    """A whole-file JSON document; TrajectoryError (file, line) for anything unreadable."""
    try:
        raw = read_source(path)
    except OSError as exc:
        raise TrajectoryError(str(path), f"cannot read: {exc}") from exc
    if not raw.strip():
        raise TrajectoryError(str(path), "empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrajectoryError(str(path), f"not UTF-8 text: {exc}") from exc
    try:
        return loads_json(text)
    except json.JSONDecodeError as exc:
        # Cut off: the error is at the very end, or a string runs into the end of the file.
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if cut else "malformed JSON"
        raise TrajectoryError(
            str(path), f"{what}: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from exc
    except RecursionError as exc:
        raise TrajectoryError(str(path), "malformed JSON: nested too deeply") from exc


def detect(path: Path, head: bytes) -> bool:
    start = head.lstrip()[:1]
    if start != b"{" or any(m in head for m in _MINI_MARKERS):
        return False
    has_steps = b'"trajectory"' in head or b'"attempts"' in head
    if source_name(path).endswith(".traj"):
        return has_steps or b'"history"' in head
    return has_steps and b'"action"' in head and b'"observation"' in head


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    data = load_json_document(path)
    if not isinstance(data, dict):
        raise TrajectoryError(str(path), "not a SWE-agent trajectory: the file is not an object")
    runs = _runs(data, str(path), report)
    if runs is None:
        raise TrajectoryError(
            str(path), "not a SWE-agent trajectory: no 'trajectory' list and no 'attempts'"
        )
    config = _config(data, path)
    builder = TrajectoryBuilder(
        source_format=NAME, source_path=str(path), task_id=_task_id(path, config)
    )
    reader = _Reader(path=str(path), report=report, builder=builder, config=config)
    for index, run in enumerate(runs):
        reader.attempt(run, index, config.model_for(index))
    yield builder.finish()


def _runs(data: dict[str, Any], path: str, report: Report) -> list[dict[str, Any]] | None:
    """The attempts: a retry agent's `attempts`, else the run itself."""
    attempts = data.get("attempts")
    if isinstance(attempts, list):
        runs: list[dict[str, Any]] = []
        for i, a in enumerate(attempts):
            if isinstance(a, dict) and isinstance(a.get("trajectory"), list):
                runs.append(a)
            else:
                report(ImportProblem(path, 0, f"attempts[{i}] has no 'trajectory' list; skipped"))
        if runs:
            return runs
    if isinstance(data.get("trajectory"), list):
        return [data]
    return None


# ------------------------------------------------------------------------------- config


@dataclass
class _Config:
    raw: dict[str, Any]
    dir_model: str | None

    def _agent(self, index: int) -> dict[str, Any]:
        agent = _dict(self.raw.get("agent"))
        configs = agent.get("agent_configs")  # retry agent: one config per attempt, cycled
        if isinstance(configs, list) and configs:
            return _dict(configs[index % len(configs)])
        return agent

    def model_for(self, index: int) -> str | None:
        name = _dict(self._agent(index).get("model")).get("name")
        return name if isinstance(name, str) and name else self.dir_model

    def call_limit(self, index: int) -> int | None:
        value = _int(_dict(self._agent(index).get("model")).get("per_instance_call_limit"))
        return value if value else None

    def time_limit(self, index: int) -> float | None:
        value = _float(_dict(self._agent(index).get("tools")).get("total_execution_timeout"))
        return value if value else None

    def commands(self, index: int) -> frozenset[str]:
        docs = _dict(self._agent(index).get("tools")).get("command_docs")
        names = set(_STOCK_COMMANDS)
        if isinstance(docs, str):
            names.update(_COMMAND_DOC.findall(docs))
        names.discard("bash")  # `bash ...` typed as an action is a shell command
        return frozenset(names)


def _config(data: dict[str, Any], path: Path) -> _Config:
    raw = data.get("replay_config")
    parsed: Any = raw
    if isinstance(raw, str):
        try:
            parsed = loads_json(raw)
        except ValueError:
            try:  # some versions wrote the config's Python repr
                parsed = ast.literal_eval(raw)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                parsed = None
    match = _RUN_DIR.match(path.parent.name)
    model = match.group("model") if match else None
    return _Config(_dict(parsed), model if model not in _NOT_MODELS else None)


def _task_id(path: Path, config: _Config) -> str:
    value = _dict(config.raw.get("problem_statement")).get("id")
    if isinstance(value, str) and value:
        return value
    name = source_name(path)
    for suffix in (".traj.json", ".traj", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return source_stem(path)


# ------------------------------------------------------------------------------ mapping


@dataclass
class _Message:
    """A model message of the history: what it asked to run."""

    agent: str
    action: str
    thought: str
    tool_calls: list[dict[str, Any]] | None
    thinking: str = ""
    # Sub-agent messages only: the observation that answered it.
    observation: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class _SubRun:
    agent: str
    after: int  # number of the run's own model messages before it
    messages: list[_Message]
    # What the agent was given before its first message: its system prompt and task.
    inputs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _ToolCall:
    name: str
    arguments: dict[str, Any] | None = None
    command: str | None = None
    category: str | None = None
    files: list[str] | None = None


@dataclass
class _Reader:
    path: str
    report: Report
    builder: TrajectoryBuilder
    config: _Config

    def problem(self, message: str) -> None:
        self.report(ImportProblem(self.path, 0, message))

    def attempt(self, run: dict[str, Any], index: int, model: str | None) -> None:
        steps: list[dict[str, Any]] = []
        for i, step in enumerate(run.get("trajectory") or []):
            if isinstance(step, dict):
                steps.append(step)
            else:
                self.problem(f"attempt {index}: trajectory step {i} is not an object; skipped")
        info = _dict(run.get("info"))
        mains, subs, inputs = self._history(run.get("history"), index)
        commands = self.config.commands(index)
        attempt = self.builder.attempt(
            index=index,
            agent_type=_AGENT_TYPE,
            agent_name=_AGENT_TYPE,
            model_id=model,
            attempt1_tool_cap=self.config.call_limit(index) if index == 0 else None,
            timeout_s=self.config.time_limit(index),
        )
        matched = _align(steps, mains, subs)
        editor = _OpenFile()
        subs_by_step: dict[int, list[_SubRun]] = {}
        leading: list[_SubRun] = []
        for sub in subs:
            if sub.after == 0 or not mains:
                leading.append(sub)
                continue
            # The run's own message just before the subagent ran is the call that started it.
            step_index = matched.message_step.get(sub.after - 1)
            if step_index is None:
                leading.append(sub)
            else:
                subs_by_step.setdefault(step_index, []).append(sub)
        for sub in leading:
            self._subagent(sub, attempt, None, model, commands, editor)
        last = len(steps) - 1
        # The harness's exit step ("Exit due to cost limit") is no model call, except when the
        # file's own count says it was one: a call that crossed the cost limit (or came
        # before the last command timeout) was made and billed, and its reply dropped.
        api_calls = _int(_dict(info.get("model_stats")).get("api_calls"))
        own_steps = len(steps) - len(matched.sub_steps)
        exit_was_a_call = not subs and api_calls is not None and api_calls == own_steps
        for j, step in enumerate(steps):
            action = _str(step.get("action"))
            thought = _str(step.get("thought"))
            is_exit = j == last and not action.strip() and _HARNESS_EXIT.match(thought or "")
            if is_exit and not exit_was_a_call:
                continue  # the harness's exit step: no model call
            if j in matched.sub_steps:
                continue  # another agent's step (CodeR's trajectory lists every agent's)
            message = matched.step_message.get(j)
            ran = matched.all_ran or message is not None
            turn = attempt.turn(
                model=model,
                reasoning=_reasoning(step, message),
                thought=(thought or "").strip(),
                inputs=inputs,
                # An action that never ran (requeried) is shown as the model wrote it.
                text=None if ran or not action.strip() else _str(step.get("response")) or None,
            )
            inputs = []
            tool_span: str | None = None
            if ran and action.strip():
                call = _tool_call(action, message, _state(step.get("state")), commands, editor)
                tool_span = self._tool(attempt, turn, call, _str(step.get("observation")))
            for sub in subs_by_step.get(j, []):
                self._subagent(sub, attempt, tool_span, model, commands, editor)
        self._end(attempt, info)

    def _history(
        self, history: Any, index: int
    ) -> tuple[list[_Message], list[_SubRun], list[tuple[str, str]]]:
        """The run's own model messages, the runs of other agents' messages, and what the run
        was given before its first model message (system prompt and task, demonstrations
        left out)."""
        entries = [e for e in history if isinstance(e, dict)] if isinstance(history, list) else []
        if isinstance(history, list) and len(entries) != len(history):
            self.problem(f"attempt {index}: history entries that are not objects were skipped")
        entries = [e for e in entries if not e.get("is_demo")]
        own = _own_agent(entries)
        mains: list[_Message] = []
        subs: list[_SubRun] = []
        inputs: list[tuple[str, str]] = []
        for e in entries:
            agent = e.get("agent")
            agent = agent if isinstance(agent, str) and agent else own
            role = e.get("role")
            if agent == own:
                if role == "assistant":
                    mains.append(_message(e, agent))
                elif not mains and role in ("system", "user"):
                    inputs.append((str(role), _text(e.get("content"))))
                continue
            if not subs or subs[-1].agent != agent or subs[-1].after != len(mains):
                subs.append(_SubRun(agent, len(mains), []))
            run = subs[-1]
            if role == "assistant":
                run.messages.append(_message(e, agent))
            elif role in ("user", "tool") and run.messages and run.messages[-1].observation is None:
                run.messages[-1].observation = _text(e.get("content"))
            elif not run.messages and role in ("system", "user"):
                run.inputs.append((str(role), _text(e.get("content"))))
        return mains, [s for s in subs if s.messages], inputs

    def _tool(self, attempt: AttemptBuilder, turn: TurnRef, call: _ToolCall, result: str) -> str:
        error: str | None = None
        changed: list[str] | None = None
        if _CANCELLED.match(result):
            error = "timeout"
        elif _is_edit(call) and _EDIT_FAILED.search(result[:2000]):
            error, changed = "edit_failed", []
        return attempt.tool(
            call.name,
            turn=turn,
            arguments=call.arguments,
            command=call.command,
            category=call.category,
            files=call.files,
            changed_files=changed,
            result=result,
            error=error,
        )

    def _subagent(
        self,
        sub: _SubRun,
        parent: AttemptBuilder,
        parent_span_id: str | None,
        model: str | None,
        commands: frozenset[str],
        editor: _OpenFile,
    ) -> None:
        """Another agent's messages; it works in the same environment (same open file)."""
        child = self.builder.attempt(
            parent=parent,
            parent_span_id=parent_span_id,
            agent_type=_AGENT_TYPE,
            agent_name=sub.agent,
            model_id=model,
        )
        inputs = sub.inputs
        for m in sub.messages:
            turn = child.turn(
                model=model, reasoning=_reasoning({}, m), thought=m.thought.strip(), inputs=inputs
            )
            inputs = []
            if m.action.strip():
                call = _tool_call(m.action, m, m.state, commands, editor)
                self._tool(child, turn, call, m.observation or "")
        child.end()

    def _end(self, attempt: AttemptBuilder, info: dict[str, Any]) -> None:
        raw_status = info.get("exit_status")
        status = raw_status if isinstance(raw_status, str) and raw_status else None
        submission = info.get("submission")
        patch = submission if isinstance(submission, str) else None
        if patch is None and status is not None and status.startswith("submitted"):
            patch = ""  # SWE-agent stores an empty patch as None
        stats = _dict(info.get("model_stats"))
        sent, received = _int(stats.get("tokens_sent")), _int(stats.get("tokens_received"))
        cost = _float(stats.get("instance_cost"))
        if not sent and not received and (_int(stats.get("api_calls")) or 0) > 0:
            sent = received = None  # a replay or human model: usage not measured
            cost = cost or None
        reason = exit_reason(status)
        attempt.end(
            exit_reason=reason,
            exit_status=status,
            error=status if reason == sc.AttemptExitReason.ERROR.value else None,
            submission=patch,
            input_tokens=sent,
            output_tokens=received,
            cost_usd=cost,
            model_calls=_int(stats.get("api_calls")),
        )


def _is_edit(call: _ToolCall) -> bool:
    if call.name == "str_replace_editor":
        return _dict(call.arguments).get("command") != "view"
    return call.name in ("edit", "insert", "create")


def exit_reason(status: str | None) -> str | None:
    """`agent_signals.attempt.exit_reason` for a SWE-agent exit status."""
    if not status:
        return None
    s = status.strip()
    auto = re.fullmatch(r"submitted\s*\((.+)\)", s)
    if auto:  # auto-submitted after the run stopped: why it stopped
        return _EXIT_REASONS.get(auto.group(1).strip())
    return _EXIT_REASONS.get(s)


def _own_agent(entries: Sequence[Mapping[str, Any]]) -> str:
    """The run's own agent: the one that got the system prompt (else the first that spoke)."""
    for e in entries:
        agent = e.get("agent")
        if e.get("role") == "system" and isinstance(agent, str) and agent:
            return agent
    for e in entries:
        agent = e.get("agent")
        if isinstance(agent, str) and agent:
            return agent
    return "main"


def _message(e: Mapping[str, Any], agent: str) -> _Message:
    calls = e.get("tool_calls")
    return _Message(
        agent=agent,
        action=_str(e.get("action")),
        thought=_str(e.get("thought")),
        tool_calls=[c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else None,
        thinking=_thinking(e.get("thinking_blocks")),
        state=_state(e.get("state")),
    )


def _thinking(blocks: Any) -> str:
    if not isinstance(blocks, list):
        return ""
    texts = [b.get("thinking") for b in blocks if isinstance(b, dict)]
    return "\n\n".join(t for t in texts if isinstance(t, str) and t)


@dataclass
class _Alignment:
    step_message: dict[int, _Message]
    message_step: dict[int, int]
    all_ran: bool
    # Steps that are other agents' messages (a multi-agent trajectory lists every agent's
    # steps): their turns belong to the subagent attempts, not to this run's.
    sub_steps: frozenset[int] = frozenset()


def _align(
    steps: Sequence[Mapping[str, Any]],
    mains: Sequence[_Message],
    subs: Sequence[_SubRun] = (),
) -> _Alignment:
    """Match the run's model messages (and other agents' messages, in history order) to the
    steps whose action ran (same action, in order); steps left over were requeried. Without
    messages, every step ran."""
    if not mains:
        return _Alignment({}, {}, all_ran=True)
    # All agents' messages in history order: (main message index or None, message).
    ordered: list[tuple[int | None, _Message]] = []
    for k in range(len(mains) + 1):
        for sub in subs:
            if sub.after == k:
                ordered.extend((None, m) for m in sub.messages)
        if k < len(mains):
            ordered.append((k, mains[k]))
    step_message: dict[int, _Message] = {}
    message_step: dict[int, int] = {}
    sub_steps: set[int] = set()
    start = 0
    for owner, m in ordered:
        want = m.action.strip()
        for j in range(start, len(steps)):
            if _str(steps[j].get("action")).strip() == want:
                if owner is None:
                    sub_steps.add(j)
                else:
                    step_message[j] = m
                    message_step[owner] = j
                start = j + 1
                break
    return _Alignment(step_message, message_step, all_ran=False, sub_steps=frozenset(sub_steps))


def _reasoning(step: Mapping[str, Any], message: _Message | None) -> str | None:
    """The model's own thinking where the file recorded it (`reasoning_content` of the step,
    thinking blocks of the message); None when the file cannot tell. The step's `thought` is
    the model's visible text, not a reasoning block: it goes to the turn as `thought`."""
    native = step.get("reasoning_content")
    if isinstance(native, str) and native.strip():
        return native.strip()
    if message is not None and message.thinking.strip():
        return message.thinking.strip()
    return None


# -------------------------------------------------------------------------------- tools


@dataclass
class _OpenFile:
    """The windowed editor's open file, as far as the actions tell."""

    path: str | None = None

    def current(self, state: Mapping[str, Any]) -> str | None:
        value = state.get("open_file")
        if isinstance(value, str) and value and value != "n/a":
            return value
        return self.path


def _tool_call(
    action: str,
    message: _Message | None,
    state: Mapping[str, Any],
    commands: frozenset[str],
    editor: _OpenFile,
) -> _ToolCall:
    calls = message.tool_calls if message is not None else None
    if calls is not None and len(calls) == 1:
        fn = _dict(calls[0].get("function"))
        name = fn.get("name")
        if isinstance(name, str) and name:
            args = _json_object(fn.get("arguments"))
            if name == "bash":
                raw = args.get("command") if args is not None else None
                command = raw if isinstance(raw, str) else action.strip()
                return _ToolCall("bash", command=command)
            return _command_call(name, args, None, state, editor)
    text = action.strip()
    first_line = text.split("\n", 1)[0]
    word = first_line.split(maxsplit=1)[0] if first_line.split() else ""
    if word in commands:
        rest = text[len(word) :].strip()
        return _command_call(word, None, rest, state, editor)
    return _ToolCall("bash", command=text)


def _command_call(
    name: str,
    args: dict[str, Any] | None,
    text: str | None,
    state: Mapping[str, Any],
    editor: _OpenFile,
) -> _ToolCall:
    """A SWE-agent command, from function-call arguments or from the action's text."""
    if name == "str_replace_editor":
        if args is None:
            args = _editor_args(text or "")
        path = args.get("path")
        stated = [path] if isinstance(path, str) and path else None
        if stated and args.get("command") in ("view", "create"):
            editor.path = stated[0]
        return _ToolCall(name, arguments=args, files=stated)
    words = _words(text) if text is not None else []
    arguments = args if args is not None else ({"args": text} if text else {})
    files: list[str] | None = None
    category: str | None = sc.ToolCategory.READ.value if name in _READS else None
    if name in ("open", "create"):
        target = _arg(args, ("path", "filename", "file")) or (words[0] if words else None)
        if target:
            editor.path = target
            files = [target]
    elif name == "filemap":
        target = _arg(args, ("file_path", "path")) or (words[0] if words else None)
        files = [target] if target else None
    elif name in _ON_OPEN_FILE:
        current = editor.current(state)
        files = [current] if current else None
    elif name == "search_file":
        # The file searched in. search_dir and find_file name a folder, not a file: their
        # hits come from the output (agent_signals.tool.result_files).
        target = _arg(args, ("file",)) or (words[1] if len(words) > 1 else None)
        target = target or editor.current(state)
        files = [target] if target else None
    return _ToolCall(name, arguments=arguments, category=category, files=files)


def _editor_args(text: str) -> dict[str, Any]:
    """`view /x.py --view_range 1 20`-style text as str_replace_editor arguments."""
    words = _words(text)
    args: dict[str, Any] = {}
    if words:
        args["command"] = words[0]
    if len(words) > 1 and not words[1].startswith("--"):
        args["path"] = words[1]
    key: str | None = None
    values: list[str] = []
    for w in words[2:]:
        if w.startswith("--") and len(w) > 2:
            if key is not None:
                args[key] = " ".join(values)
            key, values = w[2:], []
        elif key is not None:
            values.append(w)
    if key is not None:
        args[key] = " ".join(values)
    if "command" in args and "path" not in args:
        args["args"] = text
    return args


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        return text.split()


def _arg(args: Mapping[str, Any] | None, keys: Sequence[str]) -> str | None:
    if args is None:
        return None
    for key in keys:
        value = args.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# ------------------------------------------------------------------------------ helpers


def _state(value: Any) -> dict[str, Any]:
    """A step's environment state: an object (1.x) or its JSON text (0.x)."""
    return _json_object(value) or {}


def _json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = loads_json(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            p.get("text", "")
            for p in value
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    return coerce_float(value)
