"""pi coding-agent sessions (`~/.pi/agent/sessions/<cwd>/<time>_<id>.jsonl`), versions 1 to 3.

The first line is the header, `{"type": "session", "id", "timestamp", "cwd", "version"?}`
(version 1 has no `version` field). One session file is one trial (task id and
`gen_ai.conversation.id`: the header's `id`) with one attempt. What maps to what:

- **Which entries.** Versions 2 and 3 link entries into a tree (`id`/`parentId`); the session
  is the active branch, the path from the last entry back to the root, as pi itself loads it.
  Entries off that path are abandoned branches (the user went back and continued elsewhere):
  they are not imported, and one problem per file says how many entries and model responses
  were left out. A missing parent (a corrupt line) is reported and the walk continues at the
  entry before the child in the file. Version 1 is linear: every entry, in file order.
- **Turns.** Every assistant message is one API response and one turn, aborted and failed
  ones included (their stop reason is the finish reason). A turn runs from the message's own
  `timestamp` (ms, set when the request started) to its entry's `timestamp` (when it was
  written). Model and provider are the message's; pi's provider names are mapped to GenAI's
  (`openai-codex` -> `openai`, `google` -> `gcp.gemini`, ...).
- **Usage.** pi's `input` excludes cache reads and writes (Anthropic style, for every provider:
  `totalTokens = input + output + cacheRead + cacheWrite`); GenAI's input includes them, so
  `gen_ai.usage.input_tokens = input + cacheRead + cacheWrite`, cache read and write as their
  subsets, and `cost.total` is the cost.
- **Reasoning:** the text of the message's `thinking` blocks (empty when it had none).
- **Tools:** every `toolCall` block, matched to its `toolResult` message by id: arguments as
  given, `path` as the stated file of read/edit/write, bash's `command` classified by the
  builder; `Command exited with code N` in a failed bash result is the exit code, another
  failed result is a `tool_error` (a failed edit changed no file). Calls of an aborted or
  failed response that got no result were never run and are left out; a call of a complete
  response with no result (the session was cut) has no result and no error.
- **User turns** (`user_turn` spans, in entry order): each user message (kind `message`;
  `rewound` when its parent entry has other, abandoned children: the user went back there),
  each `bashExecution` (kind `command`, `!` and the command), and each response the user
  aborted (kind `interrupt`, at the response's time). Abandoned branches' model responses are
  counted on the attempt (`agent_signals.session.abandoned_turns`).
- **Not turns:** custom, branch and compaction summary messages, `model_change`,
  `thinking_level_change`, labels (model changes show in the turns' models).
- **Compactions** (`compaction` entries on the active branch): an `agent_signals.compaction`
  event (time, `tokensBefore`) before the first response after it, which also carries
  `gen_ai.conversation.compacted`; the turns before it are still imported (they happened).
- **Edit regions:** an `edit` result's `details.diff` (pi's numbered diff: `+ 87 text`, `- 87
  text`) gives each changed run's first line, lines added and removed.
- **Exit:** the last response's stop reason: `aborted` -> `user_stopped`, `error` -> `error`;
  otherwise unset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentsignals import semconv as sc
from agentsignals._classify.regions import Region
from agentsignals._import.builder import AttemptBuilder, TrajectoryBuilder, TurnRef
from agentsignals._import.formats import ImportProblem, Report, TrajectoryError
from agentsignals._import.formats._common import (
    loads_json,
    read_source,
    source_stem,
    timestamp_ns,
)
from agentsignals._spans.model import Span

NAME = "pi"

_AGENT = "pi"
_FILE_TOOLS = frozenset({"read", "edit", "write"})
_SHELL_TOOLS = frozenset({"bash"})
_NOT_RUN = frozenset({"aborted", "error"})
_EXIT_CODE = re.compile(r"Command exited with code (\d+)\s*\Z")
_PROVIDERS = {
    "anthropic": "anthropic",
    "openai": "openai",
    "openai-codex": "openai",
    "azure-openai-responses": "azure.ai.openai",
    "google": "gcp.gemini",
    "google-gemini-cli": "gcp.gemini",
    "google-vertex": "gcp.vertex_ai",
    "amazon-bedrock": "aws.bedrock",
    "xai": "x_ai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def detect(path: Path, head: bytes) -> bool:
    """The first line is a pi session header."""
    first = head.split(b"\n", 1)[0].strip()
    if not first.startswith(b"{") or b'"session"' not in first:
        return False
    try:
        header = loads_json(first)
    except ValueError:
        return False
    return (
        isinstance(header, dict)
        and header.get("type") == "session"
        and isinstance(header.get("id"), str)
        and "cwd" in header
        and isinstance(header.get("version", 1), int)
    )


# ------------------------------------------------------------------------------------ parse


def _ns(value: Any) -> int | None:
    """ISO-8601 timestamp (or Unix milliseconds) as Unix nanoseconds."""
    return timestamp_ns(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


@dataclass(frozen=True)
class Entry:
    line: int
    data: dict[str, Any]

    @property
    def message(self) -> dict[str, Any] | None:
        message = self.data.get("message")
        return message if self.data.get("type") == "message" and isinstance(message, dict) else None


@dataclass(frozen=True)
class Compaction:
    line: int
    tokens_before: int | None
    ns: int | None = None


@dataclass
class PiSession:
    """A session file read: its header and the entries of its active branch, root first."""

    path: Path
    id: str
    version: int
    cwd: str | None
    header: dict[str, Any]
    entries: list[Entry]
    compactions: list[Compaction] = field(default_factory=list)
    abandoned_entries: int = 0
    abandoned_responses: int = 0
    # Ids of entries with more than one child: the user went back there and branched.
    branch_points: set[str] = field(default_factory=set)


def parse(path: Path, report: Report) -> PiSession:
    """Read a session file; bad lines are reported, an unreadable file raises."""
    where = str(path)
    try:
        data = read_source(path)
    except OSError as exc:
        raise TrajectoryError(where, f"cannot read: {exc.strerror or exc}") from exc
    lines = data.split(b"\n")
    last = len(lines) - (1 if data.endswith(b"\n") else 0)
    header: dict[str, Any] | None = None
    entries: list[Entry] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = loads_json(raw)
        except ValueError as exc:
            if header is None:
                raise TrajectoryError(where, f"no pi session header: {exc}", line=number) from exc
            what = "truncated entry" if number == last else "not valid JSON"
            report(ImportProblem(where, number, f"{what}: {exc}"))
            continue
        if header is None:
            if not (isinstance(record, dict) and record.get("type") == "session"):
                raise TrajectoryError(where, "no pi session header", line=number)
            header = record
            continue
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            report(ImportProblem(where, number, "not an entry (a JSON object with a type)"))
            continue
        entries.append(Entry(number, record))
    if header is None:
        raise TrajectoryError(where, "empty file")
    version = _int(header.get("version")) or 1
    session_id = header.get("id")
    session = PiSession(
        path=path,
        id=session_id if isinstance(session_id, str) and session_id else source_stem(path),
        version=version,
        cwd=header.get("cwd") if isinstance(header.get("cwd"), str) else None,
        header=header,
        entries=entries if version < 2 else _active_branch(where, entries, report),
    )
    if version >= 2:
        children: dict[str, int] = {}
        for e in entries:
            parent = e.data.get("parentId")
            if isinstance(parent, str):
                children[parent] = children.get(parent, 0) + 1
        session.branch_points = {k for k, n in children.items() if n > 1}
        kept = {e.line for e in session.entries}
        off = [e for e in entries if e.line not in kept]
        session.abandoned_entries = len(off)
        session.abandoned_responses = sum(
            1 for e in off if e.message is not None and e.message.get("role") == "assistant"
        )
        if off:
            report(
                ImportProblem(
                    where,
                    0,
                    f"{len(off)} entries on abandoned branches not imported "
                    f"({session.abandoned_responses} model responses): only the active branch "
                    "(the last entry's path to the root) is",
                )
            )
    session.compactions = [
        Compaction(e.line, _int(e.data.get("tokensBefore")), _ns(e.data.get("timestamp")))
        for e in session.entries
        if e.data.get("type") == "compaction"
    ]
    return session


def _active_branch(where: str, entries: list[Entry], report: Report) -> list[Entry]:
    """The path from the last entry to the root, root first."""
    by_id: dict[str, int] = {}
    for index, entry in enumerate(entries):
        entry_id = entry.data.get("id")
        if isinstance(entry_id, str):
            by_id[entry_id] = index
        else:
            report(ImportProblem(where, entry.line, "entry without an id"))
    if not entries:
        return []
    path: list[Entry] = []
    seen: set[int] = set()
    pos: int | None = len(entries) - 1
    while pos is not None and pos not in seen:
        seen.add(pos)
        entry = entries[pos]
        path.append(entry)
        parent = entry.data.get("parentId")
        if not isinstance(parent, str):
            break  # the root
        if parent in by_id:
            pos = by_id[parent]
            continue
        pos = pos - 1 if pos > 0 else None
        report(
            ImportProblem(
                where,
                entry.line,
                f"parent entry {parent!r} is missing (a corrupt line?); "
                + (f"assuming line {entries[pos].line}" if pos is not None else "branch ends"),
            )
        )
    path.reverse()
    return path


# ------------------------------------------------------------------------------------ spans


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return None


def _never_ran(block: dict[str, Any], stop: Any, results: dict[str, Entry]) -> bool:
    """A call of an aborted or failed response that got no result (no tool span)."""
    call_id = block.get("id") if isinstance(block.get("id"), str) else None
    return stop in _NOT_RUN and (call_id is None or call_id not in results)


def _tool_call(
    attempt: AttemptBuilder,
    turn: TurnRef,
    block: dict[str, Any],
    stop: Any,
    results: dict[str, Entry],
    start: int | None,
) -> int | None:
    """Add one tool call (unless it never ran); returns when the next call can start."""
    call_id = block.get("id") if isinstance(block.get("id"), str) else None
    result_entry = results.get(call_id) if call_id is not None else None
    if _never_ran(block, stop, results):
        return start  # a call of an aborted or failed response: never run
    raw_name = block.get("name")
    name: str = raw_name if isinstance(raw_name, str) and raw_name else "unknown"
    raw_args = block.get("arguments")
    args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
    file = args.get("path")
    files = [file] if name in _FILE_TOOLS and isinstance(file, str) and file else None
    raw_command = args.get("command")
    command = raw_command if name in _SHELL_TOOLS and isinstance(raw_command, str) else None
    result: dict[str, Any] = {}
    end: int | None = None
    if result_entry is not None:
        result = result_entry.message or {}
        end = _ns(result.get("timestamp"))
        if end is None:
            end = _ns(result_entry.data.get("timestamp"))
    text = _text(result.get("content")) if result_entry is not None else None
    exit_code: int | None = None
    error: str | None = None
    changed: list[str] | None = None
    if result.get("isError"):
        match = _EXIT_CODE.search(text or "") if command is not None else None
        if match:
            exit_code = int(match.group(1))
        else:
            error = "tool_error"
        if files:
            changed = []  # a failed edit changed nothing
    regions = (
        _diff_regions(file, result.get("details"))
        if name == "edit" and files and not result.get("isError")
        else None
    )
    attempt.tool(
        name,
        turn=turn,
        regions=regions,
        arguments=args,
        command=command,
        call_id=call_id,
        files=files,
        changed_files=changed,
        result=text,
        exit_code=exit_code,
        error=error,
        start_ns=start,
        end_ns=end if end is not None else start,
    )
    return end if end is not None else start


_DIFF_LINE = re.compile(r"^([ +-])\s*(\d+) ")


def _diff_regions(file: str | None, details: Any) -> list[Region] | None:
    """The changed runs of pi's numbered edit diff (`+ 87 new`, `- 87 old`, context with a
    space, `...` for skipped lines): each run starts at its first added line (the new file's
    number), or, for a run that only removed lines, at the removed line's number."""
    diff = details.get("diff") if isinstance(details, dict) else None
    if not isinstance(diff, str) or not file:
        return None
    out: list[Region] = []
    start: int | None = None
    added = removed = 0
    for line in [*diff.splitlines(), " "]:
        match = _DIFF_LINE.match(line)
        sign = match.group(1) if match else " "
        if sign == " ":
            if start is not None:
                out.append(Region(file, max(start, 1), added, removed))
            start, added, removed = None, 0, 0
            continue
        assert match is not None
        number = int(match.group(2))
        if sign == "+":
            if added == 0:
                start = number
            added += 1
        else:
            if start is None:
                start = number
            removed += 1
    return out or None


def _provider(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    return _PROVIDERS.get(name, name)


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    """One trajectory per session file."""
    try:
        spans = _spans(parse(path, report))
    except TrajectoryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # an unforeseen shape
        raise TrajectoryError(str(path), f"unexpected entry shape: {exc!r}") from exc
    yield spans


def _spans(session: PiSession) -> list[Span]:
    entries = session.entries
    results: dict[str, Entry] = {}
    responses: list[Entry] = []
    # Content: the user's messages each response was the first to read.
    inputs: list[list[tuple[str, str]]] = []
    pending: list[tuple[str, str]] = []
    # (entry line, time, kind, text, rewound) of each thing the user did, in entry order.
    said: list[tuple[int, int | None, str, str | None, bool]] = []
    for entry in entries:
        message = entry.message
        if message is None:
            continue
        when = _ns(entry.data.get("timestamp"))
        if message.get("role") == "toolResult" and isinstance(message.get("toolCallId"), str):
            results[message["toolCallId"]] = entry
        elif message.get("role") == "assistant":
            responses.append(entry)
            inputs.append(pending)
            pending = []
            if message.get("stopReason") == "aborted":
                said.append((entry.line, when, sc.UserTurnKind.INTERRUPT.value, None, False))
        elif message.get("role") == "user":
            # When the user sent it (the message's own time; the entry is written a little
            # later, after the model request may have started).
            when = _ns(message.get("timestamp")) or when
            text = _text(message.get("content")) or ""
            pending.append(("user", text))
            rewound = entry.data.get("parentId") in session.branch_points
            said.append((entry.line, when, sc.UserTurnKind.MESSAGE.value, text, rewound))
        elif message.get("role") == "bashExecution":
            # A command the user ran with `!`: pi gives the model the command and its output.
            command, output = message.get("command"), message.get("output")
            if isinstance(command, str):
                said.append((entry.line, when, sc.UserTurnKind.COMMAND.value, f"!{command}", False))
                if not message.get("excludeFromContext"):
                    shown = output if isinstance(output, str) else ""
                    pending.append(("user", f"!{command}\n{shown}".rstrip("\n")))
    times = [t for e in entries if (t := _ns(e.data.get("timestamp"))) is not None]
    header_ns = _ns(session.header.get("timestamp"))
    start = min([*times, header_ns] if header_ns is not None else times, default=None)
    end = max(times, default=None)
    # The session's model: that of the first response that is a real answer. An aborted,
    # empty response (the user stopped it before any output) says nothing of the session.
    answered = [
        m
        for e in responses
        if (m := e.message or {}).get("stopReason") != "aborted" or m.get("content")
    ]
    model = next((m["model"] for m in answered if isinstance(m.get("model"), str)), None)
    provider = next((m.get("provider") for m in answered), None)
    if model is None:
        change = next((e.data for e in entries if e.data.get("type") == "model_change"), None)
        source = change if change is not None else session.header
        model = source.get("modelId") if isinstance(source.get("modelId"), str) else None
        provider = source.get("provider")
    builder = TrajectoryBuilder(
        source_format=NAME, source_path=str(session.path), task_id=session.id, start_ns=start
    )
    attempt = builder.attempt(
        agent_type=_AGENT,
        agent_name=_AGENT,
        model_id=model,
        provider=_provider(provider),
        conversation_id=session.id,
        start_ns=start,
        working_directory=session.cwd,
        abandoned_turns=session.abandoned_responses,
    )
    last_ns = start
    # The first response after a compaction works from a compacted context (GenAI's
    # gen_ai.conversation.compacted on that turn).
    compactions = sorted(session.compactions, key=lambda c: c.line)

    def user_turns(before: int) -> None:
        while said and said[0][0] < before:
            _, when, kind, text, rewound = said.pop(0)
            attempt.user_turn(text, kind=kind, at_ns=when, rewound=rewound)

    for entry, given in zip(responses, inputs, strict=True):
        compacted = False
        user_turns(entry.line)
        while compactions and compactions[0].line < entry.line:
            done = compactions.pop(0)
            attempt.compaction(at_ns=done.ns, tokens_before=done.tokens_before)
            compacted = True
        message = entry.message or {}
        written = _ns(entry.data.get("timestamp"))
        began = _ns(message.get("timestamp"))
        turn_end = written if written is not None else (began if began is not None else last_ns)
        turn_start = (
            began if began is not None and (turn_end is None or began <= turn_end) else turn_end
        )
        usage = message.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        parts = [_int(usage.get(k)) for k in ("input", "cacheRead", "cacheWrite")]
        known = [p for p in parts if p is not None]
        cost = usage.get("cost")
        total_cost = cost.get("total") if isinstance(cost, dict) else None
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        stop = message.get("stopReason")
        turn = attempt.turn(
            count_text=True,
            compacted=compacted,
            start_ns=turn_start,
            end_ns=turn_end,
            model=message.get("model") if isinstance(message.get("model"), str) else None,
            provider=_provider(message.get("provider")),
            input_tokens=sum(known) if known else None,
            output_tokens=_int(usage.get("output")),
            cache_read_tokens=parts[1],
            cache_write_tokens=parts[2],
            cost_usd=float(total_cost)
            if isinstance(total_cost, int | float) and not isinstance(total_cost, bool)
            else None,
            reasoning="\n".join(
                b["thinking"]
                for b in blocks
                if b.get("type") == "thinking" and isinstance(b.get("thinking"), str)
            ),
            finish_reasons=[stop] if isinstance(stop, str) and stop else None,
            inputs=given,
            text=_text(blocks) or None,
            calls=[
                (str(b.get("name")), b.get("arguments"))
                for b in blocks
                if b.get("type") == "toolCall" and _never_ran(b, stop, results)
            ],
        )
        tool_start = turn_end
        for block in blocks:
            if block.get("type") == "toolCall":
                tool_start = _tool_call(attempt, turn, block, stop, results, tool_start)
        if turn_end is not None:
            last_ns = turn_end
        if (entry.message or {}).get("stopReason") == "aborted":
            user_turns(entry.line + 1)  # the user's interrupt, right after the response
    user_turns(1 << 62)
    for done in compactions:
        attempt.compaction(at_ns=done.ns, tokens_before=done.tokens_before)
    exit_reason: str | None = None
    final = (responses[-1].message or {}).get("stopReason") if responses else None
    if final == "aborted":
        exit_reason = sc.AttemptExitReason.USER_STOPPED.value
    elif final == "error":
        exit_reason = sc.AttemptExitReason.ERROR.value
    attempt.end(exit_reason=exit_reason, end_ns=end)
    return builder.finish(end_ns=end)
