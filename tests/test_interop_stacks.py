"""agentsignals inside the OpenTelemetry stacks users already run, with the real packages.

Model calls go through the real `openai` client to a stub OpenAI-compatible server on loopback
(nothing else can answer here); the spans come from the real instrumentors: OpenInference's
OpenAI instrumentor and its `OITracer` agent/tool decorators, OpenLLMetry's OpenAI instrumentor
(current GenAI names), and Logfire configured offline. Each test that installs a global
provider or instruments a library runs in a subprocess, so nothing leaks between tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A stub OpenAI-compatible server (chat completions only) and helpers, prepended to each driver.
PRELUDE = r"""
import json, os, sys, threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
os.environ.pop("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", None)
os.environ["AGENTSIGNALS_RAISE_INTERNAL_ERRORS"] = "1"

class _Stub(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(n) or b"{}")
        wants_tool = any(m.get("role") == "tool" for m in request.get("messages", [])) is False \
            and request.get("tools")
        message = {"role": "assistant", "content": "done; the key was sk-proj-" + "Q" * 24}
        if wants_tool:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "read_file", "arguments": json.dumps({"path": "src/x.py"})}}]}
        body = json.dumps({
            "id": "c1", "object": "chat.completion", "created": 1, "model": "stub-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                      "prompt_tokens_details": {"cached_tokens": 40}},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

_server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
threading.Thread(target=_server.serve_forever, daemon=True).start()
BASE_URL = f"http://127.0.0.1:{_server.server_port}/v1"

import openai
client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test-" + "k" * 24)

def ask(content, tools=None):
    kwargs = {"tools": tools} if tools else {}
    return client.chat.completions.create(
        model="stub-model", messages=[{"role": "user", "content": content}], **kwargs)

def record_json(record):
    import msgspec
    return json.loads(msgspec.json.encode(record))
"""


def _run(body: str, tmp_path: Path, timeout: float = 120) -> dict[str, Any]:
    script = tmp_path / "driver.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["AGENTSIGNALS_OUTPUT_DIR"] = str(tmp_path / "out")
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_openinference_usage_counts_once_beside_record_usage(tmp_path: Path) -> None:
    """OpenInference's ChatCompletion span (llm.token_count.*) under a turn that also recorded
    the same usage itself: counted once, cache reads included."""
    result = _run(
        """
        from openinference.instrumentation.openai import OpenAIInstrumentor
        import agentsignals
        from agentsignals import features
        from agentsignals.testing import capture_spans

        with capture_spans() as captured:
            OpenAIInstrumentor().instrument(tracer_provider=captured.provider)
            with agentsignals.trial("t"), agentsignals.attempt():
                for _ in range(2):
                    with agentsignals.turn() as turn:
                        ask("hello")
                        turn.record_usage(input_tokens=100, output_tokens=20)
        [record] = features.from_spans(captured.spans).attempts
        kinds = sorted({(s.attributes or {}).get("openinference.span.kind", "-")
                        for s in captured.spans})
        print(json.dumps({"tokens": record_json(record.tokens), "kinds": kinds,
                          "turns": record.behavior.turn_count}))
        """,
        tmp_path,
    )
    tokens = result["tokens"]
    assert "LLM" in result["kinds"]  # the spans really are OpenInference's
    assert result["turns"] == 2
    assert tokens["input_tokens_total"] == 200
    assert tokens["output_tokens_total"] == 40
    assert tokens["cache_read_tokens"] == 80
    assert tokens["cache_read_ratio"] == pytest.approx(0.4)
    assert tokens["model_calls"] == 2


def test_openllmetry_usage_counts_once(tmp_path: Path) -> None:
    """OpenLLMetry's OpenAI instrumentor writes the current GenAI names: its chat span under a
    turn is the model call, and the turn's own usage is not added to it."""
    result = _run(
        """
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        import agentsignals
        from agentsignals import features
        from agentsignals.testing import capture_spans

        with capture_spans() as captured:
            OpenAIInstrumentor().instrument(tracer_provider=captured.provider)
            with agentsignals.trial("t"), agentsignals.attempt():
                with agentsignals.turn() as turn:
                    ask("hello")
                    turn.record_usage(input_tokens=100, output_tokens=20)
        [record] = features.from_spans(captured.spans).attempts
        scopes = sorted({s.instrumentation_scope.name for s in captured.spans})
        print(json.dumps({"tokens": record_json(record.tokens), "scopes": scopes}))
        """,
        tmp_path,
    )
    assert any(s.startswith("opentelemetry.instrumentation.openai") for s in result["scopes"])
    tokens = result["tokens"]
    assert (tokens["input_tokens_total"], tokens["output_tokens_total"]) == (100, 20)
    assert tokens["cache_read_tokens"] == 40
    assert tokens["model_calls"] == 1


def test_an_agent_traced_only_by_openinference_gets_a_record(tmp_path: Path) -> None:
    """No agentsignals span at all: OpenInference's agent and tool decorators plus its OpenAI
    instrumentor. The agent span becomes the attempt, its model calls the turns, its TOOL spans
    the tool calls (with their captured arguments), and the file store's secrets are redacted."""
    result = _run(
        """
        from opentelemetry import trace
        from openinference.instrumentation import OITracer, TraceConfig
        from openinference.instrumentation.openai import OpenAIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        import agentsignals
        from agentsignals import features

        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        agentsignals.configure(features=True, batch=False)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        tracer = OITracer(provider.get_tracer("my-agent"), config=TraceConfig())

        @tracer.tool
        def read_file(path: str) -> str:
            return "print('hi')"

        @tracer.agent
        def agent(task: str) -> str:
            tools = [{"type": "function", "function": {"name": "read_file", "parameters": {
                "type": "object", "properties": {"path": {"type": "string"}}}}}]
            first = ask(task + " my token is ghp_" + "a" * 36, tools)
            args = json.loads(first.choices[0].message.tool_calls[0].function.arguments)
            read_file(args["path"])
            return ask("summarise").choices[0].message.content

        agent("fix the bug")
        agentsignals.shutdown()
        offline = features.extract(os.environ["AGENTSIGNALS_OUTPUT_DIR"] + "/traces")
        live = features.read_store(os.environ["AGENTSIGNALS_OUTPUT_DIR"] + "/features")
        raw = "".join(p.read_text() for p in
                      (Path(os.environ["AGENTSIGNALS_OUTPUT_DIR"]) / "traces").glob("*.jsonl"))
        print(json.dumps({
            "offline": [record_json(r) for r in offline.attempts],
            "live": [record_json(r) for r in live.attempts],
            "leaks": [s for s in ("ghp_" + "a" * 36, "sk-proj-" + "Q" * 24) if s in raw],
            "redacted": raw.count("[REDACTED:"),
        }))
        """,
        tmp_path,
    )
    assert result["leaks"] == [] and result["redacted"] >= 2
    for records in (result["offline"], result["live"]):
        [record] = records
        behavior, tokens = record["behavior"], record["tokens"]
        assert record["complete"] is True
        assert behavior["turn_count"] == 2
        assert behavior["tool_call_count"] == 1
        assert behavior["tool_category_sequence"] == ["read"]  # read_file, by its name
        assert (tokens["input_tokens_total"], tokens["output_tokens_total"]) == (200, 40)
        assert tokens["cache_read_tokens"] == 80


# Traceloop's @workflow / @agent / @tool decorators, span for span as traceloop-sdk 0.62.4 writes
# them (traceloop/sdk/decorators/base.py `_setup_span`, `_handle_span_input/_output`, and
# traceloop/sdk/tracing/tracing.py `default_span_processor_on_start`): tracer
# "traceloop.tracer", span name "<name>.<kind>", `traceloop.span.kind` / `.entity.name` /
# `.entity.input` ({"args": [...], "kwargs": {...}}) / `.entity.output`, `gen_ai.tool.name` on
# tools, and the enclosing workflow's and agent's names put on every span started inside them.
# The attribute names and kinds come from the real `opentelemetry-semantic-conventions-ai`.
# traceloop-sdk itself is not in the dev extra: it pulls ~45 instrumentation packages and needs
# opentelemetry-instrumentation-threading, whose newest release pins an older
# opentelemetry-instrumentation than ours (pip's resolver backtracks for >10 min). This copy was
# checked once against the real SDK (same spans, names and attribute values).
TRACELOOP_DECORATORS = r"""
from opentelemetry import context as context_api, trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.semconv_ai import SpanAttributes, TraceloopSpanKindValues as Kind
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_AGENT_NAME, GEN_AI_TOOL_NAME)

class TraceloopContextProcessor(SpanProcessor):
    # default_span_processor_on_start: names from the context onto every span started.
    def on_start(self, span, parent_context=None):
        for key, attribute in (("workflow_name", SpanAttributes.TRACELOOP_WORKFLOW_NAME),
                               ("agent_name", GEN_AI_AGENT_NAME),
                               ("entity_path", SpanAttributes.TRACELOOP_ENTITY_PATH)):
            value = context_api.get_value(key)
            if value is not None:
                span.set_attribute(attribute, str(value))

def traceloop_entity(tracer, kind):
    def named(name):
        def decorate(fn):
            def wrapper(*args, **kwargs):
                tokens = []
                if kind is Kind.WORKFLOW:
                    tokens.append(context_api.attach(context_api.set_value("workflow_name", name)))
                elif kind is Kind.AGENT:
                    tokens.append(context_api.attach(context_api.set_value("agent_name", name)))
                span = tracer.start_span(f"{name}.{kind.value}")
                tokens.append(context_api.attach(trace.set_span_in_context(span)))
                if kind in (Kind.TASK, Kind.TOOL):
                    parent = context_api.get_value("entity_path")
                    path = name if parent is None else f"{parent}.{name}"
                    tokens.append(context_api.attach(context_api.set_value("entity_path", path)))
                span.set_attribute(SpanAttributes.TRACELOOP_SPAN_KIND, kind.value)
                span.set_attribute(SpanAttributes.TRACELOOP_ENTITY_NAME, name)
                if kind is Kind.TOOL:
                    span.set_attribute(GEN_AI_TOOL_NAME, name)
                span.set_attribute(SpanAttributes.TRACELOOP_ENTITY_INPUT,
                                   json.dumps({"args": args, "kwargs": kwargs}))
                try:
                    result = fn(*args, **kwargs)
                    span.set_attribute(SpanAttributes.TRACELOOP_ENTITY_OUTPUT, json.dumps(result))
                    return result
                except Exception as e:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, str(e)))
                    span.record_exception(e)
                    raise
                finally:
                    span.end()
                    for token in reversed(tokens):
                        context_api.detach(token)
            return wrapper
        return decorate
    return named
"""


def test_an_agent_traced_only_by_openllmetry_gets_a_record(tmp_path: Path) -> None:
    """No agentsignals span at all: OpenLLMetry's OpenAI instrumentor plus Traceloop's
    workflow/agent/tool markers. The agent span is the attempt (its workflow stays outside and
    is counted with its reason), the `openai.chat` spans are the turns, the tool spans the tool
    calls (a positional `bash("pytest -q")` is a test run, read from `traceloop.entity.input`);
    tokens counted once; the same record live and offline; the stub's secret never stored."""
    result = _run(
        TRACELOOP_DECORATORS
        + textwrap.dedent(
            """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        import agentsignals
        from agentsignals import features

        provider = TracerProvider()
        provider.add_span_processor(TraceloopContextProcessor())
        trace.set_tracer_provider(provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        agentsignals.configure(features=True, batch=False)
        tracer = provider.get_tracer("traceloop.tracer")
        workflow, agent, tool = (traceloop_entity(tracer, k)
                                 for k in (Kind.WORKFLOW, Kind.AGENT, Kind.TOOL))

        @tool("read_file")
        def read_file(path):
            return "print('hi')"

        @tool("bash")
        def bash(command):
            return "1 passed"

        @agent("fixer")
        def fixer(task):
            tools = [{"type": "function", "function": {"name": "read_file", "parameters": {
                "type": "object", "properties": {"path": {"type": "string"}}}}}]
            first = ask(task, tools)
            read_file(**json.loads(first.choices[0].message.tool_calls[0].function.arguments))
            bash("pytest -q")
            return ask("summarise").choices[0].message.content

        @workflow("nightly")
        def nightly():
            return fixer("fix the bug")

        nightly()
        agentsignals.shutdown()
        out = Path(os.environ["AGENTSIGNALS_OUTPUT_DIR"])
        offline = features.extract(out / "traces")
        live = features.read_store(out / "features")
        from agentsignals._export.file import iter_export_requests
        stored = [s for r in iter_export_requests(out / "traces") for rs in r["resourceSpans"]
                  for ss in rs["scopeSpans"] for s in ss["spans"]
                  for _ in [s.setdefault("scope", ss["scope"]["name"])]]
        raw = "".join(p.read_text() for p in (out / "traces").glob("*.jsonl"))
        print(json.dumps({
            "offline": [record_json(r) for r in offline.attempts],
            "live": [record_json(r) for r in live.attempts],
            "reasons": offline.stats.unattributed_reasons,
            "spans": sorted((s["scope"], s["name"]) for s in stored),
            "leaks": "sk-proj-" + "Q" * 24 in raw,
        }))
        """
        ),
        tmp_path,
    )
    # The spans really are OpenLLMetry's and Traceloop's, and nothing else made any.
    assert result["spans"] == sorted(
        [["opentelemetry.instrumentation.openai.v1", "openai.chat"]] * 2
        + [["traceloop.tracer", n] for n in
           ("nightly.workflow", "fixer.agent", "read_file.tool", "bash.tool")]
    )  # fmt: skip
    assert result["leaks"] is False
    # The workflow span is outside the agent's attempt, and said so.
    assert result["reasons"] == {"outside the agent spans of their trace": 1}
    for records in (result["offline"], result["live"]):
        [record] = records
        behavior, tokens = record["behavior"], record["tokens"]
        assert record["complete"] is True
        assert behavior["turn_count"] == 2
        assert behavior["tool_call_count"] == 2
        assert behavior["tool_sequence"] == ["read_file", "bash"]
        assert behavior["tool_category_sequence"] == ["read", "test"]
        assert behavior["test_runs"] == 1
        assert (tokens["input_tokens_total"], tokens["output_tokens_total"]) == (200, 40)
        assert tokens["cache_read_tokens"] == 80
        assert tokens["model_calls"] == 2
    assert result["offline"][0]["attempt_id"] == result["live"][0]["attempt_id"]


def test_spans_that_fit_no_attempt_are_counted_with_a_reason(tmp_path: Path) -> None:
    result = _run(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from agentsignals import features

        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        http = provider.get_tracer("opentelemetry.instrumentation.requests")
        with http.start_as_current_span("GET"):
            with http.start_as_current_span("connect"):
                pass
        result = features.from_spans(memory.get_finished_spans())
        print(json.dumps({"attempts": len(result.attempts),
                          "reasons": result.stats.unattributed_reasons,
                          "unattributed": result.stats.unattributed}))
        """,
        tmp_path,
    )
    assert result["attempts"] == 0
    assert result["unattributed"] == 2
    assert result["reasons"] == {"no agent, model-call or tool spans in their trace": 2}


def test_logfire_offline_one_provider_one_trace(tmp_path: Path) -> None:
    """After logfire.configure(), configure() joins Logfire's provider (behind its proxy):
    no second provider, no override warning, and agentsignals spans are in Logfire's trace,
    seen by Logfire's processors and by our file store alike."""
    result = _run(
        """
        import logging, warnings
        records = []
        class Keep(logging.Handler):
            def emit(self, record): records.append(record.getMessage())
        logging.getLogger().addHandler(Keep())
        import logfire
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        memory = InMemorySpanExporter()
        logfire.configure(send_to_logfire=False, console=False, metrics=False,
                          additional_span_processors=[SimpleSpanProcessor(memory)])
        front = trace.get_tracer_provider()
        import agentsignals
        agentsignals.configure(batch=False)
        with logfire.span("outer request"):
            with agentsignals.trial("t-1"), agentsignals.attempt(), agentsignals.turn():
                logfire.info("inside the turn")
        agentsignals.force_flush()
        from agentsignals._export.file import iter_export_requests
        stored = [s for r in iter_export_requests(os.environ["AGENTSIGNALS_OUTPUT_DIR"]
                                                   + "/traces")
                  for rs in r["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
        seen = {s.name: s for s in memory.get_finished_spans()}
        print(json.dumps({
            "same_front": trace.get_tracer_provider() is front,
            "front": type(front).__name__,
            "logfire_saw": sorted(seen),
            "trace_ids": sorted({format(s.context.trace_id, "032x") for s in seen.values()}),
            "stored_trace_ids": sorted({s["traceId"] for s in stored}),
            "stored": sorted(s["name"] for s in stored),
            "trial_parent_is_logfire_span": seen["trial t-1"].parent.span_id
                == seen["outer request"].context.span_id,
            "override_warnings": [m for m in records if "Overriding" in m],
        }))
        """,
        tmp_path,
    )
    assert result["same_front"] and result["front"] == "ProxyTracerProvider"
    assert result["override_warnings"] == []
    assert {"outer request", "trial t-1", "invoke_agent", "turn 0"} <= set(result["logfire_saw"])
    assert len(result["trace_ids"]) == 1  # one trace, not split
    assert result["stored_trace_ids"] == result["trace_ids"]
    assert {"trial t-1", "invoke_agent", "turn 0", "outer request"} <= set(result["stored"])
    assert result["trial_parent_is_logfire_span"]


def test_a_plain_sdk_provider_is_joined_not_replaced(tmp_path: Path) -> None:
    result = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        provider = TracerProvider()
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(provider)
        import agentsignals
        agentsignals.configure(batch=False)
        agentsignals.configure(batch=False, capture_content=True)  # reconfigure: still one
        with agentsignals.trial("t"):
            pass
        processors = [type(p).__name__ for p in provider._active_span_processor._span_processors]
        print(json.dumps({"global": trace.get_tracer_provider() is provider,
                          "processors": processors,
                          "host_saw": [s.name for s in memory.get_finished_spans()]}))
        """,
        tmp_path,
    )
    assert result["global"]
    assert result["processors"] == ["SimpleSpanProcessor", "_Pipeline"]
    assert result["host_saw"] == ["trial t"]
