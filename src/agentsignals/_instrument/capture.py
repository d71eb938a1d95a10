"""Opt-in content capture: serialise, redact, and fit captured values into a byte budget.

Content (tool arguments and results, reasoning, messages, command lines) is off by default. When
on, every value is serialised without ever raising (hostile __repr__ included), secrets are
redacted without echoing the match, and values are cut to a per-value and per-span byte budget
keeping head and tail, with the original size and SHA-256 recorded so nothing is silently lost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Final

from opentelemetry.trace import Span

from agentsignals import semconv
from agentsignals._instrument.runtime import RUNTIME, internal_error, safe_repr

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
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------- redaction

# Each pattern's match (or its named group "secret") is replaced by "[REDACTED:<kind>]".
# Case-sensitive patterns start with a literal and check the word boundary behind it
# (`sk-(?<=\bsk-)` rather than `\bsk-`): the same matches, but the engine skips ahead to the
# literal (35x faster on text without it). Case-insensitive ones cannot, so on long text they
# run only when one of their literals is in the case-folded text (a substring test is 10-20x
# cheaper than their scan, and most captured text holds none).
_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
        (),
    ),
    (
        "aws_access_key_id",
        re.compile(r"A(?<=\bA)(?:KIA|SIA)[0-9A-Z]{16}\b"),
        (),
    ),
    (
        "github_token",
        re.compile(r"g(?<=\bg)(?:h[pousr]_[A-Za-z0-9]{30,}|ithub_pat_[A-Za-z0-9_]{22,})"),
        (),
    ),
    ("api_key", re.compile(r"sk-(?<=\bsk-)(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}"), ()),
    (
        "slack_token",
        re.compile(r"xox(?<=\bxox)[abprs]-[A-Za-z0-9\-]{10,}"),
        (),
    ),
    ("google_api_key", re.compile(r"AIza(?<=\bAIza)[0-9A-Za-z_\-]{35}"), ()),
    (
        "jwt",
        re.compile(r"eyJ(?<=\beyJ)[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        (),
    ),
    (
        "bearer_token",
        re.compile(r"(?i)b(?<=\bb)earer\s+(?P<secret>[A-Za-z0-9._~+/=\-]{16,})"),
        ("bearer",),
    ),
    (
        "credential",
        re.compile(
            # No `\b[\w.\-]*` before the keyword: it found the same secrets (what precedes the
            # keyword is kept as it is) at 15x the cost, by backtracking through every word.
            # A match starts at a keyword, so on long text it is tried only where one is.
            r"(?i)(?:password|passwd|secret|api[_\-]?key|access[_\-]?key|auth[_\-]?token"
            r"|private[_\-]?key)[\w.\-]*[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"',;]{6,})"
        ),
        # The start of each alternative (where a match begins), in the case-folded text.
        ("passw", "secret", "api", "access", "auth", "private"),
    ),
)
_MATCH_AT_LITERALS: Final = frozenset({"credential"})

_PREFILTER_MIN_CHARS = 256


def _folded(text: str) -> str:
    """Case-folded for the case-insensitive literals. Unlike lower(), casefold() maps what
    re's IGNORECASE also matches (long s, Kelvin sign); the two Turkish i's are mapped here."""
    folded = text.casefold()
    if "\u0131" in folded or "\u0307" in folded:
        folded = folded.replace("i\u0307", "i").replace("\u0131", "i")
    return folded


def _sub_at(
    pattern: re.Pattern[str],
    repl: Callable[[re.Match[str]], str],
    text: str,
    folded: str,
    literals: tuple[str, ...],
) -> str:
    """`pattern.sub(repl, text)` for a pattern whose matches start where one of `literals`
    starts in `folded` (same length as `text`, char for char): tried only there."""
    starts: set[int] = set()
    for literal in literals:
        i = folded.find(literal)
        while i >= 0:
            starts.add(i)
            i = folded.find(literal, i + 1)
    out: list[str] = []
    done = 0
    for pos in sorted(starts):
        if pos < done:
            continue
        m = pattern.match(text, pos)
        if m is None:
            continue
        out.append(text[done:pos])
        out.append(repl(m))
        done = m.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def redact_secrets(text: str) -> tuple[str, int]:
    """Replace secrets with a marker naming their kind; never echoes any part of the match."""
    count = 0
    folded: str | None = None
    # On short values a regex search is as cheap as the literal tests: search directly.
    prefilter = len(text) >= _PREFILTER_MIN_CHARS
    for kind, pattern, insensitive in _SECRET_PATTERNS:
        if prefilter and insensitive:
            if folded is None:
                folded = _folded(text)
            if not any(literal in folded for literal in insensitive):
                continue
        elif pattern.search(text) is None:
            continue
        marker = f"[REDACTED:{kind}]"

        def _sub(m: re.Match[str], marker: str = marker) -> str:
            nonlocal count
            count += 1
            if "secret" in m.re.groupindex and m.group("secret") is not None:
                start, end = m.span("secret")
                whole = m.group(0)
                offset = m.start(0)
                return whole[: start - offset] + marker + whole[end - offset :]
            return marker

        before = count
        # Where folding kept every position (no char became two), try only at the literals.
        if (
            prefilter
            and kind in _MATCH_AT_LITERALS
            and folded is not None
            and len(folded) == len(text)
        ):
            text = _sub_at(pattern, _sub, text, folded, insensitive)
        else:
            text = pattern.sub(_sub, text)
        if count != before:
            folded = None  # the text changed: fold it again if needed
    return text, count


# ------------------------------------------------------------------------------------- budget


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


def record_content(span: Span, content: SpanContent, key: str, value: Any) -> None:
    """Record one captured value on `span` (or as an event), redacted and budgeted.

    Call only when capture is on. Never raises: a failing user redaction hook drops the value
    rather than risk leaking it.
    """
    settings = RUNTIME.settings
    try:
        text = value if isinstance(value, str) else to_text(value)
        text, found = redact_secrets(text)
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
