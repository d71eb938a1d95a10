"""mini-swe-agent: every `DefaultAgent` (and subclass) run, step and action.

    agentsignals.instrument("mini_swe_agent")

- **attempt**: each `agent.run(task)` outside an attempt opens a trial (task id: the agent's
  `instance_id` as the SWE-bench runner sets it, else the `task_id` option, else a digest of the
  task) and an attempt; the exit status maps to `exit_reason` exactly as the trajectory importer
  maps it (Submitted → submitted, LimitsExceeded → max_turns / cost_limit, TimeExceeded →
  timeout, anything else → error), so a live run and its imported `.traj.json` agree.
- **workspace**: a `LocalEnvironment`'s `cwd` (the repository the agent works in); containers
  (docker, singularity) have no local folder to track.
- **turn**: each `model.query()`, with the response's usage and the cost mini-swe-agent
  computed (LiteLLM's table; `cost_source=framework`), or an estimate when it recorded none. A
  reply that fails to parse (FormatError) is still a turn, with its cost, ending in error.
- **tool**: each action `env.execute()` runs, as `bash` with its command, output size and exit
  code; the action that submits is category `submit`, as on import.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from agentsignals import semconv as sc
from agentsignals._instrument.hooks import InjectedToolError, InjectedToolTimeout
from agentsignals._instrument.runtime import internal_error, logger
from agentsignals._instrument.spans import ToolHandle, TurnHandle
from agentsignals.integrations._common import (
    AUTO,
    AutoAttempt,
    Patch,
    in_attempt,
    patch,
    provider_of,
    record_messages,
    record_usage,
    resolve_workspace,
    unpatch,
)

NAME = "mini_swe_agent"
_lock = threading.Lock()
_patched: list[Patch] = []
_options: dict[str, Any] = {}


def instrument(
    *, task_id: str | None = None, run_id: str | None = None, workspace: str | None = AUTO
) -> bool:
    """Trace mini-swe-agent runs. `workspace`: "auto" (the local environment's cwd), a path,
    or None (no workspace tracking)."""
    try:
        from minisweagent.agents.default import DefaultAgent
    except ImportError:
        logger.warning("agentsignals: mini-swe-agent is not installed; its integration is off")
        return False
    try:
        with _lock:
            _options.update(task_id=task_id, run_id=run_id, workspace=workspace)
            patch(DefaultAgent, "run", _make_run, _patched)
        return True
    except Exception:
        internal_error("could not instrument mini-swe-agent")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)


def _make_run(original: Any) -> Any:
    import functools

    @functools.wraps(original)
    def run(self: Any, task: str = "", **kwargs: Any) -> Any:
        if in_attempt() and getattr(self, "_agentsignals_active", False):
            return original.__get__(self, type(self))(task, **kwargs)  # nested, same agent
        auto = AutoAttempt()
        model, env = self.model, self.env
        try:
            model_name = _model_name(model)
            auto.enter(
                NAME,
                task=task,
                task_id=getattr(self, "instance_id", None) or _options.get("task_id"),
                run_id=_options.get("run_id"),
                agent_name=type(self).__name__,
                agent_type=f"mini-swe-agent.{type(self).__name__}",
                model=model_name,
                provider=provider_of(model_name),
                workspace=resolve_workspace(_options.get("workspace", AUTO), _local_dir(env)),
            )
            self.model, self.env = _ModelProxy(model), _EnvProxy(env)
            self._agentsignals_active = True
        except Exception:
            internal_error("mini-swe-agent: could not start the run")
        result: Any = None
        error: BaseException | None = None
        try:
            # Bound through the descriptor: `original` may be another instrumentor's wrapper.
            result = original.__get__(self, type(self))(task, **kwargs)
            return result
        except BaseException as e:
            error = e
            raise
        finally:
            try:
                self.model, self.env = model, env
                self._agentsignals_active = False
                reason = _exit_reason(self, result, error)
                auto.exit(error, reason)
            except Exception:
                internal_error("mini-swe-agent: could not end the run")

    return run


def _model_name(model: Any) -> str | None:
    config = getattr(model, "config", None)
    name = getattr(config, "model_name", None)
    return str(name) if name else None


def _local_dir(env: Any) -> str | None:
    try:
        from minisweagent.environments.local import LocalEnvironment

        if isinstance(env, LocalEnvironment):
            return str(getattr(env.config, "cwd", "") or os.getcwd())
    except Exception:
        pass
    return None


def _exit_reason(agent: Any, result: Any, error: BaseException | None) -> str | None:
    from agentsignals._import.formats.mini_swe_agent import exit_reason

    status = None
    if isinstance(result, dict):
        status = result.get("exit_status")
    elif error is not None:
        status = type(error).__name__
    config = getattr(agent, "config", None)
    return exit_reason(
        str(status) if status else None,
        api_calls=getattr(agent, "n_calls", None),
        cost=getattr(agent, "cost", None),
        step_limit=getattr(config, "step_limit", None),
        cost_limit=getattr(config, "cost_limit", None),
    )


def _proxy_base() -> type:
    import wrapt

    return wrapt.ObjectProxy


class _ModelProxy(_proxy_base()):  # type: ignore[misc]
    """The agent's model, with each query() made a turn."""

    def query(self, messages: Any, **kwargs: Any) -> Any:
        model = _model_name(self.__wrapped__)
        provider = provider_of(model)
        with TurnHandle(model=model, provider=provider) as turn:
            try:
                message = self.__wrapped__.query(messages, **kwargs)
            except Exception as e:
                extra = _first_extra(getattr(e, "messages", None))
                if extra:
                    _record(turn, extra, model, provider)
                raise
            _record(turn, (message or {}).get("extra") or {}, model, provider)
            _record_reasoning(turn, message)
            record_messages(turn, input=messages, output=message)
            return message


def _record_reasoning(turn: TurnHandle, message: Any) -> None:
    """The provider's reasoning text and the THOUGHT around the command, read exactly as the
    trajectory importer reads them, so a live run and its imported trajectory agree."""
    try:
        from agentsignals._import.formats import mini_swe_agent as imported

        if not isinstance(message, dict):
            return
        extra = message.get("extra") or {}
        raw = extra.get("response")
        response: dict[str, Any] = raw if isinstance(raw, dict) else {}
        # Native reasoning only (thinking blocks, reasoning_content), as the importer reads it:
        # the visible THOUGHT text before the command is not a reasoning block.
        text = imported._native_reasoning(message, response)
        if text:
            turn.record_reasoning(text)
        actions = extra.get("actions") or []
        commands = [a["command"] for a in actions if isinstance(a, dict) and "command" in a]
        turn.record_thought(imported._thought(imported._reply_text(message), commands))
    except Exception:
        internal_error("mini-swe-agent: could not record reasoning")


def _first_extra(messages: Any) -> dict[str, Any] | None:
    if isinstance(messages, list | tuple) and messages and isinstance(messages[0], dict):
        extra = messages[0].get("extra")
        return extra if isinstance(extra, dict) else None
    return None


def _record(
    turn: TurnHandle, extra: dict[str, Any], model: str | None, provider: str | None
) -> None:
    try:
        response = extra.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(response, dict):
            choices = response.get("choices") or []
            reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict)]
            turn.record_model(
                response=response.get("model"),
                finish_reasons=[r for r in reasons if isinstance(r, str)] or None,
            )
        cost = extra.get("cost")
        record_usage(
            turn,
            usage,
            model=model,
            provider=provider,
            reported_cost=float(cost) if isinstance(cost, int | float) and cost > 0 else None,
            cost_source=sc.UsageCostSource.FRAMEWORK.value,
            price_source=_litellm_source(),
        )
    except Exception:
        internal_error("mini-swe-agent: could not record usage")


def _litellm_source() -> str:
    try:
        from importlib.metadata import version

        return f"litellm {version('litellm')} (mini-swe-agent)"
    except Exception:
        return "litellm (mini-swe-agent)"


class _EnvProxy(_proxy_base()):  # type: ignore[misc]
    """The agent's environment, with each execute() made a tool call."""

    def execute(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        command = action.get("command", "") if isinstance(action, dict) else str(action)
        call_id = action.get("tool_call_id") if isinstance(action, dict) else None
        handle = ToolHandle("bash", arguments={"command": command}, call_id=call_id)
        handle.__enter__()
        try:
            try:
                output = handle.run(lambda: self.__wrapped__.execute(action, *args, **kwargs))
            except (InjectedToolError, InjectedToolTimeout) as fault:
                # A fault injected into this call (agentsignals.faults): the agent gets what a
                # LocalEnvironment returns when the command fails or times out.
                output = _fault_output(fault)
        except BaseException as e:
            if type(e).__name__ == "Submitted":
                # Control flow, not a failure: the action printed the submission marker.
                handle.set_category(sc.ToolCategory.SUBMIT.value)
                handle.set_exit_code(0)
                handle.__exit__(None, None, None)
            else:
                handle.__exit__(type(e), e, None)
            raise
        try:
            if isinstance(output, dict):
                code = output.get("returncode")
                handle.record_result(
                    output.get("output"), exit_code=code if isinstance(code, int) else None
                )
                if output.get("exception_info"):
                    kind = str((output.get("extra") or {}).get("exception_type") or "exception")
                    if kind == "TimeoutExpired":
                        handle.mark_timed_out()
                    handle.set_error(kind, str(output.get("exception_info"))[:512])
        except Exception:
            internal_error("mini-swe-agent: could not record an action")
        handle.__exit__(None, None, None)
        return output


def _fault_output(fault: Exception) -> dict[str, Any]:
    """An injected failure in the shape of mini-swe-agent's LocalEnvironment.execute result."""
    if isinstance(fault, InjectedToolTimeout):
        return {
            "output": "",
            "returncode": -1,
            "exception_info": f"An error occurred while executing the command: {fault}",
            "extra": {"exception_type": "TimeoutExpired", "exception": str(fault)},
        }
    return {"output": f"{fault}\n", "returncode": 1, "exception_info": ""}
