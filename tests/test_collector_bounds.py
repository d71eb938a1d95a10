"""The collector's bounds (issue #16, finding 8): memory held for attempts and trials whose
closing span never arrives, and the spool's size, each bounded by a setting with the
behaviour at the bound defined; feature-file syncs batched by time without losing records.

Real collectors on loopback, real OTLP requests, spans from agentsignals' own instrumentation.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentsignals._collector import CollectorConfig
from agentsignals._spans.decode import from_readable_spans
from agentsignals._spans.encode import encode_otlp_protobuf
from test_collector_service import (
    Factory,
    _start_subprocess,
    _wait_healthy,
    attempt_id,
    free_port,
    make_attempt,
    post_pb,
    records_for,
    split_open,
    wait_until,
)

SPAN_TYPE = "agent_signals.span.type"


def trial_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "features" / "trials.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def without_trial_span(spans: list[Any]) -> tuple[list[Any], Any]:
    trial = next(s for s in spans if (s.attributes or {}).get(SPAN_TYPE) == "trial")
    return [s for s in spans if s is not trial], trial


def test_pending_trials_are_bounded_and_written_incomplete(
    collector: Factory, tmp_path: Path
) -> None:
    """Trials whose trial span has not arrived: over max_pending_trials the oldest is written
    as an incomplete trial record; its trial span arriving later makes the next revision."""
    c = collector(max_pending_trials=3)
    out = tmp_path / "out"
    trials = [make_attempt(f"task-{i}") for i in range(5)]
    held = []
    for spans in trials:
        rest, trial_span = without_trial_span(spans)
        held.append(trial_span)
        assert post_pb(c.http_port, rest) == 200
        wait_until(lambda spans=spans: records_for(out, attempt_id(spans)), what="attempt")
    wait_until(lambda: len(trial_lines(out)) == 2, what="two trials written early")
    m = c.metrics()
    assert m["evicted_trials"] == 2 and m["pending_trials"] == 3
    first, second = trial_lines(out)
    assert [first["task_id"], second["task_id"]] == ["task-0", "task-1"]
    assert first["complete"] is False and first["revision"] == 0
    assert first["attempt_count"] == 1  # its attempt record is in it
    # The first trial's span arrives late: revision 1, complete, the same attempt.
    assert post_pb(c.http_port, [held[0]]) == 200
    wait_until(lambda: len(trial_lines(out)) == 3, what="the revision")
    revised = trial_lines(out)[-1]
    assert revised["task_id"] == "task-0" and revised["revision"] == 1
    assert revised["complete"] is True and revised["attempt_count"] == 1
    assert revised["wall_time_s"] is not None
    # The three still pending are written (complete) when their spans come.
    for span in held[2:]:
        assert post_pb(c.http_port, [span]) == 200
    wait_until(lambda: len(trial_lines(out)) == 6, what="the remaining trials")
    assert all(t["complete"] for t in trial_lines(out)[3:])
    assert c.metrics()["pending_trials"] == 0  # (task-1 was written early; none wait)


def test_held_spans_are_bounded_and_evicted_attempts_written_incomplete(
    collector: Factory, tmp_path: Path
) -> None:
    """Open attempts over max_held_spans: the least recently seen is written as an incomplete
    record; its spans arriving afterwards make the next revision, never a silent drop."""
    c = collector(max_held_spans=8)
    out = tmp_path / "out"
    a = make_attempt("a", tools=4)
    b = make_attempt("b", tools=4)
    a_children, a_ends = split_open(a)
    b_children, b_ends = split_open(b)
    assert len(a_children) == 5 and len(b_children) == 5  # a turn and 4 tools, not closed
    assert post_pb(c.http_port, a_children) == 200
    wait_until(lambda: c.metrics()["held_spans"] == 5, what="a held")
    assert post_pb(c.http_port, b_children) == 200
    wait_until(lambda: records_for(out, attempt_id(a)), what="a written at the bound")
    (record,) = records_for(out, attempt_id(a))
    assert record["complete"] is False and record["span_count"] == 5
    m = c.metrics()
    assert m["held_spans"] == 5 and m["evicted_attempts"] == 1
    assert not records_for(out, attempt_id(b))
    # a's attempt span arrives while a's spans are still in the finished cache: revision 1
    # is whole and complete (had they left it, a revision marked partial would follow).
    assert post_pb(c.http_port, a_ends) == 200
    wait_until(lambda: len(records_for(out, attempt_id(a))) == 2, what="a's revision")
    late = records_for(out, attempt_id(a))[-1]
    assert late["revision"] == 1 and late["partial"] is False
    assert late["complete"] is True and late["span_count"] == len(a) - 1
    # b stays whole: it closes within the bound.
    assert post_pb(c.http_port, b_ends) == 200
    wait_until(lambda: records_for(out, attempt_id(b)), what="b")
    (whole,) = records_for(out, attempt_id(b))
    assert whole["complete"] is True and whole["span_count"] == len(b) - 1


def test_spool_is_bounded_by_max_spool_bytes(collector: Factory, tmp_path: Path) -> None:
    """Attempts that never close pin the spool; over max_spool_bytes the ones pinning the
    oldest segment are written as incomplete records so it can be deleted."""
    segment = 64 << 10
    c = collector(segment_bytes=segment, max_spool_bytes=4 * segment, segment_roll_s=0.05)
    out = tmp_path / "out"
    sent: list[list[Any]] = []
    padding = "x" * 2000
    for i in range(60):
        spans = make_attempt(f"open-{i}", tools=5)
        children, _ = split_open(spans)  # never closed
        typed = from_readable_spans(children)
        body = encode_otlp_protobuf(
            [msgspec.structs.replace(s, attributes={**s.attributes, "pad": padding}) for s in typed]
        )
        status = 429
        for _ in range(100):
            status = _post_raw(c.http_port, body)
            if status != 429:
                break
            wait_until(lambda: not c.ingest.spool_full(), timeout=10, what="room in the spool")
        assert status == 200
        sent.append(spans)
    total = 60 * 7 * 2100
    assert total > 8 * segment  # the load is well over the bound
    wait_until(lambda: c.metrics()["spool_bytes"] <= 4 * segment, what="the spool under its bound")
    m = c.metrics()
    assert m["spool_bound_released"] > 0
    assert m["max_spool_bytes"] == 4 * segment
    written = [records_for(out, attempt_id(s)) for s in sent]
    released = [r for r in written if r]
    assert len(released) >= m["spool_bound_released"] - 60  # (trials count too)
    assert released and all(r[0]["complete"] is False for r in released)
    # The oldest went first.
    assert written[0]


def _post_raw(port: int, body: bytes) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_feature_syncs_are_batched_by_time(collector: Factory, tmp_path: Path) -> None:
    """Records are written at once, the feature files synced at most every features_sync_s
    (one sync for many records), and everything is settled at shutdown."""
    c = collector(features_sync_s=600.0)  # (a window no loaded machine outlasts)
    out = tmp_path / "out"
    attempts = [make_attempt(f"t{i}") for i in range(5)]
    for spans in attempts:
        assert post_pb(c.http_port, spans) == 200
    for spans in attempts:
        wait_until(lambda spans=spans: records_for(out, attempt_id(spans)), what="a record")
    assert c.metrics()["feature_syncs"] == 0  # written, not yet synced: within the window
    assert c.metrics()["spool_pinned_segments"] >= 1  # pinned until settled
    c.processor.settle()
    m = c.metrics()
    assert m["feature_syncs"] == 1 and m["spool_pinned_segments"] == 0


def test_kill_9_inside_the_sync_window_writes_no_record_twice(tmp_path: Path) -> None:
    """Records written but not yet settled when the collector is killed: the restart replays
    their spans, finds the records already in the files and writes none of them again."""
    port = free_port()
    out = tmp_path / "out"
    config_file = tmp_path / "collect.yaml"
    config_file.write_text(
        f"http_port: {port}\ngrpc_port: 0\noutput_dir: {out}\ngrace_s: 0.1\ntick_s: 0.05\n"
        "features_sync_s: 600\n"
    )
    log = tmp_path / "collector.log"
    attempts = [make_attempt(f"k{i}") for i in range(3)]
    proc = _start_subprocess(config_file, log)
    try:
        _wait_healthy(port, proc)
        for spans in attempts:
            assert post_pb(port, spans) == 200
        for spans in attempts:
            wait_until(lambda spans=spans: records_for(out, attempt_id(spans)), what="record")
        wait_until(lambda: len(trial_lines(out)) == 3, what="trial records")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = _start_subprocess(config_file, log)
    try:
        _wait_healthy(port, proc)
        later = make_attempt("after")
        assert post_pb(port, later) == 200
        wait_until(lambda: records_for(out, attempt_id(later)), what="a record after restart")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for spans in attempts:
        (record,) = records_for(out, attempt_id(spans))
        assert record["complete"] is True and record["span_count"] == len(spans) - 1
    assert sorted(t["task_id"] for t in trial_lines(out)) == ["after", "k0", "k1", "k2"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_spool_bytes": 1 << 20, "segment_bytes": 1 << 20}, "twice segment_bytes"),
        ({"max_held_spans": 0}, "max_held_spans must be positive"),
        ({"max_pending_trials": -1}, "max_pending_trials must be positive"),
        ({"features_sync_s": -1.0}, "features_sync_s"),
        ({"workers": 0}, "workers must be positive"),
        ({"workers": 100_000}, "workers must be at most 256"),
    ],
)
def test_bound_settings_are_validated(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CollectorConfig(**settings).validate()


def test_bounds_from_flags_and_yaml(tmp_path: Path) -> None:
    from agentsignals._collector.service import build_parser, config_from_args

    config_file = tmp_path / "c.yaml"
    config_file.write_text("max_spool_bytes: 512MiB\nmax_pending_trials: 50\nworkers: 2\n")
    args = build_parser().parse_args(
        ["--config", str(config_file), "--max-held-spans", "1000", "--workers", "3"]
    )
    config = config_from_args(args)
    assert config.max_spool_bytes == 512 << 20
    assert config.max_pending_trials == 50 and config.max_held_spans == 1000
    assert config.workers == 3
    assert os.fspath(config.output_dir)
