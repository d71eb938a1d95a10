"""Extension points the span handles call, for what runs inside a live attempt on purpose.

The fault injector of recovery evals (`agentsignals.faults`, a layer above) plugs in here: the
instrumentation never imports it. An attempt carries at most one :class:`AttemptHook`
(``AttemptState.faults``); with none, each tool call pays one attribute read.

* ``RUNTIME``-wide: :data:`ATTEMPT_STARTED` holds callables run when an attempt starts (after
  its workspace tracker started), which may attach a hook to it (how an environment variable
  gives an unmodified agent its faults).
* Per attempt: ``before_tool`` may return a :class:`ToolCallHook` for the call (it then runs the
  tool's body: it may replace the result, or not run the body and fail instead), ``after_tool``
  runs once the tool span ended (workspace faults are applied there, between two calls), and
  ``attempt_end`` just before the attempt span ends.

Everything a hook does is guarded by the caller: an exception in a hook is an internal error,
never the host's, except the errors a tool-call hook raises *as the tool* (``InjectedToolError``,
``InjectedToolTimeout``): those are the fault, and reach the agent like any tool failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agentsignals._instrument.scope import AttemptState
    from agentsignals._instrument.spans import AttemptHandle, ToolHandle

__all__ = [
    "ATTEMPT_STARTED",
    "AttemptHook",
    "InjectedToolError",
    "InjectedToolTimeout",
    "ToolCallHook",
]


class InjectedToolError(RuntimeError):
    """A tool call failed because a fault said so (the tool's body did not run)."""

    # The span's error.type: what a failing tool shows, never "injected" (the span's
    # agent_signals.fault.* attributes say it was a fault; a blind judge must not read it).
    error_type = "RuntimeError"


class InjectedToolTimeout(TimeoutError):
    """A tool call timed out because a fault said so (the tool's body did not run)."""

    error_type = "TimeoutError"


class ToolCallHook(Protocol):
    """Runs one tool call's body (or does not)."""

    def run(self, call: Callable[[], Any]) -> Any: ...

    async def run_async(self, call: Callable[[], Awaitable[Any]]) -> Any: ...


class AttemptHook(Protocol):
    def before_tool(self, tool: ToolHandle, nested: bool) -> ToolCallHook | None: ...

    def after_tool(self, tool: ToolHandle, error: BaseException | None) -> None: ...

    def attempt_end(self, attempt: AttemptHandle) -> None: ...


ATTEMPT_STARTED: list[Callable[[AttemptHandle, AttemptState], None]] = []
"""Run (in order) when an attempt span starts; each may set ``state.faults``."""
