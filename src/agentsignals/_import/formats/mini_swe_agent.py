"""mini-swe-agent trajectories (`.traj.json`): v1 (`mini-swe-agent-1`) and v2
(`mini-swe-agent-1.1`).

Shapes read (field names from mini-swe-agent's `save_traj` (1.x) and `DefaultAgent.serialize`
(2.x)):

* `info`: `exit_status`, `submission`, `model_stats` {`instance_cost`, `api_calls`},
  `mini_version`, `config` {`agent` {`step_limit`, `cost_limit`, `wall_time_limit_seconds`,
  templates}, `model` {`model_name`}, `agent_type`, `model_type`}; `messages`;
  `trajectory_format`; `instance_id` (SWE-bench runs).
* v1 messages: `system`, `user` (task), then per step an `assistant` message whose content holds
  exactly one ```` ```bash ```` block (the action) and a `user` message with the rendered
  observation (`<returncode>..</returncode>` and `<output>..</output>` with the default
  templates), a format-error or timeout message, or, at the end, the submission.
  `extra.response` is the provider's response (`model`, `created`, `usage`).
* v2 messages: the actions are parsed already (`extra.actions`, with `tool_call_id` for tool
  calls); observations are `tool` messages (by `tool_call_id`), `function_call_output` items
  (Responses API) or `user` messages (text-based models), with `extra.raw_output`,
  `extra.returncode`, `extra.exception_info` and `extra.timestamp`; a reply that could not be
  parsed is a `user` message with `extra.interrupt_type: FormatError` (it carries the model's
  response); the run ends with an `exit` message (`extra.exit_status`, `extra.submission`).

Mapping:

* One model call is one turn: each assistant message, and in v2 each format-error message (the
  call happened and was billed, its reply just did not parse). The reasoning is the provider's
  reasoning text when recorded (`reasoning_content`, `reasoning`, thinking blocks) followed by
  the text the model wrote around its command (the THOUGHT section).
* Each action is a `bash` tool call, classified by what the command does; the command that
  printed `COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT` (or `MINI_SWE_AGENT_FINAL_OUTPUT`) and ended
  the run is category `submit`. A v1 reply without exactly one bash block ran nothing (no tool).
  The result is the command's output (inside `<output>`; for long outputs the head and tail the
  agent saw); the exit code is `<returncode>` / `extra.returncode`. A command that timed out (v1:
  the timeout message; v2: an exception of a `Timeout...` type) is error `timeout`, another
  exception is an error named by its type; an action v2 marks `action was not executed` is no
  tool call.
* Usage per call from the response's `usage` (`prompt_tokens` including cached tokens,
  `prompt_tokens_details.cached_tokens` or `cache_read_input_tokens`,
  `cache_creation_input_tokens`, `completion_tokens_details.reasoning_tokens`; Responses API
  `input_tokens` / `output_tokens`), cost per call from `extra.cost` (v2) or the usage's `cost`
  (OpenRouter). `model_stats.instance_cost` is the attempt's cost total.
* Times: v2 stamps each reply and observation (`extra.timestamp`): a turn runs from the previous
  message to its reply, a tool from the reply to its observation. v1 has only the response's
  `created` second, used as the turn's start; tool times are synthesized.
* Exit: Submitted -> submitted; LimitsExceeded -> max_turns when `api_calls` reached the step
  limit, cost_limit when the cost reached the cost limit (else no reason); TimeExceeded ->
  timeout; RepeatedFormatError -> error; a context-window error -> context_overflow;
  UserInterruption -> user_stopped, KeyboardInterrupt -> interrupted; any other exception name
  -> error (error.type the name). The raw status is kept. `info.submission` is the patch.
* task id: `instance_id`, else the file name without `.traj.json`. Treatment: model
  `config.model.model_name`, step limit as the first attempt's tool cap, wall-time limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsignals import semconv as sc
from agentsignals._import.builder import AttemptBuilder, TrajectoryBuilder, TurnRef
from agentsignals._import.formats import ImportProblem, Report, TrajectoryError
from agentsignals._import.formats._common import source_name, source_stem
from agentsignals._import.formats.swe_agent import load_json_document
from agentsignals._spans.model import Span, coerce_float

NAME = "mini-swe-agent"

_AGENT = "mini-swe-agent"
_FORMAT_MARK = re.compile(rb'"trajectory_format"\s*:\s*"mini-swe-agent')
_V1_ACTION = re.compile(r"```bash\s*\n(.*?)\n```", re.S)
_FENCE = re.compile(r"```[\w-]*[ \t]*\n(.*?)\n```", re.S)
_SUBMIT_MARKERS = ("COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT", "MINI_SWE_AGENT_FINAL_OUTPUT")
_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_OUTPUT = re.compile(r"<output>\n?(.*)</output>", re.S)
_HEAD = re.compile(r"<output_head>\n?(.*?)</output_head>", re.S)
_TAIL = re.compile(r"<output_tail>\n?(.*?)</output_tail>", re.S)
_NS = 1_000_000_000


def detect(path: Path, head: bytes) -> bool:
    if head.lstrip()[:1] != b"{":
        return False
    if _FORMAT_MARK.search(head) or b'"mini_version"' in head:
        return True
    # A v1 file whose huge submission pushes the markers past the head.
    named = source_name(path).endswith(".traj.json")
    return named and b'"info"' in head and b'"exit_status"' in head


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    data = load_json_document(path)
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise TrajectoryError(str(path), "not a mini-swe-agent trajectory: no 'messages' list")
    info = _dict(data.get("info"))
    config = _dict(info.get("config"))
    agent_config = _dict(config.get("agent"))
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(data["messages"]):
        if isinstance(m, dict):
            messages.append(m)
        else:
            report(ImportProblem(str(path), 0, f"message {i} is not an object; skipped"))
    v2 = str(data.get("trajectory_format") or "") != "mini-swe-agent-1" and _looks_v2(messages)
    first, last = _time_range(messages)
    builder = TrajectoryBuilder(
        source_format=NAME, source_path=str(path), task_id=_task_id(path, data), start_ns=first
    )
    model = _str(_dict(config.get("model")).get("model_name")) or None
    step_limit = _int(agent_config.get("step_limit"))
    wall_limit = _float(agent_config.get("wall_time_limit_seconds"))
    attempt = builder.attempt(
        index=0,
        agent_type=_AGENT,
        agent_name=_AGENT,
        model_id=model,
        attempt1_tool_cap=step_limit if step_limit else None,
        timeout_s=wall_limit if wall_limit else None,
        start_ns=first,
    )
    reader = _Reader(attempt, model, v2, _timeout_prefix(agent_config))
    for m in messages:
        reader.message(m)
    reader.flush()
    _end(attempt, info, reader.exit, agent_config, last)
    yield builder.finish()


def _looks_v2(messages: list[dict[str, Any]]) -> bool:
    for m in messages:
        if m.get("role") in ("exit", "tool") or m.get("object") == "response":
            return True
        if isinstance(_dict(m.get("extra")).get("actions"), list):
            return True
    return False


def _task_id(path: Path, data: Mapping[str, Any]) -> str:
    value = data.get("instance_id")
    if isinstance(value, str) and value:
        return value
    name = source_name(path)
    for suffix in (".traj.json", ".json", ".traj"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return source_stem(path)


def _time_range(messages: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """The earliest and latest time any message records."""
    times = [t for m in messages for t in (_reply_time(m), _created(m)) if t is not None]
    return (min(times), max(times)) if times else (None, None)


def _timeout_prefix(agent_config: Mapping[str, Any]) -> str:
    """The fixed start of the v1 timeout message ("The last command <command>")."""
    template = agent_config.get("timeout_template")
    text = template if isinstance(template, str) else "The last command <command>"
    prefix = re.split(r"\{\{|\{%", text, maxsplit=1)[0]
    return prefix if len(prefix.strip()) >= 8 else "The last command <command>"


# ------------------------------------------------------------------------------ reading


@dataclass
class _Action:
    command: str
    turn: TurnRef
    start_ns: int | None
    call_id: str | None = None


@dataclass
class _Reader:
    attempt: AttemptBuilder
    model: str | None
    v2: bool
    timeout_prefix: str
    pending: list[_Action] = field(default_factory=list)
    exit: dict[str, Any] | None = None
    last_time: int | None = None
    started: bool = False
    # Messages the next model call reads that are not observations (content capture): the
    # system prompt and task, then the harness's feedback (format errors).
    inputs: list[tuple[str, str]] = field(default_factory=list)

    def message(self, m: dict[str, Any]) -> None:
        role = m.get("role")
        extra = _dict(m.get("extra"))
        if role == "assistant" or m.get("object") == "response":
            self.flush()
            self.started = True
            self._reply(m, extra)
        elif role == "exit":
            self.exit = m
            self._exit(m, extra)
        elif role == "tool" or m.get("type") == "function_call_output":
            self._observation(m, extra, call_id=_str(m.get("tool_call_id") or m.get("call_id")))
        elif role == "user" and self.started:
            if extra.get("interrupt_type") == "FormatError":
                self.flush()
                self._format_error(m, extra)
                self.inputs.append(("user", _text(m.get("content"))))
            elif self.pending:
                self._observation(m, extra, call_id=None)
            else:
                self.inputs.append(("user", _text(m.get("content"))))
        elif role in ("system", "user"):
            self.inputs.append((str(role), _text(m.get("content"))))
        ts = _timestamp(extra)
        if ts is not None:
            self.last_time = ts

    def _turn(self, m: Mapping[str, Any], extra: Mapping[str, Any], reply: str | None) -> TurnRef:
        """A model call; `reply` is None when the file did not keep the reply's text."""
        response = _dict(extra.get("response"))
        usage = _Usage.of(_dict(response.get("usage")))
        cost = _float(extra.get("cost"))
        if cost is None:
            cost = usage.cost
        end = _reply_time(m)
        start = self.last_time if self.last_time is not None else _created(m)
        if end is not None and (start is None or start > end):
            start = end
        model = _str(response.get("model")) or self.model
        inputs, self.inputs = self.inputs, []
        return self.attempt.turn(
            inputs=inputs,
            start_ns=start,
            end_ns=end,
            model=model or None,
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
            reasoning_tokens=usage.reasoning,
            cost_usd=cost,
            reasoning=_native_reasoning(m, response) or None,
            thought=reply.strip() if reply is not None else None,
            finish_reasons=_finish_reasons(response),
        )

    def _reply(self, m: dict[str, Any], extra: Mapping[str, Any]) -> None:
        content = _reply_text(m)
        if self.v2:
            raw = extra.get("actions")
            actions = [
                (_str(a.get("command")), _str(a.get("tool_call_id")) or None)
                for a in (raw if isinstance(raw, list) else [])
                if isinstance(a, dict) and isinstance(a.get("command"), str)
            ]
        else:
            found = _V1_ACTION.findall(content)
            actions = [(found[0].strip(), None)] if len(found) == 1 else []
        turn = self._turn(m, extra, _thought(content, [c for c, _ in actions]))
        start = turn.end_ns if _reply_time(m) is not None else None
        for command, call_id in actions:
            self.pending.append(_Action(command, turn, start, call_id))

    def _format_error(self, m: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        reply = extra.get("model_response")
        response = _dict(extra.get("response"))
        if not isinstance(reply, str):
            kept = isinstance(response.get("choices"), list) or "output" in response
            reply = _response_text(response) if kept else None
        self._turn(m, extra, reply)

    def _observation(
        self, m: Mapping[str, Any], extra: Mapping[str, Any], call_id: str | None
    ) -> None:
        action = self._take(call_id)
        if action is None:
            return
        text = _text(m.get("content") if "content" in m else m.get("output"))
        exception = _str(extra.get("exception_info"))
        if exception == "action was not executed":
            return
        if "raw_output" in extra or "returncode" in extra:
            result = _str(extra.get("raw_output"))
            exit_code = _int(extra.get("returncode"))
        else:
            result, exit_code = _parse_observation(text)
        error: str | None = None
        if exception:
            kind = _str(extra.get("exception_type"))
            error = "timeout" if "timeout" in (kind or exception).lower() else (kind or "exception")
            exit_code = None  # -1 is mini-swe-agent's marker, not the command's
        elif not self.v2 and text.startswith(self.timeout_prefix) and exit_code is None:
            error = "timeout"
        self._tool(action, result, exit_code, error, _reply_time(m))

    def _exit(self, m: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        status = _str(extra.get("exit_status"))
        if status == "Submitted" and self.pending:
            action = self.pending.pop(0)
            self._tool(action, _text(m.get("content")), None, None, None, submit=True)

    def _take(self, call_id: str | None) -> _Action | None:
        if not self.pending:
            return None
        if call_id:
            for i, a in enumerate(self.pending):
                if a.call_id == call_id:
                    return self.pending.pop(i)
        return self.pending.pop(0)

    def flush(self) -> None:
        """Actions left without an observation: the last one of a v1 run that submitted (its
        observation is the submission), or actions cut off by the end of the file."""
        while self.pending:
            action = self.pending.pop(0)
            self._tool(action, None, None, None, None)

    def _tool(
        self,
        action: _Action,
        result: str | None,
        exit_code: int | None,
        error: str | None,
        end_ns: int | None,
        *,
        submit: bool = False,
    ) -> None:
        first_line = action.command.lstrip().split("\n", 1)[0]
        if any(marker in first_line for marker in _SUBMIT_MARKERS):
            submit = True
        start = action.start_ns
        self.attempt.tool(
            "bash",
            turn=action.turn,
            command=action.command,
            category=sc.ToolCategory.SUBMIT.value if submit else None,
            call_id=action.call_id,
            result=result,
            exit_code=exit_code,
            error=error,
            start_ns=start,
            end_ns=end_ns,
        )


# ------------------------------------------------------------------------------- ending


def exit_reason(
    status: str | None,
    *,
    api_calls: int | None = None,
    cost: float | None = None,
    step_limit: int | None = None,
    cost_limit: float | None = None,
) -> str | None:
    """`agent_signals.attempt.exit_reason` for a mini-swe-agent exit status."""
    if not status:
        return None
    r = sc.AttemptExitReason
    if status == "Submitted":
        return r.SUBMITTED.value
    if status == "LimitsExceeded":
        if step_limit and api_calls is not None and api_calls >= step_limit:
            return r.MAX_TURNS.value
        if cost_limit and cost is not None and cost >= cost_limit:
            return r.COST_LIMIT.value
        return None
    if status == "TimeExceeded":
        return r.TIMEOUT.value
    if "contextwindow" in status.lower().replace("_", ""):
        return r.CONTEXT_OVERFLOW.value
    if status == "UserInterruption":
        return r.USER_STOPPED.value
    if status == "KeyboardInterrupt":
        return r.INTERRUPTED.value
    return r.ERROR.value  # RepeatedFormatError, or the name of the exception that ended the run


def _end(
    attempt: AttemptBuilder,
    info: Mapping[str, Any],
    exit_message: Mapping[str, Any] | None,
    agent_config: Mapping[str, Any],
    end_ns: int | None,
) -> None:
    exit_extra = _dict(exit_message.get("extra")) if exit_message is not None else {}
    status = _str(info.get("exit_status")) or _str(exit_extra.get("exit_status")) or None
    submission = info.get("submission")
    if not isinstance(submission, str) or (not submission and "submission" not in info):
        submission = exit_extra.get("submission")
    patch = submission if isinstance(submission, str) else None
    if patch == "" and status != "Submitted":
        patch = None  # only a submitting run collects the patch: nothing is known
    stats = _dict(info.get("model_stats"))
    cost = _float(stats.get("instance_cost"))
    api_calls = _int(stats.get("api_calls"))
    reason = exit_reason(
        status,
        api_calls=api_calls,
        cost=cost,
        step_limit=_int(agent_config.get("step_limit")),
        cost_limit=_float(agent_config.get("cost_limit")),
    )
    attempt.end(
        exit_reason=reason,
        exit_status=status,
        submission=patch,
        cost_usd=cost,
        model_calls=api_calls,
        end_ns=end_ns,
        error=status if reason == sc.AttemptExitReason.ERROR.value else None,
    )


# ------------------------------------------------------------------------------ content


@dataclass
class _Usage:
    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    cost: float | None = None

    @classmethod
    def of(cls, usage: Mapping[str, Any]) -> _Usage:
        prompt_details = _dict(usage.get("prompt_tokens_details")) or _dict(
            usage.get("input_tokens_details")
        )
        completion_details = _dict(usage.get("completion_tokens_details")) or _dict(
            usage.get("output_tokens_details")
        )
        cache_read = _int(prompt_details.get("cached_tokens"))
        if cache_read is None:
            cache_read = _int(usage.get("cache_read_input_tokens"))
        return cls(
            input=_first_int(usage, ("prompt_tokens", "input_tokens")),
            output=_first_int(usage, ("completion_tokens", "output_tokens")),
            cache_read=cache_read,
            cache_write=_int(usage.get("cache_creation_input_tokens")),
            reasoning=_int(completion_details.get("reasoning_tokens")),
            cost=_float(usage.get("cost")),
        )


def _first_int(d: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _int(d.get(key))
        if value is not None:
            return value
    return None


def _reply_text(m: Mapping[str, Any]) -> str:
    if "content" in m:
        return _text(m.get("content"))
    return _response_text(m)


def _response_text(response: Mapping[str, Any]) -> str:
    """The reply text of a provider response (chat completions or Responses API)."""
    if isinstance(response.get("choices"), list):
        return _text(_first_choice(response).get("content"))
    output = response.get("output")
    if isinstance(output, list):
        return "".join(
            _text(item.get("content"))
            for item in output
            if isinstance(item, dict) and item.get("type") == "message"
        )
    return ""


def _first_choice(response: Mapping[str, Any]) -> dict[str, Any]:
    choices = response.get("choices")
    return _dict(_dict(choices[0]).get("message")) if isinstance(choices, list) and choices else {}


def _native_reasoning(m: Mapping[str, Any], response: Mapping[str, Any]) -> str:
    """The provider's reasoning text: on the message, or in the stored response."""
    for source in (m, _first_choice(response)):
        for key in ("reasoning_content", "reasoning"):
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        blocks = source.get("thinking_blocks")
        if isinstance(blocks, list):
            texts = [b.get("thinking") for b in blocks if isinstance(b, dict)]
            text = "\n\n".join(t for t in texts if isinstance(t, str) and t).strip()
            if text:
                return text
    output = m.get("output")
    if not isinstance(output, list):
        output = response.get("output")
    if isinstance(output, list):  # Responses API reasoning summaries
        parts = [
            _text(item.get("summary"))
            for item in output
            if isinstance(item, dict) and item.get("type") == "reasoning"
        ]
        return "\n\n".join(p for p in parts if p).strip()
    return ""


def _thought(content: str, commands: list[str]) -> str:
    """The reply without its command blocks and the THOUGHT: label."""
    wanted = {c.strip() for c in commands}

    def drop(match: re.Match[str]) -> str:
        return "" if match.group(1).strip() in wanted else match.group(0)

    text = _FENCE.sub(drop, content).strip()
    if text.upper().startswith("THOUGHT:"):
        text = text[len("THOUGHT:") :].strip()
    return text


def _finish_reasons(response: Mapping[str, Any]) -> list[str] | None:
    choices = response.get("choices")
    if not isinstance(choices, list):
        return None
    reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict)]
    out = [r for r in reasons if isinstance(r, str) and r]
    return out or None


def _parse_observation(text: str) -> tuple[str, int | None]:
    """The command output and exit code from a rendered v1 observation."""
    rc = _RETURNCODE.search(text)
    exit_code = int(rc.group(1)) if rc else None
    head, tail = _HEAD.search(text), _TAIL.search(text)
    if head or tail:
        return "\n".join(x.group(1) for x in (head, tail) if x), exit_code
    output = _OUTPUT.search(text)
    if output:
        return output.group(1), exit_code
    if rc:
        return text[rc.end() :].lstrip("\n"), exit_code
    return text, exit_code


def _timestamp(extra: Mapping[str, Any]) -> int | None:
    value = _float(extra.get("timestamp"))
    return int(value * _NS) if value is not None and value > 0 else None


def _reply_time(m: Mapping[str, Any]) -> int | None:
    return _timestamp(_dict(m.get("extra")))


def _created(m: Mapping[str, Any]) -> int | None:
    response = _dict(_dict(m.get("extra")).get("response"))
    value = _float(response.get("created") or response.get("created_at"))
    return int(value * _NS) if value is not None and value > 0 else None


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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def _float(value: Any) -> float | None:
    return coerce_float(value)
