"""The collector service: wiring, lifecycle, /health and /metrics, and the command line.

    from agentsignals._collector import Collector, CollectorConfig

    with Collector(CollectorConfig(http_port=0, grpc_port=0, output_dir=tmp)) as collector:
        ...  # OTLP on collector.http_port; records in tmp/features/attempts.jsonl

Threads: the HTTP server (one thread per connection), the gRPC pool, one processing thread
(the Assembler), one ticker (grace/idle/max-age releases, segment rolls and retirement) and,
when forwarding, one forwarder. Start-up replays the spool before the receivers serve.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Final

from agentsignals._collector.config import (
    FSYNC_MODES,
    CollectorConfig,
    config_from_mapping,
    load_config,
    parse_size,
)
from agentsignals._collector.forward import Forwarder
from agentsignals._collector.ingest import Ingest
from agentsignals._collector.pipeline import Processor, ReplayReport, SpanQueue
from agentsignals._collector.receiver_grpc import GrpcReceiver
from agentsignals._collector.receiver_http import TRACES_PATH, HttpReceiver
from agentsignals._collector.spool import Spool
from agentsignals._collector.stats import Stats
from agentsignals._collector.workers import Router, WorkerSpec, run_workers, worker_config

_log = logging.getLogger("agentsignals.collector")
REVISIONS_EVERY_S: Final = 60.0


class Collector:
    """A running collector. ``start()`` binds, replays the spool and serves; ``stop()`` drains
    and writes the open attempts as incomplete records."""

    def __init__(self, config: CollectorConfig, *, worker: WorkerSpec | None = None) -> None:
        config.validate()
        self.config = config
        # One of --workers N: shares the ports, routes spans to the worker owning their trace.
        self.worker = worker
        self.stats = Stats()
        self._token = config.resolved_token()
        self.spool = Spool(
            config.spool_dir,
            fsync=config.fsync_mode,
            segment_bytes=config.segment_bytes,
            roll_after_s=config.segment_roll_s,
        )
        self.queue = SpanQueue(config.queue_size)
        self.processor = Processor(
            self.spool,
            self.queue,
            self.stats,
            features_dir=config.features_dir,
            grace_s=config.grace_s,
            idle_timeout_s=config.idle_timeout_s,
            max_age_s=config.max_age_s,
            max_in_flight=config.max_in_flight,
            sync_features=config.fsync != "never",
            sync_interval_s=config.features_sync_s,
            max_held_spans=config.max_held_spans,
            max_pending_trials=config.max_pending_trials,
        )
        self.ingest = Ingest(
            self.spool,
            self.queue,
            self.stats,
            retry_after_s=config.retry_after_s,
            body_budget_bytes=max(64 << 20, 8 * config.max_request_bytes),
            max_spool_bytes=config.max_spool_bytes,
        )
        if worker is not None:
            self.ingest.router = Router(worker.index, worker.ports, token=self._token)
        self._peer: HttpReceiver | None = None
        self.forwarder: Forwarder | None = None
        if config.forward:
            self.forwarder = Forwarder(
                self.spool,
                self.stats,
                config.forward,
                headers=config.forward_headers,
                compression=config.forward_compression,
                timeout_s=config.forward_timeout_s,
                max_batch_bytes=config.forward_max_batch_bytes,
                max_backoff_s=config.forward_max_backoff_s,
            )
        self._http: HttpReceiver | None = None
        self._grpc: GrpcReceiver | None = None
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()
        self._state = "new"
        self._state_lock = threading.Lock()
        self._started_at = time.monotonic()
        self.replay_report = ReplayReport()
        self.http_port = 0
        self.grpc_port = 0

    # -------------------------------------------------------------------------- lifecycle
    def start(self) -> Collector:
        with self._state_lock:
            if self._state != "new":
                raise RuntimeError("a Collector can only be started once")
            self._state = "starting"
        config = self.config
        if self._token is None and config.host not in ("127.0.0.1", "::1", "localhost"):
            _log.warning(
                "listening on %s without a token: anyone who can reach it can send spans "
                "(set --token or AGENTSIGNALS_COLLECTOR_TOKEN)",
                config.host,
            )
        try:
            self._http = HttpReceiver(
                self,
                config.host,
                config.http_port,
                max_request_bytes=config.max_request_bytes,
                read_timeout_s=config.read_timeout_s,
                header_timeout_s=config.header_timeout_s,
                max_connections=config.max_connections,
                retry_after_s=config.retry_after_s,
                reuse_port=self.worker is not None,
            )
            self.http_port = self._http.port
            if self.worker is not None:
                self._peer = HttpReceiver(
                    self,
                    "127.0.0.1",
                    0,
                    max_request_bytes=config.max_request_bytes,
                    read_timeout_s=config.read_timeout_s,
                    header_timeout_s=config.header_timeout_s,
                    max_connections=config.max_connections,
                    retry_after_s=config.retry_after_s,
                    sock=socket.socket(fileno=self.worker.fd),
                    routed=True,
                )
            if config.grpc_port:
                self._grpc = GrpcReceiver(
                    self.ingest,
                    self.stats,
                    self.authorized,
                    config.host,
                    config.grpc_port,
                    max_request_bytes=config.max_request_bytes,
                    workers=config.grpc_workers,
                    # Each waiting RPC holds its whole message: keep the backlog short.
                    max_concurrent_rpcs=min(config.max_connections, 4 * config.grpc_workers),
                    reuse_port=self.worker is not None,
                )
                self.grpc_port = self._grpc.port
            old_segments = self.spool.open()
            self.processor.load_revisions(config.spool_dir)
            if old_segments:
                started = time.monotonic()
                self.replay_report = self.processor.replay(old_segments)
                report = self.replay_report
                _log.info(
                    "replayed %d spans of %d in-flight attempts from %d spool segments "
                    "in %.2f s (%d spans already accounted for; %d records written before "
                    "the stop but not marked, not written again)",
                    report.spans,
                    report.attempts,
                    report.segments,
                    time.monotonic() - started,
                    report.skipped_spans,
                    report.already_written,
                )
            self.processor.start()
            if self.forwarder is not None:
                self.forwarder.start()
            self._ticker = threading.Thread(
                target=self._tick_loop, name="collector-ticker", daemon=True
            )
            self._ticker.start()
            if self._grpc is not None:
                self._grpc.start()
            if self._peer is not None:
                self._peer.start()
            self._http.start()
        except BaseException:
            self._teardown()
            raise
        self._started_at = time.monotonic()
        with self._state_lock:
            self._state = "running"
        return self

    def _tick_loop(self) -> None:
        forwarding = self.forwarder is not None
        saved = time.monotonic()
        while not self._ticker_stop.wait(self.config.tick_s):
            try:
                self.processor.tick()
                self.spool.roll_if_due()
                self.processor.retire(forwarding=forwarding)
                self.processor.bound_spool(self.config.max_spool_bytes, forwarding=forwarding)
                if time.monotonic() - saved >= REVISIONS_EVERY_S:
                    saved = time.monotonic()
                    self.processor.save_revisions(self.config.spool_dir)
            except Exception:
                _log.exception("collector: periodic maintenance failed")

    def stop(self) -> None:
        """Stop accepting, finish what was accepted, write open attempts as incomplete
        records, forward what can be forwarded in shutdown_timeout_s, close the spool."""
        with self._state_lock:
            if self._state != "running":
                return
            self._state = "stopping"
        budget = self.config.shutdown_timeout_s
        self.ingest.stopping = True
        if self._http is not None:
            self._http.stop_accepting()
        if self._grpc is not None:
            self._grpc.stop(min(5.0, budget))
        if self._http is not None:
            self._http.close(min(5.0, budget))
        if self._peer is not None:  # after the public side: its last requests relay here
            self._peer.stop_accepting()
            self._peer.close(min(5.0, budget))
        self.processor.stop()
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.processor.flush()
        try:
            self.processor.save_revisions(self.config.spool_dir)
        except OSError:
            _log.exception("collector: could not save attempt revisions")
        self.spool.roll()  # seal, so everything can be forwarded and retired
        if self.forwarder is not None:
            self.forwarder.stop(drain_s=budget)
        self.processor.retire(forwarding=self.forwarder is not None)
        self.spool.close()
        self.processor.close()
        with self._state_lock:
            self._state = "stopped"

    def _teardown(self) -> None:
        """Undo a failed start."""
        self.ingest.stopping = True
        if self._http is not None:
            self._http.stop_accepting()
        if self._peer is not None:
            self._peer.stop_accepting()
        if self._grpc is not None:
            self._grpc.stop(0)
        self.processor.stop(1.0)
        self._ticker_stop.set()
        if self.forwarder is not None:
            self.forwarder.stop(0)
        if not self.spool.closed:
            self.spool.close()
        self.processor.close()
        with self._state_lock:
            self._state = "stopped"

    def __enter__(self) -> Collector:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._state == "running"

    # ------------------------------------------------------------------------- endpoints
    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header (HTTP) or metadata value (gRPC) passes."""
        if self._token is None:
            return True
        if not header or header[:7].lower() != "bearer ":
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self._token.encode())

    def health(self) -> tuple[int, dict[str, Any]]:
        from agentsignals._instrument.runtime import VERSION

        if self._state != "running":
            status = "stopping" if self._state in ("stopping", "stopped") else "starting"
        elif self.spool.failed:
            status = "degraded"
        else:
            status = "ok"
        doc: dict[str, Any] = {
            "status": status,
            "version": VERSION,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "http_port": self.http_port,
            "grpc_port": self.grpc_port,
        }
        if status == "degraded":
            doc["reason"] = "the spool cannot be written"
        return (200 if status == "ok" else 503), doc

    def metrics_text(self) -> str:
        """``metrics()`` in the Prometheus text exposition format."""
        return prometheus_text(self.metrics())

    def metrics(self) -> dict[str, Any]:
        stats = self.stats
        assembler = self.processor.assembler.stats
        with stats.lock:
            counters: dict[str, Any] = {
                "received_requests": stats.received_requests,
                "received_spans": stats.received_spans,
                "received_bytes": stats.received_bytes,
                "http_requests": stats.http_requests,
                "grpc_requests": stats.grpc_requests,
                "rejected_requests": stats.rejected_requests,
                "rejected_spans": stats.rejected_spans,
                "throttled_requests": stats.throttled_requests,
                "unavailable_requests": stats.unavailable_requests,
                "rejections": dict(stats.rejections),
                "forwarded_requests": stats.forwarded_requests,
                "forwarded_spans": stats.forwarded_spans,
                "forward_retries": stats.forward_retries,
                "dropped_spans": stats.forward_dropped_spans,
                "forward_rejected_spans": stats.forward_rejected_spans,
                "replayed_spans": stats.replayed_spans,
                "max_age_released": stats.max_age_released,
                "relayed_requests": stats.relayed_requests,
                "relayed_spans": stats.relayed_spans,
            }
        forwarder = self.forwarder
        counters.update(
            {
                "uptime_s": round(time.monotonic() - self._started_at, 3),
                "in_flight_attempts": assembler.in_flight,
                "late_spans": assembler.late_spans,
                "partial_attempt_records": assembler.partial_records,
                "duplicates": assembler.duplicates,
                "unattributed_spans": assembler.unattributed,
                "evicted_attempts": assembler.evicted,
                "evicted_trials": assembler.evicted_trials,
                "late_trial_spans": assembler.late_trial_spans,
                "held_spans": assembler.held_spans,
                "pending_trials": assembler.pending_trials,
                "spool_bound_released": self.processor.spool_bound_released,
                "feature_syncs": self.processor.feature_syncs,
                "max_spool_bytes": self.config.max_spool_bytes,
                "idle_released": assembler.idle_released,
                "attempt_records": assembler.attempt_records,
                "trial_records": assembler.trial_records,
                "processed_spans": assembler.spans_in,
                "processing_errors": self.processor.errors,
                "queue_depth": self.queue.depth,
                "request_bytes_in_progress": self.ingest.body_bytes,
                "queue_capacity": self.queue.capacity,
                "spool_bytes": self.spool.total_bytes,
                "spool_segments": len(self.spool.segments()),
                "spool_pinned_segments": self.processor.pinned_segments,
                "spool_fsyncs": self.spool.syncs,
                "spool_lost_records": self.spool.lost_records,
                "spool_lost_bytes": self.spool.lost_bytes,
                "spool_lost_spans": self.spool.lost_spans,
                "worker": self.worker.index if self.worker is not None else 0,
                "workers": len(self.worker.ports) if self.worker is not None else 1,
                "forwarding": forwarder is not None,
                "forward_backlog_bytes": forwarder.backlog_bytes if forwarder else 0,
                "forward_last_error": forwarder.last_error if forwarder else "",
            }
        )
        return counters


# ------------------------------------------------------------------------- Prometheus text

_PREFIX: Final = "agentsignals_collector_"
# /metrics in the Prometheus text format: (JSON key, metric name, help). Names ending in _total
# are counters, the rest gauges.
_METRICS: Final = (
    ("received_requests", "received_requests_total",
     "Export requests accepted and spooled."),
    ("received_spans", "received_spans_total",
     "Spans accepted."),
    ("received_bytes", "received_bytes_total",
     "Request body bytes accepted (decompressed)."),
    ("http_requests", "http_requests_total",
     "OTLP/HTTP export requests received."),
    ("grpc_requests", "grpc_requests_total",
     "OTLP/gRPC export calls received."),
    ("rejected_requests", "rejected_requests_total",
     "Requests refused as malformed, too large or unauthorized (4xx other than 429)."),
    ("rejected_spans", "rejected_spans_total",
     "Bad spans dropped from partially accepted requests."),
    ("throttled_requests", "throttled_requests_total",
     "Requests answered 429 / RESOURCE_EXHAUSTED."),
    ("unavailable_requests", "unavailable_requests_total",
     "Requests answered 503 / UNAVAILABLE."),
    ("forwarded_requests", "forwarded_requests_total",
     "Requests forwarded downstream."),
    ("forwarded_spans", "forwarded_spans_total",
     "Spans forwarded downstream."),
    ("forward_retries", "forward_retries_total",
     "Forwarding attempts retried."),
    ("dropped_spans", "forward_dropped_spans_total",
     "Spans the downstream refused for good."),
    ("forward_rejected_spans", "forward_rejected_spans_total",
     "Spans the downstream reported rejected (partial success)."),
    ("replayed_spans", "replayed_spans_total",
     "Spans replayed from the spool at start-up."),
    ("spool_lost_records", "spool_lost_records_total",
     "Spool records skipped as corrupt at start-up."),
    ("spool_lost_bytes", "spool_lost_bytes_total",
     "Spool bytes skipped as corrupt at start-up."),
    ("spool_lost_spans", "spool_lost_spans_total",
     "Spans in corrupt spool records, where their header was readable."),
    ("relayed_requests", "relayed_requests_total",
     "Requests (or parts) handed to the worker owning their traces (--workers)."),
    ("relayed_spans", "relayed_spans_total",
     "Spans handed to the worker owning their traces (--workers)."),
    ("worker", "worker",
     "This process's worker index (--workers; 0 for a single process)."),
    ("workers", "workers",
     "Worker processes sharing the ports."),
    ("max_age_released", "max_age_released_total",
     "Attempts written because they reached max_age_s."),
    ("late_spans", "late_spans_total",
     "Spans arriving after their attempt was written."),
    ("partial_attempt_records", "partial_attempt_records_total",
     "Attempt records written without every span."),
    ("duplicates", "duplicate_spans_total",
     "Spans received more than once."),
    ("unattributed_spans", "unattributed_spans_total",
     "Spans belonging to no attempt."),
    ("evicted_attempts", "evicted_attempts_total",
     "Attempts written early because max_in_flight or max_held_spans was reached."),
    ("evicted_trials", "evicted_trials_total",
     "Trials written early (incomplete) because max_pending_trials was reached."),
    ("late_trial_spans", "late_trial_spans_total",
     "Trial spans arriving after their trial's record was written and let go."),
    ("spool_bound_released", "spool_bound_released_total",
     "Attempts and trials written early (incomplete) to keep the spool under max_spool_bytes."),
    ("feature_syncs", "feature_syncs_total",
     "fsyncs of the feature files (batched by features_sync_s)."),
    ("idle_released", "idle_released_total",
     "Attempts written after idle_timeout_s without spans."),
    ("attempt_records", "attempt_records_total",
     "Attempt records written."),
    ("trial_records", "trial_records_total",
     "Trial records written."),
    ("processed_spans", "processed_spans_total",
     "Spans fed to the assembler."),
    ("processing_errors", "processing_errors_total",
     "Batches the processing thread failed on."),
    ("spool_fsyncs", "spool_fsyncs_total",
     "fdatasync calls on the spool."),
    ("uptime_s", "uptime_seconds",
     "Seconds since the collector started."),
    ("in_flight_attempts", "in_flight_attempts",
     "Attempts open in the assembler."),
    ("held_spans", "held_spans",
     "Spans of open attempts held in memory (bounded by max_held_spans)."),
    ("pending_trials", "pending_trials",
     "Trials waiting for their trial span (bounded by max_pending_trials)."),
    ("max_spool_bytes", "spool_max_bytes",
     "The spool's size bound (max_spool_bytes)."),
    ("queue_depth", "queue_spans",
     "Spans decoded and waiting for the processing thread."),
    ("queue_capacity", "queue_capacity_spans",
     "Spans the processing queue holds before 429."),
    ("request_bytes_in_progress", "request_bytes_in_progress",
     "Request body bytes being read or decoded."),
    ("spool_bytes", "spool_bytes",
     "Bytes in live spool segments."),
    ("spool_segments", "spool_segments",
     "Live spool segments."),
    ("spool_pinned_segments", "spool_pinned_segments",
     "Segments held by attempts not yet written."),
    ("forwarding", "forwarding",
     "1 when forwarding downstream is configured."),
    ("forward_backlog_bytes", "forward_backlog_bytes",
     "Spooled bytes not yet forwarded."),
)  # fmt: skip


def prometheus_text(metrics: dict[str, Any]) -> str:
    """The metrics document in the Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []
    for key, name, help_text in _METRICS:
        kind = "counter" if name.endswith("_total") else "gauge"
        value = metrics.get(key)
        if value is None:
            continue
        lines += [
            f"# HELP {_PREFIX}{name} {help_text}",
            f"# TYPE {_PREFIX}{name} {kind}",
            f"{_PREFIX}{name} {float(value)!r}" if isinstance(value, float) else
            f"{_PREFIX}{name} {int(value)}",
        ]  # fmt: skip
    rejections = metrics.get("rejections") or {}
    name = f"{_PREFIX}rejections_total"
    lines += [f"# HELP {name} Requests refused, by reason.", f"# TYPE {name} counter"]
    for reason, count in sorted(rejections.items()):
        lines.append(f'{name}{{reason="{_label(reason)}"}} {int(count)}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# ------------------------------------------------------------------------------ command line

_FLAG_KEYS: Final = (
    "host",
    "http_port",
    "grpc_port",
    "output_dir",
    "forward",
    "token",
    "max_request_bytes",
    "queue_size",
    "fsync",
    "max_spool_bytes",
    "max_held_spans",
    "max_pending_trials",
    "workers",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `collect` flags, for a subcommand parser."""
    d = CollectorConfig()
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help="YAML file of settings (keys as the flags, e.g. http_port); flags override it",
    )  # fmt: skip
    parser.add_argument(
        "--host", help=f"interface to listen on (default {d.host}: this machine only)"
    )
    parser.add_argument(
        "--http-port", type=int, metavar="PORT",
        help=f"OTLP/HTTP port, POST /v1/traces (default {d.http_port}; 0: any free port)",
    )  # fmt: skip
    parser.add_argument(
        "--grpc-port", type=int, metavar="PORT",
        help=f"OTLP/gRPC port (default {d.grpc_port}; 0 disables gRPC)",
    )  # fmt: skip
    parser.add_argument(
        "--output-dir", type=Path, metavar="DIR",
        help=f"records in DIR/features/, the spool in DIR/spool/ (default ./{d.output_dir})",
    )  # fmt: skip
    parser.add_argument(
        "--forward", metavar="URL",
        help="also send every span, unchanged, to this OTLP/HTTP endpoint",
    )  # fmt: skip
    parser.add_argument(
        "--token",
        help="require 'Authorization: Bearer TOKEN' (or set AGENTSIGNALS_COLLECTOR_TOKEN)",
    )
    parser.add_argument(
        "--max-request-bytes", type=lambda t: parse_size(t, "--max-request-bytes"),
        metavar="SIZE",
        help=f"largest request body, also after gunzip (default {d.max_request_bytes >> 20}MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--queue-size", type=int, metavar="SPANS",
        help=f"spans waiting for processing before requests get 429 (default {d.queue_size})",
    )  # fmt: skip
    parser.add_argument(
        "--fsync", choices=FSYNC_MODES,
        help=f"spool durability (default {d.fsync}): group shares one sync between concurrent "
        "requests, always syncs each, never leaves it to the OS",
    )  # fmt: skip
    parser.add_argument(
        "--max-spool-bytes", type=lambda t: parse_size(t, "--max-spool-bytes"), metavar="SIZE",
        help=f"keep the spool under this; over it the oldest held attempts and trials are "
        f"written as incomplete records (default {d.max_spool_bytes >> 20}MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--max-held-spans", type=int, metavar="SPANS",
        help=f"spans of open attempts kept in memory; over it the least recently seen are "
        f"written as incomplete records (default {d.max_held_spans})",
    )  # fmt: skip
    parser.add_argument(
        "--max-pending-trials", type=int, metavar="TRIALS",
        help=f"trials kept waiting for their trial span; over it the oldest is written as an "
        f"incomplete record (default {d.max_pending_trials})",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="processes sharing the ports (SO_REUSEPORT), spans routed to the one owning "
        "their trace; output in OUTPUT_DIR/worker-<i>/ (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error"),
        help="log verbosity on stderr (default info)",
    )  # fmt: skip


def build_parser(prog: str = "agentsignals collect") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Receive OTLP traces (HTTP and gRPC), keep them durably in a local spool, "
        "write one feature record per attempt and trial, and optionally forward every span "
        "to another OTLP endpoint.",
    )
    add_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> CollectorConfig:
    """The YAML file (if any) with the flags given on the command line applied on top."""
    base = load_config(args.config) if getattr(args, "config", None) else CollectorConfig()
    overrides = {k: getattr(args, k) for k in _FLAG_KEYS if getattr(args, k, None) is not None}
    config = config_from_mapping(overrides, base)
    config.validate()
    return config


def _setup_logging(level: str) -> None:
    logger = logging.getLogger("agentsignals.collector")
    logger.setLevel(level.upper())
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def run(config: CollectorConfig, *, worker: WorkerSpec | None = None) -> int:
    """Run until SIGTERM or SIGINT (a second one stops at once); 0 on a clean stop."""
    if config.workers > 1 and worker is None:
        return run_workers(config)
    try:
        collector = Collector(config, worker=worker)
        collector.start()
    except (OSError, ValueError) as exc:
        print(f"agentsignals collect: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        for sig, handler in previous.items():  # a second signal takes the default action
            signal.signal(sig, handler)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    host = config.host if ":" not in config.host else f"[{config.host}]"
    where = [f"OTLP/HTTP on http://{host}:{collector.http_port}{TRACES_PATH}"]
    if collector.grpc_port:
        where.append(f"OTLP/gRPC on {host}:{collector.grpc_port}")
    print(f"agentsignals collect: {', '.join(where)}", file=sys.stderr)
    print(
        f"agentsignals collect: features in {config.features_dir}, spool in {config.spool_dir} "
        f"(fsync {config.fsync})"
        + (f", forwarding to {collector.forwarder.url}" if collector.forwarder else ""),
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("agentsignals collect: shutting down", file=sys.stderr, flush=True)
        collector.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    m = collector.metrics()
    print(
        f"agentsignals collect: stopped; {m['received_spans']} spans received, "
        f"{m['attempt_records']} attempt records, {m['forwarded_spans']} spans forwarded"
        + (f", {m['forward_backlog_bytes']} bytes left to forward" if m["forwarding"] else ""),
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`agentsignals collect [flags]`."""
    spec = WorkerSpec.from_env()
    if spec is not None:  # started by the parent of --workers N
        _setup_logging("info")
        try:
            config = worker_config(spec)
            config.validate()
        except (ValueError, OSError) as exc:
            print(f"agentsignals collect worker {spec.index}: {exc}", file=sys.stderr)
            return 2
        return run(config, worker=spec)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, OSError) as exc:
        print(f"agentsignals collect: {exc}", file=sys.stderr)
        return 2
    _setup_logging(args.log_level)
    return run(config)
