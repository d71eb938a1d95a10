"""Trajectories stored gzip-compressed (`x.traj.gz`, `x.jsonl.gz`, the whole corpus in
../shared/data/corpus) import as they are: the same spans as the uncompressed file, the real
(compressed) file named as the source, and a corrupt stream named as a problem while the rest of
the batch imports."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pytest

from agentsignals import semconv as sc
from agentsignals._import.run import detect_format, import_file, run_import
from agentsignals._spans.model import Span

# One real file per format (paths under ../shared/data), each imported plain and gzipped.
PLAIN = [
    "swe-agent/20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432/pytest-dev__pytest-7432.traj",
    "mini-swe-agent/20251118_gemini-3-pro/trajs/django__django-16527/django__django-16527.traj.json",
    "openhands/basic.json",
    "openhands/resolver-output.jsonl",
    "claude-code/tool_heavy.jsonl",
    "claude-code/subagent.jsonl",
    "pi/before-compaction.jsonl",
    "codex/redacted-session-01.jsonl",
    "inspect-ai/log_read_sample.json",
]

_ID_KEYS = {sc.AGENT_SIGNALS_IMPORT_SOURCE}


def _shape(trajectories: list[list[Span]]) -> list[list[tuple[str, dict[str, object]]]]:
    """Spans without the ids and source path that derive from the file's name."""
    out = []
    for spans in trajectories:
        rows = []
        for s in spans:
            attrs = {
                k: v
                for k, v in s.attributes.items()
                if k not in _ID_KEYS and not k.endswith((".id", ".parent_id"))
            }
            rows.append((s.name.replace(s.trace_id, ""), attrs))
        out.append(rows)
    return out


@pytest.mark.parametrize("relative", PLAIN)
def test_gzipped_file_imports_like_the_plain_one(
    shared_data: Path, tmp_path: Path, relative: str
) -> None:
    source = shared_data / relative
    plain = tmp_path / "plain" / source.name
    packed = tmp_path / "packed" / (source.name + ".gz")
    plain.parent.mkdir()
    packed.parent.mkdir()
    shutil.copy(source, plain)
    packed.write_bytes(gzip.compress(source.read_bytes(), mtime=0))
    assert detect_format(packed) == detect_format(plain) is not None
    a, b = import_file(plain), import_file(packed)
    assert not a.problems and not b.problems, (a.problems, b.problems)
    assert a.trajectories and _shape(a.trajectories) == _shape(b.trajectories)
    trial = b.trajectories[0][0]
    # The source is the real, compressed file.
    assert str(trial.attributes[sc.AGENT_SIGNALS_IMPORT_SOURCE]).startswith(str(packed.resolve()))


def test_claude_code_subagent_files_found_gzipped(tmp_path: Path) -> None:
    """A session whose subagent lives in `<session>/subagents/agent-<id>.jsonl.gz`."""
    session_id = "s-1"
    main = tmp_path / f"{session_id}.jsonl"
    lines = [
        '{"type":"user","sessionId":"s-1","uuid":"u1","parentUuid":null,"isSidechain":false,'
        '"timestamp":"2025-01-01T00:00:00Z","message":{"role":"user","content":"go"}}',
        '{"type":"assistant","sessionId":"s-1","uuid":"a1","parentUuid":"u1","isSidechain":false,'
        '"timestamp":"2025-01-01T00:00:01Z","message":{"role":"assistant","model":"m",'
        '"content":[{"type":"tool_use","id":"t1","name":"Task","input":{"prompt":"look"}}]}}',
        '{"type":"user","sessionId":"s-1","uuid":"u2","parentUuid":"a1","isSidechain":false,'
        '"timestamp":"2025-01-01T00:00:05Z","toolUseResult":{"agentId":"abc"},'
        '"message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1",'
        '"content":"done"}]}}',
    ]
    main.write_text("\n".join(lines) + "\n")
    sub = tmp_path / session_id / "subagents"
    sub.mkdir(parents=True)
    sub_lines = [
        '{"type":"user","sessionId":"s-1","uuid":"x1","parentUuid":null,"isSidechain":true,'
        '"agentId":"abc","timestamp":"2025-01-01T00:00:02Z",'
        '"message":{"role":"user","content":"look"}}',
        '{"type":"assistant","sessionId":"s-1","uuid":"x2","parentUuid":"x1","isSidechain":true,'
        '"agentId":"abc","timestamp":"2025-01-01T00:00:03Z","message":{"role":"assistant",'
        '"model":"m","content":[{"type":"text","text":"found it"}]}}',
    ]
    (sub / "agent-abc.jsonl.gz").write_bytes(gzip.compress(("\n".join(sub_lines) + "\n").encode()))
    result = import_file(main)
    assert not result.problems, result.problems
    (spans,) = result.trajectories
    attempts = [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt"]
    # The session and its subagent, read from the gzipped file.
    assert len(attempts) == 2
    child = next(s for s in attempts if s.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID))
    turns = [
        s
        for s in spans
        if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn"
        and s.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_ID)
        == child.attributes[sc.AGENT_SIGNALS_ATTEMPT_ID]
    ]
    assert len(turns) == 1


def test_corrupt_gzip_is_named_and_the_rest_imports(shared_data: Path, tmp_path: Path) -> None:
    good = shared_data / "pi/before-compaction.jsonl"
    packed = gzip.compress(good.read_bytes(), mtime=0)
    (tmp_path / "good.jsonl.gz").write_bytes(packed)
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    flipped = bytearray(packed)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.jsonl.gz").write_bytes(bytes(flipped))
    results = {Path(r.path).name: r for r in run_import([tmp_path])}
    assert results["good.jsonl.gz"].trajectories and not results["good.jsonl.gz"].problems
    for name in ("cut.jsonl.gz", "flipped.jsonl.gz"):
        r = results[name]
        assert not r.trajectories or r.problems, name
        for problem in r.problems:
            assert name in str(problem) and "\n" not in str(problem)


def test_corpus_imports_as_stored(shared_data: Path) -> None:
    """A sample of the gzip corpus (both agents) imports with the turn count of labels.csv:
    mini-swe-agent and SWE-agent make one model call per turn, and `api_calls` counts them."""
    corpus = shared_data / "corpus"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is absent")
    with (corpus / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    by_set: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_set.setdefault(row["set"], []).append(row)
    sample = [r for group in by_set.values() for r in group[:: max(1, len(group) // 6)]]
    assert len(sample) >= 10
    for row in sample:
        path = corpus / row["trajectory"]
        assert path.name.endswith(".gz")
        result = import_file(path)
        assert not result.problems, result.problems
        (spans,) = result.trajectories
        trial = spans[0]
        assert trial.attributes[sc.AGENT_SIGNALS_TASK_ID] == row["instance_id"]
        turns = [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn"]
        assert len(turns) == int(row["api_calls"]), row["trajectory"]
