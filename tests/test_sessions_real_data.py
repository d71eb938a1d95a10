"""Session records of real Claude Code, pi and Codex sessions (../shared/data), every value
checked by hand against the raw file (the evidence is in each comment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsignals import features
from agentsignals._import.run import import_file


def _session(path: Path) -> features.SessionRecord:
    result = import_file(path)
    assert not [p for p in result.problems if "abandoned" not in p.message]
    spans = [s for t in result.trajectories for s in t]
    out = features.from_spans(spans)
    assert len(out.sessions) == 1, "one interactive session, one session record"
    return out.sessions[0]


def test_claude_code_tool_heavy(shared_data: Path) -> None:
    s = _session(shared_data / "claude-code" / "tool_heavy.jsonl")
    u = s.user
    # Line 4 "start phoenix in background" (4 words, 27 chars) and line 26 "scrolling back in
    # xterm.js still does not work (maybe ...)? websearch xterm.js tmux interactions" (18
    # words, 121 chars). Lines 18 and 39 are "[Request interrupted by user]"; line 21 is the
    # /mcp command; lines 20 and 22 are Claude Code's caveat and the command's stdout.
    assert u.user_turn_count == 2
    assert u.user_msg_lengths == [4, 18]
    assert u.user_msg_chars == [27, 121]
    assert (u.interrupts, u.commands) == (2, 1)
    assert u.turn_timestamps is not None
    assert u.turn_timestamps[0] == "2026-02-10T22:57:54.684000Z"  # line 4's timestamp
    assert s.dynamics.user_msg_length_slope == 14.0  # two points: 18 - 4
    assert s.dynamics.correction_ratio == 0.0  # "does not" is not in the lexicon
    assert u.compaction_events == [] and u.model_changes == []
    assert u.session_outcome == "abandoned_mid_session"  # no positive, no rejection
    assert u.agent_turn_count == 4 and u.turn_ratio == 0.5


def test_pi_session_with_compactions_interrupts_and_edits(shared_data: Path) -> None:
    s = _session(shared_data / "pi" / "before-compaction.jsonl")
    u = s.user
    # 55 `user` messages, 18 assistant messages with stopReason "aborted", 3 bashExecution
    # entries, 484 assistant messages; the first user message is 102 words / 668 chars.
    assert (u.user_turn_count, u.interrupts, u.commands, u.agent_turn_count) == (55, 18, 3, 484)
    assert u.user_msg_lengths is not None and u.user_msg_lengths[:4] == [102, 44, 5, 10]
    assert u.user_msg_chars is not None and u.user_msg_chars[:4] == [668, 235, 28, 47]
    # The two `compaction` entries: tokensBefore 175004 after 173 assistant messages, and
    # 185014 after 303 (pi records no tokens-after).
    compactions = [
        (c.turn_index, c.tokens_before, c.tokens_after, c.timestamp)
        for c in u.compaction_events or []
    ]
    assert compactions == [
        (173, 175004, None, "2025-12-08T23:22:54.411000Z"),
        (303, 185014, None, "2025-12-08T23:54:21.502000Z"),
    ]
    # Every response is claude-opus-4-5: the model_change entries cycle back to it before
    # any response on another model.
    assert u.model_changes == []
    # Messages 10 ("... i would assume ... no ..."), 18 ("..., no?"), 21 ("i actually
    # want"), ...: 12 of 55 match the inventory's correction words.
    assert u.correction_turns == [10, 18, 21, 22, 23, 25, 35, 39, 44, 48, 50, 51]
    assert s.dynamics.correction_ratio == pytest.approx(12 / 55)
    # The first successful edit: refactor.md's line 87 replaced (`-  87 ... / +  87 ...`),
    # a call of the 14th assistant message (turn 13).
    first = (u.region_edit_history or [])[0]
    assert first.file.endswith("packages/coding-agent/docs/refactor.md")
    assert (first.start_line, first.end_line, first.lines_added, first.lines_removed) == (
        87,
        87,
        1,
        1,
    )
    assert first.turn_index == 13
    assert u.session_outcome == "abandoned_mid_session"  # the last message is "ok"
    assert s.repository == "/Users/badlogic/workspaces/pi-mono"


def test_codex_session(shared_data: Path) -> None:
    s = _session(shared_data / "codex" / "redacted-session-01.jsonl")
    # One user_message event, "[REDACTED_PROMPT]" (1 word, 17 chars), at 04:58:23.506;
    # the environment_context message item is Codex's, not the user's.
    assert (s.user.user_turn_count, s.user.user_msg_lengths, s.user.user_msg_chars) == (
        1,
        [1],
        [17],
    )
    assert s.user.turn_timestamps is not None
    assert s.user.turn_timestamps[0] == "2026-06-05T04:58:23.506000Z"
    assert s.repository == "/tmp/agent-history-real-agent/codex/workspace"
    assert s.user.interrupts == 0 and s.user.agent_turn_count == 1


def test_claude_code_short_session(shared_data: Path) -> None:
    s = _session(shared_data / "claude-code" / "redacted-session-01.jsonl")
    assert (s.user.user_turn_count, s.user.user_msg_chars) == (1, [17])
    # Only the user's first message: no slope, and the labels say what they lack.
    assert s.dynamics.user_msg_length_slope is None
    assert s.dynamics.session_failure_mode is None
    assert "dynamics.max_cp" in (s.dynamics.session_failure_mode_missing or [])
    assert s.anticipation.session_attribution_missing == ["anticipation.prompt_underspecification"]
