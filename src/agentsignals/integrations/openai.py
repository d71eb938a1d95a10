"""The OpenAI Python SDK: each chat-completions or Responses call of a hand-written agent loop
becomes a turn with its usage and cost.

    agentsignals.instrument("openai")
    with agentsignals.trial("task-1"), agentsignals.attempt(model_id="gpt-4o-mini"):
        ...  # the loop: client.chat.completions.create(...), tools with @trace_tool

A call inside an attempt and outside a turn is a turn (sync, async and streamed; a stream's usage
needs `stream_options={"include_usage": True}`, as the API requires). Calls inside a turn are the
turn's own (a framework integration's, or yours) and calls outside an attempt are not recorded.
Cost: an estimate from the price table, by the requested model. With OpenTelemetry's or
OpenInference's OpenAI instrumentor on as well, their `chat` span nests under the turn and the
tokens are counted once.
"""

from __future__ import annotations

import threading

from agentsignals._instrument.runtime import internal_error, logger
from agentsignals.integrations import _sdk
from agentsignals.integrations._common import Patch, patch, unpatch

NAME = "openai"
_lock = threading.Lock()
_patched: list[Patch] = []


def instrument() -> bool:
    try:
        from openai.resources.chat.completions import AsyncCompletions, Completions
        from openai.resources.responses import AsyncResponses, Responses
    except ImportError:
        logger.warning("agentsignals: openai is not installed; its integration is off")
        return False
    try:
        with _lock:
            for owner in (Completions, AsyncCompletions):
                patch(
                    owner,
                    "create",
                    lambda f: _sdk.wrap_call(
                        f,
                        provider=_sdk.openai_provider,
                        read=_sdk.read_openai,
                        stream_reader=_sdk.read_openai_stream,
                    ),
                    _patched,
                )
            for responses in (Responses, AsyncResponses):
                patch(
                    responses,
                    "create",
                    lambda f: _sdk.wrap_call(
                        f, provider=_sdk.openai_provider, read=_sdk.read_openai
                    ),
                    _patched,
                )
        return True
    except Exception:
        internal_error("could not instrument openai")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)
