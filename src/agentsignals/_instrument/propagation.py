"""Carry the trace context across threads, executors and subprocesses.

contextvars follow asyncio tasks on their own, but not threads started by hand or pool workers,
and nothing follows a subprocess. A coding agent's tools are mostly subprocesses (shell, pytest,
git), so we put the W3C trace context into their environment as TRACEPARENT/TRACESTATE (OTEP 258)
and our identity (trial, attempt, turn) into BAGGAGE; a child that uses agentsignals picks them
up and joins the parent's trace.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentsignals import semconv as sc
from agentsignals._instrument.args import dropped
from agentsignals._instrument.runtime import internal_error
from agentsignals._instrument.scope import current_scope, parent_context

P = ParamSpec("P")
R = TypeVar("R")

_TRACECONTEXT = TraceContextTextMapPropagator()
_ENV_KEYS = {"traceparent": "TRACEPARENT", "tracestate": "TRACESTATE", "baggage": "BAGGAGE"}
_IDENTITY_KEYS = (
    sc.AGENT_SIGNALS_TRIAL_ID,
    sc.AGENT_SIGNALS_TASK_ID,
    sc.AGENT_SIGNALS_ATTEMPT_ID,
    sc.AGENT_SIGNALS_ATTEMPT_INDEX,
    sc.AGENT_SIGNALS_TURN_INDEX,
)


# -------------------------------------------------------------------------------- threads


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind `fn` to the current context, for running it in another thread or a pool."""
    ctx = otel_context.get_current()

    @functools.wraps(fn)
    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        token = otel_context.attach(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return run_in_context


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the context they were submitted from."""

    def submit(
        self, fn: Callable[..., R], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[R]:
        return super().submit(wrap(fn), *args, **kwargs)


class Thread(threading.Thread):
    """A Thread whose target runs in the context `start()` was called from."""

    def start(self) -> None:
        self._agentsignals_context = otel_context.get_current()
        super().start()

    def run(self) -> None:
        ctx = getattr(self, "_agentsignals_context", None)
        if ctx is None:
            super().run()
            return
        token = otel_context.attach(ctx)
        try:
            super().run()
        finally:
            otel_context.detach(token)


# ------------------------------------------------------------------------------ subprocesses


def inject_env(env: MutableMapping[str, str], ctx: otel_context.Context | None = None) -> None:
    """Write TRACEPARENT, TRACESTATE and BAGGAGE for the current (or given) context into `env`.
    Never raises: an `env` that cannot take them is left as it is (logged)."""
    if not isinstance(env, MutableMapping):
        dropped("propagate.inject_env(env=)", "expected a mutable mapping such as a dict")
        return
    if ctx is not None and not isinstance(ctx, otel_context.Context):
        dropped("propagate.inject_env(ctx=)", "expected an OpenTelemetry Context")
        ctx = None
    try:
        _inject_env(env, ctx)
    except Exception:
        internal_error("could not inject trace context into an environment")


def _inject_env(env: MutableMapping[str, str], ctx: otel_context.Context | None) -> None:
    if any(not isinstance(key, str) for key in env):
        return  # a bytes environment (allowed by Popen on POSIX): mixing key types breaks it
    ctx = ctx if ctx is not None else parent_context()
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return
    carrier: dict[str, str] = {}
    _TRACECONTEXT.inject(carrier, context=ctx)
    for key, value in carrier.items():
        env[_ENV_KEYS.get(key, key.upper())] = value
    entries = [f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in _baggage(ctx)]
    if entries:
        env["BAGGAGE"] = ",".join(entries)
    else:
        env.pop("BAGGAGE", None)


def _baggage(ctx: otel_context.Context) -> list[tuple[str, object]]:
    entries = [(k, v) for k, v in otel_baggage.get_all(ctx).items() if k not in _IDENTITY_KEYS]
    scope = current_scope(ctx)
    if scope.trial is not None:
        entries.append((sc.AGENT_SIGNALS_TRIAL_ID, scope.trial.trial_id))
        entries.append((sc.AGENT_SIGNALS_TASK_ID, scope.trial.task_id))
    identity = scope.identity_for_tool()
    for key in (
        sc.AGENT_SIGNALS_ATTEMPT_ID,
        sc.AGENT_SIGNALS_ATTEMPT_INDEX,
        sc.AGENT_SIGNALS_TURN_INDEX,
    ):
        if key in identity:
            entries.append((key, identity[key]))
    return entries


def subprocess_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `env` (default: os.environ) with the trace context for a child process."""
    source: Mapping[str, str] = os.environ
    if env is not None:
        if isinstance(env, Mapping):
            source = env
        else:
            dropped("propagate.subprocess_env(env=)", "expected a mapping; using os.environ")
    try:
        result = dict(source)
    except Exception:
        dropped("propagate.subprocess_env(env=)", "could not copy the mapping; using os.environ")
        result = dict(os.environ)
    inject_env(result)
    return result


# Index of `env` in the positional arguments of Popen(args, bufsize, executable, stdin, stdout,
# stderr, preexec_fn, close_fds, shell, cwd, env, ...).
_POPEN_ENV_POSITION = 10

# The original Popen.__init__ while patched; None when not patched.
_original_popen_init: Callable[..., None] | None = None
_patch_lock = threading.Lock()


def patch_subprocess() -> None:
    """Opt-in: every `subprocess.Popen` (so `run`, `check_output`, asyncio subprocesses) started
    inside a span gets TRACEPARENT/TRACESTATE/BAGGAGE in its environment. Idempotent."""
    global _original_popen_init
    with _patch_lock:
        if _original_popen_init is not None:
            return
        original = subprocess.Popen.__init__
        _original_popen_init = original

        @functools.wraps(original)
        def __init__(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            try:
                # `env` is Popen's 11th parameter: given by position, it is left as it is.
                if len(args) <= _POPEN_ENV_POSITION:
                    ctx = parent_context()
                    if trace.get_current_span(ctx).get_span_context().is_valid:
                        env = kwargs.get("env")
                        if env is None or (
                            isinstance(env, Mapping)
                            and "TRACEPARENT" not in env
                            and all(isinstance(k, str) for k in env)
                        ):
                            new_env = dict(os.environ if env is None else env)
                            _inject_env(new_env, ctx)
                            kwargs["env"] = new_env
            except Exception:
                internal_error("could not inject trace context into a subprocess")
            original(self, *args, **kwargs)

        subprocess.Popen.__init__ = __init__  # type: ignore[method-assign]


def unpatch_subprocess() -> None:
    """Undo `patch_subprocess()`."""
    global _original_popen_init
    with _patch_lock:
        if _original_popen_init is not None:
            subprocess.Popen.__init__ = _original_popen_init  # type: ignore[method-assign]
            _original_popen_init = None
