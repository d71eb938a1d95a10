"""OpenInference mapping (`agentsignals._export.openinference`) and Arize Phoenix end to end.

The first part needs nothing but the SDK. The last test runs a real Phoenix server from its own
virtualenv (`$AGENTSIGNALS_PHOENIX_VENV`, default `<repo>/.venv-phoenix`: arize-phoenix pulls
~150 packages, so it never goes into the project's venv) on loopback, runs the demo agent in a
subprocess exporting OTLP/HTTP to it, and reads the spans back through Phoenix's REST API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import agentsignals
from agentsignals import semconv as sc
from agentsignals._export import openinference as oi
from agentsignals._export.file import FileSpanExporter, iter_export_requests
from agentsignals.testing import CapturedSpans, capture_spans

ROOT = Path(__file__).resolve().parents[1]
KIND = oi.SPAN_KIND


# ------------------------------------------------------------------------- the mapping
def test_kind_per_span_type() -> None:
    assert oi.openinference_attributes("trial", {})[KIND] == "CHAIN"
    assert oi.openinference_attributes("attempt", {})[KIND] == "AGENT"
    assert oi.openinference_attributes("tool", {sc.GEN_AI_TOOL_NAME: "bash"})[KIND] == "TOOL"
    assert oi.openinference_attributes("verification", {})[KIND] == "EVALUATOR"
    # Not ours (another instrumentor's chat span) or a type we do not know: nothing.
    chat = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_USAGE_INPUT_TOKENS: 5}
    assert oi.openinference_attributes(None, chat) == {}
    assert oi.openinference_attributes("subagent-thing", chat) == {}


def test_turn_that_records_its_own_call_is_the_llm_span() -> None:
    turn = {
        sc.AGENT_SIGNALS_SPAN_TYPE: "turn",
        sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
        sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5-20250929",
        sc.GEN_AI_PROVIDER_NAME: "anthropic",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("tool_use",),
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1200,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 80,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 150,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 30,
        sc.AGENT_SIGNALS_USAGE_COST_USD: 0.0042,
    }
    assert oi.openinference_attributes("turn", turn) == {
        KIND: "LLM",
        "llm.model_name": "claude-sonnet-4-5-20250929",  # the model that answered
        "llm.provider": "anthropic",
        "llm.finish_reason": "tool_use",
        "llm.token_count.prompt": 1200,
        "llm.token_count.completion": 80,
        "llm.token_count.total": 1280,
        "llm.token_count.prompt_details.cache_read": 1000,
        "llm.token_count.prompt_details.cache_write": 150,
        "llm.token_count.completion_details.reasoning": 30,
        "llm.cost.total": 0.0042,
    }
    # Usage alone (no model name) still makes the turn the call.
    assert oi.openinference_attributes("turn", {sc.GEN_AI_USAGE_OUTPUT_TOKENS: 3})[KIND] == "LLM"


def test_turn_above_a_model_call_span_is_a_chain_without_token_counts() -> None:
    """The child chat span is the LLM span; Phoenix sums tokens over LLM spans only, so the
    turn must not be one too, or every call would count twice."""
    turn = {sc.GEN_AI_REQUEST_MODEL: "gpt-5", sc.GEN_AI_USAGE_INPUT_TOKENS: 10}
    out = oi.openinference_attributes("turn", turn, model_call_child=True)
    assert out == {KIND: "CHAIN"}
    # A turn that records no call at all (a grouping turn) is a chain as well.
    assert oi.openinference_attributes("turn", {sc.AGENT_SIGNALS_TURN_PHASE: "explore"}) == {
        KIND: "CHAIN"
    }


def test_agent_name_and_session_only_from_real_ids() -> None:
    attempt = {
        sc.GEN_AI_AGENT_NAME: "swe-agent",
        sc.AGENT_SIGNALS_ATTEMPT_ID: "a1",
        sc.AGENT_SIGNALS_TRIAL_ID: "t1",
    }
    out = oi.openinference_attributes("attempt", attempt)
    assert out == {KIND: "AGENT", "agent.name": "swe-agent"}  # no session made up from our ids
    attempt[sc.GEN_AI_CONVERSATION_ID] = "sess-42"
    assert oi.openinference_attributes("attempt", attempt)["session.id"] == "sess-42"


def test_tool_keys() -> None:
    tool = {
        sc.GEN_AI_TOOL_NAME: "str_replace_editor",
        sc.GEN_AI_TOOL_CALL_ID: "toolu_01",
        sc.GEN_AI_TOOL_DESCRIPTION: "Edit a file",
        sc.AGENT_SIGNALS_TOOL_CATEGORY: "edit",
    }
    assert oi.openinference_attributes("tool", tool) == {
        KIND: "TOOL",
        "tool.name": "str_replace_editor",
        "tool.id": "toolu_01",
        "tool.description": "Edit a file",
    }


def test_input_and_output_only_when_content_was_captured() -> None:
    bare = {sc.GEN_AI_TOOL_NAME: "bash", sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES: 120}
    assert not {"input.value", "output.value"} & oi.openinference_attributes("tool", bare).keys()

    captured = {
        **bare,
        sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"command":"ls"}',
        sc.GEN_AI_TOOL_CALL_RESULT: "a.py\nb.py\n",
    }
    out = oi.openinference_attributes("tool", captured)
    assert out["input.value"] == '{"command":"ls"}'
    assert out["input.mime_type"] == "application/json"
    assert out["output.value"] == "a.py\nb.py\n"
    assert out["output.mime_type"] == "text/plain"

    # A truncated JSON value is no longer JSON.
    cut = {**captured, sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS: (sc.GEN_AI_TOOL_CALL_ARGUMENTS,)}
    assert oi.openinference_attributes("tool", cut)["input.mime_type"] == "text/plain"

    # EVENT_ONLY capture: the values come from agent_signals.content events.
    messages = '[{"role":"user","parts":[{"type":"text","content":"fix it"}]}]'
    out = oi.openinference_attributes(
        "turn", {sc.GEN_AI_REQUEST_MODEL: "m"}, content={sc.GEN_AI_INPUT_MESSAGES: messages}
    )
    assert (out["input.value"], out["input.mime_type"]) == (messages, "application/json")
    assert "output.value" not in out
    # Trials and attempts carry no content.
    assert "input.value" not in oi.openinference_attributes(
        "attempt", {sc.GEN_AI_INPUT_MESSAGES: messages}
    )


def test_start_attributes_leave_the_turn_kind_open() -> None:
    assert oi.start_attributes("turn", {sc.GEN_AI_REQUEST_MODEL: "m"}) == {}
    assert oi.start_attributes("tool", {sc.GEN_AI_TOOL_NAME: "grep"}) == {
        KIND: "TOOL",
        "tool.name": "grep",
    }
    assert oi.start_attributes(None, {sc.GEN_AI_TOOL_NAME: "grep"}) == {}


# ------------------------------------------------------------------- processor, exporter
def _scripted_agent(captured: CapturedSpans) -> None:
    """One trial: a turn that records its own call, a turn with an OpenAI-like child chat
    span, tools inside and after the turn block."""
    other = captured.tracer("opentelemetry.instrumentation.openai_v2")
    with agentsignals.trial("task-1"), agentsignals.attempt(agent_name="a", model_id="m"):
        with agentsignals.turn(model="m") as turn:
            turn.record_usage(input_tokens=100, output_tokens=7)
            with agentsignals.tool("read_file", arguments={"path": "x.py"}) as tool:
                tool.record_result("print(1)\n")
        with (
            agentsignals.turn(),
            other.start_as_current_span(
                "chat gpt-5",
                kind=SpanKind.CLIENT,
                attributes={
                    sc.GEN_AI_OPERATION_NAME: "chat",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-5",
                    sc.GEN_AI_USAGE_INPUT_TOKENS: 200,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 9,
                },
            ),
        ):
            pass
        with agentsignals.tool("bash", arguments={"command": "pytest"}) as tool:
            tool.set_exit_code(0)


class _Batches(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[list[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _by_name(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_exporter_rewrites_copies_and_emits_each_span_once(batch_size: int) -> None:
    with capture_spans(capture_content=True) as captured:
        _scripted_agent(captured)
    finished = captured.spans
    before = {s.context.span_id: dict(s.attributes or {}) for s in finished}
    inner = _Batches()
    exporter = oi.OpenInferenceExporter(inner)
    for i in range(0, len(finished), batch_size):  # children end, and export, before parents
        assert exporter.export(finished[i : i + batch_size]) == SpanExportResult.SUCCESS
    sent = [s for batch in inner.batches for s in batch]

    # Every span exactly once, in order, none added.
    assert [s.context.span_id for s in sent] == [s.context.span_id for s in finished]
    # The originals (which other processors may hold) are untouched.
    assert {s.context.span_id: dict(s.attributes or {}) for s in finished} == before

    spans = _by_name(sent)
    kinds = {name: (s.attributes or {}).get(KIND) for name, s in spans.items()}
    assert kinds == {
        "trial task-1": "CHAIN",
        "invoke_agent a": "AGENT",
        "turn 0": "LLM",
        "turn 1": "CHAIN",
        "execute_tool read_file": "TOOL",
        "execute_tool bash": "TOOL",
        "chat gpt-5": None,  # another instrumentor's span: untouched
    }
    chat = next(s for s in finished if s.name == "chat gpt-5")
    assert next(s for s in sent if s.name == "chat gpt-5") is chat
    turn0 = spans["turn 0"].attributes or {}
    assert (turn0["llm.token_count.prompt"], turn0["llm.token_count.completion"]) == (100, 7)
    assert "llm.token_count.prompt" not in (spans["turn 1"].attributes or {})
    read = spans["execute_tool read_file"].attributes or {}
    assert read["tool.name"] == "read_file"
    assert read["input.value"] == read[sc.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert read["output.value"] == "print(1)\n"
    # Our own attributes travel unchanged next to the new keys.
    for span in sent:
        original = before[span.context.span_id]
        assert {k: v for k, v in (span.attributes or {}).items() if k in original} == original
        assert span.dropped_attributes == 0


def test_a_model_call_under_a_framework_span_still_makes_the_turn_a_chain() -> None:
    with capture_spans() as captured:
        framework = captured.tracer("openinference.instrumentation.langchain")
        sdk = captured.tracer("opentelemetry.instrumentation.openai_v2")
        with agentsignals.trial("t"), agentsignals.attempt(agent_name="a"):
            with (
                agentsignals.turn(model="m") as turn,
                framework.start_as_current_span("RunnableSequence"),
                sdk.start_as_current_span("chat m", attributes={sc.GEN_AI_OPERATION_NAME: "chat"}),
            ):
                turn.record_usage(input_tokens=5, output_tokens=1)
            # A model call inside a tool (an LLM-backed tool) leaves the tool a TOOL.
            with (
                agentsignals.tool("summarize"),
                sdk.start_as_current_span("chat m", attributes={sc.GEN_AI_OPERATION_NAME: "chat"}),
            ):
                pass
            with agentsignals.turn(model="m") as turn:
                turn.record_usage(input_tokens=5, output_tokens=1)
    inner = InMemorySpanExporter()
    exporter = oi.OpenInferenceExporter(inner)
    for span in captured.spans:  # one span per export call
        exporter.export([span])
    kinds = [(s.name, (s.attributes or {}).get(KIND)) for s in inner.get_finished_spans()]
    assert kinds == [
        ("chat m", None),
        ("RunnableSequence", None),
        ("turn 0", "CHAIN"),
        ("chat m", None),
        ("execute_tool summarize", "TOOL"),
        ("turn 1", "LLM"),
        ("invoke_agent a", "AGENT"),
        ("trial t", "CHAIN"),
    ]


def test_exporter_reads_content_events() -> None:
    with capture_spans() as captured:
        _scripted_agent(captured)
    tool = next(s for s in captured.spans if s.name == "execute_tool bash")
    tool._events = (  # EVENT_ONLY capture puts the value in an event
        *tool.events,
        _event(sc.GEN_AI_TOOL_CALL_RESULT, "2 passed"),
    )
    inner = InMemorySpanExporter()
    oi.OpenInferenceExporter(inner).export([tool])
    [out] = inner.get_finished_spans()
    assert (out.attributes or {})["output.value"] == "2 passed"
    assert "input.value" not in (out.attributes or {})  # content off: arguments not captured


def _event(key: str, value: str) -> Any:
    from opentelemetry.sdk.trace import Event

    return Event(
        sc.EVENT_AGENT_SIGNALS_CONTENT,
        {sc.AGENT_SIGNALS_CONTENT_KEY: key, sc.AGENT_SIGNALS_CONTENT_VALUE: value},
    )


def test_processor_sets_start_keys_on_live_spans() -> None:
    # A hand-built tracer (no schema URL) stands in for ours, so the registry drift check of
    # conftest does not count the OpenInference keys as agentsignals attributes.
    provider = TracerProvider()
    provider.add_span_processor(oi.OpenInferenceProcessor())
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agentsignals")
    with tracer.start_as_current_span(
        "invoke_agent a",
        attributes={sc.AGENT_SIGNALS_SPAN_TYPE: "attempt", sc.GEN_AI_AGENT_NAME: "a"},
    ):
        with tracer.start_as_current_span(
            "turn 0", attributes={sc.AGENT_SIGNALS_SPAN_TYPE: "turn", sc.GEN_AI_REQUEST_MODEL: "m"}
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool bash",
            attributes={sc.AGENT_SIGNALS_SPAN_TYPE: "tool", sc.GEN_AI_TOOL_NAME: "bash"},
        ):
            pass
        with tracer.start_as_current_span("chat m", attributes={sc.GEN_AI_OPERATION_NAME: "chat"}):
            pass
    spans = _by_name(memory.get_finished_spans())
    attrs = {name: dict(s.attributes or {}) for name, s in spans.items()}
    assert attrs["invoke_agent a"][KIND] == "AGENT"
    assert attrs["invoke_agent a"]["agent.name"] == "a"
    assert attrs["execute_tool bash"][KIND] == "TOOL"
    assert attrs["execute_tool bash"]["tool.name"] == "bash"
    assert KIND not in attrs["turn 0"]  # decided at export, when the children are known
    assert attrs["chat m"] == {sc.GEN_AI_OPERATION_NAME: "chat"}
    provider.shutdown()


def test_configure_hook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    file = FileSpanExporter(tmp_path)
    monkeypatch.delenv(oi.ENV, raising=False)
    assert oi.configure_hook([memory, file]) == ([], [memory, file])
    monkeypatch.setenv(oi.ENV, "true")
    processors, exporters = oi.configure_hook([memory, file])
    assert [type(p) for p in processors] == [oi.OpenInferenceProcessor]
    wrapped, kept = exporters
    assert isinstance(wrapped, oi.OpenInferenceExporter) and wrapped.inner is memory
    assert kept is file  # the embedded store keeps our own convention
    assert oi.configure_hook([wrapped], enabled=True)[1] == [wrapped]  # never wrapped twice
    assert oi.configure_hook([memory], enabled=False) == ([], [memory])


# ------------------------------------------------------------------------------- the recipe
def _load_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


@pytest.mark.usefixtures("fresh_otel")
def test_phoenix_recipe_resolves_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _load_env(ROOT / "exporters/phoenix/agentsignals.env")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = agentsignals.configure()
    assert (config.exporters, config.protocol) == (("otlp", "file"), "http/protobuf")
    assert oi.enabled_from_env()
    from agentsignals import _config

    processors = _config._active.pipeline.processors  # type: ignore[union-attr]
    exporters = [getattr(getattr(p, "span_exporter", None), "inner", None) for p in processors]
    otlp = [e.inner if isinstance(e, oi.OpenInferenceExporter) else e for e in exporters if e]
    endpoints = [e._endpoint for e in otlp if hasattr(e, "_endpoint")]
    assert endpoints == ["http://127.0.0.1:6006/v1/traces"]
    # The start script serves OTLP/HTTP where the recipe sends it.
    script = (ROOT / "exporters/phoenix/start-phoenix.sh").read_text()
    assert 'PHOENIX_PORT="${PHOENIX_PORT:-6006}"' in script
    assert 'PHOENIX_HOST="${PHOENIX_HOST:-127.0.0.1}"' in script
    assert "openinference.project.name=" in env["OTEL_RESOURCE_ATTRIBUTES"]


# -------------------------------------------------------------------- Phoenix end to end
PHOENIX_VENV = Path(os.environ.get("AGENTSIGNALS_PHOENIX_VENV", ROOT / ".venv-phoenix"))
PHOENIX = PHOENIX_VENV / "bin" / "phoenix"
START_SCRIPT = ROOT / "exporters" / "phoenix" / "start-phoenix.sh"

# Runs in a subprocess with the project's interpreter: configure from the environment
# (AGENTSIGNALS_OPENINFERENCE=true); if configure() does not wire the mapping in yet, wire it by
# hand with the same public pieces. Counts every span handed to the OTLP exporter.
DRIVER = r"""
import json, sys, tempfile
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

sent = []
_export = OTLPSpanExporter.export
def _counting_export(self, spans):
    sent.extend(
        {"span_id": format(s.context.span_id, "016x"), "name": s.name,
         "attributes": sorted((s.attributes or {}).keys())}
        for s in spans
    )
    return _export(self, spans)
OTLPSpanExporter.export = _counting_export

import agentsignals
from agentsignals import _config
from agentsignals import semconv as sc
from agentsignals._demo import create_repository, run_agent
from agentsignals._export import openinference as oi

out = sys.argv[1]
plain = sys.argv[2:] == ["plain"]  # no OpenInference mapping at all: the negative control
agentsignals.configure(
    service_name="agentsignals-demo", exporters=["otlp", "file"], output_dir=out,
    capture_content=True,
)
pipeline = _config._active.pipeline if _config._active is not None else None
wired = pipeline is not None and any(
    isinstance(p, oi.OpenInferenceProcessor) for p in pipeline.processors
)
if not wired and not plain:
    from opentelemetry import trace
    trace.get_tracer_provider().add_span_processor(oi.OpenInferenceProcessor())
    agentsignals.configure(
        service_name="agentsignals-demo",
        exporters=[oi.OpenInferenceExporter(OTLPSpanExporter()), "file"],
        output_dir=out, capture_content=True,
    )

with tempfile.TemporaryDirectory() as scratch:
    summaries = run_agent(create_repository(Path(scratch) / "textkit"))

# A turn whose model call is another instrumentor's chat span (the OpenAI instrumentor's shape).
from opentelemetry import trace
from opentelemetry.trace import SpanKind
other = trace.get_tracer("opentelemetry.instrumentation.openai_v2")
with agentsignals.trial("child-chat-1"), agentsignals.attempt(agent_name="child-agent"):
    with agentsignals.turn(model="gpt-5") as turn:
        turn.record_usage(input_tokens=300, output_tokens=20)
        with other.start_as_current_span(
            "chat gpt-5", kind=SpanKind.CLIENT,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: "gpt-5",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 300, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 20,
            },
        ):
            pass
agentsignals.shutdown()
print(json.dumps({
    "wiring": "configure" if wired else "none" if plain else "manual",
    "attempts": [[s.turns, s.tool_calls, s.exit_reason] for s in summaries],
    "sent": sent,
}))
"""


def _free_port() -> int:
    # Phoenix binds its gRPC port on every interface: the port must be free on all of them.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Phoenix:
    def __init__(self, http_port: int, grpc_port: int, process: subprocess.Popen[bytes]) -> None:
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.process = process
        self.url = f"http://127.0.0.1:{http_port}"

    def spans(self, project: str) -> list[dict[str, Any]]:
        try:
            body = _get(f"{self.url}/v1/projects/{project}/spans?limit=1000")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the project appears with its first span
                return []
            raise
        assert body.get("next_cursor") is None
        return list(body["data"])

    def traces(self, project: str) -> list[dict[str, Any]]:
        return list(_get(f"{self.url}/v1/projects/{project}/traces?limit=100")["data"])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    if not PHOENIX.is_file():
        pytest.skip(
            f"no Phoenix at {PHOENIX}: create it with `python3 -m venv {PHOENIX_VENV} && "
            f"{PHOENIX_VENV}/bin/pip install arize-phoenix` (or set AGENTSIGNALS_PHOENIX_VENV)"
        )
    work = tmp_path_factory.mktemp("phoenix")
    http_port, grpc_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
    env.update(
        AGENTSIGNALS_PHOENIX_VENV=str(PHOENIX_VENV),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(work / "data"),
    )
    log = (work / "phoenix.log").open("wb")
    process = subprocess.Popen(
        ["bash", str(START_SCRIPT)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Phoenix(http_port, grpc_port, process)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"phoenix exited:\n{(work / 'phoenix.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{server.url}/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"phoenix not up:\n{(work / 'phoenix.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield server
    finally:
        # The start script execs phoenix, so the process is Phoenix itself.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


def _file_spans(directory: Path) -> list[dict[str, Any]]:
    out = []
    for request in iter_export_requests(directory):
        for rs in request["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                out.extend(ss["spans"])
    return out


def _json_attrs(span: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.get("attributes", []):
        ((kind, value),) = kv["value"].items()
        if kind == "arrayValue":
            value = [_scalar(v) for v in value.get("values", [])]
        else:
            value = _scalar(kv["value"])
        out[kv["key"]] = value
    return out


def _scalar(v: dict[str, Any]) -> Any:
    ((kind, value),) = v.items()
    return int(value) if kind == "intValue" else value


def _run_driver(endpoint: str, project: str, out: Path, *, mapping: bool = True) -> dict[str, Any]:
    """The demo agent (and a turn above a foreign chat span) in a subprocess, exporting
    OTLP/HTTP to `endpoint` with the OpenInference mapping on (or, `mapping=False`, off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
        OTEL_BSP_SCHEDULE_DELAY="200",
        AGENTSIGNALS_OPENINFERENCE="true" if mapping else "false",
    )
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), *([] if mapping else ["plain"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [[4, 4, "max_turns"], [5, 5, "submitted"]]
    sent_ids = [s["span_id"] for s in report["sent"]]
    assert len(sent_ids) == len(set(sent_ids)), "a span was handed to the OTLP exporter twice"
    # The unwrapped file exporter saw exactly the spans of the pipeline.
    report["stored"] = {s["spanId"]: s for s in _file_spans(out / "traces")}
    assert set(report["stored"]) == set(sent_ids)
    return report


def _wait_for_spans(phoenix: Phoenix, project: str, report: dict[str, Any]) -> list[Any]:
    """Ingestion is asynchronous: poll until every sent span is visible, then once more
    later (nothing else may arrive). Phoenix keeps one row per span id, so a duplicate shows
    as a count above the spans sent, never as two rows: that is checked at the exporter."""
    sent_ids = [s["span_id"] for s in report["sent"]]
    deadline = time.monotonic() + 120
    while True:
        spans = phoenix.spans(project)
        if len(spans) >= len(sent_ids) or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(2)
    spans = phoenix.spans(project)
    ids = [s["context"]["span_id"] for s in spans]
    assert len(ids) == len(set(ids)), "Phoenix holds a span twice"
    assert sorted(ids) == sorted(sent_ids), f"wiring={report['wiring']}"
    return spans


def _check_in_phoenix(phoenix: Phoenix, project: str, report: dict[str, Any]) -> None:
    sent = report["sent"]
    stored = report["stored"]
    spans = _wait_for_spans(phoenix, project, report)

    task = sc.AGENT_SIGNALS_TASK_ID
    demo = [s for s in spans if s["attributes"].get(task) == "textkit__textkit-1"]
    demo_trace = {s["context"]["trace_id"] for s in demo}
    assert len(demo_trace) == 1
    in_demo = [s for s in spans if s["context"]["trace_id"] in demo_trace]
    counts = Counter(
        (s["attributes"].get(sc.AGENT_SIGNALS_SPAN_TYPE), s["span_kind"]) for s in in_demo
    )
    # 1 trial, 2 attempts, 4 + 5 turns, 4 + 5 tool calls plus the bash run inside `submit`.
    assert counts == {
        ("trial", "CHAIN"): 1,
        ("attempt", "AGENT"): 2,
        ("turn", "LLM"): 9,
        ("tool", "TOOL"): 10,
    }

    # Our attributes arrive intact (Phoenix adds its own keys next to them).
    for span in spans:
        ours = {
            k: v
            for k, v in _json_attrs(stored[span["context"]["span_id"]]).items()
            if k.startswith(("agent_signals.", "gen_ai."))
        }
        got = span["attributes"]
        assert {k: got.get(k) for k in ours} == ours, span["name"]
    for tool in (s for s in in_demo if s["span_kind"] == "TOOL"):
        attrs = tool["attributes"]
        assert attrs["tool.name"] == attrs[sc.GEN_AI_TOOL_NAME]
        assert attrs["input.value"] == attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS]  # content captured
    attempts = sorted(
        (s for s in in_demo if s["span_kind"] == "AGENT"),
        key=lambda s: s["attributes"][sc.AGENT_SIGNALS_ATTEMPT_INDEX],
    )
    assert [a["attributes"]["agent.name"] for a in attempts] == ["demo-agent", "demo-agent"]
    assert all("session.id" not in a["attributes"] for a in attempts)  # no real session id

    # Tokens: every model call counted once per trace, in Phoenix's own roll-up.
    turns_input = sum(
        s["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS]
        for s in in_demo
        if s["attributes"].get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn"
    )
    traces = {t["trace_id"]: t for t in phoenix.traces(project)}
    assert traces[demo_trace.pop()]["token_count_prompt"] == turns_input

    # The turn above another instrumentor's chat span is a CHAIN, the chat span the LLM span,
    # and the call's 300 input tokens are counted once, not twice.
    [child_turn] = [
        s
        for s in spans
        if s["attributes"].get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn" and s not in in_demo
    ]
    [chat] = [s for s in spans if s["name"] == "chat gpt-5"]
    assert child_turn["span_kind"] == "CHAIN"
    assert chat["span_kind"] == "LLM" and chat["parent_id"] == child_turn["context"]["span_id"]
    [chat_sent] = [s for s in sent if s["name"] == "chat gpt-5"]
    assert not any(k.startswith(("openinference.", "llm.")) for k in chat_sent["attributes"])
    assert traces[chat["context"]["trace_id"]]["token_count_prompt"] == 300


@pytest.mark.skipif(shutil.which("git") is None, reason="the demo needs git")
def test_demo_in_phoenix(phoenix: Phoenix, tmp_path: Path) -> None:
    project = f"agentsignals-{uuid.uuid4().hex[:8]}"
    report = _run_driver(phoenix.url, project, tmp_path / "out")
    _check_in_phoenix(phoenix, project, report)


@pytest.mark.skipif(shutil.which("git") is None, reason="the demo needs git")
def test_without_the_mapping_phoenix_misreads_the_spans(phoenix: Phoenix, tmp_path: Path) -> None:
    """The negative control: Phoenix's own gen_ai.* inference cannot tell what a trial is, and
    takes a turn with a model for an LLM span even with the real model-call span below it, so
    that call's tokens count twice."""
    project = f"agentsignals-plain-{uuid.uuid4().hex[:8]}"
    report = _run_driver(phoenix.url, project, tmp_path / "out", mapping=False)
    assert report["wiring"] == "none"
    spans = _wait_for_spans(phoenix, project, report)
    assert not any(k.startswith("openinference.") for s in report["sent"] for k in s["attributes"])
    kinds = {s["name"]: s["span_kind"] for s in spans}
    assert kinds["trial textkit__textkit-1"] == "UNKNOWN"
    [chat] = [s for s in spans if s["name"] == "chat gpt-5"]
    traces = {t["trace_id"]: t for t in phoenix.traces(project)}
    assert traces[chat["context"]["trace_id"]]["token_count_prompt"] == 600  # 300, twice


@pytest.mark.skipif(shutil.which("git") is None, reason="the demo needs git")
def test_demo_through_the_collector_in_phoenix(phoenix: Phoenix, tmp_path: Path) -> None:
    """demo -> `agentsignals collect` (records, then forwards every span unchanged) -> Phoenix."""
    pytest.importorskip("agentsignals._collector.service", reason="no agentsignals collect yet")
    port = _free_port()
    collector_dir = tmp_path / "collector"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTSIGNALS_"))}
    log = (tmp_path / "collector.log").open("wb")
    collector = subprocess.Popen(
        [
            sys.executable, "-m", "agentsignals._collector",
            "--http-port", str(port), "--grpc-port", "0",
            "--output-dir", str(collector_dir), "--fsync", "never",
            "--forward", phoenix.url,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert collector.poll() is None, (tmp_path / "collector.log").read_text()[-3000:]
            try:
                if _get(f"{url}/health", timeout=2)["status"] == "ok":
                    break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, "the collector did not come up"
            time.sleep(0.2)
        project = f"agentsignals-via-collector-{uuid.uuid4().hex[:8]}"
        report = _run_driver(url, project, tmp_path / "out")
    finally:
        if collector.poll() is None:
            collector.send_signal(signal.SIGTERM)  # drains: records written, spans forwarded
        code = collector.wait(timeout=60)
        log.close()
    output = (tmp_path / "collector.log").read_text()
    assert code == 0, output[-3000:]
    _check_in_phoenix(phoenix, project, report)
    # The collector wrote the same attempts and trials as feature records.
    attempts = [
        json.loads(line)
        for line in (collector_dir / "features" / "attempts.jsonl").read_text().splitlines()
    ]
    trials = [
        json.loads(line)
        for line in (collector_dir / "features" / "trials.jsonl").read_text().splitlines()
    ]
    demo = sorted(
        (a for a in attempts if a["task_id"] == "textkit__textkit-1"),
        key=lambda a: a["attempt_index"],
    )
    assert [(a["attempt_index"], a["complete"]) for a in demo] == [(0, True), (1, True)]
    tool_calls = [a["behavior"]["tool_call_count"] for a in demo]
    assert tool_calls == [calls for _, calls, _ in report["attempts"]]
    assert {t["task_id"] for t in trials} == {"textkit__textkit-1", "child-chat-1"}


# The host set Phoenix up itself (`phoenix.otel.register()`, Phoenix's documented way), then
# calls agentsignals.configure(): Phoenix's own exporter must keep receiving everything.
REGISTER_DRIVER = r"""
import json, sys
from phoenix.otel import register
endpoint, project, out = sys.argv[1:4]
provider = register(project_name=project, endpoint=endpoint, batch=False, verbose=False,
                    set_global_tracer_provider=True)
host = provider.get_tracer("host-app")
with host.start_as_current_span("before configure"):
    pass
import agentsignals
agentsignals.configure(output_dir=out, batch=False)
with host.start_as_current_span("host request"):
    with agentsignals.trial("phx-register-1"), agentsignals.attempt(), agentsignals.turn():
        pass
agentsignals.force_flush()
provider.force_flush()
processors = [type(p).__name__ for p in provider._active_span_processor._span_processors]
print(json.dumps({"processors": processors}))
"""


def test_configure_after_phoenix_register_keeps_phoenix_exporter(
    phoenix: Phoenix, tmp_path: Path
) -> None:
    pytest.importorskip("phoenix.otel", reason="arize-phoenix-otel is in the dev extra")
    project = "register-then-configure"
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", REGISTER_DRIVER, f"{phoenix.url}/v1/traces", project, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["processors"][-1] == "_Pipeline" and len(report["processors"]) == 2
    expected = {"before configure", "host request", "trial phx-register-1", "invoke_agent"}
    deadline = time.monotonic() + 120
    names: set[str] = set()
    while time.monotonic() < deadline:
        names = {s["name"] for s in phoenix.spans(project)}
        if expected | {"turn 0"} <= names:
            break
        time.sleep(1)
    assert expected | {"turn 0"} <= names
    # and the embedded store got ours, in the same trace as the host's span
    stored = _file_spans(out / "traces")
    assert {s["name"] for s in stored} >= {"trial phx-register-1", "host request"}
    assert len({s["traceId"] for s in stored if s["name"] != "before configure"}) == 1


JUDGE_RUBRIC = """\
id: ran_tests
version: "1"
title: Ran tests
procedure: |
  Label match when the agent runs the tests at least once.
fields:
  match: {type: boolean}
"""


def test_judge_results_arrive_in_phoenix(
    phoenix: Phoenix, shared_data: Path, tmp_path: Path
) -> None:
    """A real session imported with --content into Phoenix, judged, and the judge's span sent
    after it: Phoenix shows it under the attempt, in the same project, with its
    gen_ai.evaluation.result events."""
    from agentsignals._import.run import post_otlp
    from agentsignals._judge.run import read_spans
    from agentsignals._spans.encode import encode_otlp_protobuf
    from judge_support import LoopbackServer, run_cli, schema_answer

    project = f"agentsignals-judge-{uuid.uuid4().hex[:8]}"
    source = shared_data / "claude-code" / "short.jsonl"
    tag = ["--tag", f"openinference.project.name={project}", "--content", "--no-progress"]
    sent = run_cli("import", str(source), *tag, "--endpoint", phoenix.url)
    assert sent.returncode == 0, sent.stderr
    traces = tmp_path / "traces.jsonl"
    done = run_cli("import", str(source), *tag, "-o", str(traces))
    assert done.returncode == 0, done.stderr
    rubric = tmp_path / "ran_tests.yaml"
    rubric.write_text(JUDGE_RUBRIC)
    # The judge's model: a real HTTP server answering schema-valid JSON (what is checked here
    # is where the verdict goes, not what it says).
    with LoopbackServer(default=schema_answer) as model:
        done = run_cli(
            "judge", "run", str(traces), "--rubric", str(rubric), "--model", "m",
            "--base-url", f"{model.url}/v1", "--context-tokens", "8000", "--no-cache",
            "--no-progress", "-o", str(tmp_path / "judged.jsonl"),
            "--spans-out", str(tmp_path / "judge"),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    judge_spans, _ = read_spans(tmp_path / "judge")
    (judge_span,) = judge_spans
    assert judge_span.resource["openinference.project.name"] == project
    post_otlp(phoenix.url, encode_otlp_protobuf(judge_spans, schema_url=sc.SCHEMA_URL))

    deadline = time.monotonic() + 120
    while True:
        spans = phoenix.spans(project)
        found = [s for s in spans if s["name"] == "judge ran_tests"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(1)
    (shown,) = found
    attempt = next(s for s in spans if s["attributes"].get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt")
    assert shown["context"]["trace_id"] == attempt["context"]["trace_id"]
    assert shown["parent_id"] == attempt["context"]["span_id"] == judge_span.parent_span_id
    (event,) = shown["events"]
    assert event["name"] == "gen_ai.evaluation.result"
    assert event["attributes"][sc.GEN_AI_EVALUATION_NAME] == "judge.ran_tests.match"
    assert event["attributes"][sc.GEN_AI_EVALUATION_SCORE_LABEL] == "true"
    assert event["attributes"][sc.GEN_AI_EVALUATION_SCORE_VALUE] == 1.0
    assert event["attributes"][sc.GEN_AI_EVALUATION_EXPLANATION] == "See [S1]."
    # The turn it judged carries the imported content Phoenix shows as the call's output.
    turn = next(s for s in spans if s["attributes"].get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn")
    assert "Let me check the project structure" in turn["attributes"][sc.GEN_AI_OUTPUT_MESSAGES]
