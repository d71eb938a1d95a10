"""Spans other instrumentors made: their usage in our terms, and agents only they traced.

Two jobs, both done on spans before feature extraction sees them, so `extract.py` works on one
convention:

**Usage under GenAI names** (:func:`normalise`). OpenInference instrumentors (the ones Phoenix,
Langfuse and Logfire recommend) record token counts as ``llm.token_count.*`` and mark model
calls with ``openinference.span.kind = LLM``; OpenLLMetry (Traceloop) used
``gen_ai.usage.prompt_tokens`` / ``completion_tokens`` and ``llm.request.type`` before the
current GenAI names. A span that carries those gets the current names (``gen_ai.usage.*``,
``gen_ai.operation.name = chat``) added, never replacing a GenAI value it already has. Usage is
then counted once by the usual rule (a model call inside another model call with usage is the
same call; a turn's own ``record_usage`` gives way to its model calls' counts, field by field).

**Agents only others traced** (:class:`ForeignTraces`). A trace without any agentsignals span
(an OpenInference smolagents or OpenAI agent, an OpenLLMetry workflow, OTel GenAI
``invoke_agent`` spans) becomes attempts: one per outermost agent span (OpenInference AGENT,
``gen_ai.operation.name = invoke_agent``, Traceloop ``agent``), else one for the whole trace when
it holds model calls or tool calls. Its outermost model-call spans become turns (in start
order), its TOOL / ``execute_tool`` / Traceloop ``tool`` spans tool calls with their arguments
when captured (Traceloop's ``traceloop.entity.input`` included). Traceloop's decorators mark
spans with ``traceloop.span.kind`` (``workflow``, ``task``, ``agent``, ``tool``); a ``workflow``
around an ``agent`` is outside the attempt, a ``workflow`` alone is one. Spans that fit nowhere
are counted with the reason, so a run that yields no record says why instead of "0 attempt
records".
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Final

from agentsignals import semconv as sc
from agentsignals._classify.tools import category_for
from agentsignals._spans.model import AttrValue, Span, coerce_int, coerce_str

__all__ = ["ForeignTraces", "normalise", "reasons_text"]

_TYPE: Final = sc.AGENT_SIGNALS_SPAN_TYPE
_OP: Final = sc.GEN_AI_OPERATION_NAME
_OI_KIND: Final = "openinference.span.kind"
_TL_KIND: Final = "traceloop.span.kind"
_TL_REQUEST: Final = "llm.request.type"
_TL_INPUT: Final = "traceloop.entity.input"
_MODEL_CALL_OPS: Final = frozenset({"chat", "text_completion", "generate_content"})

# Other conventions' token counts -> the GenAI attribute they fill.
_USAGE_ALIASES: Final = (
    (sc.GEN_AI_USAGE_INPUT_TOKENS, ("llm.token_count.prompt", "gen_ai.usage.prompt_tokens")),
    (
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        ("llm.token_count.completion", "gen_ai.usage.completion_tokens"),
    ),
    (
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        ("llm.token_count.prompt_details.cache_read", "gen_ai.usage.cache_read_input_tokens"),
    ),
    (
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        (
            "llm.token_count.prompt_details.cache_write",
            "gen_ai.usage.cache_creation_input_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
        ),
    ),
    (
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        (
            "llm.token_count.completion_details.reasoning",
            "gen_ai.usage.reasoning_tokens",
            "llm.usage.reasoning_tokens",
        ),
    ),
)
_TOTALS: Final = ("llm.token_count.total", "llm.usage.total_tokens", "gen_ai.usage.total_tokens")
# Any of these on a span without our span type means there may be something to map.
_MARKERS: Final = frozenset(
    {_OI_KIND, _TL_REQUEST, *(alias for _, aliases in _USAGE_ALIASES for alias in aliases)}
)


def normalise(span: Span) -> Span:
    """Add the GenAI names for another convention's model-call marker and token counts to
    `span` (in place; our own spans and spans with nothing to map are left as they are)."""
    attrs = span.attributes
    if _TYPE in attrs or _MARKERS.isdisjoint(attrs):
        return span
    if _OP not in attrs:
        if attrs.get(_OI_KIND) == "LLM":
            attrs[_OP] = "chat"
        else:
            request = attrs.get(_TL_REQUEST)
            if request in ("chat", "completion"):
                attrs[_OP] = "chat" if request == "chat" else "text_completion"
    for target, aliases in _USAGE_ALIASES:
        if target in attrs:
            continue
        for alias in aliases:
            value = coerce_int(attrs.get(alias))
            if value is not None:
                attrs[target] = value
                break
    # A total with one part known gives the other (a true difference, not an estimate).
    total = next((coerce_int(attrs.get(k)) for k in _TOTALS if k in attrs), None)
    if total is not None:
        inp = coerce_int(attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS))
        out = coerce_int(attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
        if inp is not None and out is None and total >= inp:
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = total - inp
        elif out is not None and inp is None and total >= out:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = total - out
    return span


# ------------------------------------------------------------------------ foreign agents


def _is_agent(attrs: dict[str, AttrValue]) -> bool:
    return (
        attrs.get(_OI_KIND) == "AGENT"
        or attrs.get(_OP) in ("invoke_agent", "create_agent")
        or attrs.get(_TL_KIND) == "agent"
    )


def _is_model_call(attrs: dict[str, AttrValue]) -> bool:
    return attrs.get(_OP) in _MODEL_CALL_OPS or attrs.get(_OI_KIND) == "LLM"


def _is_tool(attrs: dict[str, AttrValue]) -> bool:
    return (
        attrs.get(_OI_KIND) == "TOOL"
        or attrs.get(_OP) == "execute_tool"
        or attrs.get(_TL_KIND) == "tool"
    )


def _tool_name(span: Span) -> str:
    a = span.attributes
    for key in (sc.GEN_AI_TOOL_NAME, "tool.name", "traceloop.entity.name"):
        name = coerce_str(a.get(key))
        if name:
            return name
    name = span.name
    return name[len("execute_tool ") :] if name.startswith("execute_tool ") else name


def _tool_arguments(span: Span) -> dict[str, object] | None:
    """The tool call's arguments by name, when the instrumentor captured them: the GenAI
    attribute, OpenInference's ``tool.parameters`` / ``input.value``, or Traceloop's
    ``traceloop.entity.input`` (``{"args": [...], "kwargs": {...}}`` as its decorators write it).
    A Traceloop tool called positionally has no argument names; its first positional string is
    offered as the ``command`` (all the category refinement reads: ``bash("pytest -q")``)."""
    a = span.attributes
    for key in (sc.GEN_AI_TOOL_CALL_ARGUMENTS, "tool.parameters", "input.value", _TL_INPUT):
        raw = a.get(key)
        if isinstance(raw, str) and raw[:1] == "{" and len(raw) < 1_000_000:
            try:
                parsed: object = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if not isinstance(parsed, dict):
                continue
            arguments = _traceloop_arguments(parsed) if key == _TL_INPUT else parsed
            if arguments is not None:
                return arguments
    return None


def _traceloop_arguments(entity_input: dict[str, object]) -> dict[str, object] | None:
    kwargs, args = entity_input.get("kwargs"), entity_input.get("args")
    out: dict[str, object] = dict(kwargs) if isinstance(kwargs, dict) else {}
    if (
        "command" not in out
        and "cmd" not in out
        and isinstance(args, list)
        and args
        and isinstance(args[0], str)
    ):
        out["command"] = args[0]
    return out or None


@dataclass
class _Trace:
    spans: list[Span] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    root_seen_at: float | None = None
    last_seen: float = 0.0


class ForeignTraces:
    """Holds spans without agentsignals identity per trace until the trace's root span
    arrives (plus the grace period), then turns agent traces into attempt spans."""

    def __init__(
        self, *, grace: float, idle_timeout: float, max_traces: int = 10_000,
        max_spans_per_trace: int = 100_000,
    ) -> None:  # fmt: skip
        self.grace = grace
        self.idle_timeout = idle_timeout
        self.max_traces = max_traces
        self.max_spans = max_spans_per_trace
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        # Traces that hold agentsignals spans: their other spans are outside our attempts.
        self._ours: OrderedDict[str, None] = OrderedDict()
        # Why spans were left unattributed: reason -> count.
        self.reasons: dict[str, int] = {}
        self.attempts = 0
        # Traces whose root arrived, in arrival order: released after the grace period.
        self._rooted: deque[tuple[float, str]] = deque()
        self._last_idle_scan: float | None = None

    def mark_ours(self, trace_id: str) -> None:
        ours = self._ours
        if trace_id in ours:
            ours.move_to_end(trace_id)
            return
        ours[trace_id] = None
        if len(ours) > 200_000:
            ours.popitem(last=False)

    def _count(self, reason: str, n: int) -> None:
        if n:
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def add(self, span: Span, now: float) -> list[Span]:
        """Hold `span`; returns spans released by this arrival (usually none)."""
        trace = self._traces.get(span.trace_id)
        released: list[Span] = []
        if trace is None:
            trace = self._traces[span.trace_id] = _Trace()
            if len(self._traces) > self.max_traces:
                old_id, old = self._traces.popitem(last=False)
                released += self._release(old_id, old)
        else:
            self._traces.move_to_end(span.trace_id)
        trace.last_seen = now
        if span.span_id in trace.ids:
            return released
        if len(trace.spans) >= self.max_spans:
            self._count("trace too large to hold (more spans than the limit)", 1)
            return released
        trace.ids.add(span.span_id)
        trace.spans.append(span)
        if span.parent_span_id is None and trace.root_seen_at is None:
            trace.root_seen_at = now
            self._rooted.append((now, span.trace_id))
        return released

    def tick(self, now: float) -> list[Span]:
        """Release traces whose root arrived at least `grace` ago, or idle too long."""
        out: list[Span] = []
        rooted = self._rooted
        while rooted and now - rooted[0][0] >= self.grace:
            _, tid = rooted.popleft()
            trace = self._traces.pop(tid, None)
            if trace is not None:
                out += self._release(tid, trace)
        if self._last_idle_scan is None:
            self._last_idle_scan = now
        elif self._traces and now - self._last_idle_scan >= min(self.idle_timeout / 10, 60.0):
            self._last_idle_scan = now
            idle = [t for t, v in self._traces.items() if now - v.last_seen >= self.idle_timeout]
            for tid in idle:
                out += self._release(tid, self._traces.pop(tid))
        return out

    def flush(self) -> list[Span]:
        self._rooted.clear()
        out: list[Span] = []
        for tid in list(self._traces):
            out += self._release(tid, self._traces.pop(tid))
        return out

    def _release(self, trace_id: str, trace: _Trace) -> list[Span]:
        if trace_id in self._ours:
            self._count("outside any agentsignals attempt of their trace", len(trace.spans))
            return []
        return self._translate(trace_id, trace.spans)

    def _translate(self, trace_id: str, spans: list[Span]) -> list[Span]:
        by_id = {s.span_id: s for s in spans}
        children: dict[str | None, list[Span]] = {}
        for s in spans:
            parent = s.parent_span_id if s.parent_span_id in by_id else None
            children.setdefault(parent, []).append(s)
        tops = children.get(None, [])
        # Attempt roots: outermost agent spans; else the trace's top spans if they hold work.
        roots: list[Span] = []
        stack = list(tops)
        while stack:
            s = stack.pop()
            if _is_agent(s.attributes):
                roots.append(s)
            else:
                stack.extend(children.get(s.span_id, []))
        if not roots:
            if not any(_is_model_call(s.attributes) or _is_tool(s.attributes) for s in spans):
                self._count("no agent, model-call or tool spans in their trace", len(spans))
                return []
            roots = sorted(tops, key=lambda s: (s.start_ns, s.span_id))
            if len(roots) > 1:
                # Several top spans (the trace's root was not received): one attempt for all.
                return self._attempt(trace_id, None, roots, children)
        out: list[Span] = []
        covered = 0
        for root in sorted(roots, key=lambda s: (s.start_ns, s.span_id)):
            made = self._attempt(trace_id, root, [root], children)
            covered += len(made)
            out += made
        self._count("outside the agent spans of their trace", len(spans) - covered)
        return out

    def _attempt(
        self,
        trace_id: str,
        root: Span | None,
        tops: list[Span],
        children: dict[str | None, list[Span]],
    ) -> list[Span]:
        anchor = root.span_id if root is not None else tops[0].span_id
        attempt_id = f"{trace_id}-{anchor}"
        members: list[Span] = []
        turns: list[Span] = []
        tools: list[Span] = []
        # Walk down; a model call inside another model call is the same call, not a turn.
        stack: list[tuple[Span, bool]] = [(s, False) for s in tops]
        while stack:
            s, in_model_call = stack.pop()
            members.append(s)
            a = s.attributes
            model_call = _is_model_call(a) and s is not root
            if model_call and not in_model_call:
                turns.append(s)
            elif _is_tool(a) and s is not root:
                tools.append(s)
            for child in children.get(s.span_id, []):
                stack.append((child, in_model_call or model_call))
        self.attempts += 1
        identity: dict[str, AttrValue] = {
            sc.AGENT_SIGNALS_ATTEMPT_ID: attempt_id,
            sc.AGENT_SIGNALS_ATTEMPT_INDEX: 0,
        }
        for s in members:
            s.attributes.update(identity)
        if root is not None:
            a = root.attributes
            a[_TYPE] = sc.SpanType.ATTEMPT.value
            name = coerce_str(a.get(sc.GEN_AI_AGENT_NAME)) or coerce_str(a.get("agent.name"))
            if name and sc.GEN_AI_AGENT_NAME not in a:
                a[sc.GEN_AI_AGENT_NAME] = name
        turns.sort(key=lambda s: (s.start_ns, s.span_id))
        turn_starts: list[tuple[int, int]] = []
        for index, s in enumerate(turns):
            s.attributes[_TYPE] = sc.SpanType.TURN.value
            s.attributes[sc.AGENT_SIGNALS_TURN_INDEX] = index
            turn_starts.append((s.start_ns, index))
        for s in tools:
            a = s.attributes
            name = _tool_name(s)
            a[_TYPE] = sc.SpanType.TOOL.value
            a[sc.GEN_AI_TOOL_NAME] = name
            if sc.AGENT_SIGNALS_TOOL_CATEGORY not in a:
                a[sc.AGENT_SIGNALS_TOOL_CATEGORY] = category_for(name, _tool_arguments(s)).value
            # The latest turn started before the tool: the model call that asked for it.
            latest = [i for start, i in turn_starts if start <= s.start_ns]
            if latest and sc.AGENT_SIGNALS_TURN_INDEX not in a:
                a[sc.AGENT_SIGNALS_TURN_INDEX] = latest[-1]
        return members


def reasons_text(reasons: dict[str, int]) -> str:
    """`12 spans outside ...; 3 spans ...` for a summary line."""
    ordered = sorted(reasons.items(), key=lambda item: -item[1])
    return "; ".join(f"{n} span(s) {why}" for why, n in ordered)
