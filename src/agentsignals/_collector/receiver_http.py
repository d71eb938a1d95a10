"""OTLP/HTTP receiver: ``POST /v1/traces`` (protobuf or JSON, optionally gzip), plus
``GET /health`` and ``GET /metrics``.

Responses follow the OTLP/HTTP spec: 200 with an ExportTraceServiceResponse in the request's
encoding (``partial_success`` when some spans were rejected); errors carry a google.rpc.Status
in the request's encoding; 429 and 503 carry ``Retry-After``. Hardening: a connection cap;
deadlines on every phase of a request (the wait for its first byte, the whole request line and
headers, the whole body), so a client trickling a header line a second (slowloris) is cut off
like one that stalls; framing that is ambiguous (two different ``Content-Length`` headers, or
one beside ``Transfer-Encoding``) refused with 400; a size limit checked before reading
(``Content-Length``, chunked bodies, and again after gunzip: no decompression bombs); and no
exception escapes a request.

``/metrics`` answers in the Prometheus text exposition format (``agentsignals_collector_*``
counters and gauges); ``Accept: application/json`` or ``?format=json`` gives the JSON document.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

import msgspec

from agentsignals._collector.ingest import (
    CODE_INTERNAL,
    CODE_INVALID_ARGUMENT,
    CODE_NOT_FOUND,
    CODE_RESOURCE_EXHAUSTED,
    CODE_UNAUTHENTICATED,
    CODE_UNAVAILABLE,
    CODE_UNIMPLEMENTED,
    Ingest,
    Rejected,
    Throttled,
    Unavailable,
    export_response,
    status_body,
)
from agentsignals._collector.spool import KIND_JSON, KIND_PROTOBUF
from agentsignals._collector.stats import Stats

_log = logging.getLogger("agentsignals.collector")

TRACES_PATH: Final = "/v1/traces"
_PROTOBUF_TYPES: Final = frozenset(
    {"application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"}
)
_CONTENT_TYPE: Final = {KIND_PROTOBUF: "application/x-protobuf", KIND_JSON: "application/json"}
_BOM: Final = b"\xef\xbb\xbf"
_DRAIN_LIMIT: Final = 1 << 20  # bytes we read and discard to answer an unread body cleanly
_PROMETHEUS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_json_encode: Final = msgspec.json.Encoder().encode
_DATE_CACHE: list[Any] = [0, ""]  # (second, Date header value)


class App(Protocol):
    """What the receiver needs from the collector."""

    ingest: Ingest
    stats: Stats

    def authorized(self, header: str | None) -> bool: ...
    def metrics(self) -> dict[str, Any]: ...
    def metrics_text(self) -> str: ...
    def health(self) -> tuple[int, dict[str, Any]]: ...


class _HttpError(Exception):
    def __init__(self, status: int, code: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.close = close


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        *,
        max_request_bytes: int,
        read_timeout_s: float,
        header_timeout_s: float,
        max_connections: int,
        retry_after_s: int,
        reuse_port: bool = False,
        sock: socket.socket | None = None,
        routed: bool = False,
    ) -> None:
        self.app = app
        # Requests on this server were routed here by another worker: processed here.
        self.routed = routed
        self.allow_reuse_port = reuse_port
        self.max_request_bytes = max_request_bytes
        self.read_timeout_s = read_timeout_s
        self.header_timeout_s = min(header_timeout_s, read_timeout_s)
        self.retry_after_s = retry_after_s
        self._slots = threading.BoundedSemaphore(max_connections)
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.busy = 0
        self.busy_cond = threading.Condition(self._conn_lock)
        super().__init__(address, _Handler, bind_and_activate=sock is None)
        if sock is not None:  # a listening socket handed over by the parent process
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Retry-After: %d\r\nConnection: close\r\n\r\n" % self.retry_after_s
                )
            self.shutdown_request(request)
            return
        with self._conn_lock:
            self._connections.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: socket.socket) -> None:
        with self._conn_lock:
            if request in self._connections:
                self._connections.discard(request)
                self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("http: error on a connection from %s", client_address, exc_info=True)

    def close_idle_connections(self, wait_s: float) -> None:
        """Let requests in progress finish (up to wait_s), then cut every connection."""
        deadline = time.monotonic() + wait_s
        with self.busy_cond:
            while self.busy and time.monotonic() < deadline:
                self.busy_cond.wait(max(0.0, deadline - time.monotonic()))
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _DeadlineReader(io.RawIOBase):
    """Socket reads under a deadline: each recv may block only for the time left.

    A per-recv socket timeout alone lets a client that sends a byte now and then hold a
    connection forever. Between requests the deadline is ``None`` and a recv waits up to
    ``idle_s``; the first byte of a request starts the header deadline; the handler moves it
    to the body deadline once the headers are in.
    """

    def __init__(self, sock: socket.socket, idle_s: float, header_s: float) -> None:
        super().__init__()
        self._sock = sock
        self._idle_s = idle_s
        self._header_s = header_s
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            self._sock.settimeout(self._idle_s)
            n = self._sock.recv_into(buffer)
            if n:
                self.deadline = time.monotonic() + self._header_s
            return n
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not received in time")
        self._sock.settimeout(min(left, self._idle_s))
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "agentsignals-collector"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        # The socket timeout for every write (a client that does not read is cut off); reads
        # go through a deadline reader.
        server = self.server
        self.request.settimeout(server.read_timeout_s)
        super().setup()
        self._reader = _DeadlineReader(self.request, server.read_timeout_s, server.header_timeout_s)
        self.rfile = io.BufferedReader(self._reader, 65536)
        self._first = True

    def handle_one_request(self) -> None:
        reader = self._reader
        if self._first:
            # A new connection must start its request promptly: the header deadline runs from
            # the accept. Between keep-alive requests it waits up to read_timeout_s, then
            # runs from the next request's first byte.
            self._first = False
            reader.deadline = time.monotonic() + self.server.header_timeout_s
        else:
            reader.deadline = None
        super().handle_one_request()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        # Headers are in: the whole body has read_timeout_s from now.
        self._reader.deadline = time.monotonic() + self.server.read_timeout_s
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("http: %s %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if _log.isEnabledFor(logging.DEBUG):
            super().log_request(code, size)

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())  # the Date header changes once a second: format it once
        cached = _DATE_CACHE
        if cached[0] != now:
            cached[:] = [now, super().date_time_string(now)]
        return str(cached[1])

    def version_string(self) -> str:
        return self.server_version

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        text = (self.headers.get("Content-Length") or "").strip()
        if text.isdigit() and (len(text) > 18 or int(text) > self.server.max_request_bytes):
            kind = _kind(self.headers.get("Content-Type")) or KIND_JSON
            self._send_status(413, kind, CODE_INVALID_ARGUMENT, self._too_large(), close=True)
            return False
        return super().handle_expect_100()

    # ---------------------------------------------------------------------------- routing
    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        server = self.server
        with server.busy_cond:
            server.busy += 1
        try:
            self._route()
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception:
            _log.exception("http: unexpected error handling %s %s", self.command, self.path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_json(500, {"code": CODE_INTERNAL, "message": "internal error"})
        finally:
            with server.busy_cond:
                server.busy -= 1
                server.busy_cond.notify_all()

    def _framing_error(self) -> str | None:
        """Why the body's length is ambiguous (request smuggling, a confused client)."""
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if len(lengths) > 1:
            return "conflicting Content-Length headers"
        if lengths and self.headers.get("Transfer-Encoding") is not None:
            return "both Content-Length and Transfer-Encoding: the body length is ambiguous"
        if len(self.headers.get_all("Transfer-Encoding") or []) > 1:
            return "more than one Transfer-Encoding header"
        return None

    def _route(self) -> None:
        framing = self._framing_error()
        if framing is not None:
            self.close_connection = True  # the body cannot be skipped reliably
            self.server.app.stats.reject("malformed")
            kind = _kind(self.headers.get("Content-Type")) or KIND_JSON
            self._send_status(400, kind, CODE_INVALID_ARGUMENT, framing, close=True)
            return
        path = self.path.split("?", 1)[0]
        method = self.command
        routes: dict[str, tuple[str, Callable[[], None]]] = {
            TRACES_PATH: ("POST", self._export),
            "/health": ("GET", self._health),
            "/metrics": ("GET", self._metrics),
        }
        route = routes.get(path)
        if route is None:
            self._discard_body()
            self._send_json(404, {"code": CODE_NOT_FOUND, "message": f"no such path: {path}"})
            return
        allowed, handler = route
        if method == allowed or (allowed == "GET" and method == "HEAD"):
            handler()
            return
        self._discard_body()
        self._send_json(
            405,
            {
                "code": CODE_UNIMPLEMENTED,
                "message": f"{method} not allowed on {path}: use {allowed}",
            },
            headers={"Allow": allowed + (", HEAD" if allowed == "GET" else "")},
        )

    # ------------------------------------------------------------------------------ OTLP
    def _export(self) -> None:
        app = self.server.app
        stats = app.stats
        with stats.lock:
            stats.http_requests += 1
        kind = _kind(self.headers.get("Content-Type"))
        if kind is None:
            stats.reject("unsupported_media_type")
            self._discard_body()
            got = self.headers.get("Content-Type") or "none"
            self._send_status(
                415,
                KIND_JSON,
                CODE_INVALID_ARGUMENT,
                f"unsupported Content-Type {got!r}: use application/x-protobuf or application/json",
            )
            return
        if not app.authorized(self.headers.get("Authorization")):
            stats.reject("unauthorized")
            self._discard_body()
            self._send_status(
                401,
                kind,
                CODE_UNAUTHENTICATED,
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="agentsignals"'},
            )
            return
        ingest = app.ingest
        reserved = self._body_allowance()
        if ingest.saturated() or not ingest.reserve(reserved):
            stats.reject("throttled", throttled=True)
            self._discard_body()
            self._throttle(kind, Throttled(self.server.retry_after_s))
            return
        try:
            self._export_body(kind, stats, ingest)
        finally:
            ingest.release(reserved)

    def _body_allowance(self) -> int:
        """What reading and decoding this request may take: its length, or the limit."""
        limit = self.server.max_request_bytes
        text = (self.headers.get("Content-Length") or "").strip()
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if not text.isdigit() or len(text) > 18 or self.headers.get("Transfer-Encoding"):
            return limit
        length = int(text)
        if encoding not in ("identity", ""):
            return min(limit, 16 * length)  # OTLP compresses about 8-14x
        return min(limit, length)

    def _throttle(self, kind: int, exc: Throttled) -> None:
        self._send_status(
            429,
            kind,
            CODE_RESOURCE_EXHAUSTED,
            str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        )

    def _export_body(self, kind: int, stats: Stats, ingest: Ingest) -> None:
        try:
            body = self._read_body()
            body = self._decompress(body)
        except _HttpError as exc:
            stats.reject("too_large" if exc.status == 413 else "malformed")
            self._send_status(exc.status, kind, exc.code, exc.message, close=exc.close)
            return
        if kind == KIND_JSON and body.startswith(_BOM):
            body = body[len(_BOM) :]
        try:
            result = ingest.export(body, kind, routed=self.server.routed)
        except Rejected as exc:
            stats.reject("malformed")
            self._send_status(400, kind, CODE_INVALID_ARGUMENT, str(exc))
            return
        except Throttled as exc:
            stats.reject("throttled", throttled=True)
            self._throttle(kind, exc)
            return
        except Unavailable as exc:
            stats.reject("unavailable")
            self._send_status(
                503,
                kind,
                CODE_UNAVAILABLE,
                str(exc),
                headers={"Retry-After": str(self.server.retry_after_s)},
            )
            return
        self._send(200, export_response(kind, result.rejected, result.message), _CONTENT_TYPE[kind])

    def _too_large(self) -> str:
        return f"request body larger than the limit of {self.server.max_request_bytes} bytes"

    def _read_body(self) -> bytes:
        limit = self.server.max_request_bytes
        deadline = time.monotonic() + self.server.read_timeout_s
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise _HttpError(
                    400, CODE_INVALID_ARGUMENT, f"unsupported Transfer-Encoding {encoding!r}",
                    close=True,
                )  # fmt: skip
            return self._read_chunked(limit, deadline)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _HttpError(411, CODE_INVALID_ARGUMENT, "Content-Length required", close=True)
        text = length_header.strip()
        if not text.isdigit() or len(text) > 18:
            raise _HttpError(
                400, CODE_INVALID_ARGUMENT, f"invalid Content-Length {text[:40]!r}", close=True
            )
        length = int(text)
        if length > limit:
            if length <= _DRAIN_LIMIT + limit:
                self._drain(length, deadline)
            raise _HttpError(413, CODE_INVALID_ARGUMENT, self._too_large(), close=True)
        return self._read_exact(length, deadline)

    def _read_exact(self, length: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        remaining = length
        rfile = self.rfile
        while remaining:
            if time.monotonic() > deadline:
                raise _HttpError(
                    408, CODE_INVALID_ARGUMENT, "request body not received in time", close=True
                )
            chunk = rfile.read1(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise _HttpError(400, CODE_INVALID_ARGUMENT, "malformed chunked body", close=True)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _HttpError(
                    400, CODE_INVALID_ARGUMENT, "malformed chunk size in chunked body", close=True
                ) from None
            if size == 0:
                while True:  # trailers
                    trailer = self.rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(chunks)
            total += size
            if size < 0 or total > limit:
                raise _HttpError(413, CODE_INVALID_ARGUMENT, self._too_large(), close=True)
            chunks.append(self._read_exact(size, deadline))
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _HttpError(400, CODE_INVALID_ARGUMENT, "malformed chunked body", close=True)

    def _decompress(self, body: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding in ("identity", ""):
            return body
        if encoding in ("gzip", "x-gzip"):
            return _inflate(body, self.server.max_request_bytes, 16 + zlib.MAX_WBITS, "gzip")
        if encoding == "deflate":
            return _inflate(body, self.server.max_request_bytes, zlib.MAX_WBITS, "deflate")
        raise _HttpError(
            415, CODE_INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}: use gzip"
        )

    def _drain(self, length: int, deadline: float) -> None:
        with contextlib.suppress(_HttpError, ConnectionError, TimeoutError):
            self._read_exact(length, deadline)

    def _discard_body(self) -> None:
        """Read and drop a body we will not use, so the connection can be kept (or close)."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
        elif length is not None:
            text = length.strip()
            if not text.isdigit() or int(text) > _DRAIN_LIMIT:
                self.close_connection = True
            elif int(text):
                try:
                    self._read_exact(int(text), time.monotonic() + self.server.read_timeout_s)
                except (_HttpError, ConnectionError, TimeoutError):
                    self.close_connection = True

    # -------------------------------------------------------------------------- endpoints
    def _health(self) -> None:
        status, doc = self.server.app.health()
        self._send_json(status, doc)

    def _metrics(self) -> None:
        app = self.server.app
        if not app.authorized(self.headers.get("Authorization")):
            self._send_json(
                401,
                {"code": CODE_UNAUTHENTICATED, "message": "missing or wrong bearer token"},
                headers={"WWW-Authenticate": 'Bearer realm="agentsignals"'},
            )
            return
        if _wants_json(self.path, self.headers.get("Accept")):
            self._send_json(200, app.metrics())
        else:
            self._send(200, app.metrics_text().encode("utf-8"), _PROMETHEUS_TYPE)

    # ---------------------------------------------------------------------------- replies
    def _send_status(
        self,
        status: int,
        kind: int,
        code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        self._send(status, status_body(kind, code, message), _CONTENT_TYPE[kind], headers, close)

    def _send_json(
        self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, _json_encode(doc), "application/json", headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _wants_json(path: str, accept: str | None) -> bool:
    """``?format=json``, or an Accept header that prefers JSON (Prometheus sends text/plain
    or its own types, browsers text/html: both get the text format)."""
    query = path.partition("?")[2]
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "format":
            return value.lower() == "json"
    media = [m.split(";", 1)[0].strip().lower() for m in (accept or "").split(",")]
    return bool(media) and media[0] in ("application/json", "application/*+json")


def _kind(content_type: str | None) -> int | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _PROTOBUF_TYPES:
        return KIND_PROTOBUF
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return KIND_JSON
    return None


def _inflate(data: bytes, limit: int, wbits: int, name: str) -> bytes:
    """Decompress (every gzip member), refusing more than ``limit`` bytes of output."""
    out: list[bytes] = []
    total = 0
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            chunk = inflater.decompress(data, limit + 1 - total)
            total += len(chunk)
            out.append(chunk)
            if total > limit or inflater.unconsumed_tail:
                raise _HttpError(
                    413,
                    CODE_INVALID_ARGUMENT,
                    f"decompressed request body larger than the limit of {limit} bytes",
                )
            if not inflater.eof:
                raise _HttpError(
                    400,
                    CODE_INVALID_ARGUMENT,
                    f"truncated {name} body: the compressed stream ends before its end",
                )
            data = inflater.unused_data
            if not data or name != "gzip" or not data.strip(b"\0"):
                break
    except zlib.error as exc:
        raise _HttpError(400, CODE_INVALID_ARGUMENT, f"invalid {name} body: {exc}") from None
    return b"".join(out)


class HttpReceiver:
    """The threaded HTTP server, run by a background thread."""

    def __init__(
        self,
        app: App,
        host: str,
        port: int,
        *,
        max_request_bytes: int,
        read_timeout_s: float,
        max_connections: int,
        retry_after_s: int,
        header_timeout_s: float = 10.0,
        reuse_port: bool = False,
        sock: socket.socket | None = None,
        routed: bool = False,
    ) -> None:
        server_type = _Server6 if ":" in host else _Server
        self._server = server_type(
            (host, port),
            app,
            max_request_bytes=max_request_bytes,
            read_timeout_s=read_timeout_s,
            header_timeout_s=header_timeout_s,
            max_connections=max_connections,
            retry_after_s=retry_after_s,
            reuse_port=reuse_port,
            sock=sock,
            routed=routed,
        )
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="collector-http",
            daemon=True,
        )
        self._thread.start()

    def stop_accepting(self) -> None:
        """Close the listening socket; connections already open keep working."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def close(self, wait_s: float) -> None:
        """Let requests in progress finish, then cut the remaining (idle) connections."""
        self._server.close_idle_connections(wait_s)
