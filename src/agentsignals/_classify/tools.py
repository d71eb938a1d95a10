"""Tool category inference from tool names (and, for shell tools, the command they run).

Agents name the same kind of tool in many ways (bash, Bash, execute_bash, run_command, ...).
Processors need one vocabulary: the `agent_signals.tool.category` enum.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentsignals.semconv import ToolCategory

if TYPE_CHECKING:
    from agentsignals._classify.shell import ShellReading


_reader: Callable[[str], ShellReading] | None = None


def read_command(command: str) -> ShellReading:
    """`agentsignals._classify.shell.read_command`, imported on first use: the shell reader
    is the largest module of the instrumentation (~10 ms of `import agentsignals`)."""
    global _reader
    if _reader is None:
        from agentsignals._classify import shell

        _reader = shell.read_command
    return _reader(command)


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


def classify_command(command: str) -> ToolCategory:
    """Classify a shell command line by what it does: test run, search, read, or plain shell
    (see :func:`agentsignals._classify.shell.read_command`).

    Edits through the shell (sed -i, heredocs) stay `shell`: live, the workspace tracker decides
    whether files changed and marks them shell-mediated; imported, the files the syntax writes
    are the call's changed files.
    """
    return read_command(command).category


def shell_edit_targets(command: str) -> list[str]:
    """Files a shell command writes, read from its syntax tree (redirections, heredocs into
    files, `sed -i`/`perl -i`, `tee`, `cp`/`mv`/`rm`/`touch`, `git checkout -- f`, diffs fed to
    `patch`, Python fed to `python`). For imported trajectories, where no workspace was
    tracked, this is how an edit made through the shell is seen at all."""
    return list(read_command(command).writes)


def shell_read_targets(command: str) -> list[str]:
    """Files a shell command prints (`cat a.py`, `sed -n 1,20p a.py`, `head a.py`), so a
    shell-only agent's reads name their files like a Read tool's."""
    return list(read_command(command).reads)


_VALUES = {c: c.value for c in ToolCategory}

# Argument keys under which tools name the file(s) they act on.
_FILE_KEYS = ("path", "file_path", "filepath", "file", "filename", "notebook_path", "target_file")
_FILES_KEYS = ("paths", "file_paths", "files")
FILE_ARGUMENT_KEYS = frozenset(_FILE_KEYS + _FILES_KEYS)
"""Argument names under which tools name files (for live tools: decided from the signature)."""


def stated_files(arguments: Mapping[str, Any] | None) -> list[str] | None:
    """Files a tool call names in its arguments (`path`, `file_path`, `paths`, ...), or None
    when it names none. Live tools and importers read arguments with this one function."""
    if not arguments or not arguments.keys() & FILE_ARGUMENT_KEYS:
        return None
    out: list[str] = []
    for key in _FILE_KEYS:
        value = arguments.get(key)
        if isinstance(value, str) and value:
            out.append(value)
            break
    for key in _FILES_KEYS:
        value = arguments.get(key)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str) and v)
    return list(dict.fromkeys(out)) or None


class CallFacts:
    """What a tool call is and names, from its name and arguments: the same for a live tool
    and an imported one."""

    __slots__ = ("category", "command", "command_complete", "files", "runner")

    def __init__(
        self,
        category: str,
        files: Sequence[str] | None = None,
        runner: str | None = None,
        command: str | None = None,
        command_complete: bool = True,
    ) -> None:
        self.category = category
        self.files = files
        self.runner = runner
        self.command = command
        self.command_complete = command_complete


def shell_command(arguments: Mapping[str, Any] | None) -> str | None:
    """The command line of a shell tool's arguments (`command` or `cmd`), if a string."""
    if not arguments:
        return None
    raw = arguments.get("command") or arguments.get("cmd")
    return raw if isinstance(raw, str) else None


def describe_call(
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    category: str | None = None,
    command: str | None = None,
) -> CallFacts:
    """Category and named files of one tool call. A shell command (`command`, or a shell
    tool's `command`/`cmd` argument) is read from its syntax: category by what it does, files
    it prints or greps. Any other tool names its files in its arguments (`path`,
    `file_path`, ...). An explicit `category` wins over the inferred one."""
    base = category_for(name)
    if command is None and base is ToolCategory.SHELL:
        command = shell_command(arguments)
    if command is not None:
        reading = read_command(command)
        return CallFacts(
            category if category is not None else _VALUES[reading.category],
            reading.files or None,
            reading.runner,
            command,
            reading.complete,
        )
    if category is None:
        # Arguments refine only editor tools (`command: view` reads); others keep the name's.
        refine = arguments and _is_editor(name)
        category = _VALUES[category_for(name, arguments) if refine else base]
    return CallFacts(category, stated_files(arguments) if arguments else None)


_EDITOR_BY_NAME: dict[str, bool] = {}


def _is_editor(name: str) -> bool:
    known = _EDITOR_BY_NAME.get(name)
    if known is None:
        if len(_EDITOR_BY_NAME) >= _NAME_CACHE_MAX:
            _EDITOR_BY_NAME.clear()
        known = _EDITOR_BY_NAME[name] = _normalise(name) in _EDITOR_TOOLS
    return known
