"""Per-attempt feature extraction: the spans of one attempt -> one :class:`AttemptRecord`.

:func:`attempt_record` is the entry point. It splits the spans once (:func:`split_spans`) and
hands the parts to one small pure function per signal group (:func:`treatment`,
:func:`behavior`, :func:`count_usage` + :func:`tokens`, :func:`reasoning`, :func:`infra`), each
unit-testable on its own. Verification, anticipation and the gold-patch fields of behavior are
left None: they need the gold patch (issue #4).

Conventions shared by every group:

* **Null, never a made-up zero.** A signal whose inputs were not recorded is None. A zero is
  reported only when it was observed: ``edit_calls == 0`` when tool spans exist (or the attempt
  span arrived, so the attempt ended) and none of the calls were edits.
* **Order** is ``(start_ns, span_id)`` everywhere (sequences, "first", "before", "after").
* **Tool calls** are the *top-level* tool spans: a tool span nested inside another tool span
  (``submit`` running ``bash("git diff")``) is part of its outer call, not a call the agent
  made. Its measured file changes count for the outer call; its name, category and status don't.
* **Model calls** are other instrumentors' spans without ``agent_signals.span.type`` whose
  ``gen_ai.operation.name`` is chat, text_completion or generate_content. Each model call is
  counted once, see :func:`count_usage`.

Speed: one pass classifies the spans (a dict ``get`` or two per span); the walks up the span
tree that tell nested tool calls and model calls apart are usually one step (the parent is a
turn or the attempt) and are cached per parent for tool spans; nothing is copied or re-sorted
beyond the turn, tool and model-call lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from agentsignals import semconv as sc
from agentsignals._features.record import (
    Anticipation,
    AttemptRecord,
    Behavior,
    FileLines,
    Infra,
    Reasoning,
    Recovery,
    Tokens,
    Treatment,
    Verification,
)
from agentsignals._spans.model import (
    STATUS_ERROR,
    AttrScalar,
    AttrValue,
    Span,
    coerce_bool,
    coerce_float,
    coerce_int,
    coerce_str,
    coerce_str_list,
)

__all__ = [
    "AttemptSpans",
    "ToolCall",
    "Usage",
    "UsageBreakdown",
    "attempt_record",
    "behavior",
    "count_usage",
    "infra",
    "reasoning",
    "split_spans",
    "tokens",
    "treatment",
    "verification",
]

_TYPE: Final = sc.AGENT_SIGNALS_SPAN_TYPE
_ATTEMPT: Final = sc.SpanType.ATTEMPT.value
_TURN: Final = sc.SpanType.TURN.value
_TOOL: Final = sc.SpanType.TOOL.value
_VERIFICATION: Final = sc.SpanType.VERIFICATION.value
_OP: Final = sc.GEN_AI_OPERATION_NAME
MODEL_CALL_OPERATIONS: Final = frozenset(
    {
        sc.GenAiOperationName.CHAT.value,
        sc.GenAiOperationName.TEXT_COMPLETION.value,
        sc.GenAiOperationName.GENERATE_CONTENT.value,
    }
)
"""``gen_ai.operation.name`` values that mark another instrumentor's span as a model call."""

_EDIT: Final = sc.ToolCategory.EDIT.value
_READ: Final = sc.ToolCategory.READ.value
_SEARCH: Final = sc.ToolCategory.SEARCH.value
_TEST: Final = sc.ToolCategory.TEST.value

_IN: Final = sc.GEN_AI_USAGE_INPUT_TOKENS
_OUT: Final = sc.GEN_AI_USAGE_OUTPUT_TOKENS
_CACHE_R: Final = sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
_CACHE_W: Final = sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
_REASON: Final = sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
_COST: Final = sc.AGENT_SIGNALS_USAGE_COST_USD

STUCK_LOOP_MIN_REPEAT: Final = 3
"""``stuck_loop`` is true when the same call (same fingerprint) ran this many times in a row."""


def _int(value: AttrValue | None) -> int | None:
    # Fast path for the common case (decoders already produce ints).
    if type(value) is int:
        return value
    return None if value is None else coerce_int(value)


def _str(value: AttrValue | None) -> str | None:
    if type(value) is str:
        return value
    return None if value is None else coerce_str(value)


def _order(span: Span) -> tuple[int, str]:
    return (span.start_ns, span.span_id)


# --------------------------------------------------------------------------------- splitting


@dataclass(slots=True)
class ToolCall:
    """One top-level tool call, with the file changes of the tool spans nested inside it."""

    span: Span
    name: str | None
    category: str | None
    # Measured changes of this span and its nested tool spans, in order of first appearance;
    # None when neither recorded agent_signals.tool.changed_files (workspace not tracked).
    changed_files: list[str] | None

    @property
    def is_edit(self) -> bool:
        """An edit-category call, or any call that changed files (shell-mediated edits)."""
        return self.category == _EDIT or bool(self.changed_files)


@dataclass(slots=True)
class AttemptSpans:
    """The spans of one attempt, classified and ordered by ``(start_ns, span_id)``."""

    attempt: Span | None
    turns: list[Span]
    tools: list[ToolCall]  # top-level calls only
    model_calls: list[Span]  # other instrumentors' model-call spans (usage or not)
    spans: Sequence[Span]  # all spans, de-duplicated by span id, in input order
    by_id: dict[str, Span]
    # Any tool span (nested ones included) recorded agent_signals.tool.changed_files.
    tools_tracked: bool = False
    tool_spans: list[Span] = field(default_factory=list)  # nested ones included, any order
    verifications: list[Span] = field(default_factory=list)  # agentsignals verify's spans
    # Identity found on any span (the attempt span's values win).
    attempt_id: str | None = None
    attempt_index: int | None = None
    trial_id: str | None = None
    task_id: str | None = None


def split_spans(spans: Sequence[Span]) -> AttemptSpans:
    """Classify one attempt's spans in a single pass (duplicate span ids: the last one wins)."""
    by_id = {s.span_id: s for s in spans}
    if len(by_id) != len(spans):
        # At-least-once delivery can repeat a span; counting it twice would double everything.
        spans = list(by_id.values())
    attempt: Span | None = None
    turns: list[Span] = []
    tool_spans: list[Span] = []
    model_calls: list[Span] = []
    verifications: list[Span] = []
    attempt_id = trial_id = task_id = None
    attempt_index: int | None = None
    for s in spans:
        a = s.attributes
        kind = a.get(_TYPE)
        if kind is None:
            if a.get(_OP) in MODEL_CALL_OPERATIONS:
                model_calls.append(s)
        elif kind == _TOOL:
            tool_spans.append(s)
        elif kind == _TURN:
            turns.append(s)
        elif kind == _VERIFICATION:
            verifications.append(s)
        elif kind == _ATTEMPT and (attempt is None or _order(s) < _order(attempt)):
            # Two attempt spans with one id is a producer bug: keep the earliest.
            attempt = s
        if attempt_id is None:
            attempt_id = _str(a.get(sc.AGENT_SIGNALS_ATTEMPT_ID))
        if trial_id is None:
            trial_id = _str(a.get(sc.AGENT_SIGNALS_TRIAL_ID))
        if attempt_index is None:
            attempt_index = _int(a.get(sc.AGENT_SIGNALS_ATTEMPT_INDEX))
    if attempt is not None:
        a = attempt.attributes
        attempt_id = _str(a.get(sc.AGENT_SIGNALS_ATTEMPT_ID)) or attempt_id
        trial_id = _str(a.get(sc.AGENT_SIGNALS_TRIAL_ID)) or trial_id
        # Only the attempt (and trial) span carries the task id.
        task_id = _str(a.get(sc.AGENT_SIGNALS_TASK_ID))
        index = _int(a.get(sc.AGENT_SIGNALS_ATTEMPT_INDEX))
        attempt_index = index if index is not None else attempt_index
    turns.sort(key=_order)
    model_calls.sort(key=_order)
    tools, tracked = _tool_calls(tool_spans, by_id, attempt)
    return AttemptSpans(
        attempt=attempt,
        turns=turns,
        tools=tools,
        model_calls=model_calls,
        spans=spans,
        by_id=by_id,
        tools_tracked=tracked,
        tool_spans=tool_spans,
        verifications=sorted(verifications, key=_order),
        attempt_id=attempt_id,
        attempt_index=attempt_index,
        trial_id=trial_id,
        task_id=task_id,
    )


def _tool_calls(
    tool_spans: list[Span], by_id: dict[str, Span], attempt: Span | None
) -> tuple[list[ToolCall], bool]:
    """Top-level tool calls in order; nested tool spans' changes merged into their outer call.

    The walk up from each tool span ends at the attempt span or at the first parent outside
    the attempt; for the usual tool under a turn under the attempt that is one dict lookup.
    """
    stop = attempt.span_id if attempt is not None else None
    tool_ids = {s.span_id for s in tool_spans}
    limit = len(by_id)  # a parent cycle in malformed input cannot loop forever
    # parent span id -> the outermost tool span at or above it (None: not inside a tool);
    # sibling tools share their parent turn, so most walks are a cache hit.
    outer_of: dict[str, str | None] = {}
    top: list[Span] = []
    nested: list[tuple[Span, str]] = []  # (nested tool span, its outermost tool span id)
    for s in tool_spans:
        first = s.parent_span_id
        if first is None:
            top.append(s)
            continue
        if first in outer_of:
            outer = outer_of[first]
        else:
            outer = None
            p: str | None = first
            steps = 0
            while p is not None and p != stop and steps < limit:
                if p in tool_ids:
                    outer = p  # keep walking: the outermost tool span is the call
                parent = by_id.get(p)
                if parent is None:
                    break
                p = parent.parent_span_id
                steps += 1
            outer_of[first] = outer
        if outer is None:
            top.append(s)
        else:
            nested.append((s, outer))
    tracked = False
    extra: dict[str, list[str]] = {}
    for s, outer in nested:
        changed = s.attributes.get(sc.AGENT_SIGNALS_TOOL_CHANGED_FILES)
        if changed is not None:
            tracked = True
            files = coerce_str_list(changed)
            if files:
                extra.setdefault(outer, []).extend(files)
    top.sort(key=_order)
    calls: list[ToolCall] = []
    for s in top:
        a = s.attributes
        raw = a.get(sc.AGENT_SIGNALS_TOOL_CHANGED_FILES)
        changed_files = coerce_str_list(raw) if raw is not None else None
        if changed_files is not None:
            tracked = True
        more = extra.get(s.span_id)
        if more:
            changed_files = list(dict.fromkeys([*(changed_files or ()), *more]))
        calls.append(
            ToolCall(
                span=s,
                name=_str(a.get(sc.GEN_AI_TOOL_NAME)),
                category=_str(a.get(sc.AGENT_SIGNALS_TOOL_CATEGORY)),
                changed_files=changed_files,
            )
        )
    return calls, tracked


# --------------------------------------------------------------------------------- treatment


def treatment(attempt: Span | None) -> Treatment:
    """The treatment variables recorded on the attempt span (all None without one)."""
    if attempt is None:
        return Treatment()
    a = attempt.attributes
    return Treatment(
        attempt1_tool_cap=_int(a.get(sc.AGENT_SIGNALS_TREATMENT_ATTEMPT1_TOOL_CAP)),
        retry_tool_cap=_int(a.get(sc.AGENT_SIGNALS_TREATMENT_RETRY_TOOL_CAP)),
        agent_type=_str(a.get(sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE)),
        model_id=_str(a.get(sc.AGENT_SIGNALS_TREATMENT_MODEL_ID)),
        dataset=_str(a.get(sc.AGENT_SIGNALS_TREATMENT_DATASET)),
        concurrency=_int(a.get(sc.AGENT_SIGNALS_TREATMENT_CONCURRENCY)),
        timeout_s=coerce_float(a.get(sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S)),
    )


# ---------------------------------------------------------------------------------- behavior


def _touched(attempt: Span | None, calls: list[ToolCall], tools_tracked: bool) -> list[str] | None:
    """The files of the attempt's diff (the attempt span's list; without it every file some
    call changed), in the order the calls first changed them (files no call was seen
    changing last, by path): `touched_files[0]` is the first file edited that stayed edited."""
    files: list[str] | None = None
    if attempt is not None:
        raw = attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES)
        if raw is not None:
            files = coerce_str_list(raw)
    if files is None:
        if not tools_tracked:
            return None
        # No attempt-level diff (the attempt span is missing): every file some call changed,
        # even if a later call reverted it.
        files = sorted({f for c in calls if c.changed_files for f in c.changed_files})
    if len(files) < 2:
        return list(files)
    first_seen: dict[str, int] = {}
    # same_file, with each spelling normalised once rather than once per comparison.
    targets = [(t, _path_form(t)) for t in files]
    for step, c in enumerate(calls):
        for f in _edited_files(c):
            a = _path_form(f)
            for t, b in targets:
                if t not in first_seen and _same_form(a, b):
                    first_seen[t] = step
        if len(first_seen) == len(targets):
            break  # every file placed: later calls change nothing
    return sorted(files, key=lambda t: (first_seen.get(t, len(calls)), t))


def _edited_files(c: ToolCall) -> list[str]:
    """Files a call edited: its changed files (measured, or read from its text), else, when
    nothing was tracked for it, an edit tool's stated files."""
    if c.changed_files is not None:
        return c.changed_files
    if c.category == _EDIT and c.span.status_code != STATUS_ERROR:
        return [str(f) for f in _list(c.span.attributes.get(sc.AGENT_SIGNALS_TOOL_FILES))]
    return []


def same_file(a: str, b: str) -> bool:
    """Whether two spellings name one file: agents write absolute (/testbed/pkg/x.py) or
    relative (./pkg/x.py) paths, diffs repository-relative ones (pkg/x.py)."""
    return _same_form(_path_form(a), _path_form(b))


def _path_form(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")


def _same_form(a: str, b: str) -> bool:
    """same_file on spellings already through _path_form."""
    if a == b:
        return True
    if len(a) > len(b):
        a, b = b, a
    return b.endswith("/" + a) and not a.startswith("/")


def _touched_lines(attempt: Span | None) -> list[FileLines] | None:
    if attempt is None:
        return None
    a = attempt.attributes
    paths = coerce_str_list(a.get(sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES))
    added = a.get(sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED)
    removed = a.get(sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_REMOVED)
    if paths is None or not isinstance(added, list) or not isinstance(removed, list):
        return None
    if not len(paths) == len(added) == len(removed):
        return None  # malformed: the arrays must be parallel
    out: list[FileLines] = []
    for path, add, rem in zip(paths, added, removed, strict=True):
        n_add, n_rem = _int(add), _int(rem)
        if n_add is None or n_rem is None:
            return None
        out.append(FileLines(path=path, lines_added=n_add, lines_removed=n_rem))
    return out


def _diff_lines(
    file_lines: list[FileLines] | None, spans: AttemptSpans, touched: list[str] | None
) -> int | None:
    if file_lines is not None:
        return sum(f.lines_added + f.lines_removed for f in file_lines)
    if touched is None or not spans.tools_tracked:
        return None
    # No attempt-level diff: the per-call measured lines, summed over all tool spans (nested
    # ones too: each measures only its own window). Equal to the net diff unless calls undid
    # each other's lines. None when a call changed files without measured line counts (an
    # imported edit read from text): the count is not known, it is not 0.
    total = 0
    for s in spans.tool_spans:
        a = s.attributes
        if coerce_str_list(a.get(sc.AGENT_SIGNALS_TOOL_CHANGED_FILES)) and (
            a.get(sc.AGENT_SIGNALS_TOOL_LINES_ADDED) is None
            or a.get(sc.AGENT_SIGNALS_TOOL_LINES_REMOVED) is None
        ):
            return None
        total += _call_lines(s)
    return total


def _call_lines(s: Span) -> int:
    a = s.attributes
    return (_int(a.get(sc.AGENT_SIGNALS_TOOL_LINES_ADDED)) or 0) + (
        _int(a.get(sc.AGENT_SIGNALS_TOOL_LINES_REMOVED)) or 0
    )


def _turn_count(spans: AttemptSpans) -> int | None:
    if spans.turns:
        return len(spans.turns)
    # Zero turns is a fact only for a complete attempt that made no model calls at all; model
    # calls without turn spans mean the harness did not mark turns (unknown, not zero).
    if spans.attempt is not None and not spans.model_calls:
        return 0
    return None


def behavior(spans: AttemptSpans) -> Behavior:
    """What the agent did, from its tool calls, turns and the attempt span.

    Tool-call counts (``tool_call_count``, ``edit_calls``, ``test_runs``, ...) are 0 when there
    are no tool spans but the attempt span arrived (the attempt ended and called no tools), and
    None when neither arrived (killed before anything ended: unknown). ``turn_count`` is the
    number of turn spans; 0 only for an attempt span with no turn and no model-call spans
    (model calls without turn spans: the harness did not mark turns, so None).

    * ``touched_files``: the attempt span's list (sorted by path by the producer); without it,
      the sorted union of the calls' measured ``changed_files``; None when the workspace was not
      tracked. ``touched_file_lines`` comes only from the attempt span's parallel arrays;
      ``diff_lines`` sums them, or without them the per-call measured line counts.
    * An *edit* is an edit-category call or any call that changed files (``first_edit_step``,
      ``validated_after_last_edit``, "before the first edit"); ``shell_edit_calls`` are the
      non-edit-category calls that changed files.
    * ``files_read_before_edit`` / ``files_searched_before_edit``: distinct
      ``agent_signals.tool.files`` of read (read + search) calls started before the first edit,
      or over the whole attempt when it never edited. 0 when there were no such calls; None
      when there were some but none stated its files.
    * ``repetition_rate``: calls whose fingerprint equals an earlier call's, over the calls with
      a fingerprint; ``max_repeat``: longest run of consecutive calls with one fingerprint (a
      call without one breaks the run); both None when no call has a fingerprint.
    * ``validated_after_last_edit``: a test-category call started at or after the last edit
      ended; None when there was no edit.
    """
    attempt = spans.attempt
    calls = spans.tools
    out = Behavior(turn_count=_turn_count(spans))
    if attempt is not None:
        out.localization_mode = _str(
            attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_LOCALIZATION_MODE)
        )
    touched = _touched(attempt, calls, spans.tools_tracked)
    out.touched_files = touched
    out.touched_file_lines = _touched_lines(attempt)
    if attempt is not None:
        created = attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_CREATED_FILES)
        out.created_files = coerce_str_list(created) if created is not None else None
    out.diff_lines = _diff_lines(out.touched_file_lines, spans, touched)
    if not calls and attempt is None:
        return out

    names: list[str] = []
    categories: list[str] = []
    edit_calls = shell_edit_calls = read_calls = test_runs = errors = 0
    first_edit: int | None = None
    last_edit_end: int | None = None
    for i, c in enumerate(calls):
        s = c.span
        names.append(c.name or "")
        category = c.category or ""
        categories.append(category)
        if category == _EDIT:
            edit_calls += 1
        elif c.changed_files:
            shell_edit_calls += 1
        if category == _READ:
            read_calls += 1
        elif category == _TEST:
            test_runs += 1
        if s.status_code == STATUS_ERROR:
            errors += 1
        if category == _EDIT or c.changed_files:
            if first_edit is None:
                first_edit = i
            end = max(s.end_ns, s.start_ns)
            last_edit_end = end if last_edit_end is None else max(last_edit_end, end)

    out.tool_call_count = len(calls)
    if spans.tools_tracked:
        out.inferred_edit_steps = [
            i
            for i, c in enumerate(calls)
            if c.changed_files
            and c.span.attributes.get(sc.AGENT_SIGNALS_TOOL_CHANGES_INFERRED) is True
        ]
    out.step_files = [
        [str(f) for f in _list(c.span.attributes.get(sc.AGENT_SIGNALS_TOOL_FILES))] for c in calls
    ]
    if spans.tools_tracked:
        out.step_changed_files = [list(c.changed_files or []) for c in calls]
    out.edit_calls = edit_calls
    out.shell_edit_calls = shell_edit_calls
    # Edits a subagent made with its edit tool are not shell-mediated edits of this attempt.
    delegated = (
        _int(attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_SUBAGENT_EDIT_CALLS))
        if (attempt is not None)
        else None
    )
    out.bash_mediated_edits = (
        None if touched is None else (edit_calls + (delegated or 0) == 0 and bool(touched))
    )
    out.tool_sequence = names
    out.tool_category_sequence = categories
    out.first_edit_step = first_edit
    out.test_runs = test_runs
    out.tool_error_count = errors
    out.edit_to_read_ratio = (edit_calls + shell_edit_calls) / read_calls if read_calls else None

    before = calls if first_edit is None else calls[:first_edit]
    out.files_read_before_edit = _distinct_files(before, (_READ,))
    out.files_searched_before_edit = _distinct_files(before, (_READ, _SEARCH))

    if last_edit_end is not None:
        # The last edit of the solution: a call that changed a file of the final diff. A last
        # `rm reproduce.py` of the agent's own scratch file is not one.
        last_solution_end: int | None = last_edit_end
        if touched is not None:
            last_solution_end = None
            touched_forms = [_path_form(t) for t in touched]
            for c in calls:
                edited = _edited_files(c)
                if edited and any(
                    _same_form(_path_form(f), t) for f in edited for t in touched_forms
                ):
                    end = max(c.span.end_ns, c.span.start_ns)
                    if last_solution_end is None or end > last_solution_end:
                        last_solution_end = end
        if last_solution_end is not None:
            out.validated_after_last_edit = any(
                c.category == _TEST and c.span.start_ns >= last_solution_end for c in calls
            )

    _repetition(calls, out)
    return out


def _distinct_files(calls: Sequence[ToolCall], categories: tuple[str, ...]) -> int | None:
    """Distinct files named by the calls of these categories: the files they state
    (`agent_signals.tool.files`) and, for searches, the files their output names as hits
    (`agent_signals.tool.result_files`). A call that failed (reading a directory: EISDIR, a
    missing file) read nothing. 0 without such calls; None when there were some but none
    named its files."""
    n_calls = 0
    stated = False
    files: set[str] = set()
    for c in calls:
        if c.category not in categories:
            continue
        n_calls += 1
        a = c.span.attributes
        raw = a.get(sc.AGENT_SIGNALS_TOOL_FILES)
        hits = a.get(sc.AGENT_SIGNALS_TOOL_RESULT_FILES) if c.category == _SEARCH else None
        if raw is None and hits is None:
            continue
        stated = True
        if c.span.status_code == STATUS_ERROR:
            continue
        for value in (raw, hits):
            listed = coerce_str_list(value) if value is not None else None
            if listed:
                files.update(listed)
    if n_calls == 0:
        return 0
    return len(files) if stated else None


def first_tool_precision(calls: Sequence[ToolCall], touched: list[str] | None) -> bool | None:
    """Whether the first substantive call (the first that named a file: read, searched in,
    edited; a directory listing or a failed call is not substantive) went to a file that ended
    up in `touched_files`. None when nothing was touched or no call named a file."""
    if not touched:
        return None
    for c in calls:
        if c.span.status_code == STATUS_ERROR:
            continue
        named = [str(f) for f in _list(c.span.attributes.get(sc.AGENT_SIGNALS_TOOL_FILES))]
        named += c.changed_files or []
        if named:
            return any(same_file(f, t) for f in named for t in touched)
    return None


def _repetition(calls: Sequence[ToolCall], out: Behavior) -> None:
    seen: set[str] = set()
    with_fp = repeats = 0
    run = max_run = 0
    previous: str | None = None
    for c in calls:
        fp = _str(c.span.attributes.get(sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT))
        if fp is None:
            previous = None
            run = 0
            continue
        with_fp += 1
        if fp in seen:
            repeats += 1
        else:
            seen.add(fp)
        run = run + 1 if fp == previous else 1
        previous = fp
        if run > max_run:
            max_run = run
    if with_fp:
        out.repetition_rate = repeats / with_fp
        out.max_repeat = max_run
        out.stuck_loop = max_run >= STUCK_LOOP_MIN_REPEAT


# ------------------------------------------------------------------------------------- usage


@dataclass(slots=True)
class Usage:
    """Usage of one or more model calls; a field is None when no call recorded it."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    calls: int = 0  # usage sources counted

    @classmethod
    def of(cls, span: Span) -> Usage:
        """The usage recorded on one span (``calls`` is 1 when it recorded any)."""
        a = span.attributes
        u = cls(
            _int(a.get(_IN)),
            _int(a.get(_OUT)),
            _int(a.get(_CACHE_R)),
            _int(a.get(_CACHE_W)),
            _int(a.get(_REASON)),
            coerce_float(a.get(_COST)),
        )
        if u.has_any:
            u.calls = 1
        return u

    @property
    def has_any(self) -> bool:
        return not (
            self.input_tokens is None
            and self.output_tokens is None
            and self.cache_read_tokens is None
            and self.cache_write_tokens is None
            and self.reasoning_tokens is None
            and self.cost_usd is None
        )

    def add(self, other: Usage) -> None:
        """Field-wise sum, None + None staying None."""
        self.input_tokens = _add(self.input_tokens, other.input_tokens)
        self.output_tokens = _add(self.output_tokens, other.output_tokens)
        self.cache_read_tokens = _add(self.cache_read_tokens, other.cache_read_tokens)
        self.cache_write_tokens = _add(self.cache_write_tokens, other.cache_write_tokens)
        self.reasoning_tokens = _add(self.reasoning_tokens, other.reasoning_tokens)
        cost = other.cost_usd
        if cost is not None:
            self.cost_usd = cost if self.cost_usd is None else self.cost_usd + cost
        self.calls += other.calls


def _add(a: int | None, b: int | None) -> int | None:
    if b is None:
        return a
    return b if a is None else a + b


@dataclass(slots=True)
class UsageBreakdown:
    """Usage per turn (parallel to ``AttemptSpans.turns``) and of the model calls attributable
    to no turn, each model call counted once."""

    per_turn: list[Usage] = field(default_factory=list)
    unattributed: list[Usage] = field(default_factory=list)
    # Calls inside tool spans (LLM-backed tools, subagents), in order: counted, never in place
    # of a turn's own call.
    in_tools: list[Usage] = field(default_factory=list)

    def total(self) -> Usage:
        out = Usage()
        for group in (self.per_turn, self.unattributed, self.in_tools):
            for u in group:
                out.add(u)
        return out


def count_usage(spans: AttemptSpans) -> UsageBreakdown:
    """Count each model call once across turn spans and other instrumentors' model-call spans.

    A model-call span with usage is attributed to the nearest turn or tool span above it; one
    with neither above it (a call made after the turn block) to the turn whose
    ``agent_signals.turn.index`` it carries. Inside a tool span it is the tool's own model call
    (an LLM-backed tool, a subagent): counted, but never instead of the turn's call. A model-call
    span below another model-call span with usage (two instrumentors on one call: a framework
    span around the SDK span) is the same call and is skipped.

    Per turn and per field (tokens of each kind, cost): the sum over the model-call spans
    attributed to the turn that recorded the field, else the turn span's own value. So a turn
    whose usage is also on its child chat span is counted once, and a turn whose tokens come
    from a chat span but whose cost only the turn recorded keeps that cost. Model-call spans
    attributable to no turn are counted at the attempt level.
    """
    turns = spans.turns
    by_id = spans.by_id
    turn_pos: dict[str, int] = {t.span_id: i for i, t in enumerate(turns)}
    turn_by_index: dict[int, int] = {}
    for i, t in enumerate(turns):
        idx = _int(t.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))
        if idx is not None:
            turn_by_index.setdefault(idx, i)
    attributed: list[Usage | None] = [None] * len(turns)
    out = UsageBreakdown()
    stop = spans.attempt.span_id if spans.attempt is not None else None
    limit = len(by_id)
    for s in spans.model_calls:
        u = Usage.of(s)
        if not u.calls:
            continue  # a model call without usage is no usage source
        # Walk up to the nearest turn or tool; note an enclosing model call with usage.
        owner: int | None = None
        in_tool = duplicate = False
        p = s.parent_span_id
        steps = 0
        while p is not None and p != stop and steps < limit:
            pos = turn_pos.get(p)
            if pos is not None:
                owner = pos
                break
            parent = by_id.get(p)
            if parent is None:
                break
            pa = parent.attributes
            kind = pa.get(_TYPE)
            if kind == _TOOL:
                in_tool = True
                break
            if kind is None and pa.get(_OP) in MODEL_CALL_OPERATIONS and Usage.of(parent).calls:
                duplicate = True
                break
            p = parent.parent_span_id
            steps += 1
        if duplicate:
            continue
        if in_tool:
            out.in_tools.append(u)
            continue
        if owner is None:
            idx = _int(s.attributes.get(sc.AGENT_SIGNALS_TURN_INDEX))
            owner = turn_by_index.get(idx) if idx is not None else None
        if owner is None:
            out.unattributed.append(u)
            continue
        acc = attributed[owner]
        if acc is None:
            attributed[owner] = u
        else:
            acc.add(u)
    for i, t in enumerate(turns):
        own = Usage.of(t)
        calls = attributed[i]
        if calls is None:
            out.per_turn.append(own)
            continue
        merged = Usage(
            calls.input_tokens if calls.input_tokens is not None else own.input_tokens,
            calls.output_tokens if calls.output_tokens is not None else own.output_tokens,
            calls.cache_read_tokens
            if calls.cache_read_tokens is not None
            else own.cache_read_tokens,
            calls.cache_write_tokens
            if calls.cache_write_tokens is not None
            else own.cache_write_tokens,
            calls.reasoning_tokens if calls.reasoning_tokens is not None else own.reasoning_tokens,
            calls.cost_usd if calls.cost_usd is not None else own.cost_usd,
            calls.calls,
        )
        out.per_turn.append(merged)
    return out


def tokens(usage: UsageBreakdown) -> Tokens:
    """Token and cost totals over every counted model call (see :func:`count_usage`).

    A total is None when no counted call recorded that field. ``cache_read_ratio`` is
    ``cache_read_tokens / input_tokens_total``: GenAI's ``gen_ai.usage.input_tokens`` already
    includes cached tokens, so the seed's ``cacheRead / (input + cacheRead)`` (written for
    usage objects whose ``input`` excludes the cache) is exactly this ratio here; None when
    either is missing or input is 0. ``context_growth_curve`` is the input tokens of each turn
    in order (turns that recorded none are skipped); with no turn spans at all, of each
    counted model call. ``model_calls`` is the number of usage sources counted (None when
    there were none).
    """
    total = usage.total()
    out = Tokens(
        input_tokens_total=total.input_tokens,
        output_tokens_total=total.output_tokens,
        cache_read_tokens=total.cache_read_tokens,
        cache_write_tokens=total.cache_write_tokens,
        cost_usd=total.cost_usd,
        model_calls=total.calls or None,
    )
    _cache_ratios(out)
    if usage.per_turn:
        curve = [u.input_tokens for u in usage.per_turn if u.input_tokens is not None]
    else:
        curve = [u.input_tokens for u in usage.unattributed if u.input_tokens is not None]
    out.context_growth_curve = curve or None
    return out


def _cache_ratios(tok: Tokens) -> None:
    """``cache_read_ratio`` is the inventory's ``cacheRead / (input + cacheRead)``, where
    ``input`` is the input read neither from nor into the cache. GenAI's
    ``gen_ai.usage.input_tokens`` (what every producer here records) includes cache reads and
    cache writes, so ``input + cacheRead`` is ``input_tokens - cache_write``.
    ``cache_read_input_share`` is ``cacheRead / input_tokens``: the share of all input (cache
    writes included) read from the cache. Both None when a needed count is missing."""
    read, total = tok.cache_read_tokens, tok.input_tokens_total
    if read is None or total is None:
        return
    if total:
        tok.cache_read_input_share = read / total
    denominator = total - (tok.cache_write_tokens or 0)
    if denominator > 0:
        tok.cache_read_ratio = read / denominator


# --------------------------------------------------------------------------------- reasoning


def reasoning(turns: Sequence[Span], reasoning_tokens_total: int | None) -> Reasoning:
    """How the agent thought, from the turn spans (ordered) and the counted reasoning tokens.

    * ``has_reasoning_blocks``: True if a turn recorded reasoning present or reasoning tokens
      were counted (> 0); False if presence or reasoning tokens were recorded and all say no;
      None if neither was recorded.
    * ``plan_steps_detected``: the plan steps of the first turn with reasoning (the seed's "first
      assistant turn"); 0 when turns recorded reasoning absent everywhere; None otherwise.
    * ``reasoning_chars_total`` / ``self_correction_count``: sums over the turns that recorded
      them. ``plannotator_phases``: each turn's phase in order (turns without one skipped);
      ``phase_transitions``: the same with consecutive repeats collapsed.
    """
    out = Reasoning(reasoning_tokens_total=reasoning_tokens_total)
    present_seen = any_present = text_seen = False
    chars: int | None = None
    thought_chars: int | None = None
    corrections: int | None = None
    plan_steps: int | None = None
    first_reasoning_found = False
    phases: list[str] = []
    for t in turns:
        a = t.attributes
        present = coerce_bool(a.get(sc.AGENT_SIGNALS_TURN_REASONING_PRESENT))
        thought = _int(a.get(sc.AGENT_SIGNALS_TURN_THOUGHT_CHARS))
        if present is not None:
            present_seen = True
            any_present = any_present or present
        if present is not None or thought is not None:
            text_seen = True
            # The first turn that wrote anything (reasoning or visible text) holds the plan.
            if not first_reasoning_found and (present or thought):
                first_reasoning_found = True
                plan_steps = _int(a.get(sc.AGENT_SIGNALS_TURN_REASONING_PLAN_STEPS))
        thought_chars = _add(thought_chars, thought)
        chars = _add(chars, _int(a.get(sc.AGENT_SIGNALS_TURN_REASONING_CHARS)))
        corrections = _add(
            corrections, _int(a.get(sc.AGENT_SIGNALS_TURN_REASONING_SELF_CORRECTIONS))
        )
        phase = _str(a.get(sc.AGENT_SIGNALS_TURN_PHASE))
        if phase:
            phases.append(phase)
    if any_present or (reasoning_tokens_total or 0) > 0:
        out.has_reasoning_blocks = True
    elif present_seen or reasoning_tokens_total is not None:
        out.has_reasoning_blocks = False
    if first_reasoning_found:
        out.plan_steps_detected = plan_steps
    elif text_seen:
        out.plan_steps_detected = 0
    out.reasoning_chars_total = chars
    out.thought_chars_total = thought_chars
    out.self_correction_count = corrections
    if phases:
        out.plannotator_phases = phases
        transitions = [phases[0]]
        for p in phases[1:]:
            if p != transitions[-1]:
                transitions.append(p)
        out.phase_transitions = transitions
    return out


# ------------------------------------------------------------------------------------- infra


def _time_range(spans: AttemptSpans) -> tuple[int | None, int | None]:
    """The attempt span's start and end, else the earliest start and latest end of all spans
    (a span that never ended, ``end_ns`` 0, counts up to its start)."""
    attempt = spans.attempt
    if attempt is not None:
        return attempt.start_ns, max(attempt.end_ns, attempt.start_ns)
    if not spans.spans:
        return None, None
    start = min(s.start_ns for s in spans.spans)
    end = max(max(s.end_ns, s.start_ns) for s in spans.spans)
    return start, end


def infra(spans: AttemptSpans) -> Infra:
    """Wall time and how the attempt ended.

    ``wall_time_s`` is the attempt span's duration, or without it the time from the earliest
    start to the latest end among the attempt's spans (a lower bound). ``timed_out`` is the
    attempt span's flag; the producer writes it only when true, so an attempt span without it
    means False unless its exit reason is ``timeout``; None without an attempt span.
    """
    start, end = _time_range(spans)
    out = Infra(attempt_index=spans.attempt_index)
    synthetic = spans.attempt is not None and (
        spans.attempt.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) is True
    )
    if start is not None and end is not None and not synthetic:
        # Times synthesized in step order (an imported file without timestamps) measure
        # nothing: no wall time rather than a made-up one.
        out.wall_time_s = (end - start) / 1e9
    attempt = spans.attempt
    if attempt is None:
        return out
    a = attempt.attributes
    out.exit_reason = _str(a.get(sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON))
    out.recovery_mode = _str(a.get(sc.AGENT_SIGNALS_ATTEMPT_RECOVERY_MODE))
    out.final_failure_mode = _str(a.get(sc.AGENT_SIGNALS_ATTEMPT_FINAL_FAILURE_MODE))
    timed_out = coerce_bool(a.get(sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT))
    if timed_out is None:
        timed_out = out.exit_reason == sc.AttemptExitReason.TIMEOUT.value
    out.timed_out = timed_out
    return out


# ---------------------------------------------------------------------------------- compose

# Resource attributes the OpenTelemetry SDK and resource detectors add on their own (not what a
# user set): left out of the records' `resource_attributes`. service.name is `service_name`.
_AUTO_RESOURCE_PREFIXES: Final = ("telemetry.", "process.", "host.", "os.")
_AUTO_RESOURCE_KEYS: Final = frozenset({"service.name", "service.instance.id"})


def user_resource_attributes(resource: dict[str, AttrValue]) -> dict[str, str] | None:
    """The resource attributes a user set (OTEL_RESOURCE_ATTRIBUTES, a host's Resource,
    `agentsignals import --tag`) as text, sorted by key; None when there are none. Left out:
    `telemetry.*`, `process.*`, `host.*`, `os.*` (the SDK and its detectors), service.name
    (the record's `service_name`) and service.instance.id (a random id per process)."""
    out: dict[str, str] = {}
    for key in sorted(resource):
        if key in _AUTO_RESOURCE_KEYS or key.startswith(_AUTO_RESOURCE_PREFIXES):
            continue
        value = resource[key]
        if isinstance(value, list):
            out[key] = msgspec.json.encode(value).decode()
        else:
            text = coerce_str(value)
            if text is not None:
                out[key] = text
    return out or None


def attempt_record(
    spans: Sequence[Span], *, complete: bool = True, revision: int = 0
) -> AttemptRecord:
    """Every feature derivable from the spans of ONE attempt (any order).

    ``spans`` are the spans carrying one ``agent_signals.attempt.id``; the attempt span may be
    missing (killed or evicted mid-attempt): what can be computed from the rest is, the rest is
    None. ``complete`` is the caller's verdict and is forced False without an attempt span.
    Raises ValueError when no span carries an attempt id.
    """
    parts = split_spans(spans)
    if parts.attempt_id is None:
        raise ValueError("no span carries agent_signals.attempt.id")
    usage = count_usage(parts)
    tok = _with_attempt_totals(tokens(usage), parts.attempt)
    if parts.turns:
        tok.compactions = sum(
            1 for t in parts.turns if t.attributes.get(sc.GEN_AI_CONVERSATION_COMPACTED) is True
        )
    reasoning_total = usage.total().reasoning_tokens
    start, end = _time_range(parts)
    beh = behavior(parts)
    anchor = parts.attempt if parts.attempt is not None else (spans[0] if spans else None)
    return AttemptRecord(
        trial_id=parts.trial_id,
        task_id=parts.task_id,
        attempt_id=parts.attempt_id,
        attempt_index=parts.attempt_index,
        parent_attempt_id=(
            _str(parts.attempt.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID))
            if parts.attempt is not None
            else None
        ),
        run_id=(
            _str(parts.attempt.attributes.get(sc.AGENT_SIGNALS_RUN_ID))
            if parts.attempt is not None
            else None
        ),
        trace_id=anchor.trace_id if anchor is not None else None,
        span_id=parts.attempt.span_id if parts.attempt is not None else None,
        service_name=_str(anchor.resource.get("service.name")) if anchor is not None else None,
        resource_attributes=user_resource_attributes(anchor.resource)
        if anchor is not None
        else None,
        complete=complete and parts.attempt is not None,
        revision=revision,
        # The attempt's own spans: outcome spans added later by verify are not the agent's.
        span_count=len(parts.spans) - len(parts.verifications),
        started_at_ns=start,
        ended_at_ns=end,
        treatment=treatment(parts.attempt),
        behavior=beh,
        reasoning=reasoning(parts.turns, reasoning_total),
        tokens=tok,
        verification=verification(parts),
        anticipation=Anticipation(
            first_tool_precision=first_tool_precision(parts.tools, beh.touched_files)
        ),
        infra=infra(parts),
        recovery=_recovery(parts, usage),
    )


def _recovery(parts: AttemptSpans, usage: UsageBreakdown) -> Recovery:
    """The recovery feature group (`_features/recovery.py`): fault injection's signals."""
    from agentsignals._features.recovery import recovery

    per_turn = [(u.input_tokens, u.output_tokens, u.cost_usd) for u in usage.per_turn]
    if len(per_turn) != len(parts.turns):
        per_turn = [(None, None, None)] * len(parts.turns)
    calls = [(c.span, c.category, c.changed_files) for c in parts.tools]
    return recovery(parts.attempt, calls, parts.turns, per_turn)


_VERIFY_FIELDS = (
    ("reward", sc.AGENT_SIGNALS_VERIFY_REWARD, float),
    ("patch_outcome_label", sc.AGENT_SIGNALS_VERIFY_PATCH_OUTCOME_LABEL, str),
    ("fail_to_pass_count", sc.AGENT_SIGNALS_VERIFY_FAIL_TO_PASS_COUNT, int),
    ("fail_to_fail_count", sc.AGENT_SIGNALS_VERIFY_FAIL_TO_FAIL_COUNT, int),
    ("pass_to_pass_count", sc.AGENT_SIGNALS_VERIFY_PASS_TO_PASS_COUNT, int),
    ("pass_to_fail_count", sc.AGENT_SIGNALS_VERIFY_PASS_TO_FAIL_COUNT, int),
    ("patch_applies", sc.AGENT_SIGNALS_VERIFY_PATCH_APPLIES, bool),
    ("unverifiable_reason", sc.AGENT_SIGNALS_VERIFY_UNVERIFIABLE_REASON, str),
    ("outcome_source", sc.AGENT_SIGNALS_VERIFY_SOURCE, str),
)


def verification(spans: AttemptSpans) -> Verification:
    """The verifier's outcome (recorded in process on the attempt span, or added later as a
    verification span; the latest wins) and the agent's own test runs.

    ``agent_tests_fixed`` are tests failing in the agent's first test run and passing in its
    last; ``agent_tests_broken`` the reverse. Both need runs whose output named the tests; with
    fewer than two parsed runs they are None.
    """
    out = Verification()
    sources = [s for s in (spans.attempt,) if s is not None] + spans.verifications
    for source in sources:
        attrs = source.attributes
        if not any(key in attrs for _, key, _ in _VERIFY_FIELDS):
            continue
        for name, key, kind in _VERIFY_FIELDS:
            value = attrs.get(key)
            if value is None:
                continue
            if kind is float:
                setattr(out, name, coerce_float(value))
            elif kind is int:
                setattr(out, name, _int(value))
            elif kind is bool:
                setattr(out, name, coerce_bool(value))
            else:
                setattr(out, name, _str(value))
    runs = [
        c.span
        for c in spans.tools
        if c.span.attributes.get(sc.AGENT_SIGNALS_TEST_FRAMEWORK) is not None
    ]
    if runs:
        first, last = runs[0].attributes, runs[-1].attributes
        out.agent_test_runs = len(runs)
        out.agent_first_run_failed = _failed_count(first)
        out.agent_last_run_failed = _failed_count(last)
        out.agent_last_run_passed = _int(last.get(sc.AGENT_SIGNALS_TEST_PASSED_COUNT))
        if len(runs) >= 2:
            first_failed = set(_names(first, sc.AGENT_SIGNALS_TEST_FAILED))
            first_passed = set(_names(first, sc.AGENT_SIGNALS_TEST_PASSED))
            last_failed = _names(last, sc.AGENT_SIGNALS_TEST_FAILED)
            last_passed = _names(last, sc.AGENT_SIGNALS_TEST_PASSED)
            out.agent_tests_fixed = [t for t in last_passed if t in first_failed]
            out.agent_tests_broken = [t for t in last_failed if t in first_passed]
    return out


def _failed_count(attrs: dict[str, AttrValue]) -> int | None:
    failed = _int(attrs.get(sc.AGENT_SIGNALS_TEST_FAILED_COUNT))
    errors = _int(attrs.get(sc.AGENT_SIGNALS_TEST_ERROR_COUNT))
    if failed is None and errors is None:
        return None
    return (failed or 0) + (errors or 0)


def _names(attrs: dict[str, AttrValue], key: str) -> list[str]:
    return [str(v) for v in _list(attrs.get(key))]


def _list(value: AttrValue | None) -> list[AttrScalar]:
    return value if isinstance(value, list) else []


def _with_attempt_totals(tok: Tokens, attempt: Span | None) -> Tokens:
    """Formats that record usage only as attempt totals (imported trajectories) put them on
    the attempt span; they fill the totals when no turn or model call recorded usage, and are
    not spread over turns (the growth curve stays None). Their call count fills
    ``model_calls`` when no call was counted."""
    if attempt is None:
        return tok
    a = attempt.attributes
    if tok.model_calls is None:
        tok.model_calls = _int(a.get(sc.AGENT_SIGNALS_USAGE_MODEL_CALLS))
    if tok.input_tokens_total is None and tok.output_tokens_total is None:
        tok.input_tokens_total = _int(a.get(_IN))
        tok.output_tokens_total = _int(a.get(_OUT))
        tok.cache_read_tokens = _int(a.get(_CACHE_R))
        tok.cache_write_tokens = _int(a.get(_CACHE_W))
        _cache_ratios(tok)
    if tok.cost_usd is None:
        tok.cost_usd = coerce_float(a.get(_COST))
    return tok
