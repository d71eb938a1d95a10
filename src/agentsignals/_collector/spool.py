"""The spool: an append-only log of accepted requests, in segment files on local disk.

A request is acknowledged only after its record is in the spool (and, with ``fsync: group`` or
``always``, on stable storage). Everything downstream reads from here: the processing thread
gets the decoded spans in spool order, the forwarder reads the records back from the files (a
cursor per segment), and a restart replays the segments that were not retired.

Layout: ``<dir>/<seq:016d>.seg`` start with ``AGSPOOL1`` followed by records::

    u32 body length | u32 crc32(kind, count, body) | u8 kind | u32 span count | body

all little-endian. ``kind`` is 1 (OTLP/protobuf request), 2 (OTLP/JSON request) or 3 (release
markers written by the processor). A torn tail (power cut mid-write) is cut off at the last
whole record on open. A corrupt record in the middle (a flipped bit, a bad sector) does not
cost the records after it: the reader resynchronises at the next offset where a whole record
with a valid CRC starts, keeps the damaged range as a *hole* every reader skips, and counts
what was lost (records, bytes, and the spans its header claimed when the header was intact).
``<seq>.fwd`` holds the forwarder's cursor into a segment.

Files are created owner-only (0600): they hold the spans' content.

Segments are retired oldest first, so a release marker never outlives the data it refers to.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agentsignals._collector.config import FsyncMode

_log = logging.getLogger("agentsignals.collector")

MAGIC: Final = b"AGSPOOL1"
HEADER: Final = struct.Struct("<IIBI")  # body length, crc32, kind, span count
_KIND_COUNT: Final = struct.Struct("<BI")
_CURSOR: Final = struct.Struct("<QI")  # offset, crc32(offset)
KIND_PROTOBUF: Final = 1
KIND_JSON: Final = 2
KIND_RELEASE: Final = 3
DATA_KINDS: Final = frozenset({KIND_PROTOBUF, KIND_JSON})
_KINDS: Final = frozenset({KIND_PROTOBUF, KIND_JSON, KIND_RELEASE})
MAX_BODY: Final = 1 << 30
SEGMENT_SUFFIX: Final = ".seg"
CURSOR_SUFFIX: Final = ".fwd"
FILE_MODE: Final = 0o600
_KIND_BYTE: Final = re.compile(rb"[\x01-\x03]")  # where a record's kind byte could be

Position = tuple[int, int]  # (segment seq, byte offset): compares in spool order


class SpoolError(OSError):
    """The spool cannot take a record (closed, or the disk failed)."""


@dataclass(slots=True)
class Segment:
    """One segment file. Mutated only under the spool's lock; read freely."""

    seq: int
    path: Path
    size: int = len(MAGIC)
    sealed: bool = False
    created: float = 0.0  # monotonic seconds
    data_end: int = len(MAGIC)  # end offset of the last request record
    data_records: int = 0
    data_spans: int = 0
    base: int = 0  # logical offset (bytes appended since open) of the segment's first byte
    holes: dict[int, int] = field(default_factory=dict)  # corrupt ranges: start -> end


@dataclass(frozen=True, slots=True)
class Hole:
    """A corrupt range of a segment that readers skip."""

    start: int
    end: int
    records: int  # 1 when the header was intact (its length ends at ``end``), else unknown: 1
    spans: int  # the span count its header claimed when intact, else 0


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    start: int
    end: int
    kind: int
    count: int
    body: bytes


def _datasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _write_all(fd: int, header: bytes, body: bytes) -> None:
    buffers = [memoryview(header), memoryview(body)]
    while buffers:
        written = os.writev(fd, buffers)
        while buffers and written >= len(buffers[0]):
            written -= len(buffers[0])
            buffers.pop(0)
        if buffers and written:
            buffers[0] = buffers[0][written:]


def encode_record(kind: int, count: int, body: bytes) -> tuple[bytes, int]:
    """The header of a record and the record's total length."""
    if len(body) > MAX_BODY:
        raise ValueError(f"spool record of {len(body)} bytes is too large")
    crc = zlib.crc32(body, zlib.crc32(_KIND_COUNT.pack(kind, count)))
    return HEADER.pack(len(body), crc, kind, count), HEADER.size + len(body)


def _valid_at(view: memoryview, pos: int, limit: int) -> tuple[int, int, int] | None:
    """(kind, count, end) of a whole record with a valid CRC at ``pos``, else None."""
    if pos + HEADER.size > limit:
        return None
    length, crc, kind, count = HEADER.unpack_from(view, pos)
    end = pos + HEADER.size + length
    if kind not in _KINDS or length > MAX_BODY or end > limit:
        return None
    if zlib.crc32(view[pos + HEADER.size : end], zlib.crc32(_KIND_COUNT.pack(kind, count))) != crc:
        return None
    return kind, count, end


def resync(data: bytes | memoryview, bad: int, limit: int) -> int | None:
    """The first offset after ``bad`` where a whole, valid record starts (None: no record
    follows, the rest is a torn tail). A false match needs a 32-bit CRC to agree by chance."""
    view = memoryview(data)
    kind_at = HEADER.size - _KIND_COUNT.size  # offset of the kind byte in a header
    for match in _KIND_BYTE.finditer(view, bad + 1 + kind_at, max(bad + 1, limit)):
        pos = match.start() - kind_at
        if _valid_at(view, pos, limit) is not None:
            return pos
    return None


def _hole(view: memoryview, start: int, end: int, base: int = 0) -> Hole:
    """The corrupt range [start, end) of ``view`` (at offset ``base`` in its segment)."""
    spans = 0
    if end - start >= HEADER.size:
        length, _, kind, count = HEADER.unpack_from(view, start)
        if start + HEADER.size + length == end and kind in DATA_KINDS:
            spans = count  # only the body was damaged: its header still says what was lost
    return Hole(base + start, base + end, 1, spans)


def scan_records(
    seq: int, data: bytes | memoryview, start: int, holes: dict[int, int] | None = None
) -> tuple[list[Record], int, list[Hole]]:
    """Whole, valid records of a segment's bytes from ``start``, skipping known ``holes`` and
    resynchronising past new corrupt ranges; where the readable part ends (a torn tail
    starts there); and the new holes."""
    view = memoryview(data)
    out: list[Record] = []
    found: list[Hole] = []
    pos = start
    limit = len(view)
    while pos + HEADER.size <= limit:
        if holes and pos in holes:
            pos = holes[pos]
            continue
        valid = _valid_at(view, pos, limit)
        if valid is None:
            next_pos = resync(view, pos, limit)
            if next_pos is None:
                break  # nothing whole follows: a torn tail
            found.append(_hole(view, pos, next_pos))
            pos = next_pos
            continue
        kind, count, end = valid
        out.append(Record(seq, pos, end, kind, count, bytes(view[pos + HEADER.size : end])))
        pos = end
    return out, pos, found


def parse_records(seq: int, data: bytes | memoryview, start: int) -> tuple[list[Record], int]:
    """Whole, valid records of a segment's bytes from ``start`` (resynchronising past corrupt
    ones); and where the last one ends."""
    records, end, _ = scan_records(seq, data, start)
    return records, end


class Spool:
    """Segment files under one directory, owned by one process (an flock on ``LOCK``)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "group",
        segment_bytes: int = 64 << 20,
        roll_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.fsync: FsyncMode = fsync
        self.segment_bytes = segment_bytes
        self.roll_after_s = roll_after_s
        self._clock = clock
        self._lock = threading.Lock()  # appends, rolls, the segment table
        self._fsync_lock = threading.Lock()  # an fd is never closed while being synced
        self._sync_cond = threading.Condition()  # group commit
        self._syncing = False
        self._appended = threading.Condition()  # wakes the forwarder
        self._segments: dict[int, Segment] = {}
        self._cursors: dict[int, int] = {}
        self._active: Segment | None = None
        self._fd = -1
        self._lock_fd = -1
        self._dir_fd = -1
        self._written = 0  # logical bytes appended since open
        self._synced = 0
        self.syncs = 0  # fdatasync calls (for measurements)
        self.failed = False
        # What corrupt ranges cost (found on open, or while reading): see Hole.
        self.lost_records = 0
        self.lost_bytes = 0
        self.lost_spans = 0

    # ------------------------------------------------------------------------- lifecycle
    def open(self) -> list[Segment]:
        """Lock the directory, repair torn tails, start a new active segment.

        Returns the segments left by an earlier run (oldest first), to be replayed.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SpoolError(
                    exc.errno, f"another collector is using the spool in {self.directory}"
                ) from None
            raise
        self._lock_fd = lock_fd
        self._dir_fd = os.open(self.directory, os.O_RDONLY)
        old: list[Segment] = []
        for path in sorted(self.directory.glob("*" + SEGMENT_SUFFIX)):
            try:
                seq = int(path.name[: -len(SEGMENT_SUFFIX)])
            except ValueError:
                continue
            segment = self._recover(seq, path)
            if segment is not None:
                old.append(segment)
                self._segments[seq] = segment
                self._cursors[seq] = min(self._read_cursor(seq), segment.size)
        for path in self.directory.glob("*" + CURSOR_SUFFIX):
            try:
                seq = int(path.name[: -len(CURSOR_SUFFIX)])
            except ValueError:
                continue
            if seq not in self._segments:
                path.unlink(missing_ok=True)  # its segment was retired before the cursor went
        next_seq = max(self._segments, default=0) + 1
        with self._lock:
            self._start_segment(next_seq)
        return old

    def _recover(self, seq: int, path: Path) -> Segment | None:
        data = path.read_bytes()
        if not data.startswith(MAGIC):
            if len(data) < len(MAGIC) and MAGIC.startswith(data):
                path.unlink()  # created, then killed before its header was written
                return None
            bad = path.with_name(path.name + ".corrupt")
            _log.error("spool: %s is not a spool segment; moved to %s", path, bad.name)
            path.rename(bad)
            return None
        records, end, holes = scan_records(seq, data, len(MAGIC))
        if end < len(data):
            _log.warning(
                "spool: %s: cut %d bytes of torn or corrupt records at offset %d",
                path.name,
                len(data) - end,
                end,
            )
            os.truncate(path, end)
        segment = Segment(seq, path, size=end, sealed=True, created=self._clock())
        for hole in holes:
            self._lost(segment, hole, after=sum(1 for r in records if r.start >= hole.end))
        for record in records:
            if record.kind in DATA_KINDS:
                segment.data_end = record.end
                segment.data_records += 1
                segment.data_spans += record.count
        return segment

    def _lost(self, segment: Segment, hole: Hole, *, after: int | None = None) -> None:
        """Register a corrupt range: readers skip it from now on; count and log the loss."""
        segment.holes[hole.start] = hole.end
        self.lost_records += hole.records
        self.lost_bytes += hole.end - hole.start
        self.lost_spans += hole.spans
        spans = f"{hole.spans} spans" if hole.spans else "its span count unreadable"
        kept = f"; {after} records after it kept" if after is not None else ""
        _log.error(
            "spool: %s: skipped a corrupt record at offset %d (%d bytes, %s)%s",
            segment.path.name,
            hole.start,
            hole.end - hole.start,
            spans,
            kept,
        )

    def _start_segment(self, seq: int) -> None:
        path = self.directory / f"{seq:016d}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
        try:
            os.write(fd, MAGIC)
            if self.fsync != "never":
                _datasync(fd)
                os.fsync(self._dir_fd)  # the new file's directory entry
        except OSError:
            os.close(fd)
            raise
        segment = Segment(seq, path, size=len(MAGIC), created=self._clock(), base=self._written)
        self._written += len(MAGIC)
        self._segments[seq] = segment
        self._active = segment
        self._fd = fd

    def close(self) -> None:
        """Sync and close the active segment (an empty one is removed) and the lock."""
        with self._lock:
            active, fd = self._active, self._fd
            self._active, self._fd = None, -1
            if active is not None and fd >= 0:
                with self._fsync_lock:
                    try:
                        if self.fsync != "never":
                            _datasync(fd)
                    finally:
                        os.close(fd)
                active.sealed = True
                if active.size == len(MAGIC):
                    del self._segments[active.seq]
                    active.path.unlink(missing_ok=True)
            if self._dir_fd >= 0:
                os.close(self._dir_fd)
                self._dir_fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = -1
        with self._appended:
            self._appended.notify_all()

    @property
    def closed(self) -> bool:
        return self._active is None

    # --------------------------------------------------------------------------- writing
    def append(
        self,
        kind: int,
        count: int,
        body: bytes,
        admit: Callable[[Position], bool] | None = None,
    ) -> int | None:
        """Append one record; returns a ticket for :meth:`commit`.

        ``admit(position_after_record)`` runs under the spool lock before the write, so what
        it hands on (the processing queue) sees records in spool order; when it returns False
        nothing is written and None is returned.
        """
        header, size = encode_record(kind, count, body)
        with self._lock:
            segment = self._active
            if segment is None:
                raise SpoolError(errno.EBADF, "the spool is closed")
            if segment.size + size > self.segment_bytes and segment.size > len(MAGIC):
                segment = self._roll_locked()
            end = segment.size + size
            if admit is not None and not admit((segment.seq, end)):
                return None
            try:
                _write_all(self._fd, header, body)
                if self.fsync == "always":
                    _datasync(self._fd)
                    self.syncs += 1
            except OSError as exc:
                self.failed = True
                with contextlib.suppress(OSError):  # keep the segment parseable
                    os.ftruncate(self._fd, segment.size)
                raise SpoolError(exc.errno, f"spool write failed: {exc.strerror}") from exc
            self.failed = False
            segment.size = end
            if kind in DATA_KINDS:
                segment.data_end = end
                segment.data_records += 1
                segment.data_spans += count
            self._written += size
            ticket = self._written
            if self.fsync == "always":
                self._synced = ticket
        if self.fsync == "never" or self.fsync == "always":
            self._notify()
        return ticket

    def commit(self, ticket: int) -> None:
        """Return once the record with this ticket is on stable storage (per the fsync mode).

        Group commit: the first waiter syncs everything written so far while later ones wait
        and are covered by that sync (or the next), so concurrent requests share one
        fdatasync instead of queueing for one each.
        """
        if self.fsync != "group":
            return
        cond = self._sync_cond
        while True:
            with cond:
                while self._synced < ticket and self._syncing:
                    cond.wait()
                if self._synced >= ticket:
                    return
                self._syncing = True
            target = 0
            try:
                with self._lock:
                    fd, target = self._fd, self._written
                    if fd < 0:
                        raise SpoolError(errno.EBADF, "the spool is closed")
                    self._fsync_lock.acquire()
                try:
                    _datasync(fd)
                    self.syncs += 1
                finally:
                    self._fsync_lock.release()
            finally:
                with cond:
                    self._syncing = False
                    if target > self._synced:
                        self._synced = target
                    cond.notify_all()
            self._notify()

    def _notify(self) -> None:
        with self._appended:
            self._appended.notify_all()

    def wait_for_data(self, timeout: float) -> None:
        """Block until something is appended (or the timeout passes)."""
        with self._appended:
            self._appended.wait(timeout)

    def durable_end(self, seq: int) -> int:
        """How far into segment ``seq`` records are acknowledged (safe to forward)."""
        segment = self._segments.get(seq)
        if segment is None:
            return 0
        if segment.sealed or self.fsync == "never":
            return segment.size
        return max(len(MAGIC), min(segment.size, self._synced - segment.base))

    # --------------------------------------------------------------------------- segments
    def _roll_locked(self) -> Segment:
        old, fd = self._active, self._fd
        assert old is not None
        with self._fsync_lock:
            try:
                if self.fsync != "never":
                    _datasync(fd)
            finally:
                os.close(fd)
                self._fd = -1
        old.sealed = True
        self._start_segment(old.seq + 1)
        assert self._active is not None
        return self._active

    def roll_if_due(self) -> bool:
        """Seal the active segment when it holds requests and is older than roll_after_s."""
        with self._lock:
            active = self._active
            if active is None or active.data_records == 0:
                return False
            if self._clock() - active.created < self.roll_after_s:
                return False
            self._roll_locked()
            return True

    def roll(self) -> None:
        """Seal the active segment now (if it holds anything)."""
        with self._lock:
            if self._active is not None and self._active.size > len(MAGIC):
                self._roll_locked()

    def segments(self) -> list[Segment]:
        """All live segments, oldest first (the active one last)."""
        with self._lock:
            return sorted(self._segments.values(), key=lambda s: s.seq)

    def retire(self, seq: int) -> None:
        """Delete a sealed segment and its cursor."""
        with self._lock:
            segment = self._segments.get(seq)
            if segment is None or not segment.sealed:
                return
            del self._segments[seq]
            self._cursors.pop(seq, None)
        segment.path.unlink(missing_ok=True)
        (self.directory / f"{seq:016d}{CURSOR_SUFFIX}").unlink(missing_ok=True)

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in list(self._segments.values()))

    @property
    def active_seq(self) -> int:
        active = self._active
        return active.seq if active is not None else 0

    # --------------------------------------------------------------------------- reading
    def records(self, seq: int, start: int = len(MAGIC)) -> Iterator[Record]:
        """Every whole record of segment ``seq`` from ``start`` (reads the file)."""
        segment = self._segments.get(seq)
        if segment is None:
            return
        with open(segment.path, "rb") as fh:
            data = fh.read(segment.size)
        records, _, holes = scan_records(seq, data, start, segment.holes)
        for hole in holes:  # damaged since it was opened
            self._lost(segment, hole)
        yield from records

    def read(self, seq: int, start: int, end: int, max_bytes: int) -> list[Record]:
        """Whole records of segment ``seq`` in [start, end), at least one, about max_bytes."""
        segment = self._segments.get(seq)
        if segment is None or start >= end:
            return []
        out: list[Record] = []
        total = 0
        try:
            fd = os.open(segment.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            pos = start
            while pos < end and (not out or total < max_bytes):
                if pos in segment.holes:
                    pos = segment.holes[pos]
                    continue
                header = os.pread(fd, HEADER.size, pos)
                if len(header) < HEADER.size:
                    break
                length, crc, kind, count = HEADER.unpack(header)
                corrupt = kind not in _KINDS or length > MAX_BODY
                if not corrupt and pos + HEADER.size + length > end:
                    if not segment.sealed or end < segment.size:
                        break  # the rest is not written (or not durable) yet
                    corrupt = True
                if not corrupt and out and total + length > max_bytes:
                    break
                body = b"" if corrupt else os.pread(fd, length, pos + HEADER.size)
                if corrupt or zlib.crc32(body, zlib.crc32(_KIND_COUNT.pack(kind, count))) != crc:
                    # Damaged since the spool was opened (recovery found the older damage):
                    # skip to the next whole record, or to the end of what is readable.
                    data = os.pread(fd, end - pos, pos)
                    found = resync(data, 0, len(data))
                    hole_end = pos + found if found is not None else end
                    self._lost(segment, _hole(memoryview(data), 0, hole_end - pos, pos))
                    pos = hole_end
                    continue
                record_end = pos + HEADER.size + length
                out.append(Record(seq, pos, record_end, kind, count, body))
                total += length
                pos = record_end
        finally:
            os.close(fd)
        if not out and pos > start:  # only holes: let the caller move past them
            out.append(Record(seq, start, pos, KIND_RELEASE, 0, b""))
        return out

    # ---------------------------------------------------------------------------- cursors
    def cursor(self, seq: int) -> int:
        """How far the forwarder got in segment ``seq``."""
        return self._cursors.get(seq, len(MAGIC))

    def set_cursor(self, seq: int, offset: int) -> None:
        """Move the forwarder's cursor (persisted, not synced: a crash re-forwards a little)."""
        if seq not in self._segments:
            return
        self._cursors[seq] = offset
        data = _CURSOR.pack(offset, zlib.crc32(offset.to_bytes(8, "little")))
        path = self.directory / f"{seq:016d}{CURSOR_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def _read_cursor(self, seq: int) -> int:
        path = self.directory / f"{seq:016d}{CURSOR_SUFFIX}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return len(MAGIC)
        if len(data) >= _CURSOR.size:
            offset, crc = _CURSOR.unpack_from(data)
            if zlib.crc32(offset.to_bytes(8, "little")) == crc:
                return int(offset)
        _log.warning("spool: unreadable forwarding cursor %s; forwarding its segment again", path)
        return len(MAGIC)
