"""Model clients: any OpenAI-compatible chat endpoint, and Anthropic's messages API.

OpenAI-compatible servers (vLLM, Ollama, llama.cpp's server, LM Studio, OpenRouter, a LiteLLM
proxy) differ in what they accept as ``response_format``. The client asks for the strictest
form first, a JSON schema (``{"type": "json_schema", ...}``, enforced by a grammar where the
server can), and steps down when the server refuses it: ``{"type": "json_object", "schema":
...}`` (llama-cpp-python), then ``{"type": "json_object"}``, then nothing (the schema is in the
prompt and the tolerant parser reads the answer). The mode that worked is kept.

Retries: 408, 409, 425, 429, 5xx and 529 responses and connection errors are retried with
exponential backoff and jitter, honouring ``Retry-After`` (seconds or an HTTP date) and
``retry-after-ms``; other 4xx are errors at once. A request longer than the model's context is
a :class:`ContextOverflow`, which the judge answers by splitting the transcript further.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "MODES",
    "ChatResult",
    "ClientConfig",
    "ContextOverflow",
    "ModelClient",
    "ModelError",
]

MODES: Final = ("json_schema", "json_object_schema", "json_object", "none")
RETRY_STATUSES: Final = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_FORMAT_WORDS: Final = ("response_format", "json_schema", "schema", "grammar", "json_object")
_OVERFLOW_WORDS: Final = (
    "context size",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "exceeds the available context",
    "prompt is too long",
    "input is too long",
)
MAX_RETRY_AFTER_S: Final = 300.0


class ModelError(Exception):
    """A request the server refused, or one that kept failing after every retry."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ContextOverflow(ModelError):
    """The request is longer than the model's context."""


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to call the model."""

    base_url: str
    api_key: str | None = None
    provider: str = "openai"  # "openai" (any compatible server) or "anthropic"
    timeout_s: float = 120.0
    retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    response_format: str = "auto"  # auto, or one of MODES
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ChatResult:
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    mode: str = "none"
    model: str | None = None


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    downgrades: list[str] = field(default_factory=list)


def _normal_base(url: str) -> str:
    url = url.rstrip("/")
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """The server's requested wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an
    HTTP date), or None."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = str(raw).strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ModelClient:
    """Chat completions and embeddings over HTTP, thread-safe (one session per thread)."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        import requests  # noqa: F401  (fail here, not in a worker thread)

        self.config = config
        self.base_url = (
            _normal_base(config.base_url)
            if config.provider == "openai"
            else config.base_url.rstrip("/")
        )
        self._sleep = sleep
        self._local = threading.local()
        self._lock = threading.Lock()
        self._mode: str | None = (
            None if config.response_format == "auto" else config.response_format
        )
        self._random = random.Random(seed)
        self.stats = ClientStats()

    # ----------------------------------------------------------------------------- http
    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            self._local.session = session
        return session

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        key = self.config.api_key
        if self.config.provider == "anthropic":
            headers["anthropic-version"] = "2023-06-01"
            if key:
                headers["x-api-key"] = key
        elif key:
            headers["authorization"] = f"Bearer {key}"
        headers.update(dict(self.config.headers))
        return headers

    def _backoff(self, attempt: int) -> float:
        base = self.config.backoff_s * (2**attempt)
        with self._lock:
            jitter = self._random.uniform(0.5, 1.0)
        return float(min(self.config.max_backoff_s, base * jitter))

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, str]:
        """POST with retries; returns (status, JSON body or None, text) of the last answer."""
        import requests

        url = f"{self.base_url}{path}"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        last_error = ""
        for attempt in range(self.config.retries + 1):
            with self._lock:
                self.stats.requests += 1
            try:
                response = self._session().post(
                    url,
                    data=data,
                    headers=self._headers(),
                    timeout=(min(10.0, self.config.timeout_s), self.config.timeout_s),
                )
            except requests.RequestException as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.config.retries:
                    self._retry_wait(attempt, None)
                    continue
                raise ModelError(
                    f"{url}: no answer after {attempt + 1} tries ({last_error[:200]})"
                ) from None
            status = response.status_code
            text = response.text
            parsed: dict[str, Any] | None
            try:
                value = response.json()
                parsed = value if isinstance(value, dict) else None
            except ValueError:
                parsed = None
            retryable = status in RETRY_STATUSES and not self._is_format_refusal(status, text)
            if retryable and _is_overflow(_error_text(parsed, text)):
                retryable = False  # llama.cpp says so with a 500: retrying cannot help
            if retryable:
                last_error = f"HTTP {status}: {_error_text(parsed, text)}"
                if attempt < self.config.retries:
                    self._retry_wait(attempt, response.headers)
                    continue
                raise ModelError(
                    f"{url}: {last_error[:300]} after {attempt + 1} tries", status=status
                )
            return status, parsed, text
        raise ModelError(f"{url}: {last_error[:300]}")  # pragma: no cover - loop returns

    def _retry_wait(self, attempt: int, headers: Any) -> None:
        with self._lock:
            self.stats.retries += 1
        wait = self._backoff(attempt)
        asked = retry_after_seconds(headers)
        if asked is not None:
            wait = max(wait, min(asked, MAX_RETRY_AFTER_S))
        self._sleep(wait)

    @staticmethod
    def _is_format_refusal(status: int, text: str) -> bool:
        if status not in (400, 404, 415, 422, 500, 501):
            return False
        lowered = text.lower()
        return any(word in lowered for word in _FORMAT_WORDS) and not any(
            word in lowered for word in _OVERFLOW_WORDS
        )

    # ----------------------------------------------------------------------------- chat
    def chat(
        self,
        model: str,
        messages: Sequence[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        schema_name: str = "answer",
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> ChatResult:
        """One completion; ModelError / ContextOverflow when it cannot be had."""
        if self.config.provider == "anthropic":
            return self._anthropic(model, messages, schema, schema_name, temperature, max_tokens)
        with self._lock:
            mode = self._mode
        modes = [mode] if mode is not None else list(MODES)
        if schema is None:
            modes = ["none"]
        last: ModelError | None = None
        for i, current in enumerate(modes):
            body: dict[str, Any] = {
                "model": model,
                "messages": list(messages),
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
            if seed is not None:
                body["seed"] = seed
            if schema is not None:
                fmt = _response_format(current, schema, schema_name)
                if fmt is not None:
                    body["response_format"] = fmt
            status, parsed, text = self._post("/chat/completions", body)
            if status == 200 and parsed is not None:
                if mode is None and schema is not None:
                    with self._lock:
                        if self._mode is None:
                            self._mode = current
                return _openai_result(parsed, current)
            error = _error_text(parsed, text)
            if _is_overflow(error):
                raise ContextOverflow(f"HTTP {status}: {error[:300]}", status=status)
            if status in (401, 403):
                raise ModelError(f"HTTP {status}: not authorised ({error[:200]})", status=status)
            last = ModelError(f"HTTP {status}: {error[:300]}", status=status)
            if self._is_format_refusal(status, text) and i + 1 < len(modes):
                with self._lock:
                    self.stats.downgrades.append(f"{current} refused: {error[:120]}")
                continue
            raise last
        raise last if last is not None else ModelError("no response format was accepted")

    def _anthropic(
        self,
        model: str,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None,
        schema_name: str,
        temperature: float,
        max_tokens: int,
    ) -> ChatResult:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [
            {"role": m["role"], "content": m["content"]}
            for m in messages
            if m["role"] in ("user", "assistant")
        ]
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "messages": turns,
        }
        if system:
            body["system"] = system
        if schema is not None:
            # A forced tool call: its input is the answer, validated against the schema.
            body["tools"] = [
                {
                    "name": schema_name,
                    "description": "Record the answer.",
                    "input_schema": schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": schema_name}
        status, parsed, text = self._post("/v1/messages", body)
        if status != 200 or parsed is None:
            error = _error_text(parsed, text)
            if _is_overflow(error):
                raise ContextOverflow(f"HTTP {status}: {error[:300]}", status=status)
            raise ModelError(f"HTTP {status}: {error[:300]}", status=status)
        out_text = ""
        for block in parsed.get("content") or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
                out_text = json.dumps(block["input"], ensure_ascii=False)
                break
            if block.get("type") == "text":
                out_text += str(block.get("text", ""))
        usage = _dict(parsed.get("usage"))
        return ChatResult(
            text=out_text,
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            mode="tool_use" if schema is not None else "none",
            model=parsed.get("model") if isinstance(parsed.get("model"), str) else None,
        )

    # ----------------------------------------------------------------------- embeddings
    def embed(self, model: str, texts: Sequence[str], *, batch: int = 32) -> list[list[float]]:
        """Vectors from an OpenAI-compatible `/embeddings` endpoint, in input order."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            part = list(texts[start : start + batch])
            status, parsed, text = self._post("/embeddings", {"model": model, "input": part})
            if status != 200 or parsed is None:
                raise ModelError(
                    f"embeddings: HTTP {status}: {_error_text(parsed, text)[:300]}", status=status
                )
            data = parsed.get("data")
            if not isinstance(data, list) or len(data) != len(part):
                raise ModelError(f"embeddings: expected {len(part)} vectors")
            ordered = sorted(data, key=lambda d: int(d.get("index", 0)))
            for item in ordered:
                vector = item.get("embedding")
                if isinstance(vector, str):
                    vector = _b64_floats(vector)
                if not isinstance(vector, list) or not vector:
                    raise ModelError("embeddings: an item has no vector")
                out.append([float(x) for x in vector])
        return out

    def context_tokens(self, model: str) -> int | None:
        """The model's context window as the server reports it (llama.cpp ``meta.n_ctx``, vLLM
        ``max_model_len``, OpenRouter ``context_length``), or None."""
        if self.config.provider != "openai":
            return None
        import requests

        try:
            response = self._session().get(
                f"{self.base_url}/models", headers=self._headers(), timeout=10.0
            )
            data = response.json()
        except (requests.RequestException, ValueError):
            return None
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return None
        for item in items:
            if not isinstance(item, dict):
                continue
            if item.get("id") != model and len(items) > 1:
                continue
            meta = _dict(item.get("meta"))
            for value in (
                meta.get("n_ctx"),
                item.get("max_model_len"),
                item.get("context_length"),
                item.get("max_context_length"),
            ):
                number = _int(value)
                if number:
                    return number
        return None


def _response_format(mode: str, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def _openai_result(parsed: dict[str, Any], mode: str) -> ChatResult:
    choices = parsed.get("choices")
    text = ""
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            if not text and isinstance(message.get("parsed"), dict):
                text = json.dumps(message["parsed"])
    usage = _dict(parsed.get("usage"))
    cost = usage.get("cost")
    return ChatResult(
        text=text,
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        cost_usd=float(cost)
        if isinstance(cost, int | float) and not isinstance(cost, bool)
        else None,
        mode=mode,
        model=parsed.get("model") if isinstance(parsed.get("model"), str) else None,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error_text(parsed: dict[str, Any] | None, text: str) -> str:
    if parsed is not None:
        error = parsed.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            if isinstance(message, str):
                return message
        if isinstance(error, str):
            return error
        message = parsed.get("message") or parsed.get("detail")
        if isinstance(message, str):
            return message
    return " ".join(text.split())[:500]


def _is_overflow(error: str) -> bool:
    lowered = error.lower()
    return any(word in lowered for word in _OVERFLOW_WORDS)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _b64_floats(text: str) -> list[float]:
    import base64
    import struct

    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
