"""Generate a deterministic OTLP/JSON lines file shaped like real coding-agent traces.

Each trial is ``trial › 2 attempts › ~10 turns › (1 chat span + ~4 tool spans)``, about 120
spans, with ~10 attributes per span. Spans are written the way a BatchSpanProcessor plus a file
exporter write them: in end-time order, one ``ExportTraceServiceRequest`` per line, ~500 spans
per line, several worker processes (resources) interleaved.

    python benchmarks/gen_traces.py --spans 100000 --out /tmp/traces.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MODELS = ("claude-sonnet-4-5", "gpt-5", "qwen3-coder-480b")
TOOLS: dict[str, tuple[str, ...]] = {
    "read": ("read_file", "view", "cat"),
    "search": ("grep", "find", "code_search"),
    "edit": ("str_replace", "create_file", "apply_patch"),
    "shell": ("bash",),
    "test": ("pytest", "run_tests"),
    "submit": ("submit",),
    "other": ("think", "web_fetch"),
}
CATEGORY_WEIGHTS = (("read", 30), ("search", 20), ("edit", 20), ("shell", 15), ("test", 10))
DIRS = ("src/pkg", "src/pkg/core", "tests", "docs", "src/pkg/io")


def _str(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _int(key: str, value: int) -> dict[str, Any]:
    # OTLP/JSON encodes int64 as a decimal string.
    return {"key": key, "value": {"intValue": str(value)}}


def _str_array(key: str, values: list[str]) -> dict[str, Any]:
    return {
        "key": key,
        "value": {"arrayValue": {"values": [{"stringValue": v} for v in values]}},
    }


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

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

    def trial(self) -> list[dict[str, Any]]:
        """All spans of one trial, in end-time order."""
        rng = self.rng
        out: list[dict[str, Any]] = []
        trace_id = self.hex_id(16)
        trial_id = f"trial-{self.hex_id(4)}"
        model = rng.choice(MODELS)
        trial_span_id = self.hex_id(8)
        trial_start = self.clock
        t = trial_start + 1_000_000
        for attempt_index in range(2):
            attempt_id = f"{trial_id}-a{attempt_index}"
            attempt_span_id = self.hex_id(8)
            attempt_start = t
            common = [
                _str("agent_signals.trial.id", trial_id),
                _str("agent_signals.attempt.id", attempt_id),
                _int("agent_signals.attempt.index", attempt_index),
            ]
            for turn_index in range(rng.randint(8, 12)):
                turn_span_id = self.hex_id(8)
                turn_start = t
                turn_common = [*common, _int("agent_signals.turn.index", turn_index)]
                chat_end = t + rng.randint(500_000_000, 20_000_000_000)
                chat_span = self.span(
                    trace_id,
                    turn_span_id,
                    f"chat {model}",
                    t,
                    chat_end,
                    [
                        _str("gen_ai.operation.name", "chat"),
                        _str("gen_ai.request.model", model),
                        *turn_common,
                        _int("gen_ai.usage.input_tokens", rng.randint(2_000, 120_000)),
                        _int("gen_ai.usage.output_tokens", rng.randint(20, 4_000)),
                        _str("gen_ai.provider.name", "anthropic"),
                    ],
                    kind=3,
                )
                out.append(chat_span)
                t = chat_end
                for _ in range(rng.randint(2, 6)):
                    category = rng.choices(
                        [c for c, _ in CATEGORY_WEIGHTS], [w for _, w in CATEGORY_WEIGHTS]
                    )[0]
                    if rng.random() < 0.02:
                        category = "other"
                    tool = rng.choice(TOOLS[category])
                    files = [
                        f"{rng.choice(DIRS)}/mod_{rng.randint(0, 200)}.py"
                        for _ in range(rng.randint(0, 3))
                    ]
                    exit_code = 0 if rng.random() < 0.8 else rng.choice((1, 2, 127))
                    tool_end = t + rng.randint(5_000_000, 30_000_000_000)
                    error = None
                    events = None
                    if category in ("shell", "test") and exit_code != 0:
                        error = f"exit code {exit_code}"
                        events = [
                            {
                                "timeUnixNano": str(tool_end - 1_000),
                                "name": "exception",
                                "attributes": [
                                    _str("exception.type", "CommandFailed"),
                                    _str("exception.message", f"{tool} exited {exit_code}"),
                                ],
                            }
                        ]
                    out.append(
                        self.span(
                            trace_id,
                            turn_span_id,
                            f"execute_tool {tool}",
                            t,
                            tool_end,
                            [
                                _str("gen_ai.operation.name", "execute_tool"),
                                _str("gen_ai.tool.name", tool),
                                _str("agent_signals.tool.category", category),
                                *turn_common,
                                _int("process.exit.code", exit_code),
                                _str_array("agent_signals.tool.files", files),
                                _str("gen_ai.tool.call.id", f"call_{self.hex_id(6)}"),
                            ],
                            error=error,
                            events=events,
                        )
                    )
                    t = tool_end
                t += rng.randint(1_000_000, 50_000_000)
                out.append(
                    self.span(
                        trace_id,
                        attempt_span_id,
                        f"turn {turn_index}",
                        turn_start,
                        t,
                        [
                            _str("gen_ai.operation.name", "chat"),
                            _str("agent_signals.span.type", "turn"),
                            *turn_common,
                            _str("gen_ai.request.model", model),
                        ],
                        span_id=turn_span_id,
                    )
                )
            t += rng.randint(1_000_000, 100_000_000)
            attempt = self.span(
                trace_id,
                trial_span_id,
                f"invoke_agent attempt {attempt_index}",
                attempt_start,
                t,
                [
                    _str("gen_ai.operation.name", "invoke_agent"),
                    _str("agent_signals.span.type", "attempt"),
                    *common,
                    _str("gen_ai.request.model", model),
                    _str("agent_signals.attempt.stop_reason", rng.choice(("submitted", "limit"))),
                ],
                span_id=attempt_span_id,
            )
            out.append(attempt)
        t += 1_000_000
        trial = self.span(
            trace_id,
            None,
            "invoke_agent trial",
            trial_start,
            t,
            [
                _str("gen_ai.operation.name", "invoke_agent"),
                _str("agent_signals.span.type", "trial"),
                _str("agent_signals.trial.id", trial_id),
                _str("gen_ai.request.model", model),
                _str("gen_ai.agent.name", "swe-agent"),
                _int("agent_signals.trial.attempts", 2),
            ],
            kind=2,
            span_id=trial_span_id,
        )
        out.append(trial)
        self.clock = t + rng.randint(1_000_000_000, 5_000_000_000)
        return out


def _request(resource: list[dict[str, Any]], spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource},
                "scopeSpans": [
                    {"scope": {"name": "agentsignals", "version": "0.1.0"}, "spans": spans}
                ],
                "schemaUrl": "https://agentsignals.dev/schemas/0.1.0",
            }
        ]
    }


def generate_lines(
    total_spans: int, spans_per_line: int = 500, workers: int = 4, seed: int = 7
) -> Iterator[str]:
    """Yield JSON lines (without newline) holding at least ``total_spans`` spans."""
    gen = _Gen(seed)
    resources = [
        [
            _str("service.name", "agent-runner"),
            _str("service.instance.id", f"worker-{w}"),
            _str("host.name", f"node-{w:02d}"),
            _int("process.pid", 4000 + w),
            _str("telemetry.sdk.language", "python"),
        ]
        for w in range(workers)
    ]
    pending: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    produced = 0
    w = 0
    while produced < total_spans:
        spans = gen.trial()
        produced += len(spans)
        pending[w].extend(spans)
        while len(pending[w]) >= spans_per_line:
            chunk, pending[w] = pending[w][:spans_per_line], pending[w][spans_per_line:]
            yield json.dumps(_request(resources[w], chunk), separators=(",", ":"))
        w = (w + 1) % workers
    for i, rest in enumerate(pending):
        if rest:
            yield json.dumps(_request(resources[i], rest), separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--spans", type=int, default=100_000, help="minimum number of spans")
    ap.add_argument("--spans-per-line", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4, help="resources (processes) interleaved")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True, help="output .jsonl (or .jsonl.gz)")
    args = ap.parse_args(argv)
    opener: Any = gzip.open if args.out.suffix == ".gz" else open
    n_lines = 0
    with opener(args.out, "wt", encoding="utf-8") as f:
        for line in generate_lines(args.spans, args.spans_per_line, args.workers, args.seed):
            f.write(line)
            f.write("\n")
            n_lines += 1
    print(f"wrote {n_lines} lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
