"""Transcripts from spans: the one renderer every judge call reads.

An attempt's spans become numbered steps: each turn (the model's messages and reasoning) and
each top-level tool call (its arguments or command line and its result) is one step, `[S0]`,
`[S1]`, ... in order of start time (a turn before the tools it requested; ties by span id), and
each step keeps its span id, so a citation `[S12]` in a judge's answer maps back to a span.
Rendering is deterministic: the same spans give the same text, byte for byte, which is what
makes the judge's cache work.

What is read (the content contract; docs/judge.md has the table):

- turn spans and other instrumentors' model-call spans (``gen_ai.operation.name`` chat, ...):
  ``gen_ai.input.messages`` and ``gen_ai.output.messages`` (GenAI JSON messages, as live capture
  writes them), from the span attribute or from ``agent_signals.content`` events (EVENT_ONLY
  capture), or from the attributes of any event that carries those keys;
- tool spans: ``gen_ai.tool.name``, ``gen_ai.tool.call.arguments``, ``process.command_line``,
  ``gen_ai.tool.call.result``, ``process.exit.code``, ``error.type`` and the span status,
  ``agent_signals.tool.category``, ``agent_signals.tool.changed_files``;
- the task statement: the user text of the attempt's earliest input messages (the system
  prompt only when there is no user text; ``gen_ai.system_instructions`` last).

Never read: anything of the outcome (``agent_signals.verify.*``, verification and judge spans,
``gen_ai.evaluation.result`` events, rewards). The judge sees what the agent saw and did.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from agentsignals import semconv as sc
from agentsignals._features.extract import split_spans
from agentsignals._spans.model import Span, coerce_str_list

__all__ = [
    "DEFAULT_MAX_PART_CHARS",
    "Chunk",
    "Step",
    "Transcript",
    "chunk_transcript",
    "clip",
    "estimate_tokens",
    "from_spans",
    "group_by_attempt",
]

DEFAULT_MAX_PART_CHARS: Final = 6000
"""One message part, argument or tool result longer than this is cut (head and tail kept)."""

SYSTEM_INSTRUCTIONS: Final = sc.GEN_AI_SYSTEM_INSTRUCTIONS

# A tool step's phase from its category (shell and other calls take their turn's declared
# phase); `agentsignals show` gives tool calls the same phases.
CATEGORY_PHASE: Final = {
    "search": "explore",
    "read": "localize",
    "edit": "implement",
    "test": "verify",
    "submit": "verify",
}


def clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, keeping its head and tail, with a marker that
    says how much was left out (deterministic)."""
    if limit <= 0 or len(text) <= limit:
        return text
    head = max(1, limit * 2 // 3)
    tail = max(1, limit - head)
    omitted = len(text) - head - tail
    return f"{text[:head]}\n…[{omitted} characters omitted]…\n{text[-tail:]}"


def estimate_tokens(text: str, chars_per_token: float = 3.0) -> int:
    """A conservative token count (code and JSON run about 3-4 characters per token)."""
    return int(len(text) / chars_per_token) + 1


# ------------------------------------------------------------------------------------ model


@dataclass(slots=True)
class Step:
    """One numbered step of a transcript: a turn, a tool call, or (for message logs such as
    Who&When) one message."""

    index: int
    span_id: str | None
    kind: str  # "turn" | "tool" | "message"
    title: str
    body: str
    digest: str
    actor: str | None = None
    turn_index: int | None = None
    tool_index: int | None = None  # position in the record's behavior.tool_sequence
    phase: str | None = None
    # What the deterministic signals know about a tool step (first-wrong-step candidates).
    tool_name: str | None = None
    category: str | None = None
    failed: bool = False
    exit_code: int | None = None
    changed_files: list[str] | None = None
    files: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    tests_failed: list[str] | None = None
    tests_passed: list[str] | None = None
    # The content, structured (exports such as Docent's build messages from these).
    user_texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments)
    arguments: str | None = None
    command: str | None = None
    result: str | None = None
    call_id: str | None = None
    model: str | None = None
    start_ns: int = 0

    @property
    def label(self) -> str:
        return f"S{self.index}"

    def render(self) -> str:
        head = f"[{self.label}] {self.title}"
        return f"{head}\n{self.body}" if self.body else head


@dataclass
class Transcript:
    """One attempt as the judge reads it."""

    attempt_id: str
    steps: list[Step]
    task: str | None = None
    trial_id: str | None = None
    task_id: str | None = None
    trace_id: str | None = None
    attempt_span_id: str | None = None
    agent: str | None = None
    # False when no step carries any content (capture was off): such a transcript cannot be
    # judged, and the judge says so.
    has_content: bool = True
    source: str = "spans"
    # The attempt span's resource (judge spans keep its project and tags).
    resource: dict[str, Any] = field(default_factory=dict)

    @property
    def actors(self) -> list[str]:
        """Distinct step actors in order of appearance (agents of a multi-agent log)."""
        seen: dict[str, None] = {}
        for step in self.steps:
            if step.actor:
                seen.setdefault(step.actor, None)
        return list(seen)

    def render(self) -> str:
        """The whole transcript: the task, then every step."""
        return render_chunk(self, self.steps, [], 1, 1)

    def step_by_span(self) -> dict[str, Step]:
        return {s.span_id: s for s in self.steps if s.span_id}

    def fingerprint(self) -> str:
        """A short hash of the rendered transcript (changes when any content changes)."""
        return hashlib.sha256(self.render().encode("utf-8")).hexdigest()[:16]


# ------------------------------------------------------------------------------- messages


def _content_values(span: Span, key: str) -> list[str]:
    """The captured values of `key` on a span: every `agent_signals.content` event for it (in
    order), else any event attribute with that key, else the span attribute."""
    from_events: list[str] = []
    other_events: list[str] = []
    for event in span.events:
        attrs = event.attributes
        if event.name == sc.EVENT_AGENT_SIGNALS_CONTENT:
            if attrs.get(sc.AGENT_SIGNALS_CONTENT_KEY) == key:
                value = attrs.get(sc.AGENT_SIGNALS_CONTENT_VALUE)
                if isinstance(value, str):
                    from_events.append(value)
        elif event.name != sc.EVENT_GEN_AI_EVALUATION_RESULT:
            value = attrs.get(key)
            if isinstance(value, str):
                other_events.append(value)
    if from_events:
        return from_events
    if other_events:
        return other_events
    value = span.attributes.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _parse_messages(values: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """GenAI JSON messages from captured values; text that is not JSON (a value cut by the
    capture budget, or another producer's plain text) is kept as raw text."""
    messages: list[dict[str, Any]] = []
    raw: list[str] = []
    for value in values:
        try:
            data = json.loads(value)
        except (ValueError, TypeError):
            raw.append(value)
            continue
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raw.append(value)
            continue
        for item in data:
            if isinstance(item, dict):
                messages.append(item)
            elif isinstance(item, str):
                messages.append({"role": "unknown", "parts": [{"type": "text", "content": item}]})
    return messages, raw


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of a message in the GenAI shape, also from OpenAI-style messages
    (`content` as a string or a list, `tool_calls`)."""
    parts = message.get("parts")
    if isinstance(parts, list):
        return [p for p in parts if isinstance(p, dict)]
    out: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        kind = "tool_call_response" if message.get("role") == "tool" else "text"
        key = "response" if kind == "tool_call_response" else "content"
        out.append({"type": kind, key: content})
    elif isinstance(content, list):
        for item in content:
            if isinstance(item, dict):
                text = item.get("text", item.get("content"))
                kind = str(item.get("type") or "text")
                if kind in ("thinking", "reasoning"):
                    out.append({"type": "reasoning", "content": item.get("thinking", text)})
                elif kind in ("tool_use", "tool_call"):
                    out.append(
                        {
                            "type": "tool_call",
                            "name": item.get("name"),
                            "arguments": item.get("input", item.get("arguments")),
                        }
                    )
                else:
                    out.append({"type": "text", "content": text})
            elif isinstance(item, str):
                out.append({"type": "text", "content": item})
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out.insert(0, {"type": "reasoning", "content": reasoning})
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            fn = call["function"] if isinstance(call.get("function"), dict) else call
            out.append(
                {"type": "tool_call", "name": fn.get("name"), "arguments": fn.get("arguments")}
            )
    return out


def _message_key(message: dict[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, ensure_ascii=False, default=str)


def _is_tool_result(message: dict[str, Any]) -> bool:
    if message.get("role") == "tool":
        return True
    parts = _parts(message)
    return bool(parts) and all(p.get("type") == "tool_call_response" for p in parts)


def _user_text(messages: Iterable[dict[str, Any]], roles: tuple[str, ...]) -> str:
    texts: list[str] = []
    for message in messages:
        if message.get("role") not in roles or _is_tool_result(message):
            continue
        for part in _parts(message):
            if part.get("type") == "text":
                text = _text_of(part.get("content")).strip()
                if text:
                    texts.append(text)
    return "\n\n".join(texts)


@dataclass
class _Output:
    lines: list[str] = field(default_factory=list)
    first: str = ""
    reasoning: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


def _system_text(values: Sequence[str]) -> str | None:
    """The text of `gen_ai.system_instructions` (a JSON list of parts, or plain text)."""
    for value in values:
        try:
            parts = json.loads(value)
        except (ValueError, TypeError):
            return value or None
        if isinstance(parts, list):
            text = "\n".join(
                _text_of(p.get("content")) for p in parts if isinstance(p, dict)
            ).strip()
            if text:
                return text
        elif isinstance(parts, str) and parts:
            return parts
    return None


def _render_output(messages: list[dict[str, Any]], *, with_tool_calls: bool, limit: int) -> _Output:
    """Lines for a turn's output messages, the first thing it said (for the digest), and the
    parts themselves."""
    out = _Output()
    lines = out.lines
    seen: set[str] = set()
    for message in messages:
        for part in _parts(message):
            kind = part.get("type")
            if kind == "reasoning":
                text, label = _text_of(part.get("content")).strip(), "thinking"
            elif kind == "text":
                text, label = _text_of(part.get("content")).strip(), "says"
            elif kind == "tool_call":
                args = _text_of(part.get("arguments"))
                name = str(part.get("name") or "?")
                key = f"call\0{name}\0{args}"
                if key not in seen:
                    seen.add(key)
                    out.tool_calls.append((name, args))
                if not with_tool_calls:
                    continue
                text, label = f"{name}({args})", "calls"
            else:
                continue
            if not text:
                continue
            key = f"{label}\0{text}"
            if key in seen:  # the same part captured twice (reasoning and full output)
                continue
            seen.add(key)
            lines.append(f"{label}: {clip(text, limit)}")
            if label == "thinking":
                out.reasoning.append(text)
            elif label == "says":
                out.texts.append(text)
            if not out.first and label in ("says", "thinking"):
                out.first = text
    return out


# ---------------------------------------------------------------------------------- steps


def _first_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _span_order(span: Span) -> tuple[int, str]:
    return (span.start_ns, span.span_id)


def from_spans(
    spans: Sequence[Span], *, max_part_chars: int = DEFAULT_MAX_PART_CHARS
) -> Transcript:
    """The transcript of one attempt's spans (as grouped by :func:`group_by_attempt`)."""
    parts = split_spans(spans)
    attempt = parts.attempt
    tool_index = {call.span.span_id: i for i, call in enumerate(parts.tools)}
    # Model-call spans (other instrumentors) under a turn lend it their content.
    children: dict[str, list[Span]] = {}
    turn_ids = {t.span_id for t in parts.turns}
    loose_calls: list[Span] = []
    for model_call in parts.model_calls:
        parent = model_call.parent_span_id
        if parent is not None and parent in turn_ids:
            children.setdefault(parent, []).append(model_call)
        else:
            loose_calls.append(model_call)
    turn_spans = sorted([*parts.turns, *loose_calls], key=_span_order)
    tools_by_turn: dict[int, int] = {}
    for call in parts.tools:
        idx = call.span.attr_int(sc.AGENT_SIGNALS_TURN_INDEX)
        if idx is not None:
            tools_by_turn[idx] = tools_by_turn.get(idx, 0) + 1
    has_tools = bool(parts.tools)

    # (start, rank, span id) -> step builder; turns before the tools of the same instant.
    ordered: list[tuple[tuple[int, int, str], str, Any]] = []
    for turn_span in turn_spans:
        ordered.append(((turn_span.start_ns, 0, turn_span.span_id), "turn", turn_span))
    for call in parts.tools:
        ordered.append(((call.span.start_ns, 1, call.span.span_id), "tool", call))
    ordered.sort(key=lambda item: item[0])

    task: str | None = None
    # Live capture records a call's whole history, imports only what is new since the previous
    # call: a message is shown when the previous call's history (inputs and outputs) did not
    # already hold it, and only when this call's history repeats the attempt's first message
    # (a whole history); so a user who says "ok" twice is shown twice.
    first_input: str | None = None
    previous: Counter[str] = Counter()
    steps: list[Step] = []
    any_content = False
    turn_phase: dict[int, str] = {}
    agent = attempt.attr_str(sc.GEN_AI_AGENT_NAME) if attempt is not None else None
    for _, kind, item in ordered:
        index = len(steps)
        if kind == "turn":
            span: Span = item
            sources = [span, *sorted(children.get(span.span_id, ()), key=_span_order)]
            inputs: list[dict[str, Any]] = []
            outputs: list[dict[str, Any]] = []
            raw_out: list[str] = []
            raw_in: list[str] = []
            for source in sources:
                got_in, raw = _parse_messages(_content_values(source, sc.GEN_AI_INPUT_MESSAGES))
                raw_in.extend(raw)
                got_out, raw = _parse_messages(_content_values(source, sc.GEN_AI_OUTPUT_MESSAGES))
                inputs.extend(got_in)
                outputs.extend(got_out)
                raw_out.extend(raw)
            lines: list[str] = []
            user_texts: list[str] = []
            system = (
                [v for src in sources for v in _content_values(src, SYSTEM_INSTRUCTIONS)]
                if task is None
                else []
            )
            if task is None and (inputs or raw_in or system):
                task = _user_text(inputs, ("user",)) or _user_text(inputs, ("system",)) or None
                if task is None and raw_in:
                    task = raw_in[0]  # cut by the capture budget: not JSON any more
                if task is None:
                    task = _system_text(system)
                first_input = _message_key(inputs[0]) if inputs else None
            else:
                whole = bool(inputs) and _message_key(inputs[0]) == first_input
                seen = previous.copy() if whole else Counter()
                for message in inputs:
                    key = _message_key(message)
                    if seen[key] > 0:
                        seen[key] -= 1
                        continue
                    role = message.get("role")
                    if role == "assistant" or role == "system":
                        continue
                    if _is_tool_result(message) and has_tools:
                        continue  # the tool steps show it
                    text = _user_text([message], ("user", "tool", "unknown"))
                    if not text and _is_tool_result(message):
                        text = "\n".join(
                            _text_of(p.get("response", p.get("content"))) for p in _parts(message)
                        )
                    if text:
                        lines.append(f"{role or 'user'}: {clip(text, max_part_chars)}")
                        user_texts.append(text)
            if inputs or outputs:
                previous = Counter(_message_key(m) for m in [*inputs, *outputs])
            turn_idx = span.attr_int(sc.AGENT_SIGNALS_TURN_INDEX)
            own_tools = tools_by_turn.get(turn_idx, 0) if turn_idx is not None else 0
            with_calls = not has_tools or own_tools == 0
            rendered_out = _render_output(outputs, with_tool_calls=with_calls, limit=max_part_chars)
            first = rendered_out.first
            lines.extend(rendered_out.lines)
            lines.extend(f"output: {clip(r, max_part_chars)}" for r in raw_out)
            if lines:
                any_content = True
            phase = span.attr_str(sc.AGENT_SIGNALS_TURN_PHASE)
            if turn_idx is not None and phase:
                turn_phase[turn_idx] = phase
            model = span.attr_str(sc.GEN_AI_RESPONSE_MODEL) or span.attr_str(
                sc.GEN_AI_REQUEST_MODEL
            )
            title = f"turn {turn_idx}" if turn_idx is not None else "model call"
            title += " · assistant" + (f" ({model})" if model else "")
            if not lines and not (outputs or raw_out or inputs or raw_in):
                # (A turn whose only output is tool calls its tool steps show is not empty.)
                title += " · no content recorded"
            digest = f"S{index} {title.split(' · ')[0]}: " + (
                _first_line(first) if first else "(no text)"
            )
            steps.append(
                Step(
                    index=index,
                    span_id=span.span_id,
                    kind="turn",
                    title=title,
                    body="\n".join(lines),
                    digest=digest,
                    actor=agent or "assistant",
                    turn_index=turn_idx,
                    phase=phase,
                    user_texts=user_texts,
                    reasoning=rendered_out.reasoning,
                    texts=rendered_out.texts + raw_out,
                    tool_calls=rendered_out.tool_calls,
                    model=model,
                    start_ns=span.start_ns,
                )
            )
        else:
            steps.append(
                _tool_step(
                    index, item, tool_index, turn_phase, max_part_chars, agent or "assistant"
                )
            )
            if steps[-1].body:
                any_content = True
    anchor = attempt if attempt is not None else (spans[0] if spans else None)
    transcript = Transcript(
        attempt_id=parts.attempt_id or "",
        steps=steps,
        task=task,
        trial_id=parts.trial_id,
        task_id=parts.task_id,
        trace_id=anchor.trace_id if anchor is not None else None,
        attempt_span_id=attempt.span_id if attempt is not None else None,
        agent=agent,
        has_content=any_content or bool(task),
        resource=dict(anchor.resource) if anchor is not None else {},
    )
    return transcript


def _tool_step(
    index: int,
    call: Any,
    tool_index: dict[str, int],
    turn_phase: dict[int, str],
    limit: int,
    actor: str,
) -> Step:
    span: Span = call.span
    name = call.name or span.attr_str(sc.GEN_AI_TOOL_NAME) or "tool"
    category = call.category
    exit_code = span.attr_int(sc.PROCESS_EXIT_CODE)
    failed = span.is_error
    facts: list[str] = []
    if category:
        facts.append(category)
    if exit_code is not None:
        facts.append(f"exit {exit_code}")
    if span.attr_bool(sc.AGENT_SIGNALS_TOOL_TIMED_OUT):
        facts.append("timed out")
    if failed:
        error = span.attr_str(sc.ERROR_TYPE) or span.status_message or "error"
        facts.append(f"failed: {_first_line(error, 80)}")
    changed = call.changed_files
    if changed:
        facts.append("changed " + ", ".join(changed[:8]) + (" …" if len(changed) > 8 else ""))
    title = f"tool {name}" + (f" ({'; '.join(facts)})" if facts else "")
    lines: list[str] = []
    commands = _content_values(span, sc.PROCESS_COMMAND_LINE)
    arguments = _content_values(span, sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    shown_args = ""
    if commands:
        shown_args = commands[-1]
        lines.append(f"$ {clip(shown_args, limit)}")
    elif arguments:
        shown_args = arguments[-1]
        lines.append(f"arguments: {clip(shown_args, limit)}")
    results = _content_values(span, sc.GEN_AI_TOOL_CALL_RESULT)
    if results:
        result = results[-1]
        lines.append("result:" + ("\n" + clip(result, limit) if result else " (empty)"))
    turn_idx = span.attr_int(sc.AGENT_SIGNALS_TURN_INDEX)
    phase = CATEGORY_PHASE.get(category or "") or (
        turn_phase.get(turn_idx) if turn_idx is not None else None
    )
    outcome = "failed" if failed else (f"exit {exit_code}" if exit_code is not None else "ok")
    digest = f"S{index} tool {name}" + (f": {_first_line(shown_args, 80)}" if shown_args else "")
    digest += f" -> {outcome}"
    if not lines:
        title += " · no content recorded"
    failed_tests = coerce_str_list(span.attr(sc.AGENT_SIGNALS_TEST_FAILED))
    passed_tests = coerce_str_list(span.attr(sc.AGENT_SIGNALS_TEST_PASSED))
    is_test_run = span.attr_int(sc.AGENT_SIGNALS_TEST_FAILED_COUNT) is not None
    return Step(
        index=index,
        span_id=span.span_id,
        kind="tool",
        title=title,
        body="\n".join(lines),
        digest=digest,
        actor=actor,
        turn_index=turn_idx,
        tool_index=tool_index.get(span.span_id),
        phase=phase,
        tool_name=name,
        category=category,
        failed=failed,
        exit_code=exit_code,
        changed_files=list(changed) if changed is not None else None,
        files=span.attr_str_list(sc.AGENT_SIGNALS_TOOL_FILES) or [],
        fingerprint=span.attr_str(sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT),
        tests_failed=(failed_tests or []) if is_test_run else None,
        tests_passed=(passed_tests or []) if is_test_run else None,
        arguments=arguments[-1] if arguments else None,
        command=commands[-1] if commands else None,
        result=results[-1] if results else None,
        call_id=span.attr_str(sc.GEN_AI_TOOL_CALL_ID),
        start_ns=span.start_ns,
    )


def group_by_attempt(spans: Iterable[Span]) -> dict[str, list[Span]]:
    """Spans grouped by `agent_signals.attempt.id` (spans without one are left out: judge and
    verification results, and anything not inside an attempt)."""
    groups: dict[str, list[Span]] = {}
    for span in spans:
        attempt_id = span.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_ID)
        if not isinstance(attempt_id, str):
            continue
        kind = span.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE)
        if kind in (sc.SpanType.VERIFICATION.value, sc.SpanType.JUDGE.value):
            continue
        groups.setdefault(attempt_id, []).append(span)
    return groups


# --------------------------------------------------------------------------------- chunks


@dataclass(frozen=True)
class Chunk:
    """One part of a transcript that fits the judge's context."""

    index: int
    total: int
    first_step: int
    last_step: int
    text: str
    # Steps cut to fit (head and tail kept): the judgment of such a chunk saw less.
    clipped_steps: tuple[int, ...] = ()

    @property
    def step_labels(self) -> list[str]:
        return [f"S{i}" for i in range(self.first_step, self.last_step + 1)]


def render_chunk(
    transcript: Transcript,
    steps: Sequence[Step],
    earlier: Sequence[Step],
    part: int,
    parts: int,
    *,
    task_limit: int | None = None,
    summary_limit: int | None = None,
    rendered: Sequence[str] | None = None,
) -> str:
    """The text of one chunk: the task, a summary of the steps before it, then its steps."""
    task = transcript.task if transcript.task else "(no task statement was recorded)"
    if task_limit is not None:
        task = clip(task, task_limit)
    out = ["## Task", task, ""]
    if earlier:
        digest = [s.digest for s in earlier]
        if summary_limit is not None:
            digest = _fit_lines(digest, summary_limit)
        out.append(
            f"## Earlier steps (S{earlier[0].index}-S{earlier[-1].index}: one line each; "
            "not shown in full in this part)"
        )
        out.extend(digest)
        out.append("")
    if steps:
        span = f"S{steps[0].index}-S{steps[-1].index}"
        where = f"part {part} of {parts}" if parts > 1 else "the whole run"
        out.append(f"## Steps {span} ({where})")
        bodies = rendered if rendered is not None else [s.render() for s in steps]
        for body in bodies:
            out.append(body)
    else:
        out.append("## Steps")
        out.append("(no steps were recorded)")
    return "\n".join(out)


def _fit_lines(lines: list[str], limit: int) -> list[str]:
    """Keep the first and last lines within `limit` characters, marking what was left out."""
    total = sum(len(x) + 1 for x in lines)
    if total <= limit:
        return lines
    head: list[str] = []
    tail: list[str] = []
    used = 60  # room for the marker line
    i, j = 0, len(lines) - 1
    take_head = True
    while i <= j:
        line = lines[i] if take_head else lines[j]
        if used + len(line) + 1 > limit:
            break
        used += len(line) + 1
        if take_head:
            head.append(line)
            i += 1
        else:
            tail.append(line)
            j -= 1
        take_head = not take_head
    omitted = j - i + 1
    return [*head, f"… {omitted} more steps not listed …", *reversed(tail)]


def _units(steps: Sequence[Step]) -> list[list[Step]]:
    """Steps grouped at turn boundaries: a turn and the tool calls after it."""
    units: list[list[Step]] = []
    for step in steps:
        if step.kind in ("turn", "message") or not units:
            units.append([step])
        else:
            units[-1].append(step)
    return units


def chunk_transcript(
    transcript: Transcript,
    budget_tokens: int,
    *,
    chars_per_token: float = 3.0,
) -> list[Chunk]:
    """Split a transcript at turn boundaries into chunks of at most `budget_tokens` (estimated)
    each. Every chunk repeats the task (up to a fifth of the budget) and lists the earlier
    steps one line each (up to a fifth); a turn too large for a chunk is split between its
    steps, and a single step too large is cut (head and tail kept) and marked."""
    budget_chars = max(400, int(budget_tokens * chars_per_token))
    whole = transcript.render()
    if len(whole) <= budget_chars:
        last = transcript.steps[-1].index if transcript.steps else -1
        return [Chunk(0, 1, 0, last, whole)]
    task_limit = budget_chars // 5
    summary_limit = budget_chars // 5
    task_chars = min(len(transcript.task or "") + 40, task_limit + 60)
    room = budget_chars - task_chars - summary_limit - 120
    room = max(room, budget_chars // 3)
    # Pack units (and, for oversized units, single steps) into groups of rendered text.
    groups: list[list[tuple[Step, str, bool]]] = []
    current: list[tuple[Step, str, bool]] = []
    used = 0
    for unit in _units(transcript.steps):
        pieces = [(s, s.render()) for s in unit]
        size = sum(len(text) + 1 for _, text in pieces)
        if current and used + size > room and size <= room:
            groups.append(current)
            current, used = [], 0
        if size <= room:
            current.extend((s, text, False) for s, text in pieces)
            used += size
            continue
        for step, text in pieces:
            clipped = False
            if len(text) + 1 > room:
                text = clip(text, room - 80)
                clipped = True
            if current and used + len(text) + 1 > room:
                groups.append(current)
                current, used = [], 0
            current.append((step, text, clipped))
            used += len(text) + 1
    if current:
        groups.append(current)
    chunks: list[Chunk] = []
    total = len(groups)
    for i, group in enumerate(groups):
        steps = [s for s, _, _ in group]
        earlier = transcript.steps[: steps[0].index]
        text = render_chunk(
            transcript,
            steps,
            earlier,
            i + 1,
            total,
            task_limit=task_limit,
            summary_limit=summary_limit,
            rendered=[t for _, t, _ in group],
        )
        chunks.append(
            Chunk(
                index=i,
                total=total,
                first_step=steps[0].index,
                last_step=steps[-1].index,
                text=text,
                clipped_steps=tuple(s.index for s, _, c in group if c),
            )
        )
    return chunks


def steps_window(
    transcript: Transcript,
    last: int,
    budget_tokens: int,
    *,
    first: int = 0,
    chars_per_token: float = 3.0,
) -> Chunk:
    """Steps `first`..`last` for an incremental judgment: as many of the latest as fit in full,
    the earlier ones as summary lines (step-by-step and binary search over a prefix)."""
    budget_chars = max(400, int(budget_tokens * chars_per_token))
    steps = transcript.steps[first : last + 1]
    task_limit = budget_chars // 5
    summary_limit = budget_chars // 5
    room = max(budget_chars - min(len(transcript.task or ""), task_limit) - summary_limit - 120,
               budget_chars // 3)  # fmt: skip
    shown: list[tuple[Step, str, bool]] = []
    used = 0
    for step in reversed(steps):
        text = step.render()
        clipped = False
        if len(text) + 1 > room:
            text, clipped = clip(text, room - 80), True
        if shown and used + len(text) + 1 > room:
            break
        shown.append((step, text, clipped))
        used += len(text) + 1
    shown.reverse()
    start = shown[0][0].index if shown else last + 1
    earlier = transcript.steps[:start]
    text = render_chunk(
        transcript,
        [s for s, _, _ in shown],
        earlier,
        1,
        1,
        task_limit=task_limit,
        summary_limit=summary_limit,
        rendered=[t for _, t, _ in shown],
    )
    return Chunk(0, 1, start, last, text, clipped_steps=tuple(s.index for s, _, c in shown if c))
