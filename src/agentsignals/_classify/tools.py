"""Tool category inference from tool names (and, for shell tools, the command they run).

Agents name the same kind of tool in many ways (bash, Bash, execute_bash, run_command, ...).
Processors need one vocabulary: the `agent_signals.tool.category` enum.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from agentsignals.semconv import ToolCategory

_BY_NAME: dict[str, ToolCategory] = {}


def _register(category: ToolCategory, *names: str) -> None:
    for name in names:
        _BY_NAME[_normalise(name)] = category


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip()).lower()


_register(
    ToolCategory.SHELL,
    "bash", "shell", "sh", "zsh", "terminal", "run", "exec", "execute", "cmd", "command",
    "execute_bash", "execute_command", "run_command", "run_shell", "run_shell_command",
    "shell_command", "bash_command", "run_terminal_cmd", "execute_ipython_cell", "python",
    "ipython", "local_shell", "container_exec", "bash_session",
)  # fmt: skip
_register(
    ToolCategory.READ,
    "read", "read_file", "readfile", "view", "view_file", "open", "open_file", "cat", "get_file",
    "read_many_files", "file_read", "notebookread", "fetch_file", "show_file",
)  # fmt: skip
_register(
    ToolCategory.SEARCH,
    "grep", "glob", "find", "search", "search_codebase", "search_code", "search_dir",
    "search_file", "find_file", "find_files", "rg", "ripgrep", "codebase_search", "list_files",
    "list_dir", "list_directory", "ls", "grep_search", "file_search", "semantic_search",
    "websearch", "web_search", "find_symbol", "goto_definition", "find_references",
)  # fmt: skip
_register(
    ToolCategory.EDIT,
    "edit", "edit_file", "write", "write_file", "create", "create_file", "multiedit",
    "multi_edit", "notebookedit", "apply_patch", "apply_diff", "patch", "replace_in_file",
    "str_replace", "str_replace_editor", "str_replace_based_edit_tool", "insert", "delete_file",
    "remove_file", "file_write", "file_edit", "edit_notebook", "replace", "search_replace",
    "text_editor",
)  # fmt: skip
_register(
    ToolCategory.TEST,
    "test", "tests", "pytest", "run_tests", "run_test", "run_pytest", "unittest", "tox", "nox",
)  # fmt: skip
_register(
    ToolCategory.SUBMIT,
    "submit", "finish", "done", "complete", "task_complete", "final_answer",
    "attempt_completion", "submit_patch", "finish_task", "exit",
)  # fmt: skip

# str_replace_editor-style tools put the real operation in a `command` argument.
_EDITOR_TOOLS = {
    "str_replace_editor",
    "str_replace_based_edit_tool",
    "edit_tool",
    "editor",
    "text_editor",
}
_EDITOR_COMMANDS = {
    "view": ToolCategory.READ,
    "create": ToolCategory.EDIT,
    "str_replace": ToolCategory.EDIT,
    "insert": ToolCategory.EDIT,
    "undo_edit": ToolCategory.EDIT,
    "delete": ToolCategory.EDIT,
}

_TEST_RUNNERS = re.compile(
    r"(^|[\s/;&|(])(pytest|py\.test|tox|nox|unittest|nosetests|runtests\.py|manage\.py\s+test|"
    r"go\s+test|cargo\s+test|npm\s+(run\s+)?test|yarn\s+test|jest|mocha|rspec|make\s+test|ctest)\b"
)
_SEARCH_COMMANDS = {
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "ag",
    "ack",
    "find",
    "fd",
    "ls",
    "tree",
    "locate",
}
_READ_COMMANDS = {"cat", "head", "tail", "less", "more", "nl", "bat", "wc"}


# Category by raw tool name: agents call a handful of tools thousands of times.
_NAME_CACHE: dict[str, ToolCategory] = {}
_NAME_CACHE_MAX = 4096


def category_for(name: str, arguments: Mapping[str, Any] | None = None) -> ToolCategory:
    """Infer a tool's category from its name, refined by its arguments where that is cheap."""
    if not arguments:
        cached = _NAME_CACHE.get(name)
        if cached is not None:
            return cached
    key = _normalise(name)
    if key in _EDITOR_TOOLS and arguments:
        command = arguments.get("command")
        if isinstance(command, str) and command in _EDITOR_COMMANDS:
            return _EDITOR_COMMANDS[command]
    category = _BY_NAME.get(key)
    if category is None:
        category = _fuzzy(key)
    if not arguments:
        if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
            _NAME_CACHE.clear()
        _NAME_CACHE[name] = category
    if category is ToolCategory.SHELL and arguments:
        command = arguments.get("command") or arguments.get("cmd")
        if isinstance(command, str):
            return classify_command(command)
    return category


def _fuzzy(key: str) -> ToolCategory:
    # Names like "mcp__fs__read_text_file" or "workspace_grep": look at the last word first.
    parts = [p for p in key.split("_") if p]
    for size in range(min(3, len(parts)), 0, -1):
        tail = "_".join(parts[-size:])
        if tail in _BY_NAME:
            return _BY_NAME[tail]
    return ToolCategory.OTHER


# Commands are tokenized with shlex (about 0.5 µs a character), on every call of a shell tool,
# content capture on or off. Longer commands are read without their heredoc bodies (data, not
# commands) and then by their first _MAX_COMMAND_CHARS characters: an 8 MiB heredoc took
# seconds per call. Shorter ones are read whole, as they always were.
_MAX_COMMAND_CHARS = 4096
_MAX_HEREDOC_MARKS = 64
_HEREDOC_START = re.compile(r"<<-?[ \t]*(['\"]?)(\w+)\1")


def _without_heredoc_bodies(command: str) -> str:
    """`command` with the body of each heredoc left out (C-level scans, at most
    _MAX_HEREDOC_MARKS `<<` looked at); an unterminated heredoc runs to the end, as in the
    shell."""
    out: list[str] = []
    pos = 0
    for _ in range(_MAX_HEREDOC_MARKS):
        at = command.find("<<", pos)
        if at < 0:
            break
        start = _HEREDOC_START.match(command, at)
        if start is None:
            out.append(command[pos : at + 2])
            pos = at + 2
            continue
        line_end = command.find("\n", start.end())
        if line_end < 0:
            break
        out.append(command[pos:line_end])
        end = re.compile(r"\n\t*" + re.escape(start.group(2)) + r"(?=\n|$)").search(
            command, line_end
        )
        if end is None:
            return "".join(out)
        pos = end.end()
    out.append(command[pos:])
    return "".join(out)


def classify_command(command: str) -> ToolCategory:
    """Classify a shell command line by what it does: test run, search, read, or plain shell.

    Edits through the shell (sed -i, heredocs) stay `shell`: the workspace tracker, not the
    command text, decides whether files changed, and marks them shell-mediated.
    """
    rest = ""
    if len(command) > _MAX_COMMAND_CHARS:
        command = _without_heredoc_bodies(command)
        command, rest = command[:_MAX_COMMAND_CHARS], command[_MAX_COMMAND_CHARS:]
    category = _classify_command(command)
    if rest and category in (ToolCategory.READ, ToolCategory.SEARCH) and _writes(command, rest):
        return ToolCategory.SHELL  # a redirection or in-place edit past the part read
    return category


def _writes(head: str, rest: str) -> bool:
    if ">" in rest:
        return True
    in_place = " -i" in rest or "--in-place" in rest
    return in_place and any(p in head or p in rest for p in ("sed", "perl"))


def _classify_command(command: str) -> ToolCategory:
    if _TEST_RUNNERS.search(command):
        return ToolCategory.TEST
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    if not words:
        return ToolCategory.SHELL
    segments: list[list[str]] = [[]]
    for word in words:
        if word in ("|", "&&", "||", ";"):
            segments.append([])
        else:
            segments[-1].append(word)
    segments = [seg for seg in segments if seg]
    first = [seg[0].rsplit("/", 1)[-1] for seg in segments]
    if any(
        w in ("sed", "perl") and any(a.startswith("-i") for a in seg)
        for w, seg in zip(first, segments, strict=True)
    ):
        return ToolCategory.SHELL
    if any(">" in w for w in words):
        return ToolCategory.SHELL
    if first and first[0] in _SEARCH_COMMANDS:
        return ToolCategory.SEARCH
    if first and first[0] in _READ_COMMANDS:
        return ToolCategory.READ
    if first and first[0] == "sed" and "-n" in segments[0]:
        return ToolCategory.READ
    if first and first[0] == "git" and len(segments[0]) > 1 and segments[0][1] == "grep":
        return ToolCategory.SEARCH
    return ToolCategory.SHELL


_HEREDOC_OR_REDIRECT = re.compile(
    r"(?<![<>&\d])(?:\d?>>?|&>>?)\s*(?P<q>['\"]?)(?P<path>[^\s'\";|&<>()]+)(?P=q)"
)
_NOT_FILES = {"/dev/null", "/dev/stdout", "/dev/stderr", "&1", "&2"}


def shell_edit_targets(command: str) -> list[str]:
    """Files a shell command writes, read from its text: `sed -i`/`perl -i` targets, output
    redirections (`>`, `>>`, heredocs into files), `tee`, `rm`, `mv`/`cp` destinations, `touch`.

    For imported trajectories, where no workspace was tracked, this is how an edit made through
    the shell is seen at all. It reads text, so it is an estimate: `python -c` writes and
    scripts that write files are not seen.
    """
    targets: list[str] = []

    def add(path: str) -> None:
        path = path.strip()
        if path and path not in _NOT_FILES and not path.startswith("-") and path not in targets:
            targets.append(path)

    # Heredoc bodies are data, not commands: drop them before looking at words.
    text = re.sub(r"<<-?\s*(['\"]?)(\w+)\1\n.*?\n\2(?=\n|$)", "<<HEREDOC", command, flags=re.S)
    for match in _HEREDOC_OR_REDIRECT.finditer(text):
        add(match.group("path"))
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError:
        words = text.split()
    segments: list[list[str]] = [[]]
    for word in words:
        if word in ("|", "&&", "||", ";", "&"):
            segments.append([])
        else:
            segments[-1].append(word)
    for seg in segments:
        if not seg:
            continue
        program = seg[0].rsplit("/", 1)[-1]
        args = [w for w in seg[1:] if not re.match(r"^\d?>>?|^&>", w)]
        if program in ("sed", "perl") and _in_place(program, args):
            for f in _script_operands(args)[0 if _has_script_flag(args) else 1 :]:
                add(f)
        elif program == "tee" or program in ("rm", "touch", "truncate"):
            for a in args:
                if not a.startswith("-"):
                    add(a)
        elif program in ("mv", "cp") and len([a for a in args if not a.startswith("-")]) >= 2:
            operands = [a for a in args if not a.startswith("-")]
            add(operands[-1])
            if program == "mv":
                for a in operands[:-1]:
                    add(a)
    return targets


def _in_place(program: str, args: list[str]) -> bool:
    for a in args:
        if a == "--in-place" or a.startswith("--in-place="):
            return True
        # Short flags may be bundled: sed -ni, perl -pi -e.
        if a.startswith("-") and not a.startswith("--") and "i" in a[1:].split(".", 1)[0]:
            return program == "perl" or a.startswith("-i") or a[1:].rstrip("e").endswith("i")
    return False


def _has_script_flag(args: list[str]) -> bool:
    return any(a in ("-e", "-f") or a.startswith(("--expression", "--file")) for a in args) or any(
        a.startswith("-") and not a.startswith("--") and a.endswith("e") for a in args
    )


def _script_operands(args: list[str]) -> list[str]:
    """Operands that are not options nor the value of -e/-f (sed and perl scripts)."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-e", "-f", "--expression", "--file") or (
            a.startswith("-") and not a.startswith("--") and a.endswith("e") and len(a) > 2
        ):
            skip = True
            continue
        if a.startswith("-"):
            continue
        out.append(a)
    return out


_READ_PROGRAMS = {"cat", "head", "tail", "nl", "less", "more", "bat", "wc"}


def shell_read_targets(command: str) -> list[str]:
    """Files a read-only shell command prints (`cat a.py`, `sed -n 1,20p a.py`, `head a.py`),
    read from its text, so a shell-only agent's reads name their files like a Read tool's."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    targets: list[str] = []
    segment: list[str] = []
    for word in [*words, "|"]:
        if word not in ("|", "&&", "||", ";"):
            segment.append(word)
            continue
        if segment:
            program = segment[0].rsplit("/", 1)[-1]
            args = segment[1:]
            if program in _READ_PROGRAMS:
                operands = [a for a in args if not a.startswith("-") and not a.isdigit()]
            elif program == "sed" and "-n" in args and not _in_place(program, args):
                operands = _script_operands(args)[0 if _has_script_flag(args) else 1 :]
            else:
                operands = []
            targets.extend(o for o in operands if o not in targets and not o.startswith(">"))
        segment = []
    return targets
