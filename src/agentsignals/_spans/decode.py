"""Decoders: OTLP/JSON, OTLP/JSON lines files, OTLP/protobuf and in-process SDK spans -> Span.

All decoders produce equal :class:`~agentsignals._spans.model.Span` lists for the same spans.
Attribute values are normalised the same way everywhere: int64 -> ``int``, arrays -> ``list``
of scalars, ``bytesValue`` -> base64 text, ``kvlistValue`` (and nested arrays inside arrays) ->
compact JSON text, empty values dropped.

Speed: the JSON parser is not the bottleneck, object creation and the cyclic GC are. OTLP is
decoded into ``gc=False`` msgspec Structs by one prebuilt typed decoder, flattened into
``gc=False`` Spans, and the cyclic GC is paused for the duration of each decode call.
"""

from __future__ import annotations

import base64
import binascii
import gc
import gzip
import importlib
import logging
import os
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeAlias, TypeVar, cast

import msgspec

from agentsignals import semconv as sc
from agentsignals._spans.model import Attributes, AttrScalar, AttrValue, Event, Span

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "DecodeError",
    "DecodeProblem",
    "decode_otlp_json",
    "decode_otlp_json_lines",
    "decode_otlp_protobuf",
    "find_otlp_json_files",
    "from_readable_spans",
    "read_otlp_json_files",
]

_log = logging.getLogger(__name__)

PathArg: TypeAlias = str | os.PathLike[str]


class DecodeError(ValueError):
    """The payload is not a well-formed OTLP ExportTraceServiceRequest."""


# Hostile input: values nested past what the parsers (and our flattening of kvlists) recurse
# through. No exporter writes such a request; it is refused like any malformed one.
_TOO_DEEP: Final = "malformed request: values nested too deeply to decode"


@dataclass(frozen=True, slots=True)
class DecodeProblem:
    """One input that could not be decoded (the rest of the file still was)."""

    path: str
    line_no: int  # 1-based (a whole-file document: its first line); 0: file not opened
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.message}"


# --------------------------------------------------------------------------------------------
# GC pause
# --------------------------------------------------------------------------------------------

_T = TypeVar("_T")
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


def _without_gc(fn: Callable[[_T], list[Span]], arg: _T) -> list[Span]:
    """Run ``fn(arg)`` with the cyclic GC paused; restore the previous state afterwards.

    Decoding allocates hundreds of thousands of container objects that all survive, so every
    young-generation collection during the decode is wasted work. A depth counter keeps
    concurrent decodes in several threads from re-enabling the GC under each other.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        return fn(arg)
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


# --------------------------------------------------------------------------------------------
# Shared value normalisation
# --------------------------------------------------------------------------------------------

_HEX: Final = "0123456789abcdef"
_ZERO_SPAN_ID: Final = "0" * 16
_U64_MAX: Final = (1 << 64) - 1
_json_encode = msgspec.json.Encoder().encode


def _json_text(value: object) -> str:
    # One serialiser for every decoder, so kvlist attributes compare equal across sources.
    return _json_encode(value).decode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _id_from_text(raw: str, nbytes: int, field: str) -> str:
    """Normalise a hex or base64 id string to lowercase hex; raise DecodeError if invalid."""
    if not raw:
        raise DecodeError(f"missing {field}")
    if len(raw) == 2 * nbytes:
        try:
            decoded = bytes.fromhex(raw)  # also accepts uppercase (and spaces: length check)
        except ValueError:
            decoded = b""
        if len(decoded) == nbytes:
            return decoded.hex()
    elif len(raw) in (4 * ((nbytes + 2) // 3), (4 * nbytes + 2) // 3):
        # proto3 JSON mappers (protobuf's json_format, some exporters) write bytes as base64.
        text = raw.replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) == nbytes:
            return decoded.hex()
    raise DecodeError(
        f"invalid {field} {raw[:80]!r}: expected {2 * nbytes} hex digits "
        f"(or base64 of {nbytes} bytes)"
    )


def _id_from_bytes(raw: bytes, nbytes: int, field: str) -> str:
    if len(raw) != nbytes:
        if not raw:
            raise DecodeError(f"missing {field}")
        raise DecodeError(f"invalid {field}: {len(raw)} bytes, expected {nbytes}")
    return raw.hex()


def _py_nested(value: object) -> object:
    """A Python SDK value inside a map or nested array, as JSON-able data."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, Mapping):
        return {str(k): _py_nested(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_py_nested(v) for v in value]
    return str(value)


def _py_value(value: object) -> AttrValue | None:
    """A Python SDK attribute value as a model value (None: drop the attribute)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, tuple | list):
        out: list[AttrScalar] = []
        for item in value:
            if isinstance(item, str | bool | int | float):
                out.append(item)
            elif item is not None:
                element = _py_value_element(item)
                out.append(element)
        return out
    if value is None:
        return None
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, Mapping):
        return _json_text(_py_nested(value))
    return str(value)


def _py_value_element(item: object) -> AttrScalar:
    if isinstance(item, bytes):
        return _b64(item)
    return _json_text(_py_nested(item))


def _py_attrs(attributes: Mapping[str, object] | None) -> Attributes:
    out: Attributes = {}
    if attributes:
        # The SDK's BoundedAttributes keeps a plain dict: iterating it directly avoids a
        # Python-level __getitem__ per key through the Mapping mixin.
        raw = getattr(attributes, "_dict", None)
        items = raw.items() if type(raw) is dict else attributes.items()
        for key, value in items:
            t = type(value)
            if t is str or t is int or t is float or t is bool:
                out[key] = value  # type: ignore[assignment]
                continue
            v = _py_value(value)
            if v is not None:
                out[key] = v
    return out


# --------------------------------------------------------------------------------------------
# OTLP/JSON
# --------------------------------------------------------------------------------------------
# Typed mirrors of the OTLP/JSON messages. gc=False: decoded data has no cycles. Field names are
# the lowerCamelCase JSON names. Unknown fields (flags, traceState, links, dropped*Count, ...)
# are skipped by msgspec without building objects. The decoder runs with strict=False so int64
# fields accept both "123" and 123 and doubles accept "NaN"/"Infinity"/"-Infinity".


class _JArrayValue(msgspec.Struct, gc=False):
    values: list[_JAnyValue] = msgspec.field(default_factory=list)


class _JKvList(msgspec.Struct, gc=False):
    values: list[_JKeyValue] = msgspec.field(default_factory=list)


class _JAnyValue(msgspec.Struct, gc=False):
    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | None = None
    doubleValue: float | None = None
    arrayValue: _JArrayValue | None = None
    kvlistValue: _JKvList | None = None
    bytesValue: str | None = None


class _JKeyValue(msgspec.Struct, gc=False):
    key: str
    value: _JAnyValue | None = None


class _JStatus(msgspec.Struct, gc=False):
    code: int | str = 0
    message: str = ""


class _JEvent(msgspec.Struct, gc=False):
    timeUnixNano: int = 0
    name: str = ""
    attributes: list[_JKeyValue] = msgspec.field(default_factory=list)


class _JSpan(msgspec.Struct, gc=False):
    traceId: str = ""
    spanId: str = ""
    parentSpanId: str = ""
    name: str = ""
    kind: int | str = 0
    startTimeUnixNano: int = 0
    endTimeUnixNano: int = 0
    attributes: list[_JKeyValue] = msgspec.field(default_factory=list)
    events: list[_JEvent] = msgspec.field(default_factory=list)
    status: _JStatus | None = None


class _JScope(msgspec.Struct, gc=False):
    name: str = ""


class _JScopeSpans(msgspec.Struct, gc=False):
    scope: _JScope | None = None
    spans: list[_JSpan] = msgspec.field(default_factory=list)
    # OTLP < 0.15 name, still found in old files.
    instrumentationLibrary: _JScope | None = None


class _JResource(msgspec.Struct, gc=False):
    attributes: list[_JKeyValue] = msgspec.field(default_factory=list)


class _JResourceSpans(msgspec.Struct, gc=False):
    resource: _JResource | None = None
    scopeSpans: list[_JScopeSpans] = msgspec.field(default_factory=list)
    instrumentationLibrarySpans: list[_JScopeSpans] = msgspec.field(default_factory=list)


class _JRequest(msgspec.Struct, gc=False):
    resourceSpans: list[_JResourceSpans] | None = None


_json_decoder: Final = msgspec.json.Decoder(_JRequest, strict=False)
_untyped_json_decoder: Final = msgspec.json.Decoder()

_KIND_NAMES: Final = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_NAMES: Final = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _enum_number(value: int | str, names: Mapping[str, int], field: str) -> int:
    if isinstance(value, int):
        return value
    number = names.get(value)
    if number is None:
        try:
            number = int(value)
        except ValueError:
            raise DecodeError(f"unknown {field} {value!r}") from None
    return number


def _j_nested(v: _JAnyValue | None) -> object:
    """An AnyValue inside a kvlist or a nested array, as JSON-able data."""
    if v is None:
        return None
    if v.stringValue is not None:
        return v.stringValue
    if v.intValue is not None:
        return v.intValue
    if v.boolValue is not None:
        return v.boolValue
    if v.doubleValue is not None:
        return v.doubleValue
    if v.arrayValue is not None:
        return [_j_nested(x) for x in v.arrayValue.values]
    if v.kvlistValue is not None:
        return {kv.key: _j_nested(kv.value) for kv in v.kvlistValue.values}
    return v.bytesValue


def _j_complex(v: _JAnyValue) -> AttrValue | None:
    """The rare value kinds: arrays, kvlists, bytes, or empty (None)."""
    if v.arrayValue is not None:
        out: list[AttrScalar] = []
        for x in v.arrayValue.values:
            if x.stringValue is not None:
                out.append(x.stringValue)
            elif x.intValue is not None:
                out.append(x.intValue)
            elif x.boolValue is not None:
                out.append(x.boolValue)
            elif x.doubleValue is not None:
                out.append(x.doubleValue)
            elif x.bytesValue is not None:
                out.append(x.bytesValue)
            elif x.arrayValue is not None or x.kvlistValue is not None:
                out.append(_json_text(_j_nested(x)))
            # An empty element carries nothing; dropped like a None in an SDK sequence.
        return out
    if v.kvlistValue is not None:
        return _json_text(_j_nested(v))
    return v.bytesValue  # already base64 text in OTLP/JSON; None when the value is empty


# Attribute keys repeat on every span; interning them saves ~0.7 KB per retained span (about a
# fifth of its memory) and makes processors' lookups with literal keys identity hits.
_intern = sys.intern

# The values of identity and low-cardinality keys also repeat on every span of an attempt
# (ids, span type, tool name and category, model): one shared string each keeps retained
# spans about a fifth smaller (docs/performance.md).
_SHARED_VALUE_KEYS: Final = frozenset(
    {
        sc.AGENT_SIGNALS_TRIAL_ID,
        sc.AGENT_SIGNALS_ATTEMPT_ID,
        sc.AGENT_SIGNALS_TASK_ID,
        sc.AGENT_SIGNALS_SPAN_TYPE,
        sc.AGENT_SIGNALS_TOOL_CATEGORY,
        sc.AGENT_SIGNALS_TURN_PHASE,
        sc.AGENT_SIGNALS_TREATMENT_DATASET,
        sc.AGENT_SIGNALS_TREATMENT_MODEL_ID,
        sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE,
        sc.GEN_AI_OPERATION_NAME,
        sc.GEN_AI_TOOL_NAME,
        sc.GEN_AI_AGENT_NAME,
        sc.GEN_AI_REQUEST_MODEL,
        sc.GEN_AI_RESPONSE_MODEL,
        sc.GEN_AI_PROVIDER_NAME,
        "server.address",
        "service.name",
    }
)


def _j_attrs(kvs: list[_JKeyValue]) -> Attributes:
    out: Attributes = {}
    for kv in kvs:
        v = kv.value
        if v is None:
            continue
        # Ordered by frequency in agent traces; most attributes are strings.
        text = v.stringValue
        if text is not None:
            key = _intern(kv.key)
            out[key] = _intern(text) if key in _SHARED_VALUE_KEYS else text
            continue
        x: AttrValue | None = v.intValue
        if x is None:
            x = v.boolValue
            if x is None:
                x = v.doubleValue
                if x is None:
                    x = _j_complex(v)
                    if x is None:
                        continue
        out[_intern(kv.key)] = x
    return out


class _BadSpan(Exception):
    def __init__(self, message: str, where: object) -> None:
        super().__init__(message)
        self.where = where


def _j_flatten(req: _JRequest) -> list[Span]:
    out: list[Span] = []
    append = out.append
    hexchars = _HEX
    # Spans of a trace share one trace_id string (less memory, cheaper than re-validating).
    trace_ids: dict[str, str] = {}
    assert req.resourceSpans is not None
    for rs in req.resourceSpans:
        res = rs.resource
        resource = _j_attrs(res.attributes) if res is not None else {}
        for ss in rs.scopeSpans or rs.instrumentationLibrarySpans:
            scope = ss.scope or ss.instrumentationLibrary
            scope_name = scope.name if scope is not None else ""
            for s in ss.spans:
                try:
                    # Fast path: already lowercase hex of the right length (what OTLP/JSON
                    # producers write); everything else goes through the slow normaliser.
                    raw_trace_id = s.traceId
                    trace_id = trace_ids.get(raw_trace_id)
                    if trace_id is None:
                        trace_id = raw_trace_id
                        if len(trace_id) != 32 or trace_id.strip(hexchars):
                            trace_id = _id_from_text(trace_id, 16, "traceId")
                        trace_ids[raw_trace_id] = trace_id
                    span_id = s.spanId
                    if len(span_id) != 16 or span_id.strip(hexchars):
                        span_id = _id_from_text(span_id, 8, "spanId")
                    parent: str | None = s.parentSpanId
                    if parent:
                        if len(parent) != 16 or parent.strip(hexchars):
                            parent = _id_from_text(parent, 8, "parentSpanId")
                        if parent == _ZERO_SPAN_ID:
                            parent = None
                    else:
                        parent = None
                    kind_raw = s.kind
                    kind = (
                        kind_raw
                        if isinstance(kind_raw, int)
                        else _enum_number(kind_raw, _KIND_NAMES, "span kind")
                    )
                    status = s.status
                    if status is None:
                        code, message = 0, ""
                    else:
                        code_raw, message = status.code, status.message
                        code = (
                            code_raw
                            if isinstance(code_raw, int)
                            else _enum_number(code_raw, _STATUS_NAMES, "status code")
                        )
                    start, end = s.startTimeUnixNano, s.endTimeUnixNano
                    if not (0 <= start <= _U64_MAX and 0 <= end <= _U64_MAX):
                        raise DecodeError("span time outside the fixed64 range of OTLP")
                    events = s.events
                    if events and not all(0 <= e.timeUnixNano <= _U64_MAX for e in events):
                        raise DecodeError("event time outside the fixed64 range of OTLP")
                except DecodeError as exc:
                    raise _BadSpan(str(exc), s) from None
                append(
                    Span(
                        trace_id,
                        span_id,
                        parent,
                        s.name,
                        kind,
                        start,
                        end,
                        _j_attrs(s.attributes),
                        code,
                        message,
                        [Event(e.name, e.timeUnixNano, _j_attrs(e.attributes)) for e in events]
                        if events
                        else [],
                        resource,
                        scope_name,
                    )
                )
    return out


def _locate(req: _JRequest, target: object) -> str:
    for i, rs in enumerate(req.resourceSpans or ()):
        for j, ss in enumerate(rs.scopeSpans or rs.instrumentationLibrarySpans):
            for k, s in enumerate(ss.spans):
                if s is target:
                    return f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
    return "a span"


_SNAKE_KEYS: Final = frozenset(
    {
        "resource_spans",
        "scope_spans",
        "instrumentation_library_spans",
        "trace_id",
        "span_id",
        "parent_span_id",
        "start_time_unix_nano",
        "end_time_unix_nano",
    }
)


def _find_snake_key(node: object, depth: int = 0) -> str | None:
    """The first snake_case OTLP field name in an untyped document (error path only)."""
    if depth > 6:
        return None
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SNAKE_KEYS:
                return str(key)
            found = _find_snake_key(value, depth + 1)
            if found:
                return found
    elif isinstance(node, list):
        for item in node[:3]:
            found = _find_snake_key(item, depth + 1)
            if found:
                return found
    return None


def _snake_case_hint(data: bytes | bytearray | memoryview | str) -> str:
    try:
        key = _find_snake_key(_untyped_json_decoder.decode(data))
    except msgspec.MsgspecError:
        return ""
    if key is None:
        return ""
    camel = key.split("_")[0] + "".join(p.title() for p in key.split("_")[1:])
    return (
        f" (found snake_case key {key!r}: OTLP/JSON uses lowerCamelCase field names "
        f"such as {camel!r})"
    )


def _describe_msgspec_error(exc: msgspec.MsgspecError, size: int) -> str:
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        if text.startswith("Expected `object`, got"):
            return "not an OTLP ExportTraceServiceRequest: expected a JSON object, " + text[19:]
        return f"not an OTLP ExportTraceServiceRequest: {text}"
    if "truncated" in text:
        return f"truncated JSON at byte {size}: the input ends before the document is complete"
    if text.startswith("JSON is malformed: "):
        return "malformed JSON: " + text[len("JSON is malformed: ") :]
    return f"malformed JSON: {text}"


def _strip_bom(data: bytes | bytearray | memoryview | str) -> bytes | bytearray | memoryview | str:
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    if bytes(data[:3]) == b"\xef\xbb\xbf":
        return data[3:]
    return data


def _decode_json(data: bytes | bytearray | memoryview | str) -> list[Span]:
    data = _strip_bom(data)
    try:
        req = _json_decoder.decode(data)
    except msgspec.MsgspecError as exc:
        size = len(data.rstrip()) if isinstance(data, bytes | str) else len(data)
        if size == 0:
            raise DecodeError("empty input: expected an OTLP/JSON document") from None
        raise DecodeError(_describe_msgspec_error(exc, size)) from None
    if req.resourceSpans is None:
        hint = _snake_case_hint(data)
        if hint:
            raise DecodeError("not an OTLP ExportTraceServiceRequest" + hint)
        doc = _untyped_json_decoder.decode(data)
        if doc and "resourceSpans" not in doc:
            raise DecodeError("not an OTLP ExportTraceServiceRequest: missing resourceSpans")
        # "{}" is the proto3 JSON of an empty request; null means an empty repeated field.
        return []
    try:
        return _j_flatten(req)
    except _BadSpan as exc:
        hint = "" if "missing" not in str(exc) else _snake_case_hint(data)
        raise DecodeError(f"{_locate(req, exc.where)}: {exc}{hint}") from None


def decode_otlp_json(data: bytes | bytearray | memoryview | str) -> list[Span]:
    """Decode one OTLP/JSON ``ExportTraceServiceRequest`` into spans.

    Accepts hex ids (the OTLP/JSON encoding) and base64 ids (what generic proto3 JSON mappers
    write), int64 as string or number, enums as numbers or names. Raises :class:`DecodeError`
    with a message saying what is wrong (truncated, malformed, not OTLP, snake_case keys).
    """
    try:
        return _without_gc(_decode_json, data)
    except RecursionError:
        raise DecodeError(_TOO_DEEP) from None


# --------------------------------------------------------------------------------------------
# OTLP/JSON files
# --------------------------------------------------------------------------------------------

_SUFFIXES: Final = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
ProblemCallback: TypeAlias = Callable[[DecodeProblem], None]


def _log_problem(problem: DecodeProblem) -> None:
    _log.warning("skipped undecodable OTLP/JSON input: %s", problem)


def _reporter(
    on_problem: ProblemCallback | None, problems: list[DecodeProblem] | None
) -> ProblemCallback:
    if on_problem is None and problems is None:
        return _log_problem
    if problems is None:
        assert on_problem is not None
        return on_problem

    def report(problem: DecodeProblem) -> None:
        problems.append(problem)
        if on_problem is not None:
            on_problem(problem)

    return report


def _is_truncation(message: str) -> bool:
    return message.startswith("truncated JSON")


Line: TypeAlias = bytes | memoryview
_CHUNK: Final = 4 << 20
_WHITESPACE: Final = frozenset(b" \t\r\n")


def _split_lines(read: Callable[[int], bytes]) -> Iterator[Line]:
    """Lines of a binary stream, without their line break, mostly as zero-copy views.

    Collector files hold one request per line and lines of several MB are normal: reading
    big chunks and slicing memoryviews avoids copying (and page-faulting) every line twice,
    as ``readline`` would. A line spanning reads is joined once from its pieces.
    """
    pieces: list[bytes] = []
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        nl = chunk.find(b"\n")
        if nl < 0:
            pieces.append(chunk)
            continue
        start = 0
        if pieces:
            pieces.append(chunk[:nl])
            yield b"".join(pieces)
            pieces = []
            start = nl + 1
            nl = chunk.find(b"\n", start)
        view = memoryview(chunk)
        while nl >= 0:
            yield view[start:nl]
            start = nl + 1
            nl = chunk.find(b"\n", start)
        if start < len(chunk):
            pieces.append(chunk[start:])
    if pieces:
        yield b"".join(pieces)


def _is_blank(line: Line) -> bool:
    # A request line starts with "{": only look closer when it starts with whitespace.
    return not line or (line[0] in _WHITESPACE and not bytes(line).strip())


def _decode_stream(
    lines: Iterator[Line], label: str, report: ProblemCallback, allow_document: bool
) -> Iterator[list[Span]]:
    """Decode JSON lines; if the first line is an incomplete document, try the whole stream."""
    line_no = 0
    first = True
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except (OSError, EOFError, zlib.error) as exc:
            report(DecodeProblem(label, line_no + 1, f"unreadable input: {exc}"))
            return
        line_no += 1
        if _is_blank(line):
            continue
        try:
            spans = decode_otlp_json(line)
        except DecodeError as exc:
            message = str(exc)
            if first and allow_document and _is_truncation(message):
                # A pretty-printed single-document .json file: its first line is "{".
                yield from _decode_document(line, lines, line_no, label, report)
                return
            report(DecodeProblem(label, line_no, message))
            first = False
            continue
        first = False
        yield spans


def _decode_document(
    first_line: Line, rest: Iterator[Line], first_no: int, label: str, report: ProblemCallback
) -> Iterator[list[Span]]:
    """The first line was incomplete: a pretty-printed document, or a bad first JSON line."""
    buffered = [first_line]
    read_error: DecodeProblem | None = None
    try:
        buffered.extend(rest)
    except (OSError, EOFError, zlib.error) as exc:
        read_error = DecodeProblem(label, first_no + len(buffered), f"unreadable input: {exc}")
    try:
        spans = decode_otlp_json(b"\n".join(buffered))
    except DecodeError as exc:
        whole_error = str(exc)
    else:
        yield spans
        if read_error:
            report(read_error)
        return
    # Not one document. If any later line decodes on its own this is a JSON lines file with a
    # bad first line: report lines individually. Otherwise it is one broken document: report it
    # once rather than once per line.
    held: list[DecodeProblem] = []
    is_lines = False

    def hold(problem: DecodeProblem) -> None:
        if is_lines:
            report(problem)
        else:
            held.append(problem)

    others = _decode_stream(
        iter(buffered[1:]), label, _offset_report(hold, first_no), allow_document=False
    )
    for batch in others:
        if not is_lines:
            is_lines = True
            report(DecodeProblem(label, first_no, _first_line_error(first_line)))
            for problem in held:
                report(problem)
        yield batch
    if not is_lines:
        report(DecodeProblem(label, first_no, whole_error))
    if read_error:
        report(read_error)


def _first_line_error(line: Line) -> str:
    try:
        decode_otlp_json(line)
    except DecodeError as exc:
        return str(exc)
    return "could not decode"


def _offset_report(report: ProblemCallback, offset: int) -> ProblemCallback:
    def shifted(problem: DecodeProblem) -> None:
        report(DecodeProblem(problem.path, problem.line_no + offset, problem.message))

    return shifted


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb", buffering=0)  # _split_lines reads big chunks itself


def _reader(f: IO[bytes]) -> Callable[[int], bytes]:
    # read1 returns what one underlying read gives: for gzip that keeps a truncated stream
    # from discarding a whole chunk of good lines decompressed before the error.
    read1: Callable[[int], bytes] | None = getattr(f, "read1", None)
    return read1 if read1 is not None else f.read


def _decode_file(path: Path, f: IO[bytes], report: ProblemCallback) -> Iterator[list[Span]]:
    # A *.jsonl file is lines by definition; never buffer it whole to try it as a document.
    lines_only = path.name.endswith((".jsonl", ".jsonl.gz"))
    with f:
        yield from _decode_stream(
            _split_lines(_reader(f)), str(path), report, allow_document=not lines_only
        )


def decode_otlp_json_lines(
    source: PathArg | IO[bytes],
    *,
    on_problem: ProblemCallback | None = None,
    problems: list[DecodeProblem] | None = None,
) -> Iterator[list[Span]]:
    """Decode one OTLP/JSON file or binary stream, yielding the spans of each request.

    Handles JSON lines (one request per line, as written by the Collector's file exporter),
    gzip (``*.gz``), and a single (possibly pretty-printed) JSON document. Undecodable lines
    never raise: each becomes a :class:`DecodeProblem` passed to ``on_problem`` and/or appended
    to ``problems`` (logged as a warning when neither is given); every other line is decoded.
    A file that cannot be opened raises OSError, like ``open()``.
    """
    report = _reporter(on_problem, problems)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        yield from _decode_file(path, _open_binary(path), report)
    else:
        label = str(getattr(source, "name", "<stream>"))
        yield from _decode_stream(_split_lines(_reader(source)), label, report, allow_document=True)


def find_otlp_json_files(paths: PathArg | Iterable[PathArg]) -> list[Path]:
    """Expand files and folders (recursively: ``*.jsonl``, ``*.json`` and their ``.gz``).

    Files named explicitly are kept whatever their suffix. Raises FileNotFoundError for a path
    that does not exist, since that is a usage error rather than bad data.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(
                sorted(f for f in p.rglob("*") if f.name.endswith(_SUFFIXES) and f.is_file())
            )
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return found


def read_otlp_json_files(
    paths: PathArg | Iterable[PathArg],
    *,
    on_problem: ProblemCallback | None = None,
    problems: list[DecodeProblem] | None = None,
) -> Iterator[Span]:
    """Yield every span in the given OTLP/JSON files and folders (see decode_otlp_json_lines).

    The file list is resolved now (a missing path raises here); files are read lazily.
    """
    files = find_otlp_json_files(paths)
    report = _reporter(on_problem, problems)

    def spans() -> Iterator[Span]:
        for path in files:
            try:
                f = _open_binary(path)
            except OSError as exc:
                # Listed but gone or unreadable now (rotated by the Collector, permissions).
                report(DecodeProblem(str(path), 0, f"cannot open: {exc}"))
                continue
            for batch in _decode_file(path, f, report):
                yield from batch

    return spans()


# --------------------------------------------------------------------------------------------
# OTLP/protobuf
# --------------------------------------------------------------------------------------------


def _pb_nested(v: Any) -> object:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_nested(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_nested(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return _b64(v.bytes_value)
    return getattr(v, which)


def _pb_attrs(kvs: Any) -> Attributes:
    out: Attributes = {}
    for kv in kvs:
        key = _intern(kv.key)
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[key] = _intern(v.string_value) if key in _SHARED_VALUE_KEYS else v.string_value
        elif which == "int_value":
            out[key] = v.int_value
        elif which == "bool_value":
            out[key] = v.bool_value
        elif which == "double_value":
            out[key] = v.double_value
        elif which == "array_value":
            items: list[AttrScalar] = []
            for x in v.array_value.values:
                w = x.WhichOneof("value")
                if w is None:
                    continue
                if w in ("array_value", "kvlist_value"):
                    items.append(_json_text(_pb_nested(x)))
                elif w == "bytes_value":
                    items.append(_b64(x.bytes_value))
                else:
                    items.append(getattr(x, w))
            out[key] = items
        elif which == "kvlist_value":
            out[key] = _json_text(_pb_nested(v))
        elif which == "bytes_value":
            out[key] = _b64(v.bytes_value)
    return out


def _pb_flatten(req: Any) -> list[Span]:
    out: list[Span] = []
    append = out.append
    for rs in req.resource_spans:
        resource = _pb_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope_name = ss.scope.name
            for s in ss.spans:
                parent_raw = s.parent_span_id
                parent = _id_from_bytes(parent_raw, 8, "parent_span_id") if parent_raw else None
                if parent == _ZERO_SPAN_ID:
                    parent = None
                status = s.status
                append(
                    Span(
                        _id_from_bytes(s.trace_id, 16, "trace_id"),
                        _id_from_bytes(s.span_id, 8, "span_id"),
                        parent,
                        s.name,
                        s.kind,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        _pb_attrs(s.attributes),
                        status.code,
                        status.message,
                        [
                            Event(e.name, e.time_unix_nano, _pb_attrs(e.attributes))
                            for e in s.events
                        ],
                        resource,
                        scope_name,
                    )
                )
    return out


_pb_request_type: Any = None
_pb_decode_error: Any = None


def _decode_protobuf(data: bytes) -> list[Span]:
    global _pb_request_type, _pb_decode_error
    if _pb_request_type is None:
        # Imported on first use: the generated protobuf modules are slow to import. Through
        # importlib because protobuf ships no type stubs (types-protobuf is not a dependency).
        service = importlib.import_module(
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2"
        )
        _pb_decode_error = importlib.import_module("google.protobuf.message").DecodeError
        _pb_request_type = service.ExportTraceServiceRequest

    try:
        req = _pb_request_type.FromString(data)
    except _pb_decode_error as exc:
        raise DecodeError(
            f"malformed OTLP/protobuf ExportTraceServiceRequest ({len(data)} bytes): {exc}"
        ) from None
    return _pb_flatten(req)


def decode_otlp_protobuf(data: bytes | bytearray | memoryview) -> list[Span]:
    """Decode one binary OTLP ``ExportTraceServiceRequest`` into spans.

    Raises :class:`DecodeError` for a payload that does not parse or has ids of the wrong size.
    """
    try:
        return _without_gc(_decode_protobuf, bytes(data))
    except RecursionError:
        raise DecodeError(_TOO_DEEP) from None


# --------------------------------------------------------------------------------------------
# In-process SDK spans
# --------------------------------------------------------------------------------------------


class ReadableConverter:
    """Converts the SDK's finished spans into spans, remembering what repeats across calls:
    the Resource (one per provider, immutable) and the hex form of recent trace ids.

    Not thread-safe: one converter per consumer thread (or under the consumer's lock).
    """

    __slots__ = ("_resources", "_trace_ids")

    def __init__(self) -> None:
        self._resources: dict[int, tuple[object, Attributes]] = {}
        self._trace_ids: dict[int, str] = {}

    def convert(self, spans: Iterable[ReadableSpan]) -> list[Span]:
        """The spans, converted (the cyclic GC paused meanwhile)."""
        return _without_gc(self._convert, spans)

    def _convert(self, spans: Iterable[ReadableSpan]) -> list[Span]:
        out: list[Span] = []
        append = out.append
        resources = self._resources
        trace_ids = self._trace_ids
        if len(trace_ids) > 4096:
            trace_ids.clear()
        for s in spans:
            ctx = s.context
            if ctx is None:
                continue  # not a real span (the SDK never exports these)
            res = s.resource
            cached = resources.get(id(res))
            if cached is None or cached[0] is not res:
                if len(resources) > 64:
                    resources.clear()
                # Keep the resource object in the cache entry so its id cannot be reused.
                cached = (res, _py_attrs(res.attributes) if res is not None else {})
                resources[id(res)] = cached
            tid = ctx.trace_id
            trace_id = trace_ids.get(tid)
            if trace_id is None:
                trace_id = trace_ids[tid] = format(tid, "032x")
            parent_ctx = s.parent
            parent = (
                format(parent_ctx.span_id, "016x")
                if parent_ctx is not None and parent_ctx.span_id
                else None
            )
            status = s.status
            scope = s.instrumentation_scope
            events = s.events
            append(
                Span(
                    trace_id,
                    format(ctx.span_id, "016x"),
                    parent,
                    s.name,
                    # The SDK's SpanKind enum starts at INTERNAL=0; OTLP at UNSPECIFIED=0.
                    s.kind.value + 1,
                    s.start_time or 0,
                    s.end_time or 0,
                    _py_attrs(s._attributes if hasattr(s, "_attributes") else s.attributes),
                    status.status_code.value,  # UNSET/OK/ERROR = 0/1/2, as in OTLP
                    status.description or "",
                    [Event(e.name, e.timestamp, _py_attrs(e.attributes)) for e in events]
                    if events
                    else [],
                    cached[1],
                    scope.name if scope is not None else "",
                )
            )
        return out


def from_readable_spans(spans: Sequence[ReadableSpan]) -> list[Span]:
    """Convert the SDK's finished spans (what a SpanExporter receives) into spans."""
    return ReadableConverter().convert(spans)
