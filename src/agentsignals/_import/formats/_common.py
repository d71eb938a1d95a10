"""Small value helpers shared by the format readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_ns(value: Any, *, numbers_are_ms: bool = True) -> int | None:
    """An ISO-8601 timestamp (naive ones taken as UTC), or Unix milliseconds when
    `numbers_are_ms`, as Unix nanoseconds; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value * 1_000_000) if numbers_are_ms else None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
