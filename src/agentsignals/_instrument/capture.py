"""Opt-in content capture: serialise, redact, and fit captured values into a byte budget.

Content (tool arguments and results, reasoning, messages, command lines) is off by default. When
on, every value is serialised without ever raising (hostile __repr__ included), secrets are
redacted without echoing the match, and values are cut to a per-value and per-span byte budget
keeping head and tail, with the original size and SHA-256 recorded so nothing is silently lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from agentsignals import semconv
from agentsignals._instrument import redact as _redact
from agentsignals._instrument.runtime import RUNTIME, Settings, internal_error, safe_repr

try:  # hashlib's own BLAKE2 (the same function), without importing OpenSSL at import time
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b as _blake2b

_msgspec_json: Any = None


def _json() -> Any:
    # msgspec is imported on first capture, keeping `import agentsignals` cheap.
    global _msgspec_json
    if _msgspec_json is None:
        import msgspec.json

        _msgspec_json = msgspec.json
    return _msgspec_json


def _enc_hook(obj: Any) -> Any:
    for attr in ("model_dump", "_asdict"):  # pydantic models, namedtuples
        method = getattr(obj, attr, None)
        if callable(method):
            try:
                return method()
            except Exception:
                break
    if isinstance(obj, set | frozenset):
        return sorted(safe_repr(x) for x in obj)
    return safe_repr(obj)


def to_text(value: Any) -> str:
    """Serialise a captured value to text: strings as-is, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(_json().encode(value, enc_hook=_enc_hook).decode("utf-8"))
    except Exception:
        return safe_repr(value)


def fingerprint(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Short stable hash of a call: equal fingerprints mean identical calls (stuck loops)."""
    try:
        payload = _json().encode([name, args, kwargs], enc_hook=_enc_hook, order="sorted")
    except Exception:
        payload = safe_repr((name, args, sorted(kwargs.items()))).encode("utf-8", "replace")
    return _blake2b(payload, digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------- redaction

# The rules and the matcher live in `redact`; these are the entry points capture uses.
redact_secrets = _redact.redact_secrets

_MAX_DEPTH: Final = 64
_MAX_ITEMS: Final = 100_000


def redact_text(text: str) -> str:
    """`text` with every secret the built-in rules know replaced; never raises."""
    try:
        return _redact.redact_secrets(text)[0]
    except Exception:
        internal_error("secret redaction failed; value withheld")
        return "[REDACTED:unscannable]"


class _Walk:
    __slots__ = ("count", "items")

    def __init__(self) -> None:
        self.count = 0
        self.items = 0


def redact_value(value: Any) -> tuple[Any, int]:
    """A copy of `value` (dicts, lists, tuples, strings, scalars) with secrets redacted in every
    string, before it is encoded: a dict entry whose key names a secret (`password`, `apiKey`,
    `Authorization`) loses its value whole, and a string inside a dict is scanned as it is, so
    JSON escaping (`\\n`, `\\"`) cannot hide a private key or a quoted password. Other objects
    become their (safe) repr, scanned the same way. Returns the copy and the number of secrets
    replaced."""
    walk = _Walk()
    out = _redact_walk(value, walk, 0)
    return out, walk.count


_NO_TEXT: Final = frozenset({int, float, bool, type(None)})
_MIN_SECRET_CHARS: Final = _redact._MIN_SECRET_CHARS  # shorter strings hold no secret
# Whether a dict key names a secret, by key: agents' argument names recur on every call.
_secret_keys: dict[str, bool] = {}


def _names_secret(name: str) -> bool:
    known = _secret_keys.get(name)
    if known is None:
        known = _redact.secret_key(name)
        if len(name) <= 256:
            if len(_secret_keys) >= 4096:
                _secret_keys.clear()
            _secret_keys[name] = known
    return known


def _redact_walk(value: Any, walk: _Walk, depth: int) -> Any:
    walk.items += 1
    kind = type(value)
    if kind is str:  # the common cases first, by exact type
        text, found = _redact.redact_secrets(value)
        walk.count += found
        return text
    if kind in _NO_TEXT:
        return value
    if isinstance(value, str):
        text, found = _redact.redact_secrets(str.__str__(value))
        walk.count += found
        return text
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH or walk.items > _MAX_ITEMS:
        return "[REDACTED:too_deep]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        redact = _redact.redact_secrets
        for key, item in list(value.items()):
            name = key if type(key) is str else safe_repr(key)
            if len(name) >= _MIN_SECRET_CHARS:
                name, found = redact(name)
                walk.count += found
            if _names_secret(name) and isinstance(item, str | bytes) and item not in ("", b""):
                walk.count += 1
                out[name] = "[REDACTED:credential]"
                continue
            kind = type(item)
            if kind is str:  # the common leaves inline (what the recursive call would do)
                walk.items += 1
                if len(item) >= _MIN_SECRET_CHARS:
                    item, found = redact(item)
                    walk.count += found
                out[name] = item
            elif kind in _NO_TEXT:
                walk.items += 1
                out[name] = item
            else:
                out[name] = _redact_walk(item, walk, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_redact_walk(item, walk, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return _redact_walk(bytes(value).decode("utf-8", errors="replace"), walk, depth)
    # Anything else (sets, models, custom objects): its JSON or repr as text.
    return _redact_walk(to_text(value), walk, depth)


def exception_message(exc: BaseException) -> str:
    """`str(exc)` redacted; never raises (an exception whose __str__ fails included)."""
    try:
        text = str(exc)
    except Exception:
        return f"<unprintable {type(exc).__qualname__}>"
    return redact_text(text)


def exception_stacktrace(exc: BaseException) -> str:
    """The formatted traceback of `exc`, redacted; never raises."""
    try:
        import traceback

        text = "".join(traceback.format_exception(exc))
    except Exception:
        return f"<no traceback for {type(exc).__qualname__}>"
    return redact_text(text)


# ------------------------------------------------------------------------------------- budget


class Span(Protocol):
    """Where captured values go: an OpenTelemetry span, or the importers' span under
    construction (anything with these two methods)."""

    def set_attribute(self, key: str, value: Any) -> None: ...

    def add_event(self, name: str, attributes: Any = None) -> None: ...


class SpanContent:
    """Per-span bookkeeping for captured values: budget used, truncations, redactions."""

    __slots__ = ("keys", "redactions", "sha256", "sizes", "used")

    def __init__(self) -> None:
        self.used = 0
        self.keys: list[str] = []
        self.sizes: list[int] = []
        self.sha256: list[str] = []
        self.redactions = 0

    def fit(self, key: str, text: str, max_value: int, max_span: int) -> str | None:
        """Cut `text` to the budget; None when the span's budget is spent."""
        data = text.encode("utf-8", errors="replace")
        allowed = min(max_value, max_span - self.used)
        if len(data) <= allowed:
            self.used += len(data)
            return text
        self.keys.append(key)
        self.sizes.append(len(data))
        import hashlib  # rare (a value over its budget): not at import

        self.sha256.append(hashlib.sha256(data).hexdigest())
        marker = f"…[truncated: {len(data)} bytes, sha256 {self.sha256[-1][:16]}]…"
        room = allowed - len(marker.encode("utf-8"))
        if room < 32:  # not worth a fragment: record that it existed, not its text
            return None
        head = data[: room // 2].decode("utf-8", errors="ignore")
        tail = data[len(data) - (room - room // 2) :].decode("utf-8", errors="ignore")
        self.used += allowed
        return head + marker + tail

    def flush(self, span: Span) -> None:
        if self.keys:
            span.set_attribute(semconv.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS, self.keys)
            span.set_attribute(semconv.AGENT_SIGNALS_CONTENT_TRUNCATED_ORIGINAL_BYTES, self.sizes)
            span.set_attribute(semconv.AGENT_SIGNALS_CONTENT_TRUNCATED_SHA256, self.sha256)
        if self.redactions:
            span.set_attribute(semconv.AGENT_SIGNALS_CONTENT_REDACTIONS, self.redactions)


def record_content(
    span: Span, content: SpanContent, key: str, value: Any, settings: Settings | None = None
) -> None:
    """Record one captured value on `span` (or as an event), redacted and budgeted.

    Call only when capture is on. Never raises: a failing user redaction hook drops the value
    rather than risk leaking it. `settings` defaults to the live ones (`configure()`); the
    importers pass their own, and a `span` that only has `set_attribute` and `add_event`.
    """
    if settings is None:
        settings = RUNTIME.settings
    try:
        if isinstance(value, str):
            text, found = _redact.redact_secrets(value)
        else:
            # Redacted before encoding: the rules see the strings, not their JSON escapes.
            cleaned, found = redact_value(value)
            text = to_text(cleaned)
        content.redactions += found
        hook: Callable[[str, str], str | None] | None = settings.redact
        if hook is not None:
            try:
                hooked = hook(key, text)
            except Exception:
                internal_error(f"redact hook failed for {key}; value dropped")
                return
            if hooked is None:
                return
            text = str(hooked)
        fitted = content.fit(key, text, settings.max_value_bytes, settings.max_span_bytes)
        if fitted is None:
            return
        if settings.capture_to_span:
            span.set_attribute(key, fitted)
        if settings.capture_to_events:
            span.add_event(
                semconv.EVENT_AGENT_SIGNALS_CONTENT,
                {
                    semconv.AGENT_SIGNALS_CONTENT_KEY: key,
                    semconv.AGENT_SIGNALS_CONTENT_VALUE: fitted,
                },
            )
    except Exception:
        internal_error(f"could not capture {key}")
