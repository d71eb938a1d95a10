"""`trace_trial`, `trace_attempt`, `trace_turn`, `trace_tool`: the context managers as decorators.

Built on a small descriptor-aware wrapper (`wrapper.py`, wrapt's semantics without its import
cost) so signatures, `inspect.is*function` and descriptor binding survive in any decorator
order. Everything that can be decided once (call kind, signature, static attributes)
is decided at decoration time; the per-call path only builds the span. Generator spans cover the
whole iteration and attach their context only while the generator body runs, so nothing leaks
into the consumer between items, and they end on exhaustion, close, break, error or cancellation.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, TypeVar, overload

from opentelemetry import context as otel_context

from agentsignals import semconv as sc
from agentsignals._classify.tools import (
    _EDITOR_TOOLS,
    FILE_ARGUMENT_KEYS,
    _normalise,
    category_for,
    describe_call,
    shell_command,
)
from agentsignals._instrument import capture
from agentsignals._instrument.args import as_attributes, as_str
from agentsignals._instrument.deferred import Pending
from agentsignals._instrument.runtime import RUNTIME, internal_error
from agentsignals._instrument.scope import AttributeValue
from agentsignals._instrument.spans import (
    AttemptHandle,
    ToolHandle,
    TrialHandle,
    TurnHandle,
    _SpanHandle,
)
from agentsignals._instrument.wrapper import FunctionWrapper

F = TypeVar("F", bound=Callable[..., Any])

_SYNC, _ASYNC, _GEN, _ASYNC_GEN = range(4)
_TASK_ID_PARAMS = ("task_id", "instance_id")


class _Target:
    """What is known about a decorated callable at decoration time."""

    __slots__ = (
        "call_kind",
        "is_static",
        "param_names",
        "plain_params",
        "signature",
        "signature_bound",
    )

    def __init__(self, func: Any) -> None:
        self.is_static = isinstance(func, staticmethod)
        underlying = func.__func__ if isinstance(func, classmethod | staticmethod) else func
        if inspect.isasyncgenfunction(underlying):
            self.call_kind = _ASYNC_GEN
        elif inspect.isgeneratorfunction(underlying):
            self.call_kind = _GEN
        elif inspect.iscoroutinefunction(underlying):
            self.call_kind = _ASYNC
        else:
            self.call_kind = _SYNC
        try:
            self.signature: inspect.Signature | None = inspect.signature(underlying)
        except (TypeError, ValueError):
            self.signature = None
        params = list(self.signature.parameters.values()) if self.signature else []
        self.param_names = [p.name for p in params]
        # Signature of the call as the wrapper sees it once bound to an instance or class.
        self.signature_bound = (
            self.signature.replace(parameters=params[1:]) if self.signature and params else None
        )
        # Only named parameters that may be passed either way (the usual tool): the call's
        # arguments by name are then computed without inspect's general binding.
        plain = bool(params) and all(p.kind == p.POSITIONAL_OR_KEYWORD for p in params)
        self.plain_params = tuple(self.param_names) if plain else None

    def arguments(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The call's arguments by name, without self/cls (only computed when needed); what
        `Signature.bind_partial(...).arguments` gives."""
        bound = instance is not None and not self.is_static
        names = self.plain_params
        if names is not None:
            if bound:
                names = names[1:]
            if len(args) <= len(names):
                if not kwargs:
                    return dict(zip(names, args, strict=False))
                taken = names[: len(args)]
                if all(k in names and k not in taken for k in kwargs):
                    out = dict(zip(taken, args, strict=True))
                    for name in names[len(args) :]:
                        if name in kwargs:
                            out[name] = kwargs[name]
                    return out
        sig = self.signature_bound if bound else self.signature
        if sig is None:
            return {"args": list(args), **kwargs}
        try:
            bound_args = sig.bind_partial(*args, **kwargs)
        except TypeError:
            return {"args": list(args), **kwargs}
        return dict(bound_args.arguments)

    def find(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]
    ) -> Any:
        """The value of the first parameter named in `names`, or None."""
        for name in names:
            if name in kwargs:
                return kwargs[name]
        offset = 1 if instance is not None and not self.is_static else 0
        for name in names:
            if name in self.param_names:
                pos = self.param_names.index(name) - offset
                if 0 <= pos < len(args):
                    return args[pos]
        return None


def _wrap(
    func: Any, make: Callable[[_Target, Any, tuple[Any, ...], dict[str, Any]], _SpanHandle]
) -> Any:
    target = _Target(func)
    kind = target.call_kind

    def start(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _SpanHandle | None:
        try:
            handle = make(target, instance, args, kwargs)
            handle.__enter__()
            return handle
        except Exception:
            internal_error("could not start span for a decorated call")
            return None

    if kind == _SYNC:

        def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            handle = start(instance, args, kwargs)
            if handle is None:
                return wrapped(*args, **kwargs)
            try:
                fault = handle._fault  # a fault injected into this tool call, almost never
                if fault is None:
                    result = wrapped(*args, **kwargs)
                else:
                    result = fault.run(lambda: wrapped(*args, **kwargs))
            except BaseException as exc:
                handle.__exit__(type(exc), exc, None)
                raise
            _returned(handle, result)
            handle.__exit__(None, None, None)
            return result

        return FunctionWrapper(func, sync_wrapper)

    if kind == _ASYNC:

        def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            async def run() -> Any:
                handle = start(instance, args, kwargs)
                if handle is None:
                    return await wrapped(*args, **kwargs)
                try:
                    fault = handle._fault
                    if fault is None:
                        result = await wrapped(*args, **kwargs)
                    else:
                        result = await fault.run_async(lambda: wrapped(*args, **kwargs))
                except BaseException as exc:
                    handle.__exit__(type(exc), exc, None)
                    raise
                _returned(handle, result)
                handle.__exit__(None, None, None)
                return result

            return run()

        return FunctionWrapper(func, async_wrapper)

    if kind == _GEN:

        def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            inner = wrapped(*args, **kwargs)
            return _traced_generator(lambda: start(instance, args, kwargs), inner)

        return FunctionWrapper(func, gen_wrapper)

    def agen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        inner = wrapped(*args, **kwargs)
        return _traced_async_generator(lambda: start(instance, args, kwargs), inner)

    return FunctionWrapper(func, agen_wrapper)


def _returned(handle: _SpanHandle, result: Any) -> None:
    if isinstance(handle, ToolHandle):
        handle.record_result(result)


def _enter_detached(handle: _SpanHandle | None) -> otel_context.Context | None:
    """Start the span, then give the consumer its context back; return the span's context."""
    if handle is None:
        return None
    try:
        inside = otel_context.get_current()
        token = handle._token
        handle._token = None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        return inside
    except Exception:
        internal_error("could not detach generator context")
        return None


def _traced_generator(
    start: Callable[[], _SpanHandle | None], inner: Generator[Any, Any, Any]
) -> Generator[Any, Any, Any]:
    handle = start()
    inside = _enter_detached(handle)
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(inside) if inside is not None else None
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = inner.throw(exc)
                else:
                    item = inner.send(to_send)
            except StopIteration as stop:
                result = stop.value
                break
            finally:
                if token is not None:
                    otel_context.detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                token = otel_context.attach(inside) if inside is not None else None
                try:
                    inner.close()
                finally:
                    if token is not None:
                        otel_context.detach(token)
                raise
            except BaseException as exc:  # thrown in by the consumer: forward it
                to_throw, to_send = exc, None
    except BaseException as exc:
        if handle is not None:
            handle._finish(exc)
        raise
    if handle is not None:
        handle._finish(None)
    return result


async def _traced_async_generator(
    start: Callable[[], _SpanHandle | None], inner: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, Any]:
    handle = start()
    inside = _enter_detached(handle)
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(inside) if inside is not None else None
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = await inner.athrow(exc)
                else:
                    item = await inner.asend(to_send)
            except StopAsyncIteration:
                break
            finally:
                if token is not None:
                    otel_context.detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                token = otel_context.attach(inside) if inside is not None else None
                try:
                    await inner.aclose()
                finally:
                    if token is not None:
                        otel_context.detach(token)
                raise
            except BaseException as exc:
                to_throw, to_send = exc, None
    except BaseException as exc:
        if handle is not None:
            handle._finish(exc)
        raise
    if handle is not None:
        handle._finish(None)


# ------------------------------------------------------------------------------- public API


def _func_name(func: Any) -> str:
    underlying = func.__func__ if isinstance(func, classmethod | staticmethod) else func
    return str(getattr(underlying, "__name__", "tool"))


@overload
def trace_tool(func: F, /) -> F: ...
@overload
def trace_tool(
    name: str | None = None,
    /,
    *,
    category: str | None = None,
    tool_type: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Callable[[F], F]: ...
def trace_tool(
    func: Any = None,
    /,
    *,
    category: str | None = None,
    tool_type: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Trace each call of the decorated function as a tool span (`execute_tool {name}`).

    Usable bare (`@trace_tool`), with a name (`@trace_tool("bash")`) or with options
    (`@trace_tool(category="edit")`). The category is inferred from the tool name unless given;
    the return value is recorded as the result (a CompletedProcess gives the exit code).
    """
    if isinstance(func, str) or func is None:
        name = func
        return lambda f: _wrap(f, _tool_factory(f, name, category, tool_type, attributes))
    return _wrap(func, _tool_factory(func, None, category, tool_type, attributes))


def _tool_factory(
    func: Any,
    name: str | None,
    category: str | None,
    tool_type: str | None,
    attributes: Mapping[str, AttributeValue] | None,
) -> Callable[[_Target, Any, tuple[Any, ...], dict[str, Any]], _SpanHandle]:
    tool_name = as_str(name, "trace_tool(name=)") or _func_name(func)
    category = as_str(category, "trace_tool(category=)")
    tool_type = as_str(tool_type, "trace_tool(tool_type=)")
    attributes = as_attributes(attributes, "trace_tool(attributes=)")
    static_category = category or category_for(tool_name).value
    # Shell and editor tools are refined by their arguments (a grep, a pytest run, a view).
    refine = category is None and (
        static_category == sc.ToolCategory.SHELL or _normalise(tool_name) in _EDITOR_TOOLS
    )
    # Tools that name files in their arguments (`read_file(path)`) record them, as imports do;
    # decided once from the signature, so other tools never bind their arguments for it.
    params = _Target(func).param_names
    names_files = refine or any(p in FILE_ARGUMENT_KEYS for p in params)
    base: dict[str, AttributeValue] = {
        sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationName.EXECUTE_TOOL.value,
        sc.GEN_AI_TOOL_NAME: tool_name,
        sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.TOOL.value,
        sc.AGENT_SIGNALS_TOOL_CATEGORY: static_category,
    }
    if tool_type is not None:
        base[sc.GEN_AI_TOOL_TYPE] = tool_type
    if attributes:
        base.update(attributes)
    trusted = not attributes  # every value made here: written straight into the span
    span_name = f"execute_tool {tool_name}"
    # A shell tool's command may be read on the export path (agentsignals._instrument.deferred).
    shell = refine and static_category == sc.ToolCategory.SHELL

    def make(
        target: _Target, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _SpanHandle:
        settings = RUNTIME.settings
        attrs = dict(base)
        arguments: dict[str, Any] | None = None
        pending = None
        if names_files or settings.capture_content:
            arguments = target.arguments(instance, args, kwargs)
            if shell and not settings.capture_content and shell_command(arguments) is not None:
                pending = Pending(tool_name, arguments, None, None)
            elif names_files:
                facts = describe_call(tool_name, arguments, category=category)
                if refine:
                    attrs[sc.AGENT_SIGNALS_TOOL_CATEGORY] = facts.category
                if facts.files:
                    attrs[sc.AGENT_SIGNALS_TOOL_FILES] = tuple(facts.files)
                if facts.runner is not None:
                    attrs[sc.AGENT_SIGNALS_TEST_RUNNER] = facts.runner
                if not facts.command_complete:
                    attrs[sc.AGENT_SIGNALS_TOOL_COMMAND_COMPLETE] = False
        if settings.fingerprint_tools:
            attrs[sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT] = capture.fingerprint(
                tool_name, args, kwargs
            )
        return ToolHandle._prepared(tool_name, span_name, attrs, arguments, trusted, pending)

    return make


def _simple_decorator(
    func: Any,
    factory: Callable[
        [Any], Callable[[_Target, Any, tuple[Any, ...], dict[str, Any]], _SpanHandle]
    ],
) -> Any:
    if func is None:
        return lambda f: _wrap(f, factory(f))
    return _wrap(func, factory(func))


def _fixed_handle(func: Any, new_handle: Callable[[], _SpanHandle]) -> Any:
    """A decorator whose handle does not depend on the call's arguments."""

    def factory(f: Any) -> Callable[[_Target, Any, tuple[Any, ...], dict[str, Any]], _SpanHandle]:
        return lambda target, instance, args, kwargs: new_handle()

    return _simple_decorator(func, factory)


def trace_trial(
    func: Any = None,
    /,
    *,
    task_id: str | None = None,
    dataset: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Trace each call as a trial. The task id is `task_id=`, else the value of the function's
    `task_id` or `instance_id` parameter, else the function's name."""

    def factory(f: Any) -> Callable[[_Target, Any, tuple[Any, ...], dict[str, Any]], _SpanHandle]:
        given = as_str(task_id, "trace_trial(task_id=)")
        fallback = given or _func_name(f)

        def make(
            target: _Target, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> _SpanHandle:
            found = None if given else target.find(instance, args, kwargs, _TASK_ID_PARAMS)
            text = as_str(found, "trace_trial(task_id)") if found is not None else None
            return TrialHandle(
                text or fallback,
                dataset=dataset,
                attributes=attributes,
            )

        return make

    return _simple_decorator(func, factory)


def trace_attempt(
    func: Any = None,
    /,
    *,
    agent_type: str | None = None,
    model_id: str | None = None,
    dataset: str | None = None,
    attempt1_tool_cap: int | None = None,
    retry_tool_cap: int | None = None,
    concurrency: int | None = None,
    timeout_s: float | None = None,
    agent_name: str | None = None,
    provider: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Trace each call as an attempt; its index follows the attempts already started in the
    enclosing trial."""
    options = {
        "agent_type": agent_type,
        "model_id": model_id,
        "dataset": dataset,
        "attempt1_tool_cap": attempt1_tool_cap,
        "retry_tool_cap": retry_tool_cap,
        "concurrency": concurrency,
        "timeout_s": timeout_s,
        "agent_name": agent_name,
        "provider": provider,
        "attributes": attributes,
    }

    return _fixed_handle(func, lambda: AttemptHandle(**options))  # type: ignore[arg-type]


def trace_turn(
    func: Any = None,
    /,
    *,
    model: str | None = None,
    provider: str | None = None,
    phase: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Trace each call as a turn (one model call and the tool calls it requests)."""

    return _fixed_handle(
        func, lambda: TurnHandle(model=model, provider=provider, phase=phase, attributes=attributes)
    )
