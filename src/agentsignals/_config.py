"""`configure()`, `force_flush()`, `shutdown()`: wiring spans to exporters, the OpenTelemetry way.

One idempotent call. It honours the standard OTEL_* variables, adds our processors to a
TracerProvider the host already installed instead of replacing it, and otherwise installs one.
The SDK, exporters and pydantic are imported here, on first `configure()`, never on
`import agentsignals`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentsignals._instrument import runtime
from agentsignals._instrument.runtime import RUNTIME, Settings, internal_error, logger

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from agentsignals._settings import Config

_lock = threading.RLock()
_active: _Active | None = None


class _Active:
    """What the last successful configure() installed."""

    def __init__(
        self, config: Config, provider: Any, pipeline: Pipeline, owns_provider: bool
    ) -> None:
        self.config = config
        self.provider = provider
        self.pipeline = pipeline
        self.owns_provider = owns_provider


def _make_pipeline_class() -> type:
    from opentelemetry import context as otel_context
    from opentelemetry.sdk.trace import SpanProcessor

    from agentsignals._instrument import deferred, direct
    from agentsignals._instrument.scope import current_scope

    handoff = deferred.HANDOFF  # tool spans about to end with reading pending (deferred.py)

    class _Pipeline(SpanProcessor):
        """Our one processor on the provider: stamps identity on other instrumentors' spans
        and fans out to our export processors, which configure() can swap later."""

        agentsignals_pipeline = True  # (direct.py: reads no attributes at start)

        def __init__(self) -> None:
            self.processors: tuple[SpanProcessor, ...] = ()
            # self.processors when last checked, and whether all of them complete a span whose
            # command or output is still to be read before reading it (see `deferred`).
            self._checked: tuple[SpanProcessor, ...] | None = None
            self._all_resolve = False
            # At most one flush or shutdown runs at a time; a caller whose deadline passed
            # leaves it running (bounded by the exporters' own deadlines) and returns.
            self._pending: threading.Thread | None = None
            self._pending_lock = threading.Lock()

        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            try:
                scope_info = span.instrumentation_scope
                if scope_info is None or scope_info.name != "agentsignals":
                    ctx = (
                        parent_context if parent_context is not None else otel_context.get_current()
                    )
                    identity = current_scope(ctx).identity_for_tool()
                    if identity:
                        direct.set_attributes(span, identity)
            except Exception:
                internal_error("could not stamp identity on a span")
            for processor in self.processors:
                try:
                    processor.on_start(span, parent_context=parent_context)
                except Exception:
                    internal_error("a span processor failed on start")

        def on_end(self, span: ReadableSpan) -> None:
            try:
                pending = deferred.take(span) if handoff else None
                if pending is not None:
                    processors = self.processors
                    if processors is not self._checked:
                        self._all_resolve = all(
                            getattr(p, "agentsignals_resolves_pending", False) for p in processors
                        )
                        self._checked = processors
                    if not self._all_resolve:
                        pending.resolve(span)  # one of them reads it as it is: complete it now
            except Exception:
                internal_error("could not complete a tool span")
            for processor in self.processors:
                try:
                    processor.on_end(span)
                except Exception:
                    internal_error("a span processor failed on end")

        def shutdown(self) -> None:
            processors, self.processors = self.processors, ()

            def run() -> bool:
                for processor in processors:
                    try:
                        processor.shutdown()
                    except Exception:
                        internal_error("a span processor failed to shut down")
                return True

            from agentsignals._export.guard import export_timeout_s

            self._bounded(run, export_timeout_s(), "shut down")

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            processors = self.processors

            def run() -> bool:
                ok = True
                for processor in processors:
                    try:
                        ok = bool(processor.force_flush(timeout_millis)) and ok
                    except Exception:
                        internal_error("a span processor failed to flush")
                        ok = False
                return ok

            return self._bounded(run, timeout_millis / 1000.0, "flush")

        def _bounded(self, fn: Callable[[], bool], timeout_s: float, what: str) -> bool:
            """Run `fn` on a helper thread and wait at most `timeout_s` (less at exit): an
            exporter that hangs must not hang the agent, its exit or its SIGTERM."""
            from agentsignals._export.guard import remaining

            result: list[bool] = []

            def target() -> None:
                try:
                    result.append(fn())
                except Exception:
                    internal_error(f"agentsignals could not {what}")
                    result.append(False)

            with self._pending_lock:
                pending = self._pending
                if pending is not None and pending.is_alive():
                    # An earlier flush is still stuck: wait for it rather than pile up threads.
                    worker = None
                else:
                    worker = threading.Thread(
                        target=target, name=f"agentsignals-{what}", daemon=True
                    )
                    self._pending = worker
            if worker is None:
                assert pending is not None
                pending.join(remaining(max(0.0, timeout_s)))
                return False
            try:
                worker.start()
            except RuntimeError:  # late in interpreter shutdown: no new threads
                target()
                return bool(result and result[0])
            worker.join(remaining(max(0.0, timeout_s)))
            if worker.is_alive():
                logger.warning(
                    "agentsignals: could not %s within %.1f s; an exporter is stuck "
                    "(the agent goes on; see OTEL_BSP_EXPORT_TIMEOUT)",
                    what,
                    timeout_s,
                )
                return False
            return bool(result and result[0])

    return _Pipeline


Pipeline = Any  # the class is built lazily so the SDK is not imported with agentsignals
_pipeline_class: type | None = None


def new_pipeline() -> Pipeline:
    global _pipeline_class
    if _pipeline_class is None:
        _pipeline_class = _make_pipeline_class()
    return _pipeline_class()


def configure(
    *,
    service_name: str | None = None,
    exporters: str | SpanExporter | Sequence[str | SpanExporter] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    protocol: Literal["grpc", "http/protobuf"] | None = None,
    headers: Mapping[str, str] | None = None,
    capture_content: bool | None = None,
    max_value_bytes: int = 16 * 1024,
    max_span_bytes: int = 64 * 1024,
    redact: Callable[[str, str], str | None] | None = None,
    propagate_to_subprocesses: bool = False,
    tracer_provider: TracerProvider | None = None,
    batch: bool = True,
    features: bool = False,
) -> Config:
    """Send agentsignals spans somewhere. Safe to call more than once.

    With no arguments and no OTEL_* variables, spans land as OTLP/JSON lines in
    `./agentsignals-output/traces/` (the embedded default). Setting OTEL_EXPORTER_OTLP_ENDPOINT
    (or `endpoint=`) sends them over OTLP instead; OTEL_TRACES_EXPORTER picks exporters by name
    (`otlp`, `console`, `file`, `none`). OTEL_SDK_DISABLED=true turns everything off.

    Args:
        service_name: `service.name` of the resource when we install the provider.
        exporters: exporter names (`file`, `otlp`, `console`, `none`) or SpanExporter objects.
        output_dir: root folder of the embedded store (default `./agentsignals-output`, or
            AGENTSIGNALS_OUTPUT_DIR).
        endpoint, protocol, headers: OTLP settings; default to the OTEL_EXPORTER_OTLP_* ones.
        capture_content: record tool arguments/results, reasoning and messages (off by default;
            also OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT).
        max_value_bytes, max_span_bytes: byte budget for captured values.
        redact: hook `(key, text) -> text | None` run on captured values after the built-in
            secret patterns; None drops the value.
        propagate_to_subprocesses: put TRACEPARENT/TRACESTATE/BAGGAGE into every subprocess.
        tracer_provider: use this SDK provider instead of the global one.
        batch: export in a background thread (BatchSpanProcessor); False exports inline.
        features: derive a feature record per attempt and per trial in this process and
            append them to `<output_dir>/features/attempts.jsonl` and `trials.jsonl`.

    Returns:
        The resolved configuration. Invalid arguments raise ValueError here, at set-up; invalid
        OTEL_* values are logged and ignored.
    """
    from agentsignals._settings import Config

    global _active
    config = Config.resolve(
        service_name=service_name,
        exporters=exporters,
        output_dir=output_dir,
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        capture_content=capture_content,
        max_value_bytes=max_value_bytes,
        max_span_bytes=max_span_bytes,
        redact=redact,
        propagate_to_subprocesses=propagate_to_subprocesses,
        tracer_provider=tracer_provider,
        batch=batch,
        features=features,
    )
    with _lock:
        if _active is not None and _active.config == config:
            return _active.config
        try:
            _apply(config)
        except Exception:
            internal_error("configure failed; spans will not be exported")
    return config


def _apply(config: Config) -> None:
    global _active
    capture, to_span, to_events = config.capture
    RUNTIME.settings = Settings(
        capture_content=capture,
        capture_to_span=to_span,
        capture_to_events=to_events,
        max_value_bytes=config.max_value_bytes,
        max_span_bytes=config.max_span_bytes,
        redact=config.redact,
        workspace_exclude=(os.path.abspath(config.output_dir),),
    )
    from agentsignals._instrument import propagation

    if config.propagate_to_subprocesses:
        propagation.patch_subprocess()
    else:
        propagation.unpatch_subprocess()

    if not config.enabled:
        _deactivate()
        runtime.reset_tracer()
        return

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    provider: Any = config.tracer_provider
    owns = False
    # `front` is what spans are started on (the host's global provider, which may be a proxy
    # such as Logfire's); `provider` is the SDK provider behind it that holds processors.
    front: Any = provider
    if provider is None:
        front = trace.get_tracer_provider()
        provider = sdk_provider_behind(front)
        if provider is None:
            if _active is not None and _active.owns_provider:
                provider = front = _active.provider
                owns = True
            elif type(front) is trace.ProxyTracerProvider:
                # The API's placeholder: nobody installed a provider, so we do, once.
                provider = front = _new_provider(config)
                trace.set_tracer_provider(provider)
                owns = trace.get_tracer_provider() is provider
            else:
                provider = front
                logger.warning(
                    "agentsignals: the installed TracerProvider %s is not an SDK provider; "
                    "spans go to it, but agentsignals cannot add its exporters",
                    type(front).__name__,
                )
        elif _active is not None and _active.provider is provider:
            owns = _active.owns_provider
    elif not isinstance(provider, SdkTracerProvider):
        provider = sdk_provider_behind(front) or front

    pipeline = getattr(provider, "_agentsignals_pipeline", None)
    if pipeline is None and isinstance(provider, SdkTracerProvider):
        pipeline = new_pipeline()
        add_processor(provider, pipeline)
        setattr(provider, "_agentsignals_pipeline", pipeline)  # noqa: B010 - marks our processor
    if _active is not None and _active.pipeline is not pipeline:
        _deactivate()
    if pipeline is not None:
        old = pipeline.processors
        pipeline.processors = tuple(_processors(config))
        from agentsignals._instrument import direct

        direct.forget()
        for processor in old:
            try:
                processor.shutdown()
            except Exception:
                internal_error("could not shut down a replaced processor")
    RUNTIME.tracer = _tracer_from(front, provider)
    _active = _Active(config, provider, pipeline, owns)

    from agentsignals._export.file import install_exit_flush

    install_exit_flush(force_flush)


def sdk_provider_behind(provider: Any) -> Any:
    """The SDK TracerProvider that `provider` is or wraps (Logfire's ProxyTracerProvider and
    similar proxies keep it in an attribute), or None (OTel's own placeholder proxy, a no-op or
    a provider that is no SDK provider)."""
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    for _ in range(8):
        if isinstance(provider, SdkTracerProvider):
            return provider
        if provider is None:
            return None
        for attr in ("provider", "_provider", "_tracer_provider", "_delegate", "_real_provider"):
            try:
                inner = getattr(provider, attr, None)
            except Exception:
                inner = None
            if inner is not None and inner is not provider and hasattr(inner, "get_tracer"):
                provider = inner
                break
        else:
            return None
    return None


def add_processor(provider: Any, processor: Any) -> None:
    """Add `processor` next to the host's processors, never in place of one: Phoenix's
    `register()` provider replaces its own exporter unless told not to."""
    import inspect

    try:
        params = inspect.signature(provider.add_span_processor).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "replace_default_processor" in params:
        provider.add_span_processor(processor, replace_default_processor=False)
    else:
        provider.add_span_processor(processor)


def _tracer_from(front: Any, provider: Any) -> Any:
    """Our tracer: from the host's global provider when it is a proxy over `provider` (so the
    host's own span handling, Logfire's for one, sees our spans as its own), else `provider`."""
    source = front if front is not provider and hasattr(front, "get_tracer") else provider
    try:
        return source.get_tracer("agentsignals", runtime.VERSION, schema_url=_schema_url())
    except Exception:
        internal_error("could not get a tracer from the host's provider")
        return provider.get_tracer("agentsignals", runtime.VERSION, schema_url=_schema_url())


def _schema_url() -> str:
    from agentsignals import semconv

    return semconv.SCHEMA_URL


def _new_provider(config: Config) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    attributes = {"service.name": config.service_name} if config.service_name else {}
    return SdkTracerProvider(resource=Resource.create(attributes))


def _processors(config: Config) -> list[SpanProcessor]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from agentsignals._export import openinference
    from agentsignals._export.guard import GuardedExporter

    # AGENTSIGNALS_OPENINFERENCE=true: also OpenInference span kinds, for viewers like Phoenix.
    raw = _exporters(config)
    local = {id(e) for e in raw if _is_local(e)}
    lead, exporters = openinference.configure_hook(raw)
    processors: list[SpanProcessor] = list(lead)
    for exporter in exporters:
        inner = getattr(exporter, "inner", exporter)  # the OpenInference wrapper keeps it here
        # Every exporter of ours gets secret scrubbing; all but our local file and console
        # writers also get a deadline (a network or third-party exporter may hang).
        guarded = GuardedExporter(
            exporter, bounded=id(exporter) not in local and id(inner) not in local
        )
        processor: SpanProcessor = (
            BatchSpanProcessor(guarded) if config.batch else SimpleSpanProcessor(guarded)
        )
        # The guard completes spans whose command or output is still to be read (deferred.py).
        processor.agentsignals_resolves_pending = True  # type: ignore[attr-defined]
        processors.append(processor)
    if config.features:
        from agentsignals._features.processor import FeatureSpanProcessor
        from agentsignals._features.store import JsonLinesSink

        processors.append(
            FeatureSpanProcessor(JsonLinesSink(config.features_dir), batch=config.batch)
        )
    return processors


def _is_local(exporter: Any) -> bool:
    from agentsignals._export.console import ConsoleSpanExporter
    from agentsignals._export.file import FileSpanExporter

    return isinstance(exporter, FileSpanExporter | ConsoleSpanExporter)


def _exporters(config: Config) -> list[SpanExporter]:
    result: list[SpanExporter] = []
    for item in config.exporters:
        if not isinstance(item, str):
            result.append(item)
        elif item == "file":
            from agentsignals._export.file import FileSpanExporter

            result.append(
                FileSpanExporter(Path(config.output_dir) / "traces", output_root=config.output_dir)
            )
        elif item == "console":
            from agentsignals._export.console import ConsoleSpanExporter

            result.append(ConsoleSpanExporter())
        elif item == "otlp":
            result.append(_otlp_exporter(config))
    return result


def _otlp_exporter(config: Config) -> SpanExporter:
    kwargs: dict[str, Any] = {}
    if config.headers is not None:
        kwargs["headers"] = dict(config.headers)
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        if config.endpoint:
            kwargs["endpoint"] = config.endpoint
        return Grpc(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    if config.endpoint:
        endpoint = config.endpoint.rstrip("/")
        kwargs["endpoint"] = (
            endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"
        )
    return Http(**kwargs)


def _deactivate() -> None:
    global _active
    if _active is None:
        return
    active, _active = _active, None
    if active.pipeline is not None:
        active.pipeline.shutdown()
    if active.owns_provider:
        # A provider we installed stays global (OTel forbids replacing it); its processors are
        # gone, so later spans go nowhere until configure() runs again.
        pass


def force_flush(timeout_millis: int = 30_000) -> bool:
    """Export every finished span now; True when all exporters confirmed within
    `timeout_millis`. Never waits longer, whatever an exporter does."""
    from agentsignals._instrument.args import as_int

    timeout = as_int(timeout_millis, "force_flush(timeout_millis=)", minimum=0)
    if timeout is None:
        timeout = 30_000
    with _lock:
        active = _active
    if active is None or active.pipeline is None:
        return True
    try:
        return bool(active.pipeline.force_flush(timeout))
    except Exception:
        internal_error("force_flush failed")
        return False


def shutdown() -> None:
    """Flush and stop our exporters. configure() may be called again afterwards."""
    with _lock:
        try:
            force_flush()
            _deactivate()
            runtime.reset_tracer()
        except Exception:
            internal_error("shutdown failed")


def active_config() -> Config | None:
    """The configuration in force, if configure() ran."""
    return _active.config if _active is not None else None
