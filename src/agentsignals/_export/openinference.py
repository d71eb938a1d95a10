"""OpenInference attributes on our spans, so GenAI-aware viewers (Arize Phoenix) render them.

OpenInference viewers pick a span's role from one attribute, `openinference.span.kind`, and read
un-namespaced keys (`tool.name`, `session.id`, `llm.token_count.prompt`, `input.value`). Our spans
carry OpenTelemetry GenAI and `agent_signals.*` keys, which stay as they are; this module adds
the OpenInference keys next to them, opt-in (`AGENTSIGNALS_OPENINFERENCE=true`).

Kinds: trial -> CHAIN, attempt -> AGENT, tool -> TOOL, verification -> EVALUATOR. A turn is
"one model call and the tool calls it requests": when the model call is recorded on the turn
itself (a model or token usage on the turn, no model-call span below it) the turn *is* the LLM
span, so it becomes LLM and carries the token counts; when another instrumentor's model-call
span (an OpenAI or LiteLLM `chat` span) sits below it, that child is the LLM span and the turn
is a CHAIN without token counts. Phoenix sums `llm.token_count.*` over LLM spans only, so this
counts every call once. Other instrumentors' spans are never touched.

Two pieces, because a span's attributes are frozen by the time processors see it end:

* :class:`OpenInferenceProcessor` sets the keys known when a span starts (kind except for
  turns, tool name and id, agent name, session id) on the live span, so exporters that are not
  ours (a host's own Phoenix exporter on the same provider) see them too.
* :class:`OpenInferenceExporter` wraps an exporter and rewrites the exported copies of our
  spans with the full mapping (turn kind, token counts, captured input/output), passing every
  span through exactly once: it emits no extra spans.

`configure_hook` is what `configure()` calls to wire both in.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentsignals import semconv as sc
from agentsignals._instrument.runtime import internal_error

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "ENV",
    "OpenInferenceExporter",
    "OpenInferenceProcessor",
    "configure_hook",
    "enabled_from_env",
    "openinference_attributes",
    "start_attributes",
]

ENV: Final = "AGENTSIGNALS_OPENINFERENCE"

# OpenInference keys (openinference-semantic-conventions 0.1.42, `SpanAttributes`).
SPAN_KIND: Final = "openinference.span.kind"
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
TOOL_NAME: Final = "tool.name"
TOOL_ID: Final = "tool.id"
TOOL_DESCRIPTION: Final = "tool.description"
AGENT_NAME: Final = "agent.name"
SESSION_ID: Final = "session.id"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_FINISH_REASON: Final = "llm.finish_reason"
TOKEN_PROMPT: Final = "llm.token_count.prompt"
TOKEN_COMPLETION: Final = "llm.token_count.completion"
TOKEN_TOTAL: Final = "llm.token_count.total"
TOKEN_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
TOKEN_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
TOKEN_REASONING: Final = "llm.token_count.completion_details.reasoning"
COST_TOTAL: Final = "llm.cost.total"

MIME_JSON: Final = "application/json"
MIME_TEXT: Final = "text/plain"

# `OpenInferenceSpanKindValues`.
KIND_CHAIN: Final = "CHAIN"
KIND_AGENT: Final = "AGENT"
KIND_LLM: Final = "LLM"
KIND_TOOL: Final = "TOOL"
KIND_EVALUATOR: Final = "EVALUATOR"

#: Kinds that do not depend on what happens after the span starts.
STATIC_KINDS: Final[Mapping[str, str]] = {
    sc.SpanType.TRIAL.value: KIND_CHAIN,
    sc.SpanType.ATTEMPT.value: KIND_AGENT,
    sc.SpanType.TOOL.value: KIND_TOOL,
    sc.SpanType.VERIFICATION.value: KIND_EVALUATOR,
    # A user's message into an interactive session: its text is the span's input.
    sc.SpanType.USER_TURN.value: KIND_CHAIN,
}

#: `gen_ai.operation.name` values of a model call (the same set feature extraction counts).
MODEL_CALL_OPERATIONS: Final = frozenset(
    {
        sc.GenAiOperationName.CHAT.value,
        sc.GenAiOperationName.TEXT_COMPLETION.value,
        sc.GenAiOperationName.GENERATE_CONTENT.value,
    }
)

# gen_ai.provider.name -> llm.provider (OpenInferenceLLMProviderValues); others pass through.
_PROVIDERS: Final[Mapping[str, str]] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "cohere": "cohere",
    "mistral_ai": "mistralai",
    "x_ai": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gcp.gemini": "google",
}

# Captured values that are JSON-encoded when whole (a truncated one is plain text).
_JSON_CONTENT: Final = frozenset(
    {sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_TOOL_CALL_ARGUMENTS}
)
_IO_KEYS: Final[Mapping[str, tuple[str, str]]] = {
    # span type -> (key that becomes input.value, key that becomes output.value)
    sc.SpanType.TURN.value: (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES),
    sc.SpanType.TOOL.value: (sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT),
    sc.SpanType.USER_TURN.value: (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES),
}


def enabled_from_env() -> bool:
    """True when AGENTSIGNALS_OPENINFERENCE is 1/true/yes/on."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


# ------------------------------------------------------------------------------- mapping
def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def is_model_call(attributes: Mapping[str, object]) -> bool:
    """Whether a span is another instrumentor's model call (GenAI or OpenInference keys)."""
    if attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) is not None:
        return False
    return (
        attributes.get(sc.GEN_AI_OPERATION_NAME) in MODEL_CALL_OPERATIONS
        or attributes.get(SPAN_KIND) == KIND_LLM
    )


def _turn_records_call(attributes: Mapping[str, object]) -> bool:
    return any(
        attributes.get(key) is not None
        for key in (
            sc.GEN_AI_REQUEST_MODEL,
            sc.GEN_AI_RESPONSE_MODEL,
            sc.GEN_AI_USAGE_INPUT_TOKENS,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        )
    )


def _llm_attributes(attributes: Mapping[str, object], out: dict[str, AttributeValue]) -> None:
    model = _str(attributes.get(sc.GEN_AI_RESPONSE_MODEL)) or _str(
        attributes.get(sc.GEN_AI_REQUEST_MODEL)
    )
    if model is not None:
        out[LLM_MODEL_NAME] = model
    provider = _str(attributes.get(sc.GEN_AI_PROVIDER_NAME))
    if provider is not None:
        out[LLM_PROVIDER] = _PROVIDERS.get(provider, provider)
    reasons = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if isinstance(reasons, list | tuple) and len(reasons) == 1 and isinstance(reasons[0], str):
        out[LLM_FINISH_REASON] = reasons[0]
    prompt = _int(attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS))
    completion = _int(attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
    if prompt is not None:
        out[TOKEN_PROMPT] = prompt
    if completion is not None:
        out[TOKEN_COMPLETION] = completion
    if prompt is not None and completion is not None:
        out[TOKEN_TOTAL] = prompt + completion
    for source, target in (
        (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, TOKEN_CACHE_READ),
        (sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, TOKEN_CACHE_WRITE),
        (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, TOKEN_REASONING),
    ):
        count = _int(attributes.get(source))
        if count is not None:
            out[target] = count
    cost = _float(attributes.get(sc.AGENT_SIGNALS_USAGE_COST_USD))
    if cost is not None:
        out[COST_TOTAL] = cost


def _io_attributes(
    span_type: str,
    attributes: Mapping[str, object],
    content: Mapping[str, str] | None,
    out: dict[str, AttributeValue],
) -> None:
    keys = _IO_KEYS.get(span_type)
    if keys is None:
        return
    truncated = attributes.get(sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS)
    cut = set(truncated) if isinstance(truncated, list | tuple) else set()
    for source, (value_key, mime_key) in zip(
        keys, ((INPUT_VALUE, INPUT_MIME_TYPE), (OUTPUT_VALUE, OUTPUT_MIME_TYPE)), strict=True
    ):
        value = attributes.get(source)
        if not isinstance(value, str) and content is not None:
            value = content.get(source)
        if not isinstance(value, str):
            continue  # not captured: content capture is off, or the value was dropped
        out[value_key] = value
        out[mime_key] = MIME_JSON if source in _JSON_CONTENT and source not in cut else MIME_TEXT


def start_attributes(
    span_type: str | None, attributes: Mapping[str, object]
) -> dict[str, AttributeValue]:
    """The OpenInference keys that are final when a span starts (no turn kind: it depends on
    whether a model-call span appears below the turn)."""
    out: dict[str, AttributeValue] = {}
    if span_type is None:
        return out
    kind = STATIC_KINDS.get(span_type)
    if kind is not None:
        out[SPAN_KIND] = kind
    if span_type == sc.SpanType.TOOL.value:
        for source, target in (
            (sc.GEN_AI_TOOL_NAME, TOOL_NAME),
            (sc.GEN_AI_TOOL_CALL_ID, TOOL_ID),
            (sc.GEN_AI_TOOL_DESCRIPTION, TOOL_DESCRIPTION),
        ):
            value = _str(attributes.get(source))
            if value is not None:
                out[target] = value
    elif span_type == sc.SpanType.ATTEMPT.value:
        name = _str(attributes.get(sc.GEN_AI_AGENT_NAME))
        if name is not None:
            out[AGENT_NAME] = name
    # Only a real conversation id becomes a session: never one made up from our own ids.
    session = _str(attributes.get(sc.GEN_AI_CONVERSATION_ID))
    if session is not None:
        out[SESSION_ID] = session
    return out


def openinference_attributes(
    span_type: str | None,
    attributes: Mapping[str, object],
    *,
    model_call_child: bool = False,
    content: Mapping[str, str] | None = None,
) -> dict[str, AttributeValue]:
    """OpenInference keys for one of our spans, from its final attributes.

    Args:
        span_type: `agent_signals.span.type` (trial, attempt, turn, tool, verification); None or
            an unknown type (another instrumentor's span) yields no keys.
        attributes: the span's attributes when it ended.
        model_call_child: for a turn, whether another instrumentor's model-call span is below it.
        content: captured values recorded as `agent_signals.content` events (EVENT_ONLY capture),
            by attribute key; span attributes win over these.

    Returns:
        The keys to add next to the span's own (nothing of the span is removed).
    """
    if span_type is None:
        return {}
    if span_type != sc.SpanType.TURN.value and span_type not in STATIC_KINDS:
        return {}
    out = start_attributes(span_type, attributes)
    if span_type == sc.SpanType.TURN.value:
        if not model_call_child and _turn_records_call(attributes):
            out[SPAN_KIND] = KIND_LLM
            _llm_attributes(attributes, out)
        else:
            out[SPAN_KIND] = KIND_CHAIN
    _io_attributes(span_type, attributes, content, out)
    return out


# ----------------------------------------------------------------------------- processor
class OpenInferenceProcessor(SpanProcessor):
    """Sets the start-time OpenInference keys on our spans (see :func:`start_attributes`)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attributes = span.attributes or {}
            span_type = attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE)
            if not isinstance(span_type, str):
                return
            extra = start_attributes(span_type, attributes)
            if extra:
                span.set_attributes(extra)
        except Exception:
            internal_error("could not add OpenInference attributes")

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# ------------------------------------------------------------------------------ exporter
def _content_events(span: ReadableSpan) -> dict[str, str] | None:
    found: dict[str, str] | None = None
    for event in span.events:
        if event.name != sc.EVENT_AGENT_SIGNALS_CONTENT or not event.attributes:
            continue
        key = event.attributes.get(sc.AGENT_SIGNALS_CONTENT_KEY)
        value = event.attributes.get(sc.AGENT_SIGNALS_CONTENT_VALUE)
        if isinstance(key, str) and isinstance(value, str):
            found = {} if found is None else found
            found[key] = value
    return found


def with_attributes(span: ReadableSpan, extra: Mapping[str, AttributeValue]) -> ReadableSpan:
    """A copy of a finished span with `extra` merged into its attributes (the original, which
    other processors may still hold, is not changed)."""
    original = span.attributes or {}
    merged: dict[str, AttributeValue] = {**original, **extra}
    clone = copy.copy(span)
    bounded = BoundedAttributes(maxlen=None, attributes=merged, immutable=True)
    bounded.dropped = span.dropped_attributes
    clone._attributes = bounded  # ReadableSpan has no public copy-with
    return clone


class OpenInferenceExporter(SpanExporter):
    """Wraps an exporter: our spans leave with OpenInference keys, every span exactly once.

    A turn's kind needs to know whether a model-call span sits below it (directly, or under
    another instrumentor's framework span). Children end before their turn, so the exporter
    sees them in the same or an earlier export call; it remembers the ancestors of model-call
    spans up to the nearest span of ours (bounded) for that.
    """

    def __init__(self, inner: SpanExporter, *, remembered_parents: int = 100_000) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._model_call_parents: OrderedDict[int, None] = OrderedDict()
        self._remembered = remembered_parents

    def _note_model_calls(self, spans: Iterable[ReadableSpan]) -> None:
        parents = self._model_call_parents
        for span in spans:  # in end order: a child before its parent
            parent = span.parent
            if parent is None:
                continue
            attributes = span.attributes or {}
            # A model call marks its parent; a foreign span with a model call below it (a
            # framework span around the SDK's chat span) passes the mark up to its own parent.
            # Our spans stop it: a model call inside a tool does not make its attempt a chain.
            context = span.context
            relays = (
                context is not None
                and context.span_id in parents
                and attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) is None
            )
            if relays or is_model_call(attributes):
                parents[parent.span_id] = None
                parents.move_to_end(parent.span_id)
        while len(parents) > self._remembered:
            parents.popitem(last=False)

    def _rewrite(self, span: ReadableSpan) -> ReadableSpan:
        attributes = span.attributes or {}
        span_type = attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE)
        if not isinstance(span_type, str):
            return span
        context = span.context
        child = context is not None and context.span_id in self._model_call_parents
        extra = openinference_attributes(
            span_type, attributes, model_call_child=child, content=_content_events(span)
        )
        if not extra or all(attributes.get(k) == v for k, v in extra.items()):
            return span
        return with_attributes(span, extra)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            with self._lock:
                self._note_model_calls(spans)
                out = [self._rewrite(span) for span in spans]
        except Exception:
            internal_error("could not add OpenInference attributes; exporting spans as they are")
            out = list(spans)
        return self.inner.export(out)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


# -------------------------------------------------------------------------- configure hook
def configure_hook(
    exporters: Sequence[SpanExporter], *, enabled: bool | None = None
) -> tuple[list[SpanProcessor], list[SpanExporter]]:
    """For `configure()`: the processors to run first and the exporters to use.

    Off (the default; `enabled=None` reads AGENTSIGNALS_OPENINFERENCE): `([], exporters)`.
    On: `([OpenInferenceProcessor()], exporters wrapped in OpenInferenceExporter)`, except the
    embedded file exporter, whose store stays in our own convention (collectors reading it map
    at their egress).
    """
    on = enabled_from_env() if enabled is None else enabled
    if not on:
        return [], list(exporters)
    from agentsignals._export.file import FileSpanExporter

    wrapped: list[SpanExporter] = [
        e if isinstance(e, FileSpanExporter | OpenInferenceExporter) else OpenInferenceExporter(e)
        for e in exporters
    ]
    return [OpenInferenceProcessor()], wrapped
