"""Collector settings: one flat set of keys shared by the YAML file and the command line.

Every key of the YAML file is also a flag (``http_port`` <-> ``--http-port``); flags given on
the command line override the file. Unknown keys and values of the wrong type are errors at
start-up, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

FsyncMode = Literal["always", "group", "never"]
FSYNC_MODES: Final = ("always", "group", "never")
COMPRESSIONS: Final = ("none", "gzip")
TOKEN_ENV: Final = "AGENTSIGNALS_COLLECTOR_TOKEN"


# Processes of `--workers` at most (each holds sockets, a spool and an assembler).
MAX_WORKERS: Final = 256


@dataclass
class CollectorConfig:
    """Everything the collector needs; defaults are safe for a single machine."""

    # Receivers. Loopback unless told otherwise; grpc_port 0 disables gRPC, http_port 0 picks a
    # free port (the bound one is Collector.http_port).
    host: str = "127.0.0.1"
    http_port: int = 4318
    grpc_port: int = 4317
    # <output_dir>/features/ (attempts.jsonl, trials.jsonl) and <output_dir>/spool/.
    output_dir: Path = field(default_factory=lambda: Path("agentsignals-output"))
    # Downstream OTLP/HTTP traces endpoint (".../v1/traces" is added to a bare base URL).
    forward: str | None = None
    forward_headers: dict[str, str] = field(default_factory=dict)
    forward_compression: str = "none"
    forward_timeout_s: float = 10.0
    forward_max_batch_bytes: int = 4 << 20
    forward_max_backoff_s: float = 30.0
    # Bearer token required on OTLP requests and /metrics (also AGENTSIGNALS_COLLECTOR_TOKEN).
    token: str | None = None
    # Request hardening.
    max_request_bytes: int = 8 << 20
    max_connections: int = 256
    read_timeout_s: float = 30.0
    # The request line and headers must arrive within this (from a new connection's accept,
    # or a keep-alive request's first byte): trickling clients (slowloris) are cut off.
    header_timeout_s: float = 10.0
    retry_after_s: int = 1
    # Spans decoded and waiting for the processing thread; beyond it requests get 429.
    queue_size: int = 20_000
    grpc_workers: int = 8
    # Spool durability: "group" (default) shares one fdatasync between concurrent requests,
    # "always" syncs each request on its own, "never" leaves it to the OS (survives a killed
    # process, not a power cut).
    fsync: str = "group"
    segment_bytes: int = 64 << 20
    segment_roll_s: float = 30.0
    # The feature files are fsynced (and the spool told which records are written) at most
    # this often, covering every record written since the last time: a crash in between
    # replays those records' spans from the spool, so nothing is lost. 0: after every batch.
    features_sync_s: float = 0.25
    # Disk: the spool is kept under this size. Over it, the attempts and trials pinning the
    # oldest segment are written early as incomplete records (complete: false; their later
    # spans make a new revision) so it can be deleted; what only the forwarder still needs
    # stays, and requests get 429 until it is forwarded.
    max_spool_bytes: int = 1 << 30
    # Attempt assembly.
    grace_s: float = 2.0
    idle_timeout_s: float = 1800.0
    max_age_s: float = 6 * 3600.0
    max_in_flight: int = 10_000
    # Memory: spans held by open attempts (~1.5 kB each). Over it, the least recently seen
    # attempts are written as incomplete records (complete: false), as max_in_flight does.
    max_held_spans: int = 500_000
    # Memory: trials whose attempts are written but whose trial span has not arrived (each
    # holds its attempt records). Over it, the oldest is written as an incomplete trial record;
    # its trial span arriving later makes the next revision.
    max_pending_trials: int = 2_000
    tick_s: float = 0.5
    # Processes serving the same ports (SO_REUSEPORT), each with its own spool and feature
    # files under <output_dir>/worker-<i>/; spans are routed between them by trace id.
    workers: int = 1
    shutdown_timeout_s: float = 10.0

    @property
    def spool_dir(self) -> Path:
        return self.output_dir / "spool"

    @property
    def features_dir(self) -> Path:
        return self.output_dir / "features"

    @property
    def fsync_mode(self) -> FsyncMode:
        return cast(FsyncMode, self.fsync)

    def resolved_token(self) -> str | None:
        return self.token or os.environ.get(TOKEN_ENV) or None

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        for name in ("http_port", "grpc_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be 0..65535, got {port}")
        positive = (
            "max_request_bytes",
            "max_connections",
            "queue_size",
            "grpc_workers",
            "segment_bytes",
            "max_in_flight",
            "forward_max_batch_bytes",
            "max_held_spans",
            "max_pending_trials",
            "workers",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in (
            "read_timeout_s",
            "header_timeout_s",
            "segment_roll_s",
            "idle_timeout_s",
            "max_age_s",
            "tick_s",
            "forward_timeout_s",
            "forward_max_backoff_s",
        ):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")
        if self.workers > MAX_WORKERS:
            raise ValueError(f"workers must be at most {MAX_WORKERS}, got {self.workers}")
        if not (self.features_sync_s >= 0 and math.isfinite(self.features_sync_s)):
            raise ValueError(f"features_sync_s must be >= 0 seconds, got {self.features_sync_s}")
        if self.max_spool_bytes < 2 * self.segment_bytes:
            raise ValueError(
                f"max_spool_bytes ({self.max_spool_bytes}) must be at least twice "
                f"segment_bytes ({self.segment_bytes})"
            )
        if self.grace_s < 0 or self.shutdown_timeout_s < 0 or self.retry_after_s < 0:
            raise ValueError("grace_s, shutdown_timeout_s and retry_after_s must be >= 0")
        if self.fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_MODES)}, got {self.fsync!r}")
        if self.forward_compression not in COMPRESSIONS:
            raise ValueError(
                f"forward_compression must be one of {', '.join(COMPRESSIONS)}, "
                f"got {self.forward_compression!r}"
            )
        if self.forward is not None and not self.forward.startswith(("http://", "https://")):
            raise ValueError(f"forward must be an http:// or https:// URL, got {self.forward!r}")


_FIELDS: Final = {f.name: f for f in dataclasses.fields(CollectorConfig)}
_UNITS: Final = {
    "": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20, "mb": 1000**2,
    "mib": 1 << 20, "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30,
}  # fmt: skip


def parse_size(text: str, name: str = "size") -> int:
    """``8388608``, ``8MiB``, ``8M`` (binary), ``8MB`` (decimal), ``512k`` -> bytes."""
    raw = text.strip().lower().replace(" ", "").replace("_", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :]
    try:
        if unit not in _UNITS:
            raise ValueError
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"{name} must be a size such as 8388608 or 8MiB, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a size such as 8388608 or 8MiB, got {text!r}")
    return int(value)


def _coerce(name: str, value: object) -> Any:
    """A YAML/flag value as the type of field ``name``; ValueError when it does not fit."""
    spec = _FIELDS[name]
    default: object = spec.default
    if default is dataclasses.MISSING and spec.default_factory is not dataclasses.MISSING:
        default = spec.default_factory()
    if name == "output_dir":
        if not isinstance(value, str | os.PathLike):
            raise ValueError(f"{name} must be a path, got {value!r}")
        return Path(value)
    if name == "forward_headers":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
        ):
            raise ValueError(f"{name} must be a mapping of header names to strings")
        return {str(k): str(v) for k, v in value.items()}
    if name in ("forward", "token"):
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value or None
    if isinstance(default, bool):  # pragma: no cover - no bool settings yet
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if name.endswith("_bytes") and isinstance(value, str):
            return parse_size(value, name)
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{name} must be a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def config_from_mapping(
    values: Mapping[str, object], base: CollectorConfig | None = None
) -> CollectorConfig:
    """``base`` (or the defaults) with ``values`` applied; keys may use ``-`` or ``_``."""
    config = dataclasses.replace(base) if base is not None else CollectorConfig()
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ValueError(f"unknown collector setting {raw_key!r} (known: {known})")
        setattr(config, key, _coerce(key, value))
    return config


def load_config(path: str | os.PathLike[str]) -> CollectorConfig:
    """Read a YAML config file (flat keys, see collectors/agentsignals-collect.yaml)."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("reading a YAML config needs PyYAML: pip install pyyaml") from exc
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of settings at the top level")
    # A file written for the collector section of a bigger document: `collect: {...}`.
    if set(data) == {"collect"} and isinstance(data["collect"], Mapping):
        data = data["collect"]
    try:
        return config_from_mapping(cast(Mapping[str, object], data))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
