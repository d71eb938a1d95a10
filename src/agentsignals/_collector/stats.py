"""Counters shared by the receivers, the processor and the forwarder (served at /metrics)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    """Monotonic counters; update them under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    http_requests: int = 0
    grpc_requests: int = 0
    received_requests: int = 0  # accepted and spooled
    received_spans: int = 0
    received_bytes: int = 0
    rejected_requests: int = 0  # 4xx other than 429
    rejected_spans: int = 0  # dropped from partially accepted requests
    throttled_requests: int = 0  # 429 / RESOURCE_EXHAUSTED
    unavailable_requests: int = 0  # 503 / UNAVAILABLE (shutting down, disk failure)
    rejections: Counter[str] = field(default_factory=Counter)
    forwarded_requests: int = 0
    forwarded_spans: int = 0
    forward_retries: int = 0
    forward_dropped_spans: int = 0  # the downstream refused them for good
    forward_rejected_spans: int = 0  # the downstream's partial_success.rejected_spans
    replayed_spans: int = 0
    relayed_requests: int = 0  # (parts of) requests handed to the worker owning their traces
    relayed_spans: int = 0
    max_age_released: int = 0

    def reject(self, reason: str, *, throttled: bool = False) -> None:
        with self.lock:
            self.rejections[reason] += 1
            if throttled:
                self.throttled_requests += 1
            elif reason == "unavailable":
                self.unavailable_requests += 1
            else:
                self.rejected_requests += 1
