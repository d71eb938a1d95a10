"""What both receivers do with an export request: decode, salvage, admit, spool, acknowledge.

The request thread decodes (so a malformed payload is answered at once, with the decoder's
message) and spools; the processing thread only sees typed spans. A request with some bad
spans is accepted without them (OTLP partial success); one where nothing is usable is a 400.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, Final

import msgspec

from agentsignals._collector.pipeline import Batch, SpanQueue
from agentsignals._collector.spool import KIND_JSON, KIND_PROTOBUF, Position, Spool, SpoolError
from agentsignals._collector.stats import Stats
from agentsignals._collector.workers import (
    PeerError,
    Router,
    partial_success,
    protobuf_trace_ids,
)
from agentsignals._spans.decode import DecodeError, decode_otlp_json, decode_otlp_protobuf
from agentsignals._spans.encode import encode_otlp_protobuf
from agentsignals._spans.model import Span

# google.rpc.Code numbers used in error bodies and gRPC statuses.
CODE_INVALID_ARGUMENT: Final = 3
CODE_NOT_FOUND: Final = 5
CODE_RESOURCE_EXHAUSTED: Final = 8
CODE_UNIMPLEMENTED: Final = 12
CODE_INTERNAL: Final = 13
CODE_UNAVAILABLE: Final = 14
CODE_UNAUTHENTICATED: Final = 16


class Rejected(Exception):
    """The request is malformed (400 / INVALID_ARGUMENT); the message says what is wrong."""


class Throttled(Exception):
    """The processing queue is full (429 / RESOURCE_EXHAUSTED); retry after ``retry_after``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the collector is busy: retry after {retry_after} s")
        self.retry_after = retry_after


class Unavailable(Exception):
    """The collector cannot take data now (503 / UNAVAILABLE): shutting down, spool failed."""


@dataclass(frozen=True, slots=True)
class Accepted:
    spans: int
    rejected: int = 0
    message: str = ""


# ---------------------------------------------------------------------------- protobuf types


class _Proto:
    """The generated protobuf modules, imported on first use (protobuf ships no stubs)."""

    _lock = threading.Lock()
    _loaded = False
    trace_service: Any
    trace: Any
    status: Any
    error_details: Any

    @classmethod
    def load(cls) -> type[_Proto]:
        if not cls._loaded:
            with cls._lock:
                if not cls._loaded:
                    cls.trace_service = importlib.import_module(
                        "opentelemetry.proto.collector.trace.v1.trace_service_pb2"
                    )
                    cls.trace = importlib.import_module("opentelemetry.proto.trace.v1.trace_pb2")
                    cls.status = importlib.import_module("google.rpc.status_pb2")
                    cls.error_details = importlib.import_module("google.rpc.error_details_pb2")
                    cls._loaded = True
        return cls


_json_encode: Final = msgspec.json.Encoder().encode


def export_response(kind: int, rejected: int = 0, message: str = "") -> bytes:
    """An ExportTraceServiceResponse in the request's encoding."""
    if kind == KIND_JSON:
        if not rejected and not message:
            return b"{}"
        return _json_encode(
            {"partialSuccess": {"rejectedSpans": rejected, "errorMessage": message}}
        )
    if not rejected and not message:
        return b""  # an empty ExportTraceServiceResponse serializes to no bytes
    proto = _Proto.load()
    response = proto.trace_service.ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return bytes(response.SerializeToString())


def status_body(kind: int, code: int, message: str) -> bytes:
    """A google.rpc.Status (the OTLP/HTTP error body) in the request's encoding."""
    if kind == KIND_PROTOBUF:
        proto = _Proto.load()
        return bytes(proto.status.Status(code=code, message=message).SerializeToString())
    return _json_encode({"code": code, "message": message})


def retry_info(delay_s: int, message: str) -> tuple[bytes, bytes]:
    """A serialized google.rpc.RetryInfo, and the RESOURCE_EXHAUSTED google.rpc.Status
    (with ``message``, the same as the gRPC status's) carrying it as a detail."""
    proto = _Proto.load()
    info = proto.error_details.RetryInfo()
    info.retry_delay.seconds = delay_s
    status = proto.status.Status(code=CODE_RESOURCE_EXHAUSTED, message=message)
    status.details.add().Pack(info)
    return bytes(info.SerializeToString()), bytes(status.SerializeToString())


# ------------------------------------------------------------------------------------ salvage


def _pb_span_ok(span: Any) -> bool:
    # The same checks as the decoder: ids of the right size.
    return (
        len(span.trace_id) == 16 and len(span.span_id) == 8 and len(span.parent_span_id) in (0, 8)
    )


def _salvage_protobuf(body: bytes, error: DecodeError) -> tuple[list[Span], bytes, int]:
    proto = _Proto.load()
    try:
        request = proto.trace_service.ExportTraceServiceRequest.FromString(body)
    except Exception:
        raise Rejected(str(error)) from None
    kept = proto.trace_service.ExportTraceServiceRequest()
    rejected = accepted = 0
    for rs in request.resource_spans:
        new_rs = kept.resource_spans.add()
        new_rs.resource.CopyFrom(rs.resource)
        new_rs.schema_url = rs.schema_url
        for ss in rs.scope_spans:
            new_ss = new_rs.scope_spans.add()
            new_ss.scope.CopyFrom(ss.scope)
            new_ss.schema_url = ss.schema_url
            for span in ss.spans:
                if _pb_span_ok(span):
                    new_ss.spans.add().CopyFrom(span)
                    accepted += 1
                else:
                    rejected += 1
    if not rejected or not accepted:
        raise Rejected(str(error))
    new_body = bytes(kept.SerializeToString())
    try:
        spans = decode_otlp_protobuf(new_body)
    except DecodeError:
        raise Rejected(str(error)) from None
    return spans, new_body, rejected


def _salvage_json(body: bytes, error: DecodeError) -> tuple[list[Span], bytes, int]:
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise Rejected(str(error)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
        raise Rejected(str(error))
    kept_resources: list[dict[str, Any]] = []
    rejected = accepted = 0
    for rs in doc["resourceSpans"]:
        if not isinstance(rs, dict):
            raise Rejected(str(error))
        key = "scopeSpans" if "scopeSpans" in rs else "instrumentationLibrarySpans"
        scopes = rs.get(key) or []
        if not isinstance(scopes, list):
            raise Rejected(str(error))
        kept_scopes: list[dict[str, Any]] = []
        for ss in scopes:
            if not isinstance(ss, dict) or not isinstance(ss.get("spans") or [], list):
                raise Rejected(str(error))
            scope = ss.get("scope", ss.get("instrumentationLibrary"))
            keep: list[Any] = []
            for span in ss.get("spans") or []:
                scope_spans = [{"scope": scope, "spans": [span]}]
                probe = {
                    "resourceSpans": [{"resource": rs.get("resource"), "scopeSpans": scope_spans}]
                }
                try:
                    decode_otlp_json(_json_encode(probe))
                except DecodeError:
                    rejected += 1
                else:
                    keep.append(span)
                    accepted += 1
            if keep:
                kept_scopes.append({**ss, "spans": keep})
        if kept_scopes:
            kept_resources.append({**rs, key: kept_scopes})
    if not rejected or not accepted:
        raise Rejected(str(error))
    new_body = _json_encode({"resourceSpans": kept_resources})
    try:
        spans = decode_otlp_json(new_body)
    except DecodeError:
        raise Rejected(str(error)) from None
    return spans, new_body, rejected


# -------------------------------------------------------------------------------------- ingest


class Ingest:
    """Decode, admit to the processing queue, spool, and wait for durability."""

    def __init__(
        self,
        spool: Spool,
        queue: SpanQueue,
        stats: Stats,
        *,
        retry_after_s: int = 1,
        decode_concurrency: int = 2,
        body_budget_bytes: int = 64 << 20,
        max_spool_bytes: int | None = None,
    ) -> None:
        self._spool = spool
        self._queue = queue
        self._stats = stats
        self.retry_after_s = retry_after_s
        # Bytes of request bodies being read, decompressed or decoded at once: a flood of
        # large requests is shed with 429 before it is read, instead of growing memory.
        self.body_budget_bytes = body_budget_bytes
        self._body_bytes = 0
        self._budget_lock = threading.Lock()
        # The GIL makes more parallel decodes slower, not faster, and each holds a decoded
        # request in memory: waiting requests hold only their bytes. A pool of tokens in a
        # SimpleQueue (its blocking get is C code) costs far less per request than
        # threading.Semaphore, whose Condition hands the GIL around in Python.
        self._decode_slots: SimpleQueue[None] = SimpleQueue()
        for _ in range(decode_concurrency):
            self._decode_slots.put(None)
        self.max_spool_bytes = max_spool_bytes
        # With --workers: who owns which trace, and the way to the other workers.
        self.router: Router | None = None
        self.stopping = False

    def spool_full(self) -> bool:
        """The spool is over max_spool_bytes (the ticker is bringing it back under)."""
        cap = self.max_spool_bytes
        return cap is not None and self._spool.total_bytes > cap

    def saturated(self) -> bool:
        """The processing queue is full: new requests would be refused anyway."""
        return self._queue.full()

    def reserve(self, nbytes: int) -> bool:
        """Claim room for a request body; False when the budget is spent (answer 429).

        One request is always let through, however large, so progress is guaranteed.
        """
        with self._budget_lock:
            if self._body_bytes and self._body_bytes + nbytes > self.body_budget_bytes:
                return False
            self._body_bytes += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self._budget_lock:
            self._body_bytes -= nbytes

    @property
    def body_bytes(self) -> int:
        """Bytes of request bodies in progress."""
        return self._body_bytes

    def export(self, body: bytes, kind: int, *, routed: bool = False) -> Accepted:
        """Take one ExportTraceServiceRequest body (decompressed). Raises Rejected,
        Throttled or Unavailable; returns once the request is durable (with workers: once
        every part is durable in the spool of the worker that owns its trace). ``routed``:
        another worker sent it here, it is this worker's to keep."""
        if self.stopping:
            raise Unavailable("the collector is shutting down")
        if self._queue.full() or self.spool_full():
            raise Throttled(self.retry_after_s)
        router = None if routed else self.router
        if router is not None and kind == KIND_PROTOBUF:
            scanned = protobuf_trace_ids(body)
            if scanned is not None:
                ids, count = scanned
                owners = {router.owner(t) for t in ids}
                if len(owners) == 1 and router.index not in owners:
                    return self._relay(router, owners.pop(), body, kind, count)
                if len(owners) <= 1:
                    router = None  # all of it is this worker's
        rejected = 0
        message = ""
        slots = self._decode_slots
        slots.get()
        try:
            try:
                if kind == KIND_PROTOBUF:
                    spans = decode_otlp_protobuf(body)
                else:
                    spans = decode_otlp_json(body)
            except DecodeError as exc:
                salvage = _salvage_protobuf if kind == KIND_PROTOBUF else _salvage_json
                try:
                    spans, body, rejected = salvage(body, exc)
                except Rejected:
                    raise
                except Exception:
                    # Salvage is best effort (a hostile body may defeat it, e.g. nested too
                    # deeply for the untyped parser): the request stays a 400, never a 500.
                    raise Rejected(str(exc)) from None
                message = f"{rejected} span(s) rejected: {exc}"
        finally:
            slots.put(None)
        if not spans:
            return Accepted(0, rejected, message)
        relayed = 0
        if router is not None:
            spans, body, kind, relayed = self._split(router, spans, body, kind)
            if not spans:
                return Accepted(relayed, rejected, message)
        batch = Batch(spans)
        queue = self._queue

        def admit(end: Position) -> bool:
            batch.end = end
            return queue.try_put(batch)

        try:
            ticket = self._spool.append(kind, len(spans), body, admit)
            if ticket is None:
                raise Throttled(self.retry_after_s)
            self._spool.commit(ticket)
        except (SpoolError, OSError) as exc:
            raise Unavailable(f"could not store the request: {exc}") from None
        stats = self._stats
        with stats.lock:
            stats.received_requests += 1
            stats.received_spans += len(spans)
            stats.received_bytes += len(body)
            stats.rejected_spans += rejected
        return Accepted(len(spans) + relayed, rejected, message)

    def _split(
        self, router: Router, spans: list[Span], body: bytes, kind: int
    ) -> tuple[list[Span], bytes, int, int]:
        """Send the spans of traces other workers own to them; this worker's spans, the
        body to spool for them, its kind, and how many spans went elsewhere."""
        parts: dict[int, list[Span]] = {}
        owners: dict[str, int] = {}
        for span in spans:
            who = owners.get(span.trace_id)
            if who is None:
                who = owners[span.trace_id] = router.owner_hex(span.trace_id)
            parts.setdefault(who, []).append(span)
        mine = parts.pop(router.index, [])
        if not parts:
            return mine, body, kind, 0
        relayed = 0
        for peer, part in sorted(parts.items()):
            relayed += self._relay(
                router, peer, encode_otlp_protobuf(part), KIND_PROTOBUF, len(part)
            ).spans  # (re-encoded from valid spans: the owner rejects none of them)
        if not mine:
            return [], b"", KIND_PROTOBUF, relayed
        return mine, encode_otlp_protobuf(mine), KIND_PROTOBUF, relayed

    def _relay(self, router: Router, peer: int, body: bytes, kind: int, count: int) -> Accepted:
        content_type = "application/x-protobuf" if kind == KIND_PROTOBUF else "application/json"
        try:
            response = router.relay(peer, body, content_type)
        except PeerError as exc:
            if exc.status == 429:
                raise Throttled(exc.retry_after) from None
            if exc.status == 400:
                raise Rejected(exc.message) from None
            raise Unavailable(exc.message) from None
        stats = self._stats
        with stats.lock:
            stats.relayed_requests += 1
            stats.relayed_spans += count
        rejected, message = partial_success(response, kind == KIND_JSON)
        return Accepted(count - rejected, rejected, message)
