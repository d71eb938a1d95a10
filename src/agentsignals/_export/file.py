"""Crash-safe JSON-lines span exporter: the embedded default's durable store.

Why this shape: each export becomes one OTLP/JSON ``ExportTraceServiceRequest`` on one line,
the same layout the OpenTelemetry Collector's ``file`` exporter writes, so one reader serves
both. Agents get killed (timeouts, OOM, SIGKILL from harnesses), so the format must survive a
process dying at any instant: every line is handed to the kernel with a single ``write`` on an
``O_APPEND`` descriptor, which means a kill can only ever leave the *last* line of a file
incomplete, never damage lines written before it. Every file is created fresh (``O_EXCL``) by
exactly one process, so nobody ever appends after somebody else's torn tail, and readers skip a
torn tail instead of failing.

Durability trade-off (``fsync``): without it, a line is safe once ``export`` returns as long as
the *machine* keeps running (the data is in the kernel page cache, which survives the process).
``fsync=True`` also survives power loss / kernel crash, at the cost of a disk flush per export
(roughly 0.1-10 ms depending on the device), which is why it is off by default.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentsignals._export.lifecycle import install_exit_flush
from agentsignals._export.otlp_json import encode_request

__all__ = ["FileSpanExporter", "install_exit_flush", "iter_export_requests"]

_log = logging.getLogger("agentsignals")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# O_CLOEXEC: a tool subprocess spawned by the agent must not inherit (and keep open, or write
# to) the trace file.
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
# Traces carry command lines, file paths and sometimes prompt text: keep them owner-only.
_FILE_MODE = 0o600
_MAX_NAME_ATTEMPTS = 1000

_live_exporters: weakref.WeakSet[FileSpanExporter] = weakref.WeakSet()


def _reset_after_fork_in_child() -> None:
    for exporter in list(_live_exporters):
        exporter._forget_parent_file()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork_in_child)


def _utc_stamp() -> str:
    # Millisecond UTC stamps make names sort by creation time across restarts of a process.
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


class FileSpanExporter(SpanExporter):
    """Append each export as one OTLP/JSON line to ``<directory>/<prefix>-<utc>-<pid>-<seq>.jsonl``.

    Never raises from ``export``: I/O problems are logged once per kind to the ``agentsignals``
    logger and reported as ``SpanExportResult.FAILURE``. Files are opened lazily, so
    constructing an exporter touches nothing on disk.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        prefix: str = "traces",
        fsync: bool = False,
        output_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if not prefix or os.sep in prefix or (os.altsep and os.altsep in prefix):
            raise ValueError(f"invalid file prefix {prefix!r}")
        self._directory = Path(directory)
        # The store's root folder (`agentsignals-output/`): it gets a `.gitignore` when created.
        self._output_root = Path(output_root) if output_root is not None else None
        self._max_bytes = max_bytes
        self._prefix = prefix
        self._fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._seq = 0
        self._pid = os.getpid()
        self._shutdown = False
        self._reported: set[tuple[str, int | None]] = set()
        _live_exporters.add(self)

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def current_path(self) -> Path | None:
        """The file the next line would go to, or ``None`` before the first write."""
        return self._path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            self._report("shutdown", None, "export called after shutdown; spans dropped")
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            line = encode_request(spans) + b"\n"
        except Exception as exc:
            self._report("encode", None, f"could not encode {len(spans)} spans: {exc!r}")
            return SpanExportResult.FAILURE
        with self._lock:
            if self._shutdown:
                return SpanExportResult.FAILURE
            try:
                self._write_line(line)
            except OSError as exc:
                self._report(
                    "write", exc.errno, f"could not write spans under {self._directory}: {exc}"
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Lines are in the kernel once ``export`` returns; with ``fsync=True`` also sync."""
        if not self._fsync:
            return True
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                return True
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._report("fsync", exc.errno, f"fsync of {self._path} failed: {exc}")
                return False
        return True

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            if self._pid != os.getpid():
                # Inherited from a parent: not ours to sync or close beyond our own copy.
                self._forget_parent_file()
                return
            if self._fd is not None and self._fsync:
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self._report("fsync", exc.errno, f"fsync of {self._path} failed: {exc}")
            self._close_fd()

    # -- internals ---------------------------------------------------------------------------

    def _forget_parent_file(self) -> None:
        # Runs in a forked child. The lock may have been held by a parent thread that does not
        # exist here, so it is replaced rather than acquired. Closing our copy of the fd does
        # not affect the parent; the child will open its own file on its first export.
        self._lock = threading.Lock()
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._path = None
        self._size = 0
        self._seq = 0
        self._pid = os.getpid()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                self._report("close", exc.errno, f"closing {self._path} failed: {exc}")

    def _write_line(self, line: bytes) -> None:
        if self._pid != os.getpid():
            # Backstop for platforms without register_at_fork.
            self._forget_parent_file()
        fd = self._fd
        if fd is not None and self._size > 0 and self._size + len(line) > self._max_bytes:
            self._close_fd()
            fd = None
        if fd is not None and os.fstat(fd).st_nlink == 0:
            # Our file (or its whole directory) was deleted; writes would vanish silently.
            self._close_fd()
            fd = None
        if fd is None:
            fd = self._open_new_file()

        size_before = self._size
        written = 0
        view = memoryview(line)
        try:
            while written < len(line):
                n = os.write(fd, view[written:])
                if n <= 0:
                    raise OSError(errno.EIO, "write made no progress")
                written += n
        except OSError:
            if written:
                self._repair_partial_line(fd, size_before)
            raise
        self._size = size_before + written
        if self._fsync:
            os.fsync(fd)

    def _repair_partial_line(self, fd: int, size_before: int) -> None:
        # A partial line (e.g. ENOSPC mid-write) must not be followed by further lines, or the
        # next good line would be glued onto the fragment. Cut it off; if even that fails,
        # abandon the file so the fragment stays its last line.
        try:
            os.ftruncate(fd, size_before)
        except OSError:
            self._close_fd()
            self._size = 0

    def _open_new_file(self) -> int:
        if self._output_root is not None:
            ensure_output_root(self._output_root)
        self._directory.mkdir(parents=True, exist_ok=True)
        stamp = _utc_stamp()
        pid = os.getpid()
        for _ in range(_MAX_NAME_ATTEMPTS):
            self._seq += 1
            path = self._directory / f"{self._prefix}-{stamp}-{pid}-{self._seq:04d}.jsonl"
            try:
                fd = os.open(path, _OPEN_FLAGS, _FILE_MODE)
            except FileExistsError:
                # Same pid and millisecond as an earlier run (pid 1 in every container):
                # never reuse the file, take the next sequence number.
                continue
            self._fd = fd
            self._path = path
            self._size = 0
            return fd
        raise OSError(errno.EEXIST, f"no free file name in {self._directory}")

    def _report(self, operation: str, code: int | None, message: str) -> None:
        key = (operation, code)
        if key in self._reported:
            _log.debug("%s", message)
            return
        self._reported.add(key)
        _log.warning("%s (further identical errors are logged at DEBUG)", message)


_GITIGNORE = (
    b"# Written by agentsignals: traces and features stay out of the repository (and out of\n"
    b"# an agent's `git add -A` diff). Delete this file to commit them.\n*\n"
)
DEFAULT_OUTPUT_NAME = "agentsignals-output"


def ensure_output_root(root: Path) -> None:
    """Create the store's root folder if needed and keep it out of git.

    The default folder sits in the current directory, usually the repository the agent edits,
    so a `git add -A` submission would carry the traces. A `.gitignore` holding `*` inside the
    folder fixes that without touching the repository's own ignore rules. It is written when
    this call creates the folder, or when the folder has the default name, and never over an
    existing one (a folder the user chose, say `.`, is left alone).
    """
    created = False
    try:
        if not root.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            created = True
        if not (created or root.name == DEFAULT_OUTPUT_NAME):
            return
        fd = os.open(root / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    except OSError as exc:
        _log.debug("could not write %s/.gitignore: %s", root, exc)
        return
    try:
        os.write(fd, _GITIGNORE)
    except OSError as exc:
        _log.debug("could not write %s/.gitignore: %s", root, exc)
    finally:
        os.close(fd)


_DECODER = msgspec.json.Decoder()


def _request_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.jsonl") if p.is_file())
    return [path]


def iter_export_requests(path_or_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield each decoded OTLP/JSON export request from a ``.jsonl`` file or a directory of them.

    Files are read in name order (which is creation order within one process). A line that is
    not a JSON object - typically the torn tail left by a killed writer - is skipped with a
    warning naming the file and line; every other line is still returned.
    """
    for file in _request_files(Path(path_or_dir)):
        with open(file, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    decoded = _DECODER.decode(raw)
                except msgspec.DecodeError as exc:
                    torn = "" if raw.endswith(b"\n") else " (incomplete final line)"
                    _log.warning("skipping malformed line %s:%d%s: %s", file, number, torn, exc)
                    continue
                if not isinstance(decoded, dict):
                    _log.warning("skipping non-object line %s:%d", file, number)
                    continue
                yield decoded
