"""Shared by the benchmarks: another build's source tree, and worker processes spoken to in
JSON lines (one build or one peer per process, so each imports its own code)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


def build_src(commit: str, into: Path) -> Path:
    """`src/` of `commit` (`git archive`), unpacked into `into`; returns `into/src`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src"], capture_output=True, check=True, cwd=ROOT
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def commit_title(commit: str) -> str:
    """`<short hash> <subject>` of `commit`."""
    return subprocess.run(
        ["git", "log", "-1", "--format=%h %s", commit],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()


class LineWorker:
    """A benchmark worker process: each job one JSON line on its stdin, each answer a line
    `@@<json>` on its stdout (anything else it prints is skipped)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        label: str = "worker",
        cwd: str | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=cwd,
        )

    def ask(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])  # type: ignore[no-any-return]
        raise RuntimeError(f"{self.label} ended (exit {self.proc.wait()})")

    def close(self) -> None:
        try:
            self.ask({"op": "quit"})
        finally:
            self.proc.wait(timeout=60)
