"""`agentsignals collect`: a durable OTLP receiver that turns agent spans into feature records."""

from __future__ import annotations

from agentsignals._collector.config import CollectorConfig, load_config
from agentsignals._collector.service import (
    Collector,
    add_arguments,
    build_parser,
    config_from_args,
    main,
    run,
)

__all__ = [
    "Collector",
    "CollectorConfig",
    "add_arguments",
    "build_parser",
    "config_from_args",
    "load_config",
    "main",
    "run",
]
