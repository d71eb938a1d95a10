"""Processing: one thread feeds decoded spans to the Assembler and keeps the spool's books.

Receivers decode on the request thread and hand a :class:`Batch` to a bounded
:class:`SpanQueue` (bounded in spans, so a burst is shed with 429 rather than held in memory).
The processing thread is the only writer of assembler state besides the ticker, and both hold
``Processor.lock``.

Durability bookkeeping. Every attempt (and trial) with spans in a segment *pins* that segment
until its record is written; a segment is retired only once nothing pins it, the processor is
past it and the forwarder is past it. When records are written, a *release marker* goes into
the spool: which attempts/trials were released, at which revision, and how far into the spool
the processor was (``upto``). On restart the markers say which spans are already accounted
for, so only in-flight attempts are replayed and no record is written twice.

An attempt's pins move to its trial when the attempt's record is written and the trial's is
not yet: the trial record needs every attempt record, and after a restart those can only come
from replaying the attempts' spans.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from agentsignals import semconv as sc
from agentsignals._collector.spool import (
    DATA_KINDS,
    KIND_PROTOBUF,
    KIND_RELEASE,
    Position,
    Record,
    Segment,
    Spool,
    SpoolError,
)
from agentsignals._collector.stats import Stats
from agentsignals._features.assemble import Assembler
from agentsignals._features.assemble import Record as FeatureRecord
from agentsignals._features.record import AttemptRecord, SessionRecord
from agentsignals._features.store import (
    ATTEMPTS_FILE,
    SESSIONS_FILE,
    TRIALS_FILE,
    JsonLinesSink,
    written_keys,
)
from agentsignals._spans.decode import DecodeError, decode_otlp_json, decode_otlp_protobuf
from agentsignals._spans.model import Span

_log = logging.getLogger("agentsignals.collector")

_ATTEMPT_ID: Final = sc.AGENT_SIGNALS_ATTEMPT_ID
_TRIAL_ID: Final = sc.AGENT_SIGNALS_TRIAL_ID
_SPAN_TYPE: Final = sc.AGENT_SIGNALS_SPAN_TYPE


def decode_record(kind: int, body: bytes) -> list[Span]:
    """The spans of a spooled request."""
    if kind == KIND_PROTOBUF:
        return decode_otlp_protobuf(body)
    return decode_otlp_json(body)


# ------------------------------------------------------------------------------- the queue


class Batch:
    """The decoded spans of one accepted request, and where its record ends in the spool."""

    __slots__ = ("count", "end", "spans")

    def __init__(self, spans: list[Span], end: Position = (0, 0)) -> None:
        self.spans = spans
        self.count = len(spans)
        self.end = end


class SpanQueue:
    """A FIFO bounded by the number of spans waiting (one oversized batch fits when empty).

    The items travel in a ``queue.SimpleQueue`` (C code: a put does not hand the GIL around
    in Python the way ``threading.Condition.notify`` does); the span count beside it is kept
    under a plain lock. ``try_put`` is called under the spool's lock, so order is spool order.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self._spans = 0
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        """Spans waiting."""
        return self._spans

    def full(self) -> bool:
        return self._spans >= self.capacity

    def try_put(self, batch: Batch) -> bool:
        with self._lock:
            if self._spans and self._spans + batch.count > self.capacity:
                return False
            self._spans += batch.count
        self._items.put(batch)
        return True

    def get(self, timeout: float) -> Batch | None:
        try:
            batch = self._items.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._lock:
            self._spans -= batch.count
        return batch

    def __len__(self) -> int:
        return self._items.qsize()


# --------------------------------------------------------------------------- the assembler


# ---------------------------------------------------------------------------- the processor


@dataclass(slots=True)
class _Pin:
    first_seen: float
    segments: set[int] = field(default_factory=set)


class _ReleaseEntry(msgspec.Struct, array_like=True):
    kind: str  # "a" attempt, "t" trial
    key: str
    revision: int
    order: int  # global release sequence number


class _ReleaseMarker(msgspec.Struct):
    upto: tuple[int, int]
    released: list[_ReleaseEntry]
    # The feature files' sizes once these records were in them: on restart, records past
    # these offsets were written without a marker (a kill in between) and are not rewritten.
    files: dict[str, int] = msgspec.field(default_factory=dict)


_marker_encoder: Final = msgspec.json.Encoder()
_marker_decoder: Final = msgspec.json.Decoder(_ReleaseMarker)
_revisions_decoder: Final = msgspec.json.Decoder(dict[str, int])
REVISIONS_FILE: Final = "revisions.json"
# Without a marker naming the feature files' sizes (a spool from an older version, or a kill
# before the first marker), this much of each file's tail is read for unmarked records.
_UNMARKED_TAIL: Final = 64 << 20


@dataclass
class ReplayReport:
    segments: int = 0
    records: int = 0
    spans: int = 0
    skipped_spans: int = 0
    undecodable_records: int = 0
    attempts: int = 0
    already_written: int = 0  # records written before a crash but not marked: not rewritten


class Processor:
    """Owns the Assembler, the feature sink and the spool's pins and release markers."""

    def __init__(
        self,
        spool: Spool,
        queue: SpanQueue,
        stats: Stats,
        *,
        features_dir: str | os.PathLike[str],
        grace_s: float,
        idle_timeout_s: float,
        max_age_s: float,
        max_in_flight: int,
        sync_features: bool,
        max_held_spans: int | None = None,
        max_pending_trials: int | None = None,
        sync_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spool = spool
        self._queue = queue
        self._stats = stats
        self._clock = clock
        self._features_dir = os.fspath(features_dir)
        self._sink = JsonLinesSink(features_dir)
        self._sync_features_enabled = sync_features
        self._feature_fds: dict[str, int] = {}
        self.max_age_s = max_age_s
        self.assembler = Assembler(
            self._on_record,
            clock=clock,
            grace=grace_s,
            idle_timeout=idle_timeout_s,
            max_in_flight=max_in_flight,
            max_held_spans=max_held_spans,
            max_pending_trials=max_pending_trials,
        )
        self.spool_bound_released = 0
        self.lock = threading.Lock()
        # Records written and not yet settled (feature files synced, release marker in the
        # spool): (kind, key, revision, trial id) as the sink got them, then stamped with the
        # spool position processing had reached when they were written. Settling is batched
        # by time (sync_interval_s): one fsync of the feature files covers every record
        # written since the last one, and their pins stay until then.
        self._released: list[tuple[str, str, int, str | None]] = []
        self._stamped: list[tuple[str, str, int, str | None, Position]] = []
        self._unsettled: set[tuple[str, str]] = set()
        self.sync_interval_s = sync_interval_s
        self._last_settle = clock()
        self.feature_syncs = 0
        self._attempt_pins: dict[str, _Pin] = {}  # insertion order = first_seen order
        self._trial_pins: dict[str, _Pin] = {}
        self._segment_pins: Counter[int] = Counter()
        self._release_order = 0
        # Records an earlier run wrote but could not mark released before it died: replay
        # produces them again, and they are not written a second time.
        self._unmarked: set[tuple[str, str, int]] = set()
        self.processed: Position = (0, 0)
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="collector-process", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Process what is queued, then stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        queue = self._queue
        while True:
            batch = queue.get(0.2)
            if batch is None:
                if self._stop.is_set() and not len(queue):
                    return
                continue
            with self.lock:
                try:
                    self.process(batch)
                except Exception:
                    self.errors += 1
                    _log.exception("could not process a batch of %d spans", batch.count)

    # ---------------------------------------------------------------------------- records
    def _on_record(self, record: FeatureRecord) -> None:
        if isinstance(record, SessionRecord):
            # Written with its attempt's record, of the same spans: a replay after a crash
            # may write it again, and readers keep one per attempt id.
            self._sink(record)
            return
        if isinstance(record, AttemptRecord):
            key = ("a", record.attempt_id, record.revision)
            self._released.append(("a", record.attempt_id, record.revision, record.trial_id))
        else:
            key = ("t", record.trial_id, record.revision)
            self._released.append(("t", record.trial_id, record.revision, None))
        self._unsettled.add((key[0], key[1]))
        if key in self._unmarked:
            self._unmarked.discard(key)  # on disk already, from before the crash
            return
        self._sink(record)

    def _sync_features(self) -> None:
        """Feature lines on disk before the marker saying they were written."""
        if not self._sync_features_enabled:
            return
        for name in (ATTEMPTS_FILE, TRIALS_FILE, SESSIONS_FILE):
            fd = self._feature_fds.get(name)
            if fd is None:
                try:
                    fd = os.open(os.path.join(self._features_dir, name), os.O_RDONLY)
                except FileNotFoundError:
                    continue
                self._feature_fds[name] = fd
            os.fsync(fd)
        self.feature_syncs += 1

    # ----------------------------------------------------------------------------- input
    def process(self, batch: Batch) -> None:
        """Feed one batch (call with ``lock`` held)."""
        seq = batch.end[0]
        now = self._clock()
        attempts: set[str] = set()
        trials: set[str] = set()
        for span in batch.spans:
            attrs = span.attributes
            attempt_id = attrs.get(_ATTEMPT_ID)
            if isinstance(attempt_id, str):
                attempts.add(attempt_id)
            elif attrs.get(_SPAN_TYPE) == "trial":
                trial_id = attrs.get(_TRIAL_ID)
                if isinstance(trial_id, str):
                    trials.add(trial_id)
        for attempt_id in attempts:
            self._pin(self._attempt_pins, attempt_id, seq, now)
        for trial_id in trials:
            self._pin(self._trial_pins, trial_id, seq, now)
        self.assembler.add(batch.spans)
        self.processed = batch.end
        self._settle()
        # Spans the assembler did not keep (duplicates of written attempts) pin nothing; late
        # spans waiting for their revision keep their pins until it is written; records not
        # settled yet keep theirs until their release marker is written.
        assembler = self.assembler
        unsettled = self._unsettled
        for attempt_id in attempts:
            if (
                attempt_id in self._attempt_pins
                and not assembler.holds(attempt_id)
                and ("a", attempt_id) not in unsettled
            ):
                self._unpin(self._attempt_pins, attempt_id)
        for trial_id in trials:
            if (
                trial_id in self._trial_pins
                and not assembler.trial_pending(trial_id)
                and ("t", trial_id) not in unsettled
            ):
                self._unpin(self._trial_pins, trial_id)

    def tick(self) -> None:
        """Release attempts past their grace period, idle or older than max_age_s."""
        with self.lock:
            now = self._clock()
            self.assembler.tick(now)
            self._expire(now)
            self._settle()

    def settle(self) -> None:
        """Sync the feature files and write the release marker now (shutdown, tests)."""
        with self.lock:
            self._settle(force=True)

    def flush(self) -> None:
        """Write every open attempt and trial (shutdown): incomplete records."""
        with self.lock:
            self.assembler.flush()
            self._settle(force=True)

    def _expire(self, now: float) -> None:
        cutoff = now - self.max_age_s
        old: list[str] = []
        for attempt_id, pin in self._attempt_pins.items():
            if pin.first_seen > cutoff:
                break
            if ("a", attempt_id) not in self._unsettled:
                old.append(attempt_id)
        for attempt_id in old:
            if self.assembler.release_attempt(attempt_id):
                with self._stats.lock:
                    self._stats.max_age_released += 1
            else:
                self._unpin(self._attempt_pins, attempt_id)
        old_trials = [
            t
            for t, pin in self._trial_pins.items()
            if pin.first_seen <= cutoff and ("t", t) not in self._unsettled
        ]
        for trial_id in old_trials:
            if not self.assembler.release_trial(trial_id):
                self._unpin(self._trial_pins, trial_id)

    # ------------------------------------------------------------------------------ pins
    def _pin(self, pins: dict[str, _Pin], key: str, seq: int, now: float) -> None:
        pin = pins.get(key)
        if pin is None:
            pin = pins[key] = _Pin(now)
        if seq not in pin.segments:
            pin.segments.add(seq)
            self._segment_pins[seq] += 1

    def _drop(self, pin: _Pin) -> None:
        counts = self._segment_pins
        for seq in pin.segments:
            left = counts[seq] - 1
            if left > 0:
                counts[seq] = left
            else:
                del counts[seq]

    def _unpin(self, pins: dict[str, _Pin], key: str) -> None:
        pin = pins.pop(key, None)
        if pin is not None:
            self._drop(pin)

    def _settle(self, *, force: bool = False) -> None:
        """Records were written: once sync_interval_s has passed since the last time (or when
        forced), sync the feature files, move or drop the records' pins, and write release
        markers. Until then the pins stay, so a crash replays the spans and nothing written
        but not yet synced can be lost."""
        if self._released:
            position = self.processed
            self._stamped.extend((*entry, position) for entry in self._released)
            self._released.clear()
        if not self._stamped:
            return
        now = self._clock()
        if not force and now - self._last_settle < self.sync_interval_s:
            return
        self._last_settle = now
        try:
            self._sync_features()
        except OSError:
            _log.exception("could not sync the feature files")
        assembler = self.assembler
        markers: list[tuple[Position, list[_ReleaseEntry]]] = []
        for kind, key, revision, trial_id, upto in self._stamped:
            self._release_order += 1
            entry = _ReleaseEntry(kind, key, revision, self._release_order)
            if markers and markers[-1][0] == upto:
                markers[-1][1].append(entry)
            else:
                markers.append((upto, [entry]))
            self._unsettled.discard((kind, key))
            if kind == "a":
                if assembler.holds(key):
                    continue  # open again, or late spans wait: pinned until that record
                pin = self._attempt_pins.pop(key, None)
                if pin is None:
                    continue
                if trial_id is not None and assembler.trial_pending(trial_id):
                    for seq in pin.segments:
                        self._pin(self._trial_pins, trial_id, seq, pin.first_seen)
                self._drop(pin)
            elif not assembler.trial_pending(key):
                self._unpin(self._trial_pins, key)
        self._stamped.clear()
        sizes = self._sink.sizes()
        for upto, entries in markers:
            marker = _ReleaseMarker(upto, entries, sizes)
            try:
                self._spool.append(KIND_RELEASE, len(entries), _marker_encoder.encode(marker))
            except (SpoolError, OSError):
                # Without the marker a restart writes these records once more; nothing is lost.
                _log.exception("could not write a release marker to the spool")

    # ------------------------------------------------------------------------- retirement
    def retire(self, *, forwarding: bool) -> int:
        """Delete sealed segments, oldest first, that nothing needs any more."""
        retired = 0
        spool = self._spool
        for segment in spool.segments():
            if not segment.sealed:
                break
            with self.lock:
                if self._segment_pins.get(segment.seq):
                    break
                if segment.data_records and self.processed < (segment.seq, segment.data_end):
                    break
            if forwarding and spool.cursor(segment.seq) < segment.data_end:
                break
            spool.retire(segment.seq)
            retired += 1
        return retired

    def bound_spool(self, max_bytes: int, *, forwarding: bool) -> int:
        """Keep the spool within ``max_bytes``: seal and retire what can go; while still over,
        write the attempts and trials pinning the oldest segment as incomplete records (their
        later spans make revisions, as after any eviction) and retire again. Returns how many
        were released. What only the forwarder still needs stays (requests get 429 meanwhile)."""
        spool = self._spool
        if spool.total_bytes <= max_bytes:
            return 0
        spool.roll()
        self.retire(forwarding=forwarding)
        released = 0
        while spool.total_bytes > max_bytes:
            segments = spool.segments()
            if len(segments) < 2:
                break
            oldest = segments[0].seq
            with self.lock:
                attempts = [a for a, pin in self._attempt_pins.items() if oldest in pin.segments]
                trials = [t for t, pin in self._trial_pins.items() if oldest in pin.segments]
                if not attempts and not trials:
                    break  # not pinned: the forwarder (or processing) is behind
                for attempt_id in attempts:
                    if self.assembler.release_attempt(attempt_id):
                        released += 1
                # Attempts just written may have moved their pins to their trials.
                trials = [t for t, pin in self._trial_pins.items() if oldest in pin.segments]
                for trial_id in trials:
                    if self.assembler.release_trial(trial_id):
                        released += 1
                self._settle(force=True)
                # Pins left on the segment belong to attempts whose late spans wait: write them.
                for attempt_id in [
                    a for a, pin in self._attempt_pins.items() if oldest in pin.segments
                ]:
                    self._unpin(self._attempt_pins, attempt_id)
                for trial_id in [
                    t for t, pin in self._trial_pins.items() if oldest in pin.segments
                ]:
                    self._unpin(self._trial_pins, trial_id)
            if not self.retire(forwarding=forwarding):
                break
        if released:
            self.spool_bound_released += released
            _log.warning(
                "spool over max_spool_bytes (%d): wrote %d attempts/trials early as incomplete "
                "records",
                max_bytes,
                released,
            )
        return released

    # -------------------------------------------------------------------------- revisions
    def save_revisions(self, directory: str | os.PathLike[str]) -> None:
        """Snapshot attempt revisions, so a span arriving after a restart for an attempt
        written before it continues at the next revision instead of restarting at 0."""
        with self.lock:
            revisions = self.assembler.revisions()
        path = os.path.join(directory, REVISIONS_FILE)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_marker_encoder.encode(revisions))
            if self._sync_features_enabled:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load_revisions(self, directory: str | os.PathLike[str]) -> int:
        path = os.path.join(directory, REVISIONS_FILE)
        try:
            with open(path, "rb") as fh:
                revisions = _revisions_decoder.decode(fh.read())
        except FileNotFoundError:
            return 0
        except (OSError, msgspec.DecodeError) as exc:
            _log.warning("spool: ignoring unreadable %s: %s", path, exc)
            return 0
        with self.lock:
            for attempt_id, revision in revisions.items():
                self.assembler.seed_revision(attempt_id, revision)
        return len(revisions)

    @property
    def pinned_segments(self) -> int:
        return len(self._segment_pins)

    def close(self) -> None:
        self._sink.close()
        for fd in self._feature_fds.values():
            os.close(fd)
        self._feature_fds.clear()

    # ----------------------------------------------------------------------------- replay
    def replay(self, segments: Iterable[Segment]) -> ReplayReport:
        """Resume from an earlier run's spool: feed the spans not yet accounted for.

        Pass 1 reads the release markers and which attempts/trials each request holds; pass 2
        feeds, in spool order, the spans of attempts that are still open (no marker after
        their last span), that were written but received spans later (continued at the next
        revision), or whose trial record is still to come; and trial spans not yet released.
        """
        report = ReplayReport()
        segments = list(segments)
        report.segments = len(segments)
        releases: dict[tuple[str, str], tuple[int, int, Position]] = {}
        attempt_last: dict[str, Position] = {}
        attempt_trial: dict[str, str] = {}
        trial_last: dict[str, Position] = {}
        holds: dict[Position, tuple[frozenset[str], frozenset[str]]] = {}
        files: dict[str, int] = {}
        for segment in segments:
            for record in self._spool.records(segment.seq):
                if record.kind == KIND_RELEASE:
                    try:
                        marker = _marker_decoder.decode(record.body)
                    except msgspec.DecodeError:
                        _log.warning("spool: unreadable release marker in segment %d", record.seq)
                        continue
                    files.update(marker.files)
                    upto: Position = (marker.upto[0], marker.upto[1])
                    for e in marker.released:
                        releases[(e.kind, e.key)] = (e.revision, e.order, upto)
                        self._release_order = max(self._release_order, e.order)
                    continue
                if record.kind not in DATA_KINDS:
                    continue
                spans = self._decode_spooled(record, report)
                if spans is None:
                    continue
                position = (record.seq, record.end)
                attempts: set[str] = set()
                trials: set[str] = set()
                for span in spans:
                    attrs = span.attributes
                    attempt_id = attrs.get(_ATTEMPT_ID)
                    if isinstance(attempt_id, str):
                        attempts.add(attempt_id)
                        attempt_last[attempt_id] = position
                        trial_id = attrs.get(_TRIAL_ID)
                        if isinstance(trial_id, str):
                            attempt_trial[attempt_id] = trial_id
                    elif attrs.get(_SPAN_TYPE) == "trial":
                        trial_id = attrs.get(_TRIAL_ID)
                        if isinstance(trial_id, str):
                            trials.add(trial_id)
                            trial_last[trial_id] = position
                if attempts or trials:
                    holds[position] = (frozenset(attempts), frozenset(trials))

        wanted_attempts: set[str] = set()
        for attempt_id, last in attempt_last.items():
            release = releases.get(("a", attempt_id))
            if release is None:
                wanted_attempts.add(attempt_id)
                continue
            revision, order, upto = release
            trial_id = attempt_trial.get(attempt_id)
            trial_release = releases.get(("t", trial_id)) if trial_id is not None else None
            reopened = last > upto
            trial_needs_it = trial_id is not None and (
                trial_release is None or trial_release[1] < order
            )
            if reopened or trial_needs_it:
                wanted_attempts.add(attempt_id)
                # A trial still to come kept every segment the attempt pinned, so all of its
                # spans are replayed; otherwise its earlier segments may be gone (partial).
                self.assembler.seed_revision(attempt_id, revision, rebuild=trial_needs_it)
        wanted_trials = {
            trial_id
            for trial_id, last in trial_last.items()
            if (release := releases.get(("t", trial_id))) is None or last > release[2]
        }
        report.attempts = len(wanted_attempts)
        # Records written after the last marker (the run died between writing them and
        # marking them): replaying their attempts yields them again; do not write them twice.
        self._unmarked = {
            key
            for key in written_keys(self._features_dir, files, default_tail=_UNMARKED_TAIL)
            if (key[0], key[1]) not in releases or releases[(key[0], key[1])][0] < key[2]
        }
        report.already_written = len(self._unmarked)

        with self.lock:
            for segment in segments:
                for record in self._spool.records(segment.seq):
                    if record.kind not in DATA_KINDS:
                        continue
                    position = (record.seq, record.end)
                    held = holds.get(position)
                    if held is None or (
                        held[0].isdisjoint(wanted_attempts) and held[1].isdisjoint(wanted_trials)
                    ):
                        self.processed = position
                        report.skipped_spans += record.count
                        continue
                    spans = self._decode_spooled(record, None) or []
                    keep = [s for s in spans if _wanted(s, wanted_attempts, wanted_trials)]
                    report.skipped_spans += len(spans) - len(keep)
                    report.spans += len(keep)
                    self.process(Batch(keep, position))
            self._settle(force=True)
        with self._stats.lock:
            self._stats.replayed_spans += report.spans
        return report

    def _decode_spooled(self, record: Record, report: ReplayReport | None) -> list[Span] | None:
        try:
            spans = decode_record(record.kind, record.body)
        except DecodeError as exc:
            if report is not None:
                report.undecodable_records += 1
                _log.warning(
                    "spool: undecodable request in segment %d at %d: %s",
                    record.seq,
                    record.start,
                    exc,
                )
            return None
        if report is not None:
            report.records += 1
        return spans


def _wanted(span: Span, attempts: set[str], trials: set[str]) -> bool:
    attrs = span.attributes
    attempt_id = attrs.get(_ATTEMPT_ID)
    if isinstance(attempt_id, str):
        return attempt_id in attempts
    trial_id = attrs.get(_TRIAL_ID)
    return attrs.get(_SPAN_TYPE) == "trial" and isinstance(trial_id, str) and trial_id in trials
