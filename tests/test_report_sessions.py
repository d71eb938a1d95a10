"""The report's product-session section: outcome distribution, failure modes, and the signals
of accepted versus other sessions, from session records in memory, in a feature folder and
derived from imported traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

pytest.importorskip("scipy")

from agentsignals import features, report
from agentsignals._features.record import AttemptRecord, SessionRecord
from agentsignals._features.store import JsonLinesSink
from agentsignals._report.build import render_html


def _sessions() -> list[SessionRecord]:
    out = []
    for i in range(16):
        accepted = i < 8
        out.append(
            msgspec.convert(
                {
                    "attempt_id": f"s{i}",
                    "agent": "pi",
                    "user": {
                        "session_outcome": "accepted" if accepted else (
                            "abandoned_mid_session" if i < 14 else "explicitly_rejected"
                        ),
                        "user_turn_count": 3 + i % 3,
                        "compaction_events": [],
                    },
                    "dynamics": {
                        # accepted: 0.0 or 0.1; others 0.4 or 0.6 (means 0.05 and 0.5).
                        "correction_ratio": (0.1 * (i % 2)) if accepted else (0.4 + 0.2 * (i % 2)),
                        "session_failure_mode": "stuck_loop" if i in (9, 10) else None,
                        "session_failure_mode_missing": (
                            None if i in (9, 10) else ["dynamics.max_cp"]
                        ),
                    },
                },
                SessionRecord,
            )
        )  # fmt: skip
    return out


def test_section_from_records_in_memory() -> None:
    sessions = _sessions()
    attempts = [AttemptRecord(attempt_id=s.attempt_id) for s in sessions[:-1]]  # one filtered
    frame = report.from_records(attempts)
    options = report.Options(replicates=500, sessions=tuple(sessions))
    result = report.build(frame, options)
    r = result.result("sessions")
    assert r is not None
    assert r["sessions"] == 15  # s15 has no attempt record among those reported
    shares = {o["value"]: (o["k"], o["n"]) for o in r["outcomes"]}
    assert shares == {
        "accepted": (8, 15),
        "abandoned_mid_session": (6, 15),
        "explicitly_rejected": (1, 15),
        "restarted_same_task": (0, 15),
    }
    accepted = next(o for o in r["outcomes"] if o["value"] == "accepted")
    assert accepted["lo"] < 8 / 15 < accepted["hi"]  # a Wilson interval
    modes = {o["value"]: o["k"] for o in r["failure_modes"]}
    assert modes == {"stuck_loop": 2, "undecided": 13}
    assert r["failure_mode_missing"] == [{"input": "dynamics.max_cp", "sessions": 13}]
    row = next(x for x in r["signals"] if x["signal"] == "dynamics.correction_ratio")
    others = np.array([0.4 + 0.2 * (i % 2) for i in range(8, 15)])
    assert row["mean_accepted"] == pytest.approx(0.05)
    assert row["mean_other"] == pytest.approx(others.mean())
    d = row["difference"]
    assert d["value"] == pytest.approx(0.05 - others.mean())
    assert d["lo"] <= d["value"] <= d["hi"] < 0
    assert row["q"] < 0.05
    unknown = next(x for x in r["signals"] if x["signal"] == "dynamics.max_cp")
    assert unknown["known"] == 0 and unknown["difference"] is None
    md = result.markdown()
    assert "15 product sessions: accepted 53.3%" in md
    assert "correction ratio: accepted minus others" in md
    assert "Product sessions" in render_html(result)


def test_no_section_without_sessions() -> None:
    frame = report.from_records([AttemptRecord(attempt_id="a")])
    assert report.build(frame, report.Options(replicates=100)).result("sessions") is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentsignals.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_report_command_reads_sessions_of_a_feature_folder(tmp_path: Path) -> None:
    folder = tmp_path / "features"
    sink = JsonLinesSink(folder)
    for s in _sessions():
        sink(AttemptRecord(attempt_id=s.attempt_id))
        sink(s)
    sink.close()
    out = tmp_path / "report.html"
    proc = _cli("report", str(folder), "-o", str(out), "--replicates", "200")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["sections"]["sessions"]["sessions"] == 16
    # sessions.jsonl is not read as attempt records.
    assert data["sections"]["overview"]["totals"]["attempts"] == 16


def test_report_over_imported_real_sessions(shared_data: Path, tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    files = [
        shared_data / "pi" / "before-compaction.jsonl",
        shared_data / "claude-code" / "tool_heavy.jsonl",
        shared_data / "codex" / "redacted-session-01.jsonl",
    ]
    proc = _cli("import", *map(str, files), "-o", str(traces), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    sessions: list[SessionRecord] = []
    frame = report.load([traces], sessions=sessions)
    assert sorted(s.agent or "" for s in sessions) == ["claude-code", "codex", "pi"]
    result = report.build(frame, report.Options(replicates=100, sessions=tuple(sessions)))
    r = result.result("sessions")
    assert r is not None and r["sessions"] == 3
    assert {o["value"]: o["k"] for o in r["outcomes"]}["abandoned_mid_session"] == 3
    assert r["compared"] is False  # no accepted session
    assert features.SessionRecord is SessionRecord


def test_load_links_sessions_written_one_at_a_time(tmp_path: Path) -> None:
    """The in-process store writes each session as it ends (no joins): the report joins them."""
    folder = tmp_path / "features"
    sink = JsonLinesSink(folder)
    for ident, start in (("early", 0), ("late", 900)):
        sink(AttemptRecord(attempt_id=ident))
        sink(
            msgspec.convert(
                {
                    "attempt_id": ident,
                    "repository": "/repo",
                    "started_at_ns": start * 10**9,
                    "ended_at_ns": (start + 300) * 10**9,
                    "user": {"session_outcome": "abandoned_mid_session"},
                },
                SessionRecord,
            )
        )
    sink.close()
    sessions: list[SessionRecord] = []
    report.load([folder], sessions=sessions)
    by_id = {s.attempt_id: s for s in sessions}
    assert by_id["early"].user.session_outcome == "restarted_same_task"  # 600 s later
    assert by_id["early"].user.session_reopened_within_s == 600.0
    assert by_id["late"].user.prior_sessions_same_repo == 1
