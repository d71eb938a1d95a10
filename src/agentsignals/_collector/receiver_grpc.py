"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Registered as a generic handler on raw bytes: the request goes to the same decoder and spool
as an HTTP body, without grpcio parsing it into a message first (and us serializing it again).
Backpressure is ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` detail, sent both as
``grpc-status-details-bin`` (the standard rich status, read by Go and Java exporters) and as
``google.rpc.retryinfo-bin`` (what the Python exporter reads).
"""

from __future__ import annotations

import importlib
import logging
from concurrent import futures
from typing import Any, Final

from agentsignals._collector.ingest import (
    Ingest,
    Rejected,
    Throttled,
    Unavailable,
    export_response,
    retry_info,
)
from agentsignals._collector.spool import KIND_PROTOBUF
from agentsignals._collector.stats import Stats

_log = logging.getLogger("agentsignals.collector")

SERVICE: Final = "opentelemetry.proto.collector.trace.v1.TraceService"


class GrpcReceiver:
    """A grpcio server with one method: TraceService/Export."""

    def __init__(
        self,
        ingest: Ingest,
        stats: Stats,
        authorized: Any,
        host: str,
        port: int,
        *,
        max_request_bytes: int,
        workers: int,
        max_concurrent_rpcs: int,
        reuse_port: bool = False,
    ) -> None:
        grpc: Any = importlib.import_module("grpc")
        self._grpc = grpc
        self._ingest = ingest
        self._stats = stats
        self._authorized = authorized
        self._server: Any = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collector-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_request_bytes),
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ],
            maximum_concurrent_rpcs=max_concurrent_rpcs,
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(self._export)}
        )
        self._server.add_generic_rpc_handlers((handler,))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for gRPC on {address}: {exc}") from None
        if not bound:
            raise OSError(f"cannot listen for gRPC on {address}")
        self.port: int = int(bound)

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float) -> None:
        """Refuse new RPCs, let running ones finish for up to ``grace_s``."""
        self._server.stop(grace_s).wait(grace_s + 1.0)

    def _export(self, request: bytes, context: Any) -> bytes:
        grpc = self._grpc
        stats = self._stats
        with stats.lock:
            stats.grpc_requests += 1
        metadata = dict(context.invocation_metadata() or ())
        if not self._authorized(metadata.get("authorization")):
            stats.reject("unauthorized")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        ingest = self._ingest
        size = len(request)
        try:
            if ingest.saturated() or not ingest.reserve(size):
                raise Throttled(ingest.retry_after_s)
            try:
                result = ingest.export(request, KIND_PROTOBUF)
            finally:
                ingest.release(size)
        except Rejected as exc:
            stats.reject("malformed")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Throttled as exc:
            stats.reject("throttled", throttled=True)
            info, status = retry_info(exc.retry_after, str(exc))
            context.set_trailing_metadata(
                (("google.rpc.retryinfo-bin", info), ("grpc-status-details-bin", status))
            )
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except Unavailable as exc:
            stats.reject("unavailable")
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return export_response(KIND_PROTOBUF, result.rejected, result.message)
