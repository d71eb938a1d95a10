"""DSPy: `dspy.ReAct` and custom modules, through DSPy's own callback hooks.

    agentsignals.instrument("dspy")

- **attempt**: each top-level module call (`program(issue=...)`) run outside an attempt opens a
  trial and an attempt (agent name: the module's class); inside the caller's attempt it records
  there.
- **turn**: each predictor call (a `dspy.Predict`, the unit that calls the LM) is one turn,
  named by the predictor's path in the program (`agent_signals.turn.module`: `react`,
  `extract.predict`, `planner.predict`), with the LM call's usage and cost (LiteLLM's cost when
  it knows the model, else an estimate from the price table). An LM called outside a predictor
  is a turn of its own.
- **tool**: each `dspy.Tool` call (ReAct's tools, `finish` included) is a tool span with its
  arguments, result size and errors; ReAct runs tools after the predictor returns, so they are
  siblings of the turn carrying its index.

Callbacks are DSPy's documented extension point, so this works whatever else wraps DSPy: with
OpenInference's DSPy instrumentor on, its `LM.__call__` (LLM) span nests under our turn and the
tokens are counted once.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from agentsignals import semconv as sc
from agentsignals._instrument.runtime import internal_error, logger
from agentsignals._instrument.spans import ToolHandle, TurnHandle
from agentsignals.integrations._common import (
    AUTO,
    AutoAttempt,
    current_turn,
    in_attempt,
    in_turn,
    provider_of,
    record_messages,
    record_usage,
    resolve_workspace,
)

NAME = "dspy"

_lock = threading.Lock()
_callback: Any = None
_options: dict[str, Any] = {}
_configure_patched = False
# The top-level module of the current run, for naming its predictors.
_ROOT: contextvars.ContextVar[Any] = contextvars.ContextVar("agentsignals_dspy_root", default=None)


def instrument(
    *,
    task_id: str | None = None,
    run_id: str | None = None,
    workspace: str | None = AUTO,
) -> bool:
    """Trace DSPy programs. `task_id`/`run_id` name the trials opened for top-level calls
    (default: a digest of the inputs); `workspace` is the folder whose changes each attempt
    tracks ("auto": the current directory when it is a git work tree; None: off)."""
    global _callback
    try:
        import dspy
    except ImportError:
        logger.warning("agentsignals: dspy is not installed; the dspy integration is off")
        return False
    try:
        with _lock:
            _options.update(task_id=task_id, run_id=run_id, workspace=workspace)
            if _callback is None:
                _callback = _make_callback(dspy)
            _add_callback(dspy)
            _patch_configure(dspy)
        return True
    except Exception:
        internal_error("could not instrument dspy")
        return False


def uninstrument() -> None:
    global _callback
    try:
        import dspy

        with _lock:
            ours, _callback = _callback, None  # first, so the configure() hook lets it go
            if ours is not None:
                current = dspy.settings.get("callbacks", []) or []
                dspy.settings.configure(callbacks=[c for c in current if c is not ours])
    except Exception:
        internal_error("could not uninstrument dspy")


def _add_callback(dspy: Any) -> None:
    callbacks = list(dspy.settings.get("callbacks", []) or [])
    if _callback not in callbacks:
        dspy.settings.configure(callbacks=[*callbacks, _callback])


def _patch_configure(dspy: Any) -> None:
    """A later `dspy.configure(callbacks=[...])` keeps ours."""
    global _configure_patched
    if _configure_patched:
        return
    import wrapt

    settings_type = type(dspy.settings)

    def keep_ours(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            cbs = kwargs.get("callbacks")
            if _callback is not None and cbs is not None and _callback not in cbs:
                kwargs["callbacks"] = [*cbs, _callback]
        except Exception:
            internal_error("dspy: could not keep the agentsignals callback")
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(settings_type, "configure", keep_ours)
    _configure_patched = True


def _predictor_name(instance: Any) -> str:
    root = _ROOT.get()
    if root is not None:
        try:
            for name, predictor in root.named_predictors():
                if predictor is instance:
                    return str(name)
        except Exception:
            pass
    return type(instance).__name__


def _lm_model(lm: Any) -> str | None:
    model = getattr(lm, "model", None)
    return str(model) if model else None


def _make_callback(dspy: Any) -> Any:
    from dspy.utils.callback import BaseCallback

    predict_type = dspy.Predict

    class AgentSignalsCallback(BaseCallback):  # type: ignore[misc]
        """Opens our spans in DSPy's start hooks and closes them in the end hooks (DSPy calls
        both from the same frame, so context attach/detach stays balanced)."""

        def __init__(self) -> None:
            # call_id → what to close at the matching end hook, innermost last.
            self._open: dict[str, list[Any]] = {}

        # -- modules: the attempt, and a turn per predictor --------------------------------
        def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            opened: list[Any] = []
            try:
                if not in_attempt():
                    lm = getattr(instance, "lm", None) or dspy.settings.get("lm")
                    model = _lm_model(lm)
                    auto = AutoAttempt()
                    if auto.enter(
                        NAME,
                        task=sorted((k, repr(v)) for k, v in inputs.items()),
                        task_id=_options.get("task_id"),
                        run_id=_options.get("run_id"),
                        agent_name=type(instance).__name__,
                        agent_type=f"dspy.{type(instance).__name__}",
                        model=model,
                        provider=provider_of(model),
                        workspace=resolve_workspace(_options.get("workspace", AUTO), None),
                    ):
                        opened.append(("attempt", auto, _ROOT.set(instance)))
                if isinstance(instance, predict_type) and not in_turn():
                    lm = getattr(instance, "lm", None) or dspy.settings.get("lm")
                    model = _lm_model(lm)
                    turn = TurnHandle(
                        model=model,
                        provider=provider_of(model),
                        attributes={sc.AGENT_SIGNALS_TURN_MODULE: _predictor_name(instance)},
                    )
                    turn.__enter__()
                    opened.append(("turn", turn))
            except Exception:
                internal_error("dspy: could not start a module")
            if opened:
                self._open[call_id] = opened

        def on_module_end(
            self, call_id: str, outputs: Any, exception: BaseException | None = None
        ) -> None:
            self._close(call_id, exception, outputs)

        # -- LM calls: usage on the turn ---------------------------------------------------
        def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            try:
                opened: list[Any] = []
                if not in_turn():
                    model = _lm_model(instance)
                    turn = TurnHandle(model=model, provider=provider_of(model))
                    turn.__enter__()
                    opened.append(("turn", turn))
                history = getattr(instance, "history", None) or []
                last = history[-1].get("uuid") if history else None
                opened.append(("lm", instance, inputs.get("messages"), last))
                self._open[call_id] = opened
            except Exception:
                internal_error("dspy: could not start an LM call")

        def on_lm_end(
            self, call_id: str, outputs: Any, exception: BaseException | None = None
        ) -> None:
            try:
                for item in self._open.get(call_id, []):
                    if item[0] == "lm":
                        _record_lm_usage(item[1], item[2], item[3])
            except Exception:
                internal_error("dspy: could not record LM usage")
            self._close(call_id, exception)

        # -- tools -------------------------------------------------------------------------
        def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            try:
                if not in_attempt():
                    return
                args = inputs.get("kwargs", inputs)
                handle = ToolHandle(str(getattr(instance, "name", None) or "tool"), arguments=args)
                handle.__enter__()
                self._open[call_id] = [("tool", handle)]
            except Exception:
                internal_error("dspy: could not start a tool call")

        def on_tool_end(
            self, call_id: str, outputs: Any, exception: BaseException | None = None
        ) -> None:
            try:
                for item in self._open.get(call_id, []):
                    if item[0] == "tool" and exception is None:
                        item[1].record_result(outputs)
            except Exception:
                internal_error("dspy: could not record a tool result")
            self._close(call_id, exception)

        # -- closing -----------------------------------------------------------------------
        def _close(
            self, call_id: str, exception: BaseException | None, outputs: Any = None
        ) -> None:
            opened = self._open.pop(call_id, None)
            if not opened:
                return
            et = type(exception) if exception is not None else None
            for item in reversed(opened):
                try:
                    kind = item[0]
                    if kind == "turn" and outputs is not None:
                        _record_thought(item[1], outputs)
                    if kind in ("turn", "tool"):
                        item[1].__exit__(et, exception, None)
                    elif kind == "attempt":
                        item[1].exit(exception, None if exception else _exit_reason(outputs))
                        _ROOT.reset(item[2])
                except Exception:
                    internal_error("dspy: could not close a span")

    return AgentSignalsCallback()


def _record_thought(turn: TurnHandle, outputs: Any) -> None:
    """The predictor's own reasoning output (ChainOfThought's `reasoning`, ReAct's
    `next_thought`) is the turn's reasoning text."""
    try:
        for field in ("reasoning", "next_thought"):
            text = outputs.get(field) if hasattr(outputs, "get") else None
            if isinstance(text, str) and text.strip():
                turn.record_reasoning(text)
                return
    except Exception:
        internal_error("dspy: could not record reasoning")


def _exit_reason(outputs: Any) -> str:
    """ReAct's trajectory tells how it stopped: its `finish` tool (submitted) or the iteration
    cap (max_turns). Any other module that returned a prediction submitted it."""
    trajectory = getattr(outputs, "trajectory", None)
    if isinstance(trajectory, dict):
        names = [v for k, v in trajectory.items() if str(k).startswith("tool_name_")]
        if names and names[-1] != "finish":
            return sc.AttemptExitReason.MAX_TURNS.value
    return sc.AttemptExitReason.SUBMITTED.value


def _record_lm_usage(lm: Any, messages: Any, before: str | None) -> None:
    """Find this call's history entry (the newest one with our messages, else the newest new
    one) and record its usage, model and cost on the current turn."""
    history = getattr(lm, "history", None) or []
    entry = None
    for candidate in reversed(history[-8:]):
        if candidate.get("uuid") == before:
            break
        if messages is not None and candidate.get("messages") is messages:
            entry = candidate
            break
        if entry is None:
            entry = candidate
    if entry is None:
        return
    turn = current_turn()
    if turn is None:
        return
    response = entry.get("response")
    if getattr(response, "cache_hit", False):
        return  # served from DSPy's cache: no model call was made
    model = entry.get("model")
    provider = provider_of(model)
    turn.record_model(response=entry.get("response_model"), provider=provider)
    choices = getattr(response, "choices", None)
    record_messages(
        turn,
        input=entry.get("messages"),
        output=getattr(choices[0], "message", None) if choices else None,
    )
    cost = entry.get("cost")
    record_usage(
        turn,
        entry.get("usage") or None,
        model=model,
        provider=provider,
        reported_cost=float(cost) if isinstance(cost, int | float) and cost else None,
        cost_source=sc.UsageCostSource.FRAMEWORK.value,
        price_source=_litellm_source() if cost else None,
    )


def _litellm_source() -> str:
    try:
        from importlib.metadata import version

        return f"litellm {version('litellm')}"
    except Exception:
        return "litellm"
