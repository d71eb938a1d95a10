"""Flush buffered spans when the process exits or is asked to terminate.

Why: the SDK flushes at interpreter exit, but a SIGTERM with the default disposition kills the
process without running ``atexit`` hooks, so spans still queued in a BatchSpanProcessor are
lost. Agents are routinely stopped with SIGTERM (timeouts, container stop, harness cleanup), and
the last spans are usually the interesting ones.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["install_exit_flush"]

_log = logging.getLogger("agentsignals")

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

_lock = threading.Lock()
_flushes: list[Callable[[], object]] = []
_atexit_registered = False
_sigterm_installed = False
_previous_sigterm: _Handler = None
_timeout_s = 10.0
_in_sigterm = False


def install_exit_flush(flush: Callable[[], object], *, timeout_s: float = 10.0) -> None:
    """Call ``flush()`` at interpreter exit and on SIGTERM, then let SIGTERM proceed.

    The SIGTERM handler runs every registered flush and then chains to whatever handler was
    installed before it; if that was the default action, the default is restored and the signal
    re-raised, so the process still dies *by* SIGTERM (exit status -15 to a parent). Signal
    handlers can only be installed from the main thread; from other threads only the ``atexit``
    hook is registered (a later call from the main thread adds the handler). Calling again with
    the same ``flush`` does nothing. Exceptions raised by ``flush`` are logged, never propagated.

    On SIGTERM the flushes run in a helper thread that is given ``timeout_s`` seconds: the
    handler interrupts the main thread at an arbitrary point, possibly while it holds a lock the
    flush needs, and a deadlocked flush must not turn SIGTERM into a hang.
    """
    global _atexit_registered, _timeout_s
    with _lock:
        if not any(existing == flush for existing in _flushes):
            _flushes.append(flush)
        _timeout_s = max(_timeout_s, timeout_s)
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
        if threading.current_thread() is threading.main_thread():
            _install_sigterm_handler()


def _install_sigterm_handler() -> None:
    global _sigterm_installed, _previous_sigterm
    if _sigterm_installed:
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:
        # Installed by non-Python code: it could not be restored or chained to, so leave it.
        _log.debug("SIGTERM handler not installed: existing handler is not from Python")
        return
    _previous_sigterm = previous
    signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm_installed = True


def _run_flushes() -> None:
    for flush in list(_flushes):
        try:
            flush()
        except Exception:
            _log.warning("agentsignals exit flush failed", exc_info=True)


def _exit_budget_s() -> float:
    """How long exit may wait for exporters: OTEL_BSP_EXPORT_TIMEOUT (default 30 s), at most
    `_timeout_s` on SIGTERM. One deadline covers our flush and the providers' shutdown."""
    from agentsignals._export.guard import export_timeout_s

    return export_timeout_s()


def _at_exit() -> None:
    """The atexit hook: flush with one deadline for everything that follows (the provider's
    own shutdown included), and exporters told not to retry, so exit is always bounded."""
    from agentsignals._export.guard import begin_exit

    try:
        budget = _exit_budget_s()
        begin_exit(budget)
    except Exception:
        budget = _timeout_s
    _run_flushes_bounded(budget)


def _run_flushes_bounded(timeout_s: float | None = None) -> None:
    timeout = _timeout_s if timeout_s is None else timeout_s
    try:
        worker = threading.Thread(target=_run_flushes, name="agentsignals-exit-flush", daemon=True)
        worker.start()
    except RuntimeError:
        # Thread creation can be refused late in interpreter shutdown; flush inline instead.
        _run_flushes()
        return
    worker.join(timeout)
    if worker.is_alive():
        _log.warning("agentsignals exit flush did not finish within %.1f s", timeout)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _in_sigterm
    # A second SIGTERM while flushing means "stop now": skip straight to the chained action.
    if not _in_sigterm:
        _in_sigterm = True
        try:
            # Not an exit yet (the host's own handler may keep the process alive), so the
            # exporters keep retrying; the flush is bounded all the same.
            _run_flushes_bounded()
        finally:
            _in_sigterm = False
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
