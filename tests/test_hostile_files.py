"""Fault injection: hostile files against every importer and against `agentsignals features`.

Each trajectory format gets a small base file written here (so the suite runs on a clean
checkout), plus the real files of ../shared/data where present. Each base is then mutated the
ways hostile or broken input arrives: nested 100k deep, numbers no clock or int64 holds,
lone surrogates, wrong types, truncation, flipped and garbage bytes, a zip bomb. What must hold
for every one of them:

- no crash: `import_file` returns (the per-file boundary), the CLI exits without a traceback;
- nothing unexplained: a file yields trajectories, or a problem that names it, or is reported
  as in no known format;
- nothing lost: the intact files (and, in JSON lines, the intact lines) still import;
- what is written is valid OTLP: every span encodes to OTLP/JSON and protobuf and decodes back;
- memory stays bounded: a zip bomb is refused, not inflated.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features
from agentsignals._import.run import FileResult, import_file
from agentsignals._spans.decode import decode_otlp_json, decode_otlp_protobuf
from agentsignals._spans.encode import encode_otlp_json, encode_otlp_protobuf

CLI = [sys.executable, "-m", "agentsignals", "import", "--no-progress"]
FIXTURES = Path(__file__).parent / "fixtures"
DEPTH = 100_000
MAX_NS = (1 << 63) - 1

# ---------------------------------------------------------------------------- base files


def _stamp(second: int) -> str:
    return f"2026-03-01T10:00:{second:02d}.000Z"


def _codex() -> str:
    def line(second: int, kind: str, payload: dict[str, Any]) -> str:
        return json.dumps({"timestamp": _stamp(second), "type": kind, "payload": payload})

    call = {"command": ["bash", "-lc", "cat src/app.py"], "workdir": "/repo"}
    usage = {"input_tokens": 900, "cached_input_tokens": 100, "output_tokens": 40}
    usage |= {"reasoning_output_tokens": 0, "total_tokens": 940}
    lines = [
        line(0, "session_meta", {"id": "s-1", "timestamp": _stamp(0), "cwd": "/repo",
                                 "originator": "codex_cli_rs", "cli_version": "0.36.0",
                                 "model_provider": "openai"}),
        line(1, "turn_context", {"cwd": "/repo", "model": "gpt-5-codex"}),
        line(2, "response_item", {"type": "message", "role": "user",
                                  "content": [{"type": "input_text", "text": "fix src/app.py"}]}),
        line(3, "response_item", {"type": "function_call", "name": "shell", "call_id": "c1",
                                  "arguments": json.dumps(call)}),
        line(4, "event_msg", {"type": "token_count", "info": {"total_token_usage": usage,
                                                              "last_token_usage": usage}}),
        line(5, "response_item", {"type": "function_call_output", "call_id": "c1",
                                  "output": json.dumps({"output": "x = 1\n",
                                                        "metadata": {"exit_code": 0}})}),
        line(6, "response_item", {"type": "message", "role": "assistant",
                                  "content": [{"type": "output_text", "text": "done"}]}),
        line(7, "event_msg", {"type": "task_complete", "last_agent_message": "done"}),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _pi() -> str:
    def entry(kind: str, eid: str, parent: str | None, second: int, **fields: Any) -> str:
        return json.dumps(
            {"type": kind, "id": eid, "parentId": parent, "timestamp": _stamp(second), **fields}
        )

    usage = {"input": 10, "output": 5, "cacheRead": 100, "cacheWrite": 20, "totalTokens": 135}
    call = {"type": "toolCall", "id": "t1", "name": "read", "arguments": {"path": "src/app.py"}}
    lines = [
        json.dumps({"type": "session", "version": 3, "id": "p-1", "timestamp": _stamp(0),
                    "cwd": "/repo"}),
        entry("message", "e1", None, 1, message={"role": "user", "timestamp": 1772359201000,
              "content": [{"type": "text", "text": "fix src/app.py"}]}),
        entry("message", "e2", "e1", 2, message={"role": "assistant", "timestamp": 1772359202000,
              "content": [call], "provider": "anthropic", "model": "claude-sonnet-4-5",
              "usage": usage, "stopReason": "toolUse"}),
        entry("message", "e3", "e2", 3, message={"role": "toolResult", "toolCallId": "t1",
              "toolName": "read", "isError": False, "timestamp": 1772359203000,
              "content": [{"type": "text", "text": "x = 1"}]}),
        entry("message", "e4", "e3", 4, message={"role": "assistant", "timestamp": 1772359204000,
              "content": [{"type": "text", "text": "done"}], "provider": "anthropic",
              "model": "claude-sonnet-4-5", "usage": usage, "stopReason": "stop"}),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _claude_code() -> str:
    def line(kind: str, uuid: str, parent: str | None, second: int, message: Any) -> str:
        return json.dumps(
            {"type": kind, "uuid": uuid, "parentUuid": parent, "sessionId": "cc-1",
             "timestamp": _stamp(second), "isSidechain": False, "cwd": "/repo",
             "message": message}
        )  # fmt: skip

    read = {"type": "tool_use", "id": "toolu_1", "name": "Read"}
    read["input"] = {"file_path": "/repo/src/app.py"}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x = 1"}
    usage = {"input_tokens": 10, "output_tokens": 5}
    lines = [
        line("user", "u1", None, 1, {"role": "user", "content": "fix src/app.py"}),
        line("assistant", "a1", "u1", 2, {"id": "msg_1", "type": "message", "role": "assistant",
             "model": "claude-sonnet-4-5", "content": [read], "usage": usage}),
        line("user", "u2", "a1", 3, {"role": "user", "content": [result]}),
        line("assistant", "a2", "u2", 4, {"id": "msg_2", "type": "message", "role": "assistant",
             "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "done"}],
             "usage": usage}),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _openhands_events() -> list[dict[str, Any]]:
    stamp = iter(f"2026-03-01T10:00:{s:02d}.000000" for s in range(60))
    return [
        {"id": 0, "timestamp": next(stamp), "source": "user", "message": "Fix it",
         "action": "message", "args": {"content": "Fix src/app.py"}},
        {"id": 1, "timestamp": next(stamp), "source": "agent", "message": "Running command",
         "action": "run", "args": {"command": "cat src/app.py", "thought": ""}},
        {"id": 2, "timestamp": next(stamp), "source": "agent", "message": "", "cause": 1,
         "observation": "run", "content": "x = 1",
         "extras": {"command": "cat src/app.py", "metadata": {"exit_code": 0}}},
        {"id": 3, "timestamp": next(stamp), "source": "agent", "message": "done",
         "action": "finish", "args": {"final_thought": "done", "outputs": {}, "thought": ""}},
    ]  # fmt: skip


def _openhands_output() -> str:
    line = {
        "instance_id": "pkg__pkg-1",
        "instruction": "Fix src/app.py",
        "metadata": {"agent_class": "CodeActAgent", "llm_config": {"model": "gpt-4o"}},
        "history": _openhands_events(),
        "test_result": {"git_patch": ""},
        "metrics": {"accumulated_cost": 0.1},
        "error": None,
    }
    other = {**line, "instance_id": "pkg__pkg-2"}
    return json.dumps(line) + "\n" + json.dumps(other) + "\n"


def _swe_agent() -> str:
    steps = [
        {"action": "cat src/app.py", "observation": "x = 1", "response": "Look first.",
         "thought": "Look first.", "execution_time": 0.1, "state": "{}"},
        {"action": "submit", "observation": "diff --git a/src/app.py b/src/app.py",
         "response": "Submit.", "thought": "Submit.", "execution_time": 0.1, "state": "{}"},
    ]  # fmt: skip
    history = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Fix src/app.py"},
    ]
    info = {"exit_status": "submitted", "submission": "", "model_stats": {"api_calls": 2}}
    return json.dumps({"environment": "swe_main", "trajectory": steps, "history": history,
                       "info": info})  # fmt: skip


def _inspect_log() -> dict[str, Any]:
    call = {"id": "c1", "function": "bash", "arguments": {"cmd": "cat src/app.py"}}
    assistant = {"id": "m1", "role": "assistant", "content": "Look.", "tool_calls": [call],
                 "model": "gpt-4o", "source": "generate"}  # fmt: skip
    sample = {
        "id": 1, "epoch": 1, "input": "Fix src/app.py", "target": "fixed",
        "messages": [
            {"role": "user", "content": "Fix src/app.py", "source": "input"},
            assistant,
            {"role": "tool", "tool_call_id": "c1", "function": "bash", "content": "x = 1"},
        ],
        "scores": {"includes": {"value": "C"}},
        "events": [
            {"event": "model", "timestamp": "2026-03-01T10:00:01+00:00",
             "completed": "2026-03-01T10:00:02+00:00", "model": "openai/gpt-4o",
             "output": {"model": "gpt-4o", "choices": [{"message": assistant}],
                        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}},
            {"event": "tool", "id": "c1", "function": "bash",
             "timestamp": "2026-03-01T10:00:02+00:00", "completed": "2026-03-01T10:00:03+00:00"},
        ],
        "total_time": 3.0,
    }  # fmt: skip
    return {
        "version": 2,
        "status": "success",
        "eval": {"run_id": "RUN1", "task": "bugfix", "task_id": "T1", "model": "openai/gpt-4o",
                 "dataset": {"name": "bugs"}, "created": "2026-03-01T10:00:00+00:00"},
        "plan": {"steps": [{"solver": "react"}]},
        "samples": [sample, {**sample, "id": 2}],
    }  # fmt: skip


def _write_eval(path: Path, log: dict[str, Any], extra: dict[str, bytes] | None = None) -> Path:
    header = {k: v for k, v in log.items() if k != "samples"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.json", json.dumps(header))
        for sample in log["samples"]:
            archive.writestr(f"samples/{sample['id']}_epoch_1.json", json.dumps(sample))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def write_bases(folder: Path) -> dict[str, Path]:
    """One small file per format (and per file shape), named after it."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "codex.jsonl": _codex(),
        "pi.jsonl": _pi(),
        "claude-code.jsonl": _claude_code(),
        "openhands-events.json": json.dumps(_openhands_events(), indent=1),
        "openhands-output.jsonl": _openhands_output(),
        "swe-agent.traj": _swe_agent(),
        "inspect-ai.json": json.dumps(_inspect_log(), indent=1),
    }
    out = {}
    for name, text in texts.items():
        out[name] = folder / name
        out[name].write_text(text, encoding="utf-8")
    out["inspect-ai.eval"] = _write_eval(folder / "inspect-ai.eval", _inspect_log())
    mini = FIXTURES / "mini_swe_agent" / "toolcall.traj.json"
    out["mini-swe-agent.traj.json"] = folder / "mini-swe-agent.traj.json"
    shutil.copy(mini, out["mini-swe-agent.traj.json"])
    return out


EXPECTED_FORMATS = {
    "codex.jsonl": "codex",
    "pi.jsonl": "pi",
    "claude-code.jsonl": "claude-code",
    "openhands-events.json": "openhands",
    "openhands-output.jsonl": "openhands",
    "swe-agent.traj": "swe-agent",
    "inspect-ai.json": "inspect-ai",
    "inspect-ai.eval": "inspect-ai",
    "mini-swe-agent.traj.json": "mini-swe-agent",
}
REAL_FILES = {
    "real-codex.jsonl": "codex/redacted-session-01.jsonl",
    "real-pi.jsonl": "pi/redacted-session-01.jsonl",
    "real-claude-code.jsonl": "claude-code/short.jsonl",
    "real-openhands.json": "openhands/basic.json",
    "real-openhands-output.jsonl": "openhands/resolver-output.jsonl",
    "real-swe-agent.traj": "swe-agent/20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432/"
    "pytest-dev__pytest-7432.traj",
    "real-inspect-ai.json": "inspect-ai/log_read_sample.json",
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bases(tmp_path_factory.mktemp("bases"))


# ------------------------------------------------------------------------------ mutations

_STRING_VALUE = re.compile(rb'(?<=:)\s*"(?:[^"\\\n]|\\.)*"')
_NUMBER_VALUE = re.compile(rb"(?<=[:\[,])\s*-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=\s*[,\]}])")
_ISO_STAMP = re.compile(rb'"\d{4}-\d\d-\d\dT[^"]*"')


def _replace_middle_string(data: bytes, replacement: bytes) -> bytes:
    """The first string value past a third of the file, replaced (structure kept)."""
    match = _STRING_VALUE.search(data, len(data) // 3) or _STRING_VALUE.search(data)
    assert match is not None
    return data[: match.start()] + replacement + data[match.end() :]


def _deep_array(data: bytes) -> bytes:
    return _replace_middle_string(data, b"[" * DEPTH + b"]" * DEPTH)


def _deep_object(data: bytes) -> bytes:
    return _replace_middle_string(data, b'{"a":' * DEPTH + b"1" + b"}" * DEPTH)


def _numbers(value: bytes) -> Callable[[bytes], bytes]:
    return lambda data: _NUMBER_VALUE.sub(value, data)


def _stamps(value: bytes) -> Callable[[bytes], bytes]:
    return lambda data: _ISO_STAMP.sub(value, data)


_CONTENT_VALUE = re.compile(rb'(?<=:)\s*"(?:[^"\\\n]|\\.)*[ /](?:[^"\\\n]|\\.)*"')


def _surrogates(data: bytes) -> bytes:
    """Lone surrogates in paths and in text (not in the short tag values formats key on)."""
    data = data.replace(b'.py"', b'\\ud800.py"').replace(b".py\\", b"\\udfff.py\\")
    return _CONTENT_VALUE.sub(lambda m: m.group(0)[:-1] + b'\\udc80"', data, count=50)


def _strings_to_numbers(data: bytes) -> bytes:
    return _STRING_VALUE.sub(b"12345", data)


def _numbers_to_strings(data: bytes) -> bytes:
    return _NUMBER_VALUE.sub(b'"x"', data)


def _nulls(data: bytes) -> bytes:
    return _STRING_VALUE.sub(b"null", data)


def _flip(seed: int, fraction: float) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        rng = random.Random(seed)
        out = bytearray(data)
        for _ in range(max(1, int(len(out) * fraction))):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)

    return mutate


def _truncate(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: max(1, int(len(data) * fraction))]


MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "deep-array": _deep_array,
    "deep-object": _deep_object,
    "numbers-1e308": _numbers(b"1e308"),
    "numbers-minus-1e308": _numbers(b"-1e308"),
    "numbers-overflow-inf": _numbers(b"1e400"),
    "numbers-40-digits": _numbers(b"9" * 40),
    "numbers-nan": _numbers(b"NaN"),
    "timestamps-1e308": _stamps(b"1e308"),
    "timestamps-year-99999": _stamps(b'"99999-12-31T23:59:59Z"'),
    "timestamps-30-digits": _stamps(b"9" * 30),
    "timestamps-negative": _stamps(b"-1700000000000"),
    "surrogates": _surrogates,
    "strings-to-numbers": _strings_to_numbers,
    "numbers-to-strings": _numbers_to_strings,
    "strings-to-null": _nulls,
    "truncated-third": _truncate(1 / 3),
    "truncated-half": _truncate(1 / 2),
    "truncated-last-byte": lambda data: data[:-1] if len(data) > 1 else data,
    "flipped-bytes": _flip(7, 0.002),
    "garbage-bytes": _flip(11, 0.05),
    "nul-bytes": lambda data: data.replace(b",", b",\x00", 20),
    "binary-prefix": lambda data: bytes(range(256)) + data,
    "utf16": lambda data: data.decode("utf-8").encode("utf-16"),
    "empty": lambda data: b"",
    "whitespace": lambda data: b" \n\t\n" * 100,
}
TEXT_ONLY = {"inspect-ai.eval"}  # a zip: byte-level mutations only


def _mutations_for(name: str) -> list[str]:
    if name in TEXT_ONLY:
        return ["truncated-half", "truncated-last-byte", "flipped-bytes", "garbage-bytes", "empty"]
    return list(MUTATIONS)


# ------------------------------------------------------------------------------- checking


def _check_spans(result: FileResult) -> list[str]:
    """What is wrong with a result's spans as OTLP (empty: nothing)."""
    wrong = []
    for spans in result.trajectories:
        for span in spans:
            for ns in (span.start_ns, span.end_ns):
                if not 0 <= ns <= MAX_NS:
                    wrong.append(f"{span.name}: time {ns} outside 0..2**63-1")
        encoded = encode_otlp_json(spans)
        encoded.decode("utf-8")  # valid UTF-8, strict
        if len(decode_otlp_json(encoded)) != len(spans):
            wrong.append("OTLP/JSON round trip lost spans")
        if len(decode_otlp_protobuf(encode_otlp_protobuf(spans))) != len(spans):
            wrong.append("OTLP/protobuf round trip lost spans")
    return wrong


def _explained(result: FileResult) -> bool:
    return bool(result.trajectories or result.problems) or result.format is None


def _trial_count(result: FileResult) -> int:
    return sum(1 for spans in result.trajectories for s in spans if s.name.startswith("trial "))


# ------------------------------------------------------------------------------------ tests


def test_every_base_file_imports(bases: dict[str, Path]) -> None:
    """The controls: each base is detected as its format and yields trajectories with tools."""
    for name, path in bases.items():
        result = import_file(path)
        assert result.format == EXPECTED_FORMATS[name], name
        assert result.trajectories and not result.problems, (name, result.problems)
        tools = [s for t in result.trajectories for s in t if s.name.startswith("execute_tool")]
        assert tools, name


def test_no_hostile_file_crashes_or_goes_unexplained(
    bases: dict[str, Path], tmp_path: Path
) -> None:
    """Every format x every mutation: counted, not stopped at the first failure."""
    crashes: list[str] = []
    silent: list[str] = []
    bad_output: list[str] = []
    runs = 0
    for name, base in bases.items():
        data = base.read_bytes()
        for mutation in _mutations_for(name):
            path = tmp_path / f"{mutation}--{name}"
            path.write_bytes(MUTATIONS[mutation](data))
            runs += 1
            try:
                result = import_file(path)
            except BaseException as exc:  # counting crashes is the point
                crashes.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])
                continue
            if not _explained(result):
                silent.append(path.name)
            try:
                bad_output.extend(f"{path.name}: {w}" for w in _check_spans(result))
            except Exception as exc:
                bad_output.append(f"{path.name}: cannot encode: {type(exc).__name__}: {exc}")
    assert runs >= 8 * 20
    assert crashes == [], crashes
    assert silent == [], silent
    assert bad_output == [], bad_output


JSON_LINES = ["codex.jsonl", "pi.jsonl", "claude-code.jsonl", "openhands-output.jsonl"]


@pytest.mark.parametrize("name", JSON_LINES)
def test_a_line_nested_100k_deep_costs_only_that_line(
    bases: dict[str, Path], tmp_path: Path, name: str
) -> None:
    base = import_file(bases[name])
    lines = bases[name].read_text(encoding="utf-8").splitlines()
    deep = json.dumps({"type": "event_msg", "timestamp": _stamp(9)})[:-1] + ', "payload": '
    lines.insert(len(lines) - 1, deep + "[" * DEPTH + "]" * DEPTH + "}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_file(path)
    assert _trial_count(result) == _trial_count(base) >= 1
    (problem,) = result.problems
    assert problem.line == len(lines) - 1 and "nested too deeply" in problem.message


@pytest.mark.parametrize("name", sorted(set(EXPECTED_FORMATS) - TEXT_ONLY))
def test_timestamps_no_clock_holds_are_not_recorded_times(
    bases: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """1e308, year 99999 or 30 digits in every timestamp: the file imports, and no span
    carries a time made from them (they are treated as not recorded)."""
    for mutation in ("timestamps-1e308", "timestamps-year-99999", "timestamps-30-digits"):
        path = tmp_path / f"{mutation}-{name}"
        path.write_bytes(MUTATIONS[mutation](bases[name].read_bytes()))
        result = import_file(path)
        assert result.trajectories, (mutation, result.problems)
        assert _check_spans(result) == []


@pytest.mark.parametrize("name", sorted(set(EXPECTED_FORMATS) - TEXT_ONLY))
def test_lone_surrogates_become_replacement_characters(
    bases: dict[str, Path], tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(_surrogates(bases[name].read_bytes()))
    result = import_file(path)
    assert result.trajectories, result.problems
    text = b"".join(encode_otlp_json(t) for t in result.trajectories).decode("utf-8")
    assert "\ud800" not in text and "\udc80" not in text


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_inspect_eval_zip_bomb_is_refused_with_memory_bounded(
    bases: dict[str, Path], tmp_path: Path
) -> None:
    """A sample member that inflates 1000x to 256 MiB: refused before it is read; the other
    samples import; the process's peak memory stays far below the member's size."""
    path = tmp_path / "bomb.eval"
    log = _inspect_log()
    _write_eval(path, log)
    sample = json.dumps({**log["samples"][0], "id": 3})
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo("samples/3_epoch_1.json")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(sample[:-1].encode() + b', "pad": "')
            for _ in range(256):
                member.write(b" " * (1 << 20))
            member.write(b'"}')
    packed = zipfile.ZipFile(path).getinfo("samples/3_epoch_1.json")
    assert packed.file_size > 900 * packed.compress_size  # a real 1000x bomb
    out = tmp_path / "out.jsonl"
    # The peak resident size of this program image (VmHWM): ru_maxrss would also count the
    # parent's memory at fork, which survives exec on Linux.
    probe = (
        "import re\n"
        "from agentsignals.cli import main\n"
        f"code = main(['import', '--no-progress', {str(path)!r}, '-o', {str(out)!r}])\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) // 1024, code)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "Traceback" not in run.stderr, run.stderr
    peak_mib, code = map(int, run.stdout.split())
    assert code == 0
    assert peak_mib < 200, f"peak RSS {peak_mib} MiB: the 256 MiB member was inflated"
    assert "samples/3_epoch_1.json" in run.stderr and "zip bomb" in run.stderr
    trials = [line for line in out.read_text().splitlines() if '"name":"trial ' in line]
    assert len(trials) == 2  # the other two samples


def _import_batch(folder: Path, controls: list[str], tmp_path: Path) -> str:
    """Run the CLI over the folder; check nothing crashed and every control imported."""
    out = tmp_path / "out.jsonl"
    run = subprocess.run([*CLI, str(folder), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    sources: set[str] = set()
    source = re.compile(r'"agent_signals\.import\.source","value":\{"stringValue":"([^"]*)"')
    for line in out.read_text(encoding="utf-8").splitlines():
        decode_otlp_json(line)  # every line is valid OTLP/JSON
        sources.update(source.findall(line))
    # Inspect logs name the sample too: `<file>#samples/1_epoch_1.json`.
    found = {source.split("#", 1)[0] for source in sources}
    lost = [c for c in controls if c not in found]
    assert lost == [], lost
    skipped = [line for line in run.stderr.splitlines() if " skipped " in line]
    assert not any("control--" in line for line in skipped)
    feats = subprocess.run(
        [sys.executable, "-m", "agentsignals", "features", "--no-progress", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert feats.returncode == 0 and "Traceback" not in feats.stderr, feats.stderr[-2000:]
    assert len(feats.stdout.splitlines()) >= len(controls)
    return "\n".join(sorted(sources)) + "\n" + run.stderr


def _batch(folder: Path, name: str, data: bytes, mutations: list[str]) -> str:
    control = folder / f"control--{name}"
    control.write_bytes(data)
    for mutation in mutations:
        (folder / f"{mutation}--{name}").write_bytes(MUTATIONS[mutation](data))
    return str(control.resolve())


def test_cli_imports_a_folder_of_hostile_files_without_a_traceback(
    bases: dict[str, Path], tmp_path: Path
) -> None:
    """The whole batch in one CLI run: every intact file imports, every hostile one is named
    or counted, exit 0, no traceback; then `features` reads the output."""
    folder = tmp_path / "batch"
    folder.mkdir()
    controls = [
        _batch(folder, name, base.read_bytes(), _mutations_for(name))
        for name, base in bases.items()
    ]
    # A file name that is not UTF-8 (a lone surrogate once decoded): still imported.
    odd = folder / "control--\udcff\udcfe.jsonl"  # the bytes ff fe, as Python names them
    odd.write_bytes(bases["codex.jsonl"].read_bytes())
    report = _import_batch(folder, controls, tmp_path)
    assert "control--\ufffd\ufffd.jsonl" in report  # its source, as valid UTF-8
    assert "nested too deeply" in report


def test_cli_imports_hostile_copies_of_real_files(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    mutations = ["deep-array", "numbers-1e308", "timestamps-1e308", "surrogates", "garbage-bytes"]
    controls = [
        _batch(folder, name, (shared_data / rel).read_bytes(), mutations)
        for name, rel in REAL_FILES.items()
    ]
    _import_batch(folder, controls, tmp_path)


# ------------------------------------------------------------- OTLP lines for `features`


def _deep_kvlist(depth: int) -> str:
    """An OTLP AnyValue nested `depth` kvlists deep, as JSON text (too deep for json.dumps)."""
    return (
        '{"kvlistValue":{"values":[{"key":"k","value":' * depth
        + '{"stringValue":"x"}'
        + ("}]}}" * depth)
    )


def test_features_skips_hostile_otlp_lines_and_keeps_the_rest(
    bases: dict[str, Path], tmp_path: Path
) -> None:
    """One line nested 2000 deep (and its friends) among good ones: the good lines still
    give their records; each bad line is named."""
    good = [encode_otlp_json(t) for t in import_file(bases["openhands-output.jsonl"]).trajectories]
    assert len(good) == 2
    marker = b'"attributes":['
    at = good[0].index(marker) + len(marker)  # the resource's attributes come first
    deep = '{"key":"deep","value":' + _deep_kvlist(2000) + "},"
    deep_kvlist = good[0][:at] + deep.encode() + good[0][at:]
    hostile = [
        deep_kvlist,
        b'{"resourceSpans":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
        good[1].replace(b'"startTimeUnixNano":"', b'"startTimeUnixNano":"9' + b"9" * 40, 1),
        bytes(range(256)),
        good[1][: len(good[1]) // 2],
    ]
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\n".join([good[0], *hostile, good[1]]) + b"\n")
    result = features.extract(path)
    assert len(result.attempts) == 2
    bad_lines = sorted(p.line_no for p in result.problems)
    assert 2 in bad_lines and 3 in bad_lines and 5 in bad_lines and 6 in bad_lines
    assert any("nested too deeply" in p.message for p in result.problems)
    assert all(math.isfinite(a.started_at_ns or 0) for a in result.attempts)
    run = subprocess.run(
        [sys.executable, "-m", "agentsignals", "features", "--no-progress", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert len(run.stdout.splitlines()) == 2
