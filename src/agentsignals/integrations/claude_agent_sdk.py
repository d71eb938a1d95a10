"""Claude Agent SDK: `query()` and `ClaudeSDKClient` runs of the Claude Code CLI.

    agentsignals.instrument("claude_agent_sdk")

The CLI runs the agent loop and the tools in its own process; the integration reads the
message stream it sends back:

- **attempt**: each `query()` (and each `ClaudeSDKClient.receive_response()`) outside an
  attempt opens a trial (task id: the `task_id` option, else a digest of the prompt) and an
  attempt whose workspace is the options' `cwd` (the repository the CLI edits). The result
  message ends it: `success` → submitted, `error_max_turns` → max_turns,
  `error_max_budget_usd` → cost_limit, other errors → error; Claude Code's own
  `total_cost_usd` goes on the attempt (`cost_source=framework`).
- **turn**: each model call, from the raw API stream events (the integration turns on
  `include_partial_messages` and hides those events from the caller unless the caller asked
  for them): the request's input and cache tokens from `message_start`, the final output tokens
  from `message_delta` (the assistant messages carry only partial usage), and an estimated cost.
- **tool**: each tool call, timed by the SDK's tool hooks, which the CLI awaits around every
  call: the span opens at `PreToolUse` and its end is fixed at `PostToolUse` (or
  `PostToolUseFailure`), keyed by the tool-use id, so the edits the CLI makes are measured on
  the workspace around the call itself however far the caller's reading of the stream lags
  behind the CLI. The span carries the call's input (Bash commands go through the classifier;
  `file_path` / `notebook_path` name the file, as the Claude Code importer reads them) and,
  from the stream's `tool_result`, the result as the model received it; `is_error` marks the
  span. The integration's hooks are added after any the caller set (theirs are kept and run as
  before) and always answer "continue", whatever goes wrong inside them. A call no hook
  reported (hooks refused, or a `ClaudeSDKClient` call made while no `receive_response()` was
  being read) is timed by the stream instead: from its `tool_use` block to its `tool_result`.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from agentsignals import semconv as sc
from agentsignals._instrument.runtime import internal_error, logger
from agentsignals._instrument.spans import ToolHandle, TurnHandle
from agentsignals.integrations._common import (
    AUTO,
    AutoAttempt,
    Patch,
    patch,
    record_usage,
    resolve_workspace,
    unpatch,
)

NAME = "claude_agent_sdk"
_lock = threading.Lock()
_patched: list[Patch] = []
_options: dict[str, Any] = {}
_FILE_KEYS = ("file_path", "notebook_path")
_HOOK_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
_EXIT = {
    "success": sc.AttemptExitReason.SUBMITTED.value,
    "error_max_turns": sc.AttemptExitReason.MAX_TURNS.value,
    "error_max_budget_usd": sc.AttemptExitReason.COST_LIMIT.value,
}


def instrument(
    *, task_id: str | None = None, run_id: str | None = None, workspace: str | None = AUTO
) -> bool:
    try:
        from claude_agent_sdk import ClaudeSDKClient
        from claude_agent_sdk._internal.client import InternalClient
    except ImportError:
        logger.warning("agentsignals: claude-agent-sdk is not installed; its integration is off")
        return False
    try:
        with _lock:
            _options.update(task_id=task_id, run_id=run_id, workspace=workspace)
            if not _patched:
                _patch(InternalClient, "process_query", _wrap_process_query)
                _patch(ClaudeSDKClient, "__init__", _wrap_client_init)
                _patch(ClaudeSDKClient, "receive_response", _wrap_receive_response)
        return True
    except Exception:
        internal_error("could not instrument claude-agent-sdk")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)


def _patch(owner: type, name: str, factory: Any) -> None:
    patch(owner, name, factory, _patched)


def _with_partial(options: Any) -> tuple[Any, bool]:
    """The options with raw stream events on, and whether the caller wanted them."""
    wanted = bool(getattr(options, "include_partial_messages", False))
    if wanted or options is None:
        return options, wanted
    try:
        return dataclasses.replace(options, include_partial_messages=True), False
    except Exception:
        return options, True  # cannot change them: pass every message through


def _tool_hook(run_of: Callable[[], _Run | None]) -> Any:
    """The hook callback that times one run's tool calls: never raises, always continues."""

    async def agentsignals_tool_hook(input_data: Any, tool_use_id: Any, context: Any) -> Any:
        try:
            run = run_of()
            if run is not None:
                run.on_hook(input_data, tool_use_id)
        except Exception:
            internal_error("claude-agent-sdk: a tool hook failed")
        return {}  # no opinion: the call goes ahead as the other hooks decide

    return agentsignals_tool_hook


def _with_hooks(options: Any, run_of: Callable[[], _Run | None]) -> tuple[Any, bool]:
    """The options with the tool hooks added after the caller's own; whether they were."""
    if options is None:
        return options, False
    try:
        from claude_agent_sdk import HookMatcher

        callback = _tool_hook(run_of)
        hooks = dict(getattr(options, "hooks", None) or {})
        for event in _HOOK_EVENTS:
            hooks[event] = [*(hooks.get(event) or []), HookMatcher(hooks=[callback])]
        return dataclasses.replace(options, hooks=hooks), True
    except Exception:
        internal_error(
            "claude-agent-sdk: could not add the tool hooks; tools are timed by the stream"
        )
        return options, False


def _wrap_process_query(original: Any) -> Any:
    @functools.wraps(original)
    async def process_query(self: Any, prompt: Any, options: Any, transport: Any = None) -> Any:
        options, wanted = _with_partial(options)
        run = _Run(wanted)
        options, run.hooked = _with_hooks(options, lambda: run)
        run.start(prompt, options)
        error: BaseException | None = None
        try:
            async for message in original.__get__(self, type(self))(prompt, options, transport):
                if run.on_message(message):
                    yield message
        except BaseException as e:
            error = e
            raise
        finally:
            run.finish(None if isinstance(error, GeneratorExit) else error)

    return process_query


def _wrap_client_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, options: Any = None, *args: Any, **kwargs: Any) -> None:
        if options is None:
            from claude_agent_sdk import ClaudeAgentOptions

            options = ClaudeAgentOptions()
        options, wanted = _with_partial(options)
        ref = weakref.ref(self)
        options, hooked = _with_hooks(options, lambda: getattr(ref(), "_agentsignals_run", None))
        original.__get__(self, type(self))(options, *args, **kwargs)
        self._agentsignals_partial_wanted = wanted
        self._agentsignals_hooked = hooked

    return __init__


def _wrap_receive_response(original: Any) -> Any:
    @functools.wraps(original)
    async def receive_response(self: Any) -> Any:
        run = _Run(getattr(self, "_agentsignals_partial_wanted", True))
        run.hooked = bool(getattr(self, "_agentsignals_hooked", False))
        run.start(None, getattr(self, "options", None))
        self._agentsignals_run = run
        error: BaseException | None = None
        try:
            async for message in original.__get__(self, type(self))():
                if run.on_message(message):
                    yield message
        except BaseException as e:
            error = e
            raise
        finally:
            if getattr(self, "_agentsignals_run", None) is run:
                self._agentsignals_run = None
            run.finish(None if isinstance(error, GeneratorExit) else error)

    return receive_response


def _detached(handle: Any) -> Any:
    """Enter a handle without leaving its context attached: message-driven spans overlap in
    any order, so none of them may own the caller's context."""
    handle.__enter__()
    token = handle._token
    handle._token = None
    if token is not None:
        try:
            otel_context.detach(token)
        except Exception:
            internal_error("claude-agent-sdk: could not detach a span")
    return handle


class _Run:
    """One run's message stream turned into spans."""

    def __init__(self, partial_wanted: bool) -> None:
        self.partial_wanted = partial_wanted
        self.auto = AutoAttempt()
        self.turns: dict[str, list[Any]] = {}  # message id → [turn, usage, model, thinking]
        self.current: str | None = None
        self.tools: dict[str, ToolHandle] = {}
        # With hooks on, tool_use blocks wait here for their result, in case no hook came.
        self.hooked = False
        self.pending: dict[str, Any] = {}
        self.ended: set[str] = set()  # calls whose span has ended: a late hook opens no other
        self.parent: Any = None  # the context tool spans start in (the attempt's)
        self.done = False
        self.reason: str | None = None

    def start(self, prompt: Any, options: Any) -> None:
        try:
            model = getattr(options, "model", None)
            cwd = getattr(options, "cwd", None)
            self.auto.enter(
                NAME,
                task=prompt if isinstance(prompt, str) else repr(prompt),
                task_id=_options.get("task_id"),
                run_id=_options.get("run_id"),
                agent_name="claude-code",
                agent_type="claude-agent-sdk",
                model=str(model) if model else None,
                provider="anthropic",
                workspace=resolve_workspace(
                    _options.get("workspace", AUTO), str(cwd) if cwd else None
                ),
            )
            self.parent = otel_context.get_current()
        except Exception:
            internal_error("claude-agent-sdk: could not start a run")

    def on_message(self, message: Any) -> bool:
        """Record one message; True when the caller should see it."""
        try:
            kind = type(message).__name__
            if kind == "StreamEvent":
                self._event(message.event or {})
                return self.partial_wanted
            if kind == "AssistantMessage":
                for block in message.content or []:
                    if type(block).__name__ == "ToolUseBlock":
                        self._tool_use(block)
            elif kind == "UserMessage":
                content = message.content if isinstance(message.content, list) else []
                for block in content:
                    if type(block).__name__ == "ToolResultBlock":
                        self._tool_result(block)
            elif kind == "ResultMessage":
                self._result(message)
        except Exception:
            internal_error("claude-agent-sdk: could not record a message")
        return True

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            mid = str(message.get("id") or len(self.turns))
            model = message.get("model")
            turn = _detached(TurnHandle(model=model, provider="anthropic"))
            self.turns[mid] = [turn, dict(message.get("usage") or {}), model, []]
            self.current = mid
        elif kind == "content_block_delta" and self.current in self.turns:
            delta = event.get("delta") or {}
            if delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
                self.turns[self.current][3].append(delta["thinking"])
        elif kind == "message_delta" and self.current in self.turns:
            state = self.turns[self.current]
            state[1].update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop = (event.get("delta") or {}).get("stop_reason")
            if isinstance(stop, str):
                state[0].record_model(finish_reasons=[stop])
        elif kind == "message_stop" and self.current in self.turns:
            self._close_turn(self.current)

    def _close_turn(self, mid: str) -> None:
        state = self.turns.pop(mid, None)
        if state is None:
            return
        turn, usage, model, thinking = state
        record_usage(turn, usage or None, model=model, provider="anthropic")
        if thinking:
            turn.record_reasoning("".join(thinking))
        turn.record_model(response=model)
        turn.__exit__(None, None, None)
        if self.current == mid:
            self.current = None

    def on_hook(self, data: Any, tool_use_id: Any) -> None:
        """A PreToolUse, PostToolUse or PostToolUseFailure hook: the CLI waits for it, so the
        call's span opens, and its end (with the workspace's changes) is fixed, right then."""
        if self.done or not isinstance(data, dict):
            return
        tid = data.get("tool_use_id") or tool_use_id
        if not tid:
            return
        tid = str(tid)
        if tid in self.ended:
            return
        event = data.get("hook_event_name")
        if event == "PreToolUse":
            self._open_tool(tid, data.get("tool_name"), data.get("tool_input"))
        elif event in ("PostToolUse", "PostToolUseFailure"):
            handle = self.tools.get(tid) or self._open_tool(
                tid, data.get("tool_name"), data.get("tool_input")
            )
            if handle is not None:
                handle._settle()

    def _open_tool(self, tid: str, name: Any, arguments: Any) -> ToolHandle | None:
        if tid in self.tools:
            return self.tools[tid]
        if self.done:
            return None
        args = arguments if isinstance(arguments, dict) else {}
        files = [v for k in _FILE_KEYS if isinstance(v := args.get(k), str) and v]
        handle = ToolHandle(str(name), arguments=args, call_id=tid)
        token = otel_context.attach(self.parent) if self.parent is not None else None
        try:
            _detached(handle)
        finally:
            if token is not None:
                otel_context.detach(token)
        if files:
            handle.set_files(files)
        self.tools[tid] = handle
        return handle

    def _tool_use(self, block: Any) -> None:
        if self.hooked:
            # The PreToolUse hook opens the span when the CLI actually starts the call.
            if str(block.id) not in self.tools:
                self.pending[str(block.id)] = block
            return
        self._open_tool(str(block.id), block.name, block.input)

    def _tool_result(self, block: Any) -> None:
        tid = str(block.tool_use_id)
        pending = self.pending.pop(tid, None)
        handle = self.tools.pop(tid, None)
        self.ended.add(tid)
        if handle is None and pending is not None:
            # No hook reported this call: timed by the stream (its result is here now).
            handle = self._open_tool(tid, pending.name, pending.input)
            self.tools.pop(tid, None)
        if handle is None:
            return
        content = block.content
        if isinstance(content, list):
            content = "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        if content is not None:
            handle.record_result(content if isinstance(content, str) else str(content))
        if block.is_error:
            handle.set_error("tool_error", str(content)[:512] if content else None)
        handle.__exit__(None, None, None)

    def _result(self, message: Any) -> None:
        subtype = str(getattr(message, "subtype", "") or "")
        self.reason = _EXIT.get(subtype, sc.AttemptExitReason.ERROR.value)
        if getattr(message, "is_error", False) and subtype == "success":
            self.reason = sc.AttemptExitReason.ERROR.value
        cost = getattr(message, "total_cost_usd", None)
        attempt = self.auto.attempt
        if attempt is not None and isinstance(cost, int | float):
            attempt.set_attribute(sc.AGENT_SIGNALS_USAGE_COST_USD, float(cost))
            attempt.set_attribute(sc.AGENT_SIGNALS_USAGE_COST_SOURCE, "framework")
            attempt.set_attribute(sc.AGENT_SIGNALS_USAGE_PRICE_SOURCE, "claude-code")

    def finish(self, error: BaseException | None) -> None:
        self.done = True
        try:
            for mid in list(self.turns):
                self._close_turn(mid)
            for handle in list(self.tools.values()):
                handle.__exit__(None, None, None)
            self.tools.clear()
            self.pending.clear()
            # The CLI exits non-zero after an error result (max turns, budget): the result
            # message, when one came, says why the run ended.
            self.auto.exit(error, self.reason)
        except Exception:
            internal_error("claude-agent-sdk: could not end a run")
