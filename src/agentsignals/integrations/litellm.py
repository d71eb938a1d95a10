"""LiteLLM: each `litellm.completion` / `acompletion` call of a hand-written agent loop becomes a
turn with its usage and LiteLLM's own cost (`cost_source=framework`; an estimate from the price
table when LiteLLM has none).

    agentsignals.instrument("litellm")

Same rules as the OpenAI integration. Only calls made through the `litellm` module attribute
are seen (`litellm.completion(...)`); frameworks built on LiteLLM (DSPy, mini-swe-agent) have
their own integrations, which open the turns.
"""

from __future__ import annotations

import threading

from agentsignals._instrument.runtime import internal_error, logger
from agentsignals.integrations import _sdk
from agentsignals.integrations._common import Patch, patch, unpatch

NAME = "litellm"
_lock = threading.Lock()
_patched: list[Patch] = []


def instrument() -> bool:
    try:
        import litellm
    except ImportError:
        logger.warning("agentsignals: litellm is not installed; its integration is off")
        return False
    try:
        with _lock:
            for name in ("completion", "acompletion"):
                patch(
                    litellm,
                    name,
                    lambda f: _sdk.wrap_call(
                        f,
                        provider=_sdk.litellm_provider,
                        read=_sdk.read_openai,
                        model_of=_sdk.litellm_model,
                        stream_reader=_sdk.read_openai_stream,
                    ),
                    _patched,
                )
        return True
    except Exception:
        internal_error("could not instrument litellm")
        return False


def uninstrument() -> None:
    with _lock:
        unpatch(_patched)
