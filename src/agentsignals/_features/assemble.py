"""Group spans into attempts and trials, and emit a feature record when each is done.

Grouping uses the identity attributes (`agent_signals.attempt.id`, `agent_signals.trial.id`) on
every span, so spans can arrive in any order, from any number of files or requests. Memory is
bounded: a cap on in-flight attempts (the least recently seen is evicted as an incomplete
record), an idle timeout, and a grace period after an attempt span arrives for late children.
Trials and attempts run for minutes to hours, so an attempt is released when its own span
ends, not after a fixed wait. Duplicate spans are dropped by span id; a span that arrives after
its attempt's record was written yields a revised record (revision + 1), never a silent drop.
Late spans are coalesced: the revision is written ``late_window`` after the first late span
(doubling for each further revision of the same attempt, up to 64 windows), so a stream of
late spans costs a bounded number of rebuilds instead of one per span. Once the attempt's spans
have left the bounded cache of finished attempts (bounded in attempts and in spans), that
revision is built from the late spans alone and marked ``partial``: readers keep the last
whole revision.

The clock is injected: seconds of monotonic time when live, "lines read" when reading files.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agentsignals import semconv as sc
from agentsignals._features.foreign import ForeignTraces, normalise
from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord
from agentsignals._spans.model import Span

Record = AttemptRecord | TrialRecord | SessionRecord
Sink = Callable[[Record], None]

_log = logging.getLogger("agentsignals.features")
_ATTEMPT_ID = sc.AGENT_SIGNALS_ATTEMPT_ID
_TRIAL_ID = sc.AGENT_SIGNALS_TRIAL_ID
_SPAN_TYPE = sc.AGENT_SIGNALS_SPAN_TYPE

# Finished attempts kept for late spans (a span arriving after the grace period still yields a
# whole revision while its attempt is here), bounded in attempts and in spans so that a few
# huge attempts cannot hold gigabytes. The span ids of more attempts are kept (a few kB per
# attempt), so a duplicate delivered later is still recognised after its spans were let go.
FINISHED_CACHE: int = 512
FINISHED_CACHE_SPANS: int = 50_000
SEEN_IDS_ATTEMPTS: int = 512
# A revision from late spans waits at most this many late windows (the k-th waits 2**k).
_MAX_LATE_BACKOFF = 64


@dataclass
class AssemblerStats:
    """Counters for health checks and the collector's metrics."""

    spans_in: int = 0
    duplicates: int = 0
    late_spans: int = 0
    unattributed: int = 0
    evicted: int = 0
    # Trials written incomplete because max_pending_trials were waiting for their trial span.
    evicted_trials: int = 0
    # Trial spans that arrived after their trial's record was written and its state let go:
    # counted and logged, not written (a record of the trial span alone would replace the
    # whole one).
    late_trial_spans: int = 0
    idle_released: int = 0
    # Attempt revisions built from late spans alone (the earlier spans were let go).
    partial_records: int = 0
    attempt_records: int = 0
    trial_records: int = 0
    session_records: int = 0
    in_flight: int = 0
    held_spans: int = 0  # spans of open attempts in memory
    pending_trials: int = 0  # trials whose record is not written yet
    # Why spans were not attributed to any attempt (reason -> spans); attempts made for
    # agents that only other instrumentors traced (see foreign.py).
    unattributed_reasons: dict[str, int] = field(default_factory=dict)
    foreign_attempts: int = 0


@dataclass
class _AttemptGroup:
    spans: list[Span] = field(default_factory=list)
    span_ids: set[str] = field(default_factory=set)
    ended_at: float | None = None  # clock reading when the attempt span arrived
    last_seen: float = 0.0
    revision: int = 0  # > 0 when the attempt was emitted before (late spans after eviction)
    partial: bool = False  # the earlier revisions' spans are gone: this group is late spans only


@dataclass
class _Finished:
    spans: list[Span]
    span_ids: set[str]
    revision: int
    complete: bool
    partial: bool = False
    # Late spans arrived and their revision is not written yet; due at this clock reading.
    due: float | None = None
    late_revisions: int = 0  # revisions written from late spans (their wait doubles)


@dataclass
class _TrialState:
    trial_id: str
    trial_span: Span | None = None
    ended_at: float | None = None
    attempts: dict[str, AttemptRecord] = field(default_factory=dict)
    emitted_revision: int = -1
    last_seen: float = 0.0


class Assembler:
    """Turns a stream of spans into attempt and trial records."""

    def __init__(
        self,
        sink: Sink,
        *,
        clock: Callable[[], float],
        grace: float = 2.0,
        idle_timeout: float = 6 * 3600.0,
        max_in_flight: int = 10_000,
        max_held_spans: int | None = None,
        max_pending_trials: int | None = None,
        finished_cache: int = FINISHED_CACHE,
        finished_spans: int = FINISHED_CACHE_SPANS,
        finished_trials: int = 512,
        seen_ids: int = SEEN_IDS_ATTEMPTS,
        remembered_ids: int = 200_000,
        late_window: float | None = None,
        embedder: object = None,
        session_judge: object = None,
    ) -> None:
        self._sink = sink
        # The product-session semantic pass's embedder and judge (None: their signals stay
        # null); see `_features.session.semantic_pass`.
        self.embedder = embedder
        self.session_judge = session_judge
        self._clock = clock
        self.grace = grace
        self.idle_timeout = idle_timeout
        self.max_in_flight = max_in_flight
        # Memory bounds for runs whose closing spans never arrive: spans held by open attempts
        # (beyond it the least recently seen attempts are written as incomplete records) and
        # trials waiting for their trial span (beyond it the oldest is written incomplete).
        self.max_held_spans = max_held_spans
        self.max_pending_trials = (
            max_in_flight if max_pending_trials is None else max_pending_trials
        )
        self._held = 0  # spans in self._open
        self._pending_order: OrderedDict[str, None] = OrderedDict()  # trials not yet written
        self._trial_revisions: OrderedDict[str, int] = OrderedDict()  # trials let go
        # How long late spans of a written attempt are gathered before its next revision
        # (the grace period unless given); 0 writes one revision per add() call.
        self.late_window = grace if late_window is None else late_window
        self._open: OrderedDict[str, _AttemptGroup] = OrderedDict()  # LRU by last seen
        self._finished: OrderedDict[str, _Finished] = OrderedDict()
        self._finished_cache = finished_cache
        self._finished_spans_cap = finished_spans
        self._finished_spans = 0  # spans held by the finished cache
        self._finished_trials = finished_trials  # written trials kept for their revisions
        # attempt id -> span ids, for attempts that left the finished cache (duplicates).
        self._seen_ids: OrderedDict[str, set[str]] = OrderedDict()
        self._seen_ids_cap = seen_ids
        # (due, sequence, attempt id) of finished attempts with late spans waiting.
        self._late_due: list[tuple[float, int, str]] = []
        self._late_seq = 0
        # attempt id -> last revision written, for attempts whose spans were let go.
        self._emitted: OrderedDict[str, int] = OrderedDict()
        self._remembered_ids = remembered_ids
        # Written attempts whose spans are being fed again in full (a collector replaying its
        # spool): their next group is a rebuild, not late spans alone.
        self._rebuilding: set[str] = set()
        self._trials: OrderedDict[str, _TrialState] = OrderedDict()
        self._ended: deque[tuple[float, str]] = deque()
        self._pending_trials: deque[tuple[float, str]] = deque()
        # Trials whose span arrived but whose attempts are still running.
        self._waiting_trials: dict[str, _TrialState] = {}
        self._emitted_trials: OrderedDict[str, None] = OrderedDict()
        self._last_idle_scan = clock()
        self.stats = AssemblerStats()
        # Spans without our identity, held per trace: agents only other instrumentors traced.
        self._foreign = ForeignTraces(
            grace=grace, idle_timeout=idle_timeout, max_traces=max_in_flight
        )
        self.stats.unattributed_reasons = self._foreign.reasons

    # ------------------------------------------------------------------------------ input
    def add(self, spans: Iterable[Span]) -> None:
        """Take spans (any order, any mix of attempts); releases what became ready."""
        now = self._clock()
        stats = self.stats
        # Late spans for written attempts: at most one new revision per attempt per call.
        revised: dict[str, _Finished] = {}
        foreign = self._foreign
        released: list[Span] = []
        ours_trace = None
        for span in spans:
            stats.spans_in += 1
            attrs = span.attributes
            if _SPAN_TYPE not in attrs:
                normalise(span)  # other conventions' usage under GenAI names
            attempt_id = attrs.get(_ATTEMPT_ID)
            if not isinstance(attempt_id, str):
                if attrs.get(_SPAN_TYPE) == "trial" and isinstance(attrs.get(_TRIAL_ID), str):
                    self._add_trial_span(span, now)
                    foreign.mark_ours(span.trace_id)
                else:
                    released += foreign.add(span, now)
                continue
            if span.trace_id != ours_trace:
                ours_trace = span.trace_id
                foreign.mark_ours(ours_trace)
            group = self._open.get(attempt_id)
            if group is None:
                finished = self._finished.get(attempt_id)
                if finished is not None:
                    self._add_late(attempt_id, finished, span, revised)
                    continue
                seen = self._seen_ids.get(attempt_id)
                if seen is not None and span.span_id in seen:
                    stats.duplicates += 1  # its spans were let go, their ids are known
                    continue
                revision = self._next_revision(attempt_id)
                rebuild = attempt_id in self._rebuilding
                if rebuild:
                    self._rebuilding.discard(attempt_id)
                group = _AttemptGroup(revision=revision, partial=revision > 0 and not rebuild)
                self._open[attempt_id] = group
                if len(self._open) > self.max_in_flight:
                    oldest, evicted = self._open.popitem(last=False)
                    stats.evicted += 1
                    self._emit_attempt(oldest, evicted, complete=False)
            else:
                self._open.move_to_end(attempt_id)
            if span.span_id in group.span_ids:
                stats.duplicates += 1
                continue
            group.span_ids.add(span.span_id)
            group.spans.append(span)
            self._held += 1
            group.last_seen = now
            if attrs.get(_SPAN_TYPE) == "attempt" and group.ended_at is None:
                group.ended_at = now
                self._ended.append((now, attempt_id))
        for attempt_id, finished in revised.items():
            self._schedule_late(attempt_id, finished, now)
        cap = self.max_held_spans
        if cap is not None and self._held > cap:
            self._shed_spans(cap)
        stats.in_flight = len(self._open)
        stats.held_spans = self._held
        if released:
            self._add_released(released)
        self.tick(now)

    def _shed_spans(self, cap: int) -> None:
        """Over max_held_spans: write the least recently seen open attempts as incomplete
        records until the rest fit (their later spans make a partial revision, as after any
        eviction)."""
        while self._open and self._held > cap:
            oldest, group = self._open.popitem(last=False)
            self.stats.evicted += 1
            self._emit_attempt(oldest, group, complete=group.ended_at is not None)

    def _add_released(self, spans: list[Span]) -> None:
        """Spans the foreign-trace holder released: attempt spans now, or counted as
        unattributed with their reason. Not counted as input a second time."""
        before = self.stats.spans_in
        self.add(spans)
        self.stats.spans_in = before
        self.stats.foreign_attempts = self._foreign.attempts

    def _sync_unattributed(self) -> None:
        self.stats.unattributed = sum(self._foreign.reasons.values())

    def _next_revision(self, attempt_id: str) -> int:
        last = self._emitted.get(attempt_id)
        return 0 if last is None else last + 1

    def _add_late(
        self, attempt_id: str, finished: _Finished, span: Span, revised: dict[str, _Finished]
    ) -> None:
        if span.span_id in finished.span_ids:
            self.stats.duplicates += 1
            return
        self.stats.late_spans += 1
        finished.span_ids.add(span.span_id)
        finished.spans.append(span)
        self._finished_spans += 1
        revised[attempt_id] = finished
        self._finished.move_to_end(attempt_id)
        finished.complete = finished.complete or span.attributes.get(_SPAN_TYPE) == "attempt"

    def _schedule_late(self, attempt_id: str, finished: _Finished, now: float) -> None:
        """Late spans joined a written attempt: write its next revision now (no window) or
        once its window has passed, gathering whatever else arrives meanwhile."""
        if finished.due is not None:
            return  # a revision is already waiting: these spans join it
        window = self.late_window
        if window <= 0:
            self._write_late(attempt_id, finished)
            return
        finished.due = now + window * min(2**finished.late_revisions, _MAX_LATE_BACKOFF)
        self._late_seq += 1
        heapq.heappush(self._late_due, (finished.due, self._late_seq, attempt_id))

    def _write_late(self, attempt_id: str, finished: _Finished) -> None:
        finished.due = None
        finished.revision += 1
        finished.late_revisions += 1
        self._write_attempt(
            attempt_id,
            finished.spans,
            finished.complete,
            finished.revision,
            partial=finished.partial,
        )

    def _write_due_late(self, now: float, *, everything: bool = False) -> None:
        due = self._late_due
        while due and (everything or due[0][0] <= now):
            when, _, attempt_id = heapq.heappop(due)
            finished = self._finished.get(attempt_id)
            if finished is not None and finished.due == when:
                self._write_late(attempt_id, finished)
        self._trim_finished()

    def _add_trial_span(self, span: Span, now: float) -> None:
        trial_id = str(span.attributes[_TRIAL_ID])
        if trial_id not in self._trials and trial_id in self._trial_revisions:
            self.stats.late_trial_spans += 1
            _log.warning(
                "trial %s: its trial span arrived after the trial's record (revision %d) was "
                "written and let go; not written again",
                trial_id,
                self._trial_revisions[trial_id],
            )
            return
        state = self._trial(trial_id, now)
        if state.trial_span is not None and state.trial_span.span_id == span.span_id:
            self.stats.duplicates += 1
            return
        state.trial_span = span
        if state.emitted_revision >= 0:
            self._emit_trial(state)
        elif state.ended_at is None:
            state.ended_at = now
            self._pending_trials.append((now, trial_id))

    def _trial(self, trial_id: str, now: float) -> _TrialState:
        state = self._trials.get(trial_id)
        if state is None:
            state = _TrialState(trial_id)
            known = self._trial_revisions.pop(trial_id, None)
            if known is not None:
                state.emitted_revision = known  # written before: continue at the next revision
            else:
                self._pending_order[trial_id] = None
            self._trials[trial_id] = state
            if len(self._trials) > self.max_in_flight:
                _, oldest = self._trials.popitem(last=False)
                if oldest.emitted_revision < 0:
                    self._emit_trial(oldest, complete=False)
            pending = self._pending_order
            while len(pending) > self.max_pending_trials:
                oldest_id = next(iter(pending))
                oldest_state = self._trials.get(oldest_id)
                if oldest_state is None or oldest_state is state:
                    pending.pop(oldest_id)
                    if oldest_state is state:
                        pending[oldest_id] = None  # (a bound of 0: never evict the new one)
                        break
                    continue
                self.stats.evicted_trials += 1
                self._waiting_trials.pop(oldest_id, None)
                self._emit_trial(oldest_state, complete=False)
            self.stats.pending_trials = len(pending)
        else:
            self._trials.move_to_end(trial_id)
        state.last_seen = now
        return state

    # ---------------------------------------------------------------------------- release
    def tick(self, now: float | None = None) -> None:
        """Release attempts past their grace period and attempts idle for too long."""
        now = self._clock() if now is None else now
        released = self._foreign.tick(now)
        if released:
            self._add_released(released)
        self._sync_unattributed()
        if self._late_due:
            self._write_due_late(now)
        # Ended attempts wait in arrival order, so only the ready ones are looked at.
        ended = self._ended
        while ended and now - ended[0][0] >= self.grace:
            _, attempt_id = ended.popleft()
            group = self._open.pop(attempt_id, None)
            if group is not None:
                self._emit_attempt(attempt_id, group, complete=True)
        pending = self._pending_trials
        while pending and now - pending[0][0] >= self.grace:
            _, trial_id = pending.popleft()
            state = self._trials.get(trial_id)
            if state is not None and state.emitted_revision < 0:
                if self._trial_ready(state):
                    self._emit_trial(state)
                else:
                    self._waiting_trials[trial_id] = state
        if now - self._last_idle_scan >= min(self.idle_timeout / 10, 60.0):
            self._last_idle_scan = now
            self._release_idle(now)
        self.stats.in_flight = len(self._open)

    def _release_idle(self, now: float) -> None:
        idle = [a for a, g in self._open.items() if now - g.last_seen >= self.idle_timeout]
        for attempt_id in idle:
            group = self._open.pop(attempt_id)
            self.stats.idle_released += 1
            self._emit_attempt(attempt_id, group, complete=group.ended_at is not None)
        for state in list(self._trials.values()):
            if state.emitted_revision < 0 and now - state.last_seen >= self.idle_timeout:
                self._waiting_trials.pop(state.trial_id, None)
                self._emit_trial(state, complete=False)

    @staticmethod
    def _trial_ready(state: _TrialState) -> bool:
        # The trial span says how many attempts it started; wait for their records (an
        # attempt that never ends is released by eviction or the idle timeout, then counted).
        assert state.trial_span is not None
        expected = state.trial_span.attr_int(sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT)
        return expected is None or len(state.attempts) >= expected

    def flush(self) -> None:
        """Release everything: the end of the input, or shutdown. Attempts whose span never
        arrived become incomplete records."""
        released = self._foreign.flush()
        if released:
            self._add_released(released)
        self._sync_unattributed()
        self._write_due_late(0.0, everything=True)
        for attempt_id, group in list(self._open.items()):
            del self._open[attempt_id]
            self._emit_attempt(attempt_id, group, complete=group.ended_at is not None)
        self._ended.clear()
        self._pending_trials.clear()
        self._waiting_trials.clear()
        for state in list(self._trials.values()):
            if state.emitted_revision < 0:
                self._emit_trial(state, complete=state.trial_span is not None)
        self.stats.in_flight = 0

    # ------------------------------------------------------------------------------ output
    # ---- controls for a long-running collector (max-age release, restart from a spool)

    def is_open(self, attempt_id: str) -> bool:
        """The attempt's spans are held, waiting for its end (or grace period)."""
        return attempt_id in self._open

    def held_spans(self) -> tuple[int, int]:
        """Spans in memory: (of open attempts, of the finished cache kept for late spans)."""
        return sum(len(g.spans) for g in self._open.values()), self._finished_spans

    def holds(self, attempt_id: str) -> bool:
        """A record of the attempt is still to be written: it is open, or late spans wait
        for their revision."""
        if attempt_id in self._open:
            return True
        finished = self._finished.get(attempt_id)
        return finished is not None and finished.due is not None

    def trial_pending(self, trial_id: str) -> bool:
        """The trial's record has not been written yet."""
        state = self._trials.get(trial_id)
        return state is not None and state.emitted_revision < 0

    def release_attempt(self, attempt_id: str) -> bool:
        """Write the attempt's record now (incomplete unless its span arrived)."""
        group = self._open.pop(attempt_id, None)
        if group is None:
            return False
        self._emit_attempt(attempt_id, group, complete=group.ended_at is not None)
        self.stats.in_flight = len(self._open)
        return True

    def release_trial(self, trial_id: str) -> bool:
        """Write the trial's record now, marked incomplete."""
        state = self._trials.get(trial_id)
        if state is None or state.emitted_revision >= 0:
            return False
        self._waiting_trials.pop(trial_id, None)
        self._emit_trial(state, complete=False)
        return True

    def seed_revision(self, attempt_id: str, revision: int, *, rebuild: bool = False) -> None:
        """An earlier run wrote this attempt's record at ``revision``: continue after it.
        ``rebuild``: all of the attempt's spans follow (not late spans alone), so the next
        revision is whole."""
        known = self._emitted.get(attempt_id)
        if known is None or revision > known:
            self._remember(attempt_id, revision)
        if rebuild:
            self._rebuilding.add(attempt_id)

    def revisions(self) -> dict[str, int]:
        """The last revision written of every attempt still remembered (oldest first)."""
        out = dict(self._emitted)
        for attempt_id, finished in self._finished.items():
            out.pop(attempt_id, None)
            out[attempt_id] = finished.revision
        return out

    def _emit_attempt(self, attempt_id: str, group: _AttemptGroup, *, complete: bool) -> None:
        """Write a group that just left ``_open``."""
        self._held -= len(group.spans)
        self.stats.held_spans = self._held
        old = self._finished.pop(attempt_id, None)
        if old is not None:  # (the id came back after its cache entry: a rebuild)
            self._finished_spans -= len(old.spans)
        self._finished[attempt_id] = _Finished(
            group.spans, group.span_ids, group.revision, complete, group.partial
        )
        self._finished_spans += len(group.spans)
        self._write_attempt(
            attempt_id, group.spans, complete, group.revision, partial=group.partial
        )
        self._trim_finished()

    @staticmethod
    def _spare(finished: OrderedDict[str, _Finished]) -> bool:
        if len(finished) != 1:
            return False
        only = next(iter(finished.values()))
        return only.due is not None or only.late_revisions > 0

    def _trim_finished(self) -> None:
        """Keep the finished cache within its bounds (attempts and spans), oldest out first;
        late spans still waiting for their revision get it written as they leave. The span
        bound spares the last attempt left when it is receiving late spans: one attempt with
        thousands of late spans is counted whole (not split into a short whole revision and a
        partial one) until another attempt finishes."""
        finished = self._finished
        while finished and (
            len(finished) > self._finished_cache
            or (self._finished_spans > self._finished_spans_cap and not self._spare(finished))
        ):
            old_id, old = finished.popitem(last=False)
            self._finished_spans -= len(old.spans)
            if old.due is not None:
                self._write_late(old_id, old)  # written whole, then let go
            self._remember(old_id, old.revision)
            if self._seen_ids_cap > 0:
                self._seen_ids[old_id] = old.span_ids
                if len(self._seen_ids) > self._seen_ids_cap:
                    self._seen_ids.popitem(last=False)

    def _remember(self, attempt_id: str, revision: int) -> None:
        self._emitted[attempt_id] = revision
        self._emitted.move_to_end(attempt_id)
        if len(self._emitted) > self._remembered_ids:
            self._emitted.popitem(last=False)

    def _write_attempt(
        self,
        attempt_id: str,
        spans: list[Span],
        complete: bool,
        revision: int,
        *,
        partial: bool = False,
    ) -> None:
        from agentsignals._features.extract import attempt_record

        record = attempt_record(spans, complete=complete, revision=revision)
        self.stats.attempt_records += 1
        if partial:
            # Late spans alone say little about the attempt: written (never dropped) and
            # marked, but kept out of its trial's record, which holds the whole revision.
            record.partial = True
            self.stats.partial_records += 1
            _log.warning(
                "attempt %s: %d span(s) arrived after its spans were released; written as "
                "partial revision %d (readers keep the last whole revision)",
                attempt_id,
                len(spans),
                revision,
            )
            self._sink(record)
            return
        self._sink(record)
        self._write_session(spans, record)
        if record.trial_id is not None:
            state = self._trial(record.trial_id, self._clock())
            state.attempts[attempt_id] = record
            if state.emitted_revision >= 0:
                self._emit_trial(state)
            elif state.trial_id in self._waiting_trials and self._trial_ready(state):
                del self._waiting_trials[state.trial_id]
                self._emit_trial(state)

    def _write_session(self, spans: list[Span], record: AttemptRecord) -> None:
        """The session record beside the attempt record, for a product session only."""
        from agentsignals._features.session import is_product_session, session_record

        if not is_product_session(spans):
            return
        try:
            session = session_record(
                spans, record, embedder=self.embedder, judge=self.session_judge
            )
        except Exception:  # a session signal's bug must not lose the attempt record
            _log.exception("attempt %s: session record failed", record.attempt_id)
            return
        self.stats.session_records += 1
        self._sink(session)

    def _emit_trial(self, state: _TrialState, *, complete: bool = True) -> None:
        state.emitted_revision += 1
        self.stats.trial_records += 1
        if self._pending_order.pop(state.trial_id, 0) is None:
            self.stats.pending_trials = len(self._pending_order)
        self._sink(trial_record(state, complete=complete))
        # Keep a bounded number of written trials for revisions, so memory stays flat.
        done = self._emitted_trials
        done[state.trial_id] = None
        done.move_to_end(state.trial_id)
        while len(done) > self._finished_trials:
            old_id, _ = done.popitem(last=False)
            old = self._trials.pop(old_id, None)
            if old is not None:
                revisions = self._trial_revisions
                revisions[old_id] = old.emitted_revision
                if len(revisions) > self._remembered_ids:
                    revisions.popitem(last=False)


def trial_record(state: _TrialState, *, complete: bool = True) -> TrialRecord:
    """Compose a trial record from its attempts, attempt 0 apart from the retries."""
    attempts = sorted(
        state.attempts.values(),
        key=lambda r: (r.attempt_index if r.attempt_index is not None else math.inf, r.attempt_id),
    )
    subagents = [r for r in attempts if r.parent_attempt_id is not None]
    own = [r for r in attempts if r.parent_attempt_id is None]
    first = next((r for r in own if r.attempt_index == 0), None)
    retries = [r for r in own if r is not first]
    span = state.trial_span
    task_id = span.attr_str(sc.AGENT_SIGNALS_TASK_ID) if span is not None else None
    if task_id is None:
        task_id = next((r.task_id for r in attempts if r.task_id), None)
    costs = [r.tokens.cost_usd for r in retries if r.tokens.cost_usd is not None]
    calls = [r.behavior.tool_call_count for r in retries if r.behavior.tool_call_count is not None]
    rewards = [
        (r.attempt_index, r.verification.reward) for r in own if r.verification.reward is not None
    ]
    resolved = next((i for i, reward in rewards if reward is not None and reward >= 1.0), None)
    from agentsignals._features.extract import user_resource_attributes

    resource = user_resource_attributes(span.resource) if span is not None else None
    if resource is None:
        resource = next((r.resource_attributes for r in attempts if r.resource_attributes), None)
    return TrialRecord(
        trial_id=state.trial_id,
        task_id=task_id,
        resource_attributes=resource,
        complete=complete and span is not None,
        revision=state.emitted_revision,
        attempt_count=len(own),
        first_attempt=first,
        retries=retries,
        subagents=subagents,
        wall_time_s=(span.duration_ns / 1e9) if span is not None else None,
        retries_cost_usd=sum(costs) if costs else None,
        retries_tool_call_count=sum(calls) if calls else None,
        final_reward=rewards[-1][1] if rewards else None,
        resolved_on_attempt=resolved,
    )
