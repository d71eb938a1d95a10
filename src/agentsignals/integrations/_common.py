"""What every integration shares: opening an attempt when the framework runs outside one,
reading usage from the response shapes of the OpenAI, Anthropic and LiteLLM APIs onto a turn,
pricing it, and the workspace default.

Nothing here imports a framework.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from agentsignals import semconv as sc
from agentsignals._instrument.pricing import estimate_cost
from agentsignals._instrument.runtime import RUNTIME, internal_error
from agentsignals._instrument.scope import current_scope
from agentsignals._instrument.spans import AttemptHandle, ToolHandle, TrialHandle, TurnHandle

AUTO = "auto"


def in_attempt() -> bool:
    return current_scope().attempt is not None


def in_turn() -> bool:
    return current_scope().turn is not None


def current_turn() -> TurnHandle | None:
    return current_scope().turn


def resolve_workspace(workspace: str | os.PathLike[str] | None, env_dir: str | None) -> str | None:
    """The folder whose changes the attempt tracks: `workspace` when given; with "auto", the
    framework environment's folder if it has one, else the current directory when it is inside
    a git work tree (tracking an arbitrary folder could be costly); None turns tracking off."""
    if workspace is None:
        return None
    if workspace != AUTO:
        return os.fspath(workspace)
    if env_dir:
        return env_dir
    try:
        from agentsignals._instrument.workspace import is_git_worktree

        cwd = os.getcwd()
        return cwd if is_git_worktree(cwd) else None
    except Exception:
        return None


def task_id_for(integration: str, task: Any) -> str:
    """A stable task id when the caller gave none: the integration and a digest of the task
    text, so the same task gets the same id across runs."""
    text = task if isinstance(task, str) else repr(task)
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]
    return f"{integration}-{digest}"


class AutoAttempt:
    """A trial and an attempt opened around one top-level agent run when the caller has none
    open; a no-op inside the caller's attempt. `enter()`/`exit()` are split so framework
    callbacks can call them from their start and end hooks (same thread, LIFO)."""

    __slots__ = ("_attempt", "_trial", "attempt")

    def __init__(self) -> None:
        self._trial: TrialHandle | None = None
        self._attempt: AttemptHandle | None = None
        self.attempt: AttemptHandle | None = None

    def enter(
        self,
        integration: str,
        *,
        task: Any = None,
        task_id: str | None = None,
        run_id: str | None = None,
        agent_name: str | None = None,
        agent_type: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        workspace: str | None = None,
    ) -> bool:
        """Open trial and attempt unless an attempt is active; True when opened."""
        if in_attempt():
            return False
        try:
            trial = TrialHandle(task_id or task_id_for(integration, task), run_id=run_id)
            trial.__enter__()
            self._trial = trial
            attempt = AttemptHandle(
                agent_name=agent_name,
                agent_type=agent_type or integration,
                model_id=model,
                provider=provider,
                workspace=workspace,
                attributes={sc.AGENT_SIGNALS_INTEGRATION_NAME: integration},
            )
            attempt.__enter__()
            self._attempt = self.attempt = attempt
            return True
        except Exception:
            internal_error(f"{integration}: could not open the attempt")
            return False

    def exit(self, exc: BaseException | None = None, exit_reason: str | None = None) -> None:
        attempt, trial = self._attempt, self._trial
        self._attempt = self._trial = None
        et = type(exc) if exc is not None else None
        if attempt is not None:
            if exit_reason:
                attempt.set_exit_reason(exit_reason)
            attempt.__exit__(et, exc, None)
        if trial is not None:
            trial.__exit__(et, exc, None)


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def usage_numbers(usage: Any) -> dict[str, int | None]:
    """GenAI token counts from an OpenAI (chat or responses), LiteLLM or Anthropic usage object
    or dict. Input includes cached tokens, as in GenAI (Anthropic's `input_tokens` does not,
    so its cache reads and writes are added). Usage of zero input and zero output tokens is no
    usage (a framework's placeholder when the provider sent none, e.g. a stream without
    `include_usage`): empty, never zeros counted as real."""
    numbers = _usage_numbers(usage)
    if numbers and not numbers.get("input_tokens") and not numbers.get("output_tokens"):
        return {}
    return numbers


def _usage_numbers(usage: Any) -> dict[str, int | None]:
    if usage is None:
        return {}
    prompt = _int(_get(usage, "prompt_tokens"))
    out: dict[str, int | None]
    if prompt is not None or _get(usage, "completion_tokens") is not None:
        details = _get(usage, "prompt_tokens_details")
        out_details = _get(usage, "completion_tokens_details")
        out = {
            "input_tokens": prompt,
            "output_tokens": _int(_get(usage, "completion_tokens")),
            "cache_read_tokens": _int(_get(details, "cached_tokens")),
            "cache_write_tokens": _int(_get(details, "cache_write_tokens"))
            or _int(_get(usage, "cache_creation_input_tokens")),
            "reasoning_tokens": _int(_get(out_details, "reasoning_tokens")),
        }
        return out
    inp = _int(_get(usage, "input_tokens"))
    outp = _int(_get(usage, "output_tokens"))
    cache_read = _int(_get(usage, "cache_read_input_tokens"))
    cache_write = _int(_get(usage, "cache_creation_input_tokens"))
    if cache_read is not None or cache_write is not None:
        # Anthropic: input_tokens excludes the cache.
        total = (inp or 0) + (cache_read or 0) + (cache_write or 0)
        return {
            "input_tokens": total,
            "output_tokens": outp,
            "cache_read_tokens": cache_read,
            "cache_write_tokens": cache_write,
            "reasoning_tokens": None,
        }
    # OpenAI Responses API / Agents SDK Usage.
    in_details = _get(usage, "input_tokens_details")
    out_details = _get(usage, "output_tokens_details")
    return {
        "input_tokens": inp,
        "output_tokens": outp,
        "cache_read_tokens": _int(_get(in_details, "cached_tokens")),
        "cache_write_tokens": None,
        "reasoning_tokens": _int(_get(out_details, "reasoning_tokens")),
    }


def record_usage(
    turn: TurnHandle,
    usage: Any,
    *,
    model: str | None,
    provider: str | None = None,
    reported_cost: float | None = None,
    cost_source: str | None = None,
    price_source: str | None = None,
) -> None:
    """Usage of one model call onto its turn, and its cost: the cost the provider or framework
    reported when there is one (with its source), else an estimate from the price table."""
    try:
        numbers = usage_numbers(usage)
        if any(v is not None for v in numbers.values()):
            turn.record_usage(**numbers)
        provider_cost = _get(usage, "cost") if usage is not None else None
        if reported_cost is None and isinstance(provider_cost, int | float) and provider_cost:
            # OpenRouter (and LiteLLM proxies) return the billed cost in usage.cost.
            reported_cost, cost_source = float(provider_cost), "provider"
        if reported_cost is not None:
            turn.record_cost(float(reported_cost))
            attrs: dict[str, Any] = {sc.AGENT_SIGNALS_USAGE_COST_SOURCE: cost_source or "framework"}
            if price_source:
                attrs[sc.AGENT_SIGNALS_USAGE_PRICE_SOURCE] = price_source
            turn._set(attrs)
            return
        if not numbers:
            return
        priced = estimate_cost(
            model,
            provider,
            input_tokens=numbers.get("input_tokens"),
            output_tokens=numbers.get("output_tokens"),
            cache_read_tokens=numbers.get("cache_read_tokens"),
            cache_write_tokens=numbers.get("cache_write_tokens"),
        )
        if priced is not None:
            cost, source = priced
            turn.record_cost(cost)
            turn._set(
                {
                    sc.AGENT_SIGNALS_USAGE_COST_SOURCE: sc.UsageCostSource.ESTIMATED.value,
                    sc.AGENT_SIGNALS_USAGE_PRICE_SOURCE: source,
                }
            )
    except Exception:
        internal_error("could not record model usage")


def provider_of(model: str | None, base_url: Any = None, default: str | None = None) -> str | None:
    """The GenAI provider name from a LiteLLM-style `provider/model` name or an API base URL;
    `default` otherwise. A loopback or unknown base URL keeps the default (the API dialect)."""
    if model and "/" in model:
        head = model.split("/", 1)[0].lower()
        mapping = {
            "openai": "openai",
            "anthropic": "anthropic",
            "gemini": "gcp.gemini",
            "vertex_ai": "gcp.vertex_ai",
            "bedrock": "aws.bedrock",
            "azure": "azure.ai.openai",
            "groq": "groq",
            "mistral": "mistral_ai",
            "deepseek": "deepseek",
            "xai": "x_ai",
            "openrouter": "openrouter",
        }
        if head in mapping:
            return mapping[head]
    url = str(base_url or "")
    if "openrouter.ai" in url:
        return "openrouter"
    if "anthropic.com" in url:
        return "anthropic"
    if "api.openai.com" in url:
        return "openai"
    return default


def tool(name: str, arguments: Any = None, call_id: str | None = None) -> ToolHandle:
    """A tool handle: category, files and fingerprint come from the shared classifier."""
    return ToolHandle(name, arguments=arguments, call_id=call_id)


def capturing() -> bool:
    """Content capture is on (`configure(capture_content=True)` or the OTel variable)."""
    return RUNTIME.settings.capture_content


def genai_messages(messages: Any) -> list[dict[str, Any]] | None:
    """OpenAI-style chat messages (dicts or SDK objects) in the GenAI JSON shape,
    `[{"role", "parts": [...]}]`: text, tool calls and tool results as parts."""
    if messages is None:
        return None
    if not isinstance(messages, list | tuple):
        messages = [messages]
    out: list[dict[str, Any]] = []
    for m in messages:
        role = _get(m, "role") or "assistant"
        parts: list[dict[str, Any]] = []
        content = _get(m, "content")
        if isinstance(content, str) and content:
            kind = "tool_call_response" if role == "tool" else "text"
            if kind == "text":
                parts.append({"type": "text", "content": content})
            else:
                parts.append({"type": kind, "id": _get(m, "tool_call_id"), "response": content})
        elif isinstance(content, list):
            for block in content:
                text = _get(block, "text")
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
        for call in _get(m, "tool_calls") or []:
            function = _get(call, "function")
            parts.append(
                {
                    "type": "tool_call",
                    "id": _get(call, "id"),
                    "name": _get(function, "name"),
                    "arguments": _get(function, "arguments"),
                }
            )
        out.append({"role": str(role), "parts": parts})
    return out


def record_messages(turn: TurnHandle, input: Any = None, output: Any = None) -> None:
    """The call's messages on the turn when content capture is on (converted only then)."""
    if not capturing():
        return
    try:
        turn.record_messages(input=genai_messages(input), output=genai_messages(output))
    except Exception:
        internal_error("could not record messages")


Patch = tuple[Any, str, Any, Any]  # (owner, name, original, our wrapper)


def patch(owner: Any, name: str, factory: Callable[[Any], Any], registry: list[Patch]) -> None:
    """Replace `owner.name` with `factory(current)` once, remembering both."""
    current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if current is None or any(p[0] is owner and p[1] == name for p in registry):
        return
    wrapper = factory(current)
    setattr(owner, name, wrapper)
    registry.append((owner, name, current, wrapper))


def unpatch(registry: list[Patch]) -> None:
    """Put back what `patch` replaced, where our wrapper is still in place: if another
    instrumentor wrapped or restored the attribute since, its state is left alone."""
    while registry:
        owner, name, original, wrapper = registry.pop()
        current = (
            owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        )
        if current is wrapper:
            setattr(owner, name, original)
