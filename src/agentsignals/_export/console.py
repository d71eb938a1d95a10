"""Human-readable one-line-per-span exporter.

Why: the SDK's ConsoleSpanExporter prints multi-line JSON to stdout, which is both unreadable
at agent speed and dangerous - an agent's stdout is often a protocol channel (MCP stdio, JSON
output consumed by a harness). This writes compact lines to stderr, indented to show nesting.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

__all__ = ["ConsoleSpanExporter", "format_spans"]

_PREFIX = "[agentsignals] "
_INDENT = "  "
_MAX_VALUE_CHARS = 80

# (attribute, label) pairs shown when present, in this order.
_KEY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("gen_ai.tool.name", "tool"),
    ("agent_signals.tool.category", "tool.category"),
    ("process.exit.code", "exit"),
    ("agent_signals.turn.index", "turn"),
    ("gen_ai.usage.input_tokens", "in_tokens"),
    ("gen_ai.usage.output_tokens", "out_tokens"),
    ("error.type", "error"),
)


def _format_duration(span: ReadableSpan) -> str:
    if span.start_time is None or span.end_time is None:
        return "?"
    ns = span.end_time - span.start_time
    if ns < 1_000_000:
        return f"{ns / 1_000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    seconds = ns / 1_000_000_000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def _format_value(value: object) -> str:
    text = str(value) if not isinstance(value, tuple | list) else ",".join(map(str, value))
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    # Quote anything that would break the one-line, space-separated layout.
    if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _one_line(text: str) -> str:
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)


def _format_line(span: ReadableSpan, depth: int) -> str:
    status = span.status
    if status is not None and status.status_code is StatusCode.ERROR:
        state = "ERROR" + (f" {_format_value(status.description)}" if status.description else "")
    else:
        state = "ok"
    attributes = span.attributes or {}
    parts = []
    for key, label in _KEY_ATTRIBUTES:
        if key not in attributes:
            continue
        value = attributes[key]
        # The GenAI span name is usually "execute_tool <tool name>"; don't say it twice.
        if key == "gen_ai.tool.name" and isinstance(value, str) and value in span.name:
            continue
        parts.append(f"{label}={_format_value(value)}")
    line = f"{_PREFIX}{_INDENT * depth}{_one_line(span.name)}  {_format_duration(span)}  {state}"
    if parts:
        line += "  " + " ".join(parts)
    return line


def _span_key(span: ReadableSpan) -> tuple[int, int] | None:
    ctx = span.context
    return (ctx.trace_id, ctx.span_id) if ctx is not None else None


def format_spans(spans: Sequence[ReadableSpan]) -> str:
    """Render ``spans`` as newline-terminated lines, children under parents in the same batch."""
    in_batch = {key for key in map(_span_key, spans) if key is not None}
    children: dict[tuple[int, int], list[ReadableSpan]] = {}
    roots: list[ReadableSpan] = []
    for span in spans:
        parent = span.parent
        parent_key = (parent.trace_id, parent.span_id) if parent is not None else None
        if parent_key is not None and parent_key in in_batch:
            children.setdefault(parent_key, []).append(span)
        else:
            roots.append(span)

    def start(span: ReadableSpan) -> int:
        return span.start_time or 0

    lines: list[str] = []
    stack: list[tuple[ReadableSpan, int]] = [(s, 0) for s in sorted(roots, key=start, reverse=True)]
    seen: set[int] = set()
    while stack:
        span, depth = stack.pop()
        if id(span) in seen:
            continue
        seen.add(id(span))
        lines.append(_format_line(span, depth))
        key = _span_key(span)
        if key is not None and key in children:
            stack.extend((c, depth + 1) for c in sorted(children[key], key=start, reverse=True))
    # Spans only reachable through a parent cycle (corrupt ids) are still shown, unindented.
    lines.extend(_format_line(s, 0) for s in spans if id(s) not in seen)
    return "".join(line + "\n" for line in lines)


class ConsoleSpanExporter(SpanExporter):
    """Write one compact line per span to ``stream`` (default: the current ``sys.stderr``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # Resolved per call so redirections of sys.stderr made after setup are honoured.
        stream = self._stream if self._stream is not None else sys.stderr
        if stream is None or not spans:
            return SpanExportResult.SUCCESS
        try:
            stream.write(format_spans(spans))
            stream.flush()
        except (OSError, ValueError):
            # Closed or broken stream: diagnostics must never take the agent down.
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
