"""Small value helpers shared by the format readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_ns(value: Any, *, numbers: Literal["ms", "s"] | None = "ms") -> int | None:
    """Unix nanoseconds from an ISO-8601 timestamp (naive ones taken as UTC), or from a bare
    number of Unix milliseconds (`numbers="ms"`) or seconds (`"s"`); None for anything else,
    including numbers when `numbers` is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if numbers == "ms":
            return int(value * 1_000_000)
        if numbers == "s" and value <= 1e14:  # larger: already milli/micro/nanoseconds
            return round(float(value) * 1e6) * 1000
        return None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
