"""Live product sessions in real git repositories: user messages, edit regions measured on the
workspace, the session's end state read from git, and the session record built from them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import agentsignals
from agentsignals import features
from agentsignals import semconv as sc
from agentsignals.testing import CapturedSpans, attributes
from git_support import isolate_git

LINES = [f"line {i}" for i in range(1, 41)]  # 40 lines


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True)
    return proc.stdout.decode()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text("\n".join(LINES) + "\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base", "--date=2000-01-01T00:00:00")
    env_date = {"GIT_COMMITTER_DATE": "2000-01-01T00:00:00"}
    subprocess.run(
        ["git", "commit", "-q", "--amend", "--no-edit", "--date=2000-01-01T00:00:00"],
        cwd=root,
        check=True,
        env={**os.environ, **env_date},
    )
    return root


def edit(root: Path, first: int, last: int, new: list[str]) -> None:
    """Replace lines first..last (1-based, inclusive) of app.py with `new`."""
    lines = (root / "app.py").read_text().splitlines()
    lines[first - 1 : last] = new
    (root / "app.py").write_text("\n".join(lines) + "\n")


def tool_edit(root: Path, first: int, last: int, new: list[str]) -> None:
    with agentsignals.tool("edit", arguments={"path": "app.py"}):
        edit(root, first, last, new)


def _session(captured: CapturedSpans) -> features.SessionRecord:
    result = features.from_spans(captured.spans)
    assert len(result.sessions) == 1
    return result.sessions[0]


def test_accepted_session_committed_with_a_converging_and_an_oscillating_region(
    captured: CapturedSpans, repo: Path
) -> None:
    with agentsignals.attempt(context="product", workspace=str(repo)) as attempt:
        attempt.record_user_message("Rename the variables in app.py please")
        with agentsignals.turn() as turn:
            # Region A (lines 5-8): 4 lines replaced (8 changed), then 1 (2): converging.
            tool_edit(repo, 5, 8, ["a5", "a6", "a7", "a8"])
            # Region B (lines 30-31): 1 line replaced, then 3, then 1: oscillating.
            tool_edit(repo, 30, 30, ["b30"])
            turn.record_text("I think this is done. Should I also update the tests?")
        attempt.record_user_message("no, that's wrong: keep line 30 as it was")
        with agentsignals.turn() as turn:
            tool_edit(repo, 6, 6, ["a6 again"])
            tool_edit(repo, 29, 31, ["b29", "b30 again", "b31"])
            tool_edit(repo, 30, 30, ["b30 once more"])
            turn.record_text("Done.")
        attempt.record_user_message(None, kind="interrupt")
        attempt.record_user_message("thanks, looks good")
        git(repo, "commit", "-q", "-am", "the agent's change")

    spans = {s.name: attributes(s) for s in captured.spans}
    first = spans["user_turn 0"]
    assert first[sc.AGENT_SIGNALS_USER_TURN_KIND] == "message"
    assert first[sc.AGENT_SIGNALS_USER_TURN_CHARS] == len("Rename the variables in app.py please")
    assert first[sc.AGENT_SIGNALS_USER_TURN_WORDS] == 6
    assert sc.GEN_AI_INPUT_MESSAGES not in first  # content capture is off
    assert spans["user_turn 1"][sc.AGENT_SIGNALS_USER_TURN_MARKERS] == ["correction"]
    assert sc.AGENT_SIGNALS_USER_TURN_CHARS not in spans["user_turn 2"]  # an interrupt

    session = _session(captured)
    user = session.user
    assert session.repository == str(repo)
    assert (user.output_applied, user.changes_reverted) == (True, False)
    assert user.user_turn_count == 3 and user.interrupts == 1
    assert user.user_msg_lengths == [6, 9, 3]
    assert user.session_outcome == "accepted"
    assert user.agent_turn_count == 2 and user.turn_ratio == 1.5
    assert user.confirmation_requests == 1
    # "I think" once in 11 words; "Done." has no hedge.
    assert user.agent_hedging_curve == [pytest.approx(100 / 11), 0.0]
    history = [(e.start_line, e.end_line, e.lines_added, e.lines_removed, e.turn_index)
               for e in user.region_edit_history or []]  # fmt: skip
    assert history == [
        (5, 8, 4, 4, 0),
        (30, 30, 1, 1, 0),
        (6, 6, 1, 1, 1),
        (29, 31, 3, 3, 1),
        (30, 30, 1, 1, 1),
    ]
    assert user.region_re_edit_count == 2
    assert user.region_edit_convergence == ["converging", "oscillating"]
    assert session.dynamics.correction_ratio == pytest.approx(1 / 3)
    assert session.dynamics.user_msg_length_slope == pytest.approx(-1.5)
    assert user.time_to_first_edit_s is not None and user.time_to_first_edit_s >= 0


def test_reverted_session_is_explicitly_rejected(captured: CapturedSpans, repo: Path) -> None:
    with agentsignals.attempt(context="product", workspace=str(repo)) as attempt:
        attempt.record_user_message("add a header to app.py")
        with agentsignals.turn():
            tool_edit(repo, 1, 1, ["# header", "line 1"])
        attempt.record_user_message("hmm")
        git(repo, "checkout", "--", "app.py")  # the user threw the change away

    session = _session(captured)
    assert (session.user.output_applied, session.user.changes_reverted) == (False, True)
    assert session.user.session_outcome == "explicitly_rejected"


def test_kept_but_uncommitted_changes_are_neither_applied_nor_reverted(
    captured: CapturedSpans, repo: Path
) -> None:
    with agentsignals.attempt(context="product", workspace=str(repo)) as attempt:
        attempt.record_user_message("add a header to app.py")
        with agentsignals.turn():
            tool_edit(repo, 1, 1, ["# header", "line 1"])

    session = _session(captured)
    assert (session.user.output_applied, session.user.changes_reverted) == (False, False)
    assert session.user.session_outcome == "abandoned_mid_session"
    # The region: line 1 became two lines (one added beside the kept one).
    edits = session.user.region_edit_history or []
    assert [(e.start_line, e.lines_added, e.lines_removed) for e in edits] == [(1, 1, 0)]


def test_user_text_is_recorded_only_with_content_capture(
    captured_content: CapturedSpans,
) -> None:
    with agentsignals.attempt(context="product") as attempt:
        attempt.record_user_message("wait, stop")
    (span,) = captured_content.spans_of_type("user_turn")
    attrs = attributes(span)
    assert '"wait, stop"' in str(attrs[sc.GEN_AI_INPUT_MESSAGES])
    assert attrs[sc.AGENT_SIGNALS_USER_TURN_MARKERS] == ["correction"]


def test_eval_attempts_have_no_session_record(captured: CapturedSpans) -> None:
    with agentsignals.attempt(context="eval") as attempt:
        attempt.record_user_message("the task")
        with agentsignals.turn():
            pass
    with agentsignals.attempt(), agentsignals.turn():  # no user turns: an eval-style run
        pass
    result = features.from_spans(captured.spans)
    assert len(result.attempts) == 2 and result.sessions == []


def test_bad_arguments_are_dropped_not_raised(captured: CapturedSpans) -> None:
    with agentsignals.attempt(context="bogus") as attempt:
        attempt.record_user_message("x", kind="shout")
        attempt.record_compaction(tokens_before=-5, trigger="auto")
    (span,) = captured.spans_of_type("attempt")
    assert sc.AGENT_SIGNALS_ATTEMPT_CONTEXT not in attributes(span)
    assert captured.spans_of_type("user_turn") == []
    (event,) = [e for e in span.events if e.name == sc.EVENT_AGENT_SIGNALS_COMPACTION]
    assert dict(event.attributes or {}) == {
        sc.AGENT_SIGNALS_TURN_INDEX: 0,
        sc.AGENT_SIGNALS_COMPACTION_TRIGGER: "auto",
    }


def test_user_turns_show_in_openinference_viewers_as_the_chain_input(
    captured_content: CapturedSpans,
) -> None:
    from agentsignals._export.openinference import openinference_attributes

    with agentsignals.attempt(context="product") as attempt:
        attempt.record_user_message("fix the parser")
    (span,) = captured_content.spans_of_type("user_turn")
    keys = openinference_attributes("user_turn", attributes(span))
    assert keys["openinference.span.kind"] == "CHAIN"
    assert "fix the parser" in str(keys["input.value"])
    assert keys["input.mime_type"] == "application/json"


def test_a_user_message_outside_an_attempt_records_nothing(captured: CapturedSpans) -> None:
    agentsignals.current_attempt().record_user_message("hello")
    handle = agentsignals.attempt(context="product")
    handle.record_user_message("not entered yet")
    assert captured.spans == []


@pytest.mark.usefixtures("fresh_otel")
def test_in_process_store_writes_the_session_record_as_the_session_ends(tmp_path: Path) -> None:
    agentsignals.configure(output_dir=tmp_path, features=True, exporters=["none"], batch=False)
    with agentsignals.attempt(context="product") as attempt:
        attempt.record_user_message("please fix it")
        with agentsignals.turn():
            pass
        attempt.record_user_message("perfect, thanks")
    written = (tmp_path / "features" / "sessions.jsonl").read_text().splitlines()
    assert len(written) == 1
    with agentsignals.attempt(context="eval"), agentsignals.turn():
        pass
    agentsignals.shutdown()
    stored = features.read_store(tmp_path / "features")
    assert len(stored.attempts) == 2
    (session,) = stored.sessions
    assert session.user.user_turn_count == 2
    assert session.user.session_outcome == "accepted"
