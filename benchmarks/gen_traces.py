"""Generate a deterministic OTLP/JSON lines file shaped like real agentsignals traces.

The spans follow ``docs/semconv.md`` and what ``src/agentsignals/_instrument/spans.py`` emits:

* a **trial** span (``trial {task.id}``: ``agent_signals.span.type=trial``, ``trial.id``,
  ``task.id``, ``treatment.dataset``, ``trial.attempt_count``) holding 1-3
* **attempt** spans (``invoke_agent swe-agent``: ``gen_ai.operation.name=invoke_agent``,
  treatment variables, identity, ``agent_signals.attempt.exit_reason``, the workspace diff
  arrays), each holding ~10
* **turn** spans (``turn {i}``: no ``gen_ai.operation.name``, phase, reasoning measurements,
  cost). Under each turn, one **model-call** span from another instrumentor
  (``chat {model}``, kind CLIENT, its own instrumentation scope, ``gen_ai.operation.name=chat``
  and the ``gen_ai.usage.*`` tokens, identity stamped on by our pipeline processor), then ~4
* **tool** spans (``execute_tool {name}``: category, call id, call fingerprint, identity with
  the requesting turn's index, stated files, output size, exit code for processes, measured
  ``changed_files`` / edit mode / lines). Most tools run inside the turn block (children of the
  turn); some run after it (children of the attempt). Some fingerprints repeat (re-reading a
  file) and ~15% of attempts contain a stuck loop (the same call 3-6 times in a row).

That is ~60 spans per attempt and ~100 per trial. Spans are written the way the SDK's
BatchSpanProcessor plus a file exporter write them: in end-time order, one
``ExportTraceServiceRequest`` per line, ~500 spans per line, spans grouped per line by
instrumentation scope, several worker processes (resources) interleaved. Ids, timestamps and
choices come from one seeded RNG, so the output is byte-for-byte deterministic.

    python benchmarks/gen_traces.py --spans 100000 --out /tmp/traces.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_URL = "https://agentsignals.dev/schemas/0.1.0"
OUR_SCOPE = {"name": "agentsignals", "version": "0.1.0"}
# Model calls come from another instrumentor (its own scope); our processor stamps identity.
LLM_SCOPE = {"name": "opentelemetry.instrumentation.openai_v2", "version": "2.1b0"}
SCOPES = {"ours": (OUR_SCOPE, SCHEMA_URL), "llm": (LLM_SCOPE, "")}

MODELS = (
    ("anthropic", "claude-sonnet-4-5", "api.anthropic.com"),
    ("openai", "gpt-5", "api.openai.com"),
    ("openai", "qwen3-coder-480b", "inference.internal"),
)
TOOLS: dict[str, tuple[str, ...]] = {
    "read": ("read_file", "view", "cat"),
    "search": ("grep", "find", "code_search"),
    "edit": ("str_replace_editor", "create_file", "apply_patch"),
    "shell": ("bash",),
    "test": ("pytest", "run_tests"),
    "submit": ("submit",),
    "other": ("think", "web_fetch"),
}
CATEGORY_WEIGHTS = (("read", 30), ("search", 20), ("edit", 20), ("shell", 15), ("test", 10))
PHASES = ("explore", "localize", "implement", "verify")
EXIT_REASONS = (
    ("submitted", 60),
    ("max_turns", 15),
    ("cost_limit", 8),
    ("context_overflow", 5),
    ("timeout", 7),
    ("error", 5),
)
REPOS = ("django", "sympy", "astropy", "requests", "flask", "pytest", "sphinx", "xarray")
DIRS = ("src/pkg", "src/pkg/core", "tests", "docs", "src/pkg/io")
SPANS_PER_TRIAL = 100  # rough average, for sizing


def _str(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _int(key: str, value: int) -> dict[str, Any]:
    # OTLP/JSON encodes int64 as a decimal string.
    return {"key": key, "value": {"intValue": str(value)}}


def _double(key: str, value: float) -> dict[str, Any]:
    return {"key": key, "value": {"doubleValue": value}}


def _bool(key: str, value: bool) -> dict[str, Any]:
    return {"key": key, "value": {"boolValue": value}}


def _str_array(key: str, values: list[str]) -> dict[str, Any]:
    # Our encoder writes an empty list as an empty arrayValue (no "values").
    if not values:
        return {"key": key, "value": {"arrayValue": {}}}
    return {
        "key": key,
        "value": {"arrayValue": {"values": [{"stringValue": v} for v in values]}},
    }


def _int_array(key: str, values: list[int]) -> dict[str, Any]:
    if not values:
        return {"key": key, "value": {"arrayValue": {}}}
    return {
        "key": key,
        "value": {"arrayValue": {"values": [{"intValue": str(v)} for v in values]}},
    }


# A span tagged with the scope that emitted it: "ours" (agentsignals) or "llm".
Tagged = tuple[str, dict[str, Any]]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
        self.task_no = 0

    def hex_id(self, nbytes: int) -> str:
        return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def span(
        self,
        trace_id: str,
        parent: str | None,
        name: str,
        start: int,
        end: int,
        attrs: list[dict[str, Any]],
        *,
        kind: int = 1,
        error: str | None = None,
        events: list[dict[str, Any]] | None = None,
        span_id: str | None = None,
    ) -> dict[str, Any]:
        span: dict[str, Any] = {
            "traceId": trace_id,
            "spanId": span_id or self.hex_id(8),
            "parentSpanId": parent or "",
            "flags": 256,  # the SDK's "has is_remote" flag, as our exporter writes it
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": attrs,
            "status": {"code": 2, "message": error} if error else {},
        }
        if events:
            span["events"] = events
        return span

    # ------------------------------------------------------------------------------ trial
    def trial(self) -> list[Tagged]:
        """All spans of one trial, in end-time order, tagged with their scope."""
        rng = self.rng
        out: list[Tagged] = []
        trace_id = self.hex_id(16)
        trial_id = self.hex_id(16)  # uuid4().hex-sized, like TrialHandle
        self.task_no += 1
        repo = rng.choice(REPOS)
        task_id = f"{repo}__{repo}-{10_000 + self.task_no}"
        dataset = "swe-bench-verified@1.0"
        provider, model, server = rng.choice(MODELS)
        trial_span_id = self.hex_id(8)
        trial_start = self.clock
        t = trial_start + 1_000_000
        n_attempts = rng.choices((1, 2, 3), (50, 35, 15))[0]
        for attempt_index in range(n_attempts):
            t = self._attempt(
                out,
                t,
                trace_id=trace_id,
                trial_span_id=trial_span_id,
                trial_id=trial_id,
                task_id=task_id,
                dataset=dataset,
                attempt_index=attempt_index,
                provider=provider,
                model=model,
                server=server,
            )
        t += 1_000_000
        trial_attrs = [
            _str("agent_signals.span.type", "trial"),
            _str("agent_signals.trial.id", trial_id),
            _str("agent_signals.task.id", task_id),
            _str("agent_signals.treatment.dataset", dataset),
            _int("agent_signals.trial.attempt_count", n_attempts),
        ]
        out.append(
            (
                "ours",
                self.span(
                    trace_id,
                    None,
                    f"trial {task_id}",
                    trial_start,
                    t,
                    trial_attrs,
                    span_id=trial_span_id,
                ),
            )
        )
        self.clock = t + rng.randint(1_000_000_000, 5_000_000_000)
        return out

    def _attempt(
        self,
        out: list[Tagged],
        t: int,
        *,
        trace_id: str,
        trial_span_id: str,
        trial_id: str,
        task_id: str,
        dataset: str,
        attempt_index: int,
        provider: str,
        model: str,
        server: str,
    ) -> int:
        rng = self.rng
        attempt_id = self.hex_id(16)
        attempt_span_id = self.hex_id(8)
        attempt_start = t
        identity = [
            _str("agent_signals.trial.id", trial_id),
            _str("agent_signals.attempt.id", attempt_id),
            _int("agent_signals.attempt.index", attempt_index),
        ]
        fingerprints: list[str] = []  # earlier calls of this attempt, for repeats
        touched: dict[str, list[int]] = {}  # path -> [added, removed]
        n_turns = rng.randint(7, 13)
        loop_turn = rng.randrange(n_turns) if rng.random() < 0.15 else -1
        input_tokens = rng.randint(2_000, 6_000)
        for turn_index in range(n_turns):
            turn_span_id = self.hex_id(8)
            turn_start = t
            turn_identity = [*identity, _int("agent_signals.turn.index", turn_index)]
            # The model call: another instrumentor's span under the turn, with the usage.
            cached = int(input_tokens * rng.uniform(0.6, 0.95)) if turn_index else 0
            output_tokens = rng.randint(20, 4_000)
            chat_end = t + rng.randint(500_000_000, 20_000_000_000)
            chat_attrs = [
                _str("gen_ai.operation.name", "chat"),
                _str("gen_ai.provider.name", provider),
                _str("gen_ai.request.model", model),
                _str("gen_ai.response.model", f"{model}-20250929"),
                _str("gen_ai.response.id", f"msg_{self.hex_id(12)}"),
                _str_array("gen_ai.response.finish_reasons", ["tool_calls"]),
                _int("gen_ai.usage.input_tokens", input_tokens),
                _int("gen_ai.usage.output_tokens", output_tokens),
                _int("gen_ai.usage.cache_read.input_tokens", cached),
                _str("server.address", server),
                _int("server.port", 443),
                *turn_identity,
            ]
            out.append(
                (
                    "llm",
                    self.span(
                        trace_id, turn_span_id, f"chat {model}", t, chat_end, chat_attrs, kind=3
                    ),
                )
            )
            t = chat_end
            input_tokens += output_tokens + rng.randint(500, 6_000)
            # Most harnesses run the tools inside the turn block; some after it.
            tools_inside = rng.random() < 0.75
            tool_parent = turn_span_id if tools_inside else attempt_span_id
            pending_tools: list[Tagged] = []
            if turn_index == loop_turn:
                calls = self._loop_calls(rng.randint(3, 6))
            else:
                calls = [self._pick_call(fingerprints) for _ in range(rng.randint(2, 6))]
            if turn_index == n_turns - 1 and rng.random() < 0.7:
                calls.append(("submit", "submit", [], self._fingerprint("submit", [], 0)))
            if tools_inside:
                tool_start = t
            else:
                turn_end = t + rng.randint(1_000_000, 20_000_000)
                tool_start = turn_end + rng.randint(1_000_000, 20_000_000)
            for category, tool, files, fingerprint in calls:
                fingerprints.append(fingerprint)
                tool_start, span = self._tool(
                    trace_id,
                    tool_parent,
                    tool_start,
                    category,
                    tool,
                    files,
                    fingerprint,
                    turn_identity,
                    touched,
                )
                pending_tools.append(("ours", span))
            if tools_inside:
                turn_end = tool_start + rng.randint(1_000_000, 50_000_000)
            chars = rng.randint(0, 4_000) if rng.random() < 0.8 else 0
            turn_attrs = [
                _str("agent_signals.span.type", "turn"),
                _str("gen_ai.request.model", model),
                _str("gen_ai.provider.name", provider),
                _str("agent_signals.turn.phase", PHASES[min(3, 4 * turn_index // n_turns)]),
                *turn_identity,
                _bool("agent_signals.turn.reasoning.present", chars > 0),
                _int("agent_signals.turn.reasoning.chars", chars),
                _int("agent_signals.turn.reasoning.plan_steps", rng.randint(0, 6) if chars else 0),
                _int("agent_signals.turn.reasoning.self_corrections", rng.randint(0, 3)),
                _double(
                    "agent_signals.usage.cost_usd",
                    round(
                        (input_tokens - cached) * 3e-6 + cached * 3e-7 + output_tokens * 1.5e-5, 6
                    ),
                ),
            ]
            turn_span = self.span(
                trace_id,
                attempt_span_id,
                f"turn {turn_index}",
                turn_start,
                turn_end,
                turn_attrs,
                span_id=turn_span_id,
            )
            if tools_inside:
                out.extend(pending_tools)
                out.append(("ours", turn_span))
            else:
                out.append(("ours", turn_span))
                out.extend(pending_tools)
            t = max(turn_end, tool_start)
        t += rng.randint(1_000_000, 100_000_000)
        exit_reason = rng.choices([r for r, _ in EXIT_REASONS], [w for _, w in EXIT_REASONS])[0]
        paths = sorted(touched)
        attempt_attrs = [
            _str("gen_ai.operation.name", "invoke_agent"),
            _str("agent_signals.span.type", "attempt"),
            _str("gen_ai.agent.name", "swe-agent"),
            _str("gen_ai.provider.name", provider),
            _str("gen_ai.request.model", model),
            _str("agent_signals.treatment.agent_type", "swe-agent"),
            _str("agent_signals.treatment.model_id", model),
            _str("agent_signals.treatment.dataset", dataset),
            _int("agent_signals.treatment.attempt1_tool_cap", 60),
            _int("agent_signals.treatment.retry_tool_cap", 30),
            _int("agent_signals.treatment.concurrency", 8),
            _double("agent_signals.treatment.timeout_s", 1800.0),
            *identity,
            _str("agent_signals.task.id", task_id),
        ]
        if attempt_index:
            attempt_attrs.append(_str("agent_signals.attempt.recovery_mode", "fresh_workspace"))
        attempt_attrs.append(_str("agent_signals.attempt.exit_reason", exit_reason))
        error = None
        events = None
        if exit_reason == "timeout":
            attempt_attrs.append(_bool("agent_signals.attempt.timed_out", True))
        if exit_reason == "error":
            attempt_attrs.append(_str("error.type", "RuntimeError"))
            error = "RuntimeError: agent crashed"
            events = [
                {
                    "timeUnixNano": str(t - 1_000),
                    "name": "exception",
                    "attributes": [
                        _str("exception.type", "RuntimeError"),
                        _str("exception.message", "agent crashed"),
                        _bool("exception.escaped", True),
                    ],
                }
            ]
        attempt_attrs += [
            _str_array("agent_signals.attempt.touched_files", paths),
            _int_array(
                "agent_signals.attempt.touched_files.lines_added", [touched[p][0] for p in paths]
            ),
            _int_array(
                "agent_signals.attempt.touched_files.lines_removed", [touched[p][1] for p in paths]
            ),
        ]
        out.append(
            (
                "ours",
                self.span(
                    trace_id,
                    trial_span_id,
                    "invoke_agent swe-agent",
                    attempt_start,
                    t,
                    attempt_attrs,
                    error=error,
                    events=events,
                    span_id=attempt_span_id,
                ),
            )
        )
        return t

    # ------------------------------------------------------------------------------ tools
    @staticmethod
    def _fingerprint(tool: str, files: list[str], salt: int) -> str:
        # Stands in for capture.fingerprint: a short hash of the name and canonical arguments.
        payload = json.dumps([tool, files, salt]).encode()
        return hashlib.blake2b(payload, digest_size=8).hexdigest()

    def _new_call(self) -> tuple[str, str, list[str], str]:
        rng = self.rng
        category = rng.choices([c for c, _ in CATEGORY_WEIGHTS], [w for _, w in CATEGORY_WEIGHTS])[
            0
        ]
        if rng.random() < 0.02:
            category = "other"
        tool = rng.choice(TOOLS[category])
        n_files = rng.randint(1, 2) if category in ("read", "edit") else rng.randint(0, 2)
        files = [f"{rng.choice(DIRS)}/mod_{rng.randint(0, 200)}.py" for _ in range(n_files)]
        return category, tool, files, self._fingerprint(tool, files, rng.randint(0, 1_000_000))

    def _pick_call(self, earlier: list[str]) -> tuple[str, str, list[str], str]:
        call = self._new_call()
        if earlier and self.rng.random() < 0.1:
            # The same call again (re-reading a file, re-running a command).
            return call[0], call[1], call[2], self.rng.choice(earlier)
        return call

    def _loop_calls(self, n: int) -> list[tuple[str, str, list[str], str]]:
        call = self._new_call()
        return [call] * n

    def _tool(
        self,
        trace_id: str,
        parent: str,
        start: int,
        category: str,
        tool: str,
        files: list[str],
        fingerprint: str,
        identity: list[dict[str, Any]],
        touched: dict[str, list[int]],
    ) -> tuple[int, dict[str, Any]]:
        rng = self.rng
        end = start + rng.randint(5_000_000, 30_000_000_000)
        attrs = [
            _str("gen_ai.operation.name", "execute_tool"),
            _str("gen_ai.tool.name", tool),
            _str("agent_signals.span.type", "tool"),
            _str("agent_signals.tool.category", category),
            _str("gen_ai.tool.call.id", f"toolu_{self.hex_id(12)}"),
            _str("agent_signals.tool.call.fingerprint", fingerprint),
            *identity,
        ]
        if files:
            attrs.append(_str_array("agent_signals.tool.files", files))
        attrs.append(_int("agent_signals.tool.output.bytes", rng.randint(0, 40_000)))
        error = None
        events = None
        if category in ("shell", "test"):
            exit_code = 0 if rng.random() < 0.8 else rng.choice((1, 2, 127))
            attrs.append(_int("process.exit.code", exit_code))
            if exit_code:
                attrs.append(_str("error.type", f"exit_code_{exit_code}"))
                error = "non-zero exit code"
        elif rng.random() < 0.01:
            # A tool that raised: exception event, ERROR status, and a timeout flag.
            attrs.append(_str("error.type", "TimeoutError"))
            attrs.append(_bool("agent_signals.tool.timed_out", True))
            error = "TimeoutError: tool call timed out"
            events = [
                {
                    "timeUnixNano": str(end - 1_000),
                    "name": "exception",
                    "attributes": [
                        _str("exception.type", "TimeoutError"),
                        _str("exception.message", "tool call timed out"),
                        _bool("exception.escaped", True),
                    ],
                }
            ]
        # The workspace is tracked: every call records what it changed (usually nothing).
        changed: list[str] = []
        mode = None
        if category == "edit" and error is None:
            changed = files or [f"{rng.choice(DIRS)}/mod_{rng.randint(0, 200)}.py"]
            mode = "direct"
        elif category == "shell" and error is None and rng.random() < 0.1:
            changed = [f"{rng.choice(DIRS)}/mod_{rng.randint(0, 200)}.py"]  # sed -i, heredoc
            mode = "shell_mediated"
        attrs.append(_str_array("agent_signals.tool.changed_files", changed))
        if mode is not None:
            added, removed = rng.randint(1, 40), rng.randint(0, 20)
            attrs += [
                _str("agent_signals.tool.edit_mode", mode),
                _int("agent_signals.tool.lines_added", added),
                _int("agent_signals.tool.lines_removed", removed),
            ]
            for path in changed:
                lines = touched.setdefault(path, [0, 0])
                lines[0] += added
                lines[1] += removed
        span = self.span(
            trace_id, parent, f"execute_tool {tool}", start, end, attrs, error=error, events=events
        )
        return end, span


def resource_attributes(worker: int) -> list[dict[str, Any]]:
    """The resource of one worker process, as configure() sets it."""
    return [
        _str("telemetry.sdk.language", "python"),
        _str("telemetry.sdk.name", "opentelemetry"),
        _str("telemetry.sdk.version", "1.38.0"),
        _str("service.instance.id", f"worker-{worker}"),
        _str("service.name", "agent-runner"),
    ]


def request(resource: list[dict[str, Any]], spans: list[Tagged]) -> dict[str, Any]:
    """One ExportTraceServiceRequest: spans grouped by scope in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for scope, span in spans:
        groups.setdefault(scope, []).append(span)
    scope_spans = []
    for scope, members in groups.items():
        info, schema_url = SCOPES[scope]
        entry: dict[str, Any] = {"scope": info, "spans": members}
        if schema_url:
            entry["schemaUrl"] = schema_url
        scope_spans.append(entry)
    return {"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": scope_spans}]}


def generate_lines(
    total_spans: int, spans_per_line: int = 500, workers: int = 4, seed: int = 7
) -> Iterator[str]:
    """Yield JSON lines (without newline) holding at least ``total_spans`` spans."""
    gen = _Gen(seed)
    resources = [resource_attributes(w) for w in range(workers)]
    pending: list[list[Tagged]] = [[] for _ in range(workers)]
    produced = 0
    w = 0
    while produced < total_spans:
        spans = gen.trial()
        produced += len(spans)
        pending[w].extend(spans)
        while len(pending[w]) >= spans_per_line:
            chunk, pending[w] = pending[w][:spans_per_line], pending[w][spans_per_line:]
            yield json.dumps(request(resources[w], chunk), separators=(",", ":"))
        w = (w + 1) % workers
    for i, rest in enumerate(pending):
        if rest:
            yield json.dumps(request(resources[i], rest), separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--spans", type=int, default=100_000, help="minimum number of spans")
    ap.add_argument("--spans-per-line", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4, help="resources (processes) interleaved")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True, help="output .jsonl (or .jsonl.gz)")
    args = ap.parse_args(argv)
    n_lines = 0
    if args.out.suffix == ".gz":
        # mtime=0: the compressed file is deterministic too.
        f: Any = io.TextIOWrapper(gzip.GzipFile(args.out, "wb", mtime=0), encoding="utf-8")
    else:
        f = open(args.out, "w", encoding="utf-8")  # noqa: SIM115 -- closed by the with below
    with f:
        for line in generate_lines(args.spans, args.spans_per_line, args.workers, args.seed):
            f.write(line)
            f.write("\n")
            n_lines += 1
    print(f"wrote {n_lines} lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
