"""Identity in the OpenTelemetry context: which trial, attempt and turn a span belongs to.

A `Scope` travels in the OTel context next to the span, so it follows the span into threads,
tasks and (through TRACEPARENT / TRACESTATE / BAGGAGE) child processes. The span handles
(`spans.py`) create scopes; propagation (`propagation.py`) carries them; both depend on this
module and not on each other.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentsignals import semconv as sc
from agentsignals._instrument.runtime import internal_error

if TYPE_CHECKING:
    from agentsignals._instrument.hooks import AttemptHook
    from agentsignals._instrument.spans import AttemptHandle, TrialHandle, TurnHandle
    from agentsignals._instrument.workspace import WorkspaceTracker

_SCOPE_KEY = otel_context.create_key("agent_signals.scope")
_TRACECONTEXT = TraceContextTextMapPropagator()

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int]


class TrialState:
    """Mutable per-trial bookkeeping shared by the trial's attempts."""

    __slots__ = ("attempts_started", "handle", "run_id", "task_id", "trial_id")

    def __init__(
        self,
        trial_id: str,
        task_id: str,
        handle: TrialHandle | None = None,
        run_id: str | None = None,
    ) -> None:
        self.trial_id = trial_id
        self.task_id = task_id
        self.attempts_started = itertools.count()
        self.handle = handle
        self.run_id = run_id


class AttemptState:
    """Mutable per-attempt bookkeeping: turn numbering and the workspace tracker."""

    __slots__ = (
        "attempt_id",
        "current_turn",
        "edited_files",
        "faults",
        "handle",
        "index",
        "next_turn",
        "product",
        "user_turns",
        "workspace",
    )

    def __init__(self, attempt_id: str, index: int, handle: AttemptHandle | None = None) -> None:
        self.attempt_id = attempt_id
        self.index = index
        self.next_turn = itertools.count()
        # The last turn started: tools run after a turn block still belong to it.
        self.current_turn: int | None = None
        self.workspace: WorkspaceTracker | None = None
        self.handle = handle
        # Faults injected into this attempt (agentsignals.faults); None for almost every run.
        self.faults: AttemptHook | None = None
        # A product session (context="product"): its tool calls record edit regions, and
        # the files they changed are read against git when it ends.
        self.product = False
        self.edited_files: set[str] = set()
        self.user_turns = itertools.count()


class Scope:
    """Immutable identity of the innermost trial/attempt/turn, stored in the OTel context."""

    __slots__ = ("attempt", "identity", "trial", "turn", "turn_index")

    def __init__(
        self,
        trial: TrialState | None,
        attempt: AttemptState | None,
        turn_index: int | None,
        turn: TurnHandle | None = None,
    ) -> None:
        self.trial = trial
        self.attempt = attempt
        self.turn_index = turn_index
        self.turn = turn
        identity: dict[str, AttributeValue] = {}
        if trial is not None:
            identity[sc.AGENT_SIGNALS_TRIAL_ID] = trial.trial_id
        if attempt is not None:
            identity[sc.AGENT_SIGNALS_ATTEMPT_ID] = attempt.attempt_id
            identity[sc.AGENT_SIGNALS_ATTEMPT_INDEX] = attempt.index
        if turn_index is not None:
            identity[sc.AGENT_SIGNALS_TURN_INDEX] = turn_index
        self.identity = identity

    def identity_for_tool(self) -> dict[str, AttributeValue]:
        """Identity for a tool span: the enclosing turn, or the attempt's latest turn."""
        if self.turn_index is None and self.attempt is not None:
            turn = self.attempt.current_turn
            if turn is not None:
                return {**self.identity, sc.AGENT_SIGNALS_TURN_INDEX: turn}
        return self.identity


EMPTY_SCOPE = Scope(None, None, None)


def current_scope(ctx: otel_context.Context | None = None) -> Scope:
    value = otel_context.get_value(_SCOPE_KEY, ctx)
    return value if isinstance(value, Scope) else EMPTY_SCOPE


def context_with_scope(
    scope: Scope, ctx: otel_context.Context | None = None
) -> otel_context.Context:
    return otel_context.set_value(_SCOPE_KEY, scope, ctx)


# The parent process's context (TRACEPARENT / TRACESTATE / BAGGAGE), loaded once on first use.
_env_parent: otel_context.Context | None = None
_env_parent_loaded = False


def set_env_parent(ctx: otel_context.Context | None) -> None:
    global _env_parent, _env_parent_loaded
    _env_parent = ctx
    _env_parent_loaded = True


def parent_context() -> otel_context.Context:
    """Where new spans start: the current context, else the parent process's (TRACEPARENT)."""
    ctx = otel_context.get_current()
    if trace.get_current_span(ctx) is not INVALID_SPAN:
        return ctx
    if not _env_parent_loaded:
        set_env_parent(context_from_environ())
    return _env_parent if _env_parent is not None else ctx


def context_from_environ(environ: Mapping[str, str] | None = None) -> otel_context.Context | None:
    """The parent process's context from TRACEPARENT/TRACESTATE/BAGGAGE, or None."""
    if environ is None:
        environ = os.environ
    elif not isinstance(environ, Mapping):
        from agentsignals._instrument.args import dropped

        dropped("propagate.context_from_environ(environ=)", "expected a mapping")
        return None
    try:
        traceparent = environ.get("TRACEPARENT")
        if not traceparent:
            return None
        carrier = {"traceparent": traceparent}
        if environ.get("TRACESTATE"):
            carrier["tracestate"] = environ["TRACESTATE"]
        ctx = _TRACECONTEXT.extract(carrier, context=otel_context.Context())
        if not trace.get_current_span(ctx).get_span_context().is_valid:
            return None
        identity = _parse_baggage(environ.get("BAGGAGE", ""))
        return context_with_scope(_scope_from_identity(identity), ctx)
    except Exception:
        internal_error("could not read the parent trace context from the environment")
        return None


# A BAGGAGE header is at most 8192 bytes (W3C); identity values beyond these bounds are refused.
_MAX_BAGGAGE_CHARS = 8192
_MAX_INDEX = 2**31 - 1
_MAX_ID_CHARS = 256


def _parse_baggage(header: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for member in header[:_MAX_BAGGAGE_CHARS].split(","):
        name, sep, value = member.split(";", 1)[0].partition("=")
        if sep:
            values[unquote(name.strip())] = unquote(value.strip())
    return values


def _index(value: str | None) -> int | None:
    """A turn or attempt index from BAGGAGE: a small non-negative decimal, else None."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if number <= _MAX_INDEX else None


def _identifier(value: str | None) -> str | None:
    if value is None or not value or len(value) > _MAX_ID_CHARS:
        return None
    return value


def _scope_from_identity(identity: Mapping[str, str]) -> Scope:
    """The parent process's trial and attempt, as far as its BAGGAGE holds valid values; a
    value out of bounds (a turn index of 10**18, an id of a megabyte) is ignored, never
    looped over or raised."""
    trial = None
    trial_id = _identifier(identity.get(sc.AGENT_SIGNALS_TRIAL_ID))
    if trial_id is not None:
        trial = TrialState(trial_id, _identifier(identity.get(sc.AGENT_SIGNALS_TASK_ID)) or "")
    attempt = None
    attempt_id = _identifier(identity.get(sc.AGENT_SIGNALS_ATTEMPT_ID))
    if attempt_id is not None:
        attempt = AttemptState(
            attempt_id, _index(identity.get(sc.AGENT_SIGNALS_ATTEMPT_INDEX)) or 0
        )
        turn = _index(identity.get(sc.AGENT_SIGNALS_TURN_INDEX))
        if turn is not None:
            attempt.current_turn = turn
            # Turns the child starts continue after the parent's.
            attempt.next_turn = itertools.count(turn + 1)
    return Scope(trial, attempt, None)
