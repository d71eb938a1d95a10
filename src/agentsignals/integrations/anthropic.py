"""The Anthropic Python SDK: each `messages.create` call of a hand-written agent loop becomes a
turn with its usage (cache reads and writes included) and cost.

    agentsignals.instrument("anthropic")

Same rules as the OpenAI integration: a call inside an attempt and outside a turn is a turn
(sync, async, and `stream=True`); calls inside a turn belong to it; calls outside an attempt
are not recorded.
"""

from __future__ import annotations

import threading

from agentsignals._instrument.runtime import internal_error, logger
from agentsignals.integrations import _sdk
from agentsignals.integrations._common import Patch, patch, unpatch

NAME = "anthropic"
_lock = threading.Lock()
_patched: list[Patch] = []


def instrument() -> bool:
    try:
        from anthropic.resources.messages import AsyncMessages, Messages
    except ImportError:
        logger.warning("agentsignals: anthropic is not installed; its integration is off")
        return False
    try:
        with _lock:
            for owner in (Messages, AsyncMessages):
                patch(
                    owner,
                    "create",
                    lambda f: _sdk.wrap_call(
                        f,
                        provider=_sdk.anthropic_provider,
                        read=_sdk.read_anthropic,
                        stream_reader=_sdk.read_anthropic_stream,
                    ),
                    _patched,
                )
        return True
    except Exception:
        internal_error("could not instrument anthropic")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)
