"""agentsignals: OpenTelemetry instrumentation for coding agents.

Wrap the agent loop in `trial` › `attempt` › `turn` › `tool` spans (context managers or
decorators), call `configure()` once, and every step is recorded under one semantic convention
(`agentsignals.semconv`): GenAI names where OpenTelemetry has them, `agent_signals.*` for the rest.

    import agentsignals

    agentsignals.configure()                      # embedded default: ./agentsignals-output/

    @agentsignals.trace_tool
    def bash(command: str) -> str: ...

    with agentsignals.trial("django__django-16527"):
        with agentsignals.attempt(agent_type="my-agent", model_id="claude-sonnet-4"):
            with agentsignals.turn() as turn:
                turn.record_usage(input_tokens=1200, output_tokens=80)
            bash("pytest -x")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentsignals._config import configure, force_flush, shutdown
from agentsignals._instrument.decorators import trace_attempt, trace_tool, trace_trial, trace_turn
from agentsignals._instrument.runtime import VERSION as __version__
from agentsignals._instrument.scope import current_scope
from agentsignals._instrument.spans import (
    AttemptHandle,
    ToolHandle,
    TrialHandle,
    TurnHandle,
    current_tool_handle,
)

if TYPE_CHECKING:
    from agentsignals._settings import Config

__all__ = [
    "AttemptHandle",
    "Config",
    "ToolHandle",
    "TrialHandle",
    "TurnHandle",
    "__version__",
    "attempt",
    "configure",
    "current_attempt",
    "current_tool",
    "current_turn",
    "force_flush",
    "instrument",
    "shutdown",
    "tool",
    "trace_attempt",
    "trace_tool",
    "trace_trial",
    "trace_turn",
    "trial",
    "turn",
]

trial = TrialHandle
"""`with agentsignals.trial(task_id, trial_id=None, dataset=None) as t:` — one task."""
attempt = AttemptHandle
"""`with agentsignals.attempt(index=None, agent_type=..., model_id=..., ...) as a:` — one run."""
turn = TurnHandle
"""`with agentsignals.turn(model=None, provider=None, phase=None) as t:` — one model call."""
tool = ToolHandle
"""`with agentsignals.tool(name, category=None, call_id=None, arguments=None) as t:` — one call."""

# Handles returned when nothing is active: every method is a harmless no-op.
_IDLE_ATTEMPT = AttemptHandle(attempt_id="idle")
_IDLE_TURN = TurnHandle()
_IDLE_TOOL = ToolHandle("idle")


def current_attempt() -> AttemptHandle:
    """The innermost active attempt (a no-op handle when there is none)."""
    state = current_scope().attempt
    handle = state.handle if state is not None else None
    return handle if handle is not None else _IDLE_ATTEMPT


def current_turn() -> TurnHandle:
    """The innermost active turn (a no-op handle when there is none)."""
    handle = current_scope().turn
    return handle if handle is not None else _IDLE_TURN


def current_tool() -> ToolHandle:
    """The innermost active tool call (a no-op handle when there is none), so a function
    decorated with `@trace_tool` can record its exit code or files."""
    handle = current_tool_handle()
    return handle if handle is not None else _IDLE_TOOL


def instrument(name: str, **options: Any) -> bool:
    """Trace a framework's agents in one line: `agentsignals.instrument("dspy")`.

    Names: dspy, mini_swe_agent, openai, anthropic, litellm, openai_agents, smolagents,
    langgraph (langchain), claude_agent_sdk. The framework is imported only now. Returns True
    when the integration is on; a framework that is not installed logs a warning and returns
    False. See `agentsignals.integrations`.
    """
    from agentsignals.integrations import instrument as _instrument

    return _instrument(name, **options)


def __getattr__(name: str) -> Any:
    # pydantic is imported only when someone asks for the Config type.
    if name == "Config":
        from agentsignals._settings import Config

        return Config
    raise AttributeError(f"module 'agentsignals' has no attribute {name!r}")


for _obj in (AttemptHandle, ToolHandle, TrialHandle, TurnHandle):
    _obj.__module__ = "agentsignals"
del _obj


def _faults_from_environment() -> None:
    # A harness gives an unmodified agent its faults through AGENTSIGNALS_FAULTS (recovery
    # evals, agentsignals.faults); the fault code is imported only when the variable is set.
    import os

    if not os.environ.get("AGENTSIGNALS_FAULTS"):
        return
    try:
        from agentsignals.faults import _install_from_environment

        _install_from_environment()
    except Exception:
        from agentsignals._instrument.runtime import internal_error

        internal_error("could not install the fault plan of AGENTSIGNALS_FAULTS")


_faults_from_environment()
