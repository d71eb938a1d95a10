"""Changed line ranges (regions) of files: from unified diffs and pi/Claude Code edit results,
as `agent_signals.tool.regions.*` attributes. Pure; shared by importers and live capture."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agentsignals import semconv as sc

__all__ = ["Region", "line_regions", "region_attributes", "unified_diff_regions"]

AttrValue = str | bool | int | float | list[str | bool | int | float]


@dataclass(frozen=True)
class Region:
    """One changed line range of a file (a diff hunk): lines `start`..`start + added - 1` in
    the file after the change were written, `removed` lines were removed there."""

    file: str
    start: int
    added: int
    removed: int


def region_attributes(regions: Sequence[Region]) -> dict[str, AttrValue]:
    """The parallel `agent_signals.tool.regions.*` arrays of a call's changed regions."""
    return {
        sc.AGENT_SIGNALS_TOOL_REGIONS_FILES: [r.file for r in regions],
        sc.AGENT_SIGNALS_TOOL_REGIONS_START_LINES: [r.start for r in regions],
        sc.AGENT_SIGNALS_TOOL_REGIONS_ADDED_LINES: [r.added for r in regions],
        sc.AGENT_SIGNALS_TOOL_REGIONS_REMOVED_LINES: [r.removed for r in regions],
    }


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def unified_diff_regions(diff: str) -> list[Region]:
    """The regions of a unified diff (git's `diff`, `-U0` or with context): each hunk's
    changed lines, context lines left out (a hunk with two separate changes gives two
    regions)."""
    out: list[Region] = []
    current: str | None = None
    new_line = 0
    start: int | None = None
    added = removed = 0

    def close() -> None:
        nonlocal start, added, removed
        if current is not None and start is not None and (added or removed):
            out.append(Region(current, max(start, 1), added, removed))
        start, added, removed = None, 0, 0

    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            close()
            in_hunk = False
            parts = line.split(" b/", 1)
            current = parts[1].strip() if len(parts) == 2 else current
            continue
        if line.startswith("+++ ") and not in_hunk:
            path = line[4:].strip().split("\t", 1)[0]
            if path != "/dev/null":
                current = path[2:] if path.startswith("b/") else path
            continue
        if line.startswith("--- ") and not in_hunk:
            continue
        match = _HUNK.match(line)
        if match:
            close()
            in_hunk = True
            new_line = int(match.group(3))
            if match.group(4) == "0":
                new_line += 1  # an empty range names the line before it
            continue
        if not in_hunk:
            continue
        if line.startswith("+"):
            if start is None:
                start = new_line
            added += 1
            new_line += 1
        elif line.startswith("-"):
            if start is None:
                start = new_line
            removed += 1
        elif line.startswith("\\"):
            continue  # "\ No newline at end of file"
        else:
            close()
            new_line += 1
    close()
    return out


def line_regions(path: str, old: Sequence[str], new: Sequence[str]) -> list[Region]:
    """The regions of the change from `old` to `new` lines of one file (difflib's opcodes:
    each replaced, inserted or deleted run)."""
    import difflib

    out: list[Region] = []
    matcher = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out.append(Region(path, j1 + 1, j2 - j1, i2 - i1))
    return out
