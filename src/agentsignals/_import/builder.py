"""Build the spans of one imported trajectory: trial › attempt › turn › tool, under the same
semantic convention the SDK emits, so `agentsignals features` treats old runs like live ones.

Format readers call `TrajectoryBuilder`; they never build attribute dicts themselves. Real
timestamps are used where the file has them; otherwise times are synthesized in step order
(one millisecond per span, from the file's start time if known) and every span is marked with
`agent_signals.import.synthetic_time`. What a format cannot tell is left out, so the feature is
null rather than zero.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentsignals import semconv as sc
from agentsignals._classify.regions import Region, region_attributes
from agentsignals._classify.shell import read_command, search_hits
from agentsignals._classify.tools import describe_call
from agentsignals._instrument.capture import SpanContent, fingerprint, record_content
from agentsignals._instrument.runtime import Settings
from agentsignals._spans.model import STATUS_ERROR, AttrScalar, AttrValue, Event, Span

# SWE-agent's and OpenHands' str_replace_editor answer `view <folder>` with a listing.
_DIRECTORY_LISTING = re.compile(r"\s*Here's the files and directories up to \d+ levels? deep")
_SYNTHETIC_START_NS = 1_577_836_800_000_000_000  # 2020-01-01: obviously not a real run time
_STEP_NS = 1_000_000
MAX_NS = (1 << 63) - 1  # span times are kept to what a signed 64-bit nanosecond clock holds


def valid_ns(ns: int | None) -> int | None:
    """Unix nanoseconds a span can carry (0 .. 2**63-1), else None: not a recorded time."""
    return ns if ns is not None and 0 <= ns <= MAX_NS else None


def _hex_id(*parts: object, size: int) -> str:
    """Deterministic ids: importing the same file twice gives the same spans (dedup works).
    Lone surrogates (a path that is not UTF-8) hash as themselves instead of failing."""
    data = "\x1f".join(map(str, parts)).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=size).hexdigest()
    return digest if int(digest, 16) else "1".rjust(size * 2, "0")


@dataclass
class _Clock:
    start_ns: int | None
    synthetic: bool = False
    _next: int = 0

    def tick(self) -> int:
        if self._next == 0:
            self._next = self.start_ns or _SYNTHETIC_START_NS
        value = self._next
        self._next += _STEP_NS
        return value

    def at_least(self, ns: int) -> None:
        self._next = max(self._next, ns + _STEP_NS)


def _usage(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None,
    cache_write_tokens: int | None,
    reasoning_tokens: int | None,
    cost_usd: float | None,
) -> dict[str, AttrValue | None]:
    """GenAI usage attributes (None where the file did not record a value)."""
    return {
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read_tokens,
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: cache_write_tokens,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: reasoning_tokens,
        sc.AGENT_SIGNALS_USAGE_COST_USD: float(cost_usd) if cost_usd is not None else None,
    }


def patch_stats(patch: str) -> list[tuple[str, int, int]]:
    """(file, lines added, lines removed) per file of a unified diff, in order."""
    stats: dict[str, list[int]] = {}
    current: str | None = None
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            parts = line.split(" b/", 1)
            current = parts[1].strip() if len(parts) == 2 else None
            if current is not None:
                stats.setdefault(current, [0, 0])
        elif line.startswith("+++ "):
            path = line[4:].strip().split("\t", 1)[0]
            if path != "/dev/null":
                current = path[2:] if path.startswith("b/") else path
                stats.setdefault(current, [0, 0])
        elif line.startswith("--- "):
            path = line[4:].strip().split("\t", 1)[0]
            if path != "/dev/null" and current is None:
                current = path[2:] if path.startswith("a/") else path
                stats.setdefault(current, [0, 0])
        elif current is not None and line.startswith("+") and not line.startswith("+++"):
            stats[current][0] += 1
        elif current is not None and line.startswith("-") and not line.startswith("---"):
            stats[current][1] += 1
    return [(path, added, removed) for path, (added, removed) in stats.items()]


def created_files(patch: str) -> list[str]:
    """Files a unified diff creates (`--- /dev/null`, or `new file mode` in git's header)."""
    out: list[str] = []
    created = False
    old_null = False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            created = old_null = False
        elif line.startswith("new file mode"):
            created = True
        elif line.startswith("--- "):
            old_null = line[4:].strip().split("\t", 1)[0] == "/dev/null"
        elif line.startswith("+++ ") and (created or old_null):
            path = line[4:].strip().split("\t", 1)[0]
            if path != "/dev/null":
                path = path[2:] if path.startswith("b/") else path
                if path not in out:
                    out.append(path)
            created = old_null = False
    return out


# ------------------------------------------------------------------------------------ content

_CONTENT: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "agentsignals_import_content", default=None
)


def content_settings(
    *,
    max_value_bytes: int = 16 * 1024,
    max_span_bytes: int = 64 * 1024,
    redact: Any = None,
) -> Settings:
    """Capture settings for `import --content`: the live defaults (16 KiB a value, 64 KiB a
    span, the built-in secret rules, then `redact`), on span attributes, or on events too when
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT says EVENT_ONLY or SPAN_AND_EVENT."""
    from agentsignals._settings import capture_mode

    _, to_span, to_events = capture_mode(True)
    return Settings(
        capture_content=True,
        capture_to_span=to_span,
        capture_to_events=to_events,
        max_value_bytes=max_value_bytes,
        max_span_bytes=max_span_bytes,
        redact=redact,
    )


@contextlib.contextmanager
def capturing_content(settings: Settings | None) -> Iterator[None]:
    """Trajectory builders created inside the block record content with `settings` (None:
    none). The format readers need no parameter for it: `import_file` sets it around a read."""
    token = _CONTENT.set(settings)
    try:
        yield
    finally:
        _CONTENT.reset(token)


class _Sink:
    """What `record_content` writes to, on an imported span: its attributes and events."""

    __slots__ = ("span", "time_ns")

    def __init__(self, span: Span, time_ns: int) -> None:
        self.span = span
        self.time_ns = time_ns

    def set_attribute(self, key: str, value: Any) -> None:
        self.span.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None) -> None:
        self.span.events.append(Event(name=name, time_ns=self.time_ns, attributes=attributes or {}))


def _record(settings: Settings, span: Span, values: Sequence[tuple[str, Any, int]]) -> None:
    """Record (key, value, time) captured values on an imported span exactly as live capture
    does: secrets redacted, each value and the span within the byte budget, truncations and
    redactions counted on the span."""
    budget = SpanContent()
    sink = _Sink(span, span.start_ns)
    for key, value, time_ns in values:
        if value is None:
            continue
        sink.time_ns = time_ns
        record_content(sink, budget, key, value, settings)
    budget.flush(sink)


def _text_parts(kind: str, texts: Sequence[str | None]) -> list[dict[str, Any]]:
    return [{"type": kind, "content": t} for t in texts if t]


@dataclass
class _TurnContent:
    """What a turn's content will be once its tool calls are known (content capture only)."""

    span: Span
    inputs: list[tuple[str, str]]
    reasoning: str | None
    texts: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def record(self, settings: Settings) -> None:
        system = [t for role, t in self.inputs if role == "system" and t]
        messages = [
            {"role": role, "parts": [{"type": "text", "content": text}]}
            for role, text in self.inputs
            if role != "system" and text
        ]
        parts = [
            *_text_parts("reasoning", [self.reasoning]),
            *_text_parts("text", self.texts),
            *self.calls,
        ]
        output = [{"role": "assistant", "parts": parts}] if parts else None
        start, end = self.span.start_ns, self.span.end_ns
        _record(
            settings,
            self.span,
            [
                # The task first, then what the model said: a system prompt that does not fit
                # is what the span budget cuts.
                (sc.GEN_AI_INPUT_MESSAGES, messages or None, start),
                (sc.GEN_AI_OUTPUT_MESSAGES, output, end),
                (sc.GEN_AI_SYSTEM_INSTRUCTIONS, _text_parts("text", system) or None, start),
            ],
        )


def _call_part(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "tool_call"}
    if call_id:
        part["id"] = call_id
    part["name"] = name
    part["arguments"] = arguments
    return part


@dataclass
class TurnRef:
    """A turn added to an attempt; tools may refer to it."""

    index: int
    span_id: str
    end_ns: int


@dataclass
class AttemptBuilder:
    """Adds turns and tools to one attempt; `end()` closes it."""

    trajectory: TrajectoryBuilder
    attempt_id: str
    index: int
    span_id: str
    start_ns: int
    attributes: dict[str, AttrValue]
    parent_span_id: str | None
    synthetic_start: bool = False
    spans: list[Span] = field(default_factory=list)
    turns: list[TurnRef] = field(default_factory=list)
    _tool_seq: itertools.count[int] = field(default_factory=itertools.count)
    _last_tool_start: int = -1
    _ended: bool = False
    parent: AttemptBuilder | None = None
    _edit_calls: int = 0  # edit-tool calls that did not fail
    _subagent_edit_calls: int = 0  # the same, made by subagents this attempt started
    _user_turns: int = 0
    _events: list[Event] = field(default_factory=list)  # on the attempt span (compactions)

    def _identity(self, turn: int | None = None) -> dict[str, AttrValue]:
        ids: dict[str, AttrValue] = {
            sc.AGENT_SIGNALS_TRIAL_ID: self.trajectory.trial_id,
            sc.AGENT_SIGNALS_ATTEMPT_ID: self.attempt_id,
            sc.AGENT_SIGNALS_ATTEMPT_INDEX: self.index,
        }
        if turn is not None:
            ids[sc.AGENT_SIGNALS_TURN_INDEX] = turn
        return ids

    def turn(
        self,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        model: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        cost_usd: float | None = None,
        reasoning: str | None = None,
        thought: str | None = None,
        phase: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        compacted: bool = False,
        inputs: Sequence[tuple[str, str]] | None = None,
        text: str | None = None,
        calls: Sequence[tuple[str, Any]] | None = None,
        count_text: bool = False,
    ) -> TurnRef:
        """One model call. Usage is per call here; attempt totals go to `end(totals=...)`.

        `reasoning` is the model's reasoning (thinking blocks, `reasoning_content`, `<think>`):
        "" when the file shows the call had none, None when the file cannot tell. `thought` is
        the visible text the model wrote with its action (SWE-agent's and OpenHands'
        `thought`, mini-swe-agent's THOUGHT): not a reasoning block. Plan steps and
        self-corrections are read from both.

        Content (recorded only when the import captures content; see `capturing_content`):
        `inputs` are the (role, text) messages the model was given that are new since its
        previous call, the task and the system prompt on the first, the user's later messages
        after; tool results are not among them (their tool spans carry them). `text` is the
        model's visible answer when it is not `thought` (default: `thought`); `calls` are
        tool calls it asked for that no `tool()` records (its tool spans add theirs).

        `count_text` (interactive sessions): record the words, hedges and confirmation requests
        of `text` (0 words when None: the call wrote nothing to the user) and the assumption
        phrases of `reasoning`, without content."""
        from agentsignals._classify import reasoning_text, session_text

        index = len(self.turns)
        start, end = self.trajectory._times(start_ns, end_ns)
        attrs: dict[str, AttrValue | None] = {
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.TURN.value,
            **self._identity(index),
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.GEN_AI_PROVIDER_NAME: provider,
            **_usage(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
                cost_usd,
            ),
            sc.AGENT_SIGNALS_TURN_PHASE: phase,
            sc.GEN_AI_RESPONSE_FINISH_REASONS: list(finish_reasons) if finish_reasons else None,
            # GenAI: set only to true, on the call that works from a compacted context.
            sc.GEN_AI_CONVERSATION_COMPACTED: True if compacted else None,
        }
        if reasoning is not None:
            attrs[sc.AGENT_SIGNALS_TURN_REASONING_PRESENT] = bool(reasoning)
            attrs[sc.AGENT_SIGNALS_TURN_REASONING_CHARS] = len(reasoning)
        if thought is not None:
            attrs[sc.AGENT_SIGNALS_TURN_THOUGHT_CHARS] = len(thought)
        if reasoning is not None or thought is not None:
            both = "\n\n".join(t for t in (reasoning, thought) if t)
            attrs[sc.AGENT_SIGNALS_TURN_REASONING_PLAN_STEPS] = reasoning_text.plan_steps(both)
            attrs[sc.AGENT_SIGNALS_TURN_REASONING_SELF_CORRECTIONS] = (
                reasoning_text.self_corrections(both)
            )
        if count_text:
            shown = text or ""
            attrs[sc.AGENT_SIGNALS_TURN_TEXT_WORDS] = session_text.words(shown)
            attrs[sc.AGENT_SIGNALS_TURN_TEXT_HEDGES] = session_text.hedges(shown)
            attrs[sc.AGENT_SIGNALS_TURN_TEXT_CONFIRMATION_REQUESTS] = (
                session_text.confirmation_requests(shown)
            )
            if reasoning:  # the first reasoning block: a turn that wrote one
                attrs[sc.AGENT_SIGNALS_TURN_REASONING_ASSUMPTIONS] = session_text.assumptions(
                    reasoning
                )
        span_id = _hex_id(self.attempt_id, "turn", index, size=8)
        synthetic = self.trajectory._last_synthetic
        span = self.trajectory._span(
            span_id, self.span_id, f"turn {index}", start, end, attrs, synthetic=synthetic
        )
        self.spans.append(span)
        if self.trajectory.content is not None:
            said = text if text is not None else thought
            self.trajectory._turn_content[span_id] = _TurnContent(
                span,
                list(inputs or ()),
                reasoning or None,
                [said] if said else [],
                [_call_part(name, arguments) for name, arguments in calls or ()],
            )
        ref = TurnRef(index, span_id, end)
        self.turns.append(ref)
        return ref

    def tool(
        self,
        name: str,
        *,
        turn: TurnRef | None = None,
        arguments: Mapping[str, Any] | None = None,
        command: str | None = None,
        category: str | None = None,
        call_id: str | None = None,
        files: Sequence[str] | None = None,
        changed_files: Sequence[str] | None = None,
        result: str | None = None,
        exit_code: int | None = None,
        error: str | None = None,
        timed_out: bool | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        parent_span_id: str | None = None,
        regions: Sequence[Region] | None = None,
    ) -> str:
        """One tool call requested by `turn` (default: the latest turn). Shell commands are
        classified by what they do and their file writes are read from the command text;
        an error naming a timeout marks the call timed out, as `tool.mark_timed_out()` does
        live. `regions` are the line ranges the call changed, when its result says (an edit
        tool's diff). Returns the span id (for nesting)."""
        seq = next(self._tool_seq)
        args = dict(arguments) if arguments is not None else None
        # The one classifier live tools use too: category, the files it names, test runner.
        facts = describe_call(name, args, category=category, command=command)
        category = facts.category
        command = facts.command
        turn = turn if turn is not None else (self.turns[-1] if self.turns else None)
        start, end = self.trajectory._times(start_ns, end_ns)
        # Parallel calls of one reply share its timestamp; processors order spans by start
        # time, then span id (derived from the path), so a 1 ns nudge keeps the file's order.
        if start <= self._last_tool_start:
            start = self._last_tool_start + 1
            end = max(end, start)
        self._last_tool_start = start
        if files is None:
            files = facts.files
        if category == sc.ToolCategory.READ and result and _DIRECTORY_LISTING.match(result):
            # An editor's `view` of a folder lists it: a listing, no file read.
            category, files = sc.ToolCategory.SEARCH.value, None
        inferred = False
        if changed_files is None:
            if category == sc.ToolCategory.EDIT:
                # An edit tool that failed changed nothing; one that worked changed its files.
                changed_files = list(files) if files and not (error or exit_code) else []
            elif command is not None:
                # No workspace was tracked: the files the command's syntax writes, whatever
                # its exit code (`cp a b && pytest` that fails in pytest did copy).
                changed_files = list(read_command(command).writes)
                inferred = bool(changed_files)
            else:
                changed_files = []
        result_files = (
            search_hits(result, command)
            if category == sc.ToolCategory.SEARCH and result and not error
            else []
        )
        attrs: dict[str, AttrValue | None] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationName.EXECUTE_TOOL.value,
            sc.GEN_AI_TOOL_NAME: name,
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.TOOL.value,
            sc.AGENT_SIGNALS_TOOL_CATEGORY: category,
            **self._identity(turn.index if turn is not None else None),
            sc.GEN_AI_TOOL_CALL_ID: call_id,
            sc.AGENT_SIGNALS_TOOL_FILES: list(files) if files else None,
            sc.AGENT_SIGNALS_TOOL_CHANGED_FILES: list(changed_files),
            sc.AGENT_SIGNALS_TOOL_CHANGES_INFERRED: True if inferred else None,
            sc.AGENT_SIGNALS_TOOL_RESULT_FILES: list(result_files) if result_files else None,
            sc.AGENT_SIGNALS_TEST_RUNNER: facts.runner,
            sc.AGENT_SIGNALS_TOOL_COMMAND_COMPLETE: False if not facts.command_complete else None,
            sc.PROCESS_EXIT_CODE: exit_code,
            sc.ERROR_TYPE: error if error else (f"exit_code_{exit_code}" if exit_code else None),
            sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES: (
                len(result.encode("utf-8", "replace")) if result is not None else None
            ),
        }
        if timed_out is None and error:
            timed_out = "timeout" in error.lower() or "timed out" in error.lower()
        if timed_out:
            attrs[sc.AGENT_SIGNALS_TOOL_TIMED_OUT] = True
        if category == sc.ToolCategory.EDIT and not (error or exit_code):
            self._edit_calls += 1
        if changed_files:
            attrs[sc.AGENT_SIGNALS_TOOL_EDIT_MODE] = (
                sc.ToolEditMode.DIRECT.value
                if category == sc.ToolCategory.EDIT
                else sc.ToolEditMode.SHELL_MEDIATED.value
            )
        if regions:
            attrs.update(region_attributes(regions))
        if args is not None or command is not None:
            attrs[sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT] = fingerprint(
                name, (), args if args is not None else {"command": command}
            )
        if category == sc.ToolCategory.TEST and result:
            from agentsignals._classify.outcome import test_run_attributes

            attrs.update(test_run_attributes(result))
        span_id = _hex_id(self.attempt_id, "tool", seq, size=8)
        failed = bool(error) or bool(exit_code)
        synthetic = self.trajectory._last_synthetic
        span = self.trajectory._span(
            span_id,
            parent_span_id or self.span_id,
            f"execute_tool {name}",
            start,
            end,
            attrs,
            status=STATUS_ERROR if failed else 0,
            synthetic=synthetic,
        )
        self.spans.append(span)
        content = self.trajectory.content
        if content is not None:
            # As a live tool records them: the arguments, the command line of a shell
            # command, the result as the agent received it.
            _record(
                content,
                span,
                [
                    (sc.GEN_AI_TOOL_CALL_ARGUMENTS, args, start),
                    (sc.PROCESS_COMMAND_LINE, command, start),
                    (sc.GEN_AI_TOOL_CALL_RESULT, result, end),
                ],
            )
            owner = self.trajectory._turn_content.get(turn.span_id) if turn else None
            if owner is not None:
                owner.calls.append(_call_part(name, args if args is not None else command, call_id))
        return span_id

    def user_turn(
        self,
        text: str | None,
        *,
        kind: str = "message",
        at_ns: int | None = None,
        rewound: bool = False,
    ) -> str:
        """One turn of the user in an interactive session (a `user_turn` span under the
        attempt, at the moment it was sent): a message or command with its text (lengths and
        lexicon markers always, the text itself only when content is captured), or an
        interrupt (no text). Returns the span id."""
        from agentsignals._classify import session_text

        index = self._user_turns
        self._user_turns += 1
        start, _ = self.trajectory._times(at_ns, at_ns)
        attrs: dict[str, AttrValue | None] = {
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.USER_TURN.value,
            **self._identity(),
            sc.AGENT_SIGNALS_USER_TURN_INDEX: index,
            sc.AGENT_SIGNALS_USER_TURN_KIND: kind,
            sc.AGENT_SIGNALS_USER_TURN_REWOUND: True if rewound else None,
        }
        if text is not None and kind != sc.UserTurnKind.INTERRUPT:
            attrs[sc.AGENT_SIGNALS_USER_TURN_CHARS] = len(text)
            attrs[sc.AGENT_SIGNALS_USER_TURN_WORDS] = session_text.words(text)
            found = session_text.markers(text)
            attrs[sc.AGENT_SIGNALS_USER_TURN_MARKERS] = list(found) if found else None
        span_id = _hex_id(self.attempt_id, "user", index, size=8)
        span = self.trajectory._span(
            span_id,
            self.span_id,
            f"user_turn {index}",
            start,
            start,
            attrs,
            synthetic=self.trajectory._last_synthetic,
        )
        self.spans.append(span)
        content = self.trajectory.content
        if content is not None and text and kind != sc.UserTurnKind.INTERRUPT:
            message = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
            _record(content, span, [(sc.GEN_AI_INPUT_MESSAGES, message, start)])
        return span_id

    def compaction(
        self,
        *,
        at_ns: int | None = None,
        tokens_before: int | None = None,
        tokens_after: int | None = None,
        trigger: str | None = None,
    ) -> None:
        """The agent compacted its context: an `agent_signals.compaction` event on the attempt
        span; the next turn added is the first that works from the compacted context."""
        at = valid_ns(at_ns)
        if at is None:
            at = self.trajectory.clock.tick()
        values: dict[str, AttrValue | None] = {
            sc.AGENT_SIGNALS_TURN_INDEX: len(self.turns),
            sc.AGENT_SIGNALS_COMPACTION_TOKENS_BEFORE: tokens_before,
            sc.AGENT_SIGNALS_COMPACTION_TOKENS_AFTER: tokens_after,
            sc.AGENT_SIGNALS_COMPACTION_TRIGGER: trigger,
        }
        self._events.append(
            Event(
                name=sc.EVENT_AGENT_SIGNALS_COMPACTION,
                time_ns=at,
                attributes={k: v for k, v in values.items() if v is not None},
            )
        )

    def model_call(
        self,
        *,
        turn: TurnRef | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        cost_usd: float | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        parent_span_id: str | None = None,
    ) -> str:
        """A model call that is not one of the agent's turns (a subagent's, a tool's)."""
        start, end = self.trajectory._times(start_ns, end_ns)
        attrs: dict[str, AttrValue | None] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationName.CHAT.value,
            **self._identity(turn.index if turn is not None else None),
            sc.GEN_AI_REQUEST_MODEL: model,
            **_usage(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
                cost_usd,
            ),
        }
        span_id = _hex_id(self.attempt_id, "model", start, len(self.spans), size=8)
        self.spans.append(
            self.trajectory._span(
                span_id,
                parent_span_id or self.span_id,
                f"chat {model or ''}".strip(),
                start,
                end,
                attrs,
            )
        )
        return span_id

    def end(
        self,
        *,
        exit_reason: str | None = None,
        exit_status: str | None = None,
        submission: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        cost_usd: float | None = None,
        model_calls: int | None = None,
        end_ns: int | None = None,
        error: str | None = None,
    ) -> None:
        """Close the attempt. Token and cost totals given here are the attempt's totals (for
        formats that record no per-call usage: they are not spread over turns), `model_calls`
        the number of calls behind them. The submitted patch gives touched files and per-file
        line counts."""
        if self._ended:
            return
        self._ended = True
        end_ns = valid_ns(end_ns)
        attrs = self.attributes
        values: dict[str, AttrValue | None] = {
            sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON: exit_reason,
            # The raw exit status is a failure label only when the run did not submit.
            sc.AGENT_SIGNALS_ATTEMPT_FINAL_FAILURE_MODE: (
                exit_status if exit_reason != sc.AttemptExitReason.SUBMITTED else None
            ),
            **_usage(
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, None, cost_usd
            ),
            sc.AGENT_SIGNALS_USAGE_MODEL_CALLS: model_calls,
            sc.ERROR_TYPE: error,
        }
        if exit_reason == sc.AttemptExitReason.TIMEOUT:
            values[sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT] = True
        if self._subagent_edit_calls:
            values[sc.AGENT_SIGNALS_ATTEMPT_SUBAGENT_EDIT_CALLS] = self._subagent_edit_calls
        if self.parent is not None:
            self.parent._subagent_edit_calls += self._edit_calls + self._subagent_edit_calls
        if submission is not None:
            stats = patch_stats(submission)
            created: list[AttrScalar] = list(created_files(submission))
            values[sc.AGENT_SIGNALS_ATTEMPT_CREATED_FILES] = created
            values[sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES] = [p for p, _, _ in stats]
            values[sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED] = [a for _, a, _ in stats]
            values[sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_REMOVED] = [r for _, _, r in stats]
        attrs.update({k: v for k, v in values.items() if v is not None})
        last = max((s.end_ns for s in self.spans), default=self.start_ns)
        end = end_ns if end_ns is not None else max(last, self.start_ns)
        end = max(end, last)
        name = str(attrs.get(sc.GEN_AI_AGENT_NAME) or "")
        span = self.trajectory._span(
            self.span_id,
            self.parent_span_id,
            f"invoke_agent {name}".strip(),
            self.start_ns,
            end,
            dict(attrs),
            status=STATUS_ERROR if error else 0,
            synthetic=self.synthetic_start,
        )
        span.events.extend(self._events)
        self.trajectory.spans.append(span)
        self.trajectory.spans.extend(self.spans)


class TrajectoryBuilder:
    """The spans of one trajectory file: one trial, its attempts (subagents nest)."""

    def __init__(
        self,
        *,
        source_format: str,
        source_path: str,
        task_id: str,
        start_ns: int | None = None,
        run_id: str | None = None,
        service_name: str = "agentsignals-import",
        dataset: str | None = None,
    ) -> None:
        self.source_format = source_format
        self.source_path = source_path
        self.task_id = task_id
        self.run_id = run_id
        self.trial_id = _hex_id(source_format, source_path, task_id, size=16)
        self.trace_id = _hex_id("trace", source_format, source_path, task_id, size=16)
        self.trial_span_id = _hex_id(self.trial_id, "trial", size=8)
        self.resource: dict[str, AttrValue] = {"service.name": service_name}
        self.dataset = dataset
        start_ns = valid_ns(start_ns)
        self.clock = _Clock(start_ns, synthetic=start_ns is None)
        self.trial_start = self.clock.tick()
        self.spans: list[Span] = []
        self._attempts: list[AttemptBuilder] = []
        # Content capture (`import --content`): settings, and the turns' content, recorded
        # once their tool calls are known.
        self.content: Settings | None = _CONTENT.get()
        self._turn_content: dict[str, _TurnContent] = {}
        self._last_synthetic = start_ns is None
        self._trial_synthetic = start_ns is None

    def _times(self, start_ns: int | None, end_ns: int | None) -> tuple[int, int]:
        start_ns, end_ns = valid_ns(start_ns), valid_ns(end_ns)
        if start_ns is None:
            self._last_synthetic = True
            start = self.clock.tick()
            end = end_ns if end_ns is not None and end_ns >= start else self.clock.tick()
        else:
            self._last_synthetic = False
            self.clock.at_least(start_ns)
            start = start_ns
            end = end_ns if end_ns is not None and end_ns >= start_ns else start_ns
            self.clock.at_least(end)
        return start, end

    def _span(
        self,
        span_id: str,
        parent: str | None,
        name: str,
        start: int,
        end: int,
        attributes: Mapping[str, AttrValue | None],
        *,
        status: int = 0,
        synthetic: bool = False,
    ) -> Span:
        attrs = {k: v for k, v in attributes.items() if v is not None}
        if synthetic:
            attrs[sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME] = True
        return Span(
            trace_id=self.trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            kind=1,
            start_ns=start,
            end_ns=end,
            attributes=attrs,
            status_code=status,
            resource=self.resource,
            scope_name="agentsignals",
        )

    def attempt(
        self,
        *,
        index: int | None = None,
        agent_type: str | None = None,
        agent_name: str | None = None,
        model_id: str | None = None,
        provider: str | None = None,
        conversation_id: str | None = None,
        start_ns: int | None = None,
        parent: AttemptBuilder | None = None,
        parent_span_id: str | None = None,
        attempt1_tool_cap: int | None = None,
        timeout_s: float | None = None,
        working_directory: str | None = None,
        abandoned_turns: int | None = None,
    ) -> AttemptBuilder:
        """Start an attempt. A subagent is an attempt nested under `parent` (its span is a
        child of the parent's tool span `parent_span_id`, or of the parent attempt)."""
        top_level = sum(
            1
            for a in self._attempts
            if a.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID) is None
        )
        index = index if index is not None else (parent.index if parent is not None else top_level)
        attempt_id = _hex_id(self.trial_id, "attempt", len(self._attempts), size=16)
        start, _ = self._times(start_ns, start_ns)
        synthetic_start = self._last_synthetic
        attrs: dict[str, AttrValue | None] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationName.INVOKE_AGENT.value,
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.ATTEMPT.value,
            sc.AGENT_SIGNALS_TRIAL_ID: self.trial_id,
            sc.AGENT_SIGNALS_TASK_ID: self.task_id,
            sc.AGENT_SIGNALS_ATTEMPT_ID: attempt_id,
            sc.AGENT_SIGNALS_ATTEMPT_INDEX: index,
            sc.AGENT_SIGNALS_RUN_ID: self.run_id,
            sc.GEN_AI_AGENT_NAME: agent_name,
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: model_id,
            sc.GEN_AI_CONVERSATION_ID: conversation_id,
            sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE: agent_type,
            sc.AGENT_SIGNALS_TREATMENT_MODEL_ID: model_id,
            sc.AGENT_SIGNALS_TREATMENT_DATASET: self.dataset,
            sc.AGENT_SIGNALS_TREATMENT_ATTEMPT1_TOOL_CAP: attempt1_tool_cap,
            sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S: float(timeout_s)
            if timeout_s is not None
            else None,
            sc.AGENT_SIGNALS_IMPORT_FORMAT: self.source_format,
            sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID: parent.attempt_id if parent is not None else None,
            sc.PROCESS_WORKING_DIRECTORY: working_directory or None,
            sc.AGENT_SIGNALS_SESSION_ABANDONED_TURNS: abandoned_turns or None,
        }
        builder = AttemptBuilder(
            trajectory=self,
            attempt_id=attempt_id,
            index=index,
            span_id=_hex_id(attempt_id, "span", size=8),
            start_ns=start,
            attributes={k: v for k, v in attrs.items() if v is not None},
            parent_span_id=(
                parent_span_id or (parent.span_id if parent is not None else self.trial_span_id)
            ),
            synthetic_start=synthetic_start,
            parent=parent,
        )
        self._attempts.append(builder)
        return builder

    def finish(self, *, end_ns: int | None = None) -> list[Span]:
        """Close open attempts and the trial; the trajectory's spans, trial first."""
        for attempt in self._attempts:
            attempt.end()
        if self.content is not None:
            for turn_content in self._turn_content.values():
                turn_content.record(self.content)
            self._turn_content.clear()
        end = max((s.end_ns for s in self.spans), default=self.trial_start)
        end_ns = valid_ns(end_ns)
        if end_ns is not None:
            end = max(end, end_ns)
        trial_attrs: dict[str, AttrValue | None] = {
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.TRIAL.value,
            sc.AGENT_SIGNALS_TRIAL_ID: self.trial_id,
            sc.AGENT_SIGNALS_TASK_ID: self.task_id,
            sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT: sum(
                1 for a in self._attempts if a.parent_span_id == self.trial_span_id
            ),
            sc.AGENT_SIGNALS_RUN_ID: self.run_id,
            sc.AGENT_SIGNALS_TREATMENT_DATASET: self.dataset,
            sc.AGENT_SIGNALS_IMPORT_FORMAT: self.source_format,
            sc.AGENT_SIGNALS_IMPORT_SOURCE: self.source_path,
        }
        trial = self._span(
            self.trial_span_id,
            None,
            f"trial {self.task_id}",
            self.trial_start,
            end,
            trial_attrs,
            synthetic=self._trial_synthetic,
        )
        return [trial, *self.spans]
