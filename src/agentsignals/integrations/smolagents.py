"""smolagents: `ToolCallingAgent` and `CodeAgent` runs, model calls and tool calls.

    agentsignals.instrument("smolagents")

- **attempt**: each `agent.run(task)` outside an attempt opens a trial (task id: the
  `task_id` option, else a digest of the task) and an attempt. A run that reaches `max_steps`
  ends as `max_turns` (smolagents then asks the model for a final answer, which is one more
  turn), a final answer as `submitted`.
- **turn**: each call to the agent's model (`generate` / `generate_stream`: action steps,
  planning steps and the final answer), named by the agent (`agent_signals.turn.module`), with
  the usage of the provider's response (cache reads included when the API reports them) and an
  estimated cost.
- **tool**: each tool call, with its arguments and result: ToolCallingAgent's calls, and the
  tools a CodeAgent's code calls. Code a CodeAgent runs without calling a tool is not a tool
  call. Runs with `stream=True` are passed through untraced.

The agent's model and tools are wrapped for the duration of the run only (through proxies,
whatever else wraps smolagents' classes), so with OpenInference's smolagents instrumentor on,
its LLM and TOOL spans nest under our turns and tools.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from opentelemetry import context as otel_context

from agentsignals import semconv as sc
from agentsignals._instrument.runtime import internal_error, logger
from agentsignals._instrument.scope import current_scope
from agentsignals._instrument.spans import ToolHandle, TurnHandle
from agentsignals.integrations._common import (
    AUTO,
    AutoAttempt,
    Patch,
    in_attempt,
    patch,
    provider_of,
    record_usage,
    resolve_workspace,
    unpatch,
)

NAME = "smolagents"
_lock = threading.Lock()
_patched: list[Patch] = []
_options: dict[str, Any] = {}


def instrument(
    *, task_id: str | None = None, run_id: str | None = None, workspace: str | None = AUTO
) -> bool:
    try:
        from smolagents.agents import MultiStepAgent
    except ImportError:
        logger.warning("agentsignals: smolagents is not installed; its integration is off")
        return False
    try:
        with _lock:
            _options.update(task_id=task_id, run_id=run_id, workspace=workspace)
            patch(MultiStepAgent, "run", _make_run, _patched)
        return True
    except Exception:
        internal_error("could not instrument smolagents")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)


def _make_run(original: Any) -> Any:
    @functools.wraps(original)
    def run(self: Any, task: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("stream") or (args and args[0] is True):
            return original.__get__(self, type(self))(task, *args, **kwargs)
        auto = AutoAttempt()
        saved_model, saved_tools = self.model, dict(self.tools)
        agent_name = getattr(self, "name", None) or type(self).__name__
        try:
            model_id = getattr(saved_model, "model_id", None)
            model_id = str(model_id) if model_id else None
            auto.enter(
                NAME,
                task=task,
                task_id=_options.get("task_id"),
                run_id=_options.get("run_id"),
                agent_name=str(agent_name),
                agent_type=f"smolagents.{type(self).__name__}",
                model=model_id,
                provider=provider_of(model_id, getattr(saved_model, "api_base", None)),
                workspace=resolve_workspace(_options.get("workspace", AUTO), None),
            )
            run_context = otel_context.get_current()
            self.model = _ModelProxy(saved_model, str(agent_name))
            self.tools = {
                name: _ToolProxy(tool, str(name), run_context) for name, tool in saved_tools.items()
            }
        except Exception:
            internal_error("smolagents: could not start the run")
        error: BaseException | None = None
        try:
            # Bound through the descriptor: `original` may be another instrumentor's wrapper.
            return original.__get__(self, type(self))(task, *args, **kwargs)
        except BaseException as e:
            error = e
            raise
        finally:
            try:
                self.model, self.tools = saved_model, saved_tools
                auto.exit(error, None if error else _exit_reason(self))
            except Exception:
                internal_error("smolagents: could not end the run")

    return run


def _exit_reason(agent: Any) -> str:
    try:
        for step in reversed(agent.memory.steps):
            err = getattr(step, "error", None)
            if err is not None and type(err).__name__ == "AgentMaxStepsError":
                return sc.AttemptExitReason.MAX_TURNS.value
    except Exception:
        pass
    return sc.AttemptExitReason.SUBMITTED.value


def _base() -> Any:
    import wrapt

    return wrapt.ObjectProxy


class _ModelProxy(_base()):  # type: ignore[misc]
    """The agent's model for the duration of a run: each generate() is a turn."""

    def __init__(self, model: Any, agent_name: str) -> None:
        super().__init__(model)
        self._self_agent = agent_name

    def _turn(self) -> TurnHandle:
        model_id = getattr(self.__wrapped__, "model_id", None)
        model_id = str(model_id) if model_id else None
        return TurnHandle(
            model=model_id,
            provider=provider_of(model_id, getattr(self.__wrapped__, "api_base", None)),
            attributes={sc.AGENT_SIGNALS_TURN_MODULE: self._self_agent},
        )

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if not in_attempt():
            return self.__wrapped__.generate(*args, **kwargs)
        with self._turn() as turn:
            message = self.__wrapped__.generate(*args, **kwargs)
            _record(turn, message)
            return message

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.generate(*args, **kwargs)

    def generate_stream(self, *args: Any, **kwargs: Any) -> Any:
        if not in_attempt():
            yield from self.__wrapped__.generate_stream(*args, **kwargs)
            return
        turn = self._turn()
        turn.__enter__()
        # The consumer runs between chunks: hold no context across yields.
        token = turn._token
        turn._token = None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        last_usage = None
        try:
            for delta in self.__wrapped__.generate_stream(*args, **kwargs):
                usage = getattr(delta, "token_usage", None)
                if usage is not None:
                    last_usage = usage
                yield delta
        except BaseException as e:
            turn.__exit__(type(e), e, None)
            raise
        if last_usage is not None:
            record_usage(turn, last_usage, model=_model_id(self.__wrapped__))
        turn.__exit__(None, None, None)


def _model_id(model: Any) -> str | None:
    value = getattr(model, "model_id", None)
    return str(value) if value else None


def _record(turn: TurnHandle, message: Any) -> None:
    try:
        raw = getattr(message, "raw", None)
        usage = getattr(raw, "usage", None) if raw is not None else None
        model = turn._attrs.get(sc.GEN_AI_REQUEST_MODEL)
        provider = turn._attrs.get(sc.GEN_AI_PROVIDER_NAME)
        if usage is None:
            usage = getattr(message, "token_usage", None)
        response_model = getattr(raw, "model", None)
        if isinstance(response_model, str):
            turn.record_model(response=response_model)
        record_usage(
            turn,
            usage,
            model=str(model) if model else None,
            provider=str(provider) if provider else None,
        )
    except Exception:
        internal_error("smolagents: could not record usage")


class _ToolProxy(_base()):  # type: ignore[misc]
    """One of the agent's tools for the duration of a run: each call is a tool span."""

    def __init__(self, tool: Any, name: str, run_context: otel_context.Context) -> None:
        super().__init__(tool)
        self._self_name = name
        self._self_context = run_context

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = None
        if current_scope().attempt is None:
            # Parallel tool calls run in worker threads without our context.
            token = otel_context.attach(self._self_context)
        try:
            arguments = {k: v for k, v in kwargs.items() if k != "sanitize_inputs_outputs"}
            if args and not arguments:
                arguments = args[0] if isinstance(args[0], dict) else {"input": args[0]}
            with ToolHandle(self._self_name, arguments=arguments) as handle:
                # Through the call's injected fault, if any (agentsignals.faults): a failed or
                # timed-out call raises here, and smolagents hands the error to the model as
                # it does for any tool that raises.
                result = handle.run(lambda: self.__wrapped__(*args, **kwargs))
                if isinstance(result, str | bytes):
                    handle.record_result(result)
                elif result is not None:
                    handle.record_result(str(result))
                return result
        finally:
            if token is not None:
                otel_context.detach(token)
