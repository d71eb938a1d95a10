"""OpenAI Agents SDK: a trace processor that turns each run into an attempt.

    agentsignals.instrument("openai_agents")

- **attempt**: each Agents SDK trace (one `Runner.run`, or a `with trace(...)` block) run
  outside an attempt opens a trial and an attempt. Task id: the `task_id` option, else the
  trace metadata's `task_id` (`RunConfig(trace_metadata={"task_id": ...})`), else the trace's
  group id, else the trace id. "Max turns exceeded" ends it as `max_turns`, another agent
  error as `error`, a final output as `submitted`.
- **turn**: each model call (generation or response span), named by the agent that made it
  (`agent_signals.turn.module`, handoffs included), with the model's usage and an estimated
  cost.
- **tool**: each function tool call, with its arguments (the classifier's category and files)
  and result; tool errors mark the span.

Our processor goes first in the SDK's processor list, so an OpenInference or Logfire processor
registered beside it sees our turn already open and its model-call span gets the turn's index.
The SDK's own exporter (to the OpenAI dashboard) is left as it is.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from agentsignals import semconv as sc
from agentsignals._classify.tools import category_for
from agentsignals._instrument.runtime import internal_error, logger
from agentsignals._instrument.spans import ToolHandle, TurnHandle
from agentsignals.integrations._common import (
    AUTO,
    AutoAttempt,
    in_attempt,
    provider_of,
    record_usage,
    resolve_workspace,
)

NAME = "openai_agents"
_lock = threading.Lock()
_processor: Any = None
_options: dict[str, Any] = {}


def instrument(
    *, task_id: str | None = None, run_id: str | None = None, workspace: str | None = AUTO
) -> bool:
    global _processor
    try:
        from agents.tracing import get_trace_provider
    except ImportError:
        logger.warning("agentsignals: openai-agents is not installed; its integration is off")
        return False
    try:
        with _lock:
            _options.update(task_id=task_id, run_id=run_id, workspace=workspace)
            if _processor is None:
                _processor = _make_processor()
                provider = get_trace_provider()
                multi = getattr(provider, "_multi_processor", None)
                current = list(getattr(multi, "_processors", ()) or ())
                # Starts go first and ends last, so our context attach/detach stays LIFO
                # around processors that attach their own (OpenInference's).
                provider.set_processors([_processor.starts, *current, _processor.ends])
        return True
    except Exception:
        internal_error("could not instrument openai-agents")
        return False


def uninstrument() -> None:
    global _processor
    try:
        from agents.tracing import get_trace_provider

        with _lock:
            if _processor is not None:
                provider = get_trace_provider()
                multi = getattr(provider, "_multi_processor", None)
                current = list(getattr(multi, "_processors", ()) or ())
                ours = (_processor.starts, _processor.ends)
                provider.set_processors([p for p in current if p not in ours])
            _processor = None
    except Exception:
        internal_error("could not uninstrument openai-agents")


def _make_processor() -> Any:
    from agents.tracing import TracingProcessor

    class AgentSignalsProcessor(TracingProcessor):
        starts: Any
        ends: Any

        def __init__(self) -> None:
            # trace id → (AutoAttempt, current agent name, error seen); span id → handle.
            self._traces: dict[str, list[Any]] = {}
            self._spans: dict[str, Any] = {}

        def on_trace_start(self, trace: Any) -> None:
            try:
                auto = AutoAttempt()
                metadata = getattr(trace, "metadata", None) or {}
                task_id = (
                    _options.get("task_id")
                    or metadata.get("task_id")
                    or getattr(trace, "group_id", None)
                    or getattr(trace, "trace_id", None)
                )
                auto.enter(
                    NAME,
                    task_id=str(task_id),
                    run_id=_options.get("run_id") or metadata.get("run_id"),
                    agent_name=getattr(trace, "name", None),
                    agent_type="openai-agents",
                    workspace=resolve_workspace(_options.get("workspace", AUTO), None),
                )
                self._traces[trace.trace_id] = [auto, None, None]
            except Exception:
                internal_error("openai-agents: could not start a trace")

        def on_trace_end(self, trace: Any) -> None:
            state = self._traces.pop(getattr(trace, "trace_id", ""), None)
            if state is None:
                return
            auto, _, error = state
            try:
                if error is None:
                    reason = sc.AttemptExitReason.SUBMITTED.value
                elif "max turns" in str(error).lower():
                    reason = sc.AttemptExitReason.MAX_TURNS.value
                else:
                    reason = sc.AttemptExitReason.ERROR.value
                auto.exit(None, reason)
            except Exception:
                internal_error("openai-agents: could not end a trace")

        def on_span_start(self, span: Any) -> None:
            try:
                data = span.span_data
                kind = getattr(data, "type", None)
                state = self._traces.get(span.trace_id)
                if kind == "agent":
                    if state is not None:
                        if state[1] is None and state[0].attempt is not None:
                            # The attempt is named after the first agent, not the workflow.
                            attempt = state[0].attempt
                            attempt.span.update_name(f"invoke_agent {data.name}")
                            attempt.set_attribute(sc.GEN_AI_AGENT_NAME, str(data.name))
                        state[1] = data.name
                    return
                if not in_attempt():
                    return
                if kind in ("generation", "response"):
                    model = getattr(data, "model", None)
                    attrs = {sc.AGENT_SIGNALS_TURN_MODULE: state[1]} if state and state[1] else None
                    handle: Any = TurnHandle(
                        model=str(model) if model else None,
                        provider=provider_of(str(model) if model else None, default="openai"),
                        attributes=attrs,
                    )
                elif kind == "function":
                    handle = ToolHandle(str(data.name), arguments=_arguments(data.input))
                else:
                    return
                handle.__enter__()
                self._spans[span.span_id] = handle
            except Exception:
                internal_error("openai-agents: could not start a span")

        def on_span_end(self, span: Any) -> None:
            data = span.span_data
            kind = getattr(data, "type", None)
            error = getattr(span, "error", None)
            if kind == "agent" and error:
                state = self._traces.get(span.trace_id)
                if state is not None:
                    state[2] = error.get("message") if isinstance(error, dict) else error
            handle = self._spans.pop(getattr(span, "span_id", ""), None)
            if handle is None:
                return
            try:
                if kind == "function":
                    if data.input is not None:
                        # The SDK sets the input after the span started: classify it now.
                        arguments = _arguments(data.input)
                        handle.record_arguments(arguments)
                        if isinstance(arguments, dict):
                            handle.set_category(category_for(handle.name, arguments).value)
                    if data.output is not None:
                        handle.record_result(
                            data.output if isinstance(data.output, str) else str(data.output)
                        )
                elif kind == "generation":
                    model = str(data.model) if data.model else None
                    record_usage(
                        handle, data.usage, model=model, provider=provider_of(model, None, "openai")
                    )
                elif kind == "response":
                    response = getattr(data, "response", None)
                    model = str(getattr(response, "model", None) or "") or None
                    handle.record_model(response=model)
                    record_usage(
                        handle,
                        getattr(response, "usage", None),
                        model=model,
                        provider=provider_of(model, None, "openai"),
                    )
                if error:
                    message = error.get("message") if isinstance(error, dict) else str(error)
                    handle.set_error("tool_error" if kind == "function" else "error", message)
            except Exception:
                internal_error("openai-agents: could not record a span")
            handle.__exit__(None, None, None)

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    class Half(TracingProcessor):
        """The start half or the end half of the processor."""

        def __init__(self, core: AgentSignalsProcessor, starts: bool) -> None:
            self._core = core
            self._starts = starts

        def on_trace_start(self, trace: Any) -> None:
            if self._starts:
                self._core.on_trace_start(trace)

        def on_trace_end(self, trace: Any) -> None:
            if not self._starts:
                self._core.on_trace_end(trace)

        def on_span_start(self, span: Any) -> None:
            if self._starts:
                self._core.on_span_start(span)

        def on_span_end(self, span: Any) -> None:
            if not self._starts:
                self._core.on_span_end(span)

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    core = AgentSignalsProcessor()
    core.starts = Half(core, True)
    core.ends = Half(core, False)
    return core


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
