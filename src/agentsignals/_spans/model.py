"""The internal span model: one flat, typed object per span, whatever the source.

Every input (OTLP/JSON, OTLP/protobuf, in-process SDK spans) is decoded into :class:`Span`, so
processors deal with exactly one shape. Ids are lowercase hex, times are Unix nanoseconds,
kinds and status codes use the OTLP numbers, and attribute values are plain Python scalars or
lists of scalars (OTLP ``kvlistValue`` arrives as a JSON string, ``bytesValue`` as base64).
"""

from __future__ import annotations

from typing import Final, TypeAlias

import msgspec

__all__ = [
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_UNSPECIFIED",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_UNSET",
    "AttrScalar",
    "AttrValue",
    "Attributes",
    "Event",
    "Span",
    "coerce_bool",
    "coerce_float",
    "coerce_int",
    "coerce_str",
    "coerce_str_list",
]

AttrScalar: TypeAlias = str | bool | int | float
AttrValue: TypeAlias = str | bool | int | float | list[AttrScalar]
Attributes: TypeAlias = dict[str, AttrValue]

# OTLP SpanKind numbers (not the Python SDK's enum values, which start at INTERNAL=0).
SPAN_KIND_UNSPECIFIED: Final = 0
SPAN_KIND_INTERNAL: Final = 1
SPAN_KIND_SERVER: Final = 2
SPAN_KIND_CLIENT: Final = 3
SPAN_KIND_PRODUCER: Final = 4
SPAN_KIND_CONSUMER: Final = 5

# OTLP Status.code numbers (the same as the SDK's StatusCode values).
STATUS_UNSET: Final = 0
STATUS_OK: Final = 1
STATUS_ERROR: Final = 2


def coerce_str(value: AttrValue | None) -> str | None:
    """A scalar as text (``True`` -> ``"true"``); ``None`` for missing values and lists."""
    if value is None or isinstance(value, list):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def coerce_int(value: AttrValue | None) -> int | None:
    """An integer from an int, an integral float or a numeric string; ``None`` otherwise.

    Booleans are not numbers here: ``True`` as an exit code or a token count is a producer bug
    that a processor should see as missing, not as 1.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        # OTLP/JSON carries int64 as a decimal string; decoders normalise it, but attributes
        # set by hand (or by other SDKs' string-typed conventions) may still hold text.
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                return None
            return int(as_float) if as_float.is_integer() else None
    return None


def coerce_float(value: AttrValue | None) -> float | None:
    """A float from an int, a float or a numeric string (``"NaN"``/``"Infinity"`` included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})


def coerce_bool(value: AttrValue | None) -> bool | None:
    """A bool from a bool, the ints 0/1 or the strings true/false/1/0/yes/no (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def coerce_str_list(value: AttrValue | None) -> list[str] | None:
    """A list of strings; a lone string becomes a one-element list."""
    if value is None:
        return None
    if isinstance(value, list):
        return [s for s in map(coerce_str, value) if s is not None]
    text = coerce_str(value)
    return None if text is None else [text]


class Event(msgspec.Struct, frozen=True, gc=False):
    """A span event (``exception`` and friends)."""

    name: str
    time_ns: int
    attributes: Attributes = msgspec.field(default_factory=dict)

    def attr_str(self, key: str) -> str | None:
        """Attribute ``key`` as text, or ``None``."""
        return coerce_str(self.attributes.get(key))

    def attr_int(self, key: str) -> int | None:
        """Attribute ``key`` as an int, or ``None``."""
        return coerce_int(self.attributes.get(key))


# gc=False: a Span only refers to dicts, lists and scalars, never back to a Span, so it cannot
# be part of a reference cycle; keeping it out of the cyclic GC makes decoding large batches
# several times faster. Do not store a Span inside its own attributes.
class Span(msgspec.Struct, gc=False):
    """One finished span, independent of where it came from.

    ``resource`` is shared by all spans of one resource: treat it as read-only.
    """

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str | None  # None for a root span
    name: str
    kind: int  # OTLP SpanKind number, see SPAN_KIND_*
    start_ns: int
    end_ns: int
    attributes: Attributes = msgspec.field(default_factory=dict)
    status_code: int = STATUS_UNSET  # see STATUS_*
    status_message: str = ""
    events: list[Event] = msgspec.field(default_factory=list)
    resource: Attributes = msgspec.field(default_factory=dict)
    scope_name: str = ""

    @property
    def duration_ns(self) -> int:
        """End minus start, never negative (clock skew or an unfinished span gives 0)."""
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_root(self) -> bool:
        """True when the span has no parent."""
        return self.parent_span_id is None

    @property
    def is_error(self) -> bool:
        """True when the span's status is ERROR."""
        return self.status_code == STATUS_ERROR

    def attr(self, key: str) -> AttrValue | None:
        """Attribute ``key`` as stored, or ``None``."""
        return self.attributes.get(key)

    def attr_str(self, key: str) -> str | None:
        """Attribute ``key`` as text (numbers and bools formatted), or ``None``."""
        return coerce_str(self.attributes.get(key))

    def attr_int(self, key: str) -> int | None:
        """Attribute ``key`` as an int (numeric strings accepted), or ``None``."""
        return coerce_int(self.attributes.get(key))

    def attr_float(self, key: str) -> float | None:
        """Attribute ``key`` as a float (numeric strings accepted), or ``None``."""
        return coerce_float(self.attributes.get(key))

    def attr_bool(self, key: str) -> bool | None:
        """Attribute ``key`` as a bool (``"true"``/``"false"``, 0/1 accepted), or ``None``."""
        return coerce_bool(self.attributes.get(key))

    def attr_str_list(self, key: str) -> list[str] | None:
        """Attribute ``key`` as a list of strings (a lone string is wrapped), or ``None``."""
        return coerce_str_list(self.attributes.get(key))

    def resource_str(self, key: str) -> str | None:
        """Resource attribute ``key`` as text, or ``None``."""
        return coerce_str(self.resource.get(key))
