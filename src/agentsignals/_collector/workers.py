"""Several collector processes on one machine: ``workers: N`` (``--workers N``).

The collector is one core (the GIL). ``--workers N`` runs N processes that listen on the same
OTLP ports with ``SO_REUSEPORT`` (the kernel spreads connections over them), each with its own
spool and feature files under ``<output_dir>/worker-<i>/``, so no two ever write one file.

Trace affinity. An attempt's record needs every span of the attempt and a trial's record
every attempt, and a trial is one trace (see ``collectors/README.md``): all spans of a trace
must be assembled by one process, whichever process the connection landed on. So each trace
has an owner, ``crc32(trace id) % N``, and a worker hands the spans it does not own to their
owner over loopback (OTLP/HTTP to the owner's private port) before it answers. A request whose
spans all belong to one other worker (the usual case: an agent's exporter sends its own trace)
is relayed as it came, without decoding it: the trace ids are read from the protobuf wire
format directly. A request mixing traces of several owners is decoded, split and re-encoded.
The client gets 200 only once every part is durable in its owner's spool (the same guarantee as
one process); a part its owner refuses makes the whole request fail with the owner's status
(429, 503, 400), and a retry's spans that were already taken are dropped as duplicates.

The parent process only starts, watches (a worker that dies is restarted on the same private
socket, and replays its spool) and stops the workers; it holds the private listening sockets so
a restarted worker keeps its address.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType
from typing import Any, Final

from agentsignals._collector.config import TOKEN_ENV, CollectorConfig, config_from_mapping

_log = logging.getLogger("agentsignals.collector")

WORKER_ENV: Final = "AGENTSIGNALS_COLLECTOR_WORKER"
ROUTED_PATH: Final = "/v1/traces"


def owner(trace_id: bytes, count: int) -> int:
    """The worker that assembles a trace (16 raw trace-id bytes)."""
    return zlib.crc32(trace_id) % count


def owner_hex(trace_id: str, count: int) -> int:
    """``owner`` of a trace id in its hex form (as decoded spans carry it)."""
    try:
        raw = bytes.fromhex(trace_id)
    except ValueError:
        raw = trace_id.encode()
    return owner(raw, count)


# ------------------------------------------------------------------- protobuf trace ids


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported wire type {wire}")


def _children(buf: bytes, start: int, end: int, wanted: int) -> list[tuple[int, int]]:
    """(start, end) of every length-delimited field number ``wanted`` in buf[start:end]."""
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            if field == wanted:
                out.append((pos, pos + length))
            pos += length
        else:
            pos = _skip(buf, pos, wire)
    if pos != end:
        raise ValueError("field runs past its message")
    return out


def protobuf_trace_ids(body: bytes) -> tuple[set[bytes], int] | None:
    """The trace ids (raw) and span count of an ExportTraceServiceRequest, read from the wire
    format without decoding it; None when it is not well formed (the decoder then says why)."""
    ids: set[bytes] = set()
    count = 0
    try:
        for rs_start, rs_end in _children(body, 0, len(body), 1):  # resource_spans
            for ss_start, ss_end in _children(body, rs_start, rs_end, 2):  # scope_spans
                pos = ss_start
                while pos < ss_end:  # the scope's fields: spans (2) and the rest
                    tag = body[pos]
                    if tag < 0x80:
                        pos += 1
                    else:
                        tag, pos = _varint(body, pos)
                    if tag & 7 != 2:
                        pos = _skip(body, pos, tag & 7)
                        continue
                    length = body[pos]
                    if length < 0x80:
                        pos += 1
                    else:
                        length, pos = _varint(body, pos)
                    end = pos + length
                    if tag == 0x12:  # a span
                        count += 1
                        # Serializers write field 1 (trace_id, 16 bytes) first: 0A 10 <id>.
                        if body[pos] == 0x0A and body[pos + 1] == 16 and pos + 18 <= end:
                            ids.add(body[pos + 2 : pos + 18])
                        elif not _trace_id_anywhere(body, pos, end, ids):
                            return None
                    pos = end
                if pos != ss_end:
                    return None
    except (IndexError, ValueError):
        return None
    return ids, count


def _trace_id_anywhere(body: bytes, pos: int, end: int, ids: set[bytes]) -> bool:
    """A span whose trace_id is not its first field: look through its fields."""
    while pos < end:
        tag, pos = _varint(body, pos)
        if tag == 0x0A:
            length, pos = _varint(body, pos)
            if length != 16 or pos + 16 > end:
                return False
            ids.add(body[pos : pos + 16])
            return True
        pos = _skip(body, pos, tag & 7)
    return False


# ------------------------------------------------------------------------------ routing


class PeerError(Exception):
    """The owner answered with an error status (or could not be reached: status 503)."""

    def __init__(self, status: int, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Router:
    """Which worker owns a trace, and the loopback connections to the other workers."""

    def __init__(
        self, index: int, ports: Sequence[int], *, token: str | None, timeout_s: float = 30.0
    ) -> None:
        self.index = index
        self.count = len(ports)
        self.ports = list(ports)
        self._token = token
        self._timeout_s = timeout_s
        self._local = threading.local()

    def owner(self, trace_id: bytes) -> int:
        return owner(trace_id, self.count)

    def owner_hex(self, trace_id: str) -> int:
        return owner_hex(trace_id, self.count)

    def _connection(self, peer: int) -> http.client.HTTPConnection:
        conns: dict[int, http.client.HTTPConnection] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(peer)
        if conn is None:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.ports[peer], timeout=self._timeout_s
            )
            conns[peer] = conn
        return conn

    def relay(self, peer: int, body: bytes, content_type: str) -> bytes:
        """POST an export request to its owner; its response body on 200, else PeerError."""
        headers = {"Content-Type": content_type}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in (1, 2):  # a kept-alive connection the peer closed: reconnect once
            conn = self._connection(peer)
            try:
                conn.request("POST", ROUTED_PATH, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conns.pop(peer, None)
                if attempt == 2:
                    raise PeerError(503, f"worker {peer} unreachable: {exc}") from None
                continue
            if response.status == 200:
                return data
            retry = response.getheader("Retry-After") or "1"
            message = _status_message(data, response.getheader("Content-Type") or "")
            raise PeerError(
                response.status,
                f"worker {peer}: {message}",
                int(retry) if retry.isdigit() else 1,
            )
        raise PeerError(503, f"worker {peer} unreachable")  # pragma: no cover


def _status_message(body: bytes, content_type: str) -> str:
    """The message of a google.rpc.Status body (JSON, or protobuf field 2)."""
    if "json" in content_type:
        try:
            doc = json.loads(body)
        except ValueError:
            return body[:200].decode("utf-8", "replace")
        return str(doc.get("message", "")) if isinstance(doc, dict) else ""
    try:
        pos = 0
        while pos < len(body):
            tag, pos = _varint(body, pos)
            if tag == 0x12:  # field 2: message
                length, pos = _varint(body, pos)
                return body[pos : pos + length].decode("utf-8", "replace")
            pos = _skip(body, pos, tag & 7)
    except (IndexError, ValueError):
        pass
    return "error"


def partial_success(body: bytes, json_body: bool) -> tuple[int, str]:
    """(rejected spans, message) of an ExportTraceServiceResponse."""
    if json_body:
        try:
            doc = json.loads(body or b"{}")
            partial = doc.get("partialSuccess") or {}
            return int(partial.get("rejectedSpans") or 0), str(partial.get("errorMessage") or "")
        except (ValueError, AttributeError, TypeError):
            return 0, ""
    rejected, message = 0, ""
    try:
        for start, end in _children(body, 0, len(body), 1):  # partial_success
            pos = start
            while pos < end:
                tag, pos = _varint(body, pos)
                if tag == 0x08:
                    rejected, pos = _varint(body, pos)
                elif tag == 0x12:
                    length, pos = _varint(body, pos)
                    message = body[pos : pos + length].decode("utf-8", "replace")
                    pos += length
                else:
                    pos = _skip(body, pos, tag & 7)
    except (IndexError, ValueError):
        pass
    return rejected, message


# ---------------------------------------------------------------------------- the parent


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process is told through ``AGENTSIGNALS_COLLECTOR_WORKER``."""

    index: int
    fd: int  # its private listening socket (inherited)
    ports: list[int]  # every worker's private port, by index
    config: dict[str, Any]

    def encode(self) -> str:
        return json.dumps(
            {"index": self.index, "fd": self.fd, "ports": self.ports, "config": self.config}
        )

    @classmethod
    def from_env(cls) -> WorkerSpec | None:
        raw = os.environ.get(WORKER_ENV)
        if not raw:
            return None
        doc = json.loads(raw)
        return cls(int(doc["index"]), int(doc["fd"]), [int(p) for p in doc["ports"]], doc["config"])


def worker_dir(output_dir: Path, index: int) -> Path:
    return output_dir / f"worker-{index}"


def _config_mapping(config: CollectorConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "token":
            continue  # passed in the environment, not on a command line or in a file
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def worker_config(spec: WorkerSpec) -> CollectorConfig:
    config = config_from_mapping(spec.config)
    config.output_dir = worker_dir(config.output_dir, spec.index)
    config.workers = 1
    return config


def _reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A socket bound with SO_REUSEPORT (not listening: it takes no connections) that holds
    ``port`` (a free one when 0) for the workers to bind beside it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock, int(sock.getsockname()[1])


class Workers:
    """Start N worker processes, restart one that dies, stop them all."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.count = config.workers
        self._held: list[socket.socket] = []
        self._private: list[socket.socket] = []
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * self.count
        self.http_port = 0
        self.grpc_port = 0
        self._stopping = False

    def start(self) -> Workers:
        config = self.config
        held, self.http_port = _reserve_port(config.host, config.http_port)
        self._held.append(held)
        if config.grpc_port:
            held, self.grpc_port = _reserve_port(config.host, config.grpc_port)
            self._held.append(held)
        for _ in range(self.count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            sock.set_inheritable(True)
            self._private.append(sock)
        mapping = _config_mapping(config)
        mapping.update(http_port=self.http_port, grpc_port=self.grpc_port, workers=1)
        self._mapping = mapping
        self.ports = [int(s.getsockname()[1]) for s in self._private]
        for index in range(self.count):
            self._spawn(index)
        deadline = time.monotonic() + 60
        for index in range(self.count):
            self._wait_healthy(index, deadline)
        return self

    def _spawn(self, index: int) -> None:
        sock = self._private[index]
        spec = WorkerSpec(index, sock.fileno(), self.ports, self._mapping)
        env = dict(os.environ)
        env[WORKER_ENV] = spec.encode()
        token = self.config.resolved_token()
        if token:
            env[TOKEN_ENV] = token
        self.procs[index] = subprocess.Popen(
            [sys.executable, "-m", "agentsignals._collector"],
            env=env,
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
        )

    def _wait_healthy(self, index: int, deadline: float) -> None:
        port = self.ports[index]
        while time.monotonic() < deadline:
            proc = self.procs[index]
            if proc is not None and proc.poll() is not None:
                if proc.returncode >= 0:  # its own error (a bad setting): every worker has it
                    raise OSError(f"collector worker {index} exited with status {proc.returncode}")
                # Killed by a signal while starting (the OOM killer, an operator): start it
                # again, as `watch` does once all are up.
                _log.error(
                    "collector worker %d exited with status %s while starting; restarting it",
                    index,
                    proc.returncode,
                )
                self._spawn(index)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise OSError(f"collector worker {index} did not become healthy")

    def watch(self, stop: threading.Event) -> None:
        """Until ``stop``: restart a worker that exits (its spool replays on start)."""
        while not stop.wait(0.5):
            for index, proc in enumerate(self.procs):
                if proc is not None and proc.poll() is not None and not self._stopping:
                    _log.error(
                        "collector worker %d exited with status %s; restarting it",
                        index,
                        proc.returncode,
                    )
                    self._spawn(index)

    def stop(self) -> None:
        self._stopping = True
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.shutdown_timeout_s + 20
        for proc in self.procs:
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sock in self._held + self._private:
            sock.close()


def run_workers(config: CollectorConfig) -> int:
    """The parent of ``--workers N``: start them, wait for SIGTERM/SIGINT, stop them."""
    workers = Workers(config)
    try:
        workers.start()
    except (OSError, ValueError) as exc:
        print(f"agentsignals collect: {exc}", file=sys.stderr)
        workers.stop()
        return 1
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    host = config.host if ":" not in config.host else f"[{config.host}]"
    where = f"OTLP/HTTP on http://{host}:{workers.http_port}{ROUTED_PATH}"
    if workers.grpc_port:
        where += f", OTLP/gRPC on {host}:{workers.grpc_port}"
    print(
        f"agentsignals collect: {workers.count} workers, {where}; features and spool in "
        f"{config.output_dir}/worker-<i>/",
        file=sys.stderr,
        flush=True,
    )
    try:
        workers.watch(stop)
    finally:
        print("agentsignals collect: stopping the workers", file=sys.stderr, flush=True)
        workers.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
