"""Recovery evals: break the state of a live agent run on purpose, and see whether it notices.

An eval that always starts from a clean state never tests recovery. A fault plan breaks an
attempt at a chosen point (after step N, after the first edit, after the first passing test
run, at a seeded random step) with faults a coding agent meets in real life, on the workspace
the attempt tracks (``attempt(workspace=...)``) or on its next tool call::

    from agentsignals import faults

    with agentsignals.attempt(workspace=repo) as attempt:
        injector = faults.inject(faults.Fault("truncate_file", trigger="after_first_edit"))
        run_agent()                       # unchanged
    injector.injections                   # what was done, at which step
    injector.undo()                       # put the files back, byte for byte, where untouched

Every attempt started afterwards (any integration, any harness)::

    faults.install(faults.load_plan("faults.yaml"))
    # or, for an agent you do not change: AGENTSIGNALS_FAULTS=faults.yaml python run_agent.py
    # or: agentsignals faults run --plan faults.yaml -- python run_agent.py

Kinds: ``revert_last_edit``, ``corrupt_file``, ``truncate_file``, ``add_failing_test``,
``delete_created_file``, ``break_dependency`` (workspace); ``tool_error``, ``tool_timeout``,
``stale_output`` (the next tool call). A tool whose body a fault does not run raises
:class:`InjectedToolError` or :class:`InjectedToolTimeout` (a ``TimeoutError``) to the agent,
as a failing tool would; integrations that run tool calls give the framework's own failure
(mini-swe-agent: what its ``LocalEnvironment`` returns on a failed or timed-out command;
smolagents: the exception, which it reports to the model; LangChain: an error ``ToolMessage``
for a model's tool call). Integrations that only observe calls (DSPy, OpenAI Agents SDK,
Claude Agent SDK) cannot apply tool faults: they stay pending, with one warning. Each
injection is an ``agent_signals.fault.injected`` event on the attempt span, and
``agentsignals features`` derives the ``recovery.*`` signals from it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable

from agentsignals._faults.inject import Injection, Injector, UndoResult, attach
from agentsignals._faults.plan import (
    KINDS,
    TRIGGERS,
    Fault,
    FaultPlan,
    PlanError,
    load_plan,
    parse_plan,
)
from agentsignals._instrument.hooks import (
    ATTEMPT_STARTED,
    InjectedToolError,
    InjectedToolTimeout,
)
from agentsignals._instrument.scope import AttemptState, current_scope
from agentsignals._instrument.spans import AttemptHandle

__all__ = [
    "ENV_VAR",
    "KINDS",
    "TRIGGERS",
    "Fault",
    "FaultPlan",
    "InjectedToolError",
    "InjectedToolTimeout",
    "Injection",
    "Injector",
    "PlanError",
    "UndoResult",
    "current",
    "inject",
    "install",
    "installed",
    "load_plan",
    "parse_plan",
    "uninstall",
]

ENV_VAR = "AGENTSIGNALS_FAULTS"
"""A fault plan (a YAML or JSON file, or inline JSON) applied to every attempt of the process."""

logger = logging.getLogger("agentsignals")

PlanLike = FaultPlan | Fault | Iterable[Fault]


def _as_plan(plan: PlanLike) -> FaultPlan:
    if isinstance(plan, FaultPlan):
        return plan.with_ids()
    if isinstance(plan, Fault):
        return FaultPlan((plan,)).with_ids()
    return FaultPlan(tuple(plan)).with_ids()


def inject(plan: PlanLike, attempt: AttemptHandle | None = None) -> Injector | None:
    """Attach faults to ``attempt`` (default: the current one), replacing any it had. None
    when there is no active attempt, or the plan's task/attempt filter leaves this one out."""
    plan = _as_plan(plan)
    if attempt is None:
        state = current_scope().attempt
        if state is None or not isinstance(state.handle, AttemptHandle):
            logger.warning("agentsignals.faults.inject: no active attempt; nothing injected")
            return None
        attempt = state.handle
    return attach(plan, attempt, attempt._state)


def current() -> Injector | None:
    """The injector of the current attempt, if it has one."""
    state = current_scope().attempt
    faults = state.faults if state is not None else None
    return faults if isinstance(faults, Injector) else None


class _Installed:
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.injectors: list[Injector] = []

    def __call__(self, attempt: AttemptHandle, state: AttemptState) -> None:
        if state.faults is not None:
            return  # faults given to this attempt by inject() win
        injector = attach(self.plan, attempt, state)
        if injector is not None:
            self.injectors.append(injector)
            del self.injectors[:-1000]  # bounded: the latest attempts


def install(plan: PlanLike) -> None:
    """Give every attempt started from now on (in this process) its own injector for this
    plan (replacing an installed plan)."""
    uninstall()
    ATTEMPT_STARTED.append(_Installed(_as_plan(plan)))


def uninstall() -> None:
    """Stop injecting into new attempts (attempts already running keep their faults)."""
    ATTEMPT_STARTED[:] = [h for h in ATTEMPT_STARTED if not isinstance(h, _Installed)]


def installed() -> FaultPlan | None:
    """The plan every new attempt gets, if one is installed."""
    for hook in ATTEMPT_STARTED:
        if isinstance(hook, _Installed):
            return hook.plan
    return None


def _install_from_environment() -> None:
    """Install the plan ``AGENTSIGNALS_FAULTS`` names (called on ``import agentsignals``). A plan
    that cannot be used is one warning line; the agent runs without faults."""
    spec = os.environ.get(ENV_VAR, "").strip()
    if not spec:
        return
    try:
        install(load_plan(spec))
    except PlanError as exc:
        # On stderr even with logging unset: a recovery eval must not pass silently unbroken.
        print(f"agentsignals: {ENV_VAR}: {exc}; no faults injected", file=sys.stderr)
