"""A scripted model server on loopback that speaks the OpenAI chat-completions API and the
Anthropic messages API (JSON and server-sent events), for running real agent frameworks with
deterministic tool calls.

Each request takes the next step of the script: text, tool calls, or both, with the usage the
response reports. When the script is used up, the server answers with plain text `done` so a
framework that makes an extra call (a final extraction, a summary) still finishes. Every request
body is kept for assertions.

    with ScriptedLLM([Step(tools=[("bash", {"command": "cat x.py"})]), Step(text="ok")]) as llm:
        client = openai.OpenAI(base_url=llm.openai_url, api_key="x")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One model response. `usage` is (input tokens including cache reads, output, cache read)."""

    text: str | None = None
    tools: Sequence[tuple[str, dict[str, Any]]] = ()
    usage: tuple[int, int, int] = (100, 10, 0)
    model: str | None = None
    reasoning: str | None = None
    cost: float | None = None  # an OpenRouter-style usage.cost, when given


@dataclass
class ScriptedLLM:
    script: list[Step]
    model: str = "gpt-4o-mini"
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> ScriptedLLM:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.base_url}/v1"

    def extend(self, steps: Iterable[Step]) -> None:
        with self._lock:
            self.script.extend(steps)

    @property
    def used(self) -> int:
        return self._next

    def _take(self) -> tuple[int, Step]:
        with self._lock:
            i = self._next
            self._next += 1
            step = self.script[i] if i < len(self.script) else Step(text="done", usage=(50, 1, 0))
            return i, step


def _handler_for(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json({"object": "list", "data": [{"id": llm.model, "object": "model"}]})
            else:
                self._json({"ok": True})

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            with llm._lock:
                llm.requests.append(body)
                llm.paths.append(self.path)
            path = self.path.split("?", 1)[0].rstrip("/")
            if path.endswith("/chat/completions"):
                i, step = llm._take()
                self._openai(i, step, body)
            elif path.endswith("/responses"):
                i, step = llm._take()
                self._responses(i, step, body)
            elif path.endswith("/messages/count_tokens"):
                self._json({"input_tokens": 100})
            elif path.endswith("/messages"):
                i, step = llm._take()
                self._anthropic(i, step, body)
            else:
                self._json({"error": {"message": f"unknown path {self.path}"}}, status=404)

        # -- OpenAI ------------------------------------------------------------------------
        def _openai(self, i: int, step: Step, body: dict[str, Any]) -> None:
            model = step.model or body.get("model") or llm.model
            tool_calls = [
                {
                    "id": f"call_{i}_{k}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for k, (name, args) in enumerate(step.tools)
            ]
            message: dict[str, Any] = {"role": "assistant", "content": step.text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            if step.reasoning:
                message["reasoning_content"] = step.reasoning
            prompt, completion, cached = step.usage
            usage: dict[str, Any] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            }
            if step.cost is not None:
                usage["cost"] = step.cost
            finish = "tool_calls" if tool_calls else "stop"
            rid = f"chatcmpl-{i}"
            if body.get("stream"):
                chunks: list[dict[str, Any]] = []
                delta: dict[str, Any] = {"role": "assistant", "content": step.text or ""}
                chunks.append(_chunk(rid, model, delta, None))
                for k, call in enumerate(tool_calls):
                    chunks.append(_chunk(rid, model, {"tool_calls": [{"index": k, **call}]}, None))
                chunks.append(_chunk(rid, model, {}, finish))
                if (body.get("stream_options") or {}).get("include_usage"):
                    last = _chunk(rid, model, {}, None)
                    last["choices"] = []
                    last["usage"] = usage
                    chunks.append(last)
                self._sse([("", c) for c in chunks], done=True)
                return
            self._json(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )

        # -- OpenAI Responses (non-streamed) -------------------------------------------------
        def _responses(self, i: int, step: Step, body: dict[str, Any]) -> None:
            model = step.model or body.get("model") or llm.model
            output: list[dict[str, Any]] = []
            if step.text:
                output.append(
                    {"type": "message", "id": f"msg_{i}", "role": "assistant",
                     "status": "completed",
                     "content": [{"type": "output_text", "text": step.text, "annotations": []}]}
                )  # fmt: skip
            for k, (name, args) in enumerate(step.tools):
                output.append(
                    {"type": "function_call", "id": f"fc_{i}_{k}", "call_id": f"call_{i}_{k}",
                     "name": name, "arguments": json.dumps(args), "status": "completed"}
                )  # fmt: skip
            prompt, completion, cached = step.usage
            self._json(
                {
                    "id": f"resp_{i}",
                    "object": "response",
                    "created_at": int(time.time()),
                    "status": "completed",
                    "model": model,
                    "output": output,
                    "parallel_tool_calls": True,
                    "tool_choice": "auto",
                    "tools": [],
                    "usage": {
                        "input_tokens": prompt,
                        "output_tokens": completion,
                        "total_tokens": prompt + completion,
                        "input_tokens_details": {"cached_tokens": cached},
                        "output_tokens_details": {"reasoning_tokens": 0},
                    },
                }
            )

        # -- Anthropic ---------------------------------------------------------------------
        def _anthropic(self, i: int, step: Step, body: dict[str, Any]) -> None:
            model = step.model or body.get("model") or llm.model
            content: list[dict[str, Any]] = []
            if step.reasoning:
                content.append({"type": "thinking", "thinking": step.reasoning, "signature": "x"})
            if step.text:
                content.append({"type": "text", "text": step.text})
            for k, (name, args) in enumerate(step.tools):
                content.append(
                    {"type": "tool_use", "id": f"toolu_{i}_{k}", "name": name, "input": args}
                )
            prompt, completion, cached = step.usage
            usage = {
                "input_tokens": prompt - cached,
                "output_tokens": completion,
                "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": 0,
            }
            stop = "tool_use" if step.tools else "end_turn"
            message = {
                "id": f"msg_{i}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
            if not body.get("stream"):
                self._json(message)
                return
            events: list[tuple[str, dict[str, Any]]] = []

            def event(name: str, **payload: Any) -> None:
                events.append((name, {"type": name, **payload}))

            started = {**message, "content": [], "stop_reason": None}
            event("message_start", message={**started, "usage": {**usage, "output_tokens": 1}})
            for k, block in enumerate(content):
                if block["type"] == "text":
                    start = {"type": "text", "text": ""}
                    delta = {"type": "text_delta", "text": block["text"]}
                elif block["type"] == "thinking":
                    start = {"type": "thinking", "thinking": "", "signature": ""}
                    delta = {"type": "thinking_delta", "thinking": block["thinking"]}
                else:
                    start = {**block, "input": {}}
                    delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                event("content_block_start", index=k, content_block=start)
                event("content_block_delta", index=k, delta=delta)
                if block["type"] == "thinking":
                    signature = {"type": "signature_delta", "signature": "x"}
                    event("content_block_delta", index=k, delta=signature)
                event("content_block_stop", index=k)
            stopped = {"stop_reason": stop, "stop_sequence": None}
            event("message_delta", delta=stopped, usage=usage)
            event("message_stop")
            self._sse(events, done=False)

        # -- wire --------------------------------------------------------------------------
        def _json(self, payload: Any, status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _sse(self, events: list[tuple[str, dict[str, Any]]], *, done: bool) -> None:
            parts = []
            for name, payload in events:
                head = f"event: {name}\n" if name else ""
                parts.append(f"{head}data: {json.dumps(payload)}\n\n")
            if done:
                parts.append("data: [DONE]\n\n")
            data = "".join(parts).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _chunk(rid: str, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
