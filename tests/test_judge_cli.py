"""`agentsignals judge` on bad input: one clear line each, nothing written, no traceback."""

from __future__ import annotations

from pathlib import Path

from judge_support import run_cli


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_missing_trace_folder(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = run_cli("judge", "run", str(tmp_path / "nope"), "--model", "m", "-o", str(out))
    assert done.returncode == 2
    assert (
        _one_line(done.stderr) == f"agentsignals judge: {tmp_path / 'nope'}: no such file or folder"
    )
    assert not out.exists()


def test_no_model(tmp_path: Path) -> None:
    done = run_cli("judge", "run", str(tmp_path), env={"AGENTSIGNALS_JUDGE_MODEL": ""})
    assert done.returncode == 2
    assert "--model" in _one_line(done.stderr)


def test_a_bad_rubric_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nprocedure: p\nfields: {m: {type: maybe}}\n")
    done = run_cli("judge", "run", str(tmp_path), "--model", "m", "--rubric", str(bad))
    assert done.returncode == 2
    assert "has type 'maybe'" in _one_line(done.stderr)


def test_nothing_to_judge(tmp_path: Path) -> None:
    done = run_cli("judge", "run", str(tmp_path), "--model", "m", "--no-rubrics")
    assert done.returncode == 2
    assert "nothing to judge" in _one_line(done.stderr)


def test_eval_needs_something_to_measure() -> None:
    done = run_cli("judge", "eval", "--model", "m")
    assert done.returncode == 2
    assert "--who-and-when" in _one_line(done.stderr)


def test_rubrics_lists_the_built_ins() -> None:
    done = run_cli("judge", "rubrics")
    assert done.returncode == 0
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names[:6] == [
        "memory_drift", "overconfidence", "strange_behaviors", "self_correction",
        "validation", "planning",
    ]  # fmt: skip
    shown = run_cli("judge", "rubrics", "--show", "memory_drift")
    assert shown.stdout.startswith("# Memory drift") and "State tracking means" in shown.stdout
