"""Forwarding: send every spooled request, unchanged, to a downstream OTLP/HTTP endpoint.

The forwarder reads records back from the spool (a persisted cursor per segment), so a
downstream outage costs disk, not memory, and nothing acknowledged is lost: the data waits in
the spool and is delivered when the downstream comes back. Consecutive requests of the same
encoding are sent as one (protobuf messages concatenate; OTLP/JSON ``resourceSpans`` lists are
spliced without re-encoding a span), up to ``forward_max_batch_bytes`` in memory.

Retries: connection errors, 408, 429, 502, 503, 504 (and 401/403/404, 3xx, which mean a
misconfigured endpoint the operator can fix) are retried forever with exponential backoff,
honouring ``Retry-After``. Any other refusal is retried once per record to isolate a poison
request, which is then dropped (counted in ``forward_dropped_spans``). Delivery is
at-least-once: a crash between sending and moving the cursor sends a batch again.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import importlib
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Final

import msgspec

from agentsignals._collector.spool import DATA_KINDS, KIND_JSON, KIND_PROTOBUF, Record, Spool
from agentsignals._collector.stats import Stats

_log = logging.getLogger("agentsignals.collector")

RETRY_FOREVER: Final = frozenset({401, 403, 404, 407, 408, 429, 502, 503, 504})
MAX_RETRY_AFTER_S: Final = 300.0
_CONTENT_TYPES: Final = {KIND_PROTOBUF: "application/x-protobuf", KIND_JSON: "application/json"}


class _RawRequest(msgspec.Struct):
    resourceSpans: list[msgspec.Raw] = msgspec.field(default_factory=list)


_raw_decoder: Final = msgspec.json.Decoder(_RawRequest)
_json_encode: Final = msgspec.json.Encoder().encode


def merge_bodies(kind: int, bodies: list[bytes]) -> bytes:
    """One request holding every span of ``bodies`` (same encoding), spans untouched."""
    if len(bodies) == 1:
        return bodies[0]
    if kind == KIND_PROTOBUF:
        # Concatenated protobuf messages parse as one with the repeated fields appended.
        return b"".join(bodies)
    merged: list[msgspec.Raw] = []
    for body in bodies:
        merged.extend(_raw_decoder.decode(body).resourceSpans)
    return _json_encode({"resourceSpans": merged})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def traces_url(url: str) -> str:
    """A bare base URL gets the OTLP/HTTP traces path, as OTEL_EXPORTER_OTLP_ENDPOINT does."""
    parts = urllib.parse.urlsplit(url)
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path="/v1/traces"))
    return url


class _Result:
    __slots__ = ("body", "error", "retry_after", "status")

    def __init__(
        self, status: int, body: bytes = b"", retry_after: float | None = None, error: str = ""
    ) -> None:
        self.status = status  # 0: no HTTP response (connection error, timeout)
        self.body = body
        self.retry_after = retry_after
        self.error = error


class Forwarder:
    """One thread that drains the spool to the downstream, in order."""

    def __init__(
        self,
        spool: Spool,
        stats: Stats,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        compression: str = "none",
        timeout_s: float = 10.0,
        max_batch_bytes: int = 4 << 20,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._spool = spool
        self._stats = stats
        self.url = traces_url(url)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"forward URL must be http(s)://host[:port][/path], got {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._headers = dict(headers or {})
        self._gzip = compression == "gzip"
        self._timeout = timeout_s
        self.max_batch_bytes = max_batch_bytes
        self.max_backoff_s = max_backoff_s
        self._conn: http.client.HTTPConnection | None = None
        self._stop = threading.Event()
        self._drain_deadline: float | None = None
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self.backing_off_until = 0.0
        self._failures = 0  # consecutive failed attempts (the backoff exponent)
        self._isolate = False  # send one request at a time until the next success

    # ---------------------------------------------------------------------------- thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="collector-forward", daemon=True)
        self._thread.start()

    def stop(self, drain_s: float = 0.0) -> None:
        """Keep sending for up to ``drain_s`` seconds while there is a backlog, then stop.

        What is not delivered stays in the spool for the next run.
        """
        self._drain_deadline = time.monotonic() + drain_s
        if drain_s <= 0:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(drain_s + self._timeout + 1.0)
            if self._thread.is_alive():
                self._stop.set()
                self._thread.join(self._timeout + 1.0)
        self._close_connection()

    def _should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        deadline = self._drain_deadline
        return deadline is not None and time.monotonic() >= deadline

    def _sleep(self, seconds: float) -> bool:
        """Wait (interruptibly); False when the forwarder should stop instead."""
        deadline = self._drain_deadline
        if deadline is not None:
            seconds = min(seconds, max(0.0, deadline - time.monotonic()))
        self._stop.wait(seconds)
        return not self._should_stop()

    def _run(self) -> None:
        while not self._should_stop():
            try:
                work = self._next()
                if work is None:
                    if self._drain_deadline is not None:
                        return  # draining and nothing left
                    self._spool.wait_for_data(0.5)
                    continue
                self._deliver(*work)
            except Exception:
                _log.exception("forwarder: unexpected error; retrying")
                self._close_connection()
                if not self._sleep(1.0):
                    return

    @property
    def backlog_bytes(self) -> int:
        """Request bytes in the spool not yet delivered."""
        total = 0
        for segment in self._spool.segments():
            cursor = self._spool.cursor(segment.seq)
            if cursor < segment.data_end:
                total += segment.data_end - cursor
        return total

    # ----------------------------------------------------------------------------- work
    def _next(self) -> tuple[int, list[Record]] | None:
        spool = self._spool
        for segment in spool.segments():
            cursor = spool.cursor(segment.seq)
            if cursor >= segment.data_end:
                continue
            end = spool.durable_end(segment.seq)
            if cursor >= end:
                return None  # the next data is not acknowledged yet
            records = spool.read(segment.seq, cursor, end, self.max_batch_bytes)
            if records:
                return segment.seq, records
            return None
        return None

    def _deliver(self, seq: int, records: list[Record]) -> None:
        """Send the leading run of same-encoding requests (markers in between ride along).

        A failed attempt returns after its backoff: the next one re-reads the spool from the
        cursor, so requests that arrived meanwhile join the batch.
        """
        kind = next((r.kind for r in records if r.kind in DATA_KINDS), None)
        if kind is None:
            self._spool.set_cursor(seq, records[-1].end)
            return
        group: list[Record] = []
        for record in records:
            if record.kind in DATA_KINDS and record.kind != kind:
                break
            group.append(record)
            if self._isolate and record.kind in DATA_KINDS:
                break  # the downstream refused a batch: find the request it objects to
        data = [r for r in group if r.kind in DATA_KINDS]
        spans = sum(r.count for r in data)
        try:
            body = merge_bodies(kind, [r.body for r in data])
        except msgspec.DecodeError:
            self._isolate = True
            if len(data) > 1:
                return
            body = data[0].body
        if self._gzip:
            body = gzip.compress(body, compresslevel=6)
        result = self._post(kind, body)
        status = result.status
        if 200 <= status < 300:
            self._count_success(kind, len(data), spans, result.body)
            self._spool.set_cursor(seq, group[-1].end)
            self._failures = 0
            self._isolate = False
            self.last_error = ""
            return
        retry_forever = status == 0 or status in RETRY_FOREVER or 300 <= status < 400
        if not retry_forever:
            if len(data) > 1:
                self._isolate = True
                return
            self.last_error = f"HTTP {status}: {_snippet(result.body)}"
            _log.error(
                "forwarder: %s refused a request of %d spans for good (%s); dropped",
                self.url,
                spans,
                self.last_error,
            )
            with self._stats.lock:
                self._stats.forward_dropped_spans += spans
            self._spool.set_cursor(seq, group[-1].end)
            self._failures = 0
            self._isolate = False
            return
        self.last_error = result.error or f"HTTP {status}: {_snippet(result.body)}"
        if result.retry_after is not None:
            delay = min(result.retry_after, MAX_RETRY_AFTER_S)
        else:
            delay = min(self.max_backoff_s, 0.5 * 2**self._failures) * random.uniform(0.8, 1.2)
        self._failures += 1
        with self._stats.lock:
            self._stats.forward_retries += 1
        failures = self._failures
        log = _log.warning if failures in (1, 5) or failures % 20 == 0 else _log.debug
        log(
            "forwarder: %s: %s; retry %d in %.1f s (data stays in the spool)",
            self.url,
            self.last_error,
            failures,
            delay,
        )
        self.backing_off_until = time.monotonic() + delay
        self._sleep(delay)

    def _count_success(self, kind: int, requests: int, spans: int, body: bytes) -> None:
        rejected = _rejected_spans(kind, body)
        with self._stats.lock:
            self._stats.forwarded_requests += requests
            self._stats.forwarded_spans += spans
            self._stats.forward_rejected_spans += rejected
        if rejected:
            _log.warning("forwarder: %s rejected %d spans (partial success)", self.url, rejected)

    # ------------------------------------------------------------------------------ HTTP
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._conn

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _post(self, kind: int, body: bytes) -> _Result:
        headers = {
            **self._headers,
            "Content-Type": _CONTENT_TYPES[kind],
            "Content-Length": str(len(body)),
            "User-Agent": "agentsignals-collector",
        }
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        for fresh in (False, True):
            if fresh:
                self._close_connection()
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read(1 << 20)
                retry_after = parse_retry_after(response.getheader("Retry-After"))
                if response.will_close or not response.isclosed():
                    self._close_connection()  # closing, or a body we did not read whole
                return _Result(response.status, payload, retry_after)
            except (http.client.HTTPException, OSError) as exc:
                self._close_connection()
                # A kept-alive connection the server closed fails once; retry on a new one.
                if not fresh and isinstance(
                    exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    continue
                return _Result(0, error=f"{type(exc).__name__}: {exc}")
        return _Result(0, error="connection failed")  # pragma: no cover


def _snippet(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text) or "(no body)"


def _rejected_spans(kind: int, body: bytes) -> int:
    """partial_success.rejected_spans of a downstream response (0 when absent/unreadable)."""
    if not body:
        return 0
    try:
        if kind == KIND_JSON:
            doc = msgspec.json.decode(body)
            partial = doc.get("partialSuccess") if isinstance(doc, dict) else None
            value = partial.get("rejectedSpans", 0) if isinstance(partial, dict) else 0
            return int(value)
        service = importlib.import_module(
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2"
        )
        response = service.ExportTraceServiceResponse.FromString(body)
        return int(response.partial_success.rejected_spans)
    except Exception:
        return 0
