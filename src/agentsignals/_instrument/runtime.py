"""Process-wide runtime state shared by the context managers, decorators and `configure`.

Kept tiny and import-cheap: it is touched on every span. `configure()` and
`agentsignals.testing` swap the tracer and settings here; instrumented code reads them at call
time, never at decoration time, so decorating before configuring works.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from agentsignals import semconv

logger = logging.getLogger("agentsignals")
if not logger.handlers:
    # A library must not configure logging, but it must never print to stdout either: the
    # NullHandler keeps Python's last-resort handler (stderr) for warnings when the host set
    # nothing up, and adds no handler that could write to stdout.
    logger.addHandler(logging.NullHandler())

RAISE_ENV = "AGENTSIGNALS_RAISE_INTERNAL_ERRORS"
VERSION = "0.1.0"

Redactor = Callable[[str, str], "str | None"]


@dataclass(frozen=True, slots=True)
class Settings:
    """What instrumentation does; replaced as a whole by `configure()`."""

    capture_content: bool = False
    capture_to_events: bool = False  # OTEL_..._CAPTURE_MESSAGE_CONTENT=EVENT_ONLY / SPAN_AND_EVENT
    capture_to_span: bool = True
    max_value_bytes: int = 16 * 1024
    max_span_bytes: int = 64 * 1024
    redact: Redactor | None = None
    fingerprint_tools: bool = True
    # Absolute folders a workspace tracker leaves out (our own output folder, so traces written
    # inside the agent's repository are never taken for the agent's edits).
    workspace_exclude: tuple[str, ...] = ()


class _Runtime:
    __slots__ = ("clock", "env_parent_checked", "settings", "tracer")

    def __init__(self) -> None:
        # A ProxyTracer until an SDK provider is installed: spans become real once the host (or
        # configure) sets a provider, with no re-decoration needed.
        self.tracer: trace.Tracer = trace.get_tracer(
            "agentsignals", VERSION, schema_url=semconv.SCHEMA_URL
        )
        self.settings = Settings()
        # Deterministic clock for agentsignals.testing; None means the SDK's own clock.
        self.clock: Callable[[], int] | None = None
        self.env_parent_checked = False


RUNTIME = _Runtime()


def reset_tracer() -> None:
    RUNTIME.tracer = trace.get_tracer("agentsignals", VERSION, schema_url=semconv.SCHEMA_URL)


def raising_internal_errors() -> bool:
    return os.environ.get(RAISE_ENV, "") not in ("", "0", "false", "False")


def internal_error(what: str) -> None:
    """Log an instrumentation failure and carry on; must be called from an `except` block.

    The agent must keep running with less telemetry. The project's own test suite sets
    AGENTSIGNALS_RAISE_INTERNAL_ERRORS=1 so that such bugs fail tests instead of hiding.
    """
    if raising_internal_errors():
        raise
    # Logging itself may fail (a closed stream): then there is nothing left to do.
    with contextlib.suppress(Exception):
        logger.warning("agentsignals: %s (the agent is unaffected)", what, exc_info=True)


def safe_repr(obj: Any) -> str:
    """`repr` that never raises, for hostile objects whose __repr__ fails."""
    try:
        return repr(obj)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return f"<unrepresentable {type(obj).__qualname__}>"


def error_type(exc: BaseException) -> str:
    """The `error.type` for an exception: its class name, module-qualified unless builtin."""
    cls = type(exc)
    if cls.__module__ == "agentsignals._instrument.hooks":
        override = getattr(cls, "error_type", None)  # an injected fault's exception
        if isinstance(override, str):
            return override
    module = cls.__module__
    if module in ("builtins", "asyncio.exceptions", "concurrent.futures._base"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def is_control_flow(exc: BaseException) -> bool:
    """Exceptions that end work without it having failed (normal generator close)."""
    return isinstance(exc, GeneratorExit)


def stdout_is_untouched() -> bool:
    """Debug aid for tests: agentsignals never writes to stdout."""
    return sys.stdout is sys.__stdout__
