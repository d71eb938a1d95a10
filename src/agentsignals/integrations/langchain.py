"""LangGraph (and LangChain): graph runs, chat-model calls and tool calls.

    agentsignals.instrument("langgraph")

- **attempt**: each top-level graph run (`invoke`, `stream` and their async forms; subgraphs
  stay in their parent's attempt) outside an attempt opens a trial (task id: the `task_id`
  option, else the run's `thread_id`, else a digest of the input) and an attempt.
  `GraphRecursionError` (the step limit) ends it as `max_turns`, another exception as `error`,
  a finished run as `submitted`.
- **turn**: each chat-model call (`BaseChatModel.invoke` / `ainvoke`), named by the graph node
  that made it (`agent_signals.turn.module`), with the message's `usage_metadata` (cache reads
  and writes included) and an estimated cost.
- **tool**: each tool run (`BaseTool.run` / `arun`, which ToolNode uses), with its input (the
  classifier's category and files) and result.

The methods are wrapped, not LangChain callbacks, so our spans hold the context around the call:
OpenInference's LangChain instrumentor (a callback tracer) still sees every run, and its spans
carry our identity and the turn's index, so usage is counted once.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

from agentsignals import semconv as sc
from agentsignals._instrument.hooks import InjectedToolError, InjectedToolTimeout
from agentsignals._instrument.runtime import error_type, internal_error, logger
from agentsignals._instrument.spans import ToolHandle, TurnHandle
from agentsignals.integrations._common import (
    AUTO,
    AutoAttempt,
    Patch,
    in_attempt,
    in_turn,
    patch,
    provider_of,
    record_usage,
    resolve_workspace,
    unpatch,
)

NAME = "langgraph"
_lock = threading.Lock()
_patched: list[Patch] = []
_options: dict[str, Any] = {}


def instrument(
    *, task_id: str | None = None, run_id: str | None = None, workspace: str | None = AUTO
) -> bool:
    try:
        from langchain_core.language_models.chat_models import BaseChatModel
        from langchain_core.tools import BaseTool
    except ImportError:
        logger.warning("agentsignals: langchain-core is not installed; its integration is off")
        return False
    try:
        with _lock:
            _options.update(task_id=task_id, run_id=run_id, workspace=workspace)
            if _patched:
                return True
            _patch(BaseChatModel, "invoke", _wrap_model)
            _patch(BaseChatModel, "ainvoke", _wrap_model)
            _patch(BaseTool, "run", _wrap_tool)
            _patch(BaseTool, "arun", _wrap_tool)
            try:
                from langgraph.pregel import Pregel
            except ImportError:
                pass  # LangChain without LangGraph: the caller opens the attempt
            else:
                _patch(Pregel, "stream", _wrap_graph)
                _patch(Pregel, "astream", _wrap_graph)
        return True
    except Exception:
        internal_error("could not instrument langgraph")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)


def _patch(owner: type, name: str, factory: Any) -> None:
    patch(owner, name, factory, _patched)


def _bound(original: Any, self: Any) -> Any:
    """`original` bound to `self` through the descriptor protocol (it may be another
    instrumentor's wrapper)."""
    return original.__get__(self, type(self))


# ----------------------------------------------------------------------------------- graphs


def _graph_attempt(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> AutoAttempt:
    auto = AutoAttempt()
    try:
        config = kwargs.get("config") or (args[1] if len(args) > 1 else None) or {}
        configurable = config.get("configurable") or {} if isinstance(config, dict) else {}
        thread = configurable.get("thread_id") if isinstance(configurable, dict) else None
        name = getattr(self, "name", None) or type(self).__name__
        auto.enter(
            NAME,
            task=args[0] if args else kwargs.get("input"),
            task_id=_options.get("task_id") or (str(thread) if thread else None),
            run_id=_options.get("run_id"),
            agent_name=str(name),
            agent_type=f"langgraph.{name}",
            workspace=resolve_workspace(_options.get("workspace", AUTO), None),
        )
    except Exception:
        internal_error("langgraph: could not start a graph run")
    return auto


def _graph_reason(error: BaseException | None) -> str:
    if error is None:
        return sc.AttemptExitReason.SUBMITTED.value
    if type(error).__name__ == "GraphRecursionError":
        return sc.AttemptExitReason.MAX_TURNS.value
    return sc.AttemptExitReason.ERROR.value


def _wrap_graph(original: Any) -> Any:
    if inspect.isasyncgenfunction(original):

        @functools.wraps(original)
        async def astream(self: Any, *args: Any, **kwargs: Any) -> Any:
            if in_attempt():
                async for item in _bound(original, self)(*args, **kwargs):
                    yield item
                return
            auto = _graph_attempt(self, args, kwargs)
            error: BaseException | None = None
            try:
                async for item in _bound(original, self)(*args, **kwargs):
                    yield item
            except BaseException as e:
                error = e
                raise
            finally:
                auto.exit(None if isinstance(error, GeneratorExit) else error, _graph_reason(error))

        return astream

    @functools.wraps(original)
    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        if in_attempt():
            yield from _bound(original, self)(*args, **kwargs)
            return
        auto = _graph_attempt(self, args, kwargs)
        error: BaseException | None = None
        try:
            yield from _bound(original, self)(*args, **kwargs)
        except BaseException as e:
            error = e
            raise
        finally:
            auto.exit(None if isinstance(error, GeneratorExit) else error, _graph_reason(error))

    return stream


# ---------------------------------------------------------------------------- chat models


def _model_name(model: Any) -> str | None:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _model_provider(model: Any) -> str | None:
    try:
        params = model._get_ls_params()
        provider = params.get("ls_provider")
        if isinstance(provider, str) and provider:
            return {"google_genai": "gcp.gemini", "bedrock": "aws.bedrock"}.get(provider, provider)
    except Exception:
        pass
    return None


def _node() -> str | None:
    try:
        from langchain_core.runnables.config import ensure_config

        node = (ensure_config().get("metadata") or {}).get("langgraph_node")
        return str(node) if node else None
    except Exception:
        return None


def _open_turn(model: Any) -> TurnHandle:
    name = _model_name(model)
    node = _node()
    turn = TurnHandle(
        model=name,
        provider=_model_provider(model) or provider_of(name),
        attributes={sc.AGENT_SIGNALS_TURN_MODULE: node} if node else None,
    )
    turn.__enter__()
    return turn


def _record_message(turn: TurnHandle, message: Any) -> None:
    try:
        meta = getattr(message, "response_metadata", None) or {}
        response_model = meta.get("model_name") or meta.get("model")
        finish = meta.get("finish_reason") or meta.get("stop_reason")
        turn.record_model(
            response=str(response_model) if response_model else None,
            finish_reasons=[finish] if isinstance(finish, str) else None,
        )
        usage = getattr(message, "usage_metadata", None)
        numbers = None
        if usage:
            details = usage.get("input_token_details") or {}
            out_details = usage.get("output_token_details") or {}
            numbers = {
                "input_tokens": usage.get("input_tokens"),
                "output_tokens": usage.get("output_tokens"),
                "input_tokens_details": {"cached_tokens": details.get("cache_read")},
                "output_tokens_details": {"reasoning_tokens": out_details.get("reasoning")},
            }
        model = turn._attrs.get(sc.GEN_AI_REQUEST_MODEL)
        provider = turn._attrs.get(sc.GEN_AI_PROVIDER_NAME)
        record_usage(
            turn,
            numbers,
            model=str(model) if model else None,
            provider=str(provider) if provider else None,
        )
        write = (usage or {}).get("input_token_details", {}).get("cache_creation")
        if write:
            turn.record_usage(cache_write_tokens=int(write))
    except Exception:
        internal_error("langgraph: could not record a chat model's usage")


def _wrap_model(original: Any) -> Any:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def ainvoke(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not in_attempt() or in_turn():
                return await _bound(original, self)(*args, **kwargs)
            turn = _open_turn(self)
            try:
                message = await _bound(original, self)(*args, **kwargs)
            except BaseException as e:
                turn.__exit__(type(e), e, None)
                raise
            _record_message(turn, message)
            turn.__exit__(None, None, None)
            return message

        return ainvoke

    @functools.wraps(original)
    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not in_attempt() or in_turn():
            return _bound(original, self)(*args, **kwargs)
        turn = _open_turn(self)
        try:
            message = _bound(original, self)(*args, **kwargs)
        except BaseException as e:
            turn.__exit__(type(e), e, None)
            raise
        _record_message(turn, message)
        turn.__exit__(None, None, None)
        return message

    return invoke


# ---------------------------------------------------------------------------------- tools


def _open_tool(tool: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToolHandle:
    tool_input = args[0] if args else kwargs.get("tool_input")
    if isinstance(tool_input, dict) and tool_input.get("type") == "tool_call":
        tool_input = tool_input.get("args")
    call_id = kwargs.get("tool_call_id")
    handle = ToolHandle(
        str(getattr(tool, "name", None) or type(tool).__name__),
        arguments=tool_input,
        call_id=str(call_id) if call_id else None,
    )
    handle.__enter__()
    return handle


def _record_tool(handle: ToolHandle, result: Any) -> None:
    try:
        content = getattr(result, "content", result)
        if getattr(result, "status", None) == "error":
            handle.set_error("tool_error", str(content)[:512])
        handle.record_result(content if isinstance(content, str | bytes) else str(content))
    except Exception:
        internal_error("langgraph: could not record a tool result")


def _fault_result(tool: Any, kwargs: dict[str, Any], fault: Exception) -> Any:
    """An injected tool failure (agentsignals.faults) as LangChain returns a failed tool call
    it handled: a ``ToolMessage`` with ``status="error"`` for a call from a model's tool call
    (what ``handle_tool_error`` and LangGraph's ``ToolNode`` error handling give the model);
    None for a direct call, which gets the exception, as from any tool that raises."""
    call_id = kwargs.get("tool_call_id")
    if not call_id:
        return None
    try:
        from langchain_core.messages import ToolMessage

        return ToolMessage(
            content=str(fault),
            name=str(getattr(tool, "name", None) or type(tool).__name__),
            tool_call_id=str(call_id),
            status="error",
        )
    except Exception:
        internal_error("langgraph: could not build a tool error message")
        return None


def _faulted(handle: ToolHandle, tool: Any, kwargs: dict[str, Any], fault: Exception) -> Any:
    """The result for a call an injected fault failed; re-raises when it has none."""
    result = _fault_result(tool, kwargs, fault)
    if result is None:
        handle.__exit__(type(fault), fault, None)
        raise fault
    handle.record_result(str(fault))
    handle.set_error(error_type(fault), str(fault)[:512])
    handle.__exit__(None, None, None)
    return result


def _wrap_tool(original: Any) -> Any:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def arun(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not in_attempt():
                return await _bound(original, self)(*args, **kwargs)
            handle = _open_tool(self, args, kwargs)
            try:
                # Through the call's injected fault, if any (agentsignals.faults).
                result = await handle.run_async(lambda: _bound(original, self)(*args, **kwargs))
            except (InjectedToolError, InjectedToolTimeout) as fault:
                return _faulted(handle, self, kwargs, fault)
            except BaseException as e:
                handle.__exit__(type(e), e, None)
                raise
            _record_tool(handle, result)
            handle.__exit__(None, None, None)
            return result

        return arun

    @functools.wraps(original)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not in_attempt():
            return _bound(original, self)(*args, **kwargs)
        handle = _open_tool(self, args, kwargs)
        try:
            # Through the call's injected fault, if any (agentsignals.faults).
            result = handle.run(lambda: _bound(original, self)(*args, **kwargs))
        except (InjectedToolError, InjectedToolTimeout) as fault:
            return _faulted(handle, self, kwargs, fault)
        except BaseException as e:
            handle.__exit__(type(e), e, None)
            raise
        _record_tool(handle, result)
        handle.__exit__(None, None, None)
        return result

    return run
