"""Claude Code session transcripts: `~/.claude/projects/<project>/<session-id>.jsonl`.

One session file is one trial (task id and `gen_ai.conversation.id`: the `sessionId`) with one
attempt, the main agent. What maps to what:

- **Turns.** One API response is one turn. Claude Code writes a response as several
  `assistant` lines, one per content block, all with the same `message.id`/`requestId`; they
  are grouped into one turn (lines of one response can be interleaved with the results of its
  own tool calls). Lines with the same id but a different input-side usage are a different
  response. `<synthetic>` messages (API error notices Claude Code writes itself) are not
  responses. A turn starts at the record before its first line (the prompt or tool result that
  triggered the request) and ends at its last line.
- **Usage**, counted once per response: each line of a response repeats the usage known when it
  was written, so the field-wise maximum over its lines is taken (output tokens grow while the
  response streams; Claude Code itself sometimes writes only the early count). Anthropic's
  `input_tokens` excludes the cache; GenAI's includes it, so
  `gen_ai.usage.input_tokens = input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens`, with cache read (`cache_read_input_tokens`) and cache write
  (`cache_creation_input_tokens`) as their own subsets. `costUSD` (older versions) is the cost.
- **Reasoning:** the text of the response's `thinking` blocks (an empty string when it had
  none: the transcript records every block).
- **Tools:** every `tool_use` block, matched to its `tool_result` by id: arguments are the
  input; `file_path`/`notebook_path` are the stated files; Bash's `command` is classified and
  its shell edits detected by the builder; `Exit code N` in a failed Bash result is the exit
  code. A failed result is an error: `user_rejected`, `interrupted`, `cancelled` (a sibling
  call failed), else `tool_error`; a failed edit changed no file. A call with no result in the
  file (a session cut off mid-call) has no result and no error.
- **Subagents** (Task/Agent tool calls) become attempts nested under the main attempt, their
  span a child of the Task tool span, kept apart from retries in the trial record. Their
  transcript comes from, in this order: `<session-id>/subagents/agent-<agentId>.jsonl` (the
  session file's sibling folder), the older sibling `agent-<agentId>.jsonl`, matched by the
  `agentId` of the Task result; the `agent_progress` records the session streams for the Task
  call (2.1.x: they lack the subagent's final answer, whose usage the Task result carries,
  so it becomes the subagent's last turn); sidechain records (`isSidechain: true`) in the
  session file, matched by agent id, then by prompt, then in order. Subagent transcripts no
  Task call claims (a cut-off session, compaction helpers) are still nested under the main
  attempt, without a tool parent. A subagent whose Task result says `completed` exits
  `submitted`.
- **Exit:** `user_stopped` when the session ends on "[Request interrupted by user]", `error`
  when it ends on an API error notice, else unset (an interactive session has no submission).
- Records are deduplicated by `uuid` (resumed sessions repeat history). Other record types
  (progress hooks, snapshots, summaries, system notices, queue operations) carry no turn or
  tool; after a `compact_boundary` system record the next model call of the main
  conversation is marked `gen_ai.conversation.compacted` (counted in `tokens.compactions`).

The user's side (the main conversation only; a subagent's prompt comes from its parent):

- **User turns** (`user_turn` spans, at the record's time): a user record's text (not
  `isMeta`, not a tool result) is a `message`; `[Request interrupted by user...]` is an
  `interrupt`; a slash command (`<command-name>`) or `!` shell input (`<bash-input>`) is a
  `command` (its text is the command line), except a custom command whose prompt the next
  `isMeta` record gives the model: that is a `message` (the command line is what the user
  wrote to the agent); command output (`<local-command-stdout>`,
  `<bash-stdout>`) and `<system-reminder>` blocks are not the user's.
- **Compactions**: each `compact_boundary` is an `agent_signals.compaction` event on the attempt
  span (`compactMetadata.preTokens` and `trigger` when recorded).
- **Regions**: an edit's `toolUseResult.structuredPatch` hunks (a created file: all its lines)
  are the call's changed regions. The records' `cwd` is the attempt's working directory.
- The main agent's turns count the words, hedges and confirmation requests of their text, and
  the assumption phrases of their thinking.

Files inside a `subagents/` folder, and sidechain-only `agent-*.jsonl` files, are not detected
on their own: their session imports them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
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
    source_name,
    timestamp_ns,
)
from agentsignals._spans.model import Span

NAME = "claude-code"

_AGENT = "claude-code"
_PROVIDER = "anthropic"
_SYNTHETIC_MODEL = "<synthetic>"
_TASK_TOOLS = frozenset({"Task", "Agent"})
_FILE_KEYS = ("file_path", "notebook_path")
_SHELL_TOOLS = frozenset({"Bash", "BashOutput"})
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_INTERRUPTED = "[Request interrupted by user"
_EXIT_CODE = re.compile(r"\AExit code (\d+)")
_AGENT_ID_TEXT = re.compile(r"agentId:\s*([A-Za-z0-9_-]+)")
_HEAD_RECORD_TYPES = frozenset(
    {"user", "assistant", "system", "progress", "queue-operation", "last-prompt", "attachment"}
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SUBAGENT_DEPTH = 8


# ------------------------------------------------------------------------------------ detect


def detect(path: Path, head: bytes) -> bool:
    """A JSON-lines file whose records look like Claude Code's (sessionId with uuid links, or
    its summary / file-history-snapshot records); not a subagent file its session imports."""
    if path.parent.name == "subagents":
        return False
    found = False
    for raw in head.split(b"\n")[:32]:
        raw = raw.strip()
        if not raw.startswith(b"{"):
            continue
        try:
            record = loads_json(raw)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        kind = record.get("type")
        if "sessionId" in record and kind in _HEAD_RECORD_TYPES:
            # An older sibling subagent file (agent-<id>.jsonl): its session imports it.
            return not (
                source_name(path).startswith("agent-") and record.get("isSidechain") is True
            )
        if (kind == "summary" and "leafUuid" in record) or (
            kind == "file-history-snapshot" and "snapshot" in record
        ):
            found = True
    if found:
        return True
    # A first record longer than the head: recognise the keys only Claude Code writes.
    return head.lstrip().startswith(b"{") and b'"isSidechain"' in head and b'"sessionId"' in head


# ----------------------------------------------------------------------------------- loading


@dataclass
class _Rec:
    """One user or assistant record (for streamed subagent progress: the inner record)."""

    path: str
    line: int
    data: dict[str, Any]


def _ns(value: Any) -> int | None:
    """ISO-8601 timestamp (or Unix milliseconds) as Unix nanoseconds."""
    return timestamp_ns(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _load(path: Path, report: Report) -> list[tuple[int, dict[str, Any]]]:
    """The file's JSON records with their 1-based line numbers; bad lines are reported."""
    where = str(path)
    try:
        data = read_source(path)
    except OSError as exc:
        raise TrajectoryError(where, f"cannot read: {exc.strerror or exc}") from exc
    records: list[tuple[int, dict[str, Any]]] = []
    lines = data.split(b"\n")
    last = len(lines) - (1 if data.endswith(b"\n") else 0)
    first_bad: int | None = None
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = loads_json(raw)
        except ValueError as exc:
            first_bad = first_bad or number
            what = "truncated record" if number == last else "not valid JSON"
            report(ImportProblem(where, number, f"{what}: {exc}"))
            continue
        if not isinstance(record, dict):
            first_bad = first_bad or number
            report(ImportProblem(where, number, "not a JSON object"))
            continue
        records.append((number, record))
    if not records:
        raise TrajectoryError(where, "no Claude Code records", line=first_bad or 0)
    return records


# ------------------------------------------------------------------------------ conversation


@dataclass
class _ToolUse:
    id: str | None
    name: str
    input: dict[str, Any]
    ns: int | None


@dataclass
class _Result:
    text: str | None
    is_error: bool
    ns: int | None
    detail: Any  # the record's toolUseResult when the record holds only this result


@dataclass
class _Response:
    """One API response: one or more assistant lines."""

    signature: tuple[int | None, ...]  # input-side usage: equal on every line of a response
    request_ns: int | None
    end_ns: int | None
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost: float | None = None
    stop_reason: str | None = None
    thinking: list[str] = field(default_factory=list)
    tools: list[_ToolUse] = field(default_factory=list)
    # Content: the response's text blocks, and the user's messages since the previous one.
    texts: list[str] = field(default_factory=list)
    inputs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _UserTurn:
    """Something the user did, before response number `before` of the conversation."""

    before: int
    ns: int | None
    kind: str
    text: str | None
    rewound: bool = False


@dataclass
class _Conversation:
    """One agent's records, read: its responses in order and the tool results by call id."""

    responses: list[_Response] = field(default_factory=list)
    results: dict[str, _Result] = field(default_factory=dict)
    start_ns: int | None = None
    end_ns: int | None = None
    session_id: str | None = None
    agent_id: str | None = None
    prompt: str | None = None
    user_stopped: bool = False
    api_error: bool = False
    inputs: list[tuple[str, str]] = field(default_factory=list)  # not yet read by a response
    user_turns: list[_UserTurn] = field(default_factory=list)
    cwd: str | None = None
    # parentUuid -> user text records seen under it: a second one is a rewind (the user went
    # back and wrote again from there); tool results under one parent are parallel calls.
    typed_children: dict[str, int] = field(default_factory=dict)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        return "\n".join(parts)
    return None


def _conversation(recs: Sequence[_Rec], report: Report) -> _Conversation:
    conv = _Conversation()
    open_responses: dict[str, _Response] = {}
    last_ns: int | None = None
    for rec in recs:
        d = rec.data
        ns = _ns(d.get("timestamp"))
        kind = d.get("type")
        message = d.get("message")
        if not isinstance(message, dict):
            report(ImportProblem(rec.path, rec.line, f"{kind} record without a message object"))
            continue
        if ns is not None:
            conv.start_ns = ns if conv.start_ns is None else min(conv.start_ns, ns)
            conv.end_ns = ns if conv.end_ns is None else max(conv.end_ns, ns)
        if conv.session_id is None and isinstance(d.get("sessionId"), str):
            conv.session_id = d["sessionId"]
        if conv.agent_id is None and isinstance(d.get("agentId"), str):
            conv.agent_id = d["agentId"]
        if conv.cwd is None and isinstance(d.get("cwd"), str) and d["cwd"]:
            conv.cwd = d["cwd"]
        if kind == "assistant":
            _assistant(conv, open_responses, rec, message, ns, last_ns, report)
        else:
            _user(conv, d, message, ns)
        if ns is not None:
            last_ns = ns
    return conv


def _assistant(
    conv: _Conversation,
    open_responses: dict[str, _Response],
    rec: _Rec,
    message: dict[str, Any],
    ns: int | None,
    last_ns: int | None,
    report: Report,
) -> None:
    d = rec.data
    model = message.get("model")
    if model == _SYNTHETIC_MODEL:
        conv.api_error = bool(d.get("isApiErrorMessage")) or conv.api_error
        conv.user_stopped = False
        return
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        report(ImportProblem(rec.path, rec.line, "assistant message without content blocks"))
        return
    usage = message.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    key = message.get("id") or d.get("requestId") or d.get("uuid") or f"line {rec.line}"
    signature = (
        _int(usage.get("input_tokens")),
        _int(usage.get("cache_creation_input_tokens")),
        _int(usage.get("cache_read_input_tokens")),
    )
    response = open_responses.get(str(key))
    if response is None or response.signature != signature:
        response = _Response(signature, last_ns if last_ns is not None else ns, ns)
        response.inputs, conv.inputs = conv.inputs, []
        open_responses[str(key)] = response
        conv.responses.append(response)
    if ns is not None:
        response.end_ns = ns if response.end_ns is None else max(response.end_ns, ns)
    if isinstance(model, str) and model:
        response.model = model
    for name in _USAGE_KEYS:
        value = _int(usage.get(name))
        if value is not None:
            response.usage[name] = max(response.usage.get(name, value), value)
    cost = d.get("costUSD")
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        response.cost = max(response.cost or 0.0, float(cost))
    if isinstance(message.get("stop_reason"), str):
        response.stop_reason = message["stop_reason"]
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "thinking" and isinstance(block.get("thinking"), str):
            response.thinking.append(block["thinking"])
        elif kind == "text" and isinstance(block.get("text"), str):
            response.texts.append(block["text"])
        elif kind == "tool_use":
            tool_name = block.get("name")
            args = block.get("input")
            tool_id = block.get("id")
            response.tools.append(
                _ToolUse(
                    tool_id if isinstance(tool_id, str) else None,
                    tool_name if isinstance(tool_name, str) and tool_name else "unknown",
                    args if isinstance(args, dict) else {},
                    ns,
                )
            )
    conv.user_stopped = conv.api_error = False


def _user(conv: _Conversation, d: dict[str, Any], message: dict[str, Any], ns: int | None) -> None:
    content = message.get("content")
    blocks: list[Any] = []
    if isinstance(content, str):
        blocks = [{"type": "text", "text": content}]
    elif isinstance(content, list):
        blocks = content
    results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    for block in results:
        tool_id = block.get("tool_use_id")
        if isinstance(tool_id, str):
            conv.results[tool_id] = _Result(
                _text(block.get("content")),
                bool(block.get("is_error")),
                ns,
                d.get("toolUseResult") if len(results) == 1 else None,
            )
    if d.get("isMeta"):
        # A custom slash command's prompt, expanded for the model: what the user typed (the
        # command line) was a message to the agent, not a command of the tool.
        last = conv.user_turns[-1] if conv.user_turns else None
        if (
            last is not None
            and last.kind == sc.UserTurnKind.COMMAND
            and last.before == len(conv.responses)
            and _text(content)
        ):
            last.kind = sc.UserTurnKind.MESSAGE.value
        return
    said: list[str] = []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                continue
            if conv.prompt is None and not results:
                conv.prompt = text
            conv.user_stopped = text.startswith(_INTERRUPTED)
            conv.inputs.append(("user", text))
            said.append(text)
    if said:
        parent = d.get("parentUuid")
        rewound = False
        if isinstance(parent, str):
            seen = conv.typed_children.get(parent, 0)
            conv.typed_children[parent] = seen + 1
            rewound = seen > 0
        count = len(conv.user_turns)
        _user_turn(conv, said, ns)
        if rewound and len(conv.user_turns) > count:
            conv.user_turns[-1].rewound = True


_COMMAND_NAME = re.compile(r"<command-name>\s*(.*?)\s*</command-name>", re.S)
_COMMAND_ARGS = re.compile(r"<command-args>\s*(.*?)\s*</command-args>", re.S)
_BASH_INPUT = re.compile(r"<bash-input>\s*(.*?)\s*</bash-input>", re.S)
_NOT_THE_USERS = (
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<system-reminder>",
)


def _user_turn(conv: _Conversation, texts: list[str], ns: int | None) -> None:
    """What the user did in one record: an interrupt, a command, or a message."""
    before = len(conv.responses)
    if any(t.startswith(_INTERRUPTED) for t in texts):
        conv.user_turns.append(_UserTurn(before, ns, sc.UserTurnKind.INTERRUPT.value, None))
        return
    joined = "\n".join(texts)
    command = _COMMAND_NAME.search(joined)
    bash = _BASH_INPUT.search(joined)
    if command or bash:
        if command:
            args = _COMMAND_ARGS.search(joined)
            line = command.group(1) + (f" {args.group(1)}" if args and args.group(1) else "")
        else:
            assert bash is not None
            line = "!" + bash.group(1)
        conv.user_turns.append(_UserTurn(before, ns, sc.UserTurnKind.COMMAND.value, line))
        return
    own = [t for t in texts if not t.lstrip().startswith(_NOT_THE_USERS)]
    if own:
        text = "\n".join(own)
        conv.user_turns.append(_UserTurn(before, ns, sc.UserTurnKind.MESSAGE.value, text))


# ---------------------------------------------------------------------------------- session


@dataclass
class _Sidechain:
    recs: list[_Rec]
    agent_id: str | None
    prompt: str | None
    start_ns: int | None


@dataclass
class Session:
    """What a session file holds, split by agent (for tests and tools that want the parts)."""

    path: Path
    main: list[_Rec]
    session_id: str | None
    # Streamed subagent records (agent_progress), by the Task tool_use id they report to.
    progress: dict[str, list[_Rec]]
    sidechains: list[_Sidechain]
    compactions: int = 0
    # Times of the `compact_boundary` records: the next model call works from the summary.
    compaction_ns: list[int] = field(default_factory=list)
    # (time, trigger, tokens before) of each `compact_boundary`, in time order.
    compaction_meta: list[tuple[int, str | None, int | None]] = field(default_factory=list)


def _split(path: Path, records: list[tuple[int, dict[str, Any]]], report: Report) -> Session:
    where = str(path)
    seen: set[str] = set()
    main: list[_Rec] = []
    side: list[_Rec] = []
    progress: dict[str, list[_Rec]] = {}
    session_id: str | None = None
    compactions = 0
    compaction_ns: list[int] = []
    compaction_meta: list[tuple[int, str | None, int | None]] = []
    for number, d in records:
        kind = d.get("type")
        if session_id is None and isinstance(d.get("sessionId"), str):
            session_id = d["sessionId"]
        if kind == "progress":
            data = d.get("data")
            if not isinstance(data, dict) or data.get("type") != "agent_progress":
                continue
            inner = data.get("message")
            owner = d.get("parentToolUseID") or data.get("agentId")
            if not isinstance(inner, dict) or inner.get("type") not in ("user", "assistant"):
                continue
            if not isinstance(owner, str):
                report(ImportProblem(where, number, "subagent progress without a Task call id"))
                continue
            uuid = inner.get("uuid")
            if isinstance(uuid, str):
                if uuid in seen:
                    continue
                seen.add(uuid)
            if "agentId" not in inner and isinstance(data.get("agentId"), str):
                inner = {**inner, "agentId": data["agentId"]}
            progress.setdefault(owner, []).append(_Rec(where, number, inner))
            continue
        if kind == "system" and d.get("subtype") == "compact_boundary":
            compactions += 1
            ns = _ns(d.get("timestamp"))
            if ns is not None:
                compaction_ns.append(ns)
                meta = d.get("compactMetadata")
                meta = meta if isinstance(meta, dict) else {}
                trigger = meta.get("trigger")
                compaction_meta.append(
                    (
                        ns,
                        trigger if isinstance(trigger, str) and trigger else None,
                        _int(meta.get("preTokens")),
                    )
                )
        if kind not in ("user", "assistant"):
            continue
        uuid = d.get("uuid")
        if isinstance(uuid, str):
            if uuid in seen:
                continue
            seen.add(uuid)
        (side if d.get("isSidechain") is True else main).append(_Rec(where, number, d))
    if not any(r.data.get("type") in ("user", "assistant") for r in main):
        if not side and not progress:
            raise TrajectoryError(where, "no user or assistant messages")
        if side:  # a subagent file given on its own: its sidechain is the conversation
            main, side = side, []
    return Session(
        path,
        main,
        session_id,
        progress,
        _sidechains(side),
        compactions,
        sorted(compaction_ns),
        sorted(compaction_meta, key=lambda m: m[0]),
    )


def _sidechains(recs: list[_Rec]) -> list[_Sidechain]:
    """Sidechain records grouped per subagent: by agentId, else by the root of their uuid
    chain (each subagent conversation starts at a record with no sidechain parent)."""
    by_uuid = {r.data["uuid"]: r for r in recs if isinstance(r.data.get("uuid"), str)}
    groups: dict[str, list[_Rec]] = {}
    root_of: dict[str, str] = {}
    for rec in recs:
        agent = rec.data.get("agentId")
        if isinstance(agent, str):
            key = "agent:" + agent
        else:
            node, hops = rec, 0
            chain: list[str] = []
            while hops < len(recs):
                uuid = node.data.get("uuid")
                if isinstance(uuid, str):
                    if uuid in root_of:
                        break
                    chain.append(uuid)
                parent = node.data.get("parentUuid")
                if not isinstance(parent, str) or parent not in by_uuid:
                    break
                node, hops = by_uuid[parent], hops + 1
            uuid = node.data.get("uuid")
            root = root_of.get(uuid, uuid) if isinstance(uuid, str) else f"line {node.line}"
            for u in chain:
                root_of[u] = root
            key = "root:" + root
        groups.setdefault(key, []).append(rec)
    out: list[_Sidechain] = []
    for group in groups.values():
        conv = _conversation(group, lambda _p: None)
        out.append(_Sidechain(group, conv.agent_id, conv.prompt, conv.start_ns))
    return out


def scan(path: Path, report: Report | None = None) -> Session:
    """Read a session file into its parts (main records, subagent records, compactions)."""
    sink: Report = report if report is not None else (lambda _p: None)
    return _split(path, _load(path, sink), sink)


# ------------------------------------------------------------------------------------- spans


def _error_class(result: _Result) -> str:
    text = result.text or ""
    detail = result.detail if isinstance(result.detail, str) else ""
    if detail.startswith("User rejected") or "doesn't want to proceed" in text:
        return "user_rejected"
    if "Sibling tool call errored" in text:
        return "cancelled"
    if text.startswith(_INTERRUPTED) or text.startswith("Interrupted by user"):
        return "interrupted"
    return "tool_error"


def _regions(result: _Result) -> list[Region] | None:
    """The line ranges an edit changed, from its `structuredPatch` hunks (`newStart` and the
    hunk's `+`/`-` lines, context left out); a created file is all its lines."""
    detail = result.detail
    if not isinstance(detail, dict):
        return None
    path = detail.get("filePath")
    if not isinstance(path, str) or not path:
        return None
    hunks = detail.get("structuredPatch")
    out: list[Region] = []
    if isinstance(hunks, list):
        for hunk in hunks:
            if not isinstance(hunk, dict):
                continue
            line = _int(hunk.get("newStart"))
            lines = hunk.get("lines")
            if line is None or not isinstance(lines, list):
                continue
            if _int(hunk.get("newLines")) == 0:
                line += 1  # an empty range names the line before it
            start: int | None = None
            added = removed = 0
            for text in lines:
                if not isinstance(text, str):
                    continue
                if text.startswith("+"):
                    start = line if start is None else start
                    added += 1
                    line += 1
                elif text.startswith("-"):
                    start = line if start is None else start
                    removed += 1
                elif text.startswith("\\"):
                    continue
                else:
                    if start is not None:
                        out.append(Region(path, max(start, 1), added, removed))
                    start, added, removed = None, 0, 0
                    line += 1
            if start is not None:
                out.append(Region(path, max(start, 1), added, removed))
    if not out and detail.get("type") == "create" and isinstance(detail.get("content"), str):
        content = detail["content"]
        n = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        if n:
            out.append(Region(path, 1, n, 0))
    return out or None


def _agent_id(result: _Result | None) -> str | None:
    if result is None:
        return None
    if isinstance(result.detail, dict) and isinstance(result.detail.get("agentId"), str):
        return str(result.detail["agentId"])
    match = _AGENT_ID_TEXT.search(result.text or "")
    return match.group(1) if match else None


def _not_before(ns: int | None, than: int | None) -> bool:
    return ns is None or than is None or ns >= than


def _input_total(usage: dict[str, int]) -> int | None:
    parts = [
        usage.get(k)
        for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    ]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


class _Importer:
    def __init__(self, session: Session, report: Report, builder: TrajectoryBuilder) -> None:
        self.session = session
        self.report = report
        self.builder = builder
        folder = session.path.parent / source_name(session.path).removesuffix(".jsonl")
        folder = folder / "subagents"
        self.files: dict[str, Path] = {}
        if folder.is_dir():
            for file in sorted(folder.glob("agent-*.jsonl*")):
                name = source_name(file)
                if name.endswith(".jsonl"):
                    self.files[name.removeprefix("agent-").removesuffix(".jsonl")] = file
        self.loaded: dict[str, list[_Rec] | None] = {}
        self.used_files: set[str] = set()
        self.used_progress: set[str] = set()
        self.used_sidechains: set[int] = set()
        self.last_ns: int | None = None

    # -- one agent's conversation

    def emit(self, attempt: AttemptBuilder, conv: _Conversation, depth: int) -> None:
        # The main conversation's first model call after each compact_boundary works from the
        # compacted context (gen_ai.conversation.compacted).
        boundaries = list(self.session.compaction_meta) if depth == 0 else []
        user_turns = list(conv.user_turns) if depth == 0 else []
        for number, response in enumerate(conv.responses):
            while user_turns and user_turns[0].before <= number:
                self._user(attempt, user_turns.pop(0))
            usage = response.usage
            reasoning = "\n".join(response.thinking)
            when = response.request_ns if response.request_ns is not None else response.end_ns
            compacted = False
            while boundaries and when is not None and when >= boundaries[0][0]:
                at, trigger, before = boundaries.pop(0)
                attempt.compaction(at_ns=at, tokens_before=before, trigger=trigger)
                compacted = True
            turn = attempt.turn(
                count_text=depth == 0,
                compacted=compacted,
                start_ns=self.at(response.request_ns),
                end_ns=self.at(response.end_ns),
                model=response.model,
                provider=_PROVIDER,
                input_tokens=_input_total(usage),
                output_tokens=usage.get("output_tokens"),
                cache_read_tokens=usage.get("cache_read_input_tokens"),
                cache_write_tokens=usage.get("cache_creation_input_tokens"),
                cost_usd=response.cost,
                reasoning=reasoning,
                finish_reasons=[response.stop_reason] if response.stop_reason else None,
                inputs=response.inputs,
                text="\n\n".join(t for t in response.texts if t.strip()) or None,
            )
            for use in response.tools:
                result = conv.results.get(use.id) if use.id is not None else None
                span_id = self._tool(
                    attempt, turn, turn_end=response.end_ns, use=use, result=result
                )
                launches = use.name in _TASK_TOOLS or use.id in self.session.progress
                if launches and depth < _MAX_SUBAGENT_DEPTH:
                    self._subagent(attempt, span_id, use, result, depth)
        for rest in user_turns:
            self._user(attempt, rest)
        for at, trigger, before in boundaries:
            attempt.compaction(at_ns=at, tokens_before=before, trigger=trigger)

    def _user(self, attempt: AttemptBuilder, turn: _UserTurn) -> None:
        attempt.user_turn(turn.text, kind=turn.kind, at_ns=self.at(turn.ns), rewound=turn.rewound)

    def at(self, ns: int | None) -> int | None:
        """A real time where one is known: a record without a timestamp takes the last seen."""
        if ns is not None:
            self.last_ns = ns
            return ns
        return self.last_ns

    def _tool(
        self,
        attempt: AttemptBuilder,
        turn: TurnRef,
        *,
        turn_end: int | None,
        use: _ToolUse,
        result: _Result | None,
    ) -> str:
        args = use.input
        files = [v for k in _FILE_KEYS if isinstance(v := args.get(k), str) and v]
        raw_command = args.get("command")
        command = raw_command if use.name in _SHELL_TOOLS and isinstance(raw_command, str) else None
        exit_code: int | None = None
        error: str | None = None
        changed: list[str] | None = None
        if result is not None and result.is_error:
            match = _EXIT_CODE.match(result.text or "")
            if match and command is not None:
                exit_code = int(match.group(1))
            else:
                error = _error_class(result)
            if files:
                changed = []  # a failed edit changed nothing
        start = self.at(use.ns if use.ns is not None else turn_end)
        end = self.at(result.ns) if result is not None else start
        regions = _regions(result) if result is not None and not result.is_error else None
        return attempt.tool(
            use.name,
            regions=regions,
            turn=turn,
            arguments=args,
            command=command,
            call_id=use.id,
            files=files or None,
            changed_files=changed,
            result=result.text if result is not None else None,
            exit_code=exit_code,
            error=error,
            start_ns=start,
            end_ns=end,
        )

    # -- subagents

    def _subagent(
        self,
        parent: AttemptBuilder,
        tool_span: str,
        use: _ToolUse,
        result: _Result | None,
        depth: int,
    ) -> None:
        agent_id = _agent_id(result)
        recs: list[_Rec] | None = None
        streamed = False
        if agent_id is not None:
            recs = self._claim_file(agent_id)
        owner = use.id
        if recs is not None and owner is not None:
            # The subagent's own file is its transcript; the progress records the session
            # streamed for the same call are the same turns (imported once, not twice).
            self.used_progress.add(owner)
        if recs is None and owner in self.session.progress and owner not in self.used_progress:
            self.used_progress.add(owner)
            recs, streamed = self.session.progress[owner], True
        if recs is None and use.name in _TASK_TOOLS:
            recs = self._sidechain_for(agent_id, use) or self._file_by_prompt(use)
        if recs is None:
            return
        conv = _conversation(recs, self.report)
        if streamed and result is not None and isinstance(result.detail, dict):
            self._final_response(conv, result)
        name = use.input.get("subagent_type")
        self._nested(
            parent,
            tool_span,
            conv,
            agent_name=name if isinstance(name, str) and name else _AGENT,
            agent_id=agent_id or conv.agent_id,
            result=result,
            start_ns=conv.start_ns if conv.start_ns is not None else use.ns,
            depth=depth,
        )

    def _nested(
        self,
        parent: AttemptBuilder,
        tool_span: str | None,
        conv: _Conversation,
        *,
        agent_name: str,
        agent_id: str | None,
        result: _Result | None,
        start_ns: int | None,
        depth: int,
    ) -> None:
        model = next((r.model for r in conv.responses if r.model), None)
        sub = self.builder.attempt(
            agent_type=_AGENT,
            agent_name=agent_name,
            model_id=model,
            provider=_PROVIDER,
            conversation_id=agent_id or conv.session_id,
            start_ns=self.at(start_ns),
            parent=parent,
            parent_span_id=tool_span,
        )
        self.emit(sub, conv, depth + 1)
        exit_reason: str | None = None
        if result is not None:
            status = result.detail.get("status") if isinstance(result.detail, dict) else None
            if result.is_error:
                exit_reason = (
                    sc.AttemptExitReason.USER_STOPPED.value
                    if (result.text or "").startswith(_INTERRUPTED)
                    else sc.AttemptExitReason.ERROR.value
                )
            elif status == "completed":
                exit_reason = sc.AttemptExitReason.SUBMITTED.value
        elif conv.user_stopped:
            exit_reason = sc.AttemptExitReason.USER_STOPPED.value
        end = result.ns if result is not None and result.ns is not None else conv.end_ns
        sub.end(exit_reason=exit_reason, end_ns=self.at(end))

    def _final_response(self, conv: _Conversation, result: _Result) -> None:
        """Streamed progress stops before the subagent's final answer; the Task result carries
        that call's usage. Added when the last streamed response still asked for tools."""
        usage = result.detail.get("usage") if isinstance(result.detail, dict) else None
        if not isinstance(usage, dict) or (conv.responses and not conv.responses[-1].tools):
            return
        final = _Response(
            (),
            conv.end_ns,
            result.ns,
            model=next((r.model for r in reversed(conv.responses) if r.model), None),
        )
        for name in _USAGE_KEYS:
            value = _int(usage.get(name))
            if value is not None:
                final.usage[name] = value
        conv.responses.append(final)

    def _file_records(self, agent_id: str) -> list[_Rec] | None:
        """The records of a subagent's own file (loaded once), or None when it has none."""
        if agent_id not in self.loaded:
            file = self.files.get(agent_id)
            if file is None:
                sibling = self.session.path.parent / f"agent-{agent_id}.jsonl"
                packed = sibling.with_name(sibling.name + ".gz")
                file = sibling if sibling.is_file() else packed if packed.is_file() else None
            self.loaded[agent_id] = self._records_of(file) if file is not None else None
        return self.loaded[agent_id]

    def _claim_file(self, agent_id: str) -> list[_Rec] | None:
        if agent_id in self.used_files:
            return None
        recs = self._file_records(agent_id)
        if recs is not None:
            self.used_files.add(agent_id)
        return recs

    def _file_by_prompt(self, use: _ToolUse) -> list[_Rec] | None:
        """A Task call without an agent id (its result is missing): the unclaimed subagent file
        whose first prompt is the call's prompt."""
        prompt = use.input.get("prompt")
        if not isinstance(prompt, str):
            return None
        for agent_id in self.files:
            if agent_id in self.used_files:
                continue
            recs = self._file_records(agent_id)
            if recs and _conversation(recs, lambda _p: None).prompt == prompt:
                return self._claim_file(agent_id)
        return None

    def _records_of(self, file: Path) -> list[_Rec] | None:
        try:
            records = _load(file, self.report)
        except TrajectoryError as exc:
            self.report(exc.problem)
            return None
        return [_Rec(str(file), n, d) for n, d in records if d.get("type") in ("user", "assistant")]

    def _sidechain_for(self, agent_id: str | None, use: _ToolUse) -> list[_Rec] | None:
        chains = self.session.sidechains
        free = [i for i in range(len(chains)) if i not in self.used_sidechains]
        prompt = use.input.get("prompt")
        pick = next((i for i in free if agent_id and chains[i].agent_id == agent_id), None)
        if pick is None and isinstance(prompt, str):
            pick = next((i for i in free if chains[i].prompt == prompt), None)
        if pick is None:  # the next sidechain without an agent id that started after the call
            pick = next(
                (
                    i
                    for i in free
                    if chains[i].agent_id is None and _not_before(chains[i].start_ns, use.ns)
                ),
                None,
            )
        if pick is None:
            return None
        self.used_sidechains.add(pick)
        return chains[pick].recs

    def leftovers(self, main: AttemptBuilder) -> None:
        """Subagent transcripts no Task call claimed, nested under the main attempt (no tool
        parent), in the order they started."""
        pending: list[_Conversation] = []
        streamed = {
            r.data.get("agentId")
            for owner in self.used_progress
            for r in self.session.progress.get(owner, ())
        }
        for agent_id in self.files:
            if agent_id in streamed and agent_id not in self.used_files:
                continue  # already imported from the records the session streamed
            recs = self._claim_file(agent_id)
            if recs:
                pending.append(_conversation(recs, self.report))
        for owner, recs in self.session.progress.items():
            if owner not in self.used_progress:
                self.used_progress.add(owner)
                agent_ids = {r.data.get("agentId") for r in recs}
                if agent_ids & self.used_files:
                    continue  # streamed copy of a subagent already read from its own file
                pending.append(_conversation(recs, self.report))
        for i, chain in enumerate(self.session.sidechains):
            if chain.agent_id is not None and chain.agent_id in self.used_files:
                continue
            if i not in self.used_sidechains:
                self.used_sidechains.add(i)
                pending.append(_conversation(chain.recs, self.report))
        pending.sort(key=lambda c: c.start_ns or 0)
        for conv in pending:
            if conv.responses:
                self._nested(
                    main,
                    None,
                    conv,
                    agent_name=_AGENT,
                    agent_id=conv.agent_id,
                    result=None,
                    start_ns=conv.start_ns,
                    depth=1,
                )


def read(path: Path, report: Report) -> Iterator[list[Span]]:
    """One trajectory per session file (subagents nested inside it)."""
    try:
        spans = _spans(scan(path, report), report)
    except TrajectoryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise TrajectoryError(str(path), f"unexpected record shape: {exc!r}") from exc
    yield spans


def _spans(session: Session, report: Report) -> list[Span]:
    conv = _conversation(session.main, report)
    fallback_id = source_name(session.path).removesuffix(".jsonl")
    task_id = session.session_id or conv.session_id or fallback_id
    builder = TrajectoryBuilder(
        source_format=NAME,
        source_path=str(session.path),
        task_id=task_id,
        start_ns=conv.start_ns,
    )
    importer = _Importer(session, report, builder)
    main = builder.attempt(
        agent_type=_AGENT,
        agent_name=_AGENT,
        model_id=next((r.model for r in conv.responses if r.model), None),
        provider=_PROVIDER,
        conversation_id=session.session_id or conv.session_id,
        start_ns=importer.at(conv.start_ns),
        working_directory=conv.cwd,
    )
    importer.emit(main, conv, 0)
    importer.leftovers(main)
    exit_reason: str | None = None
    if conv.user_stopped:
        exit_reason = sc.AttemptExitReason.USER_STOPPED.value
    elif conv.api_error:
        exit_reason = sc.AttemptExitReason.ERROR.value
    main.end(exit_reason=exit_reason, end_ns=importer.at(conv.end_ns))
    return builder.finish(end_ns=conv.end_ns)
