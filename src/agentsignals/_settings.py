"""The resolved configuration: arguments first, then OTEL_* variables, then defaults.

Validated with pydantic so a wrong argument fails at set-up with a message naming it; a wrong
environment value is logged and ignored, because an agent must not crash over a typo in a
variable it may not even know about.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentsignals._instrument.runtime import logger

# Environment variables of our own (the standard OTEL_* ones are read where OTel reads them).
OUTPUT_DIR_ENV = "AGENTSIGNALS_OUTPUT_DIR"
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_OUTPUT_DIR = "agentsignals-output"

EXPORTER_NAMES = ("file", "otlp", "console", "none")
PROTOCOLS = ("grpc", "http/protobuf")


class Config(BaseModel):
    """What `agentsignals.configure()` resolved and installed."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    enabled: bool = True
    service_name: str | None = None
    exporters: tuple[Any, ...] = ("file",)
    output_dir: Path = Path("agentsignals-output")
    endpoint: str | None = None
    protocol: str = "http/protobuf"
    headers: tuple[tuple[str, str], ...] | None = None
    capture: tuple[bool, bool, bool] = (False, True, False)
    max_value_bytes: int = Field(16 * 1024, gt=64)
    max_span_bytes: int = Field(64 * 1024, gt=64)
    redact: Callable[[str, str], str | None] | None = None
    propagate_to_subprocesses: bool = False
    tracer_provider: Any = None
    batch: bool = True
    features: bool = False

    @field_validator("exporters")
    @classmethod
    def _known_exporters(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        for item in value:
            if isinstance(item, str) and item not in EXPORTER_NAMES:
                raise ValueError(f"unknown exporter {item!r}; use one of {EXPORTER_NAMES}")
            if not isinstance(item, str) and not callable(getattr(item, "export", None)):
                raise ValueError(f"{item!r} is not a SpanExporter")
        return tuple(x for x in value if x != "none")

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise ValueError(f"unsupported OTLP protocol {value!r}; use one of {PROTOCOLS}")
        return value

    @property
    def traces_dir(self) -> Path:
        """Where the embedded file exporter writes OTLP/JSON lines."""
        return self.output_dir / "traces"

    @property
    def features_dir(self) -> Path:
        """Where the in-process feature processor writes records (`features=True`)."""
        return self.output_dir / "features"

    @classmethod
    def resolve(
        cls,
        *,
        service_name: str | None,
        exporters: Any,
        output_dir: str | os.PathLike[str] | None,
        endpoint: str | None,
        protocol: str | None,
        headers: Mapping[str, str] | None,
        capture_content: bool | None,
        max_value_bytes: int,
        max_span_bytes: int,
        redact: Callable[[str, str], str | None] | None,
        propagate_to_subprocesses: bool,
        tracer_provider: Any,
        batch: bool,
        features: bool = False,
    ) -> Config:
        env = os.environ
        enabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
        if exporters is None:
            names = _exporters_from_env(endpoint)
        elif isinstance(exporters, str) or not isinstance(exporters, Sequence):
            names = (exporters,)
        else:
            names = tuple(exporters)
        if protocol is None:
            protocol = _protocol_from_env()
        root = Path(output_dir or env.get(OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR).absolute()
        try:
            return cls(
                enabled=enabled,
                service_name=service_name,
                exporters=names,
                output_dir=root,
                endpoint=endpoint,
                protocol=protocol,
                headers=tuple(sorted(headers.items())) if headers is not None else None,
                capture=capture_mode(capture_content),
                max_value_bytes=max_value_bytes,
                max_span_bytes=max_span_bytes,
                redact=redact,
                propagate_to_subprocesses=propagate_to_subprocesses,
                tracer_provider=tracer_provider,
                batch=batch,
                features=features,
            )
        except ValidationError as exc:
            raise ValueError(f"agentsignals.configure: {exc}") from None


def _exporters_from_env(endpoint: str | None) -> tuple[str, ...]:
    raw = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if raw:
        names = []
        for name in (part.strip().lower() for part in raw.split(",")):
            if name in EXPORTER_NAMES:
                names.append(name)
            elif name:
                logger.warning("agentsignals: ignoring unsupported OTEL_TRACES_EXPORTER=%r", name)
        if names:
            return tuple(names)
    if endpoint or any(
        os.environ.get(v)
        for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        # The embedded store stays on beside OTLP, so a backend outage loses no trace and
        # features can still be derived locally; OTEL_TRACES_EXPORTER=otlp opts out.
        return ("otlp", "file")
    return ("file",)


def _protocol_from_env() -> str:
    raw = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if raw not in PROTOCOLS:
        logger.warning(
            "agentsignals: OTLP protocol %r is not supported by the Python exporters; "
            "using http/protobuf",
            raw,
        )
        return "http/protobuf"
    return raw


def capture_mode(explicit: bool | None) -> tuple[bool, bool, bool]:
    """(capture, to_span, to_events) from the argument and the GenAI capture variable."""
    raw = os.environ.get(CAPTURE_ENV, "").strip()
    mode = raw.upper()
    env_modes = {
        "SPAN_ONLY": (True, True, False),
        "EVENT_ONLY": (True, False, True),
        "SPAN_AND_EVENT": (True, True, True),
        "TRUE": (True, True, False),
        "1": (True, True, False),
        "NO_CONTENT": (False, True, False),
        "FALSE": (False, True, False),
        "0": (False, True, False),
        "": (False, True, False),
    }
    from_env = env_modes.get(mode)
    if from_env is None:
        logger.warning("agentsignals: ignoring unknown %s=%r", CAPTURE_ENV, raw)
        from_env = (False, True, False)
    if explicit is None:
        return from_env
    if not explicit:
        return (False, True, False)
    return (True, from_env[1], from_env[2]) if from_env[0] else (True, True, False)
