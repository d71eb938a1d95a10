"""Model-call wrappers shared by the OpenAI, Anthropic and LiteLLM integrations.

A call made inside an attempt and outside any turn becomes a turn of its own, with the usage,
response model, finish reasons and cost read from the response. A call made inside a turn (a
framework integration's, or the caller's) is left to that turn. A call made outside any attempt
is not an agent step we can place, and is not recorded. Streaming calls are turns too: the turn
stays open (without holding the context) until the stream is consumed or closed, and takes the
usage of the final chunk.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from agentsignals._instrument.runtime import internal_error
from agentsignals._instrument.spans import TurnHandle
from agentsignals.integrations._common import (
    in_attempt,
    in_turn,
    provider_of,
    record_messages,
    record_usage,
)

ResponseReader = Callable[[TurnHandle, Any, str | None, str | None], None]


def _should_open() -> bool:
    return in_attempt() and not in_turn()


def _open_turn(model: str | None, provider: str | None) -> TurnHandle:
    turn = TurnHandle(model=model, provider=provider)
    turn.__enter__()
    return turn


def wrap_call(
    original: Callable[..., Any],
    *,
    provider: Callable[[tuple[Any, ...], dict[str, Any]], str | None],
    read: ResponseReader,
    model_of: Callable[[tuple[Any, ...], dict[str, Any]], Any] = lambda a, k: k.get("model"),
    stream_reader: Callable[[TurnHandle, Any, str | None, str | None], None] | None = None,
) -> Callable[..., Any]:
    """Wrap a sync or async `create`-style function (`self` included when it is a method)."""

    State = tuple[TurnHandle, str | None, str | None]

    def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> State | None:
        if not _should_open():
            return None
        try:
            raw = model_of(args, kwargs)
            model = str(raw) if raw else None
            prov = provider(args, kwargs)
            return _open_turn(model, prov), model, prov
        except Exception:
            internal_error("could not start a model-call turn")
            return None

    def after(state: State, result: Any, stream: bool, kwargs: dict[str, Any]) -> Any:
        turn, model, prov = state
        record_messages(turn, input=kwargs.get("messages"))
        if stream and stream_reader is not None:
            return _StreamTurn.wrap(result, turn, model, prov, stream_reader)
        try:
            read(turn, result, model, prov)
            choices = getattr(result, "choices", None)
            if choices:
                record_messages(turn, output=getattr(choices[0], "message", None))
        except Exception:
            internal_error("could not read a model response")
        turn.__exit__(None, None, None)
        return result

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            state = before(args, kwargs)
            if state is None:
                return await original(*args, **kwargs)
            try:
                result = await original(*args, **kwargs)
            except BaseException as e:
                state[0].__exit__(type(e), e, None)
                raise
            return after(state, result, bool(kwargs.get("stream")), kwargs)

        async_wrapper.__agentsignals_original__ = original  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = before(args, kwargs)
        if state is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as e:
            state[0].__exit__(type(e), e, None)
            raise
        return after(state, result, bool(kwargs.get("stream")), kwargs)

    wrapper.__agentsignals_original__ = original  # type: ignore[attr-defined]
    return wrapper


class _StreamTurn:
    """Keeps a streaming call's turn open until its stream ends, without holding the context
    (the caller may open other spans while it consumes the stream)."""

    @staticmethod
    def wrap(
        stream: Any,
        turn: TurnHandle,
        model: str | None,
        provider: str | None,
        reader: Callable[[TurnHandle, Any, str | None, str | None], None],
    ) -> Any:
        token = turn._token
        turn._token = None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                internal_error("could not detach a streaming turn")
        import wrapt

        chunks: list[Any] = []

        def finish(exc: BaseException | None = None) -> None:
            if not turn._entered:
                return
            try:
                reader(turn, chunks, model, provider)
            except Exception:
                internal_error("could not read a streamed response")
            turn.__exit__(type(exc) if exc else None, exc, None)

        base: Any = wrapt.ObjectProxy

        class Proxy(base):  # type: ignore[misc]
            def __iter__(self) -> Any:
                try:
                    for chunk in self.__wrapped__:
                        chunks.append(chunk)
                        yield chunk
                except BaseException as e:
                    finish(e)
                    raise
                finish()

            async def _aiter(self) -> Any:
                try:
                    async for chunk in self.__wrapped__:
                        chunks.append(chunk)
                        yield chunk
                except BaseException as e:
                    finish(e)
                    raise
                finish()

            def __aiter__(self) -> Any:
                return self._aiter()

            def close(self) -> Any:
                finish()
                return self.__wrapped__.close()

            def __exit__(self, *exc: Any) -> Any:
                finish()
                return self.__wrapped__.__exit__(*exc)

            async def __aexit__(self, *exc: Any) -> Any:
                finish()
                return await self.__wrapped__.__aexit__(*exc)

        return Proxy(stream)


# ------------------------------------------------------------------------ response readers


def read_openai(turn: TurnHandle, response: Any, model: str | None, provider: str | None) -> None:
    """An OpenAI (or LiteLLM, which uses the same shape) chat completion or Responses object."""
    usage = getattr(response, "usage", None)
    if usage is None and isinstance(response, dict):
        usage = response.get("usage")
    choices = getattr(response, "choices", None) or []
    reasons = [getattr(c, "finish_reason", None) for c in choices]
    response_model = getattr(response, "model", None)
    turn.record_model(
        response=str(response_model) if response_model else None,
        finish_reasons=[r for r in reasons if isinstance(r, str)] or None,
    )
    message = getattr(choices[0], "message", None) if choices else None
    # Open-weight servers (vLLM, DeepSeek, OpenRouter) return the reasoning text beside the reply.
    for key in ("reasoning_content", "reasoning"):
        text = getattr(message, key, None)
        if isinstance(text, str) and text.strip():
            turn.record_reasoning(text)
            break
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    record_usage(
        turn,
        usage,
        model=model,
        provider=provider,
        reported_cost=float(cost) if isinstance(cost, int | float) and cost > 0 else None,
        cost_source="framework" if cost else None,
        price_source=_litellm_source() if cost else None,
    )


def read_openai_stream(
    turn: TurnHandle, chunks: Any, model: str | None, provider: str | None
) -> None:
    usage = None
    reasons: list[str] = []
    response_model = None
    for chunk in chunks:
        usage = getattr(chunk, "usage", None) or usage
        response_model = getattr(chunk, "model", None) or response_model
        for c in getattr(chunk, "choices", None) or []:
            r = getattr(c, "finish_reason", None)
            if isinstance(r, str):
                reasons.append(r)
    turn.record_model(response=response_model, finish_reasons=reasons or None)
    record_usage(turn, usage, model=model, provider=provider)


def read_anthropic(
    turn: TurnHandle, response: Any, model: str | None, provider: str | None
) -> None:
    thinking = [
        getattr(b, "thinking", "")
        for b in getattr(response, "content", None) or []
        if getattr(b, "type", None) == "thinking"
    ]
    if any(thinking):
        turn.record_reasoning("\n\n".join(t for t in thinking if t))
    stop = getattr(response, "stop_reason", None)
    response_model = getattr(response, "model", None)
    turn.record_model(
        response=str(response_model) if response_model else None,
        finish_reasons=[stop] if isinstance(stop, str) else None,
    )
    record_usage(turn, getattr(response, "usage", None), model=model, provider=provider)


def read_anthropic_stream(
    turn: TurnHandle, events: Any, model: str | None, provider: str | None
) -> None:
    usage: dict[str, Any] = {}
    stop = None
    for event in events:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            u = getattr(getattr(event, "message", None), "usage", None)
            if u is not None:
                usage.update({k: v for k, v in u.model_dump().items() if v is not None})
        elif kind == "message_delta":
            u = getattr(event, "usage", None)
            if u is not None:
                usage.update({k: v for k, v in u.model_dump().items() if v is not None})
            stop = getattr(getattr(event, "delta", None), "stop_reason", None) or stop
    turn.record_model(finish_reasons=[stop] if isinstance(stop, str) else None)
    record_usage(turn, usage or None, model=model, provider=provider)


def _litellm_source() -> str:
    try:
        from importlib.metadata import version

        return f"litellm {version('litellm')}"
    except Exception:
        return "litellm"


def openai_provider(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    client = getattr(args[0], "_client", None) if args else None
    base = getattr(client, "base_url", None)
    return provider_of(None, base, default="openai")


def anthropic_provider(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    return "anthropic"


def litellm_model(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs.get("model") or (args[0] if args else None)


def litellm_provider(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    model = litellm_model(args, kwargs)
    return provider_of(str(model) if model else None, kwargs.get("api_base"), default=None)
