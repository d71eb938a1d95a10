"""One module per trajectory format. Each defines:

    NAME: str                                   # "swe-agent", "claude-code", ...
    def detect(path: Path, head: bytes) -> bool  # head: the file's first 64 KiB
    def read(path: Path, report: Report) -> Iterator[list[Span]]   # one span list per trajectory

`read` raises TrajectoryError for a file it cannot read at all, and calls `report` for a bad
record or line inside a file that otherwise reads (the other records still import).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ImportProblem:
    """Something in a trajectory file that could not be imported; the rest still was."""

    path: str
    line: int  # 1-based line (JSON lines) or 0 when the whole file or no line applies
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class TrajectoryError(ValueError):
    """A trajectory file that cannot be imported; the message names the file and the line."""

    def __init__(self, path: str, message: str, line: int = 0) -> None:
        self.problem = ImportProblem(str(path), line, message)
        super().__init__(str(self.problem))


Report = Callable[[ImportProblem], None]

# Detection order: the most specific formats first.
FORMAT_MODULES = (
    "mini_swe_agent",
    "swe_agent",
    "openhands",
    "claude_code",
    "pi",
    "codex",
    "inspect_ai",
)
