"""Cost estimates for live model calls, from a maintained price table (`genai-prices`).

Prices are applied at capture time, on the turn span, by the integrations (and by anyone who
calls :func:`estimate_cost`): the caller knows the provider and the model exactly, the price
that applies is the one in force when the call was made, and the cost then travels with the
trace to every backend instead of being recomputed differently by each reader. The span says
where a cost came from (`agent_signals.usage.cost_source`: `provider`, `framework` or
`estimated`) and which table entry priced it (`agent_signals.usage.price_source`).

`genai-prices` (MIT, the `pricing` extra) is imported on the first estimate, never with
`import agentsignals`. Without it, or for a model it does not know, the cost stays null: no
guess. It reproduces a real run's recorded cost to the cent (the mini-swe-agent
django__django-16527 trajectory: 22 calls, $0.1158102 recorded and estimated).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from agentsignals._instrument.runtime import logger

# GenAI `gen_ai.provider.name` values (and common spellings) → genai-prices provider ids.
_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "google": "google",
    "vertex_ai": "google",
    "mistral_ai": "mistral",
    "mistral": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cohere": "cohere",
}

_lock = threading.Lock()
_module: Any = None  # genai_prices, once imported; False when unavailable
# (model, provider) → the (model_ref, provider_id) that priced it, or None when nothing did.
_cache: dict[tuple[str, str | None], tuple[str, str | None] | None] = {}
_CACHE_MAX = 1024


def _prices() -> Any:
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                try:
                    import genai_prices

                    _module = genai_prices
                except Exception:
                    logger.info(
                        "agentsignals: genai-prices is not installed (pip install "
                        "'agentsignals[pricing]'); live costs stay null unless reported"
                    )
                    _module = False
    return _module or None


def price_source_version() -> str | None:
    """`genai-prices <version>`, or None when the table is not installed."""
    mod = _prices()
    if mod is None:
        return None
    return f"genai-prices {getattr(mod, '__version__', '?')}"


def _candidates(model: str, provider: str | None) -> list[tuple[str, str | None]]:
    """(model_ref, provider_id) pairs to try, most specific first."""
    out: list[tuple[str, str | None]] = []
    prov = _PROVIDERS.get(provider.lower(), provider.lower()) if provider else None
    name = model.strip()
    if "/" in name:
        # LiteLLM / OpenRouter spelling: "openai/gpt-4o-mini", "anthropic/claude-...".
        head, tail = name.split("/", 1)
        head_prov = _PROVIDERS.get(head.lower())
        if head_prov is not None:
            out.append((tail, head_prov))
            if prov is not None and prov != head_prov:
                out.append((tail, prov))
        out.append((name, prov))
        out.append((tail, None))
    else:
        if prov is not None:
            out.append((name, prov))
        out.append((name, None))
    return list(dict.fromkeys(out))


def estimate_cost(
    model: str | None,
    provider: str | None = None,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    when: datetime | None = None,
) -> tuple[float, str] | None:
    """The list-price cost in USD of one model call, and the table entry that priced it.

    ``input_tokens`` includes cached tokens (GenAI's convention, and genai-prices'). Returns
    None when the table is not installed, the model is unknown, or no token count is known.
    Never raises.
    """
    if not model or (input_tokens is None and output_tokens is None):
        return None
    mod = _prices()
    if mod is None:
        return None
    try:
        key = (model, provider)
        if key in _cache:
            hit = _cache[key]
            if hit is None:
                return None
            candidates = [hit]
        else:
            candidates = _candidates(model, provider)
        usage = mod.Usage(
            input_tokens=int(input_tokens or 0),
            output_tokens=int(output_tokens or 0),
            cache_read_tokens=int(cache_read_tokens) if cache_read_tokens else None,
            cache_write_tokens=int(cache_write_tokens) if cache_write_tokens else None,
        )
        for ref, prov in candidates:
            try:
                calc = mod.calc_price(usage, ref, provider_id=prov, genai_request_timestamp=when)
            except LookupError:
                continue
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = (ref, prov)
            source = (
                f"genai-prices {getattr(mod, '__version__', '?')}: "
                f"{calc.provider.id}/{calc.model.id}"
            )
            return float(calc.total_price), source
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = None
        return None
    except Exception:
        logger.debug("agentsignals: could not price %s/%s", provider, model, exc_info=True)
        return None
