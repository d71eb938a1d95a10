"""Codex CLI rollout files (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`).

Each line is `{"timestamp", "type", "payload"}` with `type` one of `session_meta` (`id`, `cwd`,
`cli_version`, `model_provider`, ...), `turn_context` (`model`, `cwd`, ...), `response_item`
(`message`, `reasoning`, `function_call` {`name`, `arguments` JSON text, `call_id`},
`function_call_output` {`call_id`, `output`}, `custom_tool_call` {`name`, `input`, `call_id`},
`custom_tool_call_output`, `local_shell_call` {`action.command`}, `web_search_call`) and
`event_msg` (`task_started`, `token_count` {`info.total_token_usage`, `info.last_token_usage`},
`agent_reasoning`, `exec_command_end` {`call_id`, `exit_code`}, `patch_apply_end`
{`call_id`, `success`}, `turn_diff`, `task_complete`, `turn_aborted`, `error`, ...).

Mapping:

* One file is one trial with one attempt (a session with several user prompts stays one
  attempt). task id and `gen_ai.conversation.id`: the session id from `session_meta`; without
  one, the task id is the basename of the session's cwd, else the file name.
* Turns. One model response is one turn, with its usage from the `token_count` event's
  `last_token_usage` (`input_tokens` includes `cached_input_tokens`, as OpenAI counts them;
  `reasoning_output_tokens` is part of `output_tokens`); a `token_count` whose total did not
  grow repeats the previous report and is skipped. Current codex-cli writes a response's output
  items (reasoning, assistant message, tool calls) as they complete, then its `token_count`, so
  the `token_count` closes the turn (tool outputs in between do not split it: parallel calls
  stay one turn); a `token_count` with no items before it is still a model call. Older
  versions wrote the `token_count` first and the items (each followed by its output) after it:
  when the file's first `token_count` precedes its first output item, each `token_count` opens
  the turn its following items belong to. Without any `token_count`, an output item after a
  tool output starts the next turn. Items no `token_count` accounts for (a cut-off file, an
  interrupted response) make a turn without usage. A new prompt always ends the turn. The model
  is the latest `turn_context.model`. A turn runs from the last input before it (task start,
  user message, tool output, previous response) to its `token_count`.
* Reasoning text is the reasoning item's `content` text, else its summary, else the
  `agent_reasoning` events; encrypted reasoning only is present with unknown length.
* Tools: every call item, named as the model called it (`shell`, `exec_command`,
  `shell_command`, `apply_patch`, MCP tools, ...; `local_shell` and `web_search` for those
  items). A command array is joined with `shlex.join`, except that the `bash -lc SCRIPT` wrapper
  is unwrapped to SCRIPT so the builder classifies what runs. `apply_patch` (as its own tool, or
  run through the shell) is an edit of the files named in the patch (`*** Add/Update/Delete
  File:`, `*** Move to:`); a patch that failed (`patch_apply_end.success` false, a non-zero exit
  code, or an output saying it failed) changed nothing. Exit codes from
  `exec_command_end`, else from the output (`metadata.exit_code` of a JSON output, or its
  `Exit code: N` / `Process exited with code N` header). A call runs from its item to its output.
* Exit reason of the last task: `task_complete` -> submitted, `turn_aborted` -> interrupted, an
  `error` event -> context_overflow when it is about the context window, else error. A file that
  ends mid-task has none.
* Submission: the last `turn_diff` of each task (when the rollout recorded them).
* User turns (`user_turn` spans): each `user_message` event (kind `message`, the text the
  user typed; rollouts without those events fall back to the `user` message items that are
  not Codex's own environment/instructions blocks) and each `turn_aborted` the user caused
  (kind `interrupt`). Compactions (a `compacted` line, or a `context_compacted` event) are
  `agent_signals.compaction` events; the rollout does not say the token counts. The
  session's cwd is the attempt's `process.working_directory`. apply_patch hunks carry no
  line numbers, so no edit regions are recorded.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agentsignals import semconv as sc
from agentsignals._import.builder import AttemptBuilder, TrajectoryBuilder, TurnRef
from agentsignals._import.formats import ImportProblem, Report, TrajectoryError
from agentsignals._import.formats._common import (
    as_dict,
    loads_json,
    nonempty_str,
    open_source,
    source_name,
    source_stem,
    timestamp_ns,
)
from agentsignals._spans.model import Span

NAME = "codex"

_ROLLOUT_TYPE = re.compile(
    rb'"type"\s*:\s*"(?:session_meta|response_item|event_msg|turn_context)"\s*,\s*"payload"'
)
_SESSION_META = re.compile(rb'"type"\s*:\s*"session_meta"')
_CALL_ITEMS = frozenset(
    {"function_call", "custom_tool_call", "local_shell_call", "web_search_call"}
)
_OUTPUT_ITEMS = frozenset(
    {"function_call_output", "custom_tool_call_output", "local_shell_call_output"}
)
_SHELLS = frozenset({"bash", "sh", "zsh", "dash"})
_PATCH_FILE = re.compile(r"^\*\*\* (?:(?:Add|Update|Delete) File|Move to): *(.+?)\s*$", re.M)
_APPLY_PATCH = re.compile(r"(?:^|[\s;&|(])apply_patch\b")
_EXIT_HEADER = re.compile(r"^(?:Exit code:|Process exited with code)\s*(-?\d+)", re.M)
_PATCH_FAILED = re.compile(r"^\s*(?:apply_patch verification failed|failed to apply|error\b)", re.I)
_CONTEXT_ERROR = re.compile(r"context.?(?:window|length)|too many tokens|maximum context", re.I)


# ----------------------------------------------------------------------------------- detect


def detect(path: Path, head: bytes) -> bool:
    """A `.jsonl` file of `{"timestamp", "type", "payload"}` lines with a `session_meta` line
    (or, when the head is cut, rollout line types)."""
    if not source_name(path).lower().endswith(".jsonl") or not head.lstrip().startswith(b"{"):
        return False
    if _SESSION_META.search(head) and b'"payload"' in head:
        return True
    return len(_ROLLOUT_TYPE.findall(head)) >= 2


# ------------------------------------------------------------------------------------- read


@dataclass
class _Line:
    number: int
    ts: int | None
    type: str
    payload: dict[str, Any]


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    """The whole rollout is one trajectory; a bad line is reported and skipped."""
    lines: list[_Line] = []
    any_line = False
    try:
        fh = open_source(path)
    except OSError as exc:
        raise TrajectoryError(str(path), f"cannot read: {exc}") from exc
    with fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            any_line = True
            try:
                obj = loads_json(raw)
            except UnicodeDecodeError:
                report(ImportProblem(str(path), number, "not UTF-8 text; line skipped"))
                continue
            except json.JSONDecodeError as exc:
                report(
                    ImportProblem(
                        str(path),
                        number,
                        f"not valid JSON (truncated or corrupted?): {exc.msg}; line skipped",
                    )
                )
                continue
            kind = obj.get("type") if isinstance(obj, dict) else None
            payload = obj.get("payload") if isinstance(obj, dict) else None
            if not isinstance(kind, str) or not isinstance(payload, dict):
                report(
                    ImportProblem(
                        str(path), number, "not a rollout line (type and payload); line skipped"
                    )
                )
                continue
            lines.append(_Line(number, _timestamp(obj.get("timestamp")), kind, payload))
    if not any_line:
        raise TrajectoryError(str(path), "empty file")
    if not lines:
        raise TrajectoryError(str(path), "no Codex rollout line could be read")
    try:
        spans = _Session(path).build(lines)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise TrajectoryError(str(path), f"could not import: {type(exc).__name__}: {exc}") from exc
    yield spans


# ---------------------------------------------------------------------------------- session


@dataclass
class _Call:
    name: str
    call_id: str | None
    arguments: dict[str, Any] | None
    command: str | None
    patch: str | None
    ts: int | None


@dataclass
class _Output:
    ts: int | None
    text: str | None = None
    exit_code: int | None = None
    failed: bool = False


@dataclass
class _Turn:
    start_ns: int | None
    model: str | None
    end_ns: int | None = None
    usage: dict[str, Any] | None = None
    reasoning: list[str] = field(default_factory=list)
    reasoning_seen: bool = False
    calls: list[_Call] = field(default_factory=list)
    fixed_end: int | None = None  # the token_count that ended it, when that came first
    # Content: the messages it was the first call to read, and its assistant text.
    inputs: list[tuple[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


@dataclass
class _Session:
    path: Path
    session_id: str | None = None
    cwd: str | None = None
    provider: str | None = None
    session_ts: int | None = None
    model: str | None = None
    first_model: str | None = None
    call_start: int | None = None
    order: str = "after"
    input_since_item: bool = False
    pending: _Turn | None = None
    turns: list[_Turn] = field(default_factory=list)
    outputs: dict[str, _Output] = field(default_factory=dict)
    exec_ends: dict[str, _Output] = field(default_factory=dict)
    patch_ends: dict[str, _Output] = field(default_factory=dict)
    event_reasoning: list[str] = field(default_factory=list)
    prev_total: dict[str, Any] | None = None
    end_state: tuple[str, str | None] | None = None
    task_diff: str | None = None
    diffs: list[str] = field(default_factory=list)
    inputs: list[tuple[str, str]] = field(default_factory=list)  # not yet read by a call
    # (turns closed before it, time, kind, text) of each user turn; item-borne messages
    # are kept apart, used only when the rollout has no user_message events.
    user_turns: list[tuple[int, int | None, str, str | None]] = field(default_factory=list)
    item_messages: list[tuple[int, int | None, str, str | None]] = field(default_factory=list)
    compactions: list[tuple[int, int | None]] = field(default_factory=list)

    # ------------------------------------------------------------------------------ reading

    def build(self, lines: list[_Line]) -> list[Span]:
        self.order = _usage_order(lines)
        for line in lines:
            if line.type == "session_meta":
                self._meta(line)
            elif line.type == "turn_context":
                model = _str(line.payload.get("model"))
                if model:
                    self.model = model
                    self.first_model = self.first_model or model
                self.cwd = self.cwd or _str(line.payload.get("cwd"))
            elif line.type == "response_item":
                self._item(line.payload, line.ts)
            elif line.type == "compacted":
                self._flush(line.ts)
                if not self.compactions or self.compactions[-1][0] != len(self.turns):
                    self.compactions.append((len(self.turns), line.ts))
            elif line.type == "event_msg":
                self._event(line.payload, line.ts)
        self._flush()
        self._end_task()
        return self._spans(lines)

    def _meta(self, line: _Line) -> None:
        p = line.payload
        meta = _dict(p.get("meta")) or p  # some versions nest the fields under `meta`
        if self.session_id is None:
            self.session_id = _str(meta.get("id"))
            self.session_ts = _timestamp(meta.get("timestamp")) or line.ts
            self.provider = _str(meta.get("model_provider"))
        self.cwd = self.cwd or _str(meta.get("cwd"))
        if self.call_start is None:
            self.call_start = line.ts

    def _open(self, ts: int | None) -> _Turn:
        if self.pending is None:
            start = self.call_start if self.call_start is not None else ts
            self.pending = _Turn(start, self.model)
        return self.pending

    def _assistant(self, ts: int | None) -> _Turn:
        """The response an output item belongs to. Without token counts, an item after new
        input (a tool output) is the next model call's."""
        if self.order == "none" and self.pending is not None and self.input_since_item:
            self._flush()
        self.input_since_item = False
        turn = self._open(ts)
        if turn.fixed_end is None:
            turn.end_ns = ts
        return turn

    def _input(self, ts: int | None) -> None:
        """Something the next model call reads (a prompt, a tool output)."""
        self.input_since_item = True
        if ts is not None:
            self.call_start = ts

    def _close(self, turn: _Turn, ts: int | None) -> None:
        turn.end_ns = turn.fixed_end if turn.fixed_end is not None else ts
        if not turn.reasoning and self.event_reasoning:
            turn.reasoning = list(self.event_reasoning)
        self.event_reasoning = []
        turn.inputs, self.inputs = self.inputs, []
        self.turns.append(turn)
        if turn is self.pending:
            self.pending = None

    def _flush(self, ts: int | None = None) -> None:
        """Close output items no token_count closed: a turn without usage."""
        if self.pending is not None:
            last = self.pending.end_ns  # its last output item
            self._close(self.pending, last if last is not None else ts)

    def _item(self, p: Mapping[str, Any], ts: int | None) -> None:
        kind = _str(p.get("type"))
        if kind == "message":
            if p.get("role") == "assistant":
                self._assistant(ts).texts.extend(_texts(p.get("content")))
            else:
                self._flush(ts)
                self._input(ts)
                # OpenAI's developer messages are GenAI's system instructions.
                role = "system" if p.get("role") in ("developer", "system") else "user"
                text = _joined(p.get("content")) or ""
                self.inputs.append((role, text))
                if role == "user" and not text.lstrip().startswith(_NOT_TYPED):
                    self.item_messages.append(
                        (len(self.turns), ts, sc.UserTurnKind.MESSAGE.value, text)
                    )
        elif kind == "reasoning":
            turn = self._assistant(ts)
            turn.reasoning_seen = True
            texts = _texts(p.get("content")) or _texts(p.get("summary"))
            turn.reasoning.extend(texts)
        elif kind in _CALL_ITEMS:
            turn = self._assistant(ts)
            turn.calls.append(_call(p, ts))
        elif kind in _OUTPUT_ITEMS:
            call_id = _str(p.get("call_id"))
            if call_id is not None:
                self.outputs[call_id] = _output(p.get("output"), ts)
            self._input(ts)

    def _event(self, p: Mapping[str, Any], ts: int | None) -> None:
        kind = _str(p.get("type"))
        if kind == "token_count":
            usage = self._usage(p)
            if usage is None:
                return
            if self.order == "before":  # the response's items follow its token_count
                self._flush(ts)
                self.pending = _Turn(self.call_start, self.model, ts, usage, fixed_end=ts)
            else:
                turn = self.pending or _Turn(self.call_start, self.model)
                turn.usage = usage
                self._close(turn, ts)
            self._input(ts)
        elif kind == "task_started":
            self._flush(ts)
            self._end_task()
            self.end_state = None
            self._input(ts)
        elif kind == "user_message":
            self._flush(ts)
            self._input(ts)
            text = _str(p.get("message"))
            self.user_turns.append((len(self.turns), ts, sc.UserTurnKind.MESSAGE.value, text))
        elif kind == "context_compacted":
            self._flush(ts)
            if not self.compactions or self.compactions[-1][0] != len(self.turns):
                self.compactions.append((len(self.turns), ts))
        elif kind == "task_complete":
            self._flush(ts)
            self.end_state = ("complete", None)
        elif kind == "turn_aborted":
            self._flush(ts)
            reason = _str(p.get("reason"))
            self.end_state = ("aborted", reason)
            if reason in (None, "interrupted"):
                self.user_turns.append((len(self.turns), ts, sc.UserTurnKind.INTERRUPT.value, None))
        elif kind == "error":
            self.end_state = ("error", _str(p.get("message")) or "")
        elif kind == "agent_reasoning":
            text = _str(p.get("text"))
            if text:
                self.event_reasoning.append(text)
        elif kind == "exec_command_end":
            call_id = _str(p.get("call_id"))
            if call_id is not None:
                text = _str(p.get("aggregated_output"))
                if text is None:
                    text = (_str(p.get("stdout")) or "") + (_str(p.get("stderr")) or "")
                self.exec_ends[call_id] = _Output(ts, text, _int(p.get("exit_code")))
        elif kind == "patch_apply_end":
            call_id = _str(p.get("call_id"))
            if call_id is not None:
                failed = p.get("success") is False
                self.patch_ends[call_id] = _Output(ts, None, None, failed)
        elif kind == "turn_diff":
            diff = _str(p.get("unified_diff"))
            if diff is not None:
                self.task_diff = diff

    def user_turns_typed(self) -> bool:
        """Whether the rollout has `user_message` events (what the user typed)."""
        return any(t[2] == sc.UserTurnKind.MESSAGE.value for t in self.user_turns)

    def _end_task(self) -> None:
        if self.task_diff:
            self.diffs.append(self.task_diff)
        self.task_diff = None

    def _usage(self, p: Mapping[str, Any]) -> dict[str, Any] | None:
        info = p.get("info")
        if isinstance(info, dict):
            total = _dict(info.get("total_token_usage")) or None
            last = _dict(info.get("last_token_usage")) or None
            if total is not None and total == self.prev_total:
                return None  # the same report again: no new model call
            previous = self.prev_total
            if total is not None:
                self.prev_total = total
            if last is not None:
                return last
            if total is None:
                return None
            return {
                k: v - _int_or_zero(previous.get(k) if previous else None)
                for k, v in total.items()
                if isinstance(v, int) and not isinstance(v, bool)
            }
        if "input_tokens" in p or "output_tokens" in p:  # early rollouts: usage of one call
            return dict(p)
        return None

    # ----------------------------------------------------------------------------- building

    def _spans(self, lines: list[_Line]) -> list[Span]:
        times = [line.ts for line in lines if line.ts is not None]
        if self.session_ts is not None:
            times.append(self.session_ts)
        start = min(times) if times else None
        end = max(times) if times else None
        task_id = self.session_id
        if task_id is None and self.cwd:
            task_id = PurePosixPath(self.cwd.replace("\\", "/")).name or None
        traj = TrajectoryBuilder(
            source_format=NAME,
            source_path=str(self.path),
            task_id=task_id or source_stem(self.path),
            start_ns=start,
        )
        attempt = traj.attempt(
            agent_type="codex",
            agent_name="codex",
            model_id=self.first_model,
            provider=self.provider,
            conversation_id=self.session_id,
            start_ns=start,
            working_directory=self.cwd,
        )
        said = list(self.user_turns) if self.user_turns_typed() else list(self.item_messages)
        said += [t for t in self.user_turns if t[2] == sc.UserTurnKind.INTERRUPT.value]
        said.sort(key=lambda t: (t[0], t[1] or 0))
        compactions = list(self.compactions)
        for number, turn in enumerate(self.turns):
            while said and said[0][0] <= number:
                _, when, kind, text = said.pop(0)
                attempt.user_turn(text, kind=kind, at_ns=when)
            compacted = False
            while compactions and compactions[0][0] <= number:
                attempt.compaction(at_ns=compactions.pop(0)[1])
                compacted = True
            usage = turn.usage or {}
            reasoning_tokens = _int(usage.get("reasoning_output_tokens"))
            reasoning: str | None
            if turn.reasoning:
                reasoning = "\n\n".join(turn.reasoning)
            elif turn.reasoning_seen or (reasoning_tokens or 0) > 0:
                reasoning = None  # encrypted: present, length unknown
            else:
                reasoning = ""
            ref = attempt.turn(
                count_text=True,
                compacted=compacted,
                start_ns=turn.start_ns,
                end_ns=turn.end_ns,
                model=turn.model,
                provider=self.provider,
                input_tokens=_int(usage.get("input_tokens")),
                output_tokens=_int(usage.get("output_tokens")),
                cache_read_tokens=_int(usage.get("cached_input_tokens")),
                reasoning_tokens=reasoning_tokens,
                reasoning=reasoning,
                inputs=turn.inputs,
                text="\n\n".join(turn.texts) or None,
            )
            for call in turn.calls:
                self._tool(attempt, ref, call)
        for _, when, kind, text in said:
            attempt.user_turn(text, kind=kind, at_ns=when)
        for _, when in compactions:
            attempt.compaction(at_ns=when)
        exit_reason: str | None = None
        error: str | None = None
        failure: str | None = None
        if self.end_state is not None:
            state, detail = self.end_state
            if state == "complete":
                exit_reason = sc.AttemptExitReason.SUBMITTED.value
            elif state == "aborted":
                exit_reason = sc.AttemptExitReason.INTERRUPTED.value
                failure = detail
            elif detail and _CONTEXT_ERROR.search(detail):
                exit_reason = sc.AttemptExitReason.CONTEXT_OVERFLOW.value
                failure = "context_window"
            else:
                exit_reason, failure, error = sc.AttemptExitReason.ERROR.value, "error", "error"
        attempt.end(
            exit_reason=exit_reason,
            exit_status=failure,
            submission="\n".join(self.diffs) if self.diffs else None,
            end_ns=end,
            error=error,
        )
        return traj.finish(end_ns=end)

    def _tool(self, attempt: AttemptBuilder, turn: TurnRef, call: _Call) -> None:
        key = call.call_id or ""
        output = self.outputs.get(key)
        exec_end = self.exec_ends.get(key)
        patch_end = self.patch_ends.get(key)
        text = output.text if output is not None else None
        exit_code = output.exit_code if output is not None else None
        if exec_end is not None:
            exit_code = exec_end.exit_code if exec_end.exit_code is not None else exit_code
            text = text if text is not None else exec_end.text
        ends = [o.ts for o in (output, exec_end, patch_end) if o is not None and o.ts is not None]
        error: str | None = None
        category: str | None = None
        files: list[str] | None = None
        changed: list[str] | None = None
        command = call.command
        if call.patch is not None:
            category = sc.ToolCategory.EDIT.value
            files = _patch_files(call.patch)
            failed = (patch_end is not None and patch_end.failed) or bool(exit_code)
            failed = failed or (output is not None and output.failed)
            failed = failed or bool(text and _PATCH_FAILED.match(text))
            if failed:
                changed = []
                error = "apply_patch_failed" if not exit_code else None
            else:
                changed = list(files)
            command = None
        elif output is not None and output.failed and not exit_code:
            error = "tool_error"
        attempt.tool(
            call.name,
            turn=turn,
            arguments=call.arguments,
            command=command,
            category=category,
            call_id=call.call_id,
            files=files or None,
            changed_files=changed,
            result=text,
            exit_code=exit_code,
            error=error,
            start_ns=call.ts,
            end_ns=max(ends) if ends else None,
        )


# Codex's own blocks sent as user messages (not typed by the user).
_NOT_TYPED = ("<environment_context>", "<user_instructions>", "# AGENTS.md", "<INSTRUCTIONS>")


def _usage_order(lines: list[_Line]) -> str:
    """Where a response's token_count sits: "after" its output items (codex-cli writes items as
    they complete), "before" them (versions that recorded a response's items, each followed by
    its output, once the response had completed), or "none" (no usage recorded)."""
    first_item: int | None = None
    for index, line in enumerate(lines):
        p = line.payload
        kind = _str(p.get("type"))
        if first_item is None and (
            line.type == "response_item"
            and (
                kind in _CALL_ITEMS
                or kind == "reasoning"
                or (kind == "message" and p.get("role") == "assistant")
            )
        ):
            first_item = index
        usage = isinstance(p.get("info"), dict) or "input_tokens" in p
        if line.type == "event_msg" and kind == "token_count" and usage:
            return "after" if first_item is not None and first_item < index else "before"
    return "none"


# ------------------------------------------------------------------------------ call items


def _call(p: Mapping[str, Any], ts: int | None) -> _Call:
    kind = _str(p.get("type"))
    call_id = _str(p.get("call_id")) or _str(p.get("id"))
    arguments: dict[str, Any] | None = None
    if kind == "function_call":
        name = _str(p.get("name")) or "function"
        raw = p.get("arguments")
        if isinstance(raw, dict):
            arguments = raw
        elif isinstance(raw, str):
            try:
                parsed = loads_json(raw) if raw.strip() else {}
            except ValueError:
                parsed = {"input": raw}
            arguments = parsed if isinstance(parsed, dict) else {"input": parsed}
    elif kind == "custom_tool_call":
        name = _str(p.get("name")) or "custom_tool"
        arguments = {"input": p.get("input")}
    elif kind == "local_shell_call":
        name = "local_shell"
        action = _dict(p.get("action"))
        arguments = {k: v for k, v in action.items() if k != "type"}
    else:
        name = "web_search"
        action = _dict(p.get("action"))
        arguments = {k: v for k, v in action.items() if k != "type"} or None
    patch: str | None = None
    command: str | None = None
    args = arguments or {}
    if name == "apply_patch":
        raw_patch = args.get("input", args.get("patch"))
        patch = raw_patch if isinstance(raw_patch, str) else ""
    elif name != "web_search":
        raw_command = args.get("command") if "command" in args else args.get("cmd")
        if (
            isinstance(raw_command, list)
            and len(raw_command) >= 2
            and raw_command[0] == "apply_patch"
            and isinstance(raw_command[1], str)
        ):
            patch = raw_command[1]
        else:
            command = _command_text(raw_command)
            if command and "*** Begin Patch" in command and _APPLY_PATCH.search(command):
                patch = command
    return _Call(name, call_id, arguments, command, patch, ts)


def _command_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return None
    words: list[str] = value
    program = PurePosixPath(words[0]).name
    if program in _SHELLS and len(words) >= 3 and words[-2] in ("-c", "-lc", "-ic", "-cl"):
        return words[-1]  # the script the shell runs is what the call does
    return shlex.join(words)


def _patch_files(patch: str) -> list[str]:
    files: list[str] = []
    for match in _PATCH_FILE.finditer(patch):
        name = match.group(1)
        if name and name not in files:
            files.append(name)
    return files


def _output(value: Any, ts: int | None) -> _Output:
    out = _Output(ts)
    if isinstance(value, dict):
        content = value.get("content")
        out.text = content if isinstance(content, str) else _joined(content)
        out.failed = value.get("success") is False
    elif isinstance(value, list):
        out.text = _joined(value)
    elif isinstance(value, str):
        out.text = value
        if value.startswith("{"):
            try:
                parsed = loads_json(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and "output" in parsed:
                inner = parsed.get("output")
                out.text = inner if isinstance(inner, str) else out.text
                out.exit_code = _int(_dict(parsed.get("metadata")).get("exit_code"))
    if out.exit_code is None and out.text:
        header = out.text.split("\nOutput:", 1)[0] if "\nOutput:" in out.text else ""
        match = _EXIT_HEADER.search(header or out.text.split("\n", 1)[0])
        if match:
            out.exit_code = int(match.group(1))
    return out


def _joined(items: Any) -> str | None:
    texts = _texts(items)
    return "\n".join(texts) if texts else None


def _texts(items: Any) -> list[str]:
    out: list[str] = []
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, dict):
            text = item.get("text")
            if isinstance(text, str) and text:
                out.append(text)
        elif isinstance(item, str) and item:
            out.append(item)
    return out


# ---------------------------------------------------------------------------------- helpers


def _timestamp(value: Any) -> int | None:
    return timestamp_ns(value, numbers=None)


def _dict(value: Any) -> dict[str, Any]:
    return as_dict(value)


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


def _int_or_zero(value: Any) -> int:
    return _int(value) or 0
