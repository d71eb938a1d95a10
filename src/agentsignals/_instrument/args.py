"""Converting the caller's arguments without ever raising into the agent.

Every public entry point (the handles, their methods, the decorators, `propagate`) turns its
arguments into attribute values through these helpers. A value that cannot be converted (a cost
of `"0.12$"`, `files=None` where a list was meant, an object whose `__str__` raises) is dropped
with one log line naming the call and the reason, never the value itself (it could be a secret),
and the call goes on without it.

Bad arguments are the caller's mistake, not an instrumentation bug: unlike `internal_error`
they never raise, even under AGENTSIGNALS_RAISE_INTERNAL_ERRORS, so the project's own test suite
can prove that hostile arguments are survivable. Each call site logs at WARNING once and at
DEBUG after that, so a bad value inside a loop cannot flood the host's logs.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from agentsignals._instrument.runtime import logger

__all__ = [
    "INT64_MAX",
    "as_attributes",
    "as_bool",
    "as_float",
    "as_int",
    "as_str",
    "as_str_list",
    "dropped",
    "reported_count",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_MAX_LIST_ITEMS = 10_000

_reported: set[str] = set()
_reported_lock = threading.Lock()
_count = 0


def reported_count() -> int:
    """How many bad arguments were dropped in this process (for tests and health checks)."""
    return _count


def dropped(where: str, reason: str) -> None:
    """Log one line for a dropped argument: WARNING the first time per call site, then DEBUG."""
    global _count
    with contextlib.suppress(Exception):
        with _reported_lock:
            _count += 1
            first = where not in _reported
            if first and len(_reported) < 10_000:
                _reported.add(where)
        if first:
            logger.warning(
                "agentsignals: %s: %s; argument dropped (the agent is unaffected; further "
                "ones here are logged at DEBUG)",
                where,
                reason,
            )
        else:
            logger.debug("agentsignals: %s: %s; argument dropped", where, reason)


def _kind(value: object) -> str:
    try:
        return type(value).__qualname__
    except Exception:
        return "object"


def as_str(value: object, where: str) -> str | None:
    """`str(value)`, or None (logged) when that fails; None stays None."""
    if value is None:
        return None
    if type(value) is str:
        return value
    try:
        text = str(value)
        if type(text) is not str:  # a __str__ returning a str subclass or worse
            text = str.__str__(text)
        return text
    except Exception:
        dropped(where, f"a {_kind(value)} whose str() fails")
        return None


def as_int(
    value: object, where: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int | None:
    """An integer in [minimum, maximum] (int64 by default, what OTLP can carry), from an int, an
    integral float or a decimal string; None (logged) otherwise."""
    if value is None:
        return None
    try:
        if type(value) is int:
            number = value
        elif isinstance(value, int):  # bool and int subclasses
            number = int(value)
        elif isinstance(value, float):
            if not value.is_integer():
                dropped(where, "expected an integer, got a fractional number")
                return None
            number = int(value)
        elif isinstance(value, str) and len(value) <= 40:
            number = int(value.strip())
        else:
            dropped(where, f"expected an integer, got a {_kind(value)}")
            return None
    except Exception:
        dropped(where, f"expected an integer, got a {_kind(value)} that is not one")
        return None
    if not minimum <= number <= maximum:
        dropped(where, f"integer out of range [{minimum}, {maximum}]")
        return None
    return number


def as_float(value: object, where: str, *, finite: bool = True) -> float | None:
    """A float from a number or a numeric string; None (logged) otherwise. Non-finite values
    are refused when `finite` (a cost of NaN is not a true number)."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str) and len(value) <= 64:
            number = float(value.strip())
        else:
            dropped(where, f"expected a number, got a {_kind(value)}")
            return None
    except Exception:
        dropped(where, f"expected a number, got a {_kind(value)} that is not one")
        return None
    if finite and not math.isfinite(number):
        dropped(where, "expected a finite number")
        return None
    return number


def as_bool(value: object, where: str) -> bool | None:
    """A bool from a bool (or 0/1); None (logged) otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    dropped(where, f"expected a bool, got a {_kind(value)}")
    return None


def as_str_list(value: object, where: str) -> list[str] | None:
    """A list of strings from an iterable (a single string is one item); items that cannot be
    converted are dropped (logged); None when `value` is not iterable."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        dropped(where, f"expected a list of strings, got a {_kind(value)}")
        return None
    out: list[str] = []
    try:
        for item in value:
            if len(out) >= _MAX_LIST_ITEMS:
                dropped(where, f"more than {_MAX_LIST_ITEMS} items; the rest dropped")
                break
            text = as_str(item, where)
            if text is not None:
                out.append(text)
    except Exception:
        dropped(where, f"iterating a {_kind(value)} failed")
    return out


def as_attributes(value: object, where: str) -> dict[str, Any]:
    """Extra span attributes from a mapping with string keys; anything else is dropped (logged).
    Values are left to the OpenTelemetry SDK, which drops invalid ones itself."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        dropped(where, f"expected a mapping of attributes, got a {_kind(value)}")
        return {}
    out: dict[str, Any] = {}
    try:
        for key, item in value.items():
            if type(key) is not str:
                dropped(where, f"attribute key of type {_kind(key)}")
                continue
            if item is None:
                continue
            out[key] = item
    except Exception:
        dropped(where, f"reading the {_kind(value)} of attributes failed")
    return out
