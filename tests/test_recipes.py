"""The deployable recipes in exporters/ and collectors/ say what they do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentsignals
from agentsignals._export.file import iter_export_requests

ROOT = Path(__file__).resolve().parents[1]


def _load_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


@pytest.mark.usefixtures("fresh_otel")
@pytest.mark.parametrize(
    ("recipe", "exporters", "protocol", "endpoint"),
    [
        (
            "exporters/jaeger/agentsignals.env",
            ("otlp", "file"),
            "http/protobuf",
            "http://localhost:4318/v1/traces",
        ),
        ("exporters/otlp-grpc.env", ("otlp", "file"), "grpc", "localhost:4317"),
        ("exporters/console.env", ("console",), "http/protobuf", None),
    ],
)
def test_exporter_recipes_resolve_as_documented(
    monkeypatch: pytest.MonkeyPatch,
    recipe: str,
    exporters: tuple[str, ...],
    protocol: str,
    endpoint: str | None,
) -> None:
    for key, value in _load_env(ROOT / recipe).items():
        monkeypatch.setenv(key, value)
    config = agentsignals.configure()
    assert config.exporters == exporters
    assert config.protocol == protocol
    if endpoint is not None:
        from agentsignals import _config

        processors = _config._active.pipeline.processors  # type: ignore[union-attr]
        exporters = [p.span_exporter.inner for p in processors]  # inside the guard
        assert [e._endpoint for e in exporters if hasattr(e, "_endpoint")] == [endpoint]


def test_jaeger_compose_exposes_what_the_recipe_uses() -> None:
    compose = yaml.safe_load((ROOT / "exporters/jaeger/docker-compose.yaml").read_text())
    ports = {p.split(":")[0] for p in compose["services"]["jaeger"]["ports"]}
    env = _load_env(ROOT / "exporters/jaeger/agentsignals.env")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].rsplit(":", 1)[1] in ports
    assert {"4317", "4318", "16686"} <= ports
    # Jaeger v1 (all-in-one) is end of life; the recipe pins a v2 release.
    image = compose["services"]["jaeger"]["image"]
    assert image.rsplit("/", 1)[1].startswith("jaeger:2."), image


def test_collector_pipeline_is_well_formed() -> None:
    config = yaml.safe_load((ROOT / "collectors/otelcol-agentsignals.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    for section, names in (
        ("receivers", pipeline["receivers"]),
        ("processors", pipeline["processors"]),
        ("exporters", pipeline["exporters"]),
    ):
        for name in names:
            assert name in config[section], f"{section} {name} used but not defined"
    assert pipeline["processors"][0] == "memory_limiter"  # first, as the Collector requires
    file_exporter = config["exporters"]["file/agentsignals"]
    assert file_exporter["format"] == "json"
    assert file_exporter["path"].startswith("./agentsignals-output/traces/")
    assert file_exporter["path"].endswith(".jsonl")  # where the readers look
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        assert protocol["endpoint"].startswith("127.0.0.1:")  # loopback unless told otherwise


def test_a_collector_format_line_reads_like_our_own(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("x").start_as_current_span("execute_tool bash") as span:
        span.set_attribute("agent_signals.tool.category", "shell")
    # The Collector's file exporter writes protojson with hex ids, one request per line.
    message = json_format.MessageToDict(encode_spans(exporter.get_finished_spans()))
    for rs in message["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                import base64

                for key in ("traceId", "spanId"):
                    s[key] = base64.b64decode(s[key]).hex()
    import json

    (tmp_path / "collector.jsonl").write_text(json.dumps(message) + "\n")
    [request] = list(iter_export_requests(tmp_path))
    span_json = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span_json["name"] == "execute_tool bash"
    assert len(span_json["traceId"]) == 32
